//! The claims table: each claim's figures voted into a verdict, with what
//! the verdict rests on.

use super::{Analysis, ClaimRow, LoadFigures, RateFigures, joined, num, pct, rate_text, values};
use crate::claims::verdict::{Better, Pair, Verdict, majority, mean, relative, spread, tally};

/// A part of a claim's pull and push cells: each `#` in the text stands
/// for the next figure's mean; the figures with a name vote.
type Part<'a> = (String, Vec<(String, &'a Pair)>);

/// The row of a claim voted on by the named figures of its `parts`, each
/// judged alone; the cells are the parts joined with `sep`.
fn judged(
    claim: &str,
    experiment: &str,
    (favours, better): (&str, Better),
    sep: &str,
    parts: &[Part],
) -> ClaimRow {
    let figures = parts.iter().flat_map(|p| &p.1).filter(|f| !f.0.is_empty());
    let figures: Vec<&(String, &Pair)> = figures.collect();
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
            p.noise()
                .map_or("no repeat".into(), |n| format!("spread {}", pct(n))),
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
    let cell = |m| {
        let fill = |(text, figures): &Part| {
            let mut pieces = text.split('#');
            let first = pieces.next().unwrap_or_default().to_string();
            pieces
                .zip(figures)
                .fold(first, |s, (piece, f)| s + &num(f.1.mean(m)) + piece)
        };
        joined(parts.iter().map(fill), sep)
    };
    ClaimRow {
        claim: claim.into(),
        experiment: experiment.into(),
        pull: cell("pull"),
        push: cell("push"),
        verdict,
        exceptions: joined(exceptions, "; "),
        basis: format!("{}; {}", tally(&verdicts), joined(lines, "; ")),
    }
}

pub(super) fn claims(a: &Analysis) -> Vec<ClaimRow> {
    let mut rows = Vec::new();
    let (push_lower, pull_lower) = (("push", Better::Lower), ("pull", Better::Lower));
    let rate = |f: &RateFigures| rate_text(f.rate);
    let shown = |p| (String::new(), p);
    if !a.latency.is_empty() {
        let parts = a.latency.iter().map(|f| {
            let name = |n| format!("{} {n} ms", rate(f));
            let figures = vec![(name("p50"), &f.p50_ms), (name("p99"), &f.p99_ms)];
            (format!("{} #/#", rate(f)), figures)
        });
        rows.push(judged(
            "Push has lower latency (no polling); pull's is higher",
            "steady rates, both consumers on the same events; p50/p99 ms (mean of repeats)",
            push_lower,
            ", ",
            &parts.collect::<Vec<_>>(),
        ));
    }
    if !a.latency.is_empty() || a.idle.is_some() {
        let idle = a.idle.iter().map(|i| {
            let figures = vec![("idle CPU ms/s".into(), &i.cpu_ms_per_s)];
            ("idle # ms/s".to_string(), figures)
        });
        let per_event = a.latency.iter().map(|f| {
            let figures = vec![(format!("{} µs/event", rate(f)), &f.cpu_us_per_event)];
            (format!("{} # µs/ev", rate(f)), figures)
        });
        rows.push(judged(
            "Pull uses more CPU (polling); push less (event-driven)",
            "CPU with nothing to consume; CPU per event at each steady rate \
             (producer start to consumer exit)",
            push_lower,
            ", ",
            &idle.chain(per_event).collect::<Vec<_>>(),
        ));
    }
    let varying: Vec<&LoadFigures> = [&a.burst, &a.step].into_iter().flatten().collect();
    if !varying.is_empty() {
        let parts = varying.iter().map(|f| {
            let name = |n| format!("{} {n}", f.name);
            let figures = vec![
                (name("p99 ms"), &f.p99_ms),
                (name("max lag"), &f.max_lag),
                (name("peak RSS MB"), &f.peak_rss_mb),
            ];
            (
                format!("{}: p99 # ms, lag ≤ #, RSS ≤ # MB", f.name),
                figures,
            )
        });
        rows.push(judged(
            "Pull is better for variable rates, push for consistent rates",
            "bursts, and a step up and down; latency, lag, memory (steady rates: claim 1)",
            pull_lower,
            "; ",
            &parts.collect::<Vec<_>>(),
        ));
    }
    if let Some(f) = &a.slow {
        let figures = vec![
            ("peak RSS MB".into(), &f.peak_rss_mb),
            ("max lag".into(), &f.max_lag),
            ("partition catch-up spread s".into(), &f.catch_up_spread_s),
            shown(&f.lag_skew),
            ("rebalances".into(), &f.rebalances),
            shown(&f.events_per_second),
        ];
        let text = "RSS ≤ # MB, lag ≤ #, catch-up spread # s, skew #×, # rebalances, # ev/s";
        rows.push(judged(
            "Push is hard to manage under load; pull gives load control",
            "a slow sink (one SQLite transaction per event) under a rate it cannot keep: memory, \
             lag, fairness between partitions, rebalances",
            pull_lower,
            "",
            &[(text.to_string(), figures)],
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
        let scaled: Vec<_> = a.scale.iter().filter(|s| s.instances > 1).collect();
        let ratios: Vec<Pair> = scaled
            .iter()
            .map(|s| {
                let p = &s.events_per_second;
                Pair {
                    pull: ratio(p, "pull"),
                    push: ratio(p, "push"),
                }
            })
            .collect();
        // Join times are reported, not judged: one run per group size
        // gives them no measured noise.
        let k = scaled.iter().zip(&ratios).map(|(s, p)| {
            let name = format!("{} instances ÷ 1, group events/s", s.instances);
            let figures = vec![shown(&s.events_per_second), (name, p), shown(&s.join_s)];
            (
                format!("×{}: # ev/s (#× of 1), join # s", s.instances),
                figures,
            )
        });
        let one_part = (
            "×1: # ev/s".to_string(),
            vec![shown(&one.events_per_second)],
        );
        let mut row = judged(
            "Pull scales to many consumers more easily",
            "1, 2, 3 instances of one model in one group, each with its own database (ledger for \
             the union), draining a backlog",
            ("pull", Better::Higher),
            "; ",
            &std::iter::once(one_part).chain(k).collect::<Vec<_>>(),
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
