//! The claims table: each claim's figures voted into a verdict, with what
//! the verdict rests on.

use super::text::{noise_text, num, pct, rate_text, values};
use super::{Analysis, ClaimRow, LoadFigures, RateFigures};
use crate::claims::verdict::{Better, Pair, Verdict, majority, relative, spread, tally};

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

    /// The claim's row: `text` gives its figures for one model's means.
    fn row(&self, claim: &str, experiment: &str, text: impl Fn(Mean) -> String) -> ClaimRow {
        ClaimRow {
            claim: claim.into(),
            experiment: experiment.into(),
            pull: text(Pair::pull_mean),
            push: text(Pair::push_mean),
            verdict: self.verdict(),
            exceptions: self.exceptions(),
            basis: self.basis(),
        }
    }
}

/// [`Pair::pull_mean`] or [`Pair::push_mean`].
type Mean = fn(&Pair) -> f64;

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

pub(super) fn claims(a: &Analysis) -> Vec<ClaimRow> {
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
        rows.push(votes.row(
            "Push has lower latency (no polling); pull's is higher",
            "steady rates, both consumers on the same events; p50/p99 ms (mean of repeats)",
            |m| {
                let rate = |f: &RateFigures| {
                    let (p50, p99) = (num(m(&f.p50_ms)), num(m(&f.p99_ms)));
                    format!("{} {p50}/{p99}", rate_text(f.rate))
                };
                a.latency.iter().map(rate).collect::<Vec<_>>().join(", ")
            },
        ));
    }

    // 2. CPU.
    if !a.latency.is_empty() || a.idle.is_some() {
        let mut votes = Votes::default();
        if let Some(i) = &a.idle {
            votes.add("idle CPU ms/s", &i.cpu_ms_per_s, "push", Better::Lower);
        }
        for f in &a.latency {
            let name = format!("{} µs/event", rate_text(f.rate));
            votes.add(&name, &f.cpu_us_per_event, "push", Better::Lower);
        }
        rows.push(votes.row(
            "Pull uses more CPU (polling); push less (event-driven)",
            "CPU with nothing to consume; CPU per event at each steady rate (producer start to consumer exit)",
            |m| {
                let idle = a.idle.iter().map(|i| format!("idle {} ms/s", num(m(&i.cpu_ms_per_s))));
                let per_event = a.latency.iter().map(|f| {
                    format!("{} {} µs/ev", rate_text(f.rate), num(m(&f.cpu_us_per_event)))
                });
                idle.chain(per_event).collect::<Vec<_>>().join(", ")
            },
        ));
    }

    // 3. Variable rates.
    let varying: Vec<&LoadFigures> = [&a.burst, &a.step].into_iter().flatten().collect();
    if !varying.is_empty() {
        let mut votes = Votes::default();
        for f in &varying {
            for (name, p) in [
                ("p99 ms", &f.p99_ms),
                ("max lag", &f.max_lag),
                ("peak RSS MB", &f.peak_rss_mb),
            ] {
                votes.add(&format!("{} {name}", f.name), p, "pull", Better::Lower);
            }
        }
        rows.push(votes.row(
            "Pull is better for variable rates, push for consistent rates",
            "bursts, and a step up and down; latency, lag, memory (steady rates: claim 1)",
            |m| {
                let load = |f: &&LoadFigures| {
                    let (p99, lag, rss) = (
                        num(m(&f.p99_ms)),
                        num(m(&f.max_lag)),
                        num(m(&f.peak_rss_mb)),
                    );
                    format!("{}: p99 {p99} ms, lag ≤ {lag}, RSS ≤ {rss} MB", f.name)
                };
                varying.iter().map(load).collect::<Vec<_>>().join("; ")
            },
        ));
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
        rows.push(votes.row(
            "Push is hard to manage under load; pull gives load control",
            "a slow sink (one SQLite transaction per event) under a rate it cannot keep: memory, lag, fairness between partitions, rebalances",
            |m| format!(
                "RSS ≤ {} MB, lag ≤ {}, catch-up spread {} s, skew {}×, {} rebalances, {} ev/s",
                num(m(&f.peak_rss_mb)),
                num(m(&f.max_lag)),
                num(m(&f.catch_up_spread_s)),
                num(m(&f.lag_skew)),
                num(m(&f.rebalances)),
                num(m(&f.events_per_second))
            ),
        ));
    }

    // 5. Scale-out.
    if let Some(one) = a.scale.iter().find(|s| s.instances == 1) {
        let mut votes = Votes::default();
        let mut ratios = Vec::new();
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
            ratios.push((s, p));
        }
        votes.lines.push(format!(
            "single-instance spread: pull {}, push {}",
            spread(&one.events_per_second.pull).map_or("–".into(), pct),
            spread(&one.events_per_second.push).map_or("–".into(), pct)
        ));
        rows.push(votes.row(
            "Pull scales to many consumers more easily",
            "1, 2, 3 instances of one model in one group, each with its own database (ledger for the union), draining a backlog",
            |m| {
                // Join times are reported, not judged: one run per group
                // size gives them no measured noise.
                let k = ratios.iter().map(|(s, p)| {
                    let (eps, ratio, join) = (num(m(&s.events_per_second)), num(m(p)), num(m(&s.join_s)));
                    format!("×{}: {eps} ev/s ({ratio}× of 1), join {join} s", s.instances)
                });
                let one = format!("×1: {} ev/s", num(m(&one.events_per_second)));
                std::iter::once(one).chain(k).collect::<Vec<_>>().join("; ")
            },
        ));
    }

    // 6. Coupling.
    if let Some(o) = &a.outage {
        let live = &o.live_producer_events_per_second;
        let live_mean = crate::claims::verdict::mean(live);
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
                values(live),
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
                values(&o.live_producer_tail_ms),
                num(o.producer_cpu_s),
                values(&o.live_producer_cpu_s),
            ),
            exceptions: String::new(),
        });
    }
    rows
}
