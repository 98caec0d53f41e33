//! The figures of each experiment, read from the phases' stats files and
//! samples.

use super::table::claims;
use super::{Analysis, IdleFigures, LoadFigures, OutageFigures, RateFigures, ScaleFigures};
use crate::claims::ClaimsRun;
use crate::claims::experiments::{latency_phase, scale_phase};
use crate::claims::verdict::Pair;
use crate::phase::sampler::{LagPoint, Sample};
use crate::phase::{ConsumerRun, PhaseRun};

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// `f` of each consumer of `runs`, by model.
fn pair_of<I: IntoIterator<Item = f64>>(runs: &[&PhaseRun], f: impl Fn(&ConsumerRun) -> I) -> Pair {
    let mut p = Pair::default();
    for c in runs.iter().flat_map(|r| &r.consumers) {
        p.side(&c.model).extend(f(c));
    }
    p
}

/// `f` of each run's samples for each model.
fn pair_samples(runs: &[&PhaseRun], f: impl Fn(&PhaseRun, &str) -> Option<f64>) -> Pair {
    let mut p = Pair::default();
    for run in runs {
        for model in ["pull", "push"] {
            p.side(model).extend(f(run, model));
        }
    }
    p
}

/// The phases `<name>-<repeat>`.
fn load(r: &ClaimsRun, name: &str) -> Option<LoadFigures> {
    let repeat = |p: &&PhaseRun| {
        let split = p.name.split_once('-');
        split.is_some_and(|(n, k)| n == name && k.parse::<u64>().is_ok())
    };
    let runs: Vec<&PhaseRun> = r.phases.iter().filter(repeat).collect();
    let first = runs.first()?;
    Some(LoadFigures {
        name: name.into(),
        events: first.producer.events_acknowledged,
        segment_rates: first.segments.iter().map(|s| s.events_per_second).collect(),
        p50_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p50))),
        p99_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p99))),
        p999_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p999))),
        max_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.max))),
        max_lag: pair_samples(&runs, |r, m| Some(max_lag(&r.samples, m) as f64)),
        peak_rss_mb: pair_samples(&runs, |r, m| Some(max_rss(&r.samples, m) as f64 / 1e6)),
        cpu_s: pair_of(&runs, |c| c.active_cpu_seconds),
        events_per_second: pair_of(&runs, |c| Some(c.stats.events_per_second)),
        catch_up_spread_s: pair_samples(&runs, |r, m| {
            catch_up_spread(&r.samples, m, r.produce_start_s)
        }),
        lag_skew: pair_samples(&runs, |r, m| lag_skew_at_peak(&r.samples, m)),
        rebalances: pair_of(&runs, |c| Some(rebalances(c) as f64)),
        batches: pair_of(&runs, |c| Some(c.stats.batches as f64)),
    })
}

/// Assignments and revocations beyond the first assignment.
fn rebalances(c: &ConsumerRun) -> u64 {
    (c.assignments + c.revocations).saturating_sub(1)
}

/// The phases with a `key` (a rate, a group size), by key in increasing
/// order, each key's phases in run order.
fn grouped<K: Ord>(r: &ClaimsRun, key: impl Fn(&str) -> Option<K>) -> Vec<(K, Vec<&PhaseRun>)> {
    let mut by_key = std::collections::BTreeMap::<K, Vec<&PhaseRun>>::new();
    for p in &r.phases {
        if let Some(k) = key(&p.name) {
            by_key.entry(k).or_default().push(p);
        }
    }
    by_key.into_iter().collect()
}

