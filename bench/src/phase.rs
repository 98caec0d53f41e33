//! A phase, the one way both `bench run` (its live phases) and `bench
//! claims` measure: a fresh topic, consumers of one or both models (one
//! group per model), ready files awaited, a producer load made of segments
//! (a rate for a count of events, then a pause), and, for the claims, an
//! idle window and a timeline ([`sampler`]: it adds load, so `bench run`
//! does without). [`run`] runs it; [`verify`] checks it.
//!
//! Several segments run as `producer-<k>`, each with its own range of
//! event ids, and `producer.json` is their sum.

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
use crate::verify::Check;
use sampler::Sample;

pub use checks::{check_union, merge, verify};
pub use run::{instance_name, run};

/// A stretch of the producer's load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub count: u64,
    /// Events per second (0: unpaced).
    pub rate: u64,
    pub pause_after_s: f64,
}

#[derive(Debug, Clone)]
pub struct PhaseSpec {
    pub name: String,
    /// Each in a group of its own.
    pub models: Vec<Model>,
    /// Per model in its group (separate databases).
    pub instances: usize,
    pub segments: Vec<Segment>,
    /// Instead of the run's.
    pub batch_size: Option<usize>,
    /// Nothing sent for this long while the consumers are ready.
    pub idle_window_s: u64,
    /// A consumer outage; a backlog for the scale-out.
    pub consumers_after_producer: bool,
    /// librdkafka properties for the consumers, after the run's.
    pub consumer_properties: Vec<(String, String)>,
    pub ready_wait: Duration,
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

    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }
}

/// A segment as it ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SegmentRun {
    pub rate: u64,
    pub count: u64,
    pub acknowledged: u64,
    pub events_per_second: f64,
    /// On the phase's clock (the sampler's).
    pub start_s: f64,
    pub end_s: f64,
    /// The producer's own: first send to last delivery report.
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub errors: Vec<String>,
}

/// One consumer process as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerRun {
    pub model: String,
    /// `pull`, `pull-2`.
    pub name: String,
    pub stats: ConsumerStats,
    /// From its start to its ready file (first assignment).
    pub ready_s: Option<f64>,
    /// Over each half of the idle window.
    pub idle_cpu_seconds: Option<[f64; 2]>,
    /// From the producer's start to its exit.
    pub active_cpu_seconds: Option<f64>,
    pub active_seconds: Option<f64>,
    /// As its log shows them.
    pub assignments: u64,
    pub revocations: u64,
    pub exit_code: i32,
}

/// A phase as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRun {
    pub name: String,
    pub instances: usize,
    pub batch_size: usize,
    pub segments: Vec<SegmentRun>,
    /// All segments together.
    pub producer: ProducerStats,
    pub consumers: Vec<ConsumerRun>,
    pub idle_window_s: u64,
    pub broker_idle_cpu_seconds: Option<[f64; 2]>,
    /// On the sampler's clock; the consumers' start is 0 unless after the
    /// producer.
    pub produce_start_s: f64,
    pub consumers_start_s: f64,
    pub samples: Vec<Sample>,
    pub checks: Vec<Check>,
    pub verification: String,
    pub seconds: f64,
    pub failures: Vec<String>,
    #[serde(skip)]
    pub exit_codes: Vec<(String, i32)>,
}

/// What every phase of a run needs.
pub struct Env {
    pub settings: Settings,
    pub bins: Bins,
    pub out: PathBuf,
    /// The prefix of its topics and groups.
    pub run_id: String,
    pub broker_pid: Option<u32>,
}

impl Env {
    pub fn topic(&self, phase: &str) -> String {
        format!("{}.{phase}", self.run_id)
    }

    pub fn group(&self, model: Model, phase: &str) -> String {
        format!("{}.{}.{phase}", self.run_id, model.name())
    }

    pub fn create_topic(&self, topic: &str) -> anyhow::Result<()> {
        let partitions = self.settings.partitions;
        testkit::kafka::create_new_topic(&self.settings.brokers, topic, partitions)?;
        eprintln!("    topic {topic} created with {partitions} partitions");
        Ok(())
    }

    /// Gives the broker its memory and disk back; a leftover topic costs
    /// memory, not correctness.
    pub fn delete_topic(&self, topic: &str) {
        if let Err(e) = testkit::clients::delete_topic(&self.settings.brokers, topic) {
            eprintln!("bench: note: {e:#}; the topic stays on the broker");
        }
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

/// Generous limits: against a stuck process, not a slow machine.
pub fn producer_limit(count: u64, rate: u64) -> Duration {
    let expected = count.checked_div(rate).unwrap_or(count / 20_000);
    Duration::from_secs(300 + expected * 2)
}

pub fn drain_limit(count: u64) -> Duration {
    Duration::from_secs(300 + count / 5_000)
}
