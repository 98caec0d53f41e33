//! consumer-push: the PUSH model. A `StreamConsumer` on tokio pushes each
//! message, as it arrives, to a handler that decodes it and feeds a
//! bounded channel; a writer task takes messages off the channel into a
//! batch and flushes it by size (`--batch-size`) or age
//! (`--flush-interval-ms`).
//!
//! ```text
//! librdkafka queue ─stream─▶ handler ─bounded channel─▶ writer task ─▶ open batch
//! (≤ 4 MiB payload)          (decode)  (--channel-capacity)                  │
//!                                                                             ▼
//!                                  spawn_blocking: SQLite commit (one in flight)
//! ```
//!
//! - The SQLite commit runs on tokio's blocking pool, never on the runtime's
//!   workers; while one batch is being committed the writer keeps filling
//!   the next, and waits for the first before committing the second. A
//!   batch that is due while the previous one is still committing keeps
//!   filling until the commit is done, so batches grow under load.
//! - Backpressure comes from the bounded channel only: when the writer
//!   falls behind, the handler waits for room and stops taking messages
//!   from librdkafka, whose prefetch queue is itself bounded. Memory is
//!   therefore bounded whatever the backlog: librdkafka's queue + channel +
//!   open batch + the batch in flight.
//! - Revocation: librdkafka runs the rebalance handler inside the handler's
//!   `stream.next()`. The handler then sends a `Flush` marker through the
//!   same channel (so it comes after every message already handed over)
//!   and blocks, in `block_in_place`, until the writer acknowledges that
//!   everything before the marker is committed. The writer never waits for
//!   the handler, so this cannot deadlock, however full the channel is.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use banking_consumer::{
    Batch, Committed, ConsumerArgs, ConsumerError, Decoded, ExactlyOnceContext, ExitReason,
    KafkaErrors, Model, Pipeline, Shutdown, StatsReport, StoreWriter, blocking_section,
    commit_async, commit_final,
};
use clap::Parser;
use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Default of `--channel-capacity`.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 20_000;

/// Command line of consumer-push.
#[derive(Debug, Parser)]
#[command(
    name = "consumer-push",
    version,
    about = "Consumes banking events from Kafka into SQLite, exactly once, with a stream and a \
bounded channel (PUSH).",
    long_about = "Consumes banking events from Kafka into SQLite, exactly once, in the PUSH \
model: a StreamConsumer on tokio pushes each message to a handler, which feeds a bounded \
channel (--channel-capacity) to a writer task; the writer commits a batch in one transaction \
when it holds --batch-size messages or --flush-interval-ms has passed.\n\n\
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

    /// Messages the bounded channel between the handler and the SQLite
    /// writer holds. When it is full the handler waits: that is the
    /// backpressure that keeps memory bounded.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CHANNEL_CAPACITY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub channel_capacity: usize,
}

type Kafka = StreamConsumer<ExactlyOnceContext>;

/// What the handler sends the writer.
enum ToWriter {
    /// A decoded message for the open batch.
    Message(Decoded),
    /// Commit everything received so far, then acknowledge (revocation).
    Flush(SyncSender<()>),
    /// Commit everything received so far and stop.
    Finish,
}