/// Reads the run's phases into figures and verdicts.
pub fn analyse(r: &ClaimsRun) -> Analysis {
    let mut a = Analysis {
        phases: r
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.verification.clone(), p.seconds))
            .collect(),
        ..Default::default()
    };

    for (rate, runs) in grouped(r, |name| latency_phase(name).map(|x| x.1)) {
        a.latency.push(RateFigures {
            rate,
            events: runs.first().map_or(0, |p| p.producer.events_acknowledged),
            producer_events_per_second: runs.iter().map(|p| p.producer.events_per_second).collect(),
            p50_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p50))),
            p99_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p99))),
            p999_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.p999))),
            max_ms: pair_of(&runs, |c| Some(ms(c.stats.latency_us.max))),
            cpu_us_per_event: pair_of(&runs, |c| {
                let n = c.stats.events_committed.max(1) as f64;
                c.active_cpu_seconds.map(|s| s * 1e6 / n)
            }),
            cores: pair_of(&runs, |c| {
                c.active_cpu_seconds
                    .zip(c.active_seconds)
                    .filter(|(_, t)| *t > 0.0)
                    .map(|(s, t)| s / t)
            }),
        });
    }

    if let Some(p) = r
        .phases
        .iter()
        .find(|p| p.name == "idle" && p.idle_window_s > 0)
    {
        let half = p.idle_window_s as f64 / 2.0;
        let per_s = |h: Option<[f64; 2]>| h.into_iter().flatten().map(move |x| x * 1e3 / half);
        a.idle = Some(IdleFigures {
            seconds: p.idle_window_s,
            cpu_ms_per_s: pair_of(&[p], |c| per_s(c.idle_cpu_seconds)),
            broker_cpu_ms_per_s: per_s(p.broker_idle_cpu_seconds).collect(),
        });
    }

    (a.burst, a.step, a.slow) = (load(r, "burst"), load(r, "step"), load(r, "slow"));

    for (k, runs) in grouped(r, |name| scale_phase(name).map(|x| x.1)) {
        let mut f = ScaleFigures {
            instances: k,
            ..Default::default()
        };
        for run in &runs {
            let (model, _) = scale_phase(&run.name).unwrap_or_default();
            let cs = &run.consumers;
            // The group's span: from the first instance's assignment (it
            // can consume from then on) until the group's lag was 0.
            let first_ready = cs
                .iter()
                .filter_map(|c| c.ready_s)
                .fold(f64::INFINITY, f64::min);
            let drain = drained_after(&run.samples, model, run.consumers_start_s);
            let longest = cs.iter().map(|c| c.stats.wall_seconds).fold(0.0, f64::max);
            let span = match drain {
                Some(d) if first_ready.is_finite() && d > first_ready => d - first_ready,
                _ => longest,
            };
            let eps = crate::stats::rate(run.producer.events_acknowledged, span);
            let join = cs
                .iter()
                .map(|c| c.ready_s.unwrap_or(f64::NAN))
                .fold(0.0, f64::max);
            f.events_per_second.side(model).push(eps);
            f.join_s.side(model).push(join);
            f.drain_s.side(model).extend(drain);
            let rebalances = cs.iter().map(rebalances).sum::<u64>();
            f.rebalances.side(model).push(rebalances as f64);
            let per_instance = cs.iter().map(|c| c.stats.events_committed).collect();
            f.per_instance.push((run.name.clone(), per_instance));
        }
        a.scale.push(f);
    }

    if let Some(p) = r.phases.iter().find(|p| p.name == "outage") {
        let rate = p.segments.first().map_or(0, |s| s.rate);
        let tail = |run: &PhaseRun| {
            let s = run.segments.first();
            s.map_or(0.0, |s| {
                (s.wall_seconds - s.count as f64 / s.rate.max(1) as f64) * 1e3
            })
        };
        let live = r
            .phases
            .iter()
            .filter(|x| latency_phase(&x.name).is_some_and(|l| l.1 == rate));
        let live = |f: fn(&PhaseRun) -> f64| live.clone().map(f).collect();
        a.outage = Some(OutageFigures {
            rate,
            producer_events_per_second: p.producer.events_per_second,
            producer_tail_ms: tail(p),
            producer_cpu_s: p.producer.cpu_seconds,
            live_producer_events_per_second: live(|x| x.producer.events_per_second),
            live_producer_tail_ms: live(tail),
            live_producer_cpu_s: live(|x| x.producer.cpu_seconds),
            drain_events_per_second: pair_of(&[p], |c| Some(c.stats.events_per_second)),
            max_ms: pair_of(&[p], |c| Some(ms(c.stats.latency_us.max))),
        });
    }

    a.claims = claims(&a);
    a
}

// The timeline's figures ([`crate::phase::sampler`]): the largest lag and
// memory, and how evenly the partitions caught up.

