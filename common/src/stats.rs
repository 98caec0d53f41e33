//! Stats files (`--stats-json`): one definition of what the producer and the
//! consumers write, used by the processes that write them and by everything
//! that reads them (the benchmark, the tests), so a renamed field is a
//! compile error rather than a silent zero in a report.
//!
//! Every file carries `version` ([`STATS_VERSION`]). [`read_stats`] reads
//! only the current version and refuses any other, naming the file and
//! both versions; files written before the field existed count as version 1.
//! Bump the version whenever a field is renamed, removed or changes meaning.
//!
//! Files are written whole or not at all ([`write_json`]), readable by their
//! owner only (they describe bank data).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format of the stats files this build writes and reads. Version 1
/// (no `version` field) kept the consumers' settings in one flat map.
pub const STATS_VERSION: u32 = 3;

/// Why a stats file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is of another format version.
    #[error(
        "{} is a stats file of format version {found}; this build reads version {expected} only \
         (re-run the measurement, or read it with the build that wrote it)",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version (1 when it has none).
        found: u64,
        /// [`STATS_VERSION`].
        expected: u32,
    },
    /// The file is not JSON, or lacks a field of the current version.
    #[error("{} is not a valid stats file of version {STATS_VERSION}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What serde said (names the field).
        source: serde_json::Error,
    },
}

/// Reads a stats file of the current [`STATS_VERSION`]; any other version,
/// or a missing field, is an error that names the file.
pub fn read_stats<T: DeserializeOwned>(path: &Path) -> Result<T, StatsError> {
    let invalid = |source| StatsError::Invalid {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|source| StatsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(invalid)?;
    let found = value.get("version").and_then(|v| v.as_u64()).unwrap_or(1);
    if found != u64::from(STATS_VERSION) {
        return Err(StatsError::Version {
            path: path.to_path_buf(),
            found,
            expected: STATS_VERSION,
        });
    }
    serde_json::from_value(value).map_err(invalid)
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a
/// rename, so a reader never sees half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Fails early when `path` cannot be written (missing directory, no
/// permission), before any work is done that the stats would describe.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let md = std::fs::metadata(dir)?;
    if !md.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    if md.permissions().readonly() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is read-only", dir.display()),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The producer's file

/// What the producer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerMode {
    /// Generated events.
    Events,
    /// `--raw`: pre-encoded payloads, cycled (the producer's ceiling).
    Raw,
}

/// `producer --stats-json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerStats {
    /// [`STATS_VERSION`].
    pub version: u32,
    /// Events or raw payloads.
    pub mode: ProducerMode,
    /// The bootstrap list.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// `--count`.
    pub events_requested: u64,
    /// Events handed to librdkafka.
    pub events_sent: u64,
    /// Events whose delivery report said the broker has them: what a
    /// database must hold.
    pub events_acknowledged: u64,
    /// Events whose delivery finally failed (or that were never reported).
    pub events_failed: u64,
    /// Sum of `amount_minor` over the acknowledged events.
    pub amount_minor_sum: i128,
    /// `IdChecksum` of the acknowledged ids, 16 hex digits.
    pub id_checksum: String,
    /// Id of the first event generated (with `--raw`, of the pool).
    pub first_event_id: u64,
    /// Id of the last event generated (0 if none; with `--raw`, of the pool).
    pub last_event_id: u64,
    /// `--seed`.
    pub seed: u64,
    /// `--accounts`.
    pub accounts: u64,
    /// `--rate` (0 = unlimited).
    pub rate_limit: u64,
    /// From the first send to the last delivery report.
    pub wall_seconds: f64,
    /// Acknowledged events per second of wall time.
    pub events_per_second: f64,
    /// User plus system CPU of the process.
    pub cpu_seconds: f64,
    /// Peak resident set size.
    pub max_rss_bytes: u64,
    /// Stopped early by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// The librdkafka settings in force (secrets masked).
    pub settings: BTreeMap<String, String>,
    /// The first delivery errors.
    pub errors: Vec<String>,
}

// ---------------------------------------------------------------------------
// The consumers' file

/// Which consumption model a consumer implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// `BaseConsumer` poll loop: the consumer sets the pace.
    Pull,
    /// `StreamConsumer` on tokio: messages are pushed to a handler.
    Push,
}

