//! The figures of a run, gathered from the files in its directory:
//! `run.json` (what the orchestrator did), the stats files of every process,
//! `verification.json` and `queries.json`. `results.json` is this struct;
//! the report and the pictures are drawn from it alone, so `bench report
//! DIR` redraws them from an old run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::{BrokerInfo, Machine};
use crate::queries::QueryStats;
use crate::stats::{
    ConsumerStats, Latency, ProducerStats, RawConsumeStats, StoreInsertStats, flat_settings,
    read_json,
};
use crate::verify::{self, Check};

/// What the orchestrator records as it goes (`run.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    /// The command line as the user gave it.
    pub command: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    /// UTC, when the report was written.
    pub finished_at: String,
    /// Whole run, builds excluded.
    pub wall_seconds: f64,
    /// The run's parameters.
    pub config: RunConfig,
    /// Where it ran.
    pub machine: Machine,
    /// Which broker.
    pub broker: BrokerInfo,
    /// Every step with its duration, in order.
    pub steps: Vec<Step>,
    /// Size of each database (`backlog/pull.db`, ...) right after its
    /// consumer finished, before any query index.
    pub db_bytes: BTreeMap<String, u64>,
    /// Exit code of each process (`backlog/pull`, ...).
    pub exit_codes: BTreeMap<String, i32>,
    /// What went wrong, in words.
    pub failures: Vec<String>,
    /// Peak RSS of `bench run` itself. Every child starts with at least
    /// this as its `ru_maxrss` (Linux keeps the high-water mark across fork
    /// and exec), so it must stay small for the children's figures to be
    /// their own.
    pub orchestrator_max_rss_bytes: u64,
}

/// The parameters of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Backlog size (0 when the backlog phase was skipped).
    pub events: u64,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Generator seed.
    pub seed: u64,
    /// Generator accounts.
    pub accounts: u64,
    /// Live-phase rates, events/s.
    pub rates: Vec<u64>,
    /// Live-phase length per rate.
    pub duration_s: u64,
    /// Seconds the consumers get to join before the live producer starts.
    pub warmup_s: u64,
    /// Prefix of this run's topics and groups.
    pub run_id: String,
    /// Extra producer arguments.
    pub producer_args: Vec<String>,
    /// Extra consumer-pull arguments.
    pub pull_args: Vec<String>,
    /// Extra consumer-push arguments.
    pub push_args: Vec<String>,
}

/// One step of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// `backlog`, `live-20000`, `report`.
    pub phase: String,
    /// What it did.
    pub name: String,
    /// How long.
    pub seconds: f64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The figures of one consumer run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Events committed.
    pub events: u64,
    /// First message to last commit.
    pub wall_seconds: f64,
    /// Events committed per wall second.
    pub events_per_second: f64,
    /// End-to-end latency per event, µs.
    pub latency_us: Latency,
    /// CPU of the process.
    pub cpu_seconds: f64,
    /// Peak RSS of the process.
    pub max_rss_bytes: u64,
    /// Database size after the run.
    pub db_bytes: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Store transactions.
    pub batches: u64,
    /// Why the process stopped.
    pub exit_reason: String,
    /// Its exit code, when known.
    pub exit_code: Option<i32>,
    /// PASS or FAIL.
    pub verification: String,
    /// `[elapsed_s, committed so far]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<(f64, f64)>,
}

/// Latency of one model at one live rate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveLatency {
    /// Offered rate, events/s.
    pub rate: u64,
    /// Achieved rate.
    pub events_per_second: f64,
    /// µs.
    pub latency_us: Latency,
}

/// A model's figures: the backlog drain, its ceiling, and its live latency.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelResult {
    /// The backlog drain.
    #[serde(flatten)]
    pub backlog: Figures,
    /// The lower of the two ceilings, events/s.
    pub ceiling_events_per_second: Option<f64>,
    /// `events_per_second / ceiling_events_per_second`.
    pub fraction_of_ceiling: Option<f64>,
    /// Latency per live rate.
    pub live: Vec<LiveLatency>,
}

