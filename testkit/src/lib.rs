//! The workspace's one test harness: it starts brokers, finds the binaries,
//! picks ports, runs processes and verifies databases. The fault suite
//! (`chaos`) builds its scenarios on it, and every integration test
//! that crosses processes uses it.
//!
//! The brokers: Apache Kafka ([`Kafka`], one node; [`Cluster`], several),
//! Nisshi where Java is absent ([`Nisshi`]) and librdkafka's mock cluster
//! ([`MockKafka`], for fast hermetic tests and fault injection, never the
//! only proof of a guarantee); [`Broker`] is what a scenario needs of any
//! of them. [`verify`] says what a database must hold.
//!
//! Every guard (broker, process) stops what it started when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Result;

pub use common::stats::{ConsumerStats, ProducerStats};
pub use producer;

pub mod bins;
pub mod brokerproc;
pub mod clients;
pub mod cluster;
pub mod kafka;
pub mod launcher;
pub mod metrics;
pub mod mock;
pub mod nisshi;
pub mod procs;
pub mod settings;
pub mod topics;
pub mod verify;

pub use bins::{Bins, Model};
pub use clients::{group_offsets, read_back};
pub use cluster::Cluster;
pub use kafka::{Kafka, KafkaOptions};
pub use mock::MockKafka;
pub use nisshi::Nisshi;
pub use procs::{ConsumerCmd, Proc, ProducerCmd};
pub use verify::{Expected, Figures, verify, verify_all};

/// What a scenario needs from a broker: Apache Kafka, Nisshi or the mock
/// cluster.
pub trait Broker {
    /// `host:port` of the PLAINTEXT listener.
    fn bootstrap(&self) -> &str;
    /// Creates `topic` with `partitions` partitions, ready to use.
    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()>;
}

impl<B: Broker + ?Sized> Broker for &B {
    fn bootstrap(&self) -> &str {
        (**self).bootstrap()
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        (**self).create_topic(topic, partitions)
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the root")
        .to_path_buf()
}

/// `name` in one of the directories of `PATH`.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The last `n` lines of `text`, for failure messages.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The environment variable that turns a skipped end-to-end test into a
/// failure. `.ci/run` sets it: in CI every guarantee is proven on Apache
/// Kafka, or the run fails.
pub const REQUIRE_BROKERS: &str = "BANKING_REQUIRE_BROKERS";

/// Says that `test` cannot run here, and why: `SKIPPED <test>: <why>` on
/// stderr, or a panic where [`REQUIRE_BROKERS`] is set.
pub fn skip(test: &str, why: &dyn std::fmt::Display) {
    if std::env::var_os(REQUIRE_BROKERS).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!(
            "{test} cannot run here: {why} ({REQUIRE_BROKERS} is set: every end-to-end test must run)"
        );
    }
    eprintln!("SKIPPED {test}: {why}");
}
