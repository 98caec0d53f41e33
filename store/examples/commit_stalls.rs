//! How long the store's commits take at a live cadence on a given disk,
//! with nothing else running: the floor under the live phases' latency.
//!
//! Commits `EVENTS` small deposits every `EVERY_MS` (default 100 every 5 ms,
//! i.e. 20,000 events/s, the size of a live batch at that rate) for
//! `SECONDS` into a new database in `DIR`, and prints the commit times'
//! percentiles and every commit that took over 20 ms. `CHECKPOINTS` is
//! `background` (the store's default) or `inline` (SQLite's automatic
//! checkpoint inside the commit that fills 64 MiB of WAL).
//!
//! ```text
//! cargo run --release -p store --example commit_stalls -- DIR [SECONDS [EVENTS [EVERY_MS [CHECKPOINTS]]]]
//! cargo run --release -p store --example commit_stalls -- /dev/shm 20    # the same in memory
//! cargo run --release -p store --example commit_stalls -- . 20 100 5 inline
//! ```

use std::time::{Duration, Instant, SystemTime};

use proto::BankingEvent;
use store::{Batch, Store, StoreOptions};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: commit_stalls DIR [SECONDS [EVENTS [EVERY_MS [background|inline]]]]");
        std::process::exit(2);
    };
    let seconds: u64 = arg(&args, 1, 20);
    let per_commit: u64 = arg(&args, 2, 100);
    let every = Duration::from_millis(arg(&args, 3, 5));
    let checkpoints = args.get(4).map_or("background", String::as_str);
    let opts = StoreOptions {
        background_checkpoints: match checkpoints {
            "background" => true,
            "inline" => false,
            other => {
                eprintln!("CHECKPOINTS is background or inline, not {other:?}");
                std::process::exit(2);
            }
        },
        ..StoreOptions::default()
    };
    let scratch = tempfile::tempdir_in(dir)?;
    let mut store = Store::open_with(&scratch.path().join("stalls.db"), &opts)?;

    let mut batch = Batch::new("stalls");
    let mut took_us: Vec<u64> = Vec::new();
    let mut slow: Vec<(f64, f64)> = Vec::new();
    let (mut id, mut offset) = (1u64, 0i64);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        batch.clear();
        for _ in 0..per_commit {
            let event = BankingEvent {
                event_id: id,
                event_type: 1,
                account_id: 1 + id % 10_000,
                amount_minor: 100,
                currency: "EUR".into(),
                channel: 1,
                status: 1,
                country: "DE".into(),
                transaction_ref: format!("TX{id:016X}"),
                counterparty_account_id: 0,
                created_at_us: 1_704_067_200_000_000,
            };
            batch.push_event(0, offset, event, Vec::new());
            id += 1;
            offset += 1;
        }
        let t = Instant::now();
        store.commit(&batch)?;
        let took = t.elapsed();
        took_us.push(took.as_micros() as u64);
        if took > Duration::from_millis(20) {
            let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
            slow.push((at.as_secs_f64(), took.as_secs_f64() * 1e3));
        }
        std::thread::sleep(every.saturating_sub(took));
    }
    took_us.sort_unstable();
    let q = |x: f64| took_us[((took_us.len() - 1) as f64 * x) as usize] as f64 / 1e3;
    println!(
        "{} commits of {per_commit} events every {} ms into {dir}, {checkpoints} checkpoints: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms; {} over 20 ms",
        took_us.len(),
        every.as_millis(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        slow.len()
    );
    for (at, ms) in slow {
        println!("  at {at:.3} (unix s): {ms:.1} ms");
    }
    Ok(())
}
