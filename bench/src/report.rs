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

/// Megabytes with one decimal.
fn mb(bytes: u64) -> String {
    if bytes == 0 {
        "–".into()
    } else {
        format!("{:.1}", bytes as f64 / 1e6)
    }
}

fn ms(us: u64) -> String {
    let us = us as f64;
    if us >= 100_000.0 {
        format!("{:.0}", us / 1e3)
    } else if us >= 10_000.0 {
        format!("{:.1}", us / 1e3)
    } else {
        format!("{:.2}", us / 1e3)
    }
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
    let mut row = |phase: &str, model: &str, f: &Figures, fraction: String| {
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
    };
    for (phase, model, f, fraction) in phase_rows(r) {
        row(&phase, model, f, fraction);
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
            rows.push((
                "backlog".to_string(),
                model,
                &m.backlog,
                pct(m.fraction_of_ceiling),
            ));
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
    let mut row = |phase: &str, model: &str, f: &Figures| {
        let c = &f.commit_us;
        if c.count == 0 {
            return;
        }
        let _ = writeln!(
            s,
            "| {phase} | {model} | {} | {:.0} | {} | {} | {} |",
            num(f.batches),
            f.events as f64 / f.batches.max(1) as f64,
            ms(c.p50),
            ms(c.p99),
            ms(c.max),
        );
    };
    for (phase, model, f, _) in phase_rows(r) {
        row(&phase, model, f);
    }
    s.push('\n');
    s
}

/// The whole report.
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

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

fn ceilings_section(r: &Results, s: &mut String) {
    if r.ceilings.is_none() && r.producer.is_none() {
        return;
    }
    let _ = writeln!(s, "## Ceilings and producer\n");
    s.push_str("| What | Events | Events/s | Wall s | CPU s | Peak RSS MB | Notes |\n|---|--:|--:|--:|--:|--:|---|\n");
    if let Some(c) = &r.ceilings {
        if let Some(x) = &c.raw_consume {
            let _ = writeln!(
                s,
                "| raw consume (decode only, no storage) | {} | {} | {:.2} | {:.1} | {} | BaseConsumer with the consumers' librdkafka settings, fresh group; {} decode errors |",
                num(x.events),
                eps(x.events_per_second),
                x.wall_seconds,
                x.cpu_seconds,
                mb(x.max_rss_bytes),
                x.decode_errors
            );
        }
        if let Some(x) = &c.store_insert {
            let halves = x
                .halves_events_per_second
                .map(|[b, a]| {
                    format!(
                        "; in two halves into one database, before the drains ({}/s) and after them ({}/s)",
                        eps(b),
                        eps(a)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| store insert (no Kafka) | {} | {} | {:.2} | {:.1} | {} | Store::commit time only, batches of {}{halves}; {} events/s in wall time, events generated on another thread meanwhile; DB {} MB |",
                num(x.events),
                eps(x.events_per_second),
                x.commit_seconds,
                x.cpu_seconds,
                mb(x.max_rss_bytes),
                num(x.batch_size),
                eps(x.events_per_second_with_generation),
                mb(x.db_bytes)
            );
        }
        if let Some(x) = &c.bare_sqlite {
            let _ = writeln!(
                s,
                "| bare SQLite (the store's rows alone, no Kafka) | {} | {} | {:.2} | {:.1} | {} | the same events as rows of one table with one b-tree, same pragmas, statements and batches of {}, nothing else (no balances, offsets, dead letters, duplicate check); the store reaches {} of it; DB {} MB |",
                num(x.events),
                eps(x.events_per_second),
                x.commit_seconds,
                x.cpu_seconds,
                mb(x.max_rss_bytes),
                num(x.batch_size),
                pct(c.store_to_bare),
                mb(x.db_bytes)
            );
        }
    }
    if let Some(p) = &r.producer {
        let _ = writeln!(
            s,
            "| producer (generate, encode, send) | {} | {} | {:.2} | {:.1} | {} | {} of its raw ceiling |",
            num(p.events),
            eps(p.events_per_second),
            p.wall_seconds,
            p.cpu_seconds,
            mb(p.max_rss_bytes),
            pct(p.ratio_to_raw)
        );
        if let Some(raw) = p.raw_events_per_second {
            let _ = writeln!(
                s,
                "| producer --raw (pre-encoded payloads) | {} | {} | – | {} | {} | same count and settings, throw-away topics; half before the producer ({}/s), half after ({}/s) |",
                num(p.events),
                eps(raw),
                p.raw_cpu_seconds
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or_else(|| "–".into()),
                p.raw_max_rss_bytes.map(mb).unwrap_or_else(|| "–".into()),
                p.raw_before_events_per_second
                    .map(eps)
                    .unwrap_or_else(|| "–".into()),
                p.raw_after_events_per_second
                    .map(eps)
                    .unwrap_or_else(|| "–".into())
            );
        }
    }
    s.push('\n');
}

fn saturation_section(r: &Results, s: &mut String) {
    let Some(sat) = &r.saturation else { return };
    let _ = writeln!(s, "## Saturation\n");
    let _ = writeln!(
        s,
        "Offered rates doubling, {} s each, both consumers live in fresh groups. A consumer keeps pace with a rate when the producer offered it (90% of it over the producer's whole run), it stored every event, committed at 95% or more of the producer's rate, and its database passed verification; it sustains the rate when it also kept its p99 within {} ms. The sweep goes on while either consumer keeps pace.\n",
        r.run.config.duration_s, sat.p99_bound_ms
    );
    s.push_str("| Offered/s | Producer/s | Model | Events/s | p50 ms | p99 ms | p99.9 ms | max ms | Sustains |\n|--:|--:|---|--:|--:|--:|--:|--:|---|\n");
    for step in &sat.steps {
        for (model, f) in [("pull", &step.pull), ("push", &step.push)] {
            let Some(f) = f else { continue };
            let l = &f.latency_us;
            let _ = writeln!(
                s,
                "| {} | {} | {model} | {} | {} | {} | {} | {} | {} |",
                num(step.rate),
                eps(step.producer_events_per_second),
                eps(f.events_per_second),
                ms(l.p50),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                if crate::results::sustains(step, Some(f), sat.p99_bound_ms) {
                    "yes"
                } else {
                    "no"
                }
            );
        }
    }
    let rate =
        |x: Option<u64>| x.map_or("none of the rates".to_string(), |r| format!("{}/s", num(r)));
    let _ = writeln!(
        s,
        "\nHighest offered rate sustained within {} ms at p99 (every lower one too): pull {}, push {}. Highest kept pace with, whatever the latency: pull {}, push {}.\n",
        sat.p99_bound_ms,
        rate(sat.pull_max_rate),
        rate(sat.push_max_rate),
        rate(sat.pull_max_rate_keeping_pace),
        rate(sat.push_max_rate_keeping_pace)
    );
}

fn queries_section(r: &Results, s: &mut String) {
    let Some(q) = &r.queries else { return };
    let _ = writeln!(s, "## Store queries\n");
    let _ = writeln!(
        s,
        "On `{}` after `ensure_query_index()` (built in {:.1} s; database {} MB before, {} MB after), {} accounts each:\n",
        q.db,
        q.index_build_seconds,
        mb(q.db_bytes_before_index),
        mb(q.db_bytes_after_index),
        q.latest_events_50.samples
    );
    s.push_str(
        "| Query | first ms | p50 ms | p99 ms | max ms | rows/call |\n|---|--:|--:|--:|--:|--:|\n",
    );
    for (name, t) in [
        ("50 latest events of one account", &q.latest_events_50),
        ("balance of one account", &q.account_balance),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
            t.first_ms, t.p50_ms, t.p99_ms, t.max_ms, t.rows_mean
        );
    }
    s.push('\n');
}

/// Settings shown in the report whatever their value: they decide latency.
const ALWAYS_SHOWN: [&str; 8] = [
    "linger.ms",
    "batch.size",
    "compression.type",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "queued.min.messages",
    "batch_size",
    "flush_interval_ms",
];

/// Per-run identities, stated elsewhere in the report.
const NEVER_SHOWN: [&str; 4] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "client.id",
];

fn settings_section(r: &Results, s: &mut String) {
    let st = &r.settings;
    if st.producer.is_empty() && st.pull.is_empty() && st.push.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Settings\n");
    let _ = writeln!(
        s,
        "As each process reported them in its stats file: the consumers' own knobs, every librdkafka \
         property (dotted names) that differs from librdkafka's default, and the latency-deciding ones \
         always. `results.json` has the complete lists.\n"
    );
    s.push_str("| Setting | producer | pull | push |\n|---|---|---|---|\n");
    let chosen = |k: &str| {
        ALWAYS_SHOWN.contains(&k)
            || (!NEVER_SHOWN.contains(&k)
                && [&st.producer, &st.pull, &st.push].iter().any(|m| {
                    m.get(k)
                        .is_some_and(|v| v != "[redacted]" && !crate::defaults::is_default(k, v))
                }))
    };
    let mut keys: Vec<&String> = st
        .producer
        .keys()
        .chain(st.pull.keys())
        .chain(st.push.keys())
        .filter(|k| chosen(k))
        .collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let _ = writeln!(
            s,
            "| `{k}` | {} | {} | {} |",
            r.setting("producer", k),
            r.setting("pull", k),
            r.setting("push", k)
        );
    }
    s.push('\n');
}

