//! What can end a consumer run, worded for the person reading the log.

use std::path::PathBuf;

use rdkafka::error::KafkaError;
use store::StoreError;

/// Why a consumer stopped with an error.
///
/// Whatever the variant, the offsets stored in SQLite (and committed to
/// Kafka) never move past rows that were not committed: a restart resumes
/// exactly where the database left off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The SQLite store failed in a way that needs a person (a full disk, an
    /// I/O error, a file that is not ours, ...). The batch in progress was
    /// rolled back.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A store error that passes by itself (out of memory, ...) did not pass
    /// after several attempts at the same batch.
    #[error("gave up committing a batch after {attempts} attempts: {last}")]
    StoreRetriesExhausted {
        /// How many times the batch was tried.
        attempts: u32,
        /// The error of the last attempt.
        last: StoreError,
    },

    /// A start position that could not be proven to lose nothing: no
    /// partition was taken, nothing stored. The message names the range,
    /// the likely cause and the flag that accepts it.
    #[error(transparent)]
    StartRefused(#[from] crate::start::Refusal),

    /// A lookup a start position depends on failed: no partition was
    /// taken.
    #[error(
        "cannot decide where the partitions of {topic} start: {what} could not be read from the          broker ({source}). No partition was taken and nothing stored; restart once the broker          answers"
    )]
    StartUnproven {
        /// The topic.
        topic: String,
        /// What could not be read.
        what: &'static str,
        /// The broker's error.
        source: KafkaError,
    },

    /// A `-X` property that would take the start positions or the offsets
    /// out of the store's hands.
    #[error("-X {key}={value} is not accepted: {why}")]
    ForbiddenProperty {
        /// The property.
        key: String,
        /// The value given.
        value: String,
        /// What it would break, and what to do instead.
        why: &'static str,
    },

    /// The writer stopped after an earlier error (or its thread panicked, a
    /// bug); nothing more is written, and what it held is lost,
    /// uncommitted, so its offsets did not move either.
    #[error("the SQLite writer stopped after an earlier error")]
    WriterStopped,

    /// The metrics endpoint (`--metrics-addr`) could not start.
    #[error(transparent)]
    Metrics(#[from] common::telemetry::MetricsError),

    /// librdkafka refused the configuration (a bad `-X` property, ...).
    #[error("invalid Kafka client configuration")]
    Config(#[source] KafkaError),

    /// A Kafka operation failed in a way the consumer cannot work around.
    #[error("Kafka: cannot {what}")]
    Kafka {
        /// What the consumer was doing.
        what: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },

    /// librdkafka could not create the consumer client.
    #[error("cannot create the Kafka consumer")]
    CreateConsumer(#[source] KafkaError),

    /// The subscription to the topic was refused.
    #[error("cannot subscribe to {topic}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        source: KafkaError,
    },

    /// A thread of the consumer could not be started.
    #[error("cannot start the {what} thread")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// librdkafka reported a fatal consumer error; the client is unusable.
    #[error("fatal Kafka consumer error")]
    FatalKafka(#[source] KafkaError),

    /// The `--stats-json` file cannot be written.
    #[error("cannot write stats file {}", path.display())]
    StatsFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The `--ready-file` cannot be written (or a stale one removed).
    #[error("cannot write ready file {}", path.display())]
    ReadyFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The SIGINT/SIGTERM handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
}

/// `e` and its sources, joined by ": " (what `{:#}` shows for anyhow).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

impl ConsumerError {
    /// A Kafka failure while doing `what`.
    pub fn kafka(what: &'static str, source: KafkaError) -> ConsumerError {
        ConsumerError::Kafka { what, source }
    }
}
