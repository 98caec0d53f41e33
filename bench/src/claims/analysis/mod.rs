//! From the phases of a claims run to figures per experiment and a verdict
//! per claim. Every figure here is read from the phases' stats files and
//! samples; nothing is assumed.

mod figures;
mod table;
mod text;
mod timeline;

use serde::{Deserialize, Serialize};

use super::verdict::{Pair, Verdict};

pub use figures::analyse;
pub use text::{num, pct, rate_text, values};

/// One steady rate, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateFigures {
    /// Offered events/s.
    pub rate: u64,
    /// Events per repeat.
    pub events: u64,
    /// The producer's achieved rate, per repeat.
    pub producer_events_per_second: Vec<f64>,
    /// End-to-end latency, ms.
    pub p50_ms: Pair,
    pub p99_ms: Pair,
    pub p999_ms: Pair,
    pub max_ms: Pair,
    /// Consumer CPU from the producer's start to the consumer's exit, per
    /// event, microseconds.
    pub cpu_us_per_event: Pair,
    /// The same CPU per second of that window (cores).
    pub cores: Pair,
}

/// CPU with nothing to consume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleFigures {
    /// The window, seconds (two halves).
    pub seconds: u64,
    /// CPU milliseconds per second, each half.
    pub cpu_ms_per_s: Pair,
    pub broker_cpu_ms_per_s: Vec<f64>,
}

/// A varying load (bursts, a step) or a slow sink, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    /// `burst`, `step`, `slow`.
    pub name: String,
    /// Events per repeat.
    pub events: u64,
    /// The producer's rate per segment, first repeat.
    pub segment_rates: Vec<f64>,
    pub p50_ms: Pair,
    pub p99_ms: Pair,
    pub p999_ms: Pair,
    pub max_ms: Pair,
    pub max_lag: Pair,
    /// Highest `VmRSS` sampled, MB.
    pub peak_rss_mb: Pair,
    /// Consumer CPU, seconds, producer start to exit.
    pub cpu_s: Pair,
    /// Events committed per second, first message to last commit.
    pub events_per_second: Pair,
    /// Seconds between the first and the last partition to catch up.
    pub catch_up_spread_s: Pair,
    /// At the peak of the lag, the largest partition's lag over the mean.
    pub lag_skew: Pair,
    /// Assignments and revocations beyond the first assignment.
    pub rebalances: Pair,
    /// SQLite commits (batches).
    pub batches: Pair,
}

/// One group size of one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScaleFigures {
    pub instances: usize,
    /// The group's events/s: the backlog over the span from the first
    /// instance's assignment to the group's lag reaching 0, per run.
    pub events_per_second: Pair,
    /// Seconds from starting the instances until every one was assigned
    /// partitions.
    pub join_s: Pair,
    /// Seconds from starting the instances until the group's lag was 0.
    pub drain_s: Pair,
    /// Assignments and revocations over the instances beyond one each.
    pub rebalances: Pair,
    /// Events stored per instance, per run, for each model.
    pub per_instance: Vec<(String, Vec<u64>)>,
}

/// The producer with no consumer running.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutageFigures {
    pub rate: u64,
    /// The producer's rate with no consumer.
    pub producer_events_per_second: f64,
    /// First send to last acknowledgement minus the offered duration, ms.
    pub producer_tail_ms: f64,
    pub producer_cpu_s: f64,
    /// The same with both consumers live (latency phases at that rate).
    pub live_producer_events_per_second: Vec<f64>,
    pub live_producer_tail_ms: Vec<f64>,
    /// Producer CPU with both consumers live.
    pub live_producer_cpu_s: Vec<f64>,
    /// After the outage: each consumer's drain rate.
    pub drain_events_per_second: Pair,
    /// After the outage: each consumer's largest latency, ms.
    pub max_ms: Pair,
}

/// One line of the claims table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRow {
    pub claim: String,
    pub experiment: String,
    pub pull: String,
    pub push: String,
    pub verdict: Verdict,
    /// What the verdict rests on: differences, noise, counts.
    pub basis: String,
    /// The figures whose own verdict differs from the claim's, by verdict
    /// (empty when all agree).
    #[serde(default)]
    pub exceptions: String,
}

/// Everything `claims.md` says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    pub latency: Vec<RateFigures>,
    pub idle: Option<IdleFigures>,
    pub burst: Option<LoadFigures>,
    pub step: Option<LoadFigures>,
    pub slow: Option<LoadFigures>,
    /// Scale-out, per group size.
    pub scale: Vec<ScaleFigures>,
    pub outage: Option<OutageFigures>,
    pub claims: Vec<ClaimRow>,
    pub phases: Vec<(String, String, f64)>,
}