/// `model`'s lag points, with their sample's time.
fn lags<'a>(samples: &'a [Sample], model: &'a str) -> impl Iterator<Item = (f64, &'a LagPoint)> {
    let of = move |s: &'a Sample| {
        s.lag
            .iter()
            .filter(move |l| l.model == model)
            .map(move |l| (s.t, l))
    };
    samples.iter().flat_map(of)
}

/// The largest total lag of `model`'s group over the samples.
pub fn max_lag(samples: &[Sample], model: &str) -> i64 {
    lags(samples, model).map(|l| l.1.total()).max().unwrap_or(0)
}

/// The highest `VmRSS` sampled of the processes whose name starts with
/// `model`.
pub fn max_rss(samples: &[Sample], model: &str) -> u64 {
    samples
        .iter()
        .flat_map(|s| s.procs.iter().filter(|p| p.name.starts_with(model)))
        .map(|p| p.rss_bytes)
        .max()
        .unwrap_or(0)
}

/// Fairness between partitions while `model`'s group lags: for each
/// partition, the last moment its lag was above zero; the spread between
/// the first and the last partition to catch up, in seconds, over the
/// samples after `from` (seconds). `None` when no partition lagged.
pub fn catch_up_spread(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
    let mut last: Vec<Option<f64>> = Vec::new();
    for (t, l) in lags(samples, model).filter(|l| l.0 >= from) {
        if last.len() < l.partitions.len() {
            last.resize(l.partitions.len(), None);
        }
        for (p, &lag) in l.partitions.iter().enumerate() {
            if lag > 0 {
                last[p] = Some(t);
            }
        }
    }
    let times = last.into_iter().flatten();
    let (lo, hi) = times.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (hi >= lo).then_some(hi - lo)
}

/// At the moment of `model`'s largest total lag, the largest partition's
/// lag over the mean partition's (1.0: evenly spread).
pub fn lag_skew_at_peak(samples: &[Sample], model: &str) -> Option<f64> {
    let (_, peak) = lags(samples, model).max_by_key(|l| l.1.total())?;
    let (n, total) = (peak.partitions.len() as f64, peak.total() as f64);
    let max = peak.partitions.iter().copied().max().unwrap_or(0) as f64;
    (total > 0.0 && n > 0.0).then(|| max / (total / n))
}

/// Seconds from `from` until `model`'s group lag is 0 in a sample (after
/// having been above 0, or at once).
pub fn drained_after(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
    let mut seen_lag = false;
    for s in samples.iter().filter(|s| s.t >= from) {
        let Some(l) = s.lag.iter().find(|l| l.model == model) else {
            continue;
        };
        if l.total() > 0 {
            seen_lag = true;
        } else if seen_lag {
            return Some(s.t - from);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::sampler::ProcPoint;

    fn sample(t: f64, pull: &[i64], rss: u64) -> Sample {
        Sample {
            t,
            procs: vec![ProcPoint {
                name: "pull".into(),
                rss_bytes: rss,
                cpu_seconds: t,
            }],
            lag: vec![LagPoint {
                model: "pull".into(),
                partitions: pull.to_vec(),
            }],
        }
    }

    #[test]
    fn lag_figures_follow_the_samples() {
        let s = vec![
            sample(0.0, &[0, 0, 0], 10),
            sample(1.0, &[10, 20, 30], 30),
            sample(2.0, &[0, 5, 10], 20),
            sample(3.0, &[0, 0, 4], 20),
            sample(4.0, &[0, 0, 0], 20),
        ];
        assert_eq!(max_lag(&s, "pull"), 60);
        assert_eq!(max_lag(&s, "push"), 0);
        assert_eq!(max_rss(&s, "pull"), 30);
        // Partition 0 caught up after 1.0 s, partition 2 after 3.0 s.
        assert_eq!(catch_up_spread(&s, "pull", 0.0), Some(2.0));
        assert_eq!(catch_up_spread(&s, "push", 0.0), None);
        // At the peak (60 over 3 partitions), the largest is 30: 1.5x.
        assert_eq!(lag_skew_at_peak(&s, "pull"), Some(1.5));
    }
}