/// The producer against its raw ceiling.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProducerResult {
    /// Acknowledged events.
    pub events: u64,
    /// Wall time.
    pub wall_seconds: f64,
    /// Acknowledged events per second.
    pub events_per_second: f64,
    /// `producer --raw`: pre-encoded payloads, same count in all, half
    /// right before the producer and half right after; events over wall
    /// time of both halves.
    pub raw_events_per_second: Option<f64>,
    /// The raw half run right before the producer.
    pub raw_before_events_per_second: Option<f64>,
    /// The raw half run right after the producer.
    pub raw_after_events_per_second: Option<f64>,
    /// `events_per_second / raw_events_per_second`.
    pub ratio_to_raw: Option<f64>,
    /// CPU.
    pub cpu_seconds: f64,
    /// Peak RSS.
    pub max_rss_bytes: u64,
    /// CPU of the raw runs, together.
    pub raw_cpu_seconds: Option<f64>,
    /// Peak RSS of the raw runs.
    pub raw_max_rss_bytes: Option<u64>,
}

/// The producer's raw ceiling, from its halves (`producer-raw-before.json`,
/// `producer-raw-after.json`), or from the single `producer-raw.json` of
/// runs made before the ceiling was split.
#[derive(Debug, Clone, PartialEq)]
pub struct RawProducer {
    /// Events acknowledged over all raw runs.
    pub events: u64,
    /// `events` over the runs' wall time together.
    pub events_per_second: f64,
    /// The before and after halves' own rates (absent for a single run).
    pub halves: [Option<f64>; 2],
    /// CPU of the runs together.
    pub cpu_seconds: f64,
    /// The highest peak RSS of the runs.
    pub max_rss_bytes: u64,
}

impl RawProducer {
    /// The raw ceiling measured in the backlog directory `backlog`, if any.
    pub fn read(backlog: &Path) -> Option<RawProducer> {
        let halves: [Option<ProducerStats>; 2] = [
            read_opt(&backlog.join("producer-raw-before.json")),
            read_opt(&backlog.join("producer-raw-after.json")),
        ];
        let runs: Vec<ProducerStats> = if halves.iter().any(Option::is_some) {
            halves.iter().flatten().cloned().collect()
        } else {
            vec![read_opt(&backlog.join("producer-raw.json"))?]
        };
        let events: u64 = runs.iter().map(|r| r.events_acknowledged).sum();
        let wall: f64 = runs.iter().map(|r| r.wall_seconds).sum();
        (wall > 0.0).then(|| RawProducer {
            events,
            events_per_second: events as f64 / wall,
            halves: halves.map(|h| h.map(|r| r.events_per_second)),
            cpu_seconds: runs.iter().map(|r| r.cpu_seconds).sum(),
            max_rss_bytes: runs.iter().map(|r| r.max_rss_bytes).max().unwrap_or(0),
        })
    }
}

/// The store ceiling measured in the backlog directory `backlog`: its two
/// halves (`store-insert-before.json`, `store-insert-after.json`) joined,
/// or the single `store-insert.json` of runs made before it was split.
/// A half without the other is not a ceiling of the whole backlog: none.
pub fn store_ceiling(backlog: &Path) -> Option<StoreInsertStats> {
    let before: Option<StoreInsertStats> = read_opt(&backlog.join("store-insert-before.json"));
    let after: Option<StoreInsertStats> = read_opt(&backlog.join("store-insert-after.json"));
    match (before, after) {
        (Some(b), Some(a)) => Some(StoreInsertStats::joined(&b, &a)),
        (None, None) => read_opt(&backlog.join("store-insert.json")),
        _ => None,
    }
}

/// The two consumer ceilings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ceilings {
    /// Raw consume, decode only.
    pub raw_consume: Option<RawConsumeStats>,
    /// Store insert, no Kafka.
    pub store_insert: Option<StoreInsertStats>,
    /// The lower of the two, events/s.
    pub lower_events_per_second: Option<f64>,
    /// `raw consume` or `store insert`.
    pub lower: String,
}

/// One live rate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveResult {
    /// Offered rate, events/s.
    pub rate: u64,
    /// Seconds the producer emitted.
    pub duration_s: u64,
    /// Events the producer got acknowledged.
    pub produced: u64,
    /// Rate the producer achieved.
    pub producer_events_per_second: f64,
    /// Producer CPU.
    pub producer_cpu_seconds: f64,
    /// Producer peak RSS.
    pub producer_max_rss_bytes: u64,
    /// consumer-pull.
    pub pull: Option<Figures>,
    /// consumer-push.
    pub push: Option<Figures>,
}

