//! What consumer-pull and consumer-push share, so that the two binaries
//! differ only in how messages reach the store.
//!
//! A run, in either model:
//!
//! 1. [`Pipeline::start`] parses nothing itself (see [`parse_cli`]) but
//!    checks everything before work starts: the librdkafka configuration
//!    (our defaults, then `-X`), the stats file's directory, the database.
//!    It starts the [`Committer`] (batching and the only SQLite writer) and
//!    returns the [`ExactlyOnceContext`] (rebalance handling) to build the
//!    consumer with ([`Pipeline::subscribe`]).
//! 2. The binary's feed moves messages: each one becomes a [`Decoded`]
//!    (event or dead letter) handed to the committer, which commits a
//!    batch by size (`--batch-size`) or age (`--flush-interval-ms`); the
//!    feed then copies the committed offsets to Kafka asynchronously
//!    ([`Pipeline::after_message`]). That feed (a poll loop, or a stream
//!    handler) is all the binaries do differently.
//! 3. It stops on a signal ([`Shutdown`]), on `--exit-when-idle`
//!    ([`IdleDetector`]), on `--max-events`, or on an error;
//!    [`Pipeline::finish`] commits the open batch, then the offsets to
//!    Kafka, waiting for the answer ([`commit_final`]), leaves the group
//!    (both bounded), writes `--stats-json` and prints the summary.
//!
//! With `--ready-file` the consumer tells when it is ready to consume (see
//! [`ready`]).
//!
//! Exactly once: offsets live in the same SQLite transaction as the rows
//! (see `store`), each assigned partition starts where [`start::decide`]
//! proves it loses nothing (or the run stops with an error naming the
//! range and the flag that accepts it), revoked partitions are flushed and
//! committed before they are let go (see [`context`]), and
//! [`pending::PendingOffsets`] is the one owner of the offsets bound for
//! Kafka.

#![deny(missing_docs)]

pub mod args;
pub mod assignment;
pub mod committer;
pub mod config;
pub mod context;
pub mod error;
pub mod group;
pub mod idle;
pub mod metrics;
pub mod pending;
pub mod ready;
pub mod shutdown;
pub mod start;
pub mod stats;
pub mod throttle;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use store::{Store, StoreOptions};
use tracing::{info, warn};

pub use args::{ConsumerArgs, Model, parse_cli};
pub use assignment::AssignmentWatch;
pub use committer::Committer;
pub use context::{ExactlyOnceContext, StartFlags};
pub use error::{ConsumerError, error_chain};
pub use group::{Undrained, commit_due, commit_final, publish_stored_offsets, undrained_elsewhere};
pub use idle::IdleDetector;
pub use pending::PendingOffsets;
pub use ready::ReadyFile;
pub use shutdown::Shutdown;
pub use stats::{ConsumerStats, ExitReason, ReportContext, RunClock, RunStats, StatsReport};
pub use store::{self, Batch};
pub use writer::{Committed, Decoded, StoreWriter};

/// The longest a SIGINT/SIGTERM waits for the open batch to commit (the
/// database locked by another process): well inside Docker's default 10 s
/// between SIGTERM and SIGKILL. A batch that cannot commit in time is
/// given up, nothing of it written; its events stay in Kafka and are read
/// again at the next start: nothing lost.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// How long, after a signal, the final offset commit to Kafka and the
/// leave from the group may each wait for the broker.
pub const FINAL_COMMIT_LIMIT: Duration = Duration::from_millis(1500);

/// Leaves the group: dropping `consumer` runs a last revocation (nothing
/// is open by then) and asks to leave, which librdkafka waits for up to
/// `session.timeout.ms` when the broker is gone. Past `limit` the run goes
/// on without it and the group drops this member when its session times
/// out; everything this run stored is in the database already.
fn leave_group<C: Send + 'static>(consumer: C, limit: Duration) {
    let (left, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(consumer);
        let _ = left.send(());
    });
    if wait.recv_timeout(limit).is_err() {
        warn!("the group did not confirm this member's leave within {limit:?}; exiting without it");
    }
}

