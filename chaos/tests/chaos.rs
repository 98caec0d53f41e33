//! The short version of the fault suite: the scenarios about the broker
//! and the command lines, for both consumers at once, with small numbers,
//! against the real binaries of this build. The scenarios about one
//! consumer (full-run, kill9, sigterm, two-instances, bad-messages,
//! db-lock) run the same code from the consumer crates' tests, once per
//! consumer. Scenarios needing Apache Kafka print `SKIPPED <test>: <why>`
//! when it is not installed; disk-full needs root (a tmpfs) and is SKIPPED
//! otherwise.

use std::process::Command;

use banking_chaos::{BrokerKind, Scenario, short_run};
use banking_testkit::bins::MODELS;

#[test]
fn bad_command_lines_and_files() {
    let outcomes = short_run(
        "bad_command_lines_and_files",
        Scenario::BadInput,
        &MODELS,
        BrokerKind::Kafka,
    );
    assert_eq!(outcomes.len(), 3, "producer and both consumers");
}

#[test]
fn broker_absent_at_start() {
    short_run(
        "broker_absent_at_start",
        Scenario::NoBroker,
        &MODELS,
        BrokerKind::Kafka,
    );
}

#[test]
fn broker_stopped_mid_run_then_restarted() {
    short_run(
        "broker_stopped_mid_run_then_restarted",
        Scenario::Outage,
        &MODELS,
        BrokerKind::Kafka,
    );
}

#[test]
fn disk_full() {
    short_run("disk_full", Scenario::DiskFull, &MODELS, BrokerKind::Kafka);
}

/// The command line `scripts/chaos.sh` runs: flags parsed, one figures
/// line per subject, a total, exit status 0.
#[test]
fn the_command_line_prints_one_line_of_figures_per_subject() {
    let bins = banking_testkit::Bins::of_this_build();
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args([
            "--events",
            "1000",
            "--scenarios",
            "bad-input",
            "--consumers",
            "pull",
        ])
        .arg("--out")
        .arg(out.path())
        .env("BIN_DIR", bins.dir())
        .output()
        .expect("run chaos");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "chaos exited with {}:\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("bad-input "))
        .collect();
    assert_eq!(lines.len(), 2, "producer and pull:\n{stdout}");
    assert!(lines.iter().all(|l| l.ends_with(" PASS")), "{stdout}");
    assert!(
        stdout.contains("chaos: 2 passed, 0 failed, 0 skipped"),
        "{stdout}"
    );
}