impl Model {
    /// Both, in the order the benchmark runs them.
    pub const ALL: [Model; 2] = [Model::Pull, Model::Push];

    /// `"pull"` or `"push"`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Pull => "pull",
            Model::Push => "push",
        }
    }

    /// The binary's name, also librdkafka's `client.id`.
    pub fn binary(self) -> &'static str {
        match self {
            Model::Pull => "consumer-pull",
            Model::Push => "consumer-push",
        }
    }

    /// Default consumer group: `banking-pull` / `banking-push`.
    pub fn default_group(self) -> &'static str {
        match self {
            Model::Pull => "banking-pull",
            Model::Push => "banking-push",
        }
    }

    /// Default database file: `pull.db` / `push.db`.
    pub fn default_db(self) -> &'static str {
        match self {
            Model::Pull => "pull.db",
            Model::Push => "push.db",
        }
    }
}

/// Why a consumer's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    /// `--exit-when-idle`: every assigned partition drained, nothing new.
    Idle,
    /// `--max-events` messages stored.
    MaxEvents,
    /// SIGINT or SIGTERM.
    Signal,
    /// An error ended the run (the process exits non-zero).
    Error,
}

impl ExitReason {
    /// The name used in the stats file and the summary.
    pub fn name(self) -> &'static str {
        match self {
            ExitReason::Idle => "idle",
            ExitReason::MaxEvents => "max-events",
            ExitReason::Signal => "signal",
            ExitReason::Error => "error",
        }
    }
}

/// Percentiles in microseconds: end-to-end latency (SQLite commit time
/// minus the producer's `created_at_us`, one sample per stored event), or
/// the duration of each batch's SQLite commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// The settings a consumer ran with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerSettings {
    /// `--batch-size`.
    pub batch_size: u64,
    /// `--flush-interval-ms`.
    pub flush_interval_ms: u64,
    /// `--exit-when-idle`, seconds.
    pub exit_when_idle_s: Option<u64>,
    /// `--max-events`.
    pub max_events: Option<u64>,
    /// Every librdkafka property in force, secrets redacted.
    pub librdkafka: BTreeMap<String, String>,
}

impl ConsumerSettings {
    /// All settings as `key -> text`: the consumer's own knobs under their
    /// names above, the librdkafka properties under theirs (dotted).
    pub fn flat(&self) -> BTreeMap<String, String> {
        let mut out = self.librdkafka.clone();
        out.insert("batch_size".into(), self.batch_size.to_string());
        out.insert(
            "flush_interval_ms".into(),
            self.flush_interval_ms.to_string(),
        );
        for (k, v) in [
            ("exit_when_idle_s", self.exit_when_idle_s),
            ("max_events", self.max_events),
        ] {
            if let Some(v) = v {
                out.insert(k.into(), v.to_string());
            }
        }
        out
    }
}

/// `consumer-pull/consumer-push --stats-json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerStats {
    /// [`STATS_VERSION`].
    pub version: u32,
    /// Pull or push.
    pub model: Model,
    /// `--brokers`.
    pub brokers: String,
    /// `--topic`.
    pub topic: String,
    /// `--group`.
    pub group: String,
    /// `--db`.
    pub db: String,
    /// Rows written to `events` by this run.
    pub events_committed: u64,
    /// Rows written to `dead_letters` by this run.
    pub dead_letters: u64,
    /// Of those, events whose id was already stored.
    pub duplicates: u64,
    /// Messages skipped because the database already held their offset
    /// (Kafka delivered them again); neither stored nor dead letters.
    pub redelivered: u64,
    /// Ranges of offsets this run recorded as skipped (`offset_gaps`:
    /// hand-overs from other instances, or events the broker deleted,
    /// accepted with `--accept-data-loss`).
    pub offset_gaps: u64,
    /// Non-empty SQLite transactions.
    pub batches: u64,
    /// First message received to last commit, seconds.
    pub wall_seconds: f64,
    /// Process start to the report, seconds.
    pub process_seconds: f64,
    /// `events_committed / wall_seconds`.
    pub events_per_second: f64,
    /// End-to-end latency.
    pub latency_us: Latency,
    /// How long each batch's SQLite commit took, in microseconds: where a
    /// latency stall is the store's and where it is delivery's (version 3).
    pub commit_us: Latency,
    /// User + system CPU of the process.
    pub cpu_seconds: f64,
    /// Peak resident set size.
    pub max_rss_bytes: u64,
    /// Why the run ended.
    pub exit_reason: ExitReason,
    /// The error that ended the run (only with `exit_reason: "error"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the consumer ran with.
    pub settings: ConsumerSettings,
    /// `[seconds since the first message, events committed so far]`,
    /// sampled at most every 250 ms, ending with the last commit.
    pub timeline: Vec<(f64, u64)>,
}