/// Consumes until a signal, `--exit-when-idle`, `--max-events` or an
/// error; then commits what is open, hands Kafka the final offsets, writes
/// `--stats-json` and prints the summary. Returns the run's report.
///
/// Needs a multi-threaded tokio runtime (the revoke hook blocks in
/// `block_in_place`). On error the summary and stats are still written
/// (with the error in them) before the error is returned.
pub async fn run(args: ConsumerArgs, capacity: usize) -> Result<StatsReport, ConsumerError> {
    let (pipeline, writer, context) = Pipeline::start(Model::Push, args, Some(capacity))?;
    let topic = pipeline.topic().to_string();
    let (tx, rx) = mpsc::channel::<ToWriter>(capacity);
    let for_revoke = tx.clone();
    context.set_revoke_hook(Box::new(move || flush_through(&for_revoke)));

    let consumer: Arc<Kafka> = Arc::new(
        pipeline
            .client_config
            .create_with_context(context)
            .map_err(ConsumerError::CreateConsumer)?,
    );
    consumer
        .subscribe(&[&topic])
        .map_err(|source| ConsumerError::Subscribe {
            topic: topic.clone(),
            source,
        })?;

    let writer_task = tokio::spawn(write_loop(
        rx,
        Committer::new(writer, consumer.clone(), &topic, pipeline.batch_size()),
        pipeline.batch_size(),
        pipeline.flush_interval(),
    ));

    let handled = handle_messages(&pipeline, &consumer, &tx).await;
    // Stop fetching happened with the handler; the writer commits what it
    // holds and stops.
    let _ = tx.send(ToWriter::Finish).await;
    drop(tx);
    let (writer, written) = writer_task
        .await
        .map_err(|source| ConsumerError::TaskPanicked {
            what: "SQLite writer task",
            source,
        })?;
    // The writer's own error says more than the handler's "writer stopped".
    let (reason, error) = match (handled, written) {
        (_, Err(e)) | (Err(e), Ok(())) => (ExitReason::Error, Some(e)),
        (Ok(reason), Ok(())) => (reason, None),
    };
    commit_final(&*consumer, &topic);
    // Leaving the group blocks until librdkafka has closed the consumer.
    blocking_section(move || drop(consumer));

    let report = pipeline.finish(&writer, reason, error.as_ref())?;
    match error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The revoke hook: flush everything handed to the writer so far and wait
/// until it is committed. Runs inside a rebalance, in `block_in_place`.
fn flush_through(tx: &mpsc::Sender<ToWriter>) -> Result<(), ConsumerError> {
    let (ack_tx, ack_rx) = sync_channel(1);
    tx.blocking_send(ToWriter::Flush(ack_tx))
        .map_err(|_| ConsumerError::WriterStopped)?;
    ack_rx.recv().map_err(|_| ConsumerError::WriterStopped)
}

/// Resolves once a signal asked the run to stop.
async fn stop_requested(shutdown: &Shutdown) {
    while !shutdown.requested() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The handler: every message the stream pushes is decoded and handed to
/// the writer through the bounded channel. Returns why it stopped.
async fn handle_messages(
    pipeline: &Pipeline,
    consumer: &Kafka,
    tx: &mpsc::Sender<ToWriter>,
) -> Result<ExitReason, ConsumerError> {
    let max_events = pipeline.args.max_events;
    let context = consumer.context();
    let mut stream = consumer.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = pipeline.idle_detector();
    let mut kafka_errors = KafkaErrors::default();
    let mut received = 0u64;

    loop {
        tokio::select! {
            biased;
            item = stream.next() => match item {
                Some(Ok(message)) => {
                    pipeline.clock.message_received();
                    idle.on_message(message.partition());
                    let decoded = ToWriter::Message(Decoded::from_message(&message));
                    drop(message);
                    match tx.try_send(decoded) {
                        Ok(()) => {}
                        Err(TrySendError::Closed(_)) => return Err(ConsumerError::WriterStopped),
                        // The writer is behind: wait for room (backpressure),
                        // but not past a signal.
                        Err(TrySendError::Full(decoded)) => tokio::select! {
                            sent = tx.send(decoded) => {
                                sent.map_err(|_| ConsumerError::WriterStopped)?;
                            }
                            () = stop_requested(&pipeline.shutdown) => return Ok(ExitReason::Signal),
                        },
                    }
                    received += 1;
                    if max_events.is_some_and(|n| received >= n) {
                        return Ok(ExitReason::MaxEvents);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    idle.on_partition_eof(partition, &pipeline.assignment);
                }
                Some(Err(e)) => kafka_errors.handle(e)?,
                None => return Err(ConsumerError::kafka("read messages", KafkaError::NoMessageReceived)),
            },
            _ = tick.tick() => {
                if tx.is_closed() {
                    return Err(ConsumerError::WriterStopped);
                }
                if idle.is_idle(&pipeline.assignment) {
                    return Ok(ExitReason::Idle);
                }
            }
        }
        if context.has_fatal() {
            return Err(context.take_fatal().unwrap_or(ConsumerError::WriterStopped));
        }
        if pipeline.shutdown.requested() {
            return Ok(ExitReason::Signal);
        }
    }
}

/// What a commit on the blocking pool hands back: the writer, the batch
/// (to be reused), and the outcome.
type InFlight = (StoreWriter, Batch, Result<Option<Committed>, ConsumerError>);

/// The writer's side of SQLite: at most one batch committing on the
/// blocking pool at a time, the writer and a spare batch otherwise.
struct Committer {
    ready: Option<(StoreWriter, Batch)>,
    busy: Option<JoinHandle<InFlight>>,
    consumer: Arc<Kafka>,
    topic: String,
}

impl Committer {
    fn new(writer: StoreWriter, consumer: Arc<Kafka>, topic: &str, batch_size: usize) -> Committer {
        Committer {
            ready: Some((writer, Batch::with_capacity(topic, batch_size))),
            busy: None,
            consumer,
            topic: topic.to_string(),
        }
    }

    /// Whether a commit is still running on the blocking pool.
    fn is_busy(&self) -> bool {
        self.busy.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Waits for the batch in flight, then copies its offsets to Kafka.
    async fn wait(&mut self) -> Result<(), ConsumerError> {
        if let Some(handle) = self.busy.take() {
            let (writer, mut spare, result) = handle.await.expect("the SQLite commit panicked");
            spare.clear();
            self.ready = Some((writer, spare));
            if let Some(committed) = result? {
                commit_async(&*self.consumer, &self.topic, &committed.offsets);
            }
        }
        Ok(())
    }

    /// Starts committing `batch` (which is left empty) once the previous
    /// commit is done.
    async fn submit(&mut self, batch: &mut Batch) -> Result<(), ConsumerError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.wait().await?;
        let (mut writer, mut full) = self.ready.take().expect("ready after wait");
        std::mem::swap(batch, &mut full);
        self.busy = Some(tokio::task::spawn_blocking(move || {
            let result = writer.commit(&full);
            (writer, full, result)
        }));
        Ok(())
    }

    /// Commits `batch` and waits until everything is committed.
    async fn flush(&mut self, batch: &mut Batch) -> Result<(), ConsumerError> {
        self.submit(batch).await?;
        self.wait().await
    }

    /// The writer back, once nothing is in flight.
    async fn into_writer(mut self) -> StoreWriter {
        if let Some(handle) = self.busy.take() {
            let (writer, _, _) = handle.await.expect("the SQLite commit panicked");
            return writer;
        }
        self.ready.take().expect("idle committer has its writer").0
    }
}

/// The writer task: batches what the channel delivers, flushes by size or
/// age, and on `Flush`/`Finish` commits everything before answering.
async fn write_loop(
    mut rx: mpsc::Receiver<ToWriter>,
    mut committer: Committer,
    batch_size: usize,
    flush_interval: Duration,
) -> (StoreWriter, Result<(), ConsumerError>) {
    let topic = committer.topic.clone();
    let mut batch = Batch::with_capacity(topic.as_str(), batch_size);
    // One timer, re-armed whenever a batch opens (cheaper than a new one
    // per message).
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed = false;

    let result: Result<(), ConsumerError> = async {
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                () = &mut timer, if armed => {
                    // Due, but the previous batch is still committing: keep
                    // filling this one (up to a full batch) and look again
                    // shortly, rather than stop draining the channel.
                    if committer.is_busy() {
                        timer.as_mut().reset(Instant::now() + Duration::from_millis(1));
                        continue;
                    }
                    armed = false;
                    committer.submit(&mut batch).await?;
                    continue;
                }
            };
            match next {
                Some(ToWriter::Message(first)) => {
                    if batch.is_empty() {
                        timer.as_mut().reset(Instant::now() + flush_interval);
                        armed = true;
                    }
                    first.push_into(&mut batch);
                    // Take whatever else is already waiting, up to a full batch.
                    while batch.len() < batch_size {
                        match rx.try_recv() {
                            Ok(ToWriter::Message(m)) => m.push_into(&mut batch),
                            Ok(ToWriter::Flush(ack)) => {
                                committer.flush(&mut batch).await?;
                                armed = false;
                                let _ = ack.send(());
                                break;
                            }
                            Ok(ToWriter::Finish) => {
                                committer.flush(&mut batch).await?;
                                return Ok(());
                            }
                            Err(_) => break,
                        }
                    }
                    if batch.len() >= batch_size {
                        armed = false;
                        committer.submit(&mut batch).await?;
                    }
                }
                Some(ToWriter::Flush(ack)) => {
                    committer.flush(&mut batch).await?;
                    armed = false;
                    let _ = ack.send(());
                }
                Some(ToWriter::Finish) | None => {
                    committer.flush(&mut batch).await?;
                    return Ok(());
                }
            }
        }
    }
    .await;
    // Whatever happened, nothing may be left in flight; on error the open
    // batch is dropped uncommitted, and so are its offsets.
    let writer = committer.into_writer().await;
    (writer, result)
}
