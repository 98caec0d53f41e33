//! consumer-pull: the PULL model. A `BaseConsumer` poll loop takes one
//! message at a time, at its own pace, into a batch, and writes the batch
//! to SQLite when it is full (`--batch-size`) or old enough
//! (`--flush-interval-ms`); then it polls again. While it writes,
//! librdkafka keeps prefetching in the background, up to its bounded queue.
//!
//! Everything else (configuration, exactly-once offsets, rebalances,
//! signals, stats) is `banking_consumer`'s, shared with consumer-push.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use banking_consumer::{
    Batch, Committed, ConsumerArgs, ConsumerError, Decoded, ExactlyOnceContext, ExitReason,
    KafkaErrors, Model, Pipeline, StatsReport, StoreWriter, commit_async, commit_final,
};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

/// Command line of consumer-pull.
#[derive(Debug, Parser)]
#[command(
    name = "consumer-pull",
    version,
    about = "Consumes banking events from Kafka into SQLite, exactly once, with a poll loop (PULL).",
    long_about = "Consumes banking events from Kafka into SQLite, exactly once, with a poll loop \
(PULL): the loop takes messages at its own pace into a batch and writes the batch in one \
transaction when it holds --batch-size messages or --flush-interval-ms has passed.\n\n\
The consumed offsets are stored in the same transaction as the rows, and each assigned \
partition resumes from them, so a crash or a restart never loses nor duplicates an event. \
Messages that are not valid events go to the dead_letters table with their partition and \
offset. SIGINT/SIGTERM commits the open batch and exits 0; a second signal exits at once.",
    after_help = "Examples:\n  consumer-pull --brokers localhost:9092 --topic banking.events\n  \
consumer-pull --db pull.db --exit-when-idle 3 --stats-json pull.json\n  \
consumer-pull -X fetch.wait.max.ms=100 -X security.protocol=SASL_SSL ...\n\n\
librdkafka defaults set here (override with -X): enable.auto.commit=false, \
enable.auto.offset.store=false, auto.offset.reset=earliest, enable.partition.eof=true, \
queued.min.messages=1000000, queued.max.messages.kbytes=16384, fetch.queue.backoff.ms=10, \
partition.assignment.strategy=cooperative-sticky."
)]
pub struct Cli {
    /// The flags both consumers share.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// The writer and its open batch. Shared with the rebalance handler, which
/// flushes the batch before partitions are revoked; both run on the polling
/// thread (librdkafka calls the handler from inside `poll`), so the lock is
/// never contended, and it is never held across `poll`.
struct Open {
    writer: StoreWriter,
    batch: Batch,
    /// When the open batch must be written at the latest.
    due: Option<Instant>,
}

impl Open {
    fn push(&mut self, message: Decoded, flush_interval: Duration) {
        if self.batch.is_empty() {
            self.due = Some(Instant::now() + flush_interval);
        }
        message.push_into(&mut self.batch);
    }

    fn is_due(&self, now: Instant) -> bool {
        self.due.is_some_and(|d| now >= d)
    }

    /// Commits the open batch to SQLite. On error the batch stays as it is
    /// (and the writer refuses to go on), so no offset passes it.
    fn write(&mut self) -> Result<Option<Committed>, ConsumerError> {
        let committed = self.writer.commit(&self.batch)?;
        self.batch.clear();
        self.due = None;
        Ok(committed)
    }
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// Consumes until a signal, `--exit-when-idle`, `--max-events` or an
/// error; then commits what is open, hands Kafka the final offsets, writes
/// `--stats-json` and prints the summary. Returns the run's report.
///
/// On error the summary and stats are still written (with the error in
/// them) before the error is returned.
pub fn run(args: ConsumerArgs) -> Result<StatsReport, ConsumerError> {
    let (pipeline, writer, context) = Pipeline::start(Model::Pull, args, None)?;
    let topic = pipeline.topic().to_string();
    let open = Arc::new(Mutex::new(Open {
        writer,
        batch: Batch::with_capacity(topic.as_str(), pipeline.batch_size()),
        due: None,
    }));
    let for_revoke = open.clone();
    context.set_revoke_hook(Box::new(move || lock(&for_revoke).write().map(drop)));

    let consumer: BaseConsumer<ExactlyOnceContext> = pipeline
        .client_config
        .create_with_context(context)
        .map_err(ConsumerError::CreateConsumer)?;
    consumer
        .subscribe(&[&topic])
        .map_err(|source| ConsumerError::Subscribe {
            topic: topic.clone(),
            source,
        })?;

    let result = consume(&pipeline, &consumer, &open);
    let (reason, mut error) = match result {
        Ok(reason) => (reason, None),
        Err(e) => (ExitReason::Error, Some(e)),
    };
    // Stop fetching happened with the loop; write what is open (unless the
    // store itself failed), then hand Kafka the final offsets and leave
    // the group.
    {
        let mut open = lock(&open);
        if !open.writer.has_failed() {
            if let Err(e) = open.write() {
                error.get_or_insert(e);
            }
        }
    }
    commit_final(&consumer, &topic);
    drop(consumer);

    let open = lock(&open);
    let reason = if error.is_some() {
        ExitReason::Error
    } else {
        reason
    };
    let report = pipeline.finish(&open.writer, reason, error.as_ref())?;
    match error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The poll loop. Returns why it stopped; the open batch is left for the
/// caller to write.
fn consume(
    pipeline: &Pipeline,
    consumer: &BaseConsumer<ExactlyOnceContext>,
    open: &Mutex<Open>,
) -> Result<ExitReason, ConsumerError> {
    const TICK: Duration = Duration::from_millis(100);
    let batch_size = pipeline.batch_size();
    let flush_interval = pipeline.flush_interval();
    let max_events = pipeline.args.max_events;
    let topic = pipeline.topic();
    let context = consumer.context();
    let mut idle = pipeline.idle_detector();
    let mut kafka_errors = KafkaErrors::default();
    let mut received = 0u64;
    let mut last_tick = Instant::now();

    loop {
        let timeout = lock(open).due.map_or(TICK, |d| {
            d.saturating_duration_since(Instant::now()).min(TICK)
        });
        let polled = consumer.poll(timeout);
        let mut to_kafka: Option<Committed> = None;
        match polled {
            Some(Ok(message)) => {
                pipeline.clock.message_received();
                idle.on_message(message.partition());
                let decoded = Decoded::from_message(&message);
                drop(message);
                received += 1;
                let mut open = lock(open);
                open.push(decoded, flush_interval);
                if open.batch.len() >= batch_size || open.is_due(Instant::now()) {
                    to_kafka = open.write()?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                idle.on_partition_eof(partition, &pipeline.assignment);
            }
            Some(Err(e)) => kafka_errors.handle(e)?,
            None => {}
        }
        if context.has_fatal() {
            return Err(context.take_fatal().unwrap_or(ConsumerError::WriterStopped));
        }
        if to_kafka.is_none() {
            let mut open = lock(open);
            if open.is_due(Instant::now()) {
                to_kafka = open.write()?;
            }
        }
        if let Some(committed) = to_kafka {
            commit_async(consumer, topic, &committed.offsets);
        }
        if max_events.is_some_and(|n| received >= n) {
            return Ok(ExitReason::MaxEvents);
        }
        if pipeline.shutdown.requested() {
            return Ok(ExitReason::Signal);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if idle.is_idle(&pipeline.assignment) {
                return Ok(ExitReason::Idle);
            }
        }
    }
}
