//! The two everyday questions against a consumer's database: the balance of
//! one account, and its 50 latest events.
//!
//! ```text
//! cargo run --release -p store --example query -- pull.db 10000001 [LIMIT]
//! ```
//!
//! The first run on a database builds the query index
//! `events(account_id, created_at_us)` (about 20 s for 10M events; the
//! consumers do not maintain it during loads, which keeps them fast). After
//! that each question takes about a millisecond.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use store::Store;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(account)) = (args.next(), args.next()) else {
        eprintln!("usage: query DATABASE ACCOUNT_ID [LIMIT]   e.g. query pull.db 10000001");
        return ExitCode::from(2);
    };
    let db = PathBuf::from(db);
    let Ok(account) = account.parse::<u64>() else {
        eprintln!("query: ACCOUNT_ID must be a number, got {account:?}");
        return ExitCode::from(2);
    };
    let limit = match args.next().map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if l > 0 => l,
        Some(_) => {
            eprintln!("query: LIMIT must be a positive number");
            return ExitCode::from(2);
        }
    };
    // Store::open would create a missing file; a query must not.
    if !db.is_file() {
        eprintln!("query: {} does not exist", db.display());
        return ExitCode::FAILURE;
    }
    match run(&db, account, limit) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("query: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(db: &std::path::Path, account: u64, limit: usize) -> Result<(), store::StoreError> {
    let store = Store::open(db)?;
    store.ensure_query_index()?;

    let started = Instant::now();
    let balances = store.account_balances(account)?;
    let balance_ms = started.elapsed().as_secs_f64() * 1e3;
    println!("account {account}: balance ({balance_ms:.3} ms)");
    if balances.is_empty() {
        println!("  no balance: no completed event touched this account");
    }
    for b in &balances {
        println!(
            "  {:>16} {}  ({} events)",
            format_minor(b.balance_minor),
            b.currency,
            b.event_count
        );
    }

    let started = Instant::now();
    let events = store.latest_events(account, limit)?;
    let events_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "account {account}: {} latest events ({events_ms:.3} ms)",
        events.len()
    );
    for e in &events {
        let counterparty = e
            .counterparty_account_id
            .map(|c| format!(" -> {c}"))
            .unwrap_or_default();
        println!(
            "  {:>20} {:<11} {:>14} {} {:<9} {:<6} {} {}{}",
            e.event_id,
            e.event_type,
            format_minor(e.amount_minor),
            e.currency,
            e.status,
            e.channel,
            e.country,
            e.transaction_ref,
            counterparty
        );
    }
    Ok(())
}

/// Minor units as a decimal amount with two places (all the generator's
/// currencies have two).
fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}
