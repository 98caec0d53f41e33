//! The stats files of the ceilings, versioned like the producer's and the
//! consumers' (`common::stats`), whose [`read_stats`] reads any of them.

use std::collections::BTreeMap;

pub use common::stats::{ConsumerStats, Latency, ProducerStats, STATS_VERSION, read_stats};
use serde::{Deserialize, Serialize};

/// Written by `bench ceiling-consume`: the raw consume rate, no storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawConsumeStats {
    pub version: u32,
    pub topic: String,
    pub group: String,
    pub events: u64,
    pub decode_errors: u64,
    /// First message to last message.
    pub wall_seconds: f64,
    pub events_per_second: f64,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    pub settings: BTreeMap<String, String>,
    /// `count`, `idle` or `no-messages`.
    pub exit_reason: String,
}

/// Written by `bench ceiling-store`: the store's own insert rate, no Kafka.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreInsertStats {
    pub version: u32,
    pub events: u64,
    pub batch_size: u64,
    pub batches: u64,
    /// Time in `Store::commit` only.
    pub commit_seconds: f64,
    /// The committing thread's CPU over the commits: unlike wall time, not
    /// slowed by the neighbours on a shared machine (nor by the disk).
    #[serde(default)]
    pub commit_cpu_seconds: f64,
    /// Generating and encoding, on a thread of its own (not timed).
    pub generate_seconds: f64,
    pub wall_seconds: f64,
    /// `events / commit_seconds`: the ceiling.
    pub events_per_second: f64,
    pub events_per_second_with_generation: f64,
    pub db_bytes: u64,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    /// Each half's own rate, when joined from two (the fields above are
    /// then both together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halves_events_per_second: Option<[f64; 2]>,
    /// Per tenth of the events: events per second of commit time and per
    /// CPU second (does the store's cost grow with the database?).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenths: Vec<[f64; 2]>,
}

impl StoreInsertStats {
    /// Both halves of a ceiling as one: events and times added up, the
    /// rates recomputed.
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
