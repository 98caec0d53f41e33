//! What happens over time inside one claims phase: every 250 ms, each
//! tracked process's resident memory and CPU (from `/proc`), and each
//! consumer group's lag per partition (the topic's high watermark minus the
//! offset the group committed to Kafka, which the consumers copy there
//! after each SQLite commit, ~100 ms behind the database at most).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::machine::{cpu_seconds, status_bytes};

/// How often the sampler looks.
pub const EVERY: Duration = Duration::from_millis(250);

/// One process at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcPoint {
    /// Its name in the phase (`pull`, `push-2`, `broker`).
    pub name: String,
    /// `VmRSS`.
    pub rss_bytes: u64,
    /// User + system CPU since it started.
    pub cpu_seconds: f64,
}

/// One group's lag at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagPoint {
    /// The model whose group it is.
    pub model: String,
    /// Per partition, in partition order: high watermark minus the
    /// group's committed offset (the low watermark while it has none).
    pub partitions: Vec<i64>,
}

impl LagPoint {
    /// All partitions together.
    pub fn total(&self) -> i64 {
        self.partitions.iter().sum()
    }
}

/// Everything sampled at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    pub procs: Vec<ProcPoint>,
    /// Each group's lag (absent when the broker did not answer in time).
    pub lag: Vec<LagPoint>,
}

/// The processes a sampler follows; consumers started later are added.
pub type Tracked = Arc<Mutex<Vec<(String, u32)>>>;

/// A running sampler.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
    started: Instant,
    pub tracked: Tracked,
}

