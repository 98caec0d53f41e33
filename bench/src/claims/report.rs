//! `claims.md`: the claims table, then each experiment's figures, the
//! settings that decide them, the machine's load and the verification.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::ClaimsRun;
use super::analysis::{Analysis, LoadFigures, num, pct, rate_text, values};
use super::verdict::Pair;

pub const WHAT_PUSH_IS: &str = "**What \"push\" is here.** No Kafka consumer is pushed to by the broker: \
in both models librdkafka's own fetcher thread sends fetch requests (long-polled up to \
`fetch.wait.max.ms`) and fills the same prefetch queue (capped at `queued.max.messages.kbytes`). \
The models differ only in how a message leaves that queue for the application. **Pull** \
(consumer-pull): a `BaseConsumer` loop calls `poll(100 ms)`, which returns as soon as a message \
is queued (the 100 ms is only how long it waits when nothing is, i.e. how often it looks at \
signals and idleness). **Push** (consumer-push): a `StreamConsumer` on tokio; librdkafka's \
queue calls back when it becomes non-empty (`rd_kafka_queue_cb_event_enable`), which wakes the \
async handler, which then takes the message. That callback is librdkafka's most push-shaped \
path; its legacy consume callback (`rd_kafka_conf_set_consume_cb`) is itself driven by a poll \
call. Either way the fetch path, and with it everything the broker and the network do, is the \
same, so a truly callback-driven handler could only change the in-process hand-off, which the \
latency rows below bound from above.";

/// `pull<sep>push`, their means.
fn means(p: &Pair, sep: &str) -> String {
    format!("{}{sep}{}", num(p.mean("pull")), num(p.mean("push")))
}

/// `pull / push`, every measurement.
fn all_values(p: &Pair) -> String {
    format!("{} / {}", values(&p.pull), values(&p.push))
}

fn noise(p: &Pair) -> String {
    match p.noise() {
        Some(n) if n.is_finite() => pct(n),
        Some(_) => "∞".into(),
        None => "–".into(),
    }
}

/// The claims table alone.
pub fn claims_table(a: &Analysis) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| claim | experiment | pull | push | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &a.claims {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | **{}**{} |",
            c.claim,
            c.experiment,
            c.pull,
            c.push,
            c.verdict.text(),
            if c.exceptions.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.exceptions)
            }
        );
    }
    s
}

fn load_table(s: &mut String, f: &LoadFigures) {
    let _ = writeln!(
        s,
        "| figure | pull | push | run-to-run spread |\n|---|--:|--:|--:|"
    );
    for (name, p) in [
        ("latency p50, ms", &f.p50_ms),
        ("latency p99, ms", &f.p99_ms),
        ("latency p99.9, ms", &f.p999_ms),
        ("latency max, ms", &f.max_ms),
        ("largest lag sampled, events", &f.max_lag),
        ("peak RSS sampled, MB", &f.peak_rss_mb),
        ("CPU, s (producer start to exit)", &f.cpu_s),
        (
            "events/s, first message to last commit",
            &f.events_per_second,
        ),
        ("SQLite transactions", &f.batches),
        ("partitions' catch-up spread, s", &f.catch_up_spread_s),
        ("largest partition lag ÷ mean, at the peak", &f.lag_skew),
        (
            "rebalances (assignments beyond the first, revocations logged)",
            &f.rebalances,
        ),
    ] {
        if p.pull.is_empty() && p.push.is_empty() {
            continue;
        }
        let _ = writeln!(s, "| {name} | {} | {} |", means(p, " | "), noise(p));
    }
}

