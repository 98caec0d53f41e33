//! The short version of the fault suite: the scenarios about the broker
//! (one node, and a cluster of three) and the command lines, for both
//! consumers at once, with small numbers,
//! against the real binaries of this build. The scenarios about one
//! consumer (full-run, kill9, sigterm, two-instances, bad-messages,
//! db-lock) run the same code from the consumer crates' tests, once per
//! consumer. Scenarios needing Apache Kafka print `SKIPPED <test>: <why>`
//! when it is not installed; disk-full needs root (a tmpfs) and is SKIPPED
//! otherwise. One test injects a fault only librdkafka's mock cluster can
//! give on demand.

use std::process::Command;
use testkit::ConsumerStats;

use chaos::{BrokerKind, Scenario, short_run};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use testkit::bins::MODELS;
use testkit::{Bins, ConsumerCmd, Expected, MockKafka, ProducerCmd, group_offsets, verify};

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

/// On three Apache Kafka nodes: the node leading the most partitions is
/// killed during a backlog drain and during live production.
#[test]
fn leader_killed_during_drain_and_live_production() {
    short_run(
        "leader_killed_during_drain_and_live_production",
        Scenario::LeaderKill,
        &MODELS,
        BrokerKind::Kafka,
    );
}

/// On three Apache Kafka nodes: three instances per group, one killed and
/// restarted, one killed for good, a fourth joining; the databases as one
/// hold every event.
#[test]
fn scale_out_with_crashed_instances() {
    short_run(
        "scale_out_with_crashed_instances",
        Scenario::ScaleOut,
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
    let bins = testkit::Bins::of_this_build();
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

/// Kafka refuses every offset commit (fault injection on librdkafka's mock
/// cluster: the real broker cannot be told to). Kafka's copy of the offsets
/// is informational, the database's is the truth: each consumer must store
/// every event exactly once, exit 0, and a restart in the same group, with
/// no offsets in Kafka, must resume from the database and store nothing
/// again.
#[test]
fn offset_commits_refused_by_kafka_change_nothing_on_the_mock_cluster() {
    const EVENTS: u64 = 10_000;
    const PARTITIONS: i32 = 3;
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let bins = Bins::of_this_build();
    let mock = MockKafka::start("refused", PARTITIONS);
    ProducerCmd::new(mock.bootstrap(), "refused", EVENTS, 5, 500)
        .run(&bins, dir, "producer")
        .expect("produce");
    mock.cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 100_000],
    );
    let expected = Expected::of(5, 500, EVENTS);
    for model in MODELS {
        let group = format!("refused-{}", model.name());
        let mut cmd = ConsumerCmd::new(model, mock.bootstrap(), "refused", &group, dir);
        cmd.extra = vec!["--batch-size".into(), "500".into()];
        cmd.idle_secs = Some(3);
        let mut first = cmd.spawn(&bins, 0, &[]).expect("spawn");
        let stats: ConsumerStats = first.wait_success().expect("first run");
        assert_eq!(stats.events_committed, EVENTS);
        let log = first.log_text();
        assert!(
            log.contains("could not commit the final offsets"),
            "the refused commits are not reported:\n{}",
            first.log_tail(20)
        );
        let in_kafka = group_offsets(mock.bootstrap(), &group, "refused", PARTITIONS).unwrap();
        assert!(in_kafka.is_empty(), "Kafka took offsets: {in_kafka:?}");
        let stats: ConsumerStats = cmd.spawn(&bins, 1, &[]).unwrap().wait_success().unwrap();
        assert_eq!(stats.events_committed, 0, "read again");
        let f = verify(&cmd.db, &expected, 0).expect("verify");
        assert!(f.exact() && f.events == EVENTS, "{model:?}: {}", f.brief());
    }
}
