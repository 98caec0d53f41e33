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
    p.noise().map_or("–".into(), pct)
}

/// `text` when `cond`, else nothing.
fn when(cond: bool, text: impl FnOnce() -> String) -> String {
    cond.then(text).unwrap_or_default()
}

pub fn claims_table(a: &Analysis) -> String {
    let mut s =
        String::from("| claim | experiment | pull | push | verdict |\n|---|---|---|---|---|\n");
    for c in &a.claims {
        let except = when(!c.exceptions.is_empty(), || format!(" ({})", c.exceptions));
        let (verdict, claim, exp) = (c.verdict.text(), &c.claim, &c.experiment);
        let _ = writeln!(
            s,
            "| {claim} | {exp} | {} | {} | **{verdict}**{except} |",
            c.pull, c.push
        );
    }
    s
}

fn load_table(s: &mut String, f: &LoadFigures) {
    s.push_str("| figure | pull | push | run-to-run spread |\n|---|--:|--:|--:|\n");
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
        if !p.pull.is_empty() || !p.push.is_empty() {
            let _ = writeln!(s, "| {name} | {} | {} |", means(p, " | "), noise(p));
        }
    }
}

pub fn render(r: &ClaimsRun, a: &Analysis, pictures: &[PathBuf]) -> String {
    let pic = |name: &str| {
        let drawn = pictures.iter().any(|p| p.ends_with(name));
        when(drawn, || format!("\n![{name}]({name})\n"))
    };
    let (m, st, o) = (&r.machine, &r.settings, &r.options);
    let mut s = String::from("# Push or pull: the claims, measured\n\n");
    let heap = r.broker.heap.as_ref().map(|h| format!(", heap {h}"));
    let _ = writeln!(
        s,
        "Command: `{}`. Started {}, finished {}, **{:.0} s**. Machine: {} cores, {}, {:.0} GB; \
         load average (1, 5, 15 min) before `{}`, after `{}`. Broker: {} ({}{}). Code: `{}`.\n",
        r.command,
        r.started_at,
        r.finished_at,
        r.wall_seconds,
        m.cores,
        m.cpu_model,
        m.memory_bytes as f64 / 1e9,
        r.load_before,
        r.load_after,
        r.broker.version,
        r.broker.address,
        heap.unwrap_or_default(),
        m.git_revision
    );
    let property = |props: &[(String, String)], key: &str, default: &str| {
        let found = props.iter().find(|(k, _)| k == key);
        found.map_or(default.to_string(), |(_, v)| v.clone())
    };
    let linger = property(
        &st.producer_property,
        "linger.ms",
        "2 (the producer's default)",
    );
    let wait = property(
        &st.consumer_property,
        "fetch.wait.max.ms",
        "100 (the consumers' default)",
    );
    let _ = writeln!(
        s,
        "Settings that decide latency: producer `linger.ms` {linger}; consumers batch size {}, \
         flush interval {} ms, `fetch.wait.max.ms` {wait}; pull's poll timeout 100 ms; \
         push wakes on librdkafka's queue callback. {} partitions.\n",
        st.batch_size, st.flush_interval_ms, st.partitions
    );
    let passed = a.phases.iter().filter(|p| p.1 == "PASS").count();
    let pass = passed == a.phases.len() && r.failures.is_empty();
    let failures = when(!r.failures.is_empty(), || {
        format!(" Failures: {}", r.failures.join("; "))
    });
    let _ = writeln!(
        s,
        "Verification: **{}** in {passed} of {} phases (each database holds exactly the acknowledged \
         events: count, distinct ids, amount sum, id checksum, no dead letters; a group of \
         several instances checked as one with `ledger`).{failures}\n",
        if pass { "PASS" } else { "FAIL" },
        a.phases.len(),
    );
    let _ = writeln!(
        s,
        "{WHAT_PUSH_IS}\n\n## The claims\n\n\
         A verdict: **holds** when the model the claim favours is better by more than the \
         run-to-run spread, **does not hold** when the other is, **no difference** within it. \
         The spread is measured: each experiment ran {} times (the idle window in two halves) \
         and the spread is the larger relative difference between one model's repeats. Where a \
         claim rests on several figures, the verdict is the most frequent of theirs (a tie: no \
         difference); each one is listed under the table.\n",
        o.repeats
    );
    s.push_str(&claims_table(a));
    let _ = writeln!(s);
    for c in &a.claims {
        let _ = writeln!(s, "- **{}** ({}): {}", c.claim, c.verdict.text(), c.basis);
    }
    let _ = writeln!(s);

    if let Some(first) = a.latency.first() {
        let _ = writeln!(
            s,
            "## Steady rates: latency and CPU\n\n\
             Each rate for {} s (at least {} events), both consumers on the same events; the \
             mean of the repeats, and each figure's spread between repeats. CPU: the consumer \
             process's user + system time from the producer's start to the consumer's exit (at \
             low rates mostly its idle cost, which is the point).\n",
            o.duration,
            first.events.min(20)
        );
        s.push_str("| rate | producer made, ev/s | p50 ms pull / push | p99 ms pull / push | p99.9 ms pull / push | max ms pull / push | CPU µs/event pull / push | cores pull / push | spread p50 / p99 / CPU |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for f in &a.latency {
            let cells = [
                &f.p50_ms,
                &f.p99_ms,
                &f.p999_ms,
                &f.max_ms,
                &f.cpu_us_per_event,
                &f.cores,
            ];
            let cells = cells.map(|p| means(p, " / ")).join(" | ");
            let noises = [&f.p50_ms, &f.p99_ms, &f.cpu_us_per_event]
                .map(noise)
                .join(" / ");
            let (rate, made) = (rate_text(f.rate), values(&f.producer_events_per_second));
            let _ = writeln!(s, "| {rate} | {made} | {cells} | {noises} |");
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
        let _ = writeln!(s, "{}{}", pic("claims-latency.svg"), pic("claims-cpu.svg"));
    }
    if let Some(i) = &a.idle {
        let c = &i.cpu_ms_per_s;
        let broker = &i.broker_cpu_ms_per_s;
        let _ = writeln!(
            s,
            "## Idle\n\n\
             Both consumers assigned and positioned, nothing sent for {} s, CPU read from \
             `/proc` in two halves: pull {} ms of CPU per second (halves {}), push {} (halves \
             {}); the broker meanwhile {} ms/s (halves {}). Both wake every 100 ms (pull's poll \
             timeout, push's tick) and librdkafka's fetcher sends a fetch per partition's broker \
             every `fetch.wait.max.ms`.\n",
            i.seconds,
            num(c.mean("pull")),
            values(&c.pull),
            num(c.mean("push")),
            values(&c.push),
            num(super::verdict::mean(broker)),
            values(broker),
        );
    }
    let (rate, secs, gap, n) = o.burst;
    let steps: Vec<String> = o.step.0.iter().map(|x| rate_text(*x)).collect();
    let (batch, slow_rate, slow_secs) = o.slow;
    for (title, f, picture, what) in [
        (
            "Bursts",
            &a.burst,
            "claims-burst.svg",
            format!(
                "{n} bursts of {} at {} for {secs} s, {gap} s of nothing after each (one producer process per burst)",
                num((rate * secs) as f64),
                rate_text(rate),
            ),
        ),
        (
            "Step",
            &a.step,
            "claims-step.svg",
            format!(
                "{} for {} s each, one after the other (a producer process per rate)",
                steps.join(" → "),
                o.step.1
            ),
        ),
        (
            "Slow sink",
            &a.slow,
            "claims-slow.svg",
            format!(
                "the consumers with --batch-size {batch} (one SQLite transaction per {batch} event(s)), offered {} for {slow_secs} s",
                rate_text(slow_rate),
            ),
        ),
    ] {
        let Some(f) = f else { continue };
        let _ = writeln!(
            s,
            "## {title}\n\n\
             {what}; {} events per repeat; the producer made {} ev/s per segment (first repeat). \
             Lag: the topic's end minus the group's offset in Kafka, sampled every 250 ms; RSS \
             sampled from `/proc` every 250 ms.\n",
            num(f.events as f64),
            values(&f.segment_rates)
        );
        load_table(&mut s, f);
        let _ = writeln!(s, "{}", pic(picture));
    }
    if !a.scale.is_empty() {
        let _ = writeln!(
            s,
            "## Scale-out\n\n\
             Each group drains its own fresh topic of {} partitions holding {} events, written \
             before its instances start; the instances start together, each with its own \
             database (`-X heartbeat.interval.ms=100`, so a member learns of a rebalance within \
             100 ms; the first to join holds every partition until then), and exit 3 s after \
             the backlog is drained. The databases are verified as one with `ledger`. Group \
             events/s: the events over the span from the first instance's assignment until the \
             group's lag was 0 (lag sampled every 250 ms); join: from the start until every \
             instance had partitions; drain: from the start until the lag was 0; rebalances: \
             assignments beyond one per instance, and revocations logged.\n",
            st.partitions,
            num(o.scale.0 as f64),
        );
        s.push_str("| instances | group ev/s pull | push | join s pull / push | drain s pull / push | rebalances pull / push |\n|--:|--:|--:|--:|--:|--:|\n");
        for f in &a.scale {
            let eps = &f.events_per_second;
            let cells = [&f.join_s, &f.drain_s, &f.rebalances]
                .map(all_values)
                .join(" | ");
            let (k, pull, push) = (f.instances, values(&eps.pull), values(&eps.push));
            let _ = writeln!(s, "| {k} | {pull} | {push} | {cells} |");
        }
        let _ = writeln!(s);
        for (phase, per) in a.scale.iter().flat_map(|f| &f.per_instance) {
            let _ = writeln!(s, "- {phase}: events per instance {per:?}");
        }
        let _ = writeln!(s);
    }
    if let Some(o) = &a.outage {
        let (drain, max) = (&o.drain_events_per_second, &o.max_ms);
        let _ = writeln!(
            s,
            "## Consumer outage\n\n\
             The producer offered {} while no consumer ran; both started after it finished and \
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
            num(drain.mean("pull")),
            num(drain.mean("push")),
            num(max.mean("pull") / 1e3),
            num(max.mean("push") / 1e3),
        );
    }
    s.push_str("## Phases\n\n| phase | verification | seconds |\n|---|---|--:|\n");
    for (name, v, secs) in &a.phases {
        let _ = writeln!(s, "| {name} | {v} | {secs:.0} |");
    }
    s
}
