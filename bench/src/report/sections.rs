//! The report's sections after the table: ceilings, saturation, queries,
//! settings, the broker.

use super::*;

pub(super) fn or_dash(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

pub(super) fn ceilings_section(r: &Results, s: &mut String) {
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

pub(super) fn saturation_section(r: &Results, s: &mut String) {
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

pub(super) fn queries_section(r: &Results, s: &mut String) {
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
pub(super) const ALWAYS_SHOWN: [&str; 8] = [
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
pub(super) const NEVER_SHOWN: [&str; 4] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "client.id",
];

pub(super) fn settings_section(r: &Results, s: &mut String) {
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
pub(super) fn broker_section(r: &Results, s: &mut String) {
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
