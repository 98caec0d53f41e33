//! The figures of a run: counters, the end-to-end latency histogram, the
//! throughput timeline, and the `--stats-json` file, whose format
//! ([`ConsumerStats`]) is defined once in `common::stats` for the
//! consumers and every reader alike.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use common::stats::{
    ConsumerSettings, ConsumerStats, ExitReason, Latency, Model, STATS_VERSION,
};
use hdrhistogram::Histogram;
use store::CommitOutcome;

use crate::args::ConsumerArgs;

/// The stats file, under the name this crate has always used.
pub type StatsReport = ConsumerStats;
/// Its latency figures.
pub type LatencyReport = Latency;

/// The two instants a run is measured between, shared by the thread that
/// receives messages and the one that commits them.
#[derive(Debug)]
pub struct RunClock {
    process_start: Instant,
    first_message: OnceLock<Instant>,
}

impl RunClock {
    /// Starts the process clock now.
    pub fn new() -> RunClock {
        RunClock {
            process_start: Instant::now(),
            first_message: OnceLock::new(),
        }
    }

    /// Notes that a message was received (only the first call counts).
    #[inline]
    pub fn message_received(&self) {
        if self.first_message.get().is_none() {
            let _ = self.first_message.set(Instant::now());
        }
    }

    /// When the first message was received, if one was.
    pub fn first_message(&self) -> Option<Instant> {
        self.first_message.get().copied()
    }

    /// Seconds since the process started.
    pub fn process_seconds(&self) -> f64 {
        self.process_start.elapsed().as_secs_f64()
    }
}

impl Default for RunClock {
    fn default() -> Self {
        RunClock::new()
    }
}

/// Most points kept in the timeline; beyond that every other point is
/// dropped and the sampling interval doubles, so a run of any length gives
/// a file of bounded size.
const TIMELINE_MAX_POINTS: usize = 2_000;
const TIMELINE_INTERVAL: Duration = Duration::from_millis(250);

/// The percentiles of `h` (all zero when it is empty).
fn summarize(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// Counters and histograms, updated after every SQLite commit.
#[derive(Debug)]
pub struct RunStats {
    events_committed: u64,
    dead_letters: u64,
    duplicates: u64,
    redelivered: u64,
    batches: u64,
    latency_us: Histogram<u64>,
    /// How long each batch's SQLite commit took (`Store::commit`, retries
    /// included).
    commit_us: Histogram<u64>,
    last_commit: Option<Instant>,
    timeline: Vec<(f64, u64)>,
    timeline_interval: Duration,
    last_sample: Option<Instant>,
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats::new()
    }
}

impl RunStats {
    /// Empty stats.
    pub fn new() -> RunStats {
        RunStats {
            events_committed: 0,
            dead_letters: 0,
            duplicates: 0,
            redelivered: 0,
            batches: 0,
            // 3 significant digits, auto-resizing: microseconds to hours.
            latency_us: Histogram::new(3).expect("valid histogram precision"),
            commit_us: Histogram::new(3).expect("valid histogram precision"),
            last_commit: None,
            timeline: Vec::new(),
            timeline_interval: TIMELINE_INTERVAL,
            last_sample: None,
        }
    }

    /// Records one committed batch. `created_at_us` yields the creation time
    /// of each event of the batch; its latency is the commit time minus
    /// that (clamped at 0 when clocks disagree).
    pub fn record_commit(
        &mut self,
        outcome: &CommitOutcome,
        created_at_us: impl Iterator<Item = i64>,
        took: Duration,
        clock: &RunClock,
    ) {
        let now = Instant::now();
        let took_us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        if self.commit_us.record(took_us).is_err() {
            self.commit_us.saturating_record(took_us);
        }
        self.events_committed += outcome.events_stored as u64;
        self.dead_letters += outcome.dead_letters as u64;
        self.duplicates += outcome.duplicates as u64;
        self.redelivered += outcome.redelivered as u64;
        self.batches += 1;
        self.last_commit = Some(now);
        for created in created_at_us {
            let latency = outcome.committed_at_us.saturating_sub(created).max(0) as u64;
            // The histogram grows to fit (saturating_record would clamp to
            // its current range instead).
            if self.latency_us.record(latency).is_err() {
                self.latency_us.saturating_record(latency);
            }
        }
        let due = self
            .last_sample
            .is_none_or(|t| now.duration_since(t) >= self.timeline_interval);
        if due {
            self.last_sample = Some(now);
            self.push_point(clock, now);
        }
    }

    fn push_point(&mut self, clock: &RunClock, at: Instant) {
        let Some(first) = clock.first_message() else {
            return;
        };
        let elapsed = at.saturating_duration_since(first).as_secs_f64();
        let point = (round_ms(elapsed), self.events_committed);
        if self.timeline.last() == Some(&point) {
            return;
        }
        self.timeline.push(point);
        if self.timeline.len() > TIMELINE_MAX_POINTS {
            let last = *self.timeline.last().expect("non-empty");
            let mut i = 0;
            self.timeline.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            if self.timeline.last() != Some(&last) {
                self.timeline.push(last);
            }
            self.timeline_interval *= 2;
        }
    }

