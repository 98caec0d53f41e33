//! The producer: generates realistic banking events, encodes them with
//! protobuf and sends them to Kafka, keyed by account so that each account's
//! events stay in order on one partition.
//!
//! An event counts as sent only when its delivery report says the broker has
//! it. The producer is idempotent (no duplicates from its own retries) and
//! librdkafka retries a failed send until `message.timeout.ms`; an event
//! that still fails is counted in `events_failed`, its first errors are
//! logged, and the binary exits non-zero. Nothing is dropped silently.
//!
//! [`run`] returns [`ProducerStats`], which the binary prints and writes to
//! `--stats-json`: the count, amount sum and order-independent id checksum
//! of the acknowledged events, against which a consumer's database is
//! verified.

#![deny(missing_docs)]

pub mod batch;
pub mod generator;
mod send;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::{KafkaArgs, TelemetryArgs};

pub use common::stats::ProducerStats;
pub use generator::{Generator, GeneratorError};
pub use send::{ProducerError, run};

/// Command line of the `producer` binary (also the configuration of
/// [`run`]). Serializable so that a program starting the producer (the
/// benchmark) can build the command line from this very struct.
#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(
    name = "producer",
    version,
    about = "Generates realistic banking events and sends them to Kafka as protobuf.",
    long_about = "Generates realistic banking events (card transactions, payments, transfers, \
withdrawals, deposits, fees) over --accounts accounts, encodes them as banking.v1 protobuf and \
sends them to --topic, keyed by account id. The same --seed gives the same events.\n\n\
An event counts as sent only once the broker acknowledged it. At the end the producer prints, \
and writes to --stats-json, the number of acknowledged and failed events, the sum of their \
amounts and a checksum of their ids, so a consumer's database can be verified against them. \
Exits non-zero if any event finally failed, or if the broker cannot be reached within --timeout.",
    after_help = "Examples:\n  producer --count 1000000 --partitions 6\n  \
producer --count 100000 --rate 20000 --stats-json producer.json\n  \
producer -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512 \
-X sasl.username=app -X sasl.password=...\n\n\
librdkafka defaults set here (override with -X): enable.idempotence=true, acks=all, \
compression.type=lz4, linger.ms=2, batch.size=1000000, queue.buffering.max.messages=500000, \
message.timeout.ms=<--timeout>."
)]
pub struct Args {
    /// Kafka connection and topic.
    #[command(flatten)]
    #[serde(flatten)]
    pub kafka: KafkaArgs,

    /// Number of events to send.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub count: u64,

    /// Events per second; 0 sends as fast as the broker takes them.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub rate: u64,

    /// Seed of the event generator: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Number of bank accounts the events are spread over (at least 2).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=generator::MAX_ACCOUNTS))]
    pub accounts: u64,

    /// Id of the first event; the next ones count up from it. Give each run
    /// into the same topic its own range so that ids stay unique.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub first_id: u64,

    /// Create the topic with this many partitions when it does not exist
    /// (an existing topic is used as it is). Without it, a missing topic is
    /// an error.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: Option<i32>,

    /// Replication factor of a topic created with --partitions.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub replication_factor: i32,

    /// Seconds to wait for the broker to answer at start, and for each
    /// event's delivery (librdkafka's message.timeout.ms) before it counts
    /// as failed.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Write the final figures as JSON to this file (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,

    /// Measure the ceiling instead: send pre-encoded payloads of the same
    /// events (a pool of 65,536, reused) with the same settings, skipping
    /// generation and encoding. Ids repeat, so the checksum means nothing;
    /// use a throw-away topic.
    #[arg(long)]
    pub raw: bool,

    /// `--log-format` and `--metrics-addr`.
    #[command(flatten)]
    #[serde(flatten)]
    pub telemetry: TelemetryArgs,
}

impl Args {
    /// `--timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}
