//! From the phases of a claims run to figures per experiment and a verdict
//! per claim, read from the phases' stats files and samples.

mod figures;
mod table;

use serde::{Deserialize, Serialize};

use super::verdict::{Pair, Verdict};

pub use figures::analyse;

/// One steady rate, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateFigures {
    pub rate: u64,
    /// Per repeat.
    pub events: u64,
    pub producer_events_per_second: Vec<f64>,
    pub p50_ms: Pair,
    pub p99_ms: Pair,
    pub p999_ms: Pair,
    pub max_ms: Pair,
    /// Consumer CPU from the producer's start to the consumer's exit.
    pub cpu_us_per_event: Pair,
    /// The same CPU per second of that window.
    pub cores: Pair,
}

/// CPU with nothing to consume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleFigures {
    pub seconds: u64,
    /// Each half of the window.
    pub cpu_ms_per_s: Pair,
    pub broker_cpu_ms_per_s: Vec<f64>,
}

/// A varying load (bursts, a step) or a slow sink, over the repeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    /// `burst`, `step`, `slow`.
    pub name: String,
    pub events: u64,
    /// The producer's rate per segment, first repeat.
    pub segment_rates: Vec<f64>,
    pub p50_ms: Pair,
    pub p99_ms: Pair,
    pub p999_ms: Pair,
    pub max_ms: Pair,
    pub max_lag: Pair,
    pub peak_rss_mb: Pair,
    /// Producer start to consumer exit.
    pub cpu_s: Pair,
    pub events_per_second: Pair,
    /// Between the first and the last partition to catch up.
    pub catch_up_spread_s: Pair,
    /// At the peak of the lag, the largest partition's lag over the mean.
    pub lag_skew: Pair,
    /// Assignments and revocations beyond the first assignment.
    pub rebalances: Pair,
    pub batches: Pair,
}

/// One group size of one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScaleFigures {
    pub instances: usize,
    /// The backlog over the span from the first instance's assignment to
    /// the group's lag reaching 0.
    pub events_per_second: Pair,
    /// From the start until every instance had partitions.
    pub join_s: Pair,
    /// From the start until the group's lag was 0.
    pub drain_s: Pair,
    /// Beyond one assignment per instance.
    pub rebalances: Pair,
    /// Events stored per instance, per phase.
    pub per_instance: Vec<(String, Vec<u64>)>,
}

/// The producer with no consumer running.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutageFigures {
    pub rate: u64,
    pub producer_events_per_second: f64,
    /// First send to last acknowledgement minus the offered duration.
    pub producer_tail_ms: f64,
    pub producer_cpu_s: f64,
    /// The same in the latency phases at that rate, both consumers live.
    pub live_producer_events_per_second: Vec<f64>,
    pub live_producer_tail_ms: Vec<f64>,
    pub live_producer_cpu_s: Vec<f64>,
    /// After the outage.
    pub drain_events_per_second: Pair,
    pub max_ms: Pair,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRow {
    pub claim: String,
    pub experiment: String,
    pub pull: String,
    pub push: String,
    pub verdict: Verdict,
    /// What the verdict rests on: differences, noise, counts.
    pub basis: String,
    /// The figures whose own verdict differs from the claim's.
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
    pub scale: Vec<ScaleFigures>,
    pub outage: Option<OutageFigures>,
    pub claims: Vec<ClaimRow>,
    pub phases: Vec<(String, String, f64)>,
}

/// A relative figure as a percentage; "∞" when infinite.
pub fn pct(x: f64) -> String {
    match x.is_infinite() {
        true => "∞".into(),
        false => format!("{:.0}%", x * 100.0),
    }
}

/// `v` with few significant digits.
pub fn num(v: f64) -> String {
    let digits = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    match v.is_finite() {
        true => format!("{v:.digits$}"),
        false => "–".into(),
    }
}

/// A rate as `1/s`, `20k/s`.
pub fn rate_text(rate: u64) -> String {
    format!("{}/s", crate::plots::human(rate as f64))
}

/// Several figures: `1.20, 1.31`.
pub fn values(v: &[f64]) -> String {
    joined(v.iter().map(|x| num(*x)), ", ")
}

pub fn joined(items: impl Iterator<Item = String>, sep: &str) -> String {
    items.collect::<Vec<_>>().join(sep)
}
