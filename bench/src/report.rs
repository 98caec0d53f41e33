//! `report.md`: one table of every consumer run, a short reading computed
//! from the figures, the pictures, the ceilings and the producer, the store
//! queries, the settings, the broker during each phase, the verification,
//! and where the time went. What each figure means: `docs/benchmark.md`.

use std::fmt::Write as _;

use crate::claims::analysis::rate_text;
use crate::results::{Figures, LiveResult, Results};
use crate::stats::Latency;

mod reading;
mod sections;

pub use reading::reading;
use sections::*;

fn mb(bytes: u64) -> String {
    if bytes == 0 {
        "–".into()
    } else {
        format!("{:.1}", bytes as f64 / 1e6)
    }
}

/// Milliseconds with few significant digits.
fn ms(us: u64) -> String {
    crate::claims::analysis::num(us as f64 / 1e3)
}

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn eps(x: f64) -> String {
    if x > 0.0 {
        num(x.round() as u64)
    } else {
        "–".into()
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

fn dash_or<T>(x: Option<T>, f: impl FnOnce(T) -> String) -> String {
    x.map_or_else(|| "–".into(), f)
}

/// A Markdown table from its header and rows, cells separated by ` | `; a
/// column whose cells are all figures is right-aligned.
pub fn md_table(head: &str, rows: impl IntoIterator<Item = String>) -> String {
    let rows: Vec<String> = rows.into_iter().collect();
    let figure = |c: &str| c.chars().all(|ch| "0123456789.,%–/ ×∞".contains(ch));
    let align = head.split(" | ").enumerate().map(|(i, _)| {
        let mut column = rows.iter().map(|r| r.split(" | ").nth(i).unwrap_or(""));
        if !rows.is_empty() && column.all(figure) {
            "--:"
        } else {
            "---"
        }
    });
    let mut s = format!("| {head} |\n|{}|\n", align.collect::<Vec<_>>().join("|"));
    for r in rows {
        let _ = writeln!(s, "| {r} |");
    }
    s.push('\n');
    s
}

/// The main table: one row per consumer run.
pub fn table(r: &Results) -> String {
    let rows = phase_rows(r).into_iter().map(|(phase, model, f, fraction)| {
        let l = &f.latency_us;
        let lat = |v: u64| if l.count > 0 { ms(v) } else { "–".into() };
        let verification = match f.exit_code {
            Some(code) if code != 0 => format!("{} (exit {code})", f.verification),
            _ => f.verification.clone(),
        };
        format!(
            "{phase} | {model} | {} | {:.2} | {} | {fraction} | {} | {} | {} | {} | {:.1} | {} | {} | {verification}",
            num(f.events),
            f.wall_seconds,
            eps(f.events_per_second),
            lat(l.p50),
            lat(l.p99),
            lat(l.p999),
            lat(l.max),
            f.cpu_seconds,
            mb(f.max_rss_bytes),
            mb(f.db_bytes),
        )
    });
    md_table(
        "Phase | Model | Events | Wall s | Events/s | Fraction of ceiling | p50 ms | p99 ms | p99.9 ms | max ms | CPU s | Peak RSS MB | DB MB | Verification",
        rows,
    )
}

/// The rows of the results, in report order: each model's backlog drain
/// (if it ran) with its fraction of the ceiling, then each live rate's
/// ("–" for the fraction).
fn phase_rows(r: &Results) -> Vec<(String, &'static str, &Figures, String)> {
    let mut rows = Vec::new();
    for (model, m) in [("pull", &r.pull), ("push", &r.push)] {
        if let Some(m) = m
            && (m.backlog.events > 0 || m.backlog.exit_code.is_some())
        {
            let fraction = pct(m.fraction_of_ceiling);
            rows.push(("backlog".into(), model, &m.backlog, fraction));
        }
    }
    for live in &r.live {
        let phase = format!("live {}", rate_text(live.rate));
        for (model, f) in [("pull", &live.pull), ("push", &live.push)] {
            if let Some(f) = f {
                rows.push((phase.clone(), model, f, "–".into()));
            }
        }
    }
    rows
}

/// Per phase and model: the batches and their SQLite commit times.
pub fn commit_table(r: &Results) -> String {
    let rows = phase_rows(r)
        .into_iter()
        .filter(|row| row.2.commit_us.count > 0);
    let rows = rows.map(|(phase, model, f, _)| {
        let c = &f.commit_us;
        let per_batch = f.events as f64 / f.batches.max(1) as f64;
        let (batches, p50, p99, max) = (num(f.batches), ms(c.p50), ms(c.p99), ms(c.max));
        format!("{phase} | {model} | {batches} | {per_batch:.0} | {p50} | {p99} | {max}")
    });
    md_table(
        "Phase | Model | Batches | Events per batch | p50 ms | p99 ms | max ms",
        rows,
    )
}

pub fn render(r: &Results, pictures: &[String]) -> String {
    let (run, c, m, b) = (&r.run, &r.run.config, &r.run.machine, &r.run.broker);
    let mut s = String::from("# Push vs pull: benchmark report\n\n");
    let _ = writeln!(
        s,
        "Run started {} (UTC), finished {}; {:.0} s in all (builds excluded). Verification: **{}**. \
         What each figure means and how it is measured, and what past runs showed: `docs/benchmark.md`.\n",
        or_dash(&run.started_at),
        or_dash(&run.finished_at),
        run.wall_seconds,
        r.verification
    );
    let rates: Vec<String> = c.rates.iter().map(|x| num(*x)).collect();
    let code = when(!m.git_revision.is_empty(), || {
        format!(", code at `{}`", m.git_revision)
    });
    let heap = b.heap.as_ref().map(|h| format!(", JVM heap `{h}`"));
    let pid = b
        .pid
        .map_or(", not a local process: not sampled".into(), |pid| {
            format!(", process {pid}")
        });
    let _ = writeln!(
        s,
        "- Command: `{}`\n\
         - Backlog: {} events, {} partitions, seed {}, {} accounts. Live: {} s per rate at {} events/s, once both consumers are ready (at most {} s).\n\
         - Machine: {} cores, {}, {:.1} GB memory, Linux {}{code}.\n\
         - Broker: {} ({}{}) at {}{pid}; the settings that decide latency are in the table of settings.\n",
        or_dash(&run.command),
        num(c.events),
        c.settings.partitions,
        c.settings.seed,
        num(c.settings.accounts),
        c.duration_s,
        rates.join(", "),
        c.warmup_s,
        m.cores,
        or_dash(&m.cpu_model),
        m.memory_bytes as f64 / 1e9,
        or_dash(&m.kernel),
        or_dash(&b.kind),
        or_dash(&b.version),
        heap.unwrap_or_default(),
        or_dash(&b.address),
    );
    s.push_str("## Results\n\n");
    s.push_str(&table(r));
    if let Some((what, e)) = r
        .ceilings
        .as_ref()
        .and_then(|c| Some((&c.lower, c.lower_events_per_second?)))
    {
        let _ = writeln!(
            s,
            "The ceiling: the lower of the two consumer ceilings ({what}, {}/s).\n",
            eps(e)
        );
    }
    s.push_str(
        "SQLite commit time per batch (a latency stall without a commit stall is delivery's):\n\n",
    );
    s.push_str(&commit_table(r));
    let reading = reading(r);
    if !reading.is_empty() {
        s.push_str("## Reading\n\n");
        for p in reading {
            let _ = writeln!(s, "- {p}");
        }
        s.push('\n');
    }
    if !pictures.is_empty() {
        s.push_str("## Pictures\n\n");
        for p in pictures {
            let _ = writeln!(s, "![{p}]({p})\n");
        }
    }
    ceilings_section(r, &mut s);
    saturation_section(r, &mut s);
    queries_section(r, &mut s);
    settings_section(r, &mut s);
    broker_section(r, &mut s);
    let _ = writeln!(
        s,
        "## Verification\n\nEach database against the producer's acknowledged events. Overall: **{}**.\n\n```",
        r.verification
    );
    for check in &r.checks {
        let _ = writeln!(s, "{}", check.line());
    }
    if r.checks.is_empty() {
        s.push_str("(verification did not run)\n");
    }
    s.push_str("```\n\n");
    if !run.failures.is_empty() {
        s.push_str("## Failures\n\n");
        for f in &run.failures {
            let _ = writeln!(s, "- {f}");
        }
        s.push('\n');
    }
    if !run.steps.is_empty() {
        s.push_str("## Where the time went\n\n");
        let yes = |ok| if ok { "yes" } else { "no" };
        let rows = run.steps.iter().map(|st| {
            format!(
                "{} | {} | {:.1} | {}",
                st.phase,
                st.name,
                st.seconds,
                yes(st.ok)
            )
        });
        s.push_str(&md_table("Phase | Step | Seconds | OK", rows));
    }
    s.push_str("Raw figures: `results.json`, and each process's stats and log in its phase's directory. Re-check the databases with `scripts/bench.sh --verify-only <this directory>`.\n");
    s
}

pub fn when(cond: bool, text: impl FnOnce() -> String) -> String {
    cond.then(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::reading::live_reading;
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(num(10_000_000), "10,000,000");
        assert_eq!(num(999), "999");
        assert_eq!(ms(1_500), "1.50");
        assert_eq!(ms(25_000), "25.0");
        assert_eq!(mb(0), "–");
        assert_eq!(pct(Some(0.834)), "83%");
    }

    fn live(pull: (u64, u64), push: (u64, u64)) -> LiveResult {
        let figures = |(p50, p99): (u64, u64)| Figures {
            events: 200_000,
            events_per_second: 19_800.0,
            latency_us: Latency {
                count: 200_000,
                p50,
                p99,
                ..Latency::default()
            },
            ..Figures::default()
        };
        LiveResult {
            rate: 20_000,
            produced: 200_000,
            producer_events_per_second: 19_800.0,
            pull: Some(figures(pull)),
            push: Some(figures(push)),
            ..LiveResult::default()
        }
    }

    /// A 76% gap at p50 is stated as such, even when p99 agrees.
    #[test]
    fn a_large_difference_is_never_called_small() {
        let p = live_reading(&live((24_100, 40_000), (42_400, 40_000))).unwrap();
        assert!(
            p.contains("p50 pull 24.1 ms, push 42.4 ms (push 76% higher)"),
            "{p}"
        );
        assert!(p.contains("p99 pull 40.0 ms, push 40.0 ms (equal)"), "{p}");
        for word in ["no meaningful", "negligible", "within noise", "draw"] {
            assert!(!p.contains(word), "{p}");
        }
        let p = live_reading(&live((24_000, 39_600), (25_000, 37_200))).unwrap();
        assert!(p.contains("(push 4.2% higher)"), "{p}");
        assert!(p.contains("(pull 6.5% higher)"), "{p}");
        assert!(
            p.ends_with("p99 pull 39.6 ms, push 37.2 ms (pull 6.5% higher)."),
            "{p}"
        );
    }

    #[test]
    fn a_model_short_of_the_produced_events_is_named() {
        let mut l = live((1, 1), (1, 1));
        l.push.as_mut().unwrap().events = 150_000;
        let p = live_reading(&l).unwrap();
        assert!(
            p.contains("push stored only 150,000 of 200,000 events"),
            "{p}"
        );
        assert!(!p.contains("pull stored only"), "{p}");
    }
}