/// The broker process during each phase: its CPU and memory over the
/// phase's steps, from `/proc` (local brokers only).
fn broker_section(r: &Results, s: &mut String) {
    let mut phases: Vec<(&str, f64, f64, u64, u64)> = Vec::new();
    for st in &r.run.steps {
        let Some(u) = &st.broker else { continue };
        match phases.iter_mut().find(|p| p.0 == st.phase) {
            Some(p) => {
                p.1 += st.seconds;
                p.2 += u.cpu_seconds;
                p.3 = p.3.max(u.max_rss_bytes);
                p.4 = p.4.max(u.hwm_bytes);
            }
            None => phases.push((
                &st.phase,
                st.seconds,
                u.cpu_seconds,
                u.max_rss_bytes,
                u.hwm_bytes,
            )),
        }
    }
    if phases.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Broker during each phase\n");
    let _ = writeln!(
        s,
        "The broker process ({}), from `/proc/PID/stat` (user + system CPU) and `/proc/PID/status` \
         (`VmRSS` sampled every 100 ms; `VmHWM`, its peak since it started).\n",
        or_dash(&r.run.broker.kind)
    );
    s.push_str("| Phase | Seconds | CPU s | Cores busy | Peak RSS MB | VmHWM MB |\n|---|--:|--:|--:|--:|--:|\n");
    for (phase, secs, cpu, rss, hwm) in phases {
        let _ = writeln!(
            s,
            "| {phase} | {secs:.1} | {cpu:.1} | {:.2} | {} | {} |",
            if secs > 0.0 { cpu / secs } else { 0.0 },
            mb(rss),
            mb(hwm)
        );
    }
    s.push('\n');
}

