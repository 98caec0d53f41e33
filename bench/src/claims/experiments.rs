//! The experiments of `bench claims`, each as the phases it runs. Both
//! models consume the same events at the same time (each in its own group
//! and database), except in the scale-out, where each group drains its
//! own copy of a backlog alone, pull and push taking turns.

use consumer_core::Model;

use super::{ClaimsArgs, Experiment};
use crate::phase::{PhaseSpec, Segment};

/// At each steady rate (1 event/s runs longer than --duration).
pub const MIN_EVENTS: u64 = 20;
/// Bursts: rate (events/s), seconds, seconds of nothing after each, count.
pub const BURST: (u64, u64, f64, u64) = (200_000, 1, 4.0, 4);
/// The step: rates in order (events/s), seconds at each.
pub const STEP: ([u64; 3], u64) = ([2_000, 100_000, 2_000], 5);
/// The slow sink: the consumers' --batch-size, offered rate, seconds.
pub const SLOW: (usize, u64, u64) = (1, 20_000, 5);

fn steady(rate: u64, seconds: u64, min_events: u64) -> Segment {
    Segment {
        count: (rate * seconds).max(min_events),
        rate,
        pause_after_s: 0.0,
    }
}

/// Unmeasured: the broker's JVM compiles its live paths (docs/benchmark.md,
/// "Kafka's JIT") before anything is measured.
pub fn warm_up() -> PhaseSpec {
    PhaseSpec::new("warm-up".into(), vec![steady(20_000, 5, 1)])
}

pub fn specs(e: Experiment, a: &ClaimsArgs) -> Vec<PhaseSpec> {
    let rounds = 1..=a.repeats;
    match e {
        Experiment::Latency => rounds
            .flat_map(|r| {
                a.rates.iter().filter(|&&x| x > 0).map(move |&rate| {
                    PhaseSpec::new(
                        format!("latency-{r}-{rate}"),
                        vec![steady(rate, a.duration, MIN_EVENTS)],
                    )
                })
            })
            .collect(),
        Experiment::Idle => vec![PhaseSpec {
            idle_window_s: a.idle_seconds,
            // Then a few events, so the phase is verified like the others.
            ..PhaseSpec::new("idle".into(), vec![steady(10, 1, 10)])
        }],
        Experiment::Burst => rounds
            .map(|r| {
                let (rate, secs, gap, n) = BURST;
                let burst = Segment {
                    count: rate * secs,
                    rate,
                    pause_after_s: gap,
                };
                let mut segments = vec![burst; n as usize];
                if let Some(last) = segments.last_mut() {
                    last.pause_after_s = 0.0;
                }
                PhaseSpec::new(format!("burst-{r}"), segments)
            })
            .collect(),
        Experiment::Step => rounds
            .map(|r| {
                let segments = STEP.0.map(|rate| steady(rate, STEP.1, 1)).to_vec();
                PhaseSpec::new(format!("step-{r}"), segments)
            })
            .collect(),
        Experiment::Slow => rounds
            .map(|r| PhaseSpec {
                batch_size: Some(SLOW.0),
                ..PhaseSpec::new(format!("slow-{r}"), vec![steady(SLOW.1, SLOW.2, 1)])
            })
            .collect(),
        Experiment::Scale => {
            // The backlog is there before the instances start, so that the
            // group drains it (a producer running alongside measured the
            // producer). The first to join takes every partition until the
            // others' joins rebalance the group; a member learns of a
            // rebalance at its next heartbeat (3 s by default), so
            // heartbeats every 100 ms keep that head start short. Its share
            // shows per instance.
            let ks = &a.scale_instances;
            let groups = ks.iter().enumerate().filter(|(_, k)| **k > 0);
            let phases = groups.flat_map(|(i, &k)| {
                // a, b, ...: the how-manieth group of k instances.
                let tag = (b'a' + ks[..i].iter().filter(|&&x| x == k).count() as u8) as char;
                Model::ALL.map(|model| PhaseSpec {
                    models: vec![model],
                    instances: k,
                    consumers_after_producer: true,
                    consumer_properties: vec![("heartbeat.interval.ms".into(), "100".into())],
                    ..PhaseSpec::new(
                        format!("scale-{}-{k}-{tag}", model.name()),
                        vec![steady(0, 0, a.scale_events)],
                    )
                })
            });
            phases.collect()
        }
        Experiment::Outage => vec![PhaseSpec {
            consumers_after_producer: true,
            ..PhaseSpec::new(
                "outage".into(),
                vec![steady(a.outage_rate, a.outage_seconds, 1)],
            )
        }],
    }
}

