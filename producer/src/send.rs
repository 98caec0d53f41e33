//! Sending: the librdkafka producer, the delivery tally and the send loop.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::stats::{ProducerMode, ProducerStats, STATS_VERSION};
use common::{Progress, ResourceUsage, kafka::redacted};
use proto::IdChecksum;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tracing::{info, warn};

use crate::Args;
use crate::batch::{EncodedBatch, EncodedEvent};
use crate::generator::{Generator, GeneratorError};

/// librdkafka settings of the producer; `-X` overrides any of them.
///
/// - idempotence: librdkafka's retries never duplicate or reorder an event;
///   it implies `acks=all` and at most 5 requests in flight per broker.
/// - lz4: the cheapest of the codecs the default build has, and banking
///   events compress well (repeated currencies, countries, references).
/// - linger 2 ms and 1 MB batches: a backlog fills its batches long before
///   the linger, and a live event waits at most 2 ms in the producer.
///   Measured on Apache Kafka 4.3.1, 2 cores, 20,000 events/s, 6
///   partitions, both consumers with --flush-interval-ms 2: median
///   end-to-end latency 5.3-5.9 ms with 2 ms, 7.8 ms with 5 ms, and 20 ms
///   with 10 ms (and a 10 ms flush interval), for a broker CPU of 0.6-0.7,
///   0.4-0.55 and ~1 core (the last one a fresh JVM). On an embedded
///   broker whose in-memory engine lists every stored batch on each fetch,
///   10 ms was better (half its CPU; docs/benchmark.md): give
///   `-X linger.ms=10` there.
/// - queue of 500k messages: about 60 MB of ~120-byte events, which bounds
///   the producer's memory whatever the broker's pace.
/// - no topic auto-creation: a mistyped --topic is an error, not a new
///   topic with the broker's default partition count.
const DEFAULTS: [(&str, &str); 7] = [
    ("allow.auto.create.topics", "false"),
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("compression.type", "lz4"),
    ("linger.ms", "2"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.messages", "500000"),
];

/// How many pre-encoded events `--raw` cycles through: enough that, per
/// partition, a payload repeats only far outside lz4's 64 KiB window, so the
/// raw payloads compress no better than fresh ones.
const RAW_POOL: usize = 65_536;

/// Why the producer could not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The generator settings are invalid.
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    /// librdkafka refused the configuration (an unknown `-X` property, ...).
    #[error("invalid Kafka client configuration: {0}")]
    Config(KafkaError),
    /// No broker answered within `--timeout`.
    #[error("cannot reach the Kafka broker(s) at {brokers} within {secs}s ({detail}); {hint}")]
    Unreachable {
        /// The bootstrap list.
        brokers: String,
        /// How long we waited.
        secs: u64,
        /// What librdkafka said.
        detail: String,
        /// What to check.
        hint: &'static str,
    },
    /// The topic does not exist and `--partitions` was not given.
    #[error(
        "topic {topic:?} does not exist on {brokers}; create it, or pass --partitions N to let the producer create it"
    )]
    TopicMissing {
        /// The topic.
        topic: String,
        /// The bootstrap list.
        brokers: String,
    },
    /// The broker refused to create the topic.
    #[error(
        "the broker refused to create topic {topic:?} with {partitions} partition(s): {detail}"
    )]
    TopicCreate {
        /// The topic.
        topic: String,
        /// Partitions asked for.
        partitions: i32,
        /// What the broker said.
        detail: String,
    },
    /// The metrics endpoint (`--metrics-addr`) could not start.
    #[error(transparent)]
    Metrics(#[from] common::telemetry::MetricsError),
    /// librdkafka refused a message outright (not a full queue).
    #[error("cannot enqueue event {event_id}: {source}")]
    Enqueue {
        /// The event.
        event_id: u64,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// Tally of delivery reports, updated from the delivery callback.
#[derive(Debug, Default)]
struct Tally {
    acknowledged: u64,
    failed: u64,
    amount_minor_sum: i128,
    checksum: IdChecksum,
    errors: Vec<String>,
}

/// What the delivery callback needs to know about an event.
#[derive(Debug, Clone, Copy)]
struct Sent {
    event_id: u64,
    amount_minor: i64,
}

/// The producer's librdkafka context: counts delivery reports.
struct Context {
    tally: Mutex<Tally>,
    /// The last error librdkafka logged about the connection (a refused
    /// TLS handshake, a failed SASL login, ...), for the error message when
    /// no broker answers.
    last_error: Mutex<Option<String>>,
}

impl ClientContext for Context {
    /// librdkafka's log lines, through `tracing`. Its error lines (a refused
    /// connection, a failed TLS handshake or SASL login) are transient, as
    /// librdkafka retries: they are logged as warnings, and the last one is
    /// kept for the error message if no broker ever answers.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                warn!("librdkafka: {fac} {log_message}");
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(log_message.to_owned());
            }
            RDKafkaLogLevel::Warning => warn!("librdkafka: {fac} {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!("librdkafka: {fac} {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!("librdkafka: {fac} {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // "1/1 brokers are down" and the like: the log lines above say why.
        tracing::debug!("librdkafka: {error}: {reason}");
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                t.acknowledged += 1;
                t.amount_minor_sum += i128::from(sent.amount_minor);
                t.checksum.add(sent.event_id);
            }
            Err((err, _)) => {
                t.failed += 1;
                if t.errors.len() < 10 {
                    let msg = format!("event {} failed delivery: {err}", sent.event_id);
                    warn!("{msg}");
                    t.errors.push(msg);
                }
            }
        }
    }
}

/// Generates and sends `args.count` events (or `--raw` payloads), waits for
/// every delivery report, and returns the figures. Stops early, still
/// waiting for what was sent, once `stop` is set.
pub fn run(args: &Args, stop: &AtomicBool) -> Result<ProducerStats, ProducerError> {
    common::install_metrics_if(args.telemetry.metrics_addr)?;
    let metrics = Metrics::new();
    let mut generator = Generator::new(args.seed, args.accounts, args.first_id)?;
    let settings = effective_settings(args.timeout);
    let mut config = args.kafka.client_config(&[]);
    for (k, v) in &settings {
        config.set(*k, v);
    }
    // The user's -X wins over everything above.
    for (k, v) in &args.kafka.properties {
        config.set(k, v);
    }
    let producer: BaseProducer<Context> = config
        .create_with_context(Context {
            tally: Mutex::new(Tally::default()),
            last_error: Mutex::new(None),
        })
        .map_err(|e| ProducerError::Config(common::kafka::scrub_config_error(e)))?;

    ensure_topic(args, &producer)?;

    let topic = args.kafka.topic.as_str();
    let first_event_id = generator.next_id();
    let mut source = if args.raw {
        let now = common::now_us();
        // Laid out as the generated batches are (payloads back to back, keys
        // back to back), so the ceiling reads its events as cheaply as the
        // producer does. (It replaced a pool of separate allocations per
        // event; that made no measurable difference: on an in-memory broker the raw
        // run still measures below the generating producer, the extra being in
        // librdkafka's broker thread, see the README.)
        let mut pool = EncodedBatch::new();
        pool.refill(&mut generator, RAW_POOL, || now);
        info!(
            "raw ceiling: sending {} copies of {RAW_POOL} pre-encoded events",
            args.count
        );
        Source::Raw { pool }
    } else {
        Source::Generated {
            generator,
            batch: EncodedBatch::new(),
            batch_len: if args.rate > 0 { 1 } else { UNPACED_BATCH },
            clock: Stamp::new(if args.rate > 0 {
                1
            } else {
                UNPACED_CLOCK_EVERY
            }),
        }
    };

    info!(
        brokers = %args.kafka.brokers,
        topic,
        count = args.count,
        rate = args.rate,
        seed = args.seed,
        accounts = args.accounts,
        "producing"
    );
    let mut progress = Progress::new(Some(args.count), "acknowledged");
    let started = Instant::now();
    // When pacing, the clock starts once the first event is acknowledged:
    // the idempotent producer gets its producer id from the broker before
    // its first send (measured: up to ~500 ms on an embedded broker), and events
    // generated meanwhile would all carry that wait as latency.
    let mut pace_start = started;
    let mut sent = 0u64;
    let mut reported = 0u64;

    while sent < args.count {
        if stop.load(Ordering::Relaxed) {
            warn!(
                "interrupted: sent {sent} of {} events; waiting for their delivery reports",
                args.count
            );
            break;
        }
        if args.rate > 0 {
            // Event 0 goes at once; event n is due n-1 intervals after the
            // first acknowledgement.
            if pace(&producer, pace_start, sent.saturating_sub(1), args.rate) {
                metrics.publish(sent, &lock(&producer));
            }
        }
        let (key_bytes, payload_bytes, s) = source.next(args.count - sent);
        let event_id = s.event_id;
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(s))
            .key(key_bytes)
            .payload(payload_bytes);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: serve delivery reports
                    // until it has room. This is the producer's backpressure.
                    if serve_reports(&producer) == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    record = back;
                }
                Err((source, _)) => return Err(ProducerError::Enqueue { event_id, source }),
            }
        }
        sent += 1;
        if sent == 1 && args.rate > 0 {
            if let Err(e) = producer.flush(args.timeout()) {
                warn!(
                    "the first event was not acknowledged within {}s: {e}",
                    args.timeout
                );
            }
            pace_start = Instant::now();
        }
        if sent % 1024 == 0 {
            serve_reports(&producer);
            let tally = lock(&producer);
            metrics.publish(sent, &tally);
            let acked = tally.acknowledged;
            drop(tally);
            progress.inc(acked - reported);
            reported = acked;
        }
    }
    let raw_pool = source.raw_pool_len();
    let last_event_id = if let Some(pool_len) = raw_pool {
        // --raw cycles through the pool's ids.
        first_event_id + (pool_len as u64).min(sent).max(1) - 1
    } else if sent == 0 {
        0
    } else {
        first_event_id + sent - 1
    };

    // Every message is reported within message.timeout.ms; wait a little
    // longer than that, serving delivery reports, then give up on the rest.
    let deadline = Instant::now() + args.timeout() + Duration::from_secs(5);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        producer.poll(Duration::from_millis(100));
        metrics.publish(sent, &lock(&producer));
        let acked = lock(&producer).acknowledged;
        progress.inc(acked - reported);
        reported = acked;
    }
    let wall = started.elapsed().as_secs_f64();
    progress.finish();

    let unreported = producer.in_flight_count().max(0) as u64;
    let tally = std::mem::take(&mut *lock(&producer));
    metrics.publish_final(sent, &tally, unreported);
    let mut errors = tally.errors;
    if unreported > 0 {
        errors.push(format!(
            "{unreported} event(s) got no delivery report within {}s",
            args.timeout + 5
        ));
    }
    let usage = ResourceUsage::now();
    let mut shown = BTreeMap::new();
    for (k, v) in settings {
        shown.insert(k.to_owned(), v);
    }
    for (k, v) in &args.kafka.properties {
        shown.insert(k.clone(), redacted(k, v).to_owned());
    }
    Ok(ProducerStats {
        version: STATS_VERSION,
        mode: if args.raw {
            ProducerMode::Raw
        } else {
            ProducerMode::Events
        },
        brokers: args.kafka.brokers.clone(),
        topic: topic.to_owned(),
        events_requested: args.count,
        events_sent: sent,
        events_acknowledged: tally.acknowledged,
        events_failed: tally.failed + unreported,
        amount_minor_sum: tally.amount_minor_sum,
        id_checksum: tally.checksum.hex(),
        first_event_id,
        last_event_id,
        seed: args.seed,
        accounts: args.accounts,
        rate_limit: args.rate,
        wall_seconds: wall,
        events_per_second: tally.acknowledged as f64 / wall.max(1e-9),
        cpu_seconds: usage.cpu_seconds,
        max_rss_bytes: usage.max_rss_bytes,
        interrupted: sent < args.count,
        settings: shown,
        errors,
    })
}

