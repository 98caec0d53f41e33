//! `results.json`: the figures of a run, gathered from the files in its
//! directory; the report and pictures are drawn from it alone, so `bench
//! report DIR` redraws them from an old run.

use std::collections::BTreeMap;
use std::path::Path;

use consumer_core::Model;
use serde::{Deserialize, Serialize};

use crate::machine::{BrokerInfo, Machine, ProcUsage};
use crate::queries::QueryStats;
use crate::settings::Settings;
use crate::stats::{
    ConsumerStats, Latency, ProducerStats, RawConsumeStats, StoreInsertStats, read_stats,
};
use crate::verify::{self, Check};

/// What the orchestrator records as it goes (`run.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    pub command: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    pub finished_at: String,
    pub wall_seconds: f64,
    pub config: RunConfig,
    pub machine: Machine,
    pub broker: BrokerInfo,
    pub steps: Vec<Step>,
    /// Each database's size right after its consumer, before any index.
    pub db_bytes: BTreeMap<String, u64>,
    pub exit_codes: BTreeMap<String, i32>,
    pub failures: Vec<String>,
    /// Every child inherits it as its `ru_maxrss` floor: it must stay small.
    pub orchestrator_max_rss_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunConfig {
    /// Backlog size (0: skipped).
    pub events: u64,
    pub rates: Vec<u64>,
    pub duration_s: u64,
    pub warmup_s: u64,
    /// Prefix of this run's topics and groups.
    pub run_id: String,
    pub settings: Settings,
    /// `--saturation-p99-ms`, when the run made a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub phase: String,
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
    /// A local broker's CPU and memory meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<ProcUsage>,
}

/// The figures of one consumer run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub events: u64,
    /// First message to last commit.
    pub wall_seconds: f64,
    pub events_per_second: f64,
    /// End-to-end latency per event.
    pub latency_us: Latency,
    /// Each batch's SQLite commit.
    pub commit_us: Latency,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    pub db_bytes: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub exit_reason: String,
    pub exit_code: Option<i32>,
    pub verification: String,
    /// `[elapsed_s, committed so far]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<(f64, u64)>,
}

/// Latency of one model at one offered live rate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveLatency {
    pub rate: u64,
    pub events_per_second: f64,
    pub latency_us: Latency,
}

/// A model's figures: the backlog drain, its ceiling, and its live latency.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelResult {
    #[serde(flatten)]
    pub backlog: Figures,
    /// The lower of the two ceilings.
    pub ceiling_events_per_second: Option<f64>,
    pub fraction_of_ceiling: Option<f64>,
    pub live: Vec<LiveLatency>,
}

/// The producer against its raw ceiling.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProducerResult {
    pub events: u64,
    pub wall_seconds: f64,
    pub events_per_second: f64,
    /// `producer --raw` (pre-encoded payloads), its halves right before and
    /// right after the producer together: their events over their time.
    pub raw_events_per_second: Option<f64>,
    pub raw_before_events_per_second: Option<f64>,
    pub raw_after_events_per_second: Option<f64>,
    pub ratio_to_raw: Option<f64>,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
    pub raw_cpu_seconds: Option<f64>,
    pub raw_max_rss_bytes: Option<u64>,
}

