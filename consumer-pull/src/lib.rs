//! consumer-pull: the PULL model. A `BaseConsumer` poll loop takes one
//! message at a time, at its own pace, into a batch, and hands the batch to
//! the SQLite writer thread when it is full (`--batch-size`), or old enough
//! (`--flush-interval-ms`) and the writer is free; then it polls again.
//!
//! ```text
//! librdkafka queue ─poll─▶ poll loop (decode) ─▶ open batch ──▶ writer thread: SQLite commit
//! (≤ 4 MiB payload)                               (one in flight, one filling)
//! ```
//!
//! - The loop fills the next batch while the writer commits the previous
//!   one, so reading and decoding overlap with SQLite on two cores. At most
//!   one batch is in flight: a full batch waits for the writer, and
//!   librdkafka's prefetch queue is itself bounded, so memory is bounded
//!   whatever the backlog.
//! - A due batch goes to the writer as soon as the writer is free; while it
//!   is busy the batch keeps filling (up to `--batch-size`), so batches grow
//!   by themselves under load and stay small and quick when traffic is low.
//! - Offsets: the writer stores each batch's offsets in the same SQLite
//!   transaction as its rows; the loop copies them to Kafka afterwards.
//! - Revocation: librdkafka runs the rebalance handler inside `poll`, on the
//!   loop's thread; it hands the open batch to the writer and waits until
//!   everything is committed before the partitions go.
//!
//! Everything else (configuration, exactly-once offsets, rebalances,
//! signals, stats) is `banking_consumer`'s, shared with consumer-push.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
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
consumer-pull -X fetch.wait.max.ms=100 -X security.protocol=SASL_SSL ..."
)]
pub struct Cli {
    /// The flags both consumers share.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// What the writer thread hands back for each batch: the batch (emptied,
/// to be reused) and the outcome of its commit.
type Done = (Batch, Result<Option<Committed>, ConsumerError>);

/// The SQLite writer on its own thread, with at most one batch in flight.
struct Writer {
    to_writer: Option<SyncSender<Batch>>,
    from_writer: Receiver<Done>,
    thread: Option<JoinHandle<StoreWriter>>,
    in_flight: bool,
    /// The batch to fill next, once the one in flight is back.
    spare: Option<Batch>,
    /// A commit failed: nothing more is written.
    failed: bool,
}

impl Writer {
    fn start(mut store: StoreWriter, spare: Batch) -> Result<Writer, ConsumerError> {
        let (to_writer, batches) = sync_channel::<Batch>(1);
        let (done, from_writer) = sync_channel::<Done>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                for mut batch in batches {
                    let result = store.commit(&batch);
                    if result.is_ok() {
                        batch.clear();
                    }
                    if done.send((batch, result)).is_err() {
                        break;
                    }
                }
                store
            })
            .map_err(|source| ConsumerError::Thread {
                what: "SQLite writer",
                source,
            })?;
        Ok(Writer {
            to_writer: Some(to_writer),
            from_writer,
            thread: Some(thread),
            in_flight: false,
            spare: Some(spare),
            failed: false,
        })
    }

    fn take_done(&mut self, (batch, result): Done) -> Result<Option<Committed>, ConsumerError> {
        self.in_flight = false;
        self.spare = Some(batch);
        result.inspect_err(|_| self.failed = true)
    }

    /// The outcome of the batch in flight, if it is back (never blocks).
    fn try_done(&mut self) -> Result<Option<Committed>, ConsumerError> {
        if !self.in_flight {
            return Ok(None);
        }
        match self.from_writer.try_recv() {
            Ok(done) => self.take_done(done),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => self.lost(),
        }
    }

    /// Waits for the batch in flight, if any.
    fn wait(&mut self) -> Result<Option<Committed>, ConsumerError> {
        if !self.in_flight {
            return Ok(None);
        }
        match self.from_writer.recv() {
            Ok(done) => self.take_done(done),
            Err(_) => self.lost(),
        }
    }

    fn lost(&mut self) -> Result<Option<Committed>, ConsumerError> {
        self.in_flight = false;
        self.failed = true;
        Err(ConsumerError::WriterStopped)
    }

    /// Hands `batch` to the writer (waiting for the batch in flight first)
    /// and leaves an empty one in its place. Returns what the wait brought
    /// back.
    fn submit(&mut self, batch: &mut Batch) -> Result<Option<Committed>, ConsumerError> {
        let committed = self.wait()?;
        if self.failed {
            return Err(ConsumerError::WriterStopped);
        }
        if batch.is_empty() {
            return Ok(committed);
        }
        let mut next = self
            .spare
            .take()
            .expect("a spare batch when nothing is in flight");
        std::mem::swap(batch, &mut next);
        let sender = self
            .to_writer
            .as_ref()
            .ok_or(ConsumerError::WriterStopped)?;
        if sender.send(next).is_err() {
            return self.lost();
        }
        self.in_flight = true;
        Ok(committed)
    }

    /// Stops the thread and returns the store writer.
    fn stop(&mut self) -> Result<StoreWriter, ConsumerError> {
        let _ = self.wait();
        drop(self.to_writer.take());
        let thread = self.thread.take().ok_or(ConsumerError::WriterStopped)?;
        thread.join().map_err(|_| ConsumerError::WriterStopped)
    }
}