impl ConsumerStats {
    /// A few lines for a person, printed to stdout at exit.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "consumer-{}: {} events committed, {} dead letters ({} duplicates), {} redelivered, \
             {} offset gaps, {} batches; exit: {}",
            self.model.name(),
            self.events_committed,
            self.dead_letters,
            self.duplicates,
            self.redelivered,
            self.offset_gaps,
            self.batches,
            self.exit_reason.name()
        );
        let _ = writeln!(
            s,
            "  throughput: {:.0} events/s over {:.2} s (first message to last commit); process {:.2} s",
            self.events_per_second, self.wall_seconds, self.process_seconds
        );
        let l = &self.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let _ = writeln!(
            s,
            "  latency (commit - creation, ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={})",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            l.count
        );
        let st = &self.settings;
        let _ = writeln!(
            s,
            "  settings: batch_size={} flush_interval_ms={} fetch.wait.max.ms={}",
            st.batch_size,
            st.flush_interval_ms,
            st.librdkafka
                .get("fetch.wait.max.ms")
                .map_or("-", String::as_str),
        );
        let _ = writeln!(
            s,
            "  cpu {:.2} s, peak RSS {:.1} MiB; db {}, group {}, topic {} @ {}",
            self.cpu_seconds,
            self.max_rss_bytes as f64 / (1024.0 * 1024.0),
            self.db,
            self.group,
            self.topic,
            self.brokers
        );
        if let Some(e) = &self.error {
            let _ = writeln!(s, "  error: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer() -> ProducerStats {
        ProducerStats {
            version: STATS_VERSION,
            mode: ProducerMode::Events,
            brokers: "b:9092".into(),
            topic: "t".into(),
            events_requested: 3,
            events_sent: 3,
            events_acknowledged: 3,
            events_failed: 0,
            amount_minor_sum: 12_345_678_901_234,
            id_checksum: "00000000000000ff".into(),
            first_event_id: 1,
            last_event_id: 3,
            seed: 42,
            accounts: 10,
            rate_limit: 0,
            wall_seconds: 0.5,
            events_per_second: 6.0,
            cpu_seconds: 0.1,
            max_rss_bytes: 1 << 20,
            interrupted: false,
            settings: BTreeMap::from([("linger.ms".into(), "10".into())]),
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        write_json(&path, &producer()).unwrap();
        assert_eq!(read_stats::<ProducerStats>(&path).unwrap(), producer());
    }

    /// An older file, or one that lost a field, is refused with the file
    /// and the versions named: never read as zeros.
    #[test]
    fn other_versions_and_missing_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        let without = |field: &str| {
            let mut v = serde_json::to_value(producer()).unwrap();
            v.as_object_mut().unwrap().remove(field);
            std::fs::write(&path, v.to_string()).unwrap();
            read_stats::<ProducerStats>(&path).unwrap_err().to_string()
        };
        let e = without("version");
        assert!(e.contains("old.json"), "{e}");
        assert!(e.contains("format version 1"), "{e}");
        assert!(e.contains(&format!("version {STATS_VERSION} only")), "{e}");

        let e = without("events_acknowledged");
        assert!(e.contains("old.json"), "{e}");
        assert!(e.contains("events_acknowledged"), "{e}");
    }

    #[test]
    fn consumer_settings_flatten_with_their_own_names() {
        let s = ConsumerSettings {
            batch_size: 500,
            flush_interval_ms: 10,
            exit_when_idle_s: None,
            max_events: Some(7),
            librdkafka: BTreeMap::from([("fetch.wait.max.ms".into(), "5".into())]),
        };
        let flat = s.flat();
        assert_eq!(flat["batch_size"], "500");
        assert_eq!(flat["max_events"], "7");
        assert_eq!(flat["fetch.wait.max.ms"], "5");
        assert!(!flat.contains_key("exit_when_idle_s"));
    }
}