/// The parts of a run both models share. See the crate documentation.
#[derive(Debug)]
pub struct Pipeline {
    /// pull or push.
    pub model: Model,
    /// The command line.
    pub args: ConsumerArgs,
    /// The consumer's librdkafka configuration.
    pub client_config: ClientConfig,
    /// Every librdkafka property in force, secrets redacted.
    pub kafka_properties: BTreeMap<String, String>,
    /// Set by SIGINT/SIGTERM.
    pub shutdown: Shutdown,
    /// Process start and first message.
    pub clock: Arc<RunClock>,
    /// The current assignment, as the rebalance handler records it.
    pub assignment: Arc<AssignmentWatch>,
    /// Batches what the feed hands over and commits it to SQLite; shared
    /// with the rebalance handler, which flushes it.
    pub committer: Arc<Committer>,
}

impl Pipeline {
    /// Checks the configuration, installs the signal handlers, opens the
    /// database (twice: the writer's connection, and the rebalance
    /// handler's for reading stored offsets) and starts the committer.
    pub fn start(
        model: Model,
        args: ConsumerArgs,
    ) -> Result<(Pipeline, ExactlyOnceContext), ConsumerError> {
        if let Some(path) = &args.stats_json {
            common::stats::check_writable(path).map_err(|source| ConsumerError::StatsFile {
                path: path.clone(),
                source,
            })?;
        }
        config::check_fixed(&args)?;
        let client_config = config::client_config(model, &args);
        let kafka_properties = config::properties_in_force(&client_config)?;
        // Before the writer starts: it looks its metric handles up once.
        common::install_metrics_if(args.telemetry.metrics_addr)?;
        let shutdown = Shutdown::install()?;
        let clock = Arc::new(RunClock::new());
        let pending = Arc::new(PendingOffsets::default());
        let assignment = Arc::new(AssignmentWatch::default());
        if let Some(path) = &args.ready_file {
            let ready = ReadyFile::prepare(path, &args.kafka.topic).map_err(|source| {
                ConsumerError::ReadyFile {
                    path: path.clone(),
                    source,
                }
            })?;
            assignment.set_ready_file(ready);
        }
        let store_options = StoreOptions {
            keep_event_payloads: args.keep_event_payloads,
            ..StoreOptions::default()
        };
        let writer = StoreWriter::open(&args.db, &store_options, pending.clone(), clock.clone())?;
        let committer = Arc::new(Committer::start(
            writer,
            &args.kafka.topic,
            args.batch_size,
            args.flush_interval(),
        )?);
        // librdkafka's dump includes its default (300000 ms).
        if let Some(ms) = kafka_properties
            .get("max.poll.interval.ms")
            .and_then(|v| v.parse::<u64>().ok())
        {
            committer.set_wait_limit(Duration::from_millis(ms / 2));
        }
        // The rebalance handler's connection gives up a lock wait as the
        // committer does: the group does not wait longer.
        let offsets_db = Store::open_with(
            &args.db,
            &StoreOptions {
                lock_wait_limit: Some(committer.wait_limit()),
                ..StoreOptions::default()
            },
        )?;
        let context = ExactlyOnceContext::new(
            &args.kafka.topic,
            offsets_db,
            pending,
            assignment.clone(),
            committer.clone(),
            args.start_flags(),
        );
        info!(
            "{}: topic {} at {}, group {}, database {}, batches of {} or {} ms{}",
            model.binary(),
            args.kafka.topic,
            args.kafka.brokers,
            args.group,
            args.db.display(),
            args.batch_size,
            args.flush_interval_ms,
            if args.kafka.properties.is_empty() {
                String::new()
            } else {
                format!(", -X {}", args.kafka.redacted_properties().join(" "))
            }
        );
        Ok((
            Pipeline {
                model,
                args,
                client_config,
                kafka_properties,
                shutdown,
                clock,
                assignment,
                committer,
            },
            context,
        ))
    }

    /// Creates the consumer (`BaseConsumer` or `StreamConsumer`) with
    /// `context` and subscribes it to the topic.
    pub fn subscribe<C>(&self, context: ExactlyOnceContext) -> Result<C, ConsumerError>
    where
        C: FromClientConfigAndContext<ExactlyOnceContext> + Consumer<ExactlyOnceContext>,
    {
        let consumer: C = self
            .client_config
            .create_with_context(context)
            .map_err(ConsumerError::CreateConsumer)?;
        consumer
            .subscribe(&[self.topic()])
            .map_err(|source| ConsumerError::Subscribe {
                topic: self.topic().to_string(),
                source,
            })?;
        Ok(consumer)
    }

