//! The stats files the benchmark reads (written by the producer and the two
//! consumers with `--stats-json`) and the ones it writes itself (the two
//! consumer ceilings, the store queries).
//!
//! Reading is lenient on purpose: every field has a default, numbers may be
//! integers or floats, and unknown keys are ignored, so that a stats file
//! with one more or one fewer field still gives a report (the missing figure
//! shows as 0 or "–") instead of no report at all.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What `producer --stats-json` writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProducerStats {
    /// `events`, or `raw` for a `--raw` ceiling run.
    pub mode: String,
    /// Bootstrap list.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// `--count`.
    pub events_requested: u64,
    /// Handed to librdkafka.
    pub events_sent: u64,
    /// Acknowledged by the broker: what a database must hold.
    pub events_acknowledged: u64,
    /// Finally failed.
    pub events_failed: u64,
    /// Sum of `amount_minor` of the acknowledged events.
    #[serde(deserialize_with = "de_i128", serialize_with = "ser_i128")]
    pub amount_minor_sum: i128,
    /// Id checksum of the acknowledged events, 16 hex digits.
    pub id_checksum: String,
    /// First id generated.
    pub first_event_id: u64,
    /// Last id generated.
    pub last_event_id: u64,
    /// Generator seed.
    pub seed: u64,
    /// Number of accounts.
    pub accounts: u64,
    /// `--rate` (0 = unlimited).
    pub rate_limit: u64,
    /// First send to last delivery report.
    pub wall_seconds: f64,
    /// Acknowledged events per wall second.
    pub events_per_second: f64,
    /// User + system CPU.
    pub cpu_seconds: f64,
    /// Peak RSS.
    pub max_rss_bytes: u64,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// librdkafka settings in force.
    pub settings: BTreeMap<String, Value>,
    /// First delivery errors.
    pub errors: Vec<String>,
}

/// Latency distribution in microseconds, as the consumers write it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Events recorded.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// What `consumer-pull/consumer-push --stats-json` write.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerStats {
    /// `pull` or `push`.
    pub model: String,
    /// Bootstrap list.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Database path.
    pub db: String,
    /// Events committed to the database by this process.
    pub events_committed: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Duplicate ids refused.
    pub duplicates: u64,
    /// Store transactions.
    pub batches: u64,
    /// First message to last commit.
    pub wall_seconds: f64,
    /// Whole process lifetime.
    pub process_seconds: f64,
    /// `events_committed / wall_seconds`.
    pub events_per_second: f64,
    /// End-to-end latency (commit time minus creation time) per event.
    pub latency_us: Latency,
    /// User + system CPU.
    pub cpu_seconds: f64,
    /// Peak RSS.
    pub max_rss_bytes: u64,
    /// Why it stopped (idle, max-events, signal, ...).
    pub exit_reason: String,
    /// batch_size, flush_interval_ms, channel_capacity and the librdkafka
    /// properties in force.
    pub settings: BTreeMap<String, Value>,
    /// `[elapsed_s, events_committed_so_far]`, at most every 250 ms.
    #[serde(deserialize_with = "de_timeline")]
    pub timeline: Vec<(f64, f64)>,
}

impl ConsumerStats {
    /// A setting as text (`"20000"`, `"100"`), if the consumer reported it.
    pub fn setting(&self, key: &str) -> Option<String> {
        flat_settings(&self.settings).remove(key)
    }

    /// The librdkafka properties among the settings (the keys with a dot,
    /// e.g. `fetch.wait.max.ms`; the consumer's own knobs have none).
    pub fn librdkafka_settings(&self) -> BTreeMap<String, String> {
        flat_settings(&self.settings)
            .into_iter()
            .filter(|(k, _)| k.contains('.'))
            .collect()
    }
}

/// Settings as `key -> text`. A nested object (e.g. `{"librdkafka": {...}}`)
/// contributes its own keys, so either layout of a stats file works.
pub fn flat_settings(settings: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in settings {
        match v {
            Value::Object(map) => {
                for (k2, v2) in map {
                    out.insert(k2.clone(), value_text(v2));
                }
            }
            other => {
                out.insert(k.clone(), value_text(other));
            }
        }
    }
    out
}

/// A JSON scalar as plain text (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Written by `bench ceiling-consume`: the raw consume rate, no storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RawConsumeStats {
    /// Topic read.
    pub topic: String,
    /// The fresh group used.
    pub group: String,
    /// Messages read.
    pub events: u64,
    /// Of those, how many failed to decode (should be 0).
    pub decode_errors: u64,
    /// First message to last message.
    pub wall_seconds: f64,
    /// `events / wall_seconds`.
    pub events_per_second: f64,
    /// User + system CPU of the process.
    pub cpu_seconds: f64,
    /// Peak RSS of the process.
    pub max_rss_bytes: u64,
    /// librdkafka settings in force.
    pub settings: BTreeMap<String, String>,
    /// `count`, `idle` or `no-messages`.
    pub exit_reason: String,
}

