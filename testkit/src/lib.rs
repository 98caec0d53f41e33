//! The workspace's one test harness: brokers (Apache Kafka [`Kafka`] and
//! [`Cluster`], [`Nisshi`] where Java is absent, librdkafka's
//! [`MockKafka`], never the only proof of a guarantee), the binaries,
//! processes, and what a database must hold ([`verify`]). Every guard stops
//! what it started when dropped.

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
pub mod verify;

pub use bins::{Bins, Model};
pub use clients::{group_offsets, read_back};
pub use cluster::Cluster;
pub use kafka::{Kafka, KafkaOptions};
pub use mock::MockKafka;
pub use nisshi::Nisshi;
pub use procs::{ConsumerCmd, Proc, ProducerCmd};
pub use verify::{Expected, Figures, verify, verify_all};

/// What a scenario needs from any broker.
pub trait Broker {
    /// `host:port` of the PLAINTEXT listener.
    fn bootstrap(&self) -> &str;
    /// Creates `topic`, ready to use.
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

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the root")
        .to_path_buf()
}

pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Set (by `.ci/run`), it turns a skipped end-to-end test into a failure.
pub const REQUIRE_BROKERS: &str = "BANKING_REQUIRE_BROKERS";

/// `SKIPPED <test>: <why>` on stderr, or a panic where [`REQUIRE_BROKERS`]
/// is set.
pub fn skip(test: &str, why: &dyn std::fmt::Display) {
    if std::env::var_os(REQUIRE_BROKERS).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!(
            "{test} cannot run here: {why} ({REQUIRE_BROKERS} is set: every end-to-end test must run)"
        );
    }
    eprintln!("SKIPPED {test}: {why}");
}