/// Settings that decide latency, as each process reported them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Producer's librdkafka settings.
    pub producer: BTreeMap<String, String>,
    /// consumer-pull's settings.
    pub pull: BTreeMap<String, String>,
    /// consumer-push's settings.
    pub push: BTreeMap<String, String>,
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Results {
    /// PASS when every check passed, FAIL otherwise.
    pub verification: String,
    /// Every check.
    pub checks: Vec<Check>,
    /// consumer-pull.
    pub pull: Option<ModelResult>,
    /// consumer-push.
    pub push: Option<ModelResult>,
    /// The backlog producer.
    pub producer: Option<ProducerResult>,
    /// The consumer ceilings.
    pub ceilings: Option<Ceilings>,
    /// The two store queries on the backlog database.
    pub queries: Option<QueryStats>,
    /// One entry per live rate.
    pub live: Vec<LiveResult>,
    /// Settings that decide latency.
    pub settings: Settings,
    /// Peak RSS of each program over every run of it (`producer`,
    /// `producer-raw`, `pull`, `push`, `raw-consume`, `store-insert`).
    pub peak_rss_bytes: BTreeMap<String, u64>,
    /// The whole benchmark, builds excluded (same as `run.wall_seconds`).
    pub benchmark_wall_seconds: f64,
    /// The orchestrator's record (machine, broker, config, steps).
    pub run: RunRecord,
}

impl Results {
    /// Gathers the figures of the run in `dir`.
    pub fn collect(dir: &Path) -> anyhow::Result<Results> {
        let run: RunRecord = read_opt(&dir.join("run.json")).unwrap_or_default();
        let checks: Vec<Check> = read_opt(&dir.join("verification.json")).unwrap_or_default();
        let mut r = Results {
            verification: verify::verdict(&checks).to_string(),
            checks,
            run,
            ..Results::default()
        };

        let backlog = dir.join("backlog");
        let producer: Option<ProducerStats> = read_opt(&backlog.join("producer.json"));
        let raw_producer = RawProducer::read(&backlog);
        let raw_consume: Option<RawConsumeStats> = read_opt(&backlog.join("raw-consume.json"));
        let store_insert = store_ceiling(&backlog);
        r.queries = read_opt(&dir.join("queries.json"));

        if let Some(p) = &producer {
            r.settings.producer = flat_settings(&p.settings);
            let raw_eps = raw_producer.as_ref().map(|s| s.events_per_second);
            let [raw_before, raw_after] = raw_producer.as_ref().map_or([None; 2], |s| s.halves);
            r.producer = Some(ProducerResult {
                events: p.events_acknowledged,
                wall_seconds: p.wall_seconds,
                events_per_second: p.events_per_second,
                raw_events_per_second: raw_eps,
                raw_before_events_per_second: raw_before,
                raw_after_events_per_second: raw_after,
                ratio_to_raw: raw_eps
                    .filter(|&x| x > 0.0)
                    .map(|x| p.events_per_second / x),
                cpu_seconds: p.cpu_seconds,
                max_rss_bytes: p.max_rss_bytes,
                raw_cpu_seconds: raw_producer.as_ref().map(|s| s.cpu_seconds),
                raw_max_rss_bytes: raw_producer.as_ref().map(|s| s.max_rss_bytes),
            });
        }

        let lower = [
            raw_consume
                .as_ref()
                .map(|s| ("raw consume", s.events_per_second)),
            store_insert
                .as_ref()
                .map(|s| ("store insert", s.events_per_second)),
        ]
        .into_iter()
        .flatten()
        .filter(|(_, eps)| *eps > 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1));
        if raw_consume.is_some() || store_insert.is_some() {
            r.ceilings = Some(Ceilings {
                raw_consume,
                store_insert,
                lower_events_per_second: lower.map(|l| l.1),
                lower: lower.map(|l| l.0.to_string()).unwrap_or_default(),
            });
        }