/// The writer and the open batch. Shared with the rebalance handler, which
/// flushes before partitions are revoked; both run on the polling thread
/// (librdkafka calls the handler from inside `poll`), so the lock is never
/// contended, and it is never held across `poll`.
struct Open {
    writer: Writer,
    batch: Batch,
    /// When the open batch must be written at the latest.
    due: Option<Instant>,
    /// Batches committed to SQLite whose offsets still go to Kafka.
    to_kafka: Vec<Committed>,
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

    fn keep(&mut self, committed: Option<Committed>) {
        self.to_kafka.extend(committed);
    }

    /// Collects a finished commit, then hands the open batch to the writer
    /// if it is full, or due and the writer is free. On error nothing moves
    /// past the failed batch.
    fn progress(&mut self, batch_size: usize, now: Instant) -> Result<(), ConsumerError> {
        let done = self.writer.try_done()?;
        self.keep(done);
        let full = self.batch.len() >= batch_size;
        if full || (self.is_due(now) && !self.writer.in_flight) {
            let done = self.writer.submit(&mut self.batch)?;
            self.keep(done);
            self.due = None;
        }
        Ok(())
    }

    /// Commits the open batch and waits until nothing is in flight.
    fn flush(&mut self) -> Result<(), ConsumerError> {
        let done = self.writer.submit(&mut self.batch)?;
        self.keep(done);
        self.due = None;
        let done = self.writer.wait()?;
        self.keep(done);
        Ok(())
    }

    /// How long `poll` may block: until the open batch is due, but only
    /// briefly when it is due already and waits for the writer.
    fn poll_timeout(&self, tick: Duration) -> Duration {
        match self.due {
            None => tick,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Duration::from_millis(1)
                } else {
                    left.min(tick)
                }
            }
        }
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
    let (pipeline, store, context) = Pipeline::start(Model::Pull, args, None)?;
    let topic = pipeline.topic().to_string();
    let batch_size = pipeline.batch_size();
    let writer = Writer::start(store, Batch::with_capacity(topic.as_str(), batch_size))?;
    let open = Arc::new(Mutex::new(Open {
        writer,
        batch: Batch::with_capacity(topic.as_str(), batch_size),
        due: None,
        to_kafka: Vec::new(),
    }));
    let for_revoke = open.clone();
    context.set_revoke_hook(Box::new(move || {
        let mut open = lock(&for_revoke);
        let flushed = open.flush();
        // The rebalance handler commits the revoked partitions' offsets
        // synchronously; an asynchronous copy afterwards could only be
        // stale.
        open.to_kafka.clear();
        flushed
    }));

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
        if !open.writer.failed {
            if let Err(e) = open.flush() {
                error.get_or_insert(e);
            }
        }
        open.to_kafka.clear();
    }
    commit_final(&consumer, &topic);
    drop(consumer);

    let store = lock(&open).writer.stop()?;
    let reason = if error.is_some() {
        ExitReason::Error
    } else {
        reason
    };
    let report = pipeline.finish(&store, reason, error.as_ref())?;
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
    let mut to_kafka: Vec<Committed> = Vec::new();

    loop {
        let timeout = lock(open).poll_timeout(TICK);
        let polled = consumer.poll(timeout);
        let now = Instant::now();
        match polled {
            Some(Ok(message)) => {
                pipeline.clock.message_received();
                idle.on_message(message.partition());
                let decoded = Decoded::from_message(&message);
                drop(message);
                received += 1;
                lock(open).push(decoded, flush_interval);
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
        {
            let mut open = lock(open);
            open.progress(batch_size, now)?;
            std::mem::swap(&mut to_kafka, &mut open.to_kafka);
        }
        for committed in to_kafka.drain(..) {
            commit_async(consumer, topic, &committed.offsets);
        }
        if max_events.is_some_and(|n| received >= n) {
            return Ok(ExitReason::MaxEvents);
        }
        if pipeline.shutdown.requested() {
            return Ok(ExitReason::Signal);
        }
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            if idle.is_idle(&pipeline.assignment) {
                return Ok(ExitReason::Idle);
            }
        }
    }
}