fn lock(producer: &BaseProducer<Context>) -> std::sync::MutexGuard<'_, Tally> {
    producer
        .context()
        .tally
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// An encoded event's key, payload and what its delivery report needs.
fn sent_parts(e: EncodedEvent<'_>) -> (&[u8], &[u8], Sent) {
    let sent = Sent {
        event_id: e.event_id,
        amount_minor: e.amount_minor,
    };
    (e.key, e.payload, sent)
}

/// The producer's defaults plus `message.timeout.ms` from `--timeout`.
fn effective_settings(timeout_secs: u64) -> Vec<(&'static str, String)> {
    let mut settings: Vec<(&'static str, String)> = DEFAULTS
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    settings.push(("message.timeout.ms", (timeout_secs * 1000).to_string()));
    settings
}

/// Holds the send loop back to `rate` events per second: event `sent` is
/// due at `started + sent / rate`, so a late send is caught up by the next
/// ones and the average rate stays exact.
///
/// Sleeps at least a millisecond at a time and then sends every event that
/// has come due in one go: at 20,000 events/s, a sleep per event (50 µs)
/// cost the producer a third of a core in wake-ups, stolen from the broker
/// and the consumers on a small machine. Events are generated when they are
/// sent, so the bursts add nothing to their measured latency. Sleeps rather
/// than waiting inside `poll`, whose sub-millisecond remainder librdkafka
/// (through rdkafka) turns into a busy loop of zero-timeout polls.
///
/// Returns whether it slept (a moment to publish the metrics).
fn pace(producer: &BaseProducer<Context>, started: Instant, sent: u64, rate: u64) -> bool {
    let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
    let now = Instant::now();
    if due > now {
        serve_reports(producer);
        std::thread::sleep((due - now).max(Duration::from_millis(1)));
        true
    } else {
        false
    }
}

/// The producer's Prometheus counters (see `common::telemetry`). The send
/// loop and the delivery callback keep their own counts; these are set
/// from them every 1,024 events, at every pacing pause and at the end,
/// never per event (no-ops without `--metrics-addr`).
struct Metrics {
    sent: metrics::Counter,
    acknowledged: metrics::Counter,
    failed: metrics::Counter,
}

impl Metrics {
    fn new() -> Metrics {
        use common::telemetry::names;
        Metrics {
            sent: metrics::counter!(names::PRODUCER_SENT),
            acknowledged: metrics::counter!(names::PRODUCER_ACKNOWLEDGED),
            failed: metrics::counter!(names::PRODUCER_FAILED),
        }
    }

    fn publish(&self, sent: u64, tally: &Tally) {
        self.sent.absolute(sent);
        self.acknowledged.absolute(tally.acknowledged);
        self.failed.absolute(tally.failed);
    }

    /// The last figures: events without a delivery report count as failed.
    fn publish_final(&self, sent: u64, tally: &Tally, unreported: u64) {
        self.sent.absolute(sent);
        self.acknowledged.absolute(tally.acknowledged);
        self.failed.absolute(tally.failed + unreported);
    }
}

/// Serves the delivery reports librdkafka has ready, without waiting, and
/// returns how many. (`poll(0)` serves one librdkafka event, the reports of
/// one batch; a single call per wake-up falls behind at high rates.)
fn serve_reports(producer: &BaseProducer<Context>) -> u64 {
    let reports = || {
        let t = lock(producer);
        t.acknowledged + t.failed
    };
    let before = reports();
    let mut last = before;
    for _ in 0..256 {
        producer.poll(Duration::ZERO);
        let now = reports();
        if now == last {
            break;
        }
        last = now;
    }
    last - before
}

/// Where the send loop takes its events from.
// One per run, on the stack: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// `--raw`: pre-encoded events, cycled.
    Raw { pool: EncodedBatch },
    /// Events generated and encoded right before they are sent, a batch
    /// at a time (one at a time when paced).
    /// (Generating on a thread of its own was tried: on 2 cores the extra
    /// thread competes with librdkafka's and the broker's, and the producer
    /// got slower, 1.25-1.48M vs 1.45-1.60M events/s.)
    Generated {
        generator: Generator,
        batch: EncodedBatch,
        batch_len: usize,
        clock: Stamp,
    },
}

