//! `producer`: see `producer --help`, or the crate docs of `producer`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Parser;
use producer::{Args, ProducerStats};

/// mimalloc instead of glibc's malloc: the decoded events are allocated on
/// one thread and freed on another (the SQLite writer's), which glibc
/// serves through its arena locks (docs/store.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    common::init_logging(args.telemetry.log_format);
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("producer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.stats_json {
        common::stats::check_writable(path)
            .with_context(|| format!("--stats-json {} cannot be written", path.display()))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    let stats = producer::run(args, &stop)?;
    print_summary(&stats);
    if let Some(path) = &args.stats_json {
        common::stats::write_json(path, &stats)
            .with_context(|| format!("cannot write --stats-json {}", path.display()))?;
    }
    if stats.events_failed > 0 {
        let first = stats
            .errors
            .first()
            .map(String::as_str)
            .unwrap_or("unknown");
        anyhow::bail!(
            "{} of {} event(s) failed delivery (first error: {first}){}",
            stats.events_failed,
            stats.events_sent,
            failure_hint(first, args.timeout)
        );
    }
    if stats.interrupted {
        eprintln!("producer: interrupted before --count was reached");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a delivery error usually means, for the operator.
fn failure_hint(error: &str, timeout_s: u64) -> String {
    if error.contains("timed out") {
        format!(
            ". No leader, or not enough in-sync replicas (NOT_ENOUGH_REPLICAS: \
             min.insync.replicas), acknowledged these within --timeout {timeout_s} s: \
             are most of the cluster's brokers down? An event that timed out may still \
             have been written; one acknowledged never is lost"
        )
    } else if error.contains("NOT_ENOUGH_REPLICAS") || error.contains("replicas") {
        ". Fewer in-sync replicas than the topic's min.insync.replicas are up; \
         nothing was acknowledged that could be lost"
            .to_string()
    } else {
        String::new()
    }
}

fn print_summary(s: &ProducerStats) {
    println!(
        "{} {} event(s) to {} on {} in {:.2}s: {:.0} events/s",
        if s.mode == common::stats::ProducerMode::Raw {
            "raw ceiling: sent"
        } else {
            "acknowledged"
        },
        s.events_acknowledged,
        s.topic,
        s.brokers,
        s.wall_seconds,
        s.events_per_second
    );
    println!(
        "events_acknowledged={} events_failed={} amount_minor_sum={} id_checksum={} ids={}..={}",
        s.events_acknowledged,
        s.events_failed,
        s.amount_minor_sum,
        s.id_checksum,
        s.first_event_id,
        s.last_event_id
    );
    println!(
        "cpu_seconds={:.2} max_rss_mb={:.1}",
        s.cpu_seconds,
        s.max_rss_bytes as f64 / 1e6
    );
}
