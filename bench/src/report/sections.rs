//! The report's sections after the table: ceilings, saturation, queries,
//! settings, the broker.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::*;

pub(super) fn ceilings_section(r: &Results, s: &mut String) {
    let mut rows = Vec::new();
    let c = r.ceilings.as_ref();
    // Events, events/s, wall s, CPU s, peak RSS MB.
    let figs = |n, rate, wall: Option<f64>, cpu: Option<f64>, rss| {
        let (wall, cpu) = (
            dash_or(wall, |x| format!("{x:.2}")),
            dash_or(cpu, |x| format!("{x:.1}")),
        );
        format!("{} | {} | {wall} | {cpu} | {}", num(n), eps(rate), mb(rss))
    };
    if let Some(x) = c.and_then(|c| c.raw_consume.as_ref()) {
        let f = figs(
            x.events,
            x.events_per_second,
            Some(x.wall_seconds),
            Some(x.cpu_seconds),
            x.max_rss_bytes,
        );
        rows.push(format!(
            "raw consume (decode only) | {f} | {} decode errors",
            x.decode_errors
        ));
    }
    let inserts = c.map(|c| {
        [
            ("store insert", &c.store_insert),
            ("bare SQLite", &c.bare_sqlite),
        ]
    });
    for (what, x) in inserts.into_iter().flatten() {
        let Some(x) = x else { continue };
        let f = figs(
            x.events,
            x.events_per_second,
            Some(x.commit_seconds),
            Some(x.cpu_seconds),
            x.max_rss_bytes,
        );
        let notes = match x.halves_events_per_second {
            _ if what == "bare SQLite" => format!(
                "the store reaches {} of it",
                pct(c.and_then(|c| c.store_to_bare))
            ),
            Some([b, a]) => format!(
                "halves before and after the drains {}/s, {}/s; {} events/s with the generation",
                eps(b),
                eps(a),
                eps(x.events_per_second_with_generation)
            ),
            None => format!(
                "{} events/s with the generation",
                eps(x.events_per_second_with_generation)
            ),
        };
        rows.push(format!(
            "{what} | {f} | batches of {}; {notes}; DB {} MB",
            num(x.batch_size),
            mb(x.db_bytes)
        ));
    }
    if let Some(p) = &r.producer {
        let f = figs(
            p.events,
            p.events_per_second,
            Some(p.wall_seconds),
            Some(p.cpu_seconds),
            p.max_rss_bytes,
        );
        rows.push(format!(
            "producer | {f} | {} of its raw ceiling",
            pct(p.ratio_to_raw)
        ));
        if let Some(raw) = p.raw_events_per_second {
            let f = figs(
                p.events,
                raw,
                None,
                p.raw_cpu_seconds,
                p.raw_max_rss_bytes.unwrap_or(0),
            );
            let (before, after) = (
                p.raw_before_events_per_second,
                p.raw_after_events_per_second,
            );
            let (before, after) = (dash_or(before, eps), dash_or(after, eps));
            rows.push(format!(
                "producer --raw | {f} | halves before and after the producer {before}/s, {after}/s"
            ));
        }
    }
    if !rows.is_empty() {
        s.push_str("## Ceilings and producer\n\nHow each is measured: `docs/benchmark.md`, \"Ceilings\".\n\n");
        s.push_str(&md_table(
            "What | Events | Events/s | Wall s | CPU s | Peak RSS MB | Notes",
            rows,
        ));
    }
}

pub(super) fn saturation_section(r: &Results, s: &mut String) {
    let Some(sat) = &r.saturation else { return };
    let bound = sat.p99_bound_ms;
    let _ = writeln!(
        s,
        "## Saturation\n\nOffered rates doubling, {} s each; \"sustains\": keeps pace and p99 within {bound} ms (`docs/benchmark.md`, \"Saturation\").\n",
        r.run.config.duration_s
    );
    let mut rows = Vec::new();
    for step in &sat.steps {
        for (model, f) in [("pull", &step.pull), ("push", &step.push)] {
            let Some(f) = f else { continue };
            let l = &f.latency_us;
            let sustains = crate::results::sustains(step, Some(f), bound);
            rows.push(format!(
                "{} | {} | {model} | {} | {} | {} | {} | {} | {}",
                num(step.rate),
                eps(step.producer_events_per_second),
                eps(f.events_per_second),
                ms(l.p50),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                if sustains { "yes" } else { "no" }
            ));
        }
    }
    s.push_str(&md_table("Offered/s | Producer/s | Model | Events/s | p50 ms | p99 ms | p99.9 ms | max ms | Sustains", rows));
}