/// Unpaced, events are generated and encoded this many at a time, then
/// sent (see [`crate::batch`]). Paced, one at a time: each is generated when
/// it is due, so its creation time is its send time.
const UNPACED_BATCH: usize = 256;

/// Unpaced, the creation time is read every this many events: a clock read
/// (~30 ns here) was a fifth of the cost of generating an event, and 64
/// events go out in ~40 µs, far below the millisecond resolution of any
/// latency figure. Paced (`--rate`), every event reads the clock.
const UNPACED_CLOCK_EVERY: u32 = 64;

/// Creation times for generated events: the wall clock in microseconds,
/// read every `every` events.
struct Stamp {
    every: u32,
    left: u32,
    now_us: i64,
}

impl Stamp {
    fn new(every: u32) -> Stamp {
        Stamp {
            every: every.max(1),
            left: 0,
            now_us: 0,
        }
    }

    fn now_us(&mut self) -> i64 {
        if self.left == 0 {
            self.now_us = common::now_us();
            self.left = self.every;
        }
        self.left -= 1;
        self.now_us
    }
}

impl Source {
    /// The next event's key, payload and what its delivery report needs;
    /// `left` events remain to be sent, this one included.
    fn next(&mut self, left: u64) -> (&[u8], &[u8], Sent) {
        match self {
            Source::Raw { pool } => {
                if pool.is_drained() {
                    pool.rewind();
                }
                sent_parts(pool.take().expect("the raw pool holds events"))
            }
            Source::Generated {
                generator,
                batch,
                batch_len,
                clock,
            } => {
                if batch.is_drained() {
                    let n = (*batch_len as u64).min(left) as usize;
                    batch.refill(generator, n, || clock.now_us());
                }
                sent_parts(batch.take().expect("a refilled batch holds an event"))
            }
        }
    }