pub fn render(r: &ClaimsRun, a: &Analysis, pictures: &[PathBuf]) -> String {
    let mut s = String::new();
    let pic = |name: &str| {
        if pictures
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name))
        {
            format!("\n![{name}]({name})\n")
        } else {
            String::new()
        }
    };
    let _ = writeln!(s, "# Push or pull: the claims, measured\n");
    let _ = writeln!(
        s,
        "Command: `{}`. Started {}, finished {}, **{:.0} s**. Machine: {} cores, {}, {:.0} GB; \
         load average (1, 5, 15 min) before `{}`, after `{}`. Broker: {} ({}{}). Code: `{}`.\n",
        r.command,
        r.started_at,
        r.finished_at,
        r.wall_seconds,
        r.machine.cores,
        r.machine.cpu_model,
        r.machine.memory_bytes as f64 / 1e9,
        r.load_before,
        r.load_after,
        r.broker.version,
        r.broker.address,
        r.broker
            .heap
            .as_ref()
            .map(|h| format!(", heap {h}"))
            .unwrap_or_default(),
        r.machine.git_revision
    );
    let st = &r.settings;
    let linger = st
        .producer_property
        .iter()
        .find(|(k, _)| k == "linger.ms")
        .map_or("2 (the producer's default)".to_string(), |(_, v)| v.clone());
    let fetch_wait = st
        .consumer_property
        .iter()
        .find(|(k, _)| k == "fetch.wait.max.ms")
        .map_or("100 (the consumers' default)".to_string(), |(_, v)| {
            v.clone()
        });
    let _ = writeln!(
        s,
        "Settings that decide latency: producer `linger.ms` {linger}; consumers batch size {}, \
         flush interval {} ms, `fetch.wait.max.ms` {fetch_wait}; pull's poll timeout 100 ms; \
         push wakes on librdkafka's queue callback. {} partitions.\n",
        st.batch_size, st.flush_interval_ms, st.partitions
    );
    let pass = a.phases.iter().all(|p| p.1 == "PASS") && r.failures.is_empty();
    let _ = writeln!(
        s,
        "Verification: **{}** in {} of {} phases (each database holds exactly the acknowledged \
         events: count, distinct ids, amount sum, id checksum, no dead letters; a group of \
         several instances checked as one with `ledger`).{}\n",
        if pass { "PASS" } else { "FAIL" },
        a.phases.iter().filter(|p| p.1 == "PASS").count(),
        a.phases.len(),
        if r.failures.is_empty() {
            String::new()
        } else {
            format!(" Failures: {}", r.failures.join("; "))
        }
    );
    let _ = writeln!(s, "{WHAT_PUSH_IS}\n");
    let _ = writeln!(s, "## The claims\n");
    let _ = writeln!(
        s,
        "A verdict: **holds** when the model the claim favours is better by more than the \
         run-to-run spread, **does not hold** when the other is, **no difference** within it. \
         The spread is measured: each experiment ran {} times (the idle window in two halves) \
         and the spread is the larger relative difference between one model's repeats. Where a \
         claim rests on several figures, the verdict is the most frequent of theirs (a tie: no \
         difference); each one is listed under the table.\n",
        r.options.repeats
    );
    s.push_str(&claims_table(a));
    let _ = writeln!(s);
    for c in &a.claims {
        let _ = writeln!(s, "- **{}** ({}): {}", c.claim, c.verdict.text(), c.basis);
    }
    let _ = writeln!(s);

    if !a.latency.is_empty() {
        let _ = writeln!(s, "## Steady rates: latency and CPU\n");
        let _ = writeln!(
            s,
            "Each rate for {} s (at least {} events), both consumers on the same events; the \
             mean of the repeats, and each figure's spread between repeats. CPU: the consumer \
             process's user + system time from the producer's start to the consumer's exit (at \
             low rates mostly its idle cost, which is the point).\n",
            r.options.duration,
            a.latency.first().map_or(0, |f| f.events.min(20))
        );
        let _ = writeln!(
            s,
            "| rate | producer made, ev/s | p50 ms pull / push | p99 ms pull / push | p99.9 ms pull / push | max ms pull / push | CPU µs/event pull / push | cores pull / push | spread p50 / p99 / CPU |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        );
        for f in &a.latency {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
                rate_text(f.rate),
                values(&f.producer_events_per_second),
                means(&f.p50_ms, " / "),
                means(&f.p99_ms, " / "),
                means(&f.p999_ms, " / "),
                means(&f.max_ms, " / "),
                means(&f.cpu_us_per_event, " / "),
                means(&f.cores, " / "),
                noise(&f.p50_ms),
                noise(&f.p99_ms),
                noise(&f.cpu_us_per_event),
            );
        }
        if let Some(f) = a.latency.iter().find(|f| f.events > 0 && f.events < 1000) {
            let _ = writeln!(
                s,
                "\nAt {} ({} events) p99.9 is the largest sample{}: the first event of a run \
                 waits for the idempotent producer's id handshake before it is sent (the same \
                 event for both models), so the tail at the lowest rates is the producer's start, \
                 and p50 is the figure that compares the models there.",
                rate_text(f.rate),
                f.events,
                if f.events < 100 { " and so is p99" } else { "" }
            );
        }
        s.push_str(&pic("claims-latency.svg"));
        s.push_str(&pic("claims-cpu.svg"));
        let _ = writeln!(s);
    }
    if let Some(i) = &a.idle {
        let _ = writeln!(s, "## Idle\n");
        let _ = writeln!(
            s,
            "Both consumers assigned and positioned, nothing sent for {} s, CPU read from \
             `/proc` in two halves: pull {} ms of CPU per second (halves {}), push {} (halves \
             {}); the broker meanwhile {} ms/s (halves {}). Both wake every 100 ms (pull's poll \
             timeout, push's tick) and librdkafka's fetcher sends a fetch per partition's broker \
             every `fetch.wait.max.ms`.\n",
            i.seconds,
            num(i.cpu_ms_per_s.mean("pull")),
            values(&i.cpu_ms_per_s.pull),
            num(i.cpu_ms_per_s.mean("push")),
            values(&i.cpu_ms_per_s.push),
            num(super::verdict::mean(&i.broker_cpu_ms_per_s)),
            values(&i.broker_cpu_ms_per_s),
        );
    }
    for (title, f, picture, what) in [
        (
            "Bursts",
            &a.burst,
            "claims-burst.svg",
            format!(
                "{} bursts of {} at {} for {} s, {} s of nothing after each (one producer process per burst)",
                r.options.burst.3,
                num((r.options.burst.0 * r.options.burst.1) as f64),
                rate_text(r.options.burst.0),
                r.options.burst.1,
                r.options.burst.2
            ),
        ),
        (
            "Step",
            &a.step,
            "claims-step.svg",
            format!(
                "{} for {} s each, one after the other (a producer process per rate)",
                r.options
                    .step
                    .0
                    .iter()
                    .map(|x| rate_text(*x))
                    .collect::<Vec<_>>()
                    .join(" → "),
                r.options.step.1
            ),
        ),
        (
            "Slow sink",
            &a.slow,
            "claims-slow.svg",
            format!(
                "the consumers with --batch-size {} (one SQLite transaction per {} event(s)), offered {} for {} s",
                r.options.slow.0,
                r.options.slow.0,
                rate_text(r.options.slow.1),
                r.options.slow.2
            ),
        ),
    ] {
        let Some(f) = f else { continue };
        let _ = writeln!(s, "## {title}\n");
        let _ = writeln!(
            s,
            "{what}; {} events per repeat; the producer made {} ev/s per segment (first repeat). \
             Lag: the topic's end minus the group's offset in Kafka, sampled every 250 ms; RSS \
             sampled from `/proc` every 250 ms.\n",
            num(f.events as f64),
            values(&f.segment_rates)
        );
        load_table(&mut s, f);
        s.push_str(&pic(picture));
        let _ = writeln!(s);
    }
    if !a.scale.is_empty() {
        let _ = writeln!(s, "## Scale-out\n");
        let _ = writeln!(
            s,
            "Each group drains its own fresh topic of {} partitions holding {} events, written \
             before its instances start; the instances start together, each with its own \
             database (`-X heartbeat.interval.ms=100`, so a member learns of a rebalance within \
             100 ms; the first to join holds every partition until then), and exit 3 s after \
             the backlog is drained. The databases are verified as one with `ledger`. Group \
             events/s: the events over the span from the first instance's assignment until the \
             group's lag was 0 (lag sampled every 250 ms); join: from the start until every \
             instance had partitions; drain: from the start until the lag was 0; rebalances: \
             assignments beyond one per instance, and revocations logged.\n",
            r.settings.partitions,
            num(r.options.scale.0 as f64),
        );
        let _ = writeln!(
            s,
            "| instances | group ev/s pull | push | join s pull / push | drain s pull / push | rebalances pull / push |\n|--:|--:|--:|--:|--:|--:|"
        );
        for f in &a.scale {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                f.instances,
                values(&f.events_per_second.pull),
                values(&f.events_per_second.push),
                all_values(&f.join_s),
                all_values(&f.drain_s),
                all_values(&f.rebalances),
            );
        }
        let _ = writeln!(s);
        for f in &a.scale {
            for (phase, per) in &f.per_instance {
                let _ = writeln!(s, "- {phase}: events per instance {per:?}");
            }
        }
        let _ = writeln!(s);
    }
    if let Some(o) = &a.outage {
        let _ = writeln!(s, "## Consumer outage\n");
        let _ = writeln!(
            s,
            "The producer offered {} while no consumer ran; both started after it finished and \
             drained. The producer made {} ev/s, acknowledgement tail {} ms, CPU {} s; in the \
             steady-rate phases at the same rate with both consumers live: {} ev/s, tail {} ms, \
             CPU {} s. After the outage pull drained at {} ev/s, push at {}; the oldest event \
             waited {} / {} s.\n",
            rate_text(o.rate),
            num(o.producer_events_per_second),
            num(o.producer_tail_ms),
            num(o.producer_cpu_s),
            values(&o.live_producer_events_per_second),
            values(&o.live_producer_tail_ms),
            values(&o.live_producer_cpu_s),
            num(o.drain_events_per_second.mean("pull")),
            num(o.drain_events_per_second.mean("push")),
            num(o.max_ms.mean("pull") / 1e3),
            num(o.max_ms.mean("push") / 1e3),
        );
    }
    let _ = writeln!(s, "## Phases\n");
    let _ = writeln!(s, "| phase | verification | seconds |\n|---|---|--:|");
    for (name, v, secs) in &a.phases {
        let _ = writeln!(s, "| {name} | {v} | {secs:.0} |");
    }
    s
}
