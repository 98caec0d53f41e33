//! `claims.md`: the claims table, then each experiment's figures, the
//! settings that decide them, the machine's load and the verification.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::ClaimsRun;
use super::analysis::{Analysis, LoadFigures, num, pct, rate_text, values};
use super::verdict::Pair;
use crate::report::{md_table, when};

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

pub fn claims_table(a: &Analysis) -> String {
    let rows = a.claims.iter().map(|c| {
        let except = when(!c.exceptions.is_empty(), || format!(" ({})", c.exceptions));
        let (verdict, claim, exp) = (c.verdict.text(), &c.claim, &c.experiment);
        format!(
            "{claim} | {exp} | {} | {} | **{verdict}**{except}",
            c.pull, c.push
        )
    });
    md_table("claim | experiment | pull | push | verdict", rows)
}

fn load_table(f: &LoadFigures) -> String {
    let rows = [
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
    ];
    let rows = rows
        .into_iter()
        .filter(|(_, p)| !p.pull.is_empty() || !p.push.is_empty());
    let rows = rows.map(|(name, p)| format!("{name} | {} | {}", means(p, " | "), noise(p)));
    md_table("figure | pull | push | run-to-run spread", rows)
}

pub fn render(r: &ClaimsRun, a: &Analysis, pictures: &[PathBuf]) -> String {
    let pic = |name: &str| {
        let drawn = pictures.iter().any(|p| p.ends_with(name));
        when(drawn, || format!("![{name}]({name})\n\n"))
    };
    let (m, st, o) = (&r.machine, &r.settings, &r.options);
    let mut s = String::from("# Push or pull: the claims, measured\n\n");
    let heap = r.broker.heap.as_ref().map(|h| format!(", heap {h}"));
    let _ = writeln!(
        s,
        "Command: `{}`. Started {}, finished {}, **{:.0} s**. Machine: {} cores, {}, {:.0} GB; \
         load average (1, 5, 15 min) before `{}`, after `{}`. Broker: {} ({}{}). Code: `{}`. \
         The method, what \"push\" is here, and past runs: `docs/benchmark.md`, \"Push or pull, answered\".\n",
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
         flush interval {} ms, `fetch.wait.max.ms` {wait}. {} partitions.\n",
        st.batch_size, st.flush_interval_ms, st.partitions
    );
    let passed = a.phases.iter().filter(|p| p.1 == "PASS").count();
    let pass = passed == a.phases.len() && r.failures.is_empty();
    let failures = when(!r.failures.is_empty(), || {
        format!(" Failures: {}", r.failures.join("; "))
    });
    let _ = writeln!(
        s,
        "Verification: **{}** in {passed} of {} phases.{failures}\n\n## The claims\n\n\
         Each experiment ran {} times; a verdict weighs the difference against the run-to-run spread.\n",
        if pass { "PASS" } else { "FAIL" },
        a.phases.len(),
        o.repeats
    );
    s.push_str(&claims_table(a));
    for c in &a.claims {
        let _ = writeln!(s, "- **{}** ({}): {}", c.claim, c.verdict.text(), c.basis);
    }
    s.push('\n');
    if let Some(first) = a.latency.first() {
        let _ = writeln!(
            s,
            "## Steady rates: latency and CPU\n\n\
             Each rate for {} s (at least {} events); the mean of the repeats, and the spread between them.\n",
            o.duration,
            first.events.min(20)
        );
        let rows = a.latency.iter().map(|f| {
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
            format!("{rate} | {made} | {cells} | {noises}")
        });
        s.push_str(&md_table("rate | producer made, ev/s | p50 ms pull / push | p99 ms pull / push | p99.9 ms pull / push | max ms pull / push | CPU µs/event pull / push | cores pull / push | spread p50 / p99 / CPU", rows));
        if let Some(f) = a.latency.iter().find(|f| f.events > 0 && f.events < 1000) {
            let also = when(f.events < 100, || " and so is p99".into());
            let (rate, n) = (rate_text(f.rate), f.events);
            let _ = writeln!(
                s,
                "At {rate} ({n} events) p99.9 is the largest sample{also}: the producer's start; p50 compares the models there.\n",
            );
        }
        s.push_str(&(pic("claims-latency.svg") + &pic("claims-cpu.svg")));
    }
    if let Some(i) = &a.idle {
        let (c, broker) = (&i.cpu_ms_per_s, &i.broker_cpu_ms_per_s);
        let _ = writeln!(
            s,
            "## Idle\n\nNothing sent for {} s: pull {} ms of CPU per second (halves {}), push {} \
             (halves {}); the broker {} ms/s (halves {}).\n",
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
    let burst = num((rate * secs) as f64);
    let loads = [
        (
            "Bursts",
            &a.burst,
            "claims-burst.svg",
            format!(
                "{n} bursts of {burst} at {} for {secs} s, {gap} s of nothing after each",
                rate_text(rate)
            ),
        ),
        (
            "Step",
            &a.step,
            "claims-step.svg",
            format!("{} for {} s each", steps.join(" → "), o.step.1),
        ),
        (
            "Slow sink",
            &a.slow,
            "claims-slow.svg",
            format!(
                "--batch-size {batch}, offered {} for {slow_secs} s",
                rate_text(slow_rate)
            ),
        ),
    ];
    for (title, f, picture, what) in loads {
        let Some(f) = f else { continue };
        let (events, made) = (num(f.events as f64), values(&f.segment_rates));
        let _ = writeln!(
            s,
            "## {title}\n\n{what}; {events} events per repeat; the producer made {made} ev/s per segment (first repeat).\n",
        );
        s.push_str(&(load_table(f) + &pic(picture)));
    }
    if !a.scale.is_empty() {
        let _ = writeln!(
            s,
            "## Scale-out\n\nEach group drains its own topic of {} partitions holding {} events.\n",
            st.partitions,
            num(o.scale.0 as f64),
        );
        let rows = a.scale.iter().map(|f| {
            let eps = &f.events_per_second;
            let cells = [&f.join_s, &f.drain_s, &f.rebalances]
                .map(all_values)
                .join(" | ");
            let (k, pull, push) = (f.instances, values(&eps.pull), values(&eps.push));
            format!("{k} | {pull} | {push} | {cells}")
        });
        s.push_str(&md_table("instances | group ev/s pull | push | join s pull / push | drain s pull / push | rebalances pull / push", rows));
        for (phase, per) in a.scale.iter().flat_map(|f| &f.per_instance) {
            let _ = writeln!(s, "- {phase}: events per instance {per:?}");
        }
        s.push('\n');
    }
    s.push_str("## Phases\n\n");
    let rows = a
        .phases
        .iter()
        .map(|(name, v, secs)| format!("{name} | {v} | {secs:.0}"));
    s + &md_table("phase | verification | seconds", rows)
}
