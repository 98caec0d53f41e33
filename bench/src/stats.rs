//! The stats files the benchmark writes itself (the two consumer ceilings;
//! the store queries are in [`crate::queries`]), in the same versioned
//! format as the producer's and the consumers' (`common::stats`),
//! and [`read_json`], which reads any of them.

use std::collections::BTreeMap;
use std::path::Path;

pub use common::stats::{ConsumerStats, Latency, ProducerStats, STATS_VERSION, read_stats};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Written by `bench ceiling-consume`: the raw consume rate, no storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawConsumeStats {
    /// [`STATS_VERSION`].
    pub version: u32,
    pub topic: String,
    pub group: String,
    pub events: u64,
    /// Of those, how many failed to decode (should be 0).
    pub decode_errors: u64,
    /// First message to last message.
    pub wall_seconds: f64,
    /// `events / wall_seconds`.
    pub events_per_second: f64,
    /// User + system CPU of the process.
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    pub settings: BTreeMap<String, String>,
    /// `count`, `idle` or `no-messages`.
    pub exit_reason: String,
}

/// Written by `bench ceiling-store`: the store's own insert rate, no Kafka.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreInsertStats {
    /// [`STATS_VERSION`].
    pub version: u32,
    pub events: u64,
    /// Events per transaction.
    pub batch_size: u64,
    pub batches: u64,
    /// Time spent in `Store::commit` only.
    pub commit_seconds: f64,
    /// CPU time of the committing thread over the commits: on a shared
    /// machine the wall time of a CPU-bound writer also measures its
    /// neighbours; this does not (it leaves out waits for the disk).
    #[serde(default)]
    pub commit_cpu_seconds: f64,
    /// Time spent generating and encoding events, on a thread of its own
    /// while the previous batch commits (not part of the ceiling).
    pub generate_seconds: f64,
    pub wall_seconds: f64,
    /// `events / commit_seconds`: the ceiling.
    pub events_per_second: f64,
    /// `events / wall_seconds`, with generation overlapping the commits.
    pub events_per_second_with_generation: f64,
    /// Database size at the end (file + WAL).
    pub db_bytes: u64,
    /// User + system CPU of the process.
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    /// When the benchmark measured the ceiling in two halves (before and
    /// after the consumers' drains), each half's own rate; the fields above
    /// are then both halves together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halves_events_per_second: Option<[f64; 2]>,
    /// Each tenth of the events (at the batch that completes it): events
    /// per second of commit time, and per CPU second of the committing
    /// thread. Whether the store's cost grows with the database: the wall
    /// rate also measures the disk, the CPU rate only the store's own work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenths: Vec<[f64; 2]>,
}

impl StoreInsertStats {
    /// Both halves of a ceiling as one: events and times added up, the
    /// rates recomputed from them, the larger database and peak RSS.
    pub fn joined(before: &StoreInsertStats, after: &StoreInsertStats) -> StoreInsertStats {
        let events = before.events + after.events;
        let commit_seconds = before.commit_seconds + after.commit_seconds;
        let wall_seconds = before.wall_seconds + after.wall_seconds;
        StoreInsertStats {
            version: STATS_VERSION,
            events,
            batch_size: before.batch_size,
            batches: before.batches + after.batches,
            commit_seconds,
            commit_cpu_seconds: before.commit_cpu_seconds + after.commit_cpu_seconds,
            generate_seconds: before.generate_seconds + after.generate_seconds,
            wall_seconds,
            events_per_second: rate(events, commit_seconds),
            events_per_second_with_generation: rate(events, wall_seconds),
            db_bytes: before.db_bytes.max(after.db_bytes),
            cpu_seconds: before.cpu_seconds + after.cpu_seconds,
            max_rss_bytes: before.max_rss_bytes.max(after.max_rss_bytes),
            halves_events_per_second: Some([before.events_per_second, after.events_per_second]),
            tenths: Vec::new(),
        }
    }
}

/// `n` per second of `seconds`; 0 for no time at all.
pub(crate) fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Reads a stats file of the current version (see
/// `common::stats::read_stats`).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    Ok(read_stats(path)?)
}

/// A producer's stats for the tests: `n` events from id `first`, their id
/// checksum, acknowledged over `wall` seconds.
#[cfg(test)]
pub(crate) fn producer_stats(first: u64, n: u64, wall: f64) -> ProducerStats {
    let sum: proto::IdChecksum = (first..first + n).collect();
    ProducerStats {
        version: STATS_VERSION,
        mode: common::stats::ProducerMode::Events,
        brokers: "b".into(),
        topic: "t".into(),
        events_requested: n,
        events_sent: n,
        events_acknowledged: n,
        events_failed: 0,
        amount_minor_sum: 0,
        id_checksum: sum.hex(),
        first_event_id: first,
        last_event_id: first + n - 1,
        seed: 42,
        accounts: 10,
        rate_limit: 0,
        wall_seconds: wall,
        events_per_second: n as f64 / wall,
        cpu_seconds: 0.5,
        max_rss_bytes: 1,
        interrupted: false,
        settings: BTreeMap::new(),
        errors: Vec::new(),
    }
}
