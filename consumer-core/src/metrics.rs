//! The consumers' Prometheus metrics (see `common::telemetry`): updated
//! once per committed batch by the writer thread, and from librdkafka's
//! statistics for the lag, never per message on the feed's thread.

use std::time::Duration;

use common::telemetry::{metrics_enabled, names};
use metrics::{Counter, Histogram, counter, gauge, histogram};
use rdkafka::statistics::Statistics;
use store::CommitOutcome;

/// The writer's handles, looked up once.
#[derive(Debug)]
pub struct WriterMetrics {
    committed: Counter,
    dead_letters: Counter,
    redelivered: Counter,
    commit_seconds: Histogram,
    /// `None` without `--metrics-addr`: the per-event latencies are then
    /// not even iterated.
    latency_seconds: Option<Histogram>,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics::new()
    }
}

impl WriterMetrics {
    /// Handles on the installed recorder (no-ops when there is none).
    pub fn new() -> WriterMetrics {
        WriterMetrics {
            committed: counter!(names::EVENTS_COMMITTED),
            dead_letters: counter!(names::DEAD_LETTERS),
            redelivered: counter!(names::REDELIVERED),
            commit_seconds: histogram!(names::BATCH_COMMIT_SECONDS),
            latency_seconds: metrics_enabled().then(|| histogram!(names::END_TO_END_SECONDS)),
        }
    }

    /// Records one committed batch: its counts, how long the commit took,
    /// and the end-to-end latency of each of its events
    /// (`created_at_us`), measured to the commit's end.
    pub fn record_commit(
        &self,
        outcome: &CommitOutcome,
        took: Duration,
        created_at_us: impl Iterator<Item = i64>,
    ) {
        self.committed.increment(outcome.events_stored as u64);
        self.dead_letters.increment(outcome.dead_letters as u64);
        self.redelivered.increment(outcome.redelivered as u64);
        self.commit_seconds.record(took.as_secs_f64());
        if let Some(latency) = &self.latency_seconds {
            for created in created_at_us {
                let us = outcome.committed_at_us.saturating_sub(created).max(0);
                latency.record(us as f64 / 1e6);
            }
        }
    }
}

/// Sets the lag gauge of every partition of `topic` this consumer fetches,
/// from librdkafka's statistics (`consumer_lag`: the partition's end minus
/// the group's committed offset; -1 while unknown, then not reported).
pub fn record_lag(topic: &str, statistics: &Statistics) {
    let Some(t) = statistics.topics.get(topic) else {
        return;
    };
    for p in t.partitions.values() {
        // -1 is librdkafka's internal UA partition.
        if p.partition < 0 || p.consumer_lag < 0 || p.fetch_state == "none" {
            continue;
        }
        gauge!(
            names::CONSUMER_LAG,
            "topic" => topic.to_string(),
            "partition" => p.partition.to_string()
        )
        .set(p.consumer_lag as f64);
    }
}
