//! From the phases of a claims run to figures per experiment and a verdict
//! per claim. Every figure here is read from the phases' stats files and
//! samples; nothing is assumed.

use serde::{Deserialize, Serialize};

use super::ClaimsRun;
use super::experiments::{latency_phase, scale_phase};
use super::phase::{ConsumerRun, PhaseRun};
use super::sampler::{self, Sample};
use super::verdict::{Better, Pair, Verdict, majority, relative, spread, tally};

/// The models, in table order.
pub const MODELS: [&str; 2] = ["pull", "push"];

/// One steady rate, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateFigures {
    /// Offered events/s.
    pub rate: u64,
    /// Events per repeat.
    pub events: u64,
    /// The producer's achieved rate, per repeat.
    pub producer_events_per_second: Vec<f64>,
    /// End-to-end latency, ms.
    pub p50_ms: Pair,
    /// p99, ms.
    pub p99_ms: Pair,
    /// p99.9, ms.
    pub p999_ms: Pair,
    /// Max, ms.
    pub max_ms: Pair,
    /// Consumer CPU from the producer's start to the consumer's exit, per
    /// event, microseconds.
    pub cpu_us_per_event: Pair,
    /// The same CPU per second of that window (cores).
    pub cores: Pair,
}

/// CPU with nothing to consume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleFigures {
    /// The window, seconds (two halves).
    pub seconds: u64,
    /// CPU milliseconds per second, each half.
    pub cpu_ms_per_s: Pair,
    /// The broker's, each half.
    pub broker_cpu_ms_per_s: Vec<f64>,
}

/// A varying load (bursts, a step) or a slow sink, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    /// `burst`, `step`, `slow`.
    pub name: String,
    /// Events per repeat.
    pub events: u64,
    /// The producer's rate per segment, first repeat.
    pub segment_rates: Vec<f64>,
    /// p50, ms.
    pub p50_ms: Pair,
    /// p99, ms.
    pub p99_ms: Pair,
    /// p99.9, ms.
    pub p999_ms: Pair,
    /// Max, ms.
    pub max_ms: Pair,
    /// Largest total lag sampled, events.
    pub max_lag: Pair,
    /// Highest `VmRSS` sampled, MB.
    pub peak_rss_mb: Pair,
    /// Consumer CPU, seconds, producer start to exit.
    pub cpu_s: Pair,
    /// Events committed per second, first message to last commit.
    pub events_per_second: Pair,
    /// Seconds between the first and the last partition to catch up.
    pub catch_up_spread_s: Pair,
    /// At the peak of the lag, the largest partition's lag over the mean.
    pub lag_skew: Pair,
    /// Assignments and revocations beyond the first assignment.
    pub rebalances: Pair,
    /// SQLite commits (batches).
    pub batches: Pair,
}

/// One group size of one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScaleFigures {
    /// Instances.
    pub instances: usize,
    /// The group's events/s: the backlog over the span from the first
    /// instance's assignment to the group's lag reaching 0, per run.
    pub events_per_second: Pair,
    /// Seconds from starting the instances until every one was assigned
    /// partitions.
    pub join_s: Pair,
    /// Seconds from starting the instances until the group's lag was 0.
    pub drain_s: Pair,
    /// Assignments and revocations over the instances beyond one each.
    pub rebalances: Pair,
    /// Events stored per instance, per run, for each model.
    pub per_instance: Vec<(String, Vec<u64>)>,
}

/// The producer with no consumer running.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutageFigures {
    /// Offered rate.
    pub rate: u64,
    /// The producer's rate with no consumer.
    pub producer_events_per_second: f64,
    /// First send to last acknowledgement minus the offered duration, ms.
    pub producer_tail_ms: f64,
    /// Its CPU, seconds.
    pub producer_cpu_s: f64,
    /// The same with both consumers live (latency phases at that rate).
    pub live_producer_events_per_second: Vec<f64>,
    /// Tail with both consumers live.
    pub live_producer_tail_ms: Vec<f64>,
    /// Producer CPU with both consumers live.
    pub live_producer_cpu_s: Vec<f64>,
    /// After the outage: each consumer's drain rate.
    pub drain_events_per_second: Pair,
    /// After the outage: each consumer's largest latency, ms.
    pub max_ms: Pair,
}

