//! How fast the store takes events: N generated events (arg 1, default
//! 1,000,000) committed in batches of B (arg 2, default 20,000) into a new
//! database in a temporary directory (arg 3: another directory, to measure a
//! different disk).
//!
//! Only `Store::commit` is timed for the headline rate; generating and
//! encoding the events is reported separately, so the figure is the
//! writer's ceiling, not the generator's.
//!
//! ```text
//! cargo run --release -p store --example insert_rate -- 1000000 20000
//! ```

use std::time::{Duration, Instant};

use prost::Message;
use proto::{BankingEvent, IdChecksum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::{Batch, Store};

const ACCOUNTS: u64 = 100_000;
const PARTITIONS: i32 = 8;

fn generate(rng: &mut StdRng, id: u64) -> BankingEvent {
    let event_type = [1, 1, 1, 1, 2, 3, 4, 5, 6][rng.random_range(0..9)];
    let status = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3][rng.random_range(0..10)];
    let account_id = rng.random_range(1..=ACCOUNTS);
    let counterparty_account_id = if event_type == 4 {
        (account_id % ACCOUNTS) + 1
    } else {
        0
    };
    BankingEvent {
        event_id: id,
        event_type,
        account_id,
        amount_minor: rng.random_range(1..=500_000),
        currency: ["EUR", "EUR", "EUR", "USD", "GBP"][rng.random_range(0..5)].into(),
        channel: rng.random_range(1..=5),
        status,
        country: ["DE", "FR", "NL", "ES", "IT"][rng.random_range(0..5)].into(),
        transaction_ref: format!("TX{id:016X}"),
        counterparty_account_id,
        created_at_us: 1_704_067_200_000_000 + id as i64 * 100,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let batch_size: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = match args.next() {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let path = dir.path().join("insert_rate.db");

    let mut store = Store::open(&path)?;
    let mut rng = StdRng::seed_from_u64(1);
    let mut batch = Batch::with_capacity("banking.events", batch_size);
    let mut offsets = [0i64; PARTITIONS as usize];
    let mut expected = IdChecksum::default();
    let mut in_commit = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    let wall = Instant::now();

    let mut id = 0u64;
    while id < n {
        batch.clear();
        while batch.len() < batch_size && id < n {
            id += 1;
            let event = generate(&mut rng, id);
            let partition = (event.account_id % PARTITIONS as u64) as i32;
            let payload = event.encode_to_vec();
            batch.push_event(partition, offsets[partition as usize], event, payload);
            offsets[partition as usize] += 1;
            expected.add(id);
        }
        let started = Instant::now();
        store.commit(&batch)?;
        let took = started.elapsed();
        in_commit += took;
        slowest = slowest.max(took);
    }
    let wall = wall.elapsed();

    let index = Instant::now();
    store.ensure_query_index()?;
    let index = index.elapsed();

    let summary = store.summary()?;
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum();

    println!("events           {n}");
    println!("batch size       {batch_size}");
    println!(
        "commit only      {:.0} rows/s ({:.2} s in commit, slowest batch {:.0} ms)",
        n as f64 / in_commit.as_secs_f64(),
        in_commit.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );
    println!(
        "with generation  {:.0} rows/s ({:.2} s wall)",
        n as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "query index      built in {:.2} s after the load",
        index.as_secs_f64()
    );
    println!(
        "database size    {:.0} MiB (with index)",
        size as f64 / (1 << 20) as f64
    );
    let ok = summary.events == n && summary.id_checksum == expected;
    println!(
        "verification     {} events, checksum {} ({})",
        summary.events,
        summary.id_checksum.hex(),
        if ok { "matches" } else { "MISMATCH" }
    );
    if !ok {
        return Err("stored events do not match the generated ones".into());
    }
    Ok(())
}
