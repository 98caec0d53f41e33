//! A phase's timeline: every 250 ms, each tracked process's memory and CPU
//! and each consumer group's lag per partition (the high watermark minus
//! the offset the group committed to Kafka, which the consumers copy there
//! after each SQLite commit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::machine::{cpu_seconds, memory};

pub const EVERY: Duration = Duration::from_millis(250);

/// One process at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcPoint {
    /// `pull`, `push-2`, `broker`.
    pub name: String,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

/// One group's lag at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagPoint {
    pub model: String,
    /// Per partition (from the low watermark while nothing is committed).
    pub partitions: Vec<i64>,
}

impl LagPoint {
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
    /// Empty when the broker did not answer in time.
    pub lag: Vec<LagPoint>,
}

/// The processes a sampler follows; consumers started later are added.
pub type Tracked = Arc<Mutex<Vec<(String, u32)>>>;

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(started: Instant, every: Duration, tracked: Tracked, lags: Lags) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = started;
            loop {
                let t = started.elapsed().as_secs_f64();
                let list = tracked.lock().map(|l| l.clone()).unwrap_or_default();
                let procs = list
                    .iter()
                    .filter_map(|(name, pid)| {
                        Some(ProcPoint {
                            name: name.clone(),
                            rss_bytes: memory(*pid)?.0,
                            cpu_seconds: cpu_seconds(*pid)?,
                        })
                    })
                    .collect();
                let lag = lags.now();
                samples.push(Sample { t, procs, lag });
                if stopped.load(Ordering::Relaxed) {
                    return samples;
                }
                next += every;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        });
        Sampler { stop, thread }
    }

    /// Stops; one last sample is taken.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The consumer groups whose lag a sampler follows (none by default).
#[derive(Default)]
pub struct Lags {
    clients: Vec<(String, BaseConsumer)>,
    topic: String,
    partitions: i32,
}

impl Lags {
    /// `groups`: (model name, group id).
    pub fn of(
        brokers: &str,
        topic: &str,
        partitions: i32,
        groups: &[(String, String)],
    ) -> anyhow::Result<Lags> {
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
        Ok(Lags {
            clients,
            topic: topic.to_string(),
            partitions,
        })
    }

    fn now(&self) -> Vec<LagPoint> {
        let (topic, timeout) = (self.topic.as_str(), Duration::from_millis(500));
        let Some((_, first)) = self.clients.first() else {
            return Vec::new();
        };
        let mut marks = Vec::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            match first.fetch_watermarks(topic, p, timeout) {
                Ok(m) => marks.push(m),
                Err(_) => return Vec::new(),
            }
            tpl.add_partition(topic, p);
        }
        self.clients
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
}
