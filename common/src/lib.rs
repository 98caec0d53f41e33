//! Pieces every binary of the pipeline shares: the librdkafka settings taken
//! from the command line (`--brokers`, `-X key=value`), logging, progress
//! display, resource usage and the stats files the benchmark reads.

#![deny(missing_docs)]

pub mod kafka;
pub mod progress;
pub mod stats;
pub mod usage;

pub use kafka::{KafkaArgs, parse_property};
pub use progress::Progress;
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
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: logs captured to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
