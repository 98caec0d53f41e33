//! `report.md`: one table of every consumer run, the pictures, the ceilings
//! and the producer, the store queries, the settings that decide latency,
//! the verification, where the time went, and a short reading of the
//! figures written from the figures themselves.

use std::fmt::Write as _;

use crate::plots::human;
use crate::results::{Figures, LiveResult, Results};

/// Megabytes with one decimal.
fn mb(bytes: u64) -> String {
    if bytes == 0 {
        "–".into()
    } else {
        format!("{:.1}", bytes as f64 / 1e6)
    }
}

fn ms(us: f64) -> String {
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
        let lat = |v: f64| if l.count > 0 { ms(v) } else { "–".into() };
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
    for (model, m) in [("pull", &r.pull), ("push", &r.push)] {
        if let Some(m) = m
            && (m.backlog.events > 0 || m.backlog.exit_code.is_some())
        {
            row("backlog", model, &m.backlog, pct(m.fraction_of_ceiling));
        }
    }
    for live in &r.live {
        let phase = format!("live {}/s", human(live.rate as f64));
        for (model, f) in [("pull", &live.pull), ("push", &live.push)] {
            if let Some(f) = f {
                row(&phase, model, f, "–".into());
            }
        }
    }
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
        "- Backlog: {} events, {} partitions, seed {}, {} accounts. Live: {} s per rate at {} events/s, once both consumers have their partitions (at most {} s).",
        num(c.events),
        c.partitions,
        c.seed,
        num(c.accounts),
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
        "- Broker: {} ({}) at {}.",
        or_dash(&b.kind),
        or_dash(&b.version),
        or_dash(&b.address)
    );
    let _ = writeln!(
        s,
        "- Latency-deciding settings: producer `linger.ms`={}, `batch.size`={}, `compression.type`={}; \
         pull batch size {}, flush interval {} ms, `fetch.wait.max.ms`={}; \
         push batch size {}, flush interval {} ms, channel capacity {}, `fetch.wait.max.ms`={}. All settings below.\n",
        r.setting("producer", "linger.ms"),
        r.setting("producer", "batch.size"),
        r.setting("producer", "compression.type"),
        r.setting("pull", "batch_size"),
        r.setting("pull", "flush_interval_ms"),
        r.setting("pull", "fetch.wait.max.ms"),
        r.setting("push", "batch_size"),
        r.setting("push", "flush_interval_ms"),
        r.setting("push", "channel_capacity"),
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

    let reading = reading(r);
    if !reading.is_empty() {
        let _ = writeln!(s, "## Reading\n");
        for p in reading {
            let _ = writeln!(s, "- {p}");
        }
        s.push('\n');
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
    queries_section(r, &mut s);
    settings_section(r, &mut s);

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
const ALWAYS_SHOWN: [&str; 9] = [
    "linger.ms",
    "batch.size",
    "compression.type",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "queued.min.messages",
    "batch_size",
    "flush_interval_ms",
    "channel_capacity",
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

fn parse_f(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Relative difference of `a` over `b`, as a percentage.
fn rel(a: f64, b: f64) -> f64 {
    if b > 0.0 { (a / b - 1.0) * 100.0 } else { 0.0 }
}

/// A few sentences drawn from this run's figures: which model wins where,
/// and the mechanism the figures point at.
pub fn reading(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    backlog_reading(r, &mut out);
    for live in &r.live {
        if let Some(p) = live_reading(r, live) {
            out.push(p);
        }
    }
    divergence_reading(r, &mut out);
    resources_reading(r, &mut out);
    if let Some(p) = &r.producer
        && let (Some(raw), Some(ratio)) = (p.raw_events_per_second, p.ratio_to_raw)
    {
        out.push(format!(
            "Producer: {} events/s, {:.0}% of the raw rdkafka ceiling ({} events/s with pre-encoded payloads, same count and settings on throw-away topics, half measured right before the producer and half right after it, so that the broker's drift as it fills weighs on both sides alike{}){}",
            eps(p.events_per_second),
            ratio * 100.0,
            eps(raw),
            match (p.raw_before_events_per_second, p.raw_after_events_per_second) {
                (Some(b), Some(a)) => format!("; before {}/s, after {}/s", eps(b), eps(a)),
                _ => String::new(),
            },
            if ratio > 1.1 {
                ": the producer ran faster than its raw-payload run, so on this broker the raw run is no ceiling and this ratio says nothing about what generating and encoding cost; compare backlog/producer.log with backlog/producer-raw-*.log."
            } else if ratio >= 0.97 {
                ": generating and encoding the events costs the producer nothing measurable here; the broker and librdkafka set the pace (a few percent either way is run-to-run noise)."
            } else {
                ": the gap is what generating and encoding the events costs, the only work the raw run skips."
            }
        ));
    }
    if let Some(q) = &r.queries {
        out.push(format!(
            "Queries on the backlog database: the 50 latest events of an account take {:.2} ms at p99, an account's balance {:.3} ms at p99 (index built after the load in {:.1} s).",
            q.latest_events_50.p99_ms, q.account_balance.p99_ms, q.index_build_seconds
        ));
    }
    if r.verification != "PASS" {
        out.push(format!(
            "Verification is {}: the figures above describe a run whose databases do not (all) hold exactly the acknowledged events; see Verification.",
            r.verification
        ));
    }
    out
}

fn backlog_reading(r: &Results, out: &mut Vec<String>) {
    let (Some(pull), Some(push)) = (&r.pull, &r.push) else {
        return;
    };
    let (a, b) = (
        pull.backlog.events_per_second,
        push.backlog.events_per_second,
    );
    if a <= 0.0 || b <= 0.0 {
        return;
    }
    let (winner, loser, w, l) = if a >= b {
        ("pull", "push", a, b)
    } else {
        ("push", "pull", b, a)
    };
    let d = rel(w, l);
    let mut p = if d < 5.0 {
        format!(
            "Backlog: a draw within noise — pull {} events/s, push {} events/s ({d:.1}% apart).",
            eps(a),
            eps(b)
        )
    } else {
        format!(
            "Backlog: {winner} drained fastest, {} events/s against {}'s {} (+{d:.0}%).",
            eps(w),
            loser,
            eps(l)
        )
    };
    if let Some(c) = &r.ceilings
        && let Some(lower) = c.lower_events_per_second
    {
        let other = match c.lower.as_str() {
            "store insert" => c
                .raw_consume
                .as_ref()
                .map(|x| ("raw consume", x.events_per_second)),
            _ => c
                .store_insert
                .as_ref()
                .map(|x| ("store insert", x.events_per_second)),
        };
        let _ = write!(
            p,
            " The lower ceiling is {} at {} events/s{}, so {}; pull reached {} and push {} of it.",
            c.lower,
            eps(lower),
            other
                .map(|(w, e)| format!(" (vs {w} at {} events/s)", eps(e)))
                .unwrap_or_default(),
            match other {
                Some((_, e)) if e < lower * 1.1 => {
                    "the two ceilings are level: reading and storing cost about the same, and a consumer does both, so it can approach either only by overlapping them on separate cores"
                }
                _ if c.lower == "store insert" => {
                    "the SQLite writer, not Kafka, bounds both consumers"
                }
                _ => "reading from the broker, not SQLite, bounds both consumers",
            },
            pct(pull.fraction_of_ceiling),
            pct(push.fraction_of_ceiling)
        );
    }
    let (pc, uc) = (pull.backlog.cpu_seconds, push.backlog.cpu_seconds);
    if pull.backlog.events > 0 && push.backlog.events > 0 && pc > 0.0 && uc > 0.0 {
        let per = |cpu: f64, n: u64| cpu / (n as f64 / 1e6);
        let (pp, up) = (per(pc, pull.backlog.events), per(uc, push.backlog.events));
        let _ = write!(
            p,
            " CPU per million events: pull {pp:.2} s, push {up:.2} s{}.",
            if up > pp * 1.05 {
                " — push pays for the async runtime and the hand-off through its bounded channel"
            } else if pp > up * 1.05 {
                " — pull spends more CPU per event here"
            } else {
                ""
            }
        );
        let cores = r.run.machine.cores.max(1) as f64;
        let util = |cpu: f64, wall: f64| if wall > 0.0 { cpu / wall } else { 0.0 };
        let (pu, uu) = (
            util(pc, pull.backlog.wall_seconds),
            util(uc, push.backlog.wall_seconds),
        );
        let _ = write!(
            p,
            " Cores kept busy while draining: pull {pu:.2}, push {uu:.2} of {cores:.0}{}",
            if uu > pu * 1.1 && b > a {
                "; push overlaps reading and decoding with the SQLite commit on another thread, which is what a drain rewards when a core is free."
            } else if pu >= uu && a >= b {
                "; pull's single loop reads while librdkafka prefetches in the background and does not pay for a second hand-off."
            } else {
                "."
            }
        );
    }
    out.push(p);
}

fn live_reading(r: &Results, live: &LiveResult) -> Option<String> {
    let (pull, push) = (live.pull.as_ref()?, live.push.as_ref()?);
    if pull.latency_us.count == 0 || push.latency_us.count == 0 {
        return None;
    }
    let rate = live.rate as f64;
    let mut p = format!(
        "Live {}/s: p50 pull {} ms / push {} ms, p99 pull {} ms / push {} ms",
        human(rate),
        ms(pull.latency_us.p50),
        ms(push.latency_us.p50),
        ms(pull.latency_us.p99),
        ms(push.latency_us.p99)
    );
    let (a, b) = (pull.latency_us.p99, push.latency_us.p99);
    let d = rel(a.max(b), a.min(b));
    let better = if a < b { "pull" } else { "push" };
    let differs = d >= 10.0;
    if differs {
        let _ = write!(
            p,
            " — {better} is {:.0}% lower at p99.",
            d / (1.0 + d / 100.0)
        );
    } else {
        p.push_str(" — no meaningful difference at p99.");
    }

    // What the timers alone account for: an event waits up to linger.ms in
    // the producer, up to fetch.wait.max.ms in the broker, up to the flush
    // interval in an open batch.
    let flush = parse_f(&r.setting("pull", "flush_interval_ms"));
    let wait = parse_f(&r.setting("pull", "fetch.wait.max.ms")).unwrap_or(0.0);
    let linger = parse_f(&r.setting("producer", "linger.ms")).unwrap_or(0.0);
    let batch = parse_f(&r.setting("pull", "batch_size"));
    if let Some(flush) = flush {
        let timers = flush + wait + linger;
        let p50_max = pull.latency_us.p50.max(push.latency_us.p50) / 1e3;
        let p50_min = pull.latency_us.p50.min(push.latency_us.p50) / 1e3;
        let closes = match batch {
            Some(batch) if rate > 0.0 => {
                let fill_ms = batch / rate * 1e3;
                if fill_ms > flush {
                    format!(
                        "batches close on the {flush:.0} ms timer (a batch of {} would take {fill_ms:.0} ms to fill)",
                        num(batch as u64)
                    )
                } else {
                    format!(
                        "batches close on size ({} events fill in {fill_ms:.0} ms, before the {flush:.0} ms timer)",
                        num(batch as u64)
                    )
                }
            }
            _ => String::new(),
        };
        if p50_max <= timers * 1.5 {
            let _ = write!(
                p,
                " The timers account for this: flush interval {flush:.0} ms + fetch.wait.max.ms {wait:.0} + linger.ms {linger:.0} = {timers:.0} ms{}{}",
                if closes.is_empty() {
                    String::new()
                } else {
                    format!("; {closes}")
                },
                if differs {
                    "."
                } else {
                    ", so at this rate the settings, not the consumption model, decide latency."
                }
            );
        } else if p50_min <= timers * 1.5 {
            let (slow, fast) = if pull.latency_us.p50 > push.latency_us.p50 {
                ("pull", "push")
            } else {
                ("push", "pull")
            };
            let _ = write!(
                p,
                " {fast}'s median stays within what the timers account for (flush {flush:.0} + fetch.wait.max.ms {wait:.0} + linger.ms {linger:.0} = {timers:.0} ms), {slow}'s does not: events queue before {slow} commits them at this rate."
            );
        } else {
            let _ = write!(
                p,
                " Both medians exceed the {timers:.0} ms the timers account for (flush {flush:.0} + fetch.wait.max.ms {wait:.0} + linger.ms {linger:.0}){}: events queue before they are committed, so this rate is near what a consumer sustains here{}.",
                if closes.is_empty() {
                    String::new()
                } else {
                    format!("; {closes}")
                },
                if differs {
                    let backlog_winner = match (&r.pull, &r.push) {
                        (Some(x), Some(y))
                            if x.backlog.events_per_second > 0.0
                                && y.backlog.events_per_second > 0.0 =>
                        {
                            Some(
                                if x.backlog.events_per_second >= y.backlog.events_per_second {
                                    "pull"
                                } else {
                                    "push"
                                },
                            )
                        }
                        _ => None,
                    };
                    if backlog_winner == Some(better) {
                        format!(
                            ", and {better}, which also drained the backlog faster, keeps the queue shorter"
                        )
                    } else {
                        format!(", and {better} keeps the queue shorter")
                    }
                } else {
                    String::new()
                }
            );
        }
    }
    for (model, f) in [("pull", pull), ("push", push)] {
        if live.produced > 0 && f.events < live.produced {
            let _ = write!(
                p,
                " {model} stored only {} of {} events.",
                num(f.events),
                num(live.produced)
            );
        } else if f.events_per_second > 0.0 && f.events_per_second < rate * 0.9 {
            let _ = write!(
                p,
                " {model} committed {} events/s, below the offered rate: it fell behind.",
                eps(f.events_per_second)
            );
        }
    }
    if live.produced > 0 && live.producer_events_per_second < rate * 0.9 {
        let _ = write!(
            p,
            " The producer itself reached only {} events/s of the {} offered.",
            eps(live.producer_events_per_second),
            num(live.rate)
        );
    }
    Some(p)
}

fn divergence_reading(r: &Results, out: &mut Vec<String>) {
    let diffs: Vec<(u64, f64, &str)> = r
        .live
        .iter()
        .filter_map(|l| {
            let (a, b) = (l.pull.as_ref()?, l.push.as_ref()?);
            let (x, y) = (a.latency_us.p99, b.latency_us.p99);
            if x <= 0.0 || y <= 0.0 {
                return None;
            }
            Some((
                l.rate,
                x.max(y) / x.min(y),
                if x < y { "pull" } else { "push" },
            ))
        })
        .collect();
    if diffs.len() < 2 {
        return;
    }
    let Some(&(rate, ratio, better)) = diffs.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return;
    };
    if ratio >= 1.1 {
        out.push(format!(
            "Where they diverge: the largest p99 gap is at {}/s, where {better} is {ratio:.1}× lower.",
            human(rate as f64)
        ));
    } else {
        out.push(
            "Across the live rates the two models stay within 10% of each other at p99: at these rates the batching settings, not the consumption model, decide latency."
                .into(),
        );
    }
}

fn resources_reading(r: &Results, out: &mut Vec<String>) {
    let (Some(pull), Some(push)) = (&r.pull, &r.push) else {
        return;
    };
    let peak = |m: &crate::results::ModelResult, model: &str| {
        let live_max = r
            .live
            .iter()
            .filter_map(|l| {
                if model == "pull" {
                    l.pull.as_ref()
                } else {
                    l.push.as_ref()
                }
            })
            .map(|f| f.max_rss_bytes)
            .max()
            .unwrap_or(0);
        m.backlog.max_rss_bytes.max(live_max)
    };
    let (a, b) = (peak(pull, "pull"), peak(push, "push"));
    if a > 0 && b > 0 {
        let (hi, lo) = (a.max(b) as f64, a.min(b) as f64);
        out.push(format!(
            "Memory: peak RSS over all runs pull {} MB, push {} MB, with a backlog of {} events{}.",
            mb(a),
            mb(b),
            num(r.run.config.events),
            if hi > lo * 1.1 {
                format!(
                    "; {} needs {:.0}% more",
                    if a > b { "pull" } else { "push" },
                    (hi / lo - 1.0) * 100.0
                )
            } else {
                "; no meaningful difference".into()
            }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(num(10_000_000), "10,000,000");
        assert_eq!(num(999), "999");
        assert_eq!(ms(1_500.0), "1.50");
        assert_eq!(ms(25_000.0), "25.0");
        assert_eq!(mb(0), "–");
        assert_eq!(pct(Some(0.834)), "83%");
    }
}
