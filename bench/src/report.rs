//! `report.md`: one table of every consumer run, a short reading computed
//! from the figures (one sentence per phase, every difference stated as the
//! percentage it is), the pictures, the ceilings and the producer, the
//! store queries, the settings, the broker during each phase, the
//! verification, and where the time went. The method and the discussion of
//! past runs are in `docs/benchmark.md`, written by hand.

use std::fmt::Write as _;

use crate::plots::human;
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

/// The main table: one row per consumer run.
pub fn table(r: &Results) -> String {
    let mut s = String::new();
    s.push_str(
        "| Phase | Model | Events | Wall s | Events/s | Fraction of ceiling | p50 ms | p99 ms | p99.9 ms | max ms | CPU s | Peak RSS MB | DB MB | Verification |\n",
    );
    s.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for (phase, model, f, fraction) in phase_rows(r) {
        let l = &f.latency_us;
        let lat = |v: u64| if l.count > 0 { ms(v) } else { "–".into() };
        let verification = match f.exit_code {
            Some(code) if code != 0 => format!("{} (exit {code})", f.verification),
            _ => f.verification.clone(),
        };
        let _ = writeln!(
            s,
            "| {phase} | {model} | {} | {:.2} | {} | {fraction} | {} | {} | {} | {} | {:.1} | {} | {} | {verification} |",
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
        );
    }
    s
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
        let phase = format!("live {}/s", human(live.rate as f64));
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
    let mut s = String::new();
    s.push_str("| Phase | Model | Batches | Events per batch | p50 ms | p99 ms | max ms |\n");
    s.push_str("|---|---|--:|--:|--:|--:|--:|\n");
    for (phase, model, f, _) in phase_rows(r) {
        let c = &f.commit_us;
        if c.count > 0 {
            let _ = writeln!(
                s,
                "| {phase} | {model} | {} | {:.0} | {} | {} | {} |",
                num(f.batches),
                f.events as f64 / f.batches.max(1) as f64,
                ms(c.p50),
                ms(c.p99),
                ms(c.max),
            );
        }
    }
    s.push('\n');
    s
}

