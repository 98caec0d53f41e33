//! Pieces every binary of the pipeline shares: the librdkafka settings taken
//! from the command line (`--brokers`, `-X key=value`), logging, progress
//! display, resource usage, the stats files the benchmark reads, and
//! [`telemetry`]: `--log-format` and the Prometheus `--metrics-addr`.

#![deny(missing_docs)]

pub mod kafka;
pub mod progress;
pub mod stats;
pub mod telemetry;
pub mod usage;

pub use kafka::{KafkaArgs, parse_property};
pub use progress::Progress;
pub use telemetry::{LogFormat, TelemetryArgs, init_logging, install_metrics_if};
pub use usage::ResourceUsage;

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, the clock of `created_at_us` and of
/// every latency figure.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default `info`).
/// Stdout stays free for the final summary.
/// Text lines; see [`init_logging`] for `--log-format json`.
pub fn init_tracing() {
    init_logging(LogFormat::Text);
}