/// One line of the claims table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRow {
    /// The claim as commonly stated.
    pub claim: String,
    /// What tested it.
    pub experiment: String,
    /// Pull's figures.
    pub pull: String,
    /// Push's figures.
    pub push: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What the verdict rests on: differences, noise, counts.
    pub basis: String,
    /// The figures whose own verdict differs from the claim's, by verdict
    /// (empty when all agree).
    #[serde(default)]
    pub exceptions: String,
}

/// The verdicts of one claim's figures.
#[derive(Debug, Default)]
struct Votes {
    items: Vec<(String, Verdict)>,
    lines: Vec<String>,
}

impl Votes {
    fn add(&mut self, name: &str, p: &Pair, favours: &str, better: Better) {
        let (v, line) = verdict_line(name, p, favours, better);
        self.items.push((name.to_string(), v));
        self.lines.push(line);
    }

    fn verdicts(&self) -> Vec<Verdict> {
        self.items.iter().map(|i| i.1).collect()
    }

    fn verdict(&self) -> Verdict {
        majority(&self.verdicts())
    }

    /// "does not hold for idle CPU ms/s, 1/s µs/event": the figures that
    /// went another way than the claim's verdict.
    fn exceptions(&self) -> String {
        let overall = self.verdict();
        [Verdict::Holds, Verdict::DoesNotHold, Verdict::NoDifference]
            .into_iter()
            .filter(|&v| v != overall)
            .filter_map(|v| {
                let names: Vec<&str> = self
                    .items
                    .iter()
                    .filter(|i| i.1 == v)
                    .map(|i| i.0.as_str())
                    .collect();
                (!names.is_empty()).then(|| format!("{} for {}", v.text(), names.join(", ")))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn basis(&self) -> String {
        format!("{}; {}", tally(&self.verdicts()), self.lines.join("; "))
    }
}

/// Everything `claims.md` says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// Per steady rate.
    pub latency: Vec<RateFigures>,
    /// Idle.
    pub idle: Option<IdleFigures>,
    /// Bursts.
    pub burst: Option<LoadFigures>,
    /// Step.
    pub step: Option<LoadFigures>,
    /// Slow sink.
    pub slow: Option<LoadFigures>,
    /// Scale-out, per group size.
    pub scale: Vec<ScaleFigures>,
    /// Outage.
    pub outage: Option<OutageFigures>,
    /// The claims table.
    pub claims: Vec<ClaimRow>,
    /// Per phase: name, verification, seconds.
    pub phases: Vec<(String, String, f64)>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn pair_of(runs: &[&PhaseRun], f: impl Fn(&PhaseRun, &ConsumerRun) -> Option<f64>) -> Pair {
    let mut p = Pair::default();
    for run in runs {
        for c in &run.consumers {
            if let Some(v) = f(run, c) {
                match c.model.as_str() {
                    "pull" => p.pull.push(v),
                    "push" => p.push.push(v),
                    _ => {}
                }
            }
        }
    }
    p
}

fn pair_samples(runs: &[&PhaseRun], f: impl Fn(&[Sample], &str, f64) -> Option<f64>) -> Pair {
    let mut p = Pair::default();
    for run in runs {
        if let Some(v) = f(&run.samples, "pull", run.produce_start_s) {
            p.pull.push(v);
        }
        if let Some(v) = f(&run.samples, "push", run.produce_start_s) {
            p.push.push(v);
        }
    }
    p
}

fn load(name: &str, runs: &[&PhaseRun]) -> Option<LoadFigures> {
    let first = runs.first()?;
    Some(LoadFigures {
        name: name.into(),
        events: first.producer.events_acknowledged,
        segment_rates: first.segments.iter().map(|s| s.events_per_second).collect(),
        p50_ms: pair_of(runs, |_, c| Some(ms(c.stats.latency_us.p50))),
        p99_ms: pair_of(runs, |_, c| Some(ms(c.stats.latency_us.p99))),
        p999_ms: pair_of(runs, |_, c| Some(ms(c.stats.latency_us.p999))),
        max_ms: pair_of(runs, |_, c| Some(ms(c.stats.latency_us.max))),
        max_lag: pair_samples(runs, |s, m, _| Some(sampler::max_lag(s, m) as f64)),
        peak_rss_mb: pair_samples(runs, |s, m, _| Some(sampler::max_rss(s, m) as f64 / 1e6)),
        cpu_s: pair_of(runs, |_, c| c.active_cpu_seconds),
        events_per_second: pair_of(runs, |_, c| Some(c.stats.events_per_second)),
        catch_up_spread_s: pair_samples(runs, sampler::catch_up_spread),
        lag_skew: pair_samples(runs, |s, m, _| sampler::lag_skew_at_peak(s, m)),
        rebalances: pair_of(runs, |_, c| {
            Some((c.assignments + c.revocations).saturating_sub(1) as f64)
        }),
        batches: pair_of(runs, |_, c| Some(c.stats.batches as f64)),
    })
}

/// Seconds from `from` until `model`'s group lag is 0 in a sample (after
/// having been above 0, or at once).
fn drained_after(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
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

    // Steady rates.
    let mut rates: Vec<u64> = r
        .phases
        .iter()
        .filter_map(|p| latency_phase(&p.name).map(|x| x.1))
        .collect();
    rates.sort_unstable();
    rates.dedup();
    for rate in rates {
        let runs: Vec<&PhaseRun> = r
            .phases
            .iter()
            .filter(|p| latency_phase(&p.name).is_some_and(|x| x.1 == rate))
            .collect();
        let events = runs.first().map_or(0, |p| p.producer.events_acknowledged);
        a.latency.push(RateFigures {
            rate,
            events,
            producer_events_per_second: runs.iter().map(|p| p.producer.events_per_second).collect(),
            p50_ms: pair_of(&runs, |_, c| Some(ms(c.stats.latency_us.p50))),
            p99_ms: pair_of(&runs, |_, c| Some(ms(c.stats.latency_us.p99))),
            p999_ms: pair_of(&runs, |_, c| Some(ms(c.stats.latency_us.p999))),
            max_ms: pair_of(&runs, |_, c| Some(ms(c.stats.latency_us.max))),
            cpu_us_per_event: pair_of(&runs, |_, c| {
                let n = c.stats.events_committed.max(1) as f64;
                c.active_cpu_seconds.map(|s| s * 1e6 / n)
            }),
            cores: pair_of(&runs, |_, c| {
                c.active_cpu_seconds
                    .zip(c.active_seconds)
                    .filter(|(_, t)| *t > 0.0)
                    .map(|(s, t)| s / t)
            }),
        });
    }

    // Idle.
    if let Some(p) = r
        .phases
        .iter()
        .find(|p| p.name == "idle" && p.idle_window_s > 0)
    {
        let half = p.idle_window_s as f64 / 2.0;
        let mut cpu = Pair::default();
        for c in &p.consumers {
            if let Some(h) = c.idle_cpu_seconds {
                let v: Vec<f64> = h.iter().map(|x| x * 1e3 / half).collect();
                match c.model.as_str() {
                    "pull" => cpu.pull.extend(v),
                    _ => cpu.push.extend(v),
                }
            }
        }
        a.idle = Some(IdleFigures {
            seconds: p.idle_window_s,
            cpu_ms_per_s: cpu,
            broker_cpu_ms_per_s: p
                .broker_idle_cpu_seconds
                .map(|h| h.iter().map(|x| x * 1e3 / half).collect())
                .unwrap_or_default(),
        });
    }

    let runs_named = |prefix: &str| -> Vec<&PhaseRun> {
        r.phases
            .iter()
            .filter(|p| {
                p.name
                    .strip_prefix(prefix)
                    .and_then(|x| x.strip_prefix('-'))
                    .is_some_and(|x| x.parse::<u64>().is_ok())
            })
            .collect()
    };
    a.burst = load("burst", &runs_named("burst"));
    a.step = load("step", &runs_named("step"));
    a.slow = load("slow", &runs_named("slow"));

    // Scale-out.
    let mut sizes: Vec<usize> = r
        .phases
        .iter()
        .filter_map(|p| scale_phase(&p.name).map(|x| x.1))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    for k in sizes {
        let runs: Vec<&PhaseRun> = r
            .phases
            .iter()
            .filter(|p| scale_phase(&p.name).is_some_and(|x| x.1 == k))
            .collect();
        let mut f = ScaleFigures {
            instances: k,
            ..Default::default()
        };
        for run in &runs {
            let Some((model, _)) = scale_phase(&run.name) else {
                continue;
            };
            // The group's span: from the first instance's assignment (it
            // can consume from then on) until the group's lag was 0.
            let first_ready = run
                .consumers
                .iter()
                .filter_map(|c| c.ready_s)
                .fold(f64::INFINITY, f64::min);
            let drain = drained_after(&run.samples, model, run.consumers_start_s);
            let longest = run
                .consumers
                .iter()
                .map(|c| c.stats.wall_seconds)
                .fold(0.0, f64::max);
            let span = match drain {
                Some(d) if first_ready.is_finite() && d > first_ready => d - first_ready,
                _ => longest,
            };
            let eps = if span > 0.0 {
                run.producer.events_acknowledged as f64 / span
            } else {
                0.0
            };
            let join = run
                .consumers
                .iter()
                .map(|c| c.ready_s.unwrap_or(f64::NAN))
                .fold(0.0, f64::max);
            let rebalances = run
                .consumers
                .iter()
                .map(|c| (c.assignments + c.revocations).saturating_sub(1))
                .sum::<u64>() as f64;
            let (v, j, d, b) = match model {
                "pull" => (
                    &mut f.events_per_second.pull,
                    &mut f.join_s.pull,
                    &mut f.drain_s.pull,
                    &mut f.rebalances.pull,
                ),
                _ => (
                    &mut f.events_per_second.push,
                    &mut f.join_s.push,
                    &mut f.drain_s.push,
                    &mut f.rebalances.push,
                ),
            };
            v.push(eps);
            j.push(join);
            if let Some(d0) = drain {
                d.push(d0);
            }
            b.push(rebalances);
            f.per_instance.push((
                run.name.clone(),
                run.consumers
                    .iter()
                    .map(|c| c.stats.events_committed)
                    .collect(),
            ));
        }
        a.scale.push(f);
    }

    // Outage.
    if let Some(p) = r.phases.iter().find(|p| p.name == "outage") {
        let rate = p.segments.first().map_or(0, |s| s.rate);
        let tail = |run: &PhaseRun| {
            let s = run.segments.first();
            s.map_or(0.0, |s| {
                (s.wall_seconds - s.count as f64 / s.rate.max(1) as f64) * 1e3
            })
        };
        let live: Vec<&PhaseRun> = r
            .phases
            .iter()
            .filter(|x| latency_phase(&x.name).is_some_and(|l| l.1 == rate))
            .collect();
        a.outage = Some(OutageFigures {
            rate,
            producer_events_per_second: p.producer.events_per_second,
            producer_tail_ms: tail(p),
            producer_cpu_s: p.producer.cpu_seconds,
            live_producer_events_per_second: live
                .iter()
                .map(|x| x.producer.events_per_second)
                .collect(),
            live_producer_tail_ms: live.iter().map(|x| tail(x)).collect(),
            live_producer_cpu_s: live.iter().map(|x| x.producer.cpu_seconds).collect(),
            drain_events_per_second: pair_of(&[p], |_, c| Some(c.stats.events_per_second)),
            max_ms: pair_of(&[p], |_, c| Some(ms(c.stats.latency_us.max))),
        });
    }

    a.claims = claims(&a);
    a
}

fn pct(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

fn noise_text(p: &Pair) -> String {
    match p.noise() {
        Some(n) => format!("spread {}", pct(n)),
        None => "no repeat".into(),
    }
}

/// `v` with few significant digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A rate as `1/s`, `20k/s`.
pub fn rate_text(rate: u64) -> String {
    if rate >= 1000 && rate % 1000 == 0 {
        format!("{}k/s", rate / 1000)
    } else {
        format!("{rate}/s")
    }
}

fn verdict_line(name: &str, p: &Pair, favours: &str, better: Better) -> (Verdict, String) {
    let v = p.verdict(favours, better);
    (
        v,
        format!(
            "{name}: pull {} vs push {}, difference {} ({}) → {}",
            num(p.pull_mean()),
            num(p.push_mean()),
            pct(p.difference()),
            noise_text(p),
            v.text()
        ),
    )
}

fn claims(a: &Analysis) -> Vec<ClaimRow> {
    let mut rows = Vec::new();

    // 1. Latency.
    if !a.latency.is_empty() {
        let mut votes = Votes::default();
        for f in &a.latency {
            for (name, p) in [("p50", &f.p50_ms), ("p99", &f.p99_ms)] {
                votes.add(
                    &format!("{} {name} ms", rate_text(f.rate)),
                    p,
                    "push",
                    Better::Lower,
                );
            }
        }
        let figures = |pick: fn(&Pair) -> f64| {
            a.latency
                .iter()
                .map(|f| {
                    format!(
                        "{} {}/{}",
                        rate_text(f.rate),
                        num(pick(&f.p50_ms)),
                        num(pick(&f.p99_ms))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(ClaimRow {
            claim: "Push has lower latency (no polling); pull's is higher".into(),
            experiment:
                "steady rates, both consumers on the same events; p50/p99 ms (mean of repeats)"
                    .into(),
            pull: figures(Pair::pull_mean),
            push: figures(Pair::push_mean),
            verdict: votes.verdict(),
            exceptions: votes.exceptions(),
            basis: votes.basis(),
        });
    }

    // 2. CPU.
    if !a.latency.is_empty() || a.idle.is_some() {
        let mut votes = Votes::default();
        let mut pull = Vec::new();
        let mut push = Vec::new();
        if let Some(i) = &a.idle {
            votes.add("idle CPU ms/s", &i.cpu_ms_per_s, "push", Better::Lower);
            pull.push(format!("idle {} ms/s", num(i.cpu_ms_per_s.pull_mean())));
            push.push(format!("idle {} ms/s", num(i.cpu_ms_per_s.push_mean())));
        }
        for f in &a.latency {
            votes.add(
                &format!("{} µs/event", rate_text(f.rate)),
                &f.cpu_us_per_event,
                "push",
                Better::Lower,
            );
            pull.push(format!(
                "{} {} µs/ev",
                rate_text(f.rate),
                num(f.cpu_us_per_event.pull_mean())
            ));
            push.push(format!(
                "{} {} µs/ev",
                rate_text(f.rate),
                num(f.cpu_us_per_event.push_mean())
            ));
        }
        rows.push(ClaimRow {
            claim: "Pull uses more CPU (polling); push less (event-driven)".into(),
            experiment: "CPU with nothing to consume; CPU per event at each steady rate (producer start to consumer exit)".into(),
            pull: pull.join(", "),
            push: push.join(", "),
            verdict: votes.verdict(),
            exceptions: votes.exceptions(),
            basis: votes.basis(),
        });
    }

    // 3. Variable rates.
    let varying: Vec<&LoadFigures> = [&a.burst, &a.step].into_iter().flatten().collect();
    if !varying.is_empty() {
        let mut votes = Votes::default();
        let mut pull = Vec::new();
        let mut push = Vec::new();
        for f in varying {
            for (name, p) in [
                ("p99 ms", &f.p99_ms),
                ("max lag", &f.max_lag),
                ("peak RSS MB", &f.peak_rss_mb),
            ] {
                votes.add(&format!("{} {name}", f.name), p, "pull", Better::Lower);
            }
            pull.push(format!(
                "{}: p99 {} ms, lag ≤ {}, RSS ≤ {} MB",
                f.name,
                num(f.p99_ms.pull_mean()),
                num(f.max_lag.pull_mean()),
                num(f.peak_rss_mb.pull_mean())
            ));
            push.push(format!(
                "{}: p99 {} ms, lag ≤ {}, RSS ≤ {} MB",
                f.name,
                num(f.p99_ms.push_mean()),
                num(f.max_lag.push_mean()),
                num(f.peak_rss_mb.push_mean())
            ));
        }
        rows.push(ClaimRow {
            claim: "Pull is better for variable rates, push for consistent rates".into(),
            experiment:
                "bursts, and a step up and down; latency, lag, memory (steady rates: claim 1)"
                    .into(),
            pull: pull.join("; "),
            push: push.join("; "),
            verdict: votes.verdict(),
            exceptions: votes.exceptions(),
            basis: votes.basis(),
        });
    }

    // 4. Load control.
    if let Some(f) = &a.slow {
        let mut votes = Votes::default();
        for (name, p) in [
            ("peak RSS MB", &f.peak_rss_mb),
            ("max lag", &f.max_lag),
            ("partition catch-up spread s", &f.catch_up_spread_s),
            ("rebalances", &f.rebalances),
        ] {
            votes.add(name, p, "pull", Better::Lower);
        }
        let text = |m: fn(&Pair) -> f64| {
            format!(
                "RSS ≤ {} MB, lag ≤ {}, catch-up spread {} s, skew {}×, {} rebalances, {} ev/s",
                num(m(&f.peak_rss_mb)),
                num(m(&f.max_lag)),
                num(m(&f.catch_up_spread_s)),
                num(m(&f.lag_skew)),
                num(m(&f.rebalances)),
                num(m(&f.events_per_second))
            )
        };
        rows.push(ClaimRow {
            claim: "Push is hard to manage under load; pull gives load control".into(),
            experiment: "a slow sink (one SQLite transaction per event) under a rate it cannot keep: memory, lag, fairness between partitions, rebalances".into(),
            pull: text(Pair::pull_mean),
            push: text(Pair::push_mean),
            verdict: votes.verdict(),
            exceptions: votes.exceptions(),
            basis: votes.basis(),
        });
    }

    // 5. Scale-out.
    if let Some(one) = a.scale.iter().find(|s| s.instances == 1) {
        let mut votes = Votes::default();
        let mut pull = Vec::new();
        let mut push = Vec::new();
        for s in a.scale.iter().filter(|s| s.instances > 1) {
            // Each run of k instances against each run of one: the spread
            // of the single-instance runs carries into the ratios.
            let ratio = |k: &[f64], one: &[f64]| -> Vec<f64> {
                k.iter()
                    .flat_map(|x| one.iter().map(move |o| if *o > 0.0 { x / o } else { 0.0 }))
                    .collect()
            };
            let p = Pair {
                pull: ratio(&s.events_per_second.pull, &one.events_per_second.pull),
                push: ratio(&s.events_per_second.push, &one.events_per_second.push),
            };
            votes.add(
                &format!("{} instances ÷ 1, group events/s", s.instances),
                &p,
                "pull",
                Better::Higher,
            );
            // Join times are reported, not judged: one run per group size
            // gives them no measured noise.
            pull.push(format!(
                "×{}: {} ev/s ({}× of 1), join {} s",
                s.instances,
                num(s.events_per_second.pull_mean()),
                num(p.pull_mean()),
                num(s.join_s.pull_mean())
            ));
            push.push(format!(
                "×{}: {} ev/s ({}× of 1), join {} s",
                s.instances,
                num(s.events_per_second.push_mean()),
                num(p.push_mean()),
                num(s.join_s.push_mean())
            ));
        }
        pull.insert(
            0,
            format!("×1: {} ev/s", num(one.events_per_second.pull_mean())),
        );
        push.insert(
            0,
            format!("×1: {} ev/s", num(one.events_per_second.push_mean())),
        );
        votes.lines.push(format!(
            "single-instance spread: pull {}, push {}",
            spread(&one.events_per_second.pull).map_or("–".into(), pct),
            spread(&one.events_per_second.push).map_or("–".into(), pct)
        ));
        rows.push(ClaimRow {
            claim: "Pull scales to many consumers more easily".into(),
            experiment: "1, 2, 3 instances of one model in one group, each with its own database (ledger for the union), draining a backlog".into(),
            pull: pull.join("; "),
            push: push.join("; "),
            verdict: votes.verdict(),
            exceptions: votes.exceptions(),
            basis: votes.basis(),
        });
    }

    // 6. Coupling.
    if let Some(o) = &a.outage {
        let live = &o.live_producer_events_per_second;
        let live_mean = super::verdict::mean(live);
        // The noise of the paced producer's rate: the spread of the share
        // of the offered rate it achieved, over the steady phases from
        // 2k/s up (below, its first event's handshake weighs on the share).
        let shares: Vec<f64> = a
            .latency
            .iter()
            .filter(|f| f.rate >= 2_000)
            .flat_map(|f| {
                f.producer_events_per_second
                    .iter()
                    .map(move |x| x / f.rate as f64)
            })
            .collect();
        let noise = spread(&shares);
        let diff = relative(o.producer_events_per_second, live_mean);
        // With no live phase at that rate there is nothing to compare
        // with: no verdict either way.
        let unaffected = !live.is_empty()
            && (o.producer_events_per_second >= live_mean || diff <= noise.unwrap_or(0.0));
        let verdict = if unaffected {
            Verdict::DoesNotHold
        } else {
            Verdict::NoDifference
        };
        let text = |drain: f64, max: f64| {
            format!(
                "producer {} ev/s with no consumer (live: {}); drained after: {} ev/s, oldest event waited {} s",
                num(o.producer_events_per_second),
                live.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", "),
                num(drain),
                num(max / 1e3)
            )
        };
        rows.push(ClaimRow {
            claim: "Push couples producer and consumer more tightly".into(),
            experiment: format!(
                "the producer at {} with no consumer running (both start after it), against the same load with both live",
                rate_text(o.rate)
            ),
            pull: text(o.drain_events_per_second.pull_mean(), o.max_ms.pull_mean()),
            push: text(o.drain_events_per_second.push_mean(), o.max_ms.push_mean()),
            verdict,
            basis: format!(
                "the producer made {} ev/s with both consumers down, {} with both live: difference {}, against a spread of {} in the share of the offered rate the paced producer achieved over the steady phases from 2k/s up; its acknowledgement tail {} ms down, {} ms live; its CPU {} s down, {} s live. The producer knows neither consumer: Kafka is between them, and the same holds for either model",
                num(o.producer_events_per_second),
                num(live_mean),
                pct(diff),
                noise.map_or("–".into(), pct),
                num(o.producer_tail_ms),
                o.live_producer_tail_ms.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", "),
                num(o.producer_cpu_s),
                o.live_producer_cpu_s.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", "),
            ),
            exceptions: String::new(),
        });
    }
    rows
}