    /// Events stored so far.
    pub fn events_committed(&self) -> u64 {
        self.events_committed
    }

    /// Dead letters stored so far (including refused duplicates).
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters
    }

    /// Non-empty batches committed so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The report of the run, for the stats file and the summary.
    pub fn report(&self, ctx: &ReportContext<'_>) -> ConsumerStats {
        let wall_seconds = match (ctx.clock.first_message(), self.last_commit) {
            (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let events_per_second = if wall_seconds > 0.0 {
            self.events_committed as f64 / wall_seconds
        } else {
            0.0
        };
        let mut timeline = self.timeline.clone();
        if let (Some(first), Some(last)) = (ctx.clock.first_message(), self.last_commit) {
            let point = (
                round_ms(last.saturating_duration_since(first).as_secs_f64()),
                self.events_committed,
            );
            if timeline.last() != Some(&point) {
                timeline.push(point);
            }
        }
        let usage = common::ResourceUsage::now();
        let settings = ConsumerSettings {
            batch_size: ctx.args.batch_size as u64,
            flush_interval_ms: ctx.args.flush_interval_ms,
            exit_when_idle_s: ctx.args.exit_when_idle,
            max_events: ctx.args.max_events,
            librdkafka: ctx.kafka_properties.clone(),
        };
        ConsumerStats {
            version: STATS_VERSION,
            model: ctx.model,
            brokers: ctx.args.kafka.brokers.clone(),
            topic: ctx.args.kafka.topic.clone(),
            group: ctx.args.group.clone(),
            db: ctx.args.db.display().to_string(),
            events_committed: self.events_committed,
            dead_letters: self.dead_letters,
            duplicates: self.duplicates,
            redelivered: self.redelivered,
            offset_gaps: ctx.offset_gaps,
            batches: self.batches,
            wall_seconds,
            process_seconds: ctx.clock.process_seconds(),
            events_per_second,
            latency_us: summarize(&self.latency_us),
            commit_us: summarize(&self.commit_us),
            cpu_seconds: usage.cpu_seconds,
            max_rss_bytes: usage.max_rss_bytes,
            exit_reason: ctx.exit_reason,
            error: ctx.error.clone(),
            settings,
            timeline,
        }
    }
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// What a report needs besides the counters.
#[derive(Debug)]
pub struct ReportContext<'a> {
    /// pull or push.
    pub model: Model,
    /// The command line.
    pub args: &'a ConsumerArgs,
    /// [`crate::config::properties_in_force`].
    pub kafka_properties: &'a BTreeMap<String, String>,
    /// The run's clock.
    pub clock: &'a RunClock,
    /// Why the run ended.
    pub exit_reason: ExitReason,
    /// The error that ended it, if any.
    pub error: Option<String>,
    /// Offset gaps the rebalance handler recorded.
    pub offset_gaps: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(events: usize, committed_at_us: i64) -> CommitOutcome {
        CommitOutcome {
            events_stored: events,
            dead_letters: 1,
            duplicates: 0,
            redelivered: 0,
            committed_at_us,
            next_offsets: Vec::new(),
        }
    }

    #[test]
    fn counters_latency_and_timeline() {
        let clock = RunClock::new();
        clock.message_received();
        let mut stats = RunStats::new();
        stats.record_commit(
            &outcome(3, 10_000),
            [9_000, 8_000, 7_000].into_iter(),
            Duration::from_micros(1_500),
            &clock,
        );
        stats.record_commit(
            &outcome(1, 20_000),
            [21_000].into_iter(),
            Duration::from_micros(4_000),
            &clock,
        );
        assert_eq!(stats.events_committed(), 4);
        assert_eq!(stats.dead_letters(), 2);
        assert_eq!(stats.batches(), 2);
        assert_eq!(stats.latency_us.len(), 4);
        assert_eq!(stats.latency_us.min(), 0, "negative latency is clamped");
        let max = stats.latency_us.max();
        assert!((2_990..=3_010).contains(&max), "{max}");
        assert_eq!(stats.timeline.len(), 1, "second commit came within 250 ms");
        assert_eq!(stats.commit_us.len(), 2);
        let took = summarize(&stats.commit_us);
        assert!((1_499..=1_501).contains(&took.min), "{took:?}");
        assert!((3_995..=4_005).contains(&took.max), "{took:?}");
    }

    #[test]
    fn timeline_stays_bounded_and_keeps_the_last_point() {
        let clock = RunClock::new();
        clock.message_received();
        let mut stats = RunStats::new();
        stats.timeline_interval = Duration::ZERO;
        for i in 0..10_000u64 {
            stats.events_committed = i;
            stats.push_point(&clock, Instant::now() + Duration::from_millis(i));
        }
        assert!(stats.timeline.len() <= TIMELINE_MAX_POINTS + 1);
        assert_eq!(stats.timeline.last().unwrap().1, 9_999);
    }
}
