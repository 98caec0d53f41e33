//! `no-broker` (chaos/README.md).

use std::time::{Duration, Instant};

use anyhow::Result;
use testkit::ProducerCmd;
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::committed_messages;
use testkit::{Kafka, KafkaOptions, free_port, kafka, verify};

use super::{check, consumer, each, exactness, expected, fresh_dir, producer, secret_leaks};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::NoBroker;

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
    for &c in &cfg.consumers {
        let cmd = consumer(cfg, SC, c, &brokers, &topic, &dir);
        runs.push((c, (cmd.spawn(&cfg.bins, 0, &[])?, cmd)));
    }
    std::thread::sleep(Duration::from_secs(cfg.no_broker_secs));
    let mut problems = Vec::new();
    for (_, (p, _)) in &mut runs {
        let mut found = Vec::new();
        if p.try_status().is_some() {
            found.push(format!(
                "exited while the broker was unreachable: {}",
                p.log_tail(3)
            ));
        }
        let lines = p.log_text().lines().count();
        if lines == 0 {
            found.push("logged nothing while the broker was unreachable".into());
        }
        problems.push((lines, found));
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
    let items = runs.into_iter().zip(problems);
    let items = items.map(|((c, (p, cmd)), (lines, found))| (c, (p, cmd, lines, found)));
    let results = each(SC, items.collect(), |(mut p, cmd, lines, mut problems)| {
        let db = &cmd.db;
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
        let figures = format!(
            "events {} waited_s {} log_lines_while_waiting {lines} first_commit_after_broker_s {resumed} {}",
            f.events,
            appeared.as_secs(),
            f.brief()
        );
        Ok(Outcome::new(SC, cmd.model.name(), figures, problems))
    });
    outcomes.extend(results);
    Ok(outcomes)
}

/// The producer against an address where nothing listens, `--timeout 5`.
fn producer_fails_clearly(cfg: &Config, dir: &std::path::Path, brokers: &str) -> Result<Outcome> {
    let mut cmd = ProducerCmd::new(brokers, "banking.events", 1000, cfg.seed, cfg.accounts);
    cmd.timeout_secs = 5;
    let timeout = cmd.timeout_secs;
    let started = Instant::now();
    let mut p = cmd.spawn(&cfg.bins, dir, "producer-no-broker")?;
    let status = p.wait(Duration::from_secs(timeout + 60))?;
    let took = started.elapsed();
    let text = p.log_text();
    let last_error = text
        .lines()
        .rfind(|l| l.to_ascii_lowercase().contains("error"));
    let last_error = last_error.unwrap_or("");
    let mut problems = Vec::new();
    check(&mut problems, !status.success(), || {
        "exit status 0 without a broker".into()
    });
    check(
        &mut problems,
        took <= Duration::from_secs(timeout + 5),
        || format!("took {took:.1?} to give up with --timeout {timeout}"),
    );
    check(&mut problems, last_error.contains("cannot reach"), || {
        format!("no clear error line: {last_error:?}")
    });
    let figures = format!(
        "timeout_s {timeout} exited_after_s {:.1} exit_code {} error {:?}",
        took.as_secs_f64(),
        status.code().unwrap_or(-1),
        last_error
    );
    Ok(Outcome::new(SC, "producer", figures, problems))
}