    fn raw_pool_len(&self) -> Option<usize> {
        match self {
            Source::Raw { pool, .. } => Some(pool.len()),
            _ => None,
        }
    }
}

/// Checks that a broker answers and the topic exists, creating it with
/// `--partitions` when missing.
fn ensure_topic(args: &Args, producer: &BaseProducer<Context>) -> Result<(), ProducerError> {
    let topic = args.kafka.topic.as_str();
    let brokers = args.kafka.brokers.clone();
    let unreachable = |e: KafkaError| {
        // librdkafka's log lines (why the connection failed) arrive as
        // events: serve them before reading the last one.
        producer.poll(Duration::from_millis(100));
        let last = producer
            .context()
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let security = last
            .as_deref()
            .is_some_and(|l| ["SSL", "SASL", "certificate"].iter().any(|w| l.contains(w)));
        ProducerError::Unreachable {
            brokers: brokers.clone(),
            secs: args.timeout,
            detail: match last {
                Some(last) => format!("{e}; last failure: {last}"),
                None => e.to_string(),
            },
            hint: if security {
                "check the TLS/SASL settings given with -X (security.protocol, \
                 ssl.ca.location, sasl.mechanism, sasl.username, sasl.password)"
            } else {
                "is the broker running? start one with scripts/broker.sh start, \
                 or set --brokers / KAFKA_BROKERS"
            },
        }
    };
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), args.timeout())
        .map_err(unreachable)?;
    let existing = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len());
    match (existing, args.partitions) {
        (Some(n), Some(want)) if n != want as usize => {
            warn!("topic {topic} exists with {n} partition(s), not {want}; using it as it is");
            Ok(())
        }
        (Some(n), _) => {
            info!("topic {topic} has {n} partition(s)");
            Ok(())
        }
        (None, None) => Err(ProducerError::TopicMissing {
            topic: topic.to_owned(),
            brokers,
        }),
        (None, Some(partitions)) => create_topic(args, topic, partitions),
    }
}

fn create_topic(args: &Args, topic: &str, partitions: i32) -> Result<(), ProducerError> {
    let refused = |detail: String| ProducerError::TopicCreate {
        topic: topic.to_owned(),
        partitions,
        detail,
    };
    let admin: AdminClient<DefaultClientContext> = args
        .kafka
        .client_config(&[])
        .create()
        .map_err(|e| ProducerError::Config(common::kafka::scrub_config_error(e)))?;
    let new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(args.replication_factor),
    );
    let options = AdminOptions::new().operation_timeout(Some(args.timeout()));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| refused(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) => info!("created topic {topic} with {partitions} partition(s)"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                info!("topic {topic} was created meanwhile by someone else")
            }
            Err((_, code)) => return Err(refused(code.to_string())),
        }
    }
    // Let the new topic's leaders be known before the first send.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}