    /// What the feed does after each message and on each idle tick: the
    /// writer's error if it failed, the offsets due to Kafka, a rebalance's
    /// error, a signal. `Ok(Some(reason))`: stop.
    pub fn after_message<C: Consumer<ExactlyOnceContext>>(
        &self,
        consumer: &C,
        idle_tick: bool,
    ) -> Result<Option<ExitReason>, ConsumerError> {
        self.committer.check()?;
        commit_due(consumer, idle_tick);
        let context = consumer.context();
        if context.has_fatal() {
            return Err(context.take_fatal().unwrap_or(ConsumerError::WriterStopped));
        }
        if self.shutdown.requested() {
            return Ok(Some(ExitReason::Signal));
        }
        Ok(None)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.args.kafka.topic
    }

    /// A detector for `--exit-when-idle`.
    pub fn idle_detector(&self) -> IdleDetector {
        IdleDetector::new(self.args.idle_after())
    }

    /// Ends a run once the feed has stopped (`consumed` is why): commits
    /// the open batch (unless the store failed), hands Kafka the final
    /// offsets, leaves the group (dropping `consumer`), stops the writer,
    /// writes `--stats-json` and prints the summary. Returns the report,
    /// or the run's error once the summary and stats (with the error in
    /// them) are written.
    pub fn finish<C: Consumer<ExactlyOnceContext> + Send + 'static>(
        self,
        consumer: C,
        consumed: Result<ExitReason, ConsumerError>,
    ) -> Result<StatsReport, ConsumerError> {
        let (reason, mut error) = match consumed {
            Ok(reason) => (reason, None),
            Err(e) => (ExitReason::Error, Some(e)),
        };
        // Bounded as any wait of the feed: the group does not wait longer;
        // after a signal, within a container's grace period.
        let limit = match reason {
            ExitReason::Signal => SHUTDOWN_FLUSH_LIMIT.min(self.committer.wait_limit()),
            _ => self.committer.wait_limit(),
        };
        if let Err(e) = self.committer.flush_within(limit) {
            error.get_or_insert(e);
        }
        // Kafka's copy of the offsets and the farewell to the group, each
        // bounded too, so that a signal is obeyed in time whether the
        // broker answers or not.
        let limit = match reason {
            ExitReason::Signal => FINAL_COMMIT_LIMIT,
            _ => self.committer.wait_limit(),
        };
        commit_final(&consumer, limit);
        leave_group(consumer, limit);
        let writer = self.committer.stop()?;
        let reason = if error.is_some() {
            ExitReason::Error
        } else {
            reason
        };
        let report = self.report(&writer, reason, error.as_ref())?;
        match error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Writes `--stats-json` (if asked) and prints the summary to stdout.
    fn report(
        &self,
        writer: &StoreWriter,
        exit_reason: ExitReason,
        error: Option<&ConsumerError>,
    ) -> Result<ConsumerStats, ConsumerError> {
        writer.finish_progress();
        let report = writer.stats().report(&ReportContext {
            model: self.model,
            args: &self.args,
            kafka_properties: &self.kafka_properties,
            clock: &self.clock,
            exit_reason,
            error: error.map(|e| error_chain(e)),
            offset_gaps: self.assignment.offset_gaps(),
        });
        print!("{}", report.summary());
        if let Some(path) = &self.args.stats_json {
            common::stats::write_json(path, &report).map_err(|source| {
                ConsumerError::StatsFile {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        Ok(report)
    }
}

/// Sorts a consumer error from librdkafka: fatal ones end the run; the rest
/// (a broker briefly unreachable, a topic not there yet, ...) librdkafka
/// recovers from by itself, so they are logged, each kind at most every
/// ten seconds.
#[derive(Debug)]
pub struct KafkaErrors {
    logged: throttle::Throttle,
}

impl Default for KafkaErrors {
    fn default() -> KafkaErrors {
        KafkaErrors {
            logged: throttle::Throttle::new(Duration::from_secs(10)),
        }
    }
}

impl KafkaErrors {
    /// `Err` for a fatal error, else logs it and returns `Ok`.
    pub fn handle(&mut self, e: KafkaError) -> Result<(), ConsumerError> {
        if let KafkaError::MessageConsumptionFatal(_) = e {
            return Err(ConsumerError::FatalKafka(e));
        }
        let text = e.to_string();
        if let Some(held) = self.logged.pass(&text) {
            warn!("Kafka: {text}{}", throttle::held_back(held));
        }
        Ok(())
    }
}
