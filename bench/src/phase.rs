//! A phase, the one way both `bench run` (its live phases) and `bench
//! claims` (every experiment) measure: a fresh topic, consumers of one or
//! both models (one or more instances each, one group per model), ready
//! files awaited, a producer load made of segments (a rate for a count of
//! events, then a pause), and, for the claims, an idle window and a
//! timeline ([`sampler`]: it adds load, so `bench run` does without).
//! [`run`] runs it; [`verify`] checks it (`bench run`'s own verification
//! step does the same for one instance of each model).
//!
//! One segment's producer writes `producer.json` itself; several run as
//! `producer-<k>`, each with its own range of event ids, and
//! `producer.json` is their sum (counts, amount sum, and the id checksum, a
//! wrapping sum), which `bench check-phase` then verifies each
//! single-instance database against. The databases of a group of several
//! instances are verified as one with `ledger`.

mod checks;
mod run;
pub mod sampler;

use std::path::{Path, PathBuf};
use std::time::Duration;

use consumer_core::{ConsumerArgs, Model};
use serde::{Deserialize, Serialize};
use testkit::Bins;
use testkit::procs::{Finished, Proc};

use crate::argv::argv;
use crate::settings::Settings;
use crate::stats::{ConsumerStats, ProducerStats};
use crate::topics;
use crate::verify::Check;
use sampler::Sample;

pub use checks::{check_union, merge, verify};
pub use run::{instance_name, run};

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
    /// How long the consumers get to be assigned their partitions.
    pub ready_wait: Duration,
    /// Sample memory, CPU and lag every 250 ms ([`sampler`]).
    pub sample: bool,
}

impl PhaseSpec {
    /// Both models, one instance each, on `segments`, sampled.
    pub fn new(name: String, segments: Vec<Segment>) -> PhaseSpec {
        PhaseSpec {
            name,
            models: Model::ALL.to_vec(),
            instances: 1,
            segments,
            batch_size: None,
            idle_window_s: 0,
            consumers_after_producer: false,
            consumer_properties: Vec::new(),
            ready_wait: Duration::from_secs(30),
            sample: true,
        }
    }

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
    /// Start, on the phase's clock (the sampler's).
    pub start_s: f64,
    /// End (last acknowledgement and exit), on the phase's clock.
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
    /// Every process's exit code, by name (producers included).
    #[serde(skip)]
    pub exit_codes: Vec<(String, i32)>,
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

/// What every phase of a run needs: its settings, binaries, output
/// directory, id (the prefix of its topics and groups) and broker.
pub struct Env {
    pub settings: Settings,
    pub bins: Bins,
    pub out: PathBuf,
    pub run_id: String,
    /// The broker's process id, when local.
    pub broker_pid: Option<u32>,
}

impl Env {
    pub fn topic(&self, phase: &str) -> String {
        format!("{}.{phase}", self.run_id)
    }

    pub fn group(&self, model: Model, phase: &str) -> String {
        format!("{}.{}.{phase}", self.run_id, model.name())
    }

    /// A fresh topic with the run's partitions.
    pub fn create_topic(&self, topic: &str) -> anyhow::Result<()> {
        let partitions = self.settings.partitions;
        topics::create(&self.settings.brokers, topic, partitions)?;
        eprintln!("    topic {topic} created with {partitions} partitions");
        Ok(())
    }

    /// Runs the producer: `count` events at `rate` (0: unpaced) from id
    /// `first_id`, or its raw ceiling; `name` in `dir` (`{name}.json`,
    /// `{name}.log`).
    pub fn producer(
        &self,
        dir: &Path,
        name: &str,
        topic: &str,
        (count, rate): (u64, u64),
        first_id: u64,
        raw: bool,
    ) -> anyhow::Result<Finished> {
        let stats = dir.join(format!("{name}.json"));
        let mut args = self.settings.producer(topic, count, rate, &stats, raw);
        args.first_id = first_id;
        let log = dir.join(format!("{name}.log"));
        Proc::spawn_echoed(&self.bins.producer(), &argv(&args)?, &log, name)?
            .finish_within(producer_limit(count, rate))
    }

    /// Starts a consumer; `name` names its log in `dir`.
    pub fn consumer(
        &self,
        model: Model,
        name: &str,
        dir: &Path,
        args: &ConsumerArgs,
    ) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        Proc::spawn_echoed(&self.bins.consumer(model), &argv(args)?, &log, name)
    }
}

/// Generous limits: a stuck process must not hang the run forever, but a
/// slow machine must not be cut short either.
pub fn producer_limit(count: u64, rate: u64) -> Duration {
    let expected = count.checked_div(rate).unwrap_or(count / 20_000);
    Duration::from_secs(300 + expected * 2)
}

pub fn drain_limit(count: u64) -> Duration {
    Duration::from_secs(300 + count / 5_000)
}
