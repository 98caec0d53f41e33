//! `ledger`: several consumers' databases read as one (see the library).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ledger::Ledger;

/// Reads the databases of a consumer group's instances (each with its own
/// database) as one ledger: every event counted once by its id, balances
/// corrected for events stored in two databases (which happens when a
/// partition changes hands after a crash), and the everyday queries across
/// them.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  \
ledger --db a.db --db b.db --db c.db check\n  \
ledger --db a.db --db b.db balance 10000001\n  \
ledger --db a.db --db b.db latest 10000001 --limit 50"
)]
struct Cli {
    /// A consumer database (repeat for each instance; up to 10).
    #[arg(long = "db", value_name = "PATH", required = true)]
    dbs: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per database and as one: events, distinct events, events stored
    /// twice, amount sum, dead letters and offset gaps. With --balances,
    /// every balance too.
    Check {
        /// Print every (account, currency) balance, each event once.
        #[arg(long)]
        balances: bool,
    },
    /// The balance of an account, per currency, each event counted once.
    Balance {
        /// The account id.
        account: u64,
    },
    /// The newest events of an account across the databases, each once.
    Latest {
        /// The account id.
        account: u64,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let ledger = Ledger::open(&cli.dbs).context("open the databases")?;
    match cli.command {
        Command::Check { balances } => {
            let s = ledger.summary().context("summarise")?;
            for d in &s.databases {
                println!(
                    "{}: {} events, {} dead letters, {} offset gaps",
                    d.path.display(),
                    d.events,
                    d.dead_letters,
                    d.offset_gaps
                );
            }
            println!(
                "as one: {} rows, {} distinct events, {} stored in more than one database \
                 ({} extra copies), amount sum {}",
                s.rows, s.distinct_events, s.stored_twice, s.extra_copies, s.amount_minor_sum
            );
            let missing = ledger.missing_hand_overs().context("read the hand-overs")?;
            for (path, g) in &missing {
                println!(
                    "{}: partition {} offsets {}..{} were handed over from {}, which is not \
                     among these databases",
                    path.display(),
                    g.partition,
                    g.from_offset,
                    g.to_offset,
                    g.source_database
                        .as_deref()
                        .map_or("an unnamed database".to_string(), |d| format!(
                            "database {d}"
                        ))
                );
            }
            if balances {
                for b in ledger.balances().context("balances")? {
                    println!(
                        "{} {} {} ({} events)",
                        b.account_id, b.currency, b.balance_minor, b.event_count
                    );
                }
            }
            if !missing.is_empty() {
                anyhow::bail!(
                    "{} hand-over(s) came from databases not given: the group's history is \
                     incomplete without them (add each with --db)",
                    missing.len()
                );
            }
        }
        Command::Balance { account } => {
            let balances = ledger
                .account_balances(account)
                .context("the account's balances")?;
            if balances.is_empty() {
                println!("account {account}: no balance in these databases");
            }
            for b in balances {
                println!(
                    "account {} {}: {} minor units ({} events)",
                    b.account_id, b.currency, b.balance_minor, b.event_count
                );
            }
        }
        Command::Latest { account, limit } => {
            ledger
                .ensure_query_index()
                .context("build the query index")?;
            for e in ledger
                .latest_events(account, limit)
                .context("the account's events")?
            {
                println!(
                    "{} {} {} {} {} {} {} p{}@{}",
                    e.created_at_us,
                    e.event_id,
                    e.event_type,
                    e.status,
                    e.amount_minor,
                    e.currency,
                    e.channel,
                    e.kafka_partition,
                    e.kafka_offset
                );
            }
        }
    }
    Ok(())
}