impl Sampler {
    /// Starts sampling `groups` (model name, group id) on `topic` with
    /// `partitions` partitions, and the processes in `tracked`.
    pub fn start(
        brokers: &str,
        topic: &str,
        partitions: i32,
        groups: &[(String, String)],
        tracked: Tracked,
    ) -> anyhow::Result<Sampler> {
        let mut clients = Vec::new();
        for (model, group) in groups {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Error)
                .create()?;
            clients.push((model.clone(), c));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (stopped, topic, procs) = (Arc::clone(&stop), topic.to_string(), Arc::clone(&tracked));
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = started;
            loop {
                let t = started.elapsed().as_secs_f64();
                let list = procs.lock().map(|l| l.clone()).unwrap_or_default();
                let procs_now = list
                    .iter()
                    .filter_map(|(name, pid)| {
                        Some(ProcPoint {
                            name: name.clone(),
                            rss_bytes: status_bytes(*pid, "VmRSS:")?,
                            cpu_seconds: cpu_seconds(*pid)?,
                        })
                    })
                    .collect();
                let lag = lag_now(&clients, &topic, partitions);
                samples.push(Sample {
                    t,
                    procs: procs_now,
                    lag,
                });
                if stopped.load(Ordering::Relaxed) {
                    return samples;
                }
                next += EVERY;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        });
        Ok(Sampler {
            stop,
            thread,
            started,
            tracked,
        })
    }

    /// Seconds since the sampler started (the samples' clock).
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Stops and returns the samples (one last one taken at the stop).
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn lag_now(clients: &[(String, BaseConsumer)], topic: &str, partitions: i32) -> Vec<LagPoint> {
    let timeout = Duration::from_millis(500);
    let Some((_, first)) = clients.first() else {
        return Vec::new();
    };
    let mut marks = Vec::new();
    for p in 0..partitions {
        match first.fetch_watermarks(topic, p, timeout) {
            Ok(m) => marks.push(m),
            Err(_) => return Vec::new(),
        }
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    clients
        .iter()
        .filter_map(|(model, c)| {
            let committed = c.committed_offsets(tpl.clone(), timeout).ok()?;
            let partitions = marks
                .iter()
                .enumerate()
                .map(|(p, &(low, high))| {
                    let at = match committed
                        .find_partition(topic, p as i32)
                        .map(|e| e.offset())
                    {
                        Some(Offset::Offset(o)) => o,
                        _ => low,
                    };
                    (high - at).max(0)
                })
                .collect();
            Some(LagPoint {
                model: model.clone(),
                partitions,
            })
        })
        .collect()
}

/// The largest total lag of `model`'s group over the samples.
pub fn max_lag(samples: &[Sample], model: &str) -> i64 {
    samples
        .iter()
        .flat_map(|s| s.lag.iter().filter(|l| l.model == model))
        .map(LagPoint::total)
        .max()
        .unwrap_or(0)
}

/// The highest `VmRSS` sampled of the processes whose name starts with
/// `model`.
pub fn max_rss(samples: &[Sample], model: &str) -> u64 {
    samples
        .iter()
        .flat_map(|s| s.procs.iter().filter(|p| p.name.starts_with(model)))
        .map(|p| p.rss_bytes)
        .max()
        .unwrap_or(0)
}

/// Fairness between partitions while `model`'s group lags: for each
/// partition, the last moment its lag was above zero; the spread between
/// the first and the last partition to catch up, in seconds, over the
/// samples after `from` (seconds). `None` when no partition lagged.
pub fn catch_up_spread(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
    let mut last: Vec<Option<f64>> = Vec::new();
    for s in samples.iter().filter(|s| s.t >= from) {
        for l in s.lag.iter().filter(|l| l.model == model) {
            if last.len() < l.partitions.len() {
                last.resize(l.partitions.len(), None);
            }
            for (p, &lag) in l.partitions.iter().enumerate() {
                if lag > 0 {
                    last[p] = Some(s.t);
                }
            }
        }
    }
    let times: Vec<f64> = last.into_iter().flatten().collect();
    if times.is_empty() {
        return None;
    }
    let max = times.iter().cloned().fold(f64::MIN, f64::max);
    let min = times.iter().cloned().fold(f64::MAX, f64::min);
    Some(max - min)
}

/// At the moment of `model`'s largest total lag, the largest partition's
/// lag over the mean partition's (1.0: evenly spread).
pub fn lag_skew_at_peak(samples: &[Sample], model: &str) -> Option<f64> {
    let peak = samples
        .iter()
        .flat_map(|s| s.lag.iter().filter(|l| l.model == model))
        .max_by_key(|l| l.total())?;
    let n = peak.partitions.len() as f64;
    let total = peak.total() as f64;
    if total <= 0.0 || n == 0.0 {
        return None;
    }
    let max = peak.partitions.iter().copied().max().unwrap_or(0) as f64;
    Some(max / (total / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, pull: &[i64], rss: u64) -> Sample {
        Sample {
            t,
            procs: vec![ProcPoint {
                name: "pull".into(),
                rss_bytes: rss,
                cpu_seconds: t,
            }],
            lag: vec![LagPoint {
                model: "pull".into(),
                partitions: pull.to_vec(),
            }],
        }
    }

    #[test]
    fn lag_figures_follow_the_samples() {
        let s = vec![
            sample(0.0, &[0, 0, 0], 10),
            sample(1.0, &[10, 20, 30], 30),
            sample(2.0, &[0, 5, 10], 20),
            sample(3.0, &[0, 0, 4], 20),
            sample(4.0, &[0, 0, 0], 20),
        ];
        assert_eq!(max_lag(&s, "pull"), 60);
        assert_eq!(max_lag(&s, "push"), 0);
        assert_eq!(max_rss(&s, "pull"), 30);
        // Partition 0 caught up after 1.0 s, partition 2 after 3.0 s.
        assert_eq!(catch_up_spread(&s, "pull", 0.0), Some(2.0));
        assert_eq!(catch_up_spread(&s, "push", 0.0), None);
        // At the peak (60 over 3 partitions), the largest is 30: 1.5x.
        assert_eq!(lag_skew_at_peak(&s, "pull"), Some(1.5));
    }
}
