//! consumer-push: the PUSH model. A `StreamConsumer` on tokio pushes each
//! message, as it arrives, to a handler that decodes it and hands it to the
//! committer.
//!
//! ```text
//! librdkafka queue ─stream─▶ handler (decode) ─push_async─▶ Committer: open batch ─▶ writer thread: SQLite commit
//! (≤ 4 MiB payload)                                          (≤ --batch-size)          (one batch in flight)
//! ```
//!
//! - Batching, the one commit in flight, the offsets and the flushes are
//!   the shared [`Committer`](consumer_core::Committer)'s, the same as
//!   consumer-pull's: this crate is only the feed. The SQLite commit runs
//!   on the committer's own thread, never on the runtime.
//! - Backpressure: when the open batch is full and the writer still busy,
//!   the handler awaits the writer taking the batch (`push_async`), and
//!   stops taking messages from the stream meanwhile; librdkafka's
//!   prefetch queue is itself bounded, so memory is bounded whatever the
//!   backlog: that queue, the open batch and the batch in flight.
//! - The handler has no timer besides a 100 ms tick for signals and
//!   `--exit-when-idle`: the writer applies `--flush-interval-ms` on its
//!   own thread.
//! - Revocation: librdkafka runs the rebalance handler inside the
//!   handler's `stream.next()`, between two messages, so every message
//!   received is in the open batch, in flight or committed; the rebalance
//!   handler flushes the committer and commits the offsets before the
//!   partitions go. It blocks the thread polling the stream meanwhile;
//!   nothing it waits for runs on tokio, so this cannot deadlock.

use std::time::Duration;

use clap::Parser;
use consumer_core::{
    ConsumerArgs, ConsumerError, Decoded, ExactlyOnceContext, ExitReason, KafkaErrors, Model,
    Pipeline, StatsReport,
};
use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

/// Command line of consumer-push.
#[derive(Debug, Parser)]
#[command(
    name = "consumer-push",
    version,
    about = "Consumes banking events from Kafka into SQLite, exactly once, with a stream and an \
async handler (PUSH).",
    long_about = "Consumes banking events from Kafka into SQLite, exactly once, in the PUSH \
model: a StreamConsumer on tokio pushes each message to a handler, which hands it to a batch; a \
writer thread commits the batch in one transaction when it holds --batch-size messages or \
--flush-interval-ms has passed (the batching is the same as consumer-pull's). When the batch is \
full and the writer busy, the handler awaits the writer.\n\n\
The consumed offsets are stored in the same transaction as the rows, and each assigned \
partition resumes from them, so a crash or a restart never loses nor duplicates an event. \
Messages that are not valid events go to the dead_letters table with their partition and \
offset. SIGINT/SIGTERM commits the open batch and exits 0; a second signal exits at once.",
    after_help = "Examples:\n  consumer-push --brokers localhost:9092 --topic banking.events\n  \
consumer-push --db push.db --exit-when-idle 3 --stats-json push.json\n  \
consumer-push -X fetch.wait.max.ms=100 -X security.protocol=SASL_SSL ..."
)]
pub struct Cli {
    /// The flags both consumers share.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

type Kafka = StreamConsumer<ExactlyOnceContext>;

/// Consumes until a signal, `--exit-when-idle`, `--max-events` or an
/// error; then commits what is open, hands Kafka the final offsets, writes
/// `--stats-json` and prints the summary. Returns the run's report.
///
/// Needs a tokio runtime with timers. On error the summary and stats are
/// still written (with the error in them) before the error is returned.
pub async fn run(args: ConsumerArgs) -> Result<StatsReport, ConsumerError> {
    let (pipeline, context) = Pipeline::start(Model::Push, args)?;
    let consumer: Kafka = pipeline.subscribe(context)?;
    let consumed = handle_messages(&pipeline, &consumer).await;
    pipeline.finish(consumer, consumed)
}

/// The handler: every message the stream pushes is decoded and handed to
/// the committer. Returns why it stopped; the open batch is left for
/// [`Pipeline::finish`] to commit.
async fn handle_messages(
    pipeline: &Pipeline,
    consumer: &Kafka,
) -> Result<ExitReason, ConsumerError> {
    let committer = &pipeline.committer;
    let context = consumer.context();
    let max_events = pipeline.args.max_events;
    let mut stream = consumer.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = pipeline.idle_detector();
    let mut kafka_errors = KafkaErrors::default();
    let mut received = 0u64;

    loop {
        let idle_tick = tokio::select! {
            biased;
            item = stream.next() => match item {
                Some(Ok(message)) => {
                    // A rebalance inside this poll may have failed: then
                    // this message must not be stored.
                    if context.has_fatal() {
                        return Err(context.take_fatal().unwrap_or(ConsumerError::WriterStopped));
                    }
                    pipeline.clock.message_received();
                    idle.on_message(message.partition());
                    let decoded = Decoded::from_message(&message);
                    drop(message);
                    // Awaits while the batch is full and the writer busy.
                    committer.push_async(decoded).await?;
                    received += 1;
                    if max_events.is_some_and(|n| received >= n) {
                        return Ok(ExitReason::MaxEvents);
                    }
                    false
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    idle.on_partition_eof(partition, &pipeline.assignment);
                    false
                }
                Some(Err(e)) => {
                    kafka_errors.handle(e)?;
                    false
                }
                None => return Err(ConsumerError::kafka("read messages", KafkaError::NoMessageReceived)),
            },
            _ = tick.tick() => true,
        };
        if let Some(reason) = pipeline.after_message(consumer, idle_tick)? {
            return Ok(reason);
        }
        if idle_tick && idle.is_idle(&pipeline.assignment, consumer) {
            return Ok(ExitReason::Idle);
        }
    }
}
