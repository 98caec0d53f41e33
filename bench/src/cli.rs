//! The `bench` command line, behind `scripts/bench.sh` (which builds the
//! binaries and gets a broker).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use common::parse_property;
use serde::Serialize;

use crate::machine::BrokerInfo;
use crate::phase::Env;
use crate::run::utc;
use crate::settings::Settings;
use crate::{ceilings, queries, run, verify};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version,
    about = "Push-vs-pull benchmark of the banking pipeline, usually run through scripts/bench.sh \
(which builds the binaries and provides a broker). Method: docs/benchmark.md.",
    // scripts/bench.sh gives --brokers and friends first; the user's own
    // flags, after them, win.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole benchmark against a running broker: backlog, ceilings,
    /// live rates, verification, report.md and results.json.
    Run(Box<RunArgs>),
    /// Test each claim made about push against pull on one broker, each
    /// phase verified, and write claims.md with a verdict per claim.
    Claims(Box<crate::claims::ClaimsArgs>),
    /// Redraw claims.md and its pictures from an earlier claims run's
    /// claims.json (no broker needed).
    ClaimsReport {
        /// The claims run's output directory.
        dir: PathBuf,
    },
    /// Verify the databases of an earlier run against its producer stats:
    /// prints PASS/FAIL per check, exits 1 on any FAIL.
    Verify {
        /// The run's output directory.
        dir: PathBuf,
    },
    /// Verify one phase directory and write the checks as JSON.
    #[command(hide = true)]
    CheckPhase(CheckPhaseArgs),
    /// Redraw report.md, results.json and the pictures of an earlier run
    /// from its files (no broker needed).
    Report {
        /// The run's output directory.
        dir: PathBuf,
    },
    /// Ceiling: read and decode a topic with a BaseConsumer, storing nothing.
    CeilingConsume(ConsumeArgs),
    /// Ceiling: commit the generator's events into a scratch store, no Kafka.
    CeilingStore(StoreArgs),
    /// Ceiling: insert the same events as bare rows of one table (the
    /// store's columns and pragmas, nothing else): the store design's limit.
    CeilingBare(StoreArgs),
    /// Time "the 50 latest events of one account" and "the balance of one
    /// account" on a database (builds the query index first).
    Queries(QueryArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    #[command(flatten)]
    pub settings: Settings,

    /// Output directory (new or empty); default <RESULTS>/[claims-]<UTC time>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Where the default --out directory is made.
    #[arg(
        long,
        value_name = "RESULTS",
        env = "BENCH_RESULTS",
        default_value = "bench-results"
    )]
    pub results: PathBuf,

    /// scripts/broker.sh's run directory: the broker's kind, version, heap
    /// and process id (sampled in each step).
    #[arg(long, value_name = "DIR")]
    pub broker_run_dir: Option<PathBuf>,

    /// Directory of the producer, consumer-pull and consumer-push binaries
    /// (default: this binary's directory).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// The command line to record in the report.
    #[arg(long, hide = true)]
    pub command_line: Option<String>,

    #[arg(long, hide = true)]
    pub dry_run: bool,
}

pub struct Start {
    pub env: Env,
    pub broker: BrokerInfo,
    pub command: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub iso: String,
}