pub fn render(r: &Results, pictures: &[String]) -> String {
    let mut s = String::new();
    let run = &r.run;
    let c = &run.config;
    let _ = writeln!(s, "# Push vs pull: benchmark report\n");
    let _ = writeln!(
        s,
        "Run started {} (UTC), finished {}; {:.0} s in all (builds excluded). Verification: **{}**.\n",
        or_dash(&run.started_at),
        or_dash(&run.finished_at),
        run.wall_seconds,
        r.verification
    );
    let _ = writeln!(s, "- Command: `{}`", or_dash(&run.command));
    let _ = writeln!(
        s,
        "- Backlog: {} events, {} partitions, seed {}, {} accounts. Live: {} s per rate at {} events/s, once both consumers are ready (at most {} s).",
        num(c.events),
        c.settings.partitions,
        c.settings.seed,
        num(c.settings.accounts),
        c.duration_s,
        c.rates
            .iter()
            .map(|x| num(*x))
            .collect::<Vec<_>>()
            .join(", "),
        c.warmup_s
    );
    let m = &run.machine;
    let _ = writeln!(
        s,
        "- Machine: {} cores, {}, {:.1} GB memory, Linux {}{}.",
        m.cores,
        or_dash(&m.cpu_model),
        m.memory_bytes as f64 / 1e9,
        or_dash(&m.kernel),
        if m.git_revision.is_empty() {
            String::new()
        } else {
            format!(", code at `{}`", m.git_revision)
        }
    );
    let b = &run.broker;
    let _ = writeln!(
        s,
        "- Broker: {} ({}{}) at {}{}.",
        or_dash(&b.kind),
        or_dash(&b.version),
        b.heap
            .as_ref()
            .map(|h| format!(", JVM heap `{h}`"))
            .unwrap_or_default(),
        or_dash(&b.address),
        match b.pid {
            Some(pid) => format!(", process {pid} (its CPU and memory per phase below)"),
            None => ", not a local process: its CPU and memory were not sampled".into(),
        }
    );
    let _ = writeln!(
        s,
        "- Latency-deciding settings: producer `linger.ms`={}, `batch.size`={}, `compression.type`={}; \
         pull batch size {}, flush interval {} ms, `fetch.wait.max.ms`={}; \
         push batch size {}, flush interval {} ms, `fetch.wait.max.ms`={}. All settings below.\n",
        r.setting("producer", "linger.ms"),
        r.setting("producer", "batch.size"),
        r.setting("producer", "compression.type"),
        r.setting("pull", "batch_size"),
        r.setting("pull", "flush_interval_ms"),
        r.setting("pull", "fetch.wait.max.ms"),
        r.setting("push", "batch_size"),
        r.setting("push", "flush_interval_ms"),
        r.setting("push", "fetch.wait.max.ms"),
    );

    let _ = writeln!(s, "## Results\n");
    s.push_str(&table(r));
    let ceiling = r
        .ceilings
        .as_ref()
        .and_then(|c| c.lower_events_per_second.map(|e| (c.lower.clone(), e)));
    let _ = writeln!(
        s,
        "\nEvents/s = events committed per second of wall time (first message to last commit). \
         Fraction of ceiling = events/s ÷ the lower of the two consumer ceilings{}. \
         Latency = SQLite commit time − the event's creation time in the producer, per event; in the \
         backlog phase it mostly measures how long events waited in the backlog, so compare \
         latency in the live rows. CPU and peak RSS are the consumer process's own (getrusage). \
         DB MB = database file + WAL after the run, before any query index.\n",
        ceiling
            .as_ref()
            .map(|(what, e)| format!(" ({what}, {}/s)", eps(*e)))
            .unwrap_or_default()
    );

    let _ = writeln!(
        s,
        "Time of each batch's SQLite commit, which the end-to-end latency includes: a stall \
         here is the store's (the disk, the checkpoints), one that is not is delivery's (the \
         producer, the broker, the consumer's feed).\n"
    );
    s.push_str(&commit_table(r));

    let reading = reading(r);
    if !reading.is_empty() {
        let _ = writeln!(s, "## Reading\n");
        for p in reading {
            let _ = writeln!(s, "- {p}");
        }
        let _ = writeln!(
            s,
            "\nWhat each figure means and how it is measured, and what past runs showed: `docs/benchmark.md`.\n"
        );
    }

    if !pictures.is_empty() {
        let _ = writeln!(s, "## Pictures\n");
        for p in pictures {
            let title = match p.as_str() {
                "backlog-throughput.svg" => "Backlog drain: throughput over time",
                "live-latency.svg" => "Live latency percentiles per rate, pull vs push",
                "live-throughput.svg" => "Live phases: throughput over time",
                other => other,
            };
            let _ = writeln!(s, "![{title}]({p})\n");
        }
    }

    ceilings_section(r, &mut s);
    saturation_section(r, &mut s);
    queries_section(r, &mut s);
    settings_section(r, &mut s);
    broker_section(r, &mut s);

    let _ = writeln!(s, "## Verification\n");
    let _ = writeln!(
        s,
        "Each database against the producer's acknowledged events (count, distinct ids, amount sum, \
         id checksum; no dead letters). Overall: **{}**.\n",
        r.verification
    );
    s.push_str("```\n");
    for check in &r.checks {
        let _ = writeln!(s, "{}", check.line());
    }
    if r.checks.is_empty() {
        s.push_str("(verification did not run)\n");
    }
    s.push_str("```\n\n");

    if !run.failures.is_empty() {
        let _ = writeln!(s, "## Failures\n");
        for f in &run.failures {
            let _ = writeln!(s, "- {f}");
        }
        s.push('\n');
    }

    if !run.steps.is_empty() {
        let _ = writeln!(s, "## Where the time went\n");
        s.push_str("| Phase | Step | Seconds | OK |\n|---|---|--:|---|\n");
        for st in &run.steps {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {} |",
                st.phase,
                st.name,
                st.seconds,
                if st.ok { "yes" } else { "no" }
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Raw figures: `results.json`; each process's stats and log are in `backlog/` and `live-<rate>/`. \
         Re-check the databases with `scripts/bench.sh --verify-only <this directory>`."
    );
    s
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