pub(super) fn queries_section(r: &Results, s: &mut String) {
    let Some(q) = &r.queries else { return };
    let _ = writeln!(
        s,
        "## Store queries\n\nOn `{}` after `ensure_query_index()` (built in {:.1} s; database {} MB before, {} MB after), {} accounts each:\n",
        q.db,
        q.index_build_seconds,
        mb(q.db_bytes_before_index),
        mb(q.db_bytes_after_index),
        q.latest_events_50.samples
    );
    let rows = [
        ("50 latest events of one account", &q.latest_events_50),
        ("balance of one account", &q.account_balance),
    ];
    let rows = rows.map(|(name, t)| {
        let (first, p50, p99, max) = (t.first_ms, t.p50_ms, t.p99_ms, t.max_ms);
        format!(
            "{name} | {first:.3} | {p50:.3} | {p99:.3} | {max:.3} | {:.1}",
            t.rows_mean
        )
    });
    s.push_str(&md_table(
        "Query | first ms | p50 ms | p99 ms | max ms | rows/call",
        rows,
    ));
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

/// Whether `key=value` is just librdkafka's default (as `rd_kafka_conf_dump`
/// shows an empty configuration): the consumers report every property in
/// force, a hundred or so. Keys librdkafka does not know (the consumers'
/// own knobs, topic-level properties) are never defaults.
fn is_default(key: &str, value: &str) -> bool {
    static DEFAULTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    let empty = || common::kafka::conf_dump(&rdkafka::ClientConfig::new()).unwrap_or_default();
    DEFAULTS
        .get_or_init(empty)
        .get(key)
        .is_some_and(|d| d == value)
}

pub(super) fn settings_section(r: &Results, s: &mut String) {
    let all: Vec<_> = r.settings.values().collect();
    let shown = |k: &str, v: &String| v != "[redacted]" && !is_default(k, v);
    let chosen = |k: &&String| {
        ALWAYS_SHOWN.contains(&k.as_str())
            || (!NEVER_SHOWN.contains(&k.as_str())
                && all.iter().any(|m| m.get(*k).is_some_and(|v| shown(k, v))))
    };
    let mut keys: Vec<&String> = all.iter().flat_map(|m| m.keys()).filter(chosen).collect();
    if keys.is_empty() {
        return;
    }
    keys.sort();
    keys.dedup();
    s.push_str("## Settings\n\nAs each process reported them: the consumers' own knobs, the librdkafka properties (dotted) that differ from librdkafka's default, and the latency-deciding ones. All of them: `results.json`.\n\n");
    let rows = keys.into_iter().map(|k| {
        let v = |who| r.setting(who, k);
        format!("`{k}` | {} | {} | {}", v("producer"), v("pull"), v("push"))
    });
    s.push_str(&md_table("Setting | producer | pull | push", rows));
}

/// The broker process during each phase: its CPU and memory over the
/// phase's steps, from `/proc` (local brokers only).
pub(super) fn broker_section(r: &Results, s: &mut String) {
    let mut phases: Vec<(&str, f64, f64, u64, u64)> = Vec::new();
    for st in &r.run.steps {
        let Some(u) = &st.broker else { continue };
        let i = phases
            .iter()
            .position(|p| p.0 == st.phase)
            .unwrap_or_else(|| {
                phases.push((&st.phase, 0.0, 0.0, 0, 0));
                phases.len() - 1
            });
        let p = &mut phases[i];
        p.1 += st.seconds;
        p.2 += u.cpu_seconds;
        p.3 = p.3.max(u.max_rss_bytes);
        p.4 = p.4.max(u.hwm_bytes);
    }
    if phases.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Broker during each phase\n\nThe broker process ({}), from `/proc`.\n",
        or_dash(&r.run.broker.kind)
    );
    let rows = phases.into_iter().map(|(phase, secs, cpu, rss, hwm)| {
        let busy = if secs > 0.0 { cpu / secs } else { 0.0 };
        format!(
            "{phase} | {secs:.1} | {cpu:.1} | {busy:.2} | {} | {}",
            mb(rss),
            mb(hwm)
        )
    });
    s.push_str(&md_table(
        "Phase | Seconds | CPU s | Cores busy | Peak RSS MB | VmHWM MB",
        rows,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_a_few_defaults() {
        assert!(is_default("fetch.wait.max.ms", "500"));
        assert!(!is_default("fetch.wait.max.ms", "10"));
        assert!(!is_default("batch_size", "20000"));
    }
}
