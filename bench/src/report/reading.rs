//! The reading: one sentence per phase, every difference stated as the
//! percentage it is.

use super::*;

/// How `b` compares with `a`, as measured: the relative difference of the
/// larger over the smaller, whatever its size; no judgement of whether it
/// matters.
pub(super) fn versus(a_name: &str, a: f64, b_name: &str, b: f64) -> String {
    if a <= 0.0 || b <= 0.0 {
        return "not comparable".into();
    }
    if a == b {
        return "equal".into();
    }
    let (hi, lo, name) = if a > b {
        (a, b, a_name)
    } else {
        (b, a, b_name)
    };
    let d = (hi / lo - 1.0) * 100.0;
    if d >= 10.0 {
        format!("{name} {d:.0}% higher")
    } else {
        format!("{name} {d:.1}% higher")
    }
}

/// One percentile of both models: "p50 pull 24.1 ms, push 42.4 ms (push
/// 76% higher)".
pub(super) fn latency_pair(
    what: &str,
    pick: fn(&Latency) -> u64,
    pull: &Figures,
    push: &Figures,
) -> String {
    let (a, b) = (pick(&pull.latency_us), pick(&push.latency_us));
    format!(
        "{what} pull {} ms, push {} ms ({})",
        ms(a),
        ms(b),
        versus("pull", a as f64, "push", b as f64)
    )
}

/// One sentence per phase, each computed from the figures of this run.
pub fn reading(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(pull), Some(push)) = (&r.pull, &r.push) {
        let (a, b) = (
            pull.backlog.events_per_second,
            push.backlog.events_per_second,
        );
        if a > 0.0 && b > 0.0 {
            let per_million = |f: &Figures| f.cpu_seconds / (f.events.max(1) as f64 / 1e6);
            let (cp, cu) = (per_million(&pull.backlog), per_million(&push.backlog));
            out.push(format!(
                "Backlog: pull drained {} events/s, push {} events/s ({}); CPU per million events pull {cp:.2} s, push {cu:.2} s ({}).",
                eps(a),
                eps(b),
                versus("pull", a, "push", b),
                versus("pull", cp, "push", cu)
            ));
        }
    }
    for live in &r.live {
        if let Some(p) = live_reading(live) {
            out.push(p);
        }
    }
    if let Some(sat) = &r.saturation {
        let (a, b) = (
            sat.pull_max_rate.unwrap_or(0),
            sat.push_max_rate.unwrap_or(0),
        );
        let first = match a.cmp(&b) {
            std::cmp::Ordering::Less => "pull saturates first",
            std::cmp::Ordering::Greater => "push saturates first",
            std::cmp::Ordering::Equal => "both saturate at the same step",
        };
        out.push(format!(
            "Saturation (p99 within {} ms, no falling behind): pull sustains up to {} events/s, push up to {} events/s; {first}. Kept pace at all: pull up to {} events/s, push up to {}.",
            sat.p99_bound_ms,
            num(a),
            num(b),
            num(sat.pull_max_rate_keeping_pace.unwrap_or(0)),
            num(sat.push_max_rate_keeping_pace.unwrap_or(0))
        ));
    }
    let peak = |m: &str| r.peak_rss_bytes.get(m).copied().unwrap_or(0);
    let (a, b) = (peak("pull"), peak("push"));
    if a > 0 && b > 0 {
        out.push(format!(
            "Memory: peak RSS over all runs pull {} MB, push {} MB ({}).",
            mb(a),
            mb(b),
            versus("pull", a as f64, "push", b as f64)
        ));
    }
    if r.verification != "PASS" {
        out.push(format!(
            "Verification is {}: the databases do not (all) hold exactly the acknowledged events; the figures above describe a faulty run.",
            r.verification
        ));
    }
    out
}

/// One live rate: both medians and both p99s compared, and any model or
/// producer that fell short of the offered rate.
pub(super) fn live_reading(live: &LiveResult) -> Option<String> {
    let (pull, push) = (live.pull.as_ref()?, live.push.as_ref()?);
    if pull.latency_us.count == 0 || push.latency_us.count == 0 {
        return None;
    }
    let mut p = format!(
        "Live {}: {}; {}",
        rate_text(live.rate),
        latency_pair("p50", |l| l.p50, pull, push),
        latency_pair("p99", |l| l.p99, pull, push)
    );
    for (model, f) in [("pull", pull), ("push", push)] {
        if live.produced > 0 && f.events < live.produced {
            let _ = write!(
                p,
                "; {model} stored only {} of {} events",
                num(f.events),
                num(live.produced)
            );
        } else if f.events_per_second < live.rate as f64 * 0.9 {
            let _ = write!(
                p,
                "; {model} committed {} events/s, below the offered rate",
                eps(f.events_per_second)
            );
        }
    }
    if live.produced > 0 && live.producer_events_per_second < live.rate as f64 * 0.9 {
        let _ = write!(
            p,
            "; the producer reached only {} events/s",
            eps(live.producer_events_per_second)
        );
    }
    p.push('.');
    Some(p)
}
