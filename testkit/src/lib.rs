//! Test support shared by the integration tests of the workspace.
//!
//! - [`MockKafka`]: librdkafka's mock cluster, hosted by the test process and
//!   listening on real TCP ports, so binaries spawned by the test can use
//!   it. It keeps at most 5 MiB or 100,000 batches per partition and drops
//!   older data silently (DESIGN.md): keep tests well under that.
//! - [`Tansu`]: a private Tansu broker on a free port, started with
//!   `scripts/broker.sh` and stopped on drop; `None` (with a visible
//!   message) when Tansu is not installed.
//! - [`produce`]: sends events with the producer library.
//! - [`Expected`]: what a database must hold after consuming the events of
//!   a seed, computed from the generator with this crate's own balance rule,
//!   independently of the store's code.
//! - [`read_back`]: reads a topic from the start with a plain consumer.

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use banking_producer::{Args as ProducerArgs, Generator, ProducerStats};
use banking_proto::{BankingEvent, EventType, IdChecksum, Status};
use clap::Parser;
use prost::Message;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub use banking_producer;

pub mod kafka;
pub mod scenarios;

pub use kafka::{Kafka, KafkaOptions};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the root")
        .to_path_buf()
}

/// librdkafka's mock cluster with one topic created.
pub struct MockKafka {
    /// Kept alive for as long as the test needs the brokers.
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    /// `host:port,...` of its brokers.
    pub bootstrap: String,
}

impl MockKafka {
    /// A one-broker mock cluster with `topic` of `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> MockKafka {
        let cluster = MockCluster::new(1).expect("start librdkafka's mock cluster");
        cluster
            .create_topic(topic, partitions, 1)
            .expect("create topic on the mock cluster");
        let bootstrap = cluster.bootstrap_servers();
        MockKafka { cluster, bootstrap }
    }
}

/// A private Tansu broker (in-memory storage) on a free port, stopped on
/// drop.
pub struct Tansu {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
    run_dir: tempfile::TempDir,
    port: u16,
}

impl Tansu {
    /// Whether a tansu binary is installed (PATH or ~/.cargo/bin).
    pub fn installed() -> bool {
        let in_path = Command::new("tansu")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
        in_path || home.is_some_and(|h| h.join("bin/tansu").is_file())
    }

    /// Starts Tansu with `topic` of `partitions` partitions, or prints why
    /// the calling test is skipped and returns `None` when Tansu is not
    /// installed (CI installs it; see .ci/run).
    pub fn start_or_skip(test: &str, topic: &str, partitions: i32) -> Option<Tansu> {
        if !Tansu::installed() {
            eprintln!(
                "SKIPPED {test}: tansu is not installed \
                 (cargo install tansu --locked --features dynostore; CI installs it)"
            );
            return None;
        }
        let port = free_port();
        let run_dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(repo_root().join("scripts/broker.sh"))
            .args(["start", "--topic", topic, "--partitions"])
            .arg(partitions.to_string())
            .env("BROKER_KIND", "tansu")
            .env("BROKER_PORT", port.to_string())
            .env("RUN_DIR", run_dir.path())
            .env_remove("KAFKA_BROKERS")
            .output()
            .expect("run scripts/broker.sh");
        assert!(
            out.status.success(),
            "scripts/broker.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        Some(Tansu {
            bootstrap,
            run_dir,
            port,
        })
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/broker.sh"))
            .arg("stop")
            .env("BROKER_KIND", "tansu")
            .env("BROKER_PORT", self.port.to_string())
            .env("RUN_DIR", self.run_dir.path())
            .output();
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Producer arguments as the command line would give them.
pub fn producer_args(bootstrap: &str, topic: &str, extra: &[&str]) -> ProducerArgs {
    let mut argv = vec!["producer", "--brokers", bootstrap, "--topic", topic];
    argv.extend_from_slice(extra);
    ProducerArgs::try_parse_from(argv).expect("valid producer arguments")
}

/// Sends `count` events of `seed` over `accounts` accounts, starting at id 1,
/// and checks that every one was acknowledged.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    count: u64,
    seed: u64,
    accounts: u64,
) -> ProducerStats {
    let (count, seed, accounts) = (count.to_string(), seed.to_string(), accounts.to_string());
    let args = producer_args(
        bootstrap,
        topic,
        &[
            "--count",
            &count,
            "--seed",
            &seed,
            "--accounts",
            &accounts,
            "--timeout",
            "60",
        ],
    );
    let stats = banking_producer::run(&args, &AtomicBool::new(false)).expect("produce events");
    assert_eq!(
        stats.events_failed, 0,
        "delivery failures: {:?}",
        stats.errors
    );
    assert_eq!(stats.events_acknowledged, stats.events_requested);
    stats
}

/// What a database must hold after storing the events of a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Every event id.
    pub ids: HashSet<u64>,
    /// Sum of `amount_minor`.
    pub amount_minor_sum: i128,
    /// Checksum of the ids.
    pub id_checksum: IdChecksum,
    /// (account, currency) -> (balance in minor units, number of changes).
    pub balances: BTreeMap<(u64, String), (i64, u64)>,
    /// The events themselves, in id order.
    pub events: Vec<BankingEvent>,
}

impl Expected {
    /// Regenerates `count` events of `seed` (ids from 1) and totals them.
    pub fn of(seed: u64, accounts: u64, count: u64) -> Expected {
        let mut generator = Generator::new(seed, accounts, 1).expect("valid generator");
        let events: Vec<BankingEvent> = (0..count).map(|_| generator.next_event(0)).collect();
        Expected::from_events(events)
    }

    /// Totals the given events with the README's balance rule, written out
    /// here again on purpose so that the store's code is not checked
    /// against itself.
    pub fn from_events(events: Vec<BankingEvent>) -> Expected {
        let mut balances: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
        let mut apply = |account: u64, currency: &str, delta: i64| {
            let slot = balances.entry((account, currency.to_owned())).or_default();
            slot.0 += delta;
            slot.1 += 1;
        };
        for e in &events {
            if e.status != Status::Completed as i32 {
                continue;
            }
            let a = e.amount_minor;
            match EventType::try_from(e.event_type).expect("generated type") {
                EventType::Deposit => apply(e.account_id, &e.currency, a),
                EventType::Transfer => {
                    apply(e.account_id, &e.currency, -a);
                    apply(e.counterparty_account_id, &e.currency, a);
                }
                EventType::Transaction
                | EventType::Withdrawal
                | EventType::Payment
                | EventType::Fee => apply(e.account_id, &e.currency, -a),
                EventType::Unspecified => unreachable!("the generator never makes one"),
            }
        }
        Expected {
            ids: events.iter().map(|e| e.event_id).collect(),
            amount_minor_sum: events.iter().map(|e| i128::from(e.amount_minor)).sum(),
            id_checksum: events.iter().map(|e| e.event_id).collect(),
            balances,
            events,
        }
    }
}

/// Reads `topic` from the beginning until `expected` messages arrived or
/// `timeout` passed, then one more second to catch any extra message;
/// returns the decoded payloads (panics on one that does not decode: the
/// producer only sends valid events).
pub fn read_back(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<BankingEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("testkit-read-back-{}", std::process::id()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("create read-back consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                out.push(BankingEvent::decode(payload).expect("a valid event"));
            }
            Some(Err(e)) => eprintln!("read_back: {e}"),
            None => {}
        }
    }
    let grace = Instant::now() + Duration::from_secs(1);
    while Instant::now() < grace {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(BankingEvent::decode(m.payload().unwrap_or_default()).expect("a valid event"));
        }
    }
    out
}
