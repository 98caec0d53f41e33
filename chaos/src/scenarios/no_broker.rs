//! Item 3: the broker unreachable at start.
//!
//! - the producer, given `--timeout 5`, must exit non-zero with one clear
//!   error line within the timeout (plus a margin);
//! - the consumers, started against an address where nothing listens yet,
//!   must keep running and keep logging what they wait for; once a private
//!   Apache Kafka appears there (after `--no-broker-secs`) and the events
//!   are produced, they must store them all, exactly.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::Result;
use testkit::procs::{GENEROUS, Proc, wait_until};
use testkit::verify::committed_messages;
use testkit::{Kafka, KafkaOptions, free_port, kafka, verify};

use super::{consumer, exactness, expected, fresh_dir, per_consumer, producer, secret_leaks};
use crate::{Config, Outcome, Scenario};

/// Runs the scenario.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "no-broker")?;
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let mut outcomes = vec![producer_fails_clearly(cfg, &dir, &brokers)?];

    // The consumers start first, against nothing, on the topic the
    // broker will have.
    let topic = kafka::unique("chaos.no-broker");
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut cmds = Vec::new();
    for &c in &cfg.consumers {
        let cmd = consumer(cfg, Scenario::NoBroker, c, &brokers, &topic, &dir);
        runs.push((c, cmd.spawn(&cfg.bins, 0, &[])?));
        cmds.push(cmd);
    }
    std::thread::sleep(Duration::from_secs(cfg.no_broker_secs));
    let mut waiting = Vec::new();
    for (c, p) in &mut runs {
        let alive = p.try_status().is_none();
        let lines = p.log_text().lines().count();
        waiting.push((*c, alive, lines, p.log_tail(3)));
    }
    let options = KafkaOptions {
        port: Some(port),
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_in_dir(&dir.join("kafka"), options)?;
    let appeared = started.elapsed();
    kafka.create_topic(&topic, cfg.partitions)?;
    producer(cfg, kafka.bootstrap(), &topic).run(&cfg.bins, &dir, "producer")?;
    let expected = expected(cfg);
    let runs = std::sync::Mutex::new(runs);
    let results = per_consumer(cfg, Scenario::NoBroker, |c| {
        let mut p = {
            let mut guard = runs.lock().expect("runs");
            let i = guard.iter().position(|(k, _)| *k == c).expect("run");
            guard.remove(i).1
        };
        let (_, alive, lines, tail) = waiting
            .iter()
            .find(|(k, ..)| *k == c)
            .cloned()
            .expect("waiting");
        let mut problems = Vec::new();
        if !alive {
            problems.push(format!("exited while the broker was unreachable: {tail}"));
        }
        if lines == 0 {
            problems.push("logged nothing while the broker was unreachable".into());
        }
        let db = &cmds.iter().find(|k| k.model == c).expect("command").db;
        let mut first_commit = None;
        let proceeded = wait_until(GENEROUS, "the first commit", || {
            if committed_messages(db) > 0 {
                first_commit.get_or_insert(started.elapsed());
                return true;
            }
            p.try_status().is_some()
        });
        if let Err(e) = proceeded {
            problems.push(format!("{e}"));
        }
        let status = p.wait(GENEROUS)?;
        if !status.success() {
            problems.push(format!("exited with {status}: {}", p.log_tail(5)));
        }
        let f = verify(db, &expected, 0)?;
        exactness(&f, cfg.events, &mut problems);
        problems.extend(secret_leaks(&dir));
        let resumed = first_commit
            .map(|t| format!("{:.1}", t.saturating_sub(appeared).as_secs_f64()))
            .unwrap_or_else(|| "never".into());
        Ok(Outcome::new(
            Scenario::NoBroker,
            c.name(),
            format!(
                "events {} waited_s {} log_lines_while_waiting {lines} first_commit_after_broker_s {resumed} {}",
                f.events,
                appeared.as_secs(),
                f.brief()
            ),
            problems,
        ))
    });
    outcomes.extend(results);
    Ok(outcomes)
}

/// The producer against an address where nothing listens, `--timeout 5`.
fn producer_fails_clearly(cfg: &Config, dir: &std::path::Path, brokers: &str) -> Result<Outcome> {
    let timeout = 5u64;
    let args: Vec<OsString> = [
        "--brokers",
        brokers,
        "--count",
        "1000",
        "--timeout",
        &timeout.to_string(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let started = Instant::now();
    let mut p = Proc::spawn(
        &cfg.bins.producer(),
        &args,
        &dir.join("producer-no-broker.log"),
        None,
        "producer",
    )?;
    let status = p.wait(Duration::from_secs(timeout + 60))?;
    let took = started.elapsed();
    let text = p.log_text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    let mut problems = Vec::new();
    if status.success() {
        problems.push("exit status 0 without a broker".into());
    }
    if took > Duration::from_secs(timeout + 5) {
        problems.push(format!(
            "took {:.1} s to give up with --timeout {timeout}",
            took.as_secs_f64()
        ));
    }
    let last_error = errors.last().copied().unwrap_or("");
    if !last_error.contains("cannot reach") {
        problems.push(format!("no clear error line: {last_error:?}"));
    }
    Ok(Outcome::new(
        Scenario::NoBroker,
        "producer",
        format!(
            "timeout_s {timeout} exited_after_s {:.1} exit_code {} error {:?}",
            took.as_secs_f64(),
            status.code().unwrap_or(-1),
            last_error
        ),
        problems,
    ))
}
