//! `chaos`: the fault suite's command line. See `chaos --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chaos::{BrokerKind, Config, Scenario, parse_models, run};
use clap::Parser;
use testkit::{Bins, kafka};

/// Runs the project's binaries against Apache Kafka (one broker for the
/// run, started here from the jars scripts/setup.sh installs; a private one
/// for the scenarios that stop it or start it late; a cluster of three
/// for leader-kill, rolling-restart, scale-out, minority-loss and
/// slow-revoke) while faults are injected (kill -9, SIGTERM, a second
/// instance, broker outages, nodes lost, bad messages, a locked or full
/// database, bad command lines) and checks that
/// every consumer's database holds exactly the produced events: nothing
/// lost, nothing duplicated, every balance right. With `--broker nisshi`
/// the scenarios that do not stop the broker run on Nisshi, the embedded
/// Rust broker, instead. Prints one line of figures per scenario and
/// consumer; exits 1 if any scenario failed.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Scenarios (in the default order): bad-input, full-run, kill9, sigterm, \
two-instances, bad-messages, no-broker, db-lock, disk-full, outage, offset-gaps, \
start-positions, leader-kill, rolling-restart, scale-out, minority-loss, slow-revoke.\n\nExamples:\n  \
scripts/chaos.sh --events 1000000 --scenarios kill9,bad-messages\n  \
scripts/chaos.sh --broker nisshi --events 100000 --scenarios kill9,sigterm"
)]
struct Cli {
    /// Good events per scenario.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=50_000_000))]
    events: u64,
    /// Comma-separated scenarios, or `all`.
    #[arg(long, default_value = "all")]
    scenarios: String,
    /// Comma-separated consumers: pull, push.
    #[arg(long, default_value = "pull,push")]
    consumers: String,
    /// The broker: `kafka` (Apache Kafka, one JVM for the run), `nisshi`
    /// (the embedded Rust broker, where Java is absent: a new one in memory
    /// per scenario, and for outage a private one on SQLite, whose log
    /// survives its restart), or `mock` (librdkafka's mock cluster, a new
    /// one per scenario; proves nothing alone). no-broker, offset-gaps and
    /// start-positions always run on a private Apache Kafka, and outage does unless
    /// `nisshi`.
    #[arg(long, default_value = "kafka", value_parser = BrokerKind::parse)]
    broker: BrokerKind,
    /// Working directory: databases, logs, stats files, the brokers' data
    /// and logs. Its scenario subdirectories are replaced on each run.
    #[arg(long, default_value = ".run/chaos")]
    out: PathBuf,
    /// Directory with the producer, consumer-pull and consumer-push
    /// binaries (default: the directory of this binary).
    #[arg(long, env = "BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Seed of the events and of the random moments.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Accounts the events are spread over.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    accounts: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=64))]
    partitions: i32,
    /// kill -9 per consumer in the kill9 scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    kills: u32,
    /// Seconds the broker is down in the outage scenario.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    outage_secs: u64,
    /// Seconds the consumers run before the broker appears (no-broker).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    no_broker_secs: u64,
    /// Seconds the database is locked in db-lock.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    lock_secs: u64,
    /// Largest accepted loss of consumer throughput with 1% bad messages,
    /// as a fraction of the clean run's.
    #[arg(long, default_value_t = 0.2)]
    throughput_tolerance: f64,
    /// Clean and bad runs per consumer in bad-messages (alternating); the
    /// best throughput of each kind is compared.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    throughput_rounds: u32,
    /// Size of the oversized bad messages in bytes (bad-messages).
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(256..=900_000))]
    oversized_bytes: u64,
    /// --batch-size passed to the consumers (default: theirs).
    #[arg(long)]
    batch_size: Option<u64>,
    /// Events per second of the live parts of the cluster scenarios
    /// (leader-kill, rolling-restart, scale-out); lower when there are too
    /// few events for the scenario to last.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    live_rate: u64,
    /// Apache Kafka's installation (its `libs/` jars), as scripts/setup.sh
    /// makes it (default: ~/.cache/banking-pipeline/kafka-<version>).
    #[arg(long, env = "KAFKA_HOME_DIR")]
    kafka_home: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<bool> {
    let bin_dir = match cli.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    if let Some(home) = &cli.kafka_home {
        kafka::set_home(home);
    }
    let shared = cli.out.join("kafka");
    if shared.exists() {
        std::fs::remove_dir_all(&shared)?;
    }
    kafka::set_shared_dir(&shared);
    let mut cfg = Config::new(cli.events, &cli.out, Bins::in_dir(&bin_dir)?);
    cfg.scenarios = Scenario::parse_list(&cli.scenarios)?;
    cfg.consumers = parse_models(&cli.consumers)?;
    cfg.broker = cli.broker;
    cfg.seed = cli.seed;
    cfg.accounts = cli.accounts;
    cfg.partitions = cli.partitions;
    cfg.kills = cli.kills;
    cfg.outage_secs = cli.outage_secs;
    cfg.no_broker_secs = cli.no_broker_secs;
    cfg.lock_secs = cli.lock_secs;
    cfg.throughput_tolerance = cli.throughput_tolerance;
    cfg.throughput_rounds = cli.throughput_rounds;
    cfg.oversized_bytes = cli.oversized_bytes as usize;
    cfg.batch_size = cli.batch_size;
    cfg.live_rate = cli.live_rate;
    println!(
        "chaos: {} events per scenario, broker {}, consumers {}, scenarios {}, out {}",
        cfg.events,
        cfg.broker.name(),
        cfg.consumers
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
        cfg.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        cfg.out.display()
    );
    let outcomes = run(&cfg)?;
    let failed = outcomes.iter().filter(|o| !o.pass).count();
    let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
    println!(
        "chaos: {} passed, {failed} failed, {skipped} skipped",
        outcomes.len() - failed - skipped
    );
    Ok(failed == 0)
}