/// An insert ceiling's two halves (`{name}-before.json`, `-after.json`)
/// joined; one half alone is no ceiling of the whole backlog.
pub fn joined_halves(backlog: &Path, name: &str) -> anyhow::Result<Option<StoreInsertStats>> {
    let before: Option<StoreInsertStats> = read_opt(&backlog.join(format!("{name}-before.json")))?;
    let after: Option<StoreInsertStats> = read_opt(&backlog.join(format!("{name}-after.json")))?;
    Ok(before
        .zip(after)
        .map(|(b, a)| StoreInsertStats::joined(&b, &a)))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceilings {
    pub raw_consume: Option<RawConsumeStats>,
    pub store_insert: Option<StoreInsertStats>,
    /// Not a consumer ceiling: the limit of the store's design.
    pub bare_sqlite: Option<StoreInsertStats>,
    pub store_to_bare: Option<f64>,
    pub lower_events_per_second: Option<f64>,
    /// `raw consume` or `store insert`.
    pub lower: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveResult {
    pub rate: u64,
    pub duration_s: u64,
    pub produced: u64,
    pub producer_events_per_second: f64,
    pub producer_cpu_seconds: f64,
    pub producer_max_rss_bytes: u64,
    pub pull: Option<Figures>,
    pub push: Option<Figures>,
}

/// p99, ms.
pub const DEFAULT_SATURATION_P99_MS: f64 = 100.0;

/// The saturation sweep: offered rates doubling while a consumer keeps
/// pace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Saturation {
    pub p99_bound_ms: f64,
    pub steps: Vec<LiveResult>,
    /// The highest rate it [`sustains`], every lower one too.
    pub pull_max_rate: Option<u64>,
    pub push_max_rate: Option<u64>,
    /// The highest rate it keeps pace with (sustains with no bound), every
    /// lower one too.
    pub pull_max_rate_keeping_pace: Option<u64>,
    pub push_max_rate_keeping_pace: Option<u64>,
}

impl Saturation {
    pub fn from_steps(steps: Vec<LiveResult>, p99_bound_ms: f64) -> Saturation {
        // With no bound, sustaining is keeping pace.
        let knee = |push: bool, bound: f64| {
            let held =
                |s: &&LiveResult| sustains(s, [&s.pull, &s.push][push as usize].as_ref(), bound);
            steps.iter().take_while(held).map(|s| s.rate).last()
        };
        Saturation {
            pull_max_rate: knee(false, p99_bound_ms),
            push_max_rate: knee(true, p99_bound_ms),
            pull_max_rate_keeping_pace: knee(false, f64::INFINITY),
            push_max_rate_keeping_pace: knee(true, f64::INFINITY),
            p99_bound_ms,
            steps,
        }
    }
}

/// Whether the producer offered a step's rate: at least 90% of it, over
/// its whole run (which includes connecting and the last acknowledgements).
pub fn offered(step: &LiveResult) -> bool {
    step.producer_events_per_second >= 0.9 * step.rate as f64
}

/// Whether a consumer sustained a live step: the producer [`offered`] the
/// rate, the consumer stored every acknowledged event, committed at 95% or
/// more of the producer's achieved rate (first message to last commit: it
/// did not fall behind) and its database passed verification (it kept
/// pace), and its p99 stayed within the bound (none when infinite).
pub fn sustains(step: &LiveResult, f: Option<&Figures>, p99_bound_ms: f64) -> bool {
    let Some(f) = f else { return false };
    offered(step)
        && step.produced > 0
        && f.events == step.produced
        && f.events_per_second >= 0.95 * step.producer_events_per_second
        && f.verification != "FAIL"
        && (f.latency_us.p99 as f64) <= p99_bound_ms * 1e3
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    pub verification: String,
    pub checks: Vec<Check>,
    pub pull: Option<ModelResult>,
    pub push: Option<ModelResult>,
    pub producer: Option<ProducerResult>,
    pub ceilings: Option<Ceilings>,
    pub queries: Option<QueryStats>,
    pub live: Vec<LiveResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturation: Option<Saturation>,
    /// As `producer`, `pull` and `push` reported them.
    pub settings: BTreeMap<String, BTreeMap<String, String>>,
    /// Per program, over every run of it.
    pub peak_rss_bytes: BTreeMap<String, u64>,
    pub benchmark_wall_seconds: f64,
    pub run: RunRecord,
}

mod collect;

/// A stats file a failed or skipped step may not have written (one of
/// another format version is an error).
fn read_opt<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    Ok(path.is_file().then(|| read_stats(path)).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::STATS_VERSION;
    use crate::tests::producer_stats;

    fn write(dir: &Path, name: &str, events: u64, wall: f64, rss: u64) {
        let stats = ProducerStats {
            cpu_seconds: 2.0,
            max_rss_bytes: rss,
            ..producer_stats(1, events, wall)
        };
        common::stats::write_json(&dir.join(name), &stats).unwrap();
    }

    fn producer(dir: &Path) -> anyhow::Result<ProducerResult> {
        let mut r = Results::default();
        r.collect_producer(dir)?;
        Ok(r.producer.expect("producer.json is there"))
    }

    /// The ceiling is both halves' events over both halves' time, not the
    /// mean of their rates.
    #[test]
    fn the_raw_ceiling_joins_its_two_halves() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "producer.json", 1_000_000, 1.0, 10);
        assert_eq!(producer(dir.path()).unwrap().raw_events_per_second, None);
        write(dir.path(), "producer-raw-before.json", 5_000_000, 2.0, 40);
        write(dir.path(), "producer-raw-after.json", 5_000_000, 3.0, 60);
        let p = producer(dir.path()).unwrap();
        assert_eq!(p.raw_events_per_second, Some(2_000_000.0));
        assert_eq!(p.ratio_to_raw, Some(0.5));
        let halves = (
            p.raw_before_events_per_second,
            p.raw_after_events_per_second,
        );
        assert_eq!(halves, (Some(2_500_000.0), Some(5_000_000.0 / 3.0)));
        assert_eq!(p.raw_cpu_seconds, Some(4.0));
        assert_eq!(p.raw_max_rss_bytes, Some(60));
    }

    fn write_store(dir: &Path, name: &str, events: u64, commit: f64, rss: u64) {
        let stats = StoreInsertStats {
            version: STATS_VERSION,
            events,
            batch_size: 50_000,
            batches: events / 50_000,
            commit_seconds: commit,
            wall_seconds: commit + 1.0,
            events_per_second: events as f64 / commit,
            db_bytes: rss * 10,
            max_rss_bytes: rss,
            ..StoreInsertStats::default()
        };
        common::stats::write_json(&dir.join(name), &stats).unwrap();
    }

    /// The store ceiling is both halves' events over both halves' commit
    /// time; one half alone is no ceiling of the backlog.
    #[test]
    fn the_store_ceiling_joins_its_two_halves() {
        let dir = tempfile::tempdir().unwrap();
        assert!(joined_halves(dir.path(), "store-insert").unwrap().is_none());
        write_store(dir.path(), "store-insert-before.json", 5_000_000, 10.0, 100);
        assert!(joined_halves(dir.path(), "store-insert").unwrap().is_none());
        write_store(dir.path(), "store-insert-after.json", 5_000_000, 15.0, 120);
        let s = joined_halves(dir.path(), "store-insert").unwrap().unwrap();
        assert_eq!((s.events, s.batches), (10_000_000, 200));
        assert_eq!(s.events_per_second, 400_000.0);
        assert_eq!(s.events_per_second_with_generation, 10_000_000.0 / 27.0);
        assert_eq!(
            s.halves_events_per_second,
            Some([500_000.0, 5_000_000.0 / 15.0])
        );
        assert_eq!((s.max_rss_bytes, s.db_bytes), (120, 1_200));
    }

    /// A stats file of an older format is refused, naming the file: the
    /// report is not drawn with zeros in its place.
    #[test]
    fn an_old_stats_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("producer-raw-before.json"),
            r#"{"mode":"raw","events_acknowledged":3}"#,
        )
        .unwrap();
        let e = format!("{:#}", producer(dir.path()).unwrap_err());
        assert!(e.contains("producer-raw-before.json"), "{e}");
        assert!(e.contains("format version 1"), "{e}");
    }
}