/// How `b` compares with `a`, as measured: the relative difference of the
/// larger over the smaller, whatever its size; no judgement of whether it
/// matters.
fn versus(a_name: &str, a: f64, b_name: &str, b: f64) -> String {
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
fn latency_pair(what: &str, pick: fn(&Latency) -> u64, pull: &Figures, push: &Figures) -> String {
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
            let mut p = format!(
                "Backlog: pull drained {} events/s, push {} events/s ({})",
                eps(a),
                eps(b),
                versus("pull", a, "push", b)
            );
            if let Some(c) = &r.ceilings
                && let Some(lower) = c.lower_events_per_second
            {
                let _ = write!(
                    p,
                    "; the lower ceiling, {} at {} events/s, was reached to {} by pull and {} by push",
                    c.lower,
                    eps(lower),
                    pct(pull.fraction_of_ceiling),
                    pct(push.fraction_of_ceiling)
                );
            }
            let per_million = |f: &Figures| f.cpu_seconds / (f.events.max(1) as f64 / 1e6);
            let (cp, cu) = (per_million(&pull.backlog), per_million(&push.backlog));
            let _ = write!(
                p,
                "; CPU per million events pull {cp:.2} s, push {cu:.2} s ({}).",
                versus("pull", cp, "push", cu)
            );
            out.push(p);
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
    if let Some(p) = &r.producer
        && let (Some(raw), Some(ratio)) = (p.raw_events_per_second, p.ratio_to_raw)
    {
        out.push(format!(
            "Producer: {} events/s, {:.0}% of its raw ceiling ({} events/s with pre-encoded payloads).",
            eps(p.events_per_second),
            ratio * 100.0,
            eps(raw)
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
fn live_reading(live: &LiveResult) -> Option<String> {
    let (pull, push) = (live.pull.as_ref()?, live.push.as_ref()?);
    if pull.latency_us.count == 0 || push.latency_us.count == 0 {
        return None;
    }
    let mut p = format!(
        "Live {}/s: {}; {}",
        human(live.rate as f64),
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

#[cfg(test)]
mod tests {
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
