//! One claims phase: a fresh topic, consumers of one or both models (one
//! or more instances each, one group per model), a producer load made of
//! segments (a rate for a count of events, then a pause), a timeline
//! ([`super::sampler`]) and verification with exact counts. Every
//! experiment of `bench claims` is one or more of these.
//!
//! The producer runs once per segment (`producer-<k>.json`), each with its
//! own range of event ids; `producer.json` is their sum (counts, amount
//! sum, and the id checksum, a wrapping sum), which `bench check-phase`
//! then verifies each single-instance database against. The databases of
//! a group of several instances are verified as one with `ledger`.

mod checks;
mod run;

use std::path::Path;

use consumer_core::Model;
use serde::{Deserialize, Serialize};

use super::sampler::Sample;
use crate::settings::Settings;
use crate::stats::{ConsumerStats, ProducerStats};
use crate::verify::Check;
use testkit::Bins;

pub use checks::{check_union, merge};
pub use run::run_phase;

/// A stretch of the producer's load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub count: u64,
    /// Events per second (0: as fast as the broker takes them).
    pub rate: u64,
    /// Nothing is sent for this long after it.
    pub pause_after_s: f64,
}

/// What a phase runs.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    pub name: String,
    /// The models that consume, each in a group of its own.
    pub models: Vec<Model>,
    /// Instances per model in its group (separate databases).
    pub instances: usize,
    pub segments: Vec<Segment>,
    /// The consumers' --batch-size instead of the run's.
    pub batch_size: Option<usize>,
    /// Measured before the producer starts: nothing is sent for this long
    /// while the consumers are ready.
    pub idle_window_s: u64,
    /// Start the consumers only after the producer has finished (a
    /// consumer outage; a backlog for the scale-out).
    pub consumers_after_producer: bool,
    /// librdkafka properties for the consumers, after the run's.
    pub consumer_properties: Vec<(String, String)>,
}

impl PhaseSpec {
    /// Events the phase sends.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }
}

/// A segment as it ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SegmentRun {
    /// Offered rate (0: unpaced).
    pub rate: u64,
    pub count: u64,
    pub acknowledged: u64,
    /// The producer's rate over its run.
    pub events_per_second: f64,
    /// Start, on the sampler's clock.
    pub start_s: f64,
    /// End (last acknowledgement and exit), on the sampler's clock.
    pub end_s: f64,
    /// The producer's own figures: wall time from the first send to the
    /// last delivery report, and its CPU.
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub errors: Vec<String>,
}

/// One consumer process as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerRun {
    /// `pull`, `push`.
    pub model: String,
    /// Its name in the phase (`pull`, `pull-2`).
    pub name: String,
    pub stats: ConsumerStats,
    /// Seconds from its start to its ready file (first assignment).
    pub ready_s: Option<f64>,
    /// Its CPU over each half of the idle window.
    pub idle_cpu_seconds: Option<[f64; 2]>,
    /// Its CPU from the producer's start to its exit.
    pub active_cpu_seconds: Option<f64>,
    /// Seconds from the producer's start to its exit.
    pub active_seconds: Option<f64>,
    /// Assignments and revocations its log shows (rebalances it took
    /// part in).
    pub assignments: u64,
    pub revocations: u64,
    pub exit_code: i32,
}

/// A phase as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRun {
    pub name: String,
    /// Instances per model.
    pub instances: usize,
    /// Batch size the consumers ran with.
    pub batch_size: usize,
    pub segments: Vec<SegmentRun>,
    /// The producer's figures, all segments together.
    pub producer: ProducerStats,
    pub consumers: Vec<ConsumerRun>,
    /// Seconds of the idle window (0: none).
    pub idle_window_s: u64,
    /// The broker's CPU over each half of the idle window.
    pub broker_idle_cpu_seconds: Option<[f64; 2]>,
    /// On the sampler's clock: when the producer started, and when the
    /// consumers were started (0 unless after the producer).
    pub produce_start_s: f64,
    /// When the consumers were started, on the sampler's clock.
    pub consumers_start_s: f64,
    /// Every 250 ms: memory, CPU, lag.
    pub samples: Vec<Sample>,
    pub checks: Vec<Check>,
    /// `PASS` or `FAIL`.
    pub verification: String,
    pub seconds: f64,
    pub failures: Vec<String>,
}

impl PhaseRun {
    /// The consumers of one model.
    pub fn of(&self, model: &str) -> impl Iterator<Item = &ConsumerRun> {
        self.consumers.iter().filter(move |c| c.model == model)
    }

    /// The single consumer of a model (first instance).
    pub fn one(&self, model: &str) -> Option<&ConsumerRun> {
        self.of(model).next()
    }
}

/// What a phase needs from the run.
pub struct PhaseEnv<'a> {
    pub settings: &'a Settings,
    pub bins: &'a Bins,
    pub out: &'a Path,
    pub run_id: &'a str,
    /// The broker's process id, when local.
    pub broker_pid: Option<u32>,
    /// First event id not used yet in this run.
    pub next_id: &'a mut u64,
}