        for model in verify::MODELS {
            let stats: Option<ConsumerStats> = read_opt(&backlog.join(format!("{model}.json")));
            let Some(stats) = stats else { continue };
            let figures = r.figures("backlog", model, &stats);
            let settings = flat_settings(&stats.settings);
            let ceiling = lower.map(|l| l.1);
            let result = ModelResult {
                fraction_of_ceiling: ceiling
                    .filter(|&c| c > 0.0)
                    .map(|c| figures.events_per_second / c),
                ceiling_events_per_second: ceiling,
                backlog: figures,
                live: Vec::new(),
            };
            match model {
                "pull" => {
                    r.settings.pull = settings;
                    r.pull = Some(result);
                }
                _ => {
                    r.settings.push = settings;
                    r.push = Some(result);
                }
            }
        }

        for phase_dir in verify::phase_dirs(dir).unwrap_or_default() {
            let phase = phase_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(rate) = phase
                .strip_prefix("live-")
                .and_then(|x| x.parse::<u64>().ok())
            else {
                continue;
            };
            let p: ProducerStats = read_opt(&phase_dir.join("producer.json")).unwrap_or_default();
            if r.settings.producer.is_empty() {
                r.settings.producer = flat_settings(&p.settings);
            }
            let mut live = LiveResult {
                rate,
                duration_s: r.run.config.duration_s,
                produced: p.events_acknowledged,
                producer_events_per_second: p.events_per_second,
                producer_cpu_seconds: p.cpu_seconds,
                producer_max_rss_bytes: p.max_rss_bytes,
                pull: None,
                push: None,
            };
            for model in verify::MODELS {
                let stats: Option<ConsumerStats> =
                    read_opt(&phase_dir.join(format!("{model}.json")));
                let Some(stats) = stats else { continue };
                let figures = r.figures(&phase, model, &stats);
                let entry = LiveLatency {
                    rate,
                    events_per_second: figures.events_per_second,
                    latency_us: figures.latency_us,
                };
                let settings = flat_settings(&stats.settings);
                let slot = if model == "pull" {
                    live.pull = Some(figures);
                    if r.settings.pull.is_empty() {
                        r.settings.pull = settings;
                    }
                    &mut r.pull
                } else {
                    live.push = Some(figures);
                    if r.settings.push.is_empty() {
                        r.settings.push = settings;
                    }
                    &mut r.push
                };
                slot.get_or_insert_with(ModelResult::default)
                    .live
                    .push(entry);
            }
            r.live.push(live);
        }
        r.peak_rss_bytes = r.peaks();
        r.benchmark_wall_seconds = r.run.wall_seconds;
        Ok(r)
    }

    fn peaks(&self) -> BTreeMap<String, u64> {
        let mut peaks = BTreeMap::new();
        let mut note = |who: &str, bytes: u64| {
            if bytes > 0 {
                let slot = peaks.entry(who.to_string()).or_insert(0);
                *slot = (*slot).max(bytes);
            }
        };
        if let Some(p) = &self.producer {
            note("producer", p.max_rss_bytes);
            note("producer-raw", p.raw_max_rss_bytes.unwrap_or(0));
        }
        if let Some(c) = &self.ceilings {
            note(
                "raw-consume",
                c.raw_consume.as_ref().map_or(0, |x| x.max_rss_bytes),
            );
            note(
                "store-insert",
                c.store_insert.as_ref().map_or(0, |x| x.max_rss_bytes),
            );
        }
        for (model, m) in [("pull", &self.pull), ("push", &self.push)] {
            if let Some(m) = m {
                note(model, m.backlog.max_rss_bytes);
            }
        }
        for l in &self.live {
            note("producer", l.producer_max_rss_bytes);
            for (model, f) in [("pull", &l.pull), ("push", &l.push)] {
                if let Some(f) = f {
                    note(model, f.max_rss_bytes);
                }
            }
        }
        peaks
    }

    fn figures(&self, phase: &str, model: &str, s: &ConsumerStats) -> Figures {
        let key = format!("{phase}/{model}");
        Figures {
            events: s.events_committed,
            wall_seconds: s.wall_seconds,
            events_per_second: s.events_per_second,
            latency_us: s.latency_us,
            cpu_seconds: s.cpu_seconds,
            max_rss_bytes: s.max_rss_bytes,
            db_bytes: self
                .run
                .db_bytes
                .get(&format!("{key}.db"))
                .copied()
                .unwrap_or(0),
            dead_letters: s.dead_letters,
            batches: s.batches,
            exit_reason: s.exit_reason.clone(),
            exit_code: self.run.exit_codes.get(&key).copied(),
            verification: if self.checks.is_empty() {
                "not run".into()
            } else {
                verify::verdict_of(&self.checks, phase, model).into()
            },
            timeline: s.timeline.clone(),
        }
    }

    /// A setting of `who` (`producer`, `pull`, `push`), or "–".
    pub fn setting(&self, who: &str, key: &str) -> String {
        let map = match who {
            "producer" => &self.settings.producer,
            "pull" => &self.settings.pull,
            _ => &self.settings.push,
        };
        map.get(key).cloned().unwrap_or_else(|| "–".into())
    }
}

