//! Logs and metrics, the same for every binary: `--log-format` (text for
//! people, JSON lines for log shippers) and `--metrics-addr` (a Prometheus
//! endpoint, off by default).
//!
//! Metrics go through the `metrics` facade and are served by
//! `metrics-exporter-prometheus` at `http://HOST:PORT/metrics` in the
//! Prometheus text format; process figures (resident memory, CPU, open
//! files, ...) come from `metrics-process`. Without `--metrics-addr` no
//! recorder is installed and every `metrics` call is a no-op; the names
//! are in [`names`], so the binaries and their tests cannot disagree.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;

/// The flags every binary takes for its logs and metrics. Serializable, so
/// that a program starting a binary can build its command line from it.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize)]
pub struct TelemetryArgs {
    /// Format of the log lines on stderr: `text` for people, `json` (one
    /// object per line, with the same fields) for log shippers.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics (e.g.
    /// 127.0.0.1:9464, or 0.0.0.0:9464 in a container). Off by default.
    #[arg(long, env = "METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the
    /// event's fields.
    Json,
}

/// Sends `tracing` output to stderr in `format`, filtered by `RUST_LOG`
/// (default `info`). Stdout stays free for the final summary.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // Colours only on a terminal: logs captured to files stay plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        // The event's fields at the top level, next to `message`, as the
        // text format prints them on the line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// The names of every metric the binaries export (Prometheus conventions:
/// a `banking_` namespace, base units, `_total` on counters).
pub mod names {
    /// Counter: events handed to librdkafka (producer).
    pub const PRODUCER_SENT: &str = "banking_producer_events_sent_total";
    /// Counter: events whose delivery report says the broker has them.
    pub const PRODUCER_ACKNOWLEDGED: &str = "banking_producer_events_acknowledged_total";
    /// Counter: events that finally failed delivery.
    pub const PRODUCER_FAILED: &str = "banking_producer_events_failed_total";
    /// Counter: events committed to SQLite (consumers).
    pub const EVENTS_COMMITTED: &str = "banking_consumer_events_committed_total";
    /// Counter: rows committed to `dead_letters`.
    pub const DEAD_LETTERS: &str = "banking_consumer_dead_letters_total";
    /// Counter: messages skipped because the database already held them.
    pub const REDELIVERED: &str = "banking_consumer_redelivered_total";
    /// Histogram: duration of one batch's SQLite commit, retries included.
    pub const BATCH_COMMIT_SECONDS: &str = "banking_consumer_batch_commit_duration_seconds";
    /// Histogram: an event's creation (producer) to its SQLite commit.
    pub const END_TO_END_SECONDS: &str = "banking_consumer_end_to_end_latency_seconds";
    /// Gauge, labels `topic` and `partition`: messages between the
    /// partition's end and the group's committed offset, from librdkafka's
    /// statistics (`consumer_lag`).
    pub const CONSUMER_LAG: &str = "banking_consumer_lag_messages";
    /// Gauge: resident memory (from `metrics-process`).
    pub const RSS: &str = "process_resident_memory_bytes";
}

/// Buckets of the duration histograms, in seconds: 0.5 ms to 30 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// How often the process figures (RSS, CPU) are refreshed.
const PROCESS_EVERY: Duration = Duration::from_secs(1);

/// A gauge not updated for this long leaves the endpoint: the lag of a
/// partition that was revoked stops being reported.
const GAUGE_IDLE: Duration = Duration::from_secs(30);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether [`install_metrics`] has run: callers skip per-event work (the
/// latency histogram) when it has not.
pub fn metrics_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The exporter could not be built or installed (the address is taken,
    /// a recorder is installed already, ...).
    #[error("cannot serve metrics on {addr}: {source}")]
    Install {
        /// `--metrics-addr`.
        addr: SocketAddr,
        /// The exporter's error.
        source: BuildError,
    },
    /// The thread that refreshes the process figures did not start.
    #[error("cannot start the process metrics thread: {0}")]
    Thread(std::io::Error),
}

/// Serves Prometheus metrics on `addr` (at any path, `/metrics` included)
/// for the rest of the process: installs the global recorder, describes
/// the project's metrics, and refreshes the process figures every second
/// on a thread of its own. Call once, before the work starts.
pub fn install_metrics(addr: SocketAddr) -> Result<(), MetricsError> {
    let install = |source| MetricsError::Install { addr, source };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .map_err(install)?
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        // Histogram samples wait in a lock-free buffer until this upkeep
        // folds them into the buckets: a short period bounds that buffer.
        .upkeep_timeout(Duration::from_secs(1))
        .install()
        .map_err(install)?;
    describe();
    let collector = metrics_process::Collector::default();
    collector.describe();
    collector.collect();
    std::thread::Builder::new()
        .name("metrics-process".into())
        .spawn(move || {
            loop {
                std::thread::sleep(PROCESS_EVERY);
                collector.collect();
            }
        })
        .map_err(MetricsError::Thread)?;
    ENABLED.store(true, Ordering::Relaxed);
    tracing::info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
    Ok(())
}

/// [`install_metrics`] when `addr` is given; nothing otherwise.
pub fn install_metrics_if(addr: Option<SocketAddr>) -> Result<(), MetricsError> {
    match addr {
        Some(addr) => install_metrics(addr),
        None => Ok(()),
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::PRODUCER_SENT,
        Unit::Count,
        "Events handed to librdkafka."
    );
    describe_counter!(
        names::PRODUCER_ACKNOWLEDGED,
        Unit::Count,
        "Events the broker acknowledged (delivery report)."
    );
    describe_counter!(
        names::PRODUCER_FAILED,
        Unit::Count,
        "Events that finally failed delivery."
    );
    describe_counter!(
        names::EVENTS_COMMITTED,
        Unit::Count,
        "Events committed to the SQLite store."
    );
    describe_counter!(
        names::DEAD_LETTERS,
        Unit::Count,
        "Messages committed to the dead_letters table."
    );
    describe_counter!(
        names::REDELIVERED,
        Unit::Count,
        "Messages skipped because the database already held their offset."
    );
    describe_histogram!(
        names::BATCH_COMMIT_SECONDS,
        Unit::Seconds,
        "Duration of one batch's SQLite commit, retries included."
    );
    describe_histogram!(
        names::END_TO_END_SECONDS,
        Unit::Seconds,
        "From an event's creation by the producer to its SQLite commit."
    );
    describe_gauge!(
        names::CONSUMER_LAG,
        Unit::Count,
        "Messages between a partition's end and the group's committed offset (librdkafka statistics)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        telemetry: TelemetryArgs,
    }

    #[test]
    fn off_by_default_and_parsed_when_given() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.telemetry.log_format, LogFormat::Text);
        assert_eq!(cli.telemetry.metrics_addr, None);
        let cli = Cli::try_parse_from([
            "x",
            "--log-format",
            "json",
            "--metrics-addr",
            "127.0.0.1:9464",
        ])
        .unwrap();
        assert_eq!(cli.telemetry.log_format, LogFormat::Json);
        assert_eq!(
            cli.telemetry.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert!(Cli::try_parse_from(["x", "--metrics-addr", "9464"]).is_err());
        assert!(Cli::try_parse_from(["x", "--log-format", "xml"]).is_err());
    }
}
