//! The claims table: each claim's figures voted into a verdict, with what
//! the verdict rests on.

use super::text::{joined, noise_text, num, pct, rate_text, values};
use super::{Analysis, ClaimRow, LoadFigures, RateFigures};
use crate::claims::verdict::{Better, Pair, Verdict, majority, mean, relative, spread, tally};

/// The row of a claim voted on by its `figures` (name, both models'
/// values), each judged alone; `text` gives the claim's figures for one
/// model.
fn judged(
    claim: &str,
    experiment: &str,
    (favours, better): (&str, Better),
    figures: Vec<(String, &Pair)>,
    text: impl Fn(&str) -> String,
) -> ClaimRow {
    let verdicts: Vec<Verdict> = figures
        .iter()
        .map(|f| f.1.verdict(favours, better))
        .collect();
    let verdict = majority(&verdicts);
    let lines = figures.iter().zip(&verdicts).map(|((name, p), v)| {
        format!(
            "{name}: pull {} vs push {}, difference {} ({}) → {}",
            num(p.mean("pull")),
            num(p.mean("push")),
            pct(p.difference()),
            noise_text(p),
            v.text()
        )
    });
    // "does not hold for idle CPU ms/s, 1/s µs/event": the figures that
    // went another way than the claim's verdict.
    let exceptions = Verdict::ALL
        .into_iter()
        .filter(|&v| v != verdict)
        .filter_map(|v| {
            let names = figures.iter().zip(&verdicts).filter(|f| *f.1 == v);
            let names: Vec<&str> = names.map(|f| f.0.0.as_str()).collect();
            (!names.is_empty()).then(|| format!("{} for {}", v.text(), names.join(", ")))
        });
    ClaimRow {
        claim: claim.into(),
        experiment: experiment.into(),
        pull: text("pull"),
        push: text("push"),
        verdict,
        exceptions: joined(exceptions, "; "),
        basis: format!("{}; {}", tally(&verdicts), joined(lines, "; ")),
    }
}

