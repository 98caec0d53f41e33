//! `--ready-file`: a consumer writes it once its partitions are assigned
//! and positioned, replacing a stale one, and a program that starts the
//! consumer (the bench) waits for it instead of reading logs. Not a fault
//! scenario: a check of the consumers' contract, run by their tests.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use consumer_core::ready::Ready;
use testkit::procs::wait_until;
use testkit::{Bins, ConsumerCmd, ConsumerStats, Kafka, Model, kafka};

/// Partitions of the check's topic.
const PARTITIONS: i32 = 4;

/// The test (skipped where Apache Kafka cannot start): `model` on an empty
/// topic with a stale ready file in place, which must be replaced after the
/// assignment with the topic, every partition and the consumer's pid.
pub fn ready_file_test(test: &str, model: Model) {
    if let Some(kafka) = Kafka::shared_or_skip(test) {
        ready_file(kafka, model).unwrap_or_else(|e| panic!("{e:#}"));
    }
}

fn ready_file(kafka: &Kafka, model: Model) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("ready-file-").tempdir()?;
    let topic = kafka::unique("ready");
    kafka.create_topic(&topic, PARTITIONS)?;
    let group = kafka::unique("ready");
    let mut cmd = ConsumerCmd::new(model, kafka.bootstrap(), &topic, &group, dir.path());
    cmd.idle_secs = Some(2);
    let ready = dir.path().join("consumer.ready");
    std::fs::write(&ready, "left by an earlier run")?;
    let ready_arg = ready.display().to_string();
    let mut p = cmd.spawn(&Bins::of_this_build(), 0, &["--ready-file", &ready_arg])?;
    let mut found = None;
    wait_until(Duration::from_secs(120), "the ready file", || {
        found = Ready::read(&ready);
        found.is_some()
    })?;
    let record = found.expect("read above");
    ensure!(record.topic == topic, "ready file names {}", record.topic);
    ensure!(
        record.partitions == (0..PARTITIONS).collect::<Vec<_>>(),
        "ready file lists partitions {:?}",
        record.partitions
    );
    ensure!(record.pid == p.pid(), "ready file's pid {}", record.pid);
    let _: ConsumerStats = p.wait_success()?;
    let log = p.log_text();
    let (Some(assigned), Some(written)) = (
        log.find(&format!("assigned {PARTITIONS} partition(s) of {topic}")),
        log.find("ready: wrote"),
    ) else {
        bail!("no assignment or no ready line in the log:\n{log}");
    };
    ensure!(assigned < written, "ready before the assignment:\n{log}");
    Ok(())
}