/// `(round, rate)` of a latency phase's name.
pub fn latency_phase(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("latency-")?;
    let (r, rate) = rest.split_once('-')?;
    Some((r.parse().ok()?, rate.parse().ok()?))
}

/// `(model, instances)` of a scale-out phase's name.
pub fn scale_phase(name: &str) -> Option<(&str, usize)> {
    let rest = name.strip_prefix("scale-")?;
    let mut it = rest.split('-');
    let model = it.next()?;
    let k = it.next()?.parse().ok()?;
    Some((model, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::parse;

    #[test]
    fn the_default_experiments_and_their_phases() {
        let a = parse::<ClaimsArgs>(&[]);
        let all: Vec<PhaseSpec> = a
            .experiments()
            .into_iter()
            .flat_map(|e| specs(e, &a))
            .collect();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"latency-1-1") && names.contains(&"latency-2-100000"));
        assert_eq!(
            names.iter().filter(|n| n.starts_with("latency-")).count(),
            12
        );
        // 1 event/s runs long enough for MIN_EVENTS.
        let low = all.iter().find(|s| s.name == "latency-1-1").unwrap();
        assert_eq!(low.events(), 20);
        let burst = all.iter().find(|s| s.name == "burst-1").unwrap();
        assert_eq!(burst.events(), 800_000);
        assert_eq!(burst.segments[0].pause_after_s, 4.0);
        assert_eq!(burst.segments[3].pause_after_s, 0.0);
        let step = all.iter().find(|s| s.name == "step-2").unwrap();
        let rates: Vec<u64> = step.segments.iter().map(|s| s.rate).collect();
        assert_eq!(rates, [2_000, 100_000, 2_000]);
        let slow = all.iter().find(|s| s.name == "slow-1").unwrap();
        assert_eq!(slow.batch_size, Some(1));
        let scale: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| n.starts_with("scale-"))
            .collect();
        assert_eq!(
            scale,
            [
                "scale-pull-1-a",
                "scale-push-1-a",
                "scale-pull-2-a",
                "scale-push-2-a",
                "scale-pull-3-a",
                "scale-push-3-a",
                "scale-pull-1-b",
                "scale-push-1-b"
            ]
        );
        let s3 = all.iter().find(|s| s.name == "scale-push-3-a").unwrap();
        assert_eq!(
            (s3.instances, s3.models.as_slice()),
            (3, &[Model::Push][..])
        );
        assert!(s3.consumers_after_producer);
        assert_eq!(
            s3.consumer_properties,
            [("heartbeat.interval.ms".to_string(), "100".to_string())]
        );
        let idle = all.iter().find(|s| s.name == "idle").unwrap();
        assert_eq!(idle.idle_window_s, 60);
        assert!(
            all.iter()
                .find(|s| s.name == "outage")
                .unwrap()
                .consumers_after_producer
        );
    }

    #[test]
    fn only_the_chosen_experiments() {
        let a = parse::<ClaimsArgs>(&["--only", "idle,outage", "--idle-seconds", "10"]);
        let names: Vec<String> = a
            .experiments()
            .into_iter()
            .flat_map(|e| specs(e, &a))
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["idle", "outage"]);
    }

    #[test]
    fn phase_names_parse_back() {
        assert_eq!(latency_phase("latency-2-20000"), Some((2, 20_000)));
        assert_eq!(latency_phase("burst-1"), None);
        assert_eq!(scale_phase("scale-push-3-b"), Some(("push", 3)));
    }
}
