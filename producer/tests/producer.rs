//! The producer binary against real brokers: Apache Kafka as a separate
//! process (one for this test process, a topic per test), librdkafka's
//! mock cluster hosted by this test, and no broker at all.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::{Expected, Kafka, MockKafka, free_port, kafka, read_back};

const TOPIC: &str = "banking.events";
const COUNT: u64 = 50_000;
const SEED: u64 = 2024;
const ACCOUNTS: u64 = 10_000;

fn producer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_producer"))
        .args(args)
        .env_remove("KAFKA_BROKERS")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the producer binary")
}

/// Produces COUNT events with the binary, then reads the topic back and
/// checks ids, amounts and the producer's own stats against the generator.
fn produce_and_read_back(bootstrap: &str, extra: &[&str]) {
    produce_and_read_back_on(bootstrap, TOPIC, extra);
}

/// [`produce_and_read_back`] on another topic.
fn produce_and_read_back_on(bootstrap: &str, topic: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("producer.json");
    let count = COUNT.to_string();
    let seed = SEED.to_string();
    let accounts = ACCOUNTS.to_string();
    let mut args = vec![
        "--brokers",
        bootstrap,
        "--topic",
        topic,
        "--count",
        &count,
        "--seed",
        &seed,
        "--accounts",
        &accounts,
        "--stats-json",
        stats_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = producer(&args);
    eprintln!("produced {COUNT} events in {:?}", started.elapsed());
    assert!(
        out.status.success(),
        "producer failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let expected = Expected::of(SEED, ACCOUNTS, COUNT);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["events_acknowledged"], COUNT);
    assert_eq!(stats["events_failed"], 0);
    assert_eq!(
        stats["amount_minor_sum"].as_i64().unwrap() as i128,
        expected.amount_minor_sum
    );
    assert_eq!(stats["id_checksum"], expected.id_checksum.hex());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stats_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "stats are for the owner only");

    let started = Instant::now();
    let events = read_back(bootstrap, topic, COUNT as usize, Duration::from_secs(60));
    eprintln!(
        "read back {} events in {:?}",
        events.len(),
        started.elapsed()
    );
    assert_eq!(events.len() as u64, COUNT, "exactly the produced events");
    let ids: HashSet<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected.ids, "the same ids, none twice");
    let sum: i128 = events.iter().map(|e| i128::from(e.amount_minor)).sum();
    assert_eq!(sum, expected.amount_minor_sum);
    for e in &events {
        proto::validate(e).unwrap();
        let mut original = expected.events[(e.event_id - 1) as usize].clone();
        original.created_at_us = e.created_at_us;
        assert_eq!(&original, e, "the event as generated");
    }
}

/// The same on librdkafka's mock cluster: fast and hermetic (no JVM), so
/// the producer is exercised end to end even where Java is missing. Never
/// the only proof: the Apache Kafka test below is.
#[test]
fn mock_cluster_receives_exactly_the_produced_events() {
    let kafka = MockKafka::start(TOPIC, 4);
    produce_and_read_back(kafka.bootstrap(), &[]);
}

#[test]
fn apache_kafka_receives_exactly_the_produced_events() {
    let Some(kafka) = Kafka::shared_or_skip("apache_kafka_receives_exactly_the_produced_events")
    else {
        return;
    };
    let topic = kafka::unique("producer");
    kafka.create_topic(&topic, 4).expect("create the topic");
    produce_and_read_back_on(kafka.bootstrap(), &topic, &[]);
}

#[test]
fn unreachable_broker_fails_fast_naming_it() {
    let address = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = producer(&["--brokers", &address, "--count", "10", "--timeout", "3"]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(stderr.contains(&address), "names the broker: {stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
    // --timeout 3 plus process start-up; far below librdkafka's own
    // default of retrying forever.
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

#[test]
fn bad_command_lines_are_refused_before_connecting() {
    for args in [
        &["--brokers", "nonsense"][..],
        &["--count", "-5"],
        &["--count", "0"],
        &["--rate", "abc"],
        &["--accounts", "1"],
        &["-X", "novalue"],
    ] {
        let out = producer(args);
        assert_eq!(out.status.code(), Some(2), "{args:?} is a usage error");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn missing_topic_without_partitions_is_a_clear_error() {
    let Some(kafka) = Kafka::shared_or_skip("missing_topic_without_partitions_is_a_clear_error")
    else {
        return;
    };
    // The broker does not create topics on first use
    // (auto.create.topics.enable=false, as in production).
    let out = producer(&[
        "--brokers",
        kafka.bootstrap(),
        "--topic",
        "no.such.topic",
        "--count",
        "10",
        "--timeout",
        "10",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no.such.topic"), "{stderr}");
}