pub(super) fn claims(a: &Analysis) -> Vec<ClaimRow> {
    let mut rows = Vec::new();
    let rate = |f: &RateFigures| rate_text(f.rate);
    if !a.latency.is_empty() {
        let figures = a.latency.iter().flat_map(|f| {
            let name = |n| format!("{} {n} ms", rate(f));
            [(name("p50"), &f.p50_ms), (name("p99"), &f.p99_ms)]
        });
        rows.push(judged(
            "Push has lower latency (no polling); pull's is higher",
            "steady rates, both consumers on the same events; p50/p99 ms (mean of repeats)",
            ("push", Better::Lower),
            figures.collect(),
            |m| {
                let f = |f| {
                    format!(
                        "{} {}/{}",
                        rate(f),
                        num(f.p50_ms.mean(m)),
                        num(f.p99_ms.mean(m))
                    )
                };
                joined(a.latency.iter().map(f), ", ")
            },
        ));
    }
    if !a.latency.is_empty() || a.idle.is_some() {
        let idle = a
            .idle
            .iter()
            .map(|i| ("idle CPU ms/s".into(), &i.cpu_ms_per_s));
        let per_event = a
            .latency
            .iter()
            .map(|f| (format!("{} µs/event", rate(f)), &f.cpu_us_per_event));
        rows.push(judged(
            "Pull uses more CPU (polling); push less (event-driven)",
            "CPU with nothing to consume; CPU per event at each steady rate (producer start to consumer exit)",
            ("push", Better::Lower),
            idle.chain(per_event).collect(),
            |m| {
                let idle = a.idle.iter().map(|i| format!("idle {} ms/s", num(i.cpu_ms_per_s.mean(m))));
                let per_event = a.latency.iter().map(|f| format!("{} {} µs/ev", rate(f), num(f.cpu_us_per_event.mean(m))));
                joined(idle.chain(per_event), ", ")
            },
        ));
    }
    let varying: Vec<&LoadFigures> = [&a.burst, &a.step].into_iter().flatten().collect();
    if !varying.is_empty() {
        let figures = varying.iter().flat_map(|f| {
            let name = |n| format!("{} {n}", f.name);
            [
                (name("p99 ms"), &f.p99_ms),
                (name("max lag"), &f.max_lag),
                (name("peak RSS MB"), &f.peak_rss_mb),
            ]
        });
        rows.push(judged(
            "Pull is better for variable rates, push for consistent rates",
            "bursts, and a step up and down; latency, lag, memory (steady rates: claim 1)",
            ("pull", Better::Lower),
            figures.collect(),
            |m| {
                let f = |f: &&LoadFigures| {
                    let (p99, lag, rss) = (
                        num(f.p99_ms.mean(m)),
                        num(f.max_lag.mean(m)),
                        num(f.peak_rss_mb.mean(m)),
                    );
                    format!("{}: p99 {p99} ms, lag ≤ {lag}, RSS ≤ {rss} MB", f.name)
                };
                joined(varying.iter().map(f), "; ")
            },
        ));
    }
    if let Some(f) = &a.slow {
        let figures = [
            ("peak RSS MB", &f.peak_rss_mb),
            ("max lag", &f.max_lag),
            ("partition catch-up spread s", &f.catch_up_spread_s),
            ("rebalances", &f.rebalances),
        ];
        rows.push(judged(
            "Push is hard to manage under load; pull gives load control",
            "a slow sink (one SQLite transaction per event) under a rate it cannot keep: memory, lag, fairness between partitions, rebalances",
            ("pull", Better::Lower),
            figures.map(|(n, p)| (n.to_string(), p)).to_vec(),
            |m| format!(
                "RSS ≤ {} MB, lag ≤ {}, catch-up spread {} s, skew {}×, {} rebalances, {} ev/s",
                num(f.peak_rss_mb.mean(m)),
                num(f.max_lag.mean(m)),
                num(f.catch_up_spread_s.mean(m)),
                num(f.lag_skew.mean(m)),
                num(f.rebalances.mean(m)),
                num(f.events_per_second.mean(m))
            ),
        ));
    }
    if let Some(one) = a.scale.iter().find(|s| s.instances == 1) {
        // Each run of k instances against each run of one: the spread of
        // the single-instance runs carries into the ratios.
        let ratio = |k: &Pair, m| -> Vec<f64> {
            let one = one.events_per_second.values(m);
            let x = k.values(m).iter();
            x.flat_map(|x| one.iter().map(move |o| if *o > 0.0 { x / o } else { 0.0 }))
                .collect()
        };
        let ratios: Vec<_> = a
            .scale
            .iter()
            .filter(|s| s.instances > 1)
            .map(|s| {
                let p = &s.events_per_second;
                (
                    s,
                    Pair {
                        pull: ratio(p, "pull"),
                        push: ratio(p, "push"),
                    },
                )
            })
            .collect();
        let figures = ratios
            .iter()
            .map(|(s, p)| (format!("{} instances ÷ 1, group events/s", s.instances), p));
        let mut row = judged(
            "Pull scales to many consumers more easily",
            "1, 2, 3 instances of one model in one group, each with its own database (ledger for the union), draining a backlog",
            ("pull", Better::Higher),
            figures.collect(),
            |m| {
                // Join times are reported, not judged: one run per group
                // size gives them no measured noise.
                let k = ratios.iter().map(|(s, p)| {
                    let (eps, ratio, join) = (
                        num(s.events_per_second.mean(m)),
                        num(p.mean(m)),
                        num(s.join_s.mean(m)),
                    );
                    format!(
                        "×{}: {eps} ev/s ({ratio}× of 1), join {join} s",
                        s.instances
                    )
                });
                let one = format!("×1: {} ev/s", num(one.events_per_second.mean(m)));
                joined(std::iter::once(one).chain(k), "; ")
            },
        );
        let one = |m| spread(one.events_per_second.values(m)).map_or("–".into(), pct);
        row.basis += &format!(
            "; single-instance spread: pull {}, push {}",
            one("pull"),
            one("push")
        );
        rows.push(row);
    }
    if let Some(o) = &a.outage {
        let live = &o.live_producer_events_per_second;
        let live_mean = mean(live);
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
            pull: text(o.drain_events_per_second.mean("pull"), o.max_ms.mean("pull")),
            push: text(o.drain_events_per_second.mean("push"), o.max_ms.mean("push")),
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