/// Written by `bench ceiling-store`: the store's own insert rate, no Kafka.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreInsertStats {
    /// Events committed.
    pub events: u64,
    /// Events per transaction.
    pub batch_size: u64,
    /// Transactions.
    pub batches: u64,
    /// Time spent in `Store::commit` only.
    pub commit_seconds: f64,
    /// Time spent generating and encoding events, on a thread of its own
    /// while the previous batch commits (not part of the ceiling).
    pub generate_seconds: f64,
    /// Whole run.
    pub wall_seconds: f64,
    /// `events / commit_seconds`: the ceiling.
    pub events_per_second: f64,
    /// `events / wall_seconds`, with generation overlapping the commits.
    pub events_per_second_with_generation: f64,
    /// Database size at the end (file + WAL).
    pub db_bytes: u64,
    /// User + system CPU of the process.
    pub cpu_seconds: f64,
    /// Peak RSS of the process.
    pub max_rss_bytes: u64,
    /// When the benchmark measured the ceiling in two halves (before and
    /// after the consumers' drains), each half's own rate; the fields above
    /// are then both halves together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halves_events_per_second: Option<[f64; 2]>,
}

impl StoreInsertStats {
    /// Both halves of a ceiling as one: events and times added up, the
    /// rates recomputed from them, the larger database and peak RSS.
    pub fn joined(before: &StoreInsertStats, after: &StoreInsertStats) -> StoreInsertStats {
        let events = before.events + after.events;
        let commit_seconds = before.commit_seconds + after.commit_seconds;
        let wall_seconds = before.wall_seconds + after.wall_seconds;
        StoreInsertStats {
            events,
            batch_size: before.batch_size,
            batches: before.batches + after.batches,
            commit_seconds,
            generate_seconds: before.generate_seconds + after.generate_seconds,
            wall_seconds,
            events_per_second: rate(events, commit_seconds),
            events_per_second_with_generation: rate(events, wall_seconds),
            db_bytes: before.db_bytes.max(after.db_bytes),
            cpu_seconds: before.cpu_seconds + after.cpu_seconds,
            max_rss_bytes: before.max_rss_bytes.max(after.max_rss_bytes),
            halves_events_per_second: Some([before.events_per_second, after.events_per_second]),
        }
    }
}

/// `n` per second of `seconds`; 0 for no time at all.
pub(crate) fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Reads and parses a JSON stats file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid stats JSON", path.display()))
}

/// An integer that may be written as a JSON number (any size) or a string.
fn de_i128<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                n.to_string()
                    .parse::<i128>()
                    .map_err(|_| D::Error::custom(format!("{n} is not an integer")))
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| D::Error::custom(format!("{s:?} is not an integer"))),
        Value::Null => Ok(0),
        other => Err(D::Error::custom(format!("{other} is not an integer"))),
    }
}

/// i128 as a JSON number when it fits in i64 (it always does for real
/// runs), else as a string, so any JSON reader can load the file.
fn ser_i128<S: serde::Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
    match i64::try_from(*v) {
        Ok(i) => s.serialize_i64(i),
        Err(_) => s.serialize_str(&v.to_string()),
    }
}

/// `[[t, n], ...]`, tolerating `{"elapsed_s":..,"events":..}` objects too.
fn de_timeline<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
    let v = Value::deserialize(d)?;
    let mut out = Vec::new();
    if let Value::Array(points) = v {
        for p in points {
            let pair = match &p {
                Value::Array(a) if a.len() >= 2 => (a[0].as_f64(), a[1].as_f64()),
                Value::Object(o) => {
                    let mut vals = o.values().filter_map(Value::as_f64);
                    (vals.next(), vals.next())
                }
                _ => (None, None),
            };
            if let (Some(t), Some(n)) = pair {
                out.push((t, n));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_stats_parse_with_big_or_string_sums() {
        let s: ProducerStats = serde_json::from_str(
            r#"{"mode":"events","events_acknowledged":3,"amount_minor_sum":12345678901234,
                "id_checksum":"00000000000000ff","settings":{"linger.ms":"5"}}"#,
        )
        .unwrap();
        assert_eq!(s.amount_minor_sum, 12_345_678_901_234);
        let s: ProducerStats = serde_json::from_str(
            r#"{"amount_minor_sum":"170141183460469231731687303715884105727"}"#,
        )
        .unwrap();
        assert_eq!(s.amount_minor_sum, i128::MAX);
        let back = serde_json::to_value(&s).unwrap();
        assert!(back["amount_minor_sum"].is_string());
    }

    #[test]
    fn consumer_stats_settings_and_timeline() {
        let s: ConsumerStats = serde_json::from_str(
            r#"{"model":"pull","latency_us":{"count":2,"p50":10,"p99":20.5},
                "settings":{"batch_size":20000,"flush_interval_ms":100,
                            "librdkafka":{"fetch.wait.max.ms":"10"}},
                "timeline":[[0.25,100],[0.5,300]],"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(s.latency_us.p99, 20.5);
        assert_eq!(s.setting("batch_size").as_deref(), Some("20000"));
        assert_eq!(s.setting("fetch.wait.max.ms").as_deref(), Some("10"));
        assert_eq!(
            s.librdkafka_settings().into_iter().collect::<Vec<_>>(),
            vec![("fetch.wait.max.ms".to_string(), "10".to_string())]
        );
        assert_eq!(s.timeline, vec![(0.25, 100.0), (0.5, 300.0)]);
    }
}