fn read_opt<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    if !path.is_file() {
        return None;
    }
    match read_json(path) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: warning: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, events: u64, wall: f64, rss: u64) {
        let stats = ProducerStats {
            mode: "raw".into(),
            events_acknowledged: events,
            wall_seconds: wall,
            events_per_second: events as f64 / wall,
            cpu_seconds: 2.0,
            max_rss_bytes: rss,
            ..ProducerStats::default()
        };
        std::fs::write(dir.join(name), serde_json::to_vec(&stats).unwrap()).unwrap();
    }

    /// The ceiling is both halves' events over both halves' time, not the
    /// mean of their rates.
    #[test]
    fn the_raw_ceiling_joins_its_two_halves() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RawProducer::read(dir.path()), None);
        write(dir.path(), "producer-raw-before.json", 5_000_000, 2.0, 40);
        write(dir.path(), "producer-raw-after.json", 5_000_000, 3.0, 60);
        let raw = RawProducer::read(dir.path()).unwrap();
        assert_eq!(raw.events, 10_000_000);
        assert_eq!(raw.events_per_second, 2_000_000.0);
        assert_eq!(raw.halves, [Some(2_500_000.0), Some(5_000_000.0 / 3.0)]);
        assert_eq!(raw.cpu_seconds, 4.0);
        assert_eq!(raw.max_rss_bytes, 60);
    }

    fn write_store(dir: &Path, name: &str, events: u64, commit: f64, rss: u64) {
        let stats = StoreInsertStats {
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
        std::fs::write(dir.join(name), serde_json::to_vec(&stats).unwrap()).unwrap();
    }

    /// The store ceiling is both halves' events over both halves' commit
    /// time; one half alone is no ceiling of the backlog; runs from before
    /// the split still read.
    #[test]
    fn the_store_ceiling_joins_its_two_halves() {
        let dir = tempfile::tempdir().unwrap();
        assert!(store_ceiling(dir.path()).is_none());
        write_store(dir.path(), "store-insert-before.json", 5_000_000, 10.0, 100);
        assert!(store_ceiling(dir.path()).is_none());
        write_store(dir.path(), "store-insert-after.json", 5_000_000, 15.0, 120);
        let s = store_ceiling(dir.path()).unwrap();
        assert_eq!((s.events, s.batches), (10_000_000, 200));
        assert_eq!(s.events_per_second, 400_000.0);
        assert_eq!(s.events_per_second_with_generation, 10_000_000.0 / 27.0);
        assert_eq!(
            s.halves_events_per_second,
            Some([500_000.0, 5_000_000.0 / 15.0])
        );
        assert_eq!((s.max_rss_bytes, s.db_bytes), (120, 1_200));

        let old = tempfile::tempdir().unwrap();
        write_store(old.path(), "store-insert.json", 10_000_000, 20.0, 90);
        let s = store_ceiling(old.path()).unwrap();
        assert_eq!(s.events_per_second, 500_000.0);
        assert_eq!(s.halves_events_per_second, None);
    }

    /// Result directories from before the split hold one raw run.
    #[test]
    fn a_single_raw_run_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "producer-raw.json", 10_000_000, 4.0, 50);
        let raw = RawProducer::read(dir.path()).unwrap();
        assert_eq!(raw.events_per_second, 2_500_000.0);
        assert_eq!(raw.halves, [None, None]);
    }
}