impl Common {
    /// Checks the settings; then, unless --dry-run, creates the empty
    /// output directory; the run's id is `<id>.<UTC time>.<process id>`.
    pub fn start(&self, prefix: &str, id: &str) -> anyhow::Result<Option<Start>> {
        self.settings.check()?;
        if self.dry_run {
            return Ok(None);
        }
        let (iso, compact) = utc(SystemTime::now());
        let default = || self.results.join(format!("{prefix}{compact}"));
        let out = self.out.clone().unwrap_or_else(default);
        if out.exists() && std::fs::read_dir(&out)?.next().is_some() {
            bail!(
                "{} exists and is not empty; give a new --out directory",
                out.display()
            );
        }
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let exe = std::env::current_exe().context("cannot locate the bench binary")?;
        let bin_dir = self
            .bin_dir
            .clone()
            .or_else(|| exe.parent().map(PathBuf::from));
        let broker =
            BrokerInfo::from_run_dir(self.broker_run_dir.as_deref(), &self.settings.brokers);
        let args = || std::env::args().collect::<Vec<_>>().join(" ");
        Ok(Some(Start {
            env: Env {
                settings: self.settings.clone(),
                bins: testkit::Bins::in_dir(&bin_dir.unwrap_or_default())?,
                out,
                run_id: format!("{id}.{compact}.{}", std::process::id()),
                broker_pid: broker.pid,
            },
            broker,
            command: self.command_line.clone().unwrap_or_else(args),
            iso,
        }))
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,

    /// Events in the backlog phase.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,

    /// Live-phase rates in events/s, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2000,20000,100000")]
    pub rates: Vec<u64>,

    /// Seconds the producer emits at each live rate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,

    /// Seconds the consumers get at most to be assigned their partitions
    /// before the live producer starts (it starts once both are).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,

    /// Skip the backlog phase.
    #[arg(long)]
    pub skip_backlog: bool,

    /// Skip the two ceilings and the producer's raw ceiling.
    #[arg(long)]
    pub skip_ceilings: bool,

    /// After the other phases, find each model's saturation point: live
    /// steps at offered rates doubling from --saturation-start until both
    /// consumers fall behind, the producer cannot offer the rate, or past
    /// --saturation-max (~30 s per step).
    #[arg(long)]
    pub saturation: bool,

    /// First offered rate of the saturation sweep, events/s.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub saturation_start: u64,

    /// Highest offered rate the sweep tries, events/s.
    #[arg(long, default_value_t = 2_560_000)]
    pub saturation_max: u64,

    /// The sweep's latency bound: a p99 above it no longer sustains a rate.
    #[arg(long, default_value_t = crate::results::DEFAULT_SATURATION_P99_MS)]
    pub saturation_p99_ms: f64,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct CheckPhaseArgs {
    /// The phase directory (with producer.json, pull.db, push.db).
    pub dir: PathBuf,
    /// Where to write the checks.
    #[arg(long)]
    pub json: PathBuf,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// Topic to read from the beginning.
    #[arg(long)]
    pub topic: String,
    /// Consumer group (use a fresh one).
    #[arg(long)]
    pub group: String,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: u64,
    /// librdkafka property key=value, repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
    /// Stop after this many seconds without a message.
    #[arg(long, default_value_t = 10)]
    pub idle: u64,
    /// Write the figures here.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct StoreArgs {
    /// Scratch database (must not exist, unless --skip).
    #[arg(long)]
    pub db: PathBuf,
    /// Events to commit.
    #[arg(long)]
    pub events: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Generator accounts.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
    /// First event id.
    #[arg(long, default_value_t = 1)]
    pub first_id: u64,
    /// Events per transaction (the consumers' default).
    #[arg(long, default_value_t = 50_000)]
    pub batch_size: u64,
    /// Partitions to spread the offsets over.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Continue the --db an earlier run filled with the first N events.
    #[arg(long, default_value_t = 0)]
    pub skip: u64,
    /// Store each event's raw bytes too.
    #[arg(long)]
    pub keep_event_payloads: bool,
    /// Write the figures here.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct QueryArgs {
    /// The database.
    #[arg(long)]
    pub db: PathBuf,
    /// Accounts the events were generated over.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
    /// Accounts to query.
    #[arg(long, default_value_t = 200)]
    pub samples: u64,
    /// Write the figures here.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    common::init_tracing();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_stats<T: Serialize>(path: &Option<PathBuf>, value: &T) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    if let Some(p) = path {
        common::stats::write_json(p, value)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exit_code(pass: bool) -> ExitCode {
    ExitCode::from(u8::from(!pass))
}

fn print_checks(checks: &[verify::Check]) -> &'static str {
    for c in checks {
        println!("{}", c.line());
    }
    verify::verdict(checks)
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Claims(args) => crate::claims::run(&args),
        Command::ClaimsReport { dir } => {
            println!("{}", crate::claims::write_report(&dir)?);
            println!("report: {}", dir.join("claims.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { dir } => {
            let checks = verify::check_run(&dir)?;
            let verdict = print_checks(&checks);
            let failed = checks.iter().filter(|c| !c.pass).count();
            println!(
                "verification {verdict}: {} check(s), {failed} failed ({})",
                checks.len(),
                dir.display()
            );
            Ok(exit_code(verdict == "PASS"))
        }
        Command::CheckPhase(CheckPhaseArgs { dir, json }) => {
            let checks = verify::check_phase(&dir)?;
            print_checks(&checks);
            common::stats::write_json(&json, &checks)
                .with_context(|| format!("cannot write {}", json.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { dir } => {
            let r = run::write_report(&dir)?;
            println!("{}", crate::report::table(&r));
            println!("report: {}", dir.join("report.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::CeilingConsume(a) => {
            let stats = ceilings::raw_consume(&a)?;
            write_stats(&a.stats_json, &stats)?;
            if stats.events >= a.count {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "bench ceiling-consume: read {} of {} messages ({})",
                stats.events, a.count, stats.exit_reason
            );
            Ok(ExitCode::FAILURE)
        }
        Command::CeilingStore(a) => {
            write_stats(&a.stats_json, &ceilings::insert_ceiling(&a, false)?)
        }
        Command::CeilingBare(a) => write_stats(&a.stats_json, &ceilings::insert_ceiling(&a, true)?),
        Command::Queries(a) => write_stats(
            &a.stats_json,
            &queries::time_queries(&a.db, a.accounts, a.samples)?,
        ),
    }
}
