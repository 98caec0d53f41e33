//! consumer-pull: the PULL model. A `BaseConsumer` poll loop takes one
//! message at a time, at its own pace, decodes it and hands it to the
//! committer; then it polls again.
//!
//! ```text
//! librdkafka queue ─poll─▶ poll loop (decode) ─push─▶ Committer: open batch ─▶ writer thread: SQLite commit
//! (≤ 4 MiB payload)                                   (≤ --batch-size)          (one batch in flight)
//! ```
//!
//! - Batching, the one commit in flight, the offsets and the flushes are
//!   the shared [`Committer`](consumer_core::Committer)'s, the same as
//!   consumer-push's: this crate is only the feed.
//! - Backpressure: when the open batch is full and the writer still busy,
//!   `push` blocks the loop until the writer takes the batch; the loop
//!   stops polling meanwhile, and librdkafka's prefetch queue is itself
//!   bounded, so memory is bounded whatever the backlog.
//! - The poll timeout is a constant tick: the writer applies
//!   `--flush-interval-ms` on its own thread, so the loop has no timer to
//!   keep and never wakes up just to look at the writer.
//! - Revocation: librdkafka runs the rebalance handler inside `poll`, on
//!   the loop's thread, between two messages; it flushes the committer and
//!   commits the offsets before the partitions go.
//!
//! Everything else (configuration, exactly-once offsets, rebalances,
//! signals, stats) is `consumer_core`'s, shared with consumer-push.

use std::time::Duration;

use clap::Parser;
use consumer_core::{
    ConsumerArgs, ConsumerError, Decoded, ExactlyOnceContext, ExitReason, KafkaErrors, Model,
    Pipeline, StatsReport,
};
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
(PULL): the loop takes messages at its own pace into a batch, which a writer thread commits in \
one transaction when it holds --batch-size messages or --flush-interval-ms has passed (the \
batching is the same as consumer-push's).\n\n\
The consumed offsets are stored in the same transaction as the rows, and each assigned \
partition resumes from them, so a crash or a restart never loses nor duplicates an event. \
Messages that are not valid events go to the dead_letters table with their partition and \
offset. SIGINT/SIGTERM commits the open batch and exits 0; a second signal exits at once.",
    after_help = "Examples:\n  consumer-pull --brokers localhost:9092 --topic banking.events\n  \
consumer-pull --db pull.db --exit-when-idle 3 --stats-json pull.json\n  \
consumer-pull -X fetch.wait.max.ms=100 -X security.protocol=SASL_SSL ..."
)]
pub struct Cli {
    /// The flags both consumers share.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// Consumes until a signal, `--exit-when-idle`, `--max-events` or an
/// error; then commits what is open, hands Kafka the final offsets, writes
/// `--stats-json` and prints the summary. Returns the run's report.
///
/// On error the summary and stats are still written (with the error in
/// them) before the error is returned.
pub fn run(args: ConsumerArgs) -> Result<StatsReport, ConsumerError> {
    let (pipeline, context) = Pipeline::start(Model::Pull, args)?;
    let consumer: BaseConsumer<ExactlyOnceContext> = pipeline.subscribe(context)?;
    let consumed = consume(&pipeline, &consumer);
    pipeline.finish(consumer, consumed)
}

/// The poll loop. Returns why it stopped; the open batch is left for
/// [`Pipeline::finish`] to commit.
fn consume(
    pipeline: &Pipeline,
    consumer: &BaseConsumer<ExactlyOnceContext>,
) -> Result<ExitReason, ConsumerError> {
    /// How long `poll` waits for a message: how soon a signal or
    /// `--exit-when-idle` is noticed when nothing arrives.
    const TICK: Duration = Duration::from_millis(100);
    let committer = &pipeline.committer;
    let context = consumer.context();
    let max_events = pipeline.args.max_events;
    let mut idle = pipeline.idle_detector();
    let mut kafka_errors = KafkaErrors::default();
    let mut received = 0u64;

    loop {
        let idle_tick = match consumer.poll(TICK) {
            Some(Ok(message)) => {
                // A rebalance inside this poll may have failed (a start
                // position refused, the database unreadable): then this
                // message must not be stored.
                if context.has_fatal() {
                    return Err(context.take_fatal().unwrap_or(ConsumerError::WriterStopped));
                }
                pipeline.clock.message_received();
                idle.on_message(message.partition());
                let decoded = Decoded::from_message(&message);
                drop(message);
                // Blocks while the batch is full and the writer busy.
                committer.push(decoded)?;
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
            // Nothing for a tick (or an event librdkafka handled itself).
            None => true,
        };
        if let Some(reason) = pipeline.after_message(consumer, idle_tick)? {
            return Ok(reason);
        }
        if idle_tick && idle.is_idle(&pipeline.assignment, consumer) {
            return Ok(ExitReason::Idle);
        }
    }
}
