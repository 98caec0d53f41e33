//! The experiments behind the store's layout (docs/store.md, "What was
//! tried"): each variant inserts the same generated events, in the same
//! arrival order, into a fresh database with the store's pragmas and
//! transaction size, and only the inserts are timed. Variants run in turn,
//! `--rounds` times, so that the shared machine's drift weighs on all of
//! them alike; compare ratios within one run, never absolute figures.
//!
//! ```text
//! cargo run --release -p bench --example store_layouts -- --events 2000000 \
//!     --variants v2,multi,intenum,nopayload,pk --order kafka
//! ```
//!
//! Orders: `generated` (ids ascending, as the producer made them), `kafka`
//! (per partition in chunks of `--chunk` events taken round-robin, as a
//! consumer receives them from one Apache Kafka broker: each fetch answers
//! up to 1 MiB per partition, ~8,000 events), `serial` (one partition's
//! whole share after another within windows of `--window` events, as an
//! engine that fills a fetch from its first partition would deliver them),
//! `kafka-sorted` (`kafka`, then each transaction's events sorted by id, as
//! the store writes them).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message as _;
use proto::BankingEvent;
use rusqlite::{Connection, params};

struct Opts {
    events: u64,
    batch: usize,
    partitions: u64,
    accounts: u64,
    order: String,
    chunk: usize,
    window: usize,
    rounds: u32,
    variants: Vec<String>,
    dir: std::path::PathBuf,
    page_size: u32,
    cache_mib: u32,
}

fn parse() -> Opts {
    let mut o = Opts {
        events: 2_000_000,
        batch: 50_000,
        partitions: 6,
        accounts: 10_000,
        order: "kafka".into(),
        chunk: 8_000,
        window: 1_000_000,
        rounds: 1,
        variants: vec!["v2".into(), "multi".into()],
        dir: std::env::temp_dir(),
        page_size: 4096,
        cache_mib: 64,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--events" => o.events = v.parse().unwrap(),
            "--batch" => o.batch = v.parse().unwrap(),
            "--partitions" => o.partitions = v.parse().unwrap(),
            "--accounts" => o.accounts = v.parse().unwrap(),
            "--order" => o.order = v.clone(),
            "--chunk" => o.chunk = v.parse().unwrap(),
            "--window" => o.window = v.parse().unwrap(),
            "--rounds" => o.rounds = v.parse().unwrap(),
            "--variants" => o.variants = v.split(',').map(String::from).collect(),
            "--dir" => o.dir = v.into(),
            "--page-size" => o.page_size = v.parse().unwrap(),
            "--cache-mib" => o.cache_mib = v.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

struct Ev {
    e: BankingEvent,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

fn events(o: &Opts) -> Vec<Ev> {
    let mut g = producer::Generator::new(42, o.accounts, 1).unwrap();
    let mut per: Vec<Vec<Ev>> = (0..o.partitions).map(|_| Vec::new()).collect();
    for i in 0..o.events {
        let e = g.next_event(1_764_000_000_000_000 + i as i64);
        let p = (e.account_id % o.partitions) as usize;
        let payload = e.encode_to_vec();
        let offset = per[p].len() as i64;
        per[p].push(Ev {
            e,
            partition: p as i32,
            offset,
            payload,
        });
    }
    match o.order.as_str() {
        "generated" => {
            let mut all: Vec<Ev> = per.into_iter().flatten().collect();
            all.sort_by_key(|e| e.e.event_id);
            all
        }
        "kafka" | "serial" | "kafka-sorted" => {
            let chunk = if o.order != "serial" {
                o.chunk
            } else {
                o.window / o.partitions as usize
            };
            let mut its: Vec<_> = per.into_iter().map(|v| v.into_iter()).collect();
            let mut out = Vec::with_capacity(o.events as usize);
            loop {
                let mut any = false;
                for it in its.iter_mut() {
                    for e in it.by_ref().take(chunk) {
                        out.push(e);
                        any = true;
                    }
                }
                if !any {
                    break;
                }
            }
            if o.order == "kafka-sorted" {
                for batch in out.chunks_mut(o.batch) {
                    batch.sort_unstable_by_key(|e| e.e.event_id);
                }
            }
            out
        }
        other => panic!("unknown order {other}"),
    }
}

/// What a variant stores and how.
#[derive(Clone, Copy)]
struct Layout {
    int_enums: bool,
    payload: bool,
    /// 0: rowid + UNIQUE(event_id); 1: event_id INTEGER PRIMARY KEY;
    /// 2: WITHOUT ROWID, event_id PRIMARY KEY; 3: rowid only (bare).
    key: u8,
    /// Rows per INSERT statement.
    rows: usize,
    balances: bool,
    multi_balance: bool,
    page_size: u32,
    /// wal_autocheckpoint in pages (SQLite's default 1000).
    checkpoint: u32,
    mmap: bool,
}

fn layout(name: &str, o: &Opts) -> Layout {
    let base = Layout {
        int_enums: false,
        payload: true,
        key: 0,
        rows: 1,
        balances: true,
        multi_balance: false,
        page_size: o.page_size,
        checkpoint: 1000,
        mmap: false,
    };
    let mut l = base;
    for part in name.split('+') {
        match part {
            "v2" => {}
            "multi" => l.rows = 64,
            "multi16" => l.rows = 16,
            "multi256" => l.rows = 256,
            "intenum" => l.int_enums = true,
            "nopayload" => l.payload = false,
            "pk" => l.key = 1,
            "wor" => l.key = 2,
            "bare" => {
                l.key = 3;
                l.balances = false;
            }
            "nobal" => l.balances = false,
            "mbal" => l.multi_balance = true,
            "p8k" => l.page_size = 8192,
            "p16k" => l.page_size = 16384,
            "p64k" => l.page_size = 65536,
            "ck4k" => l.checkpoint = 4000,
            "ck16k" => l.checkpoint = 16000,
            "ck64k" => l.checkpoint = 64000,
            "mmap" => l.mmap = true,
            other => panic!("unknown variant part {other}"),
        }
    }
    l
}

fn schema(l: &Layout) -> String {
    let t = if l.int_enums { "INTEGER" } else { "TEXT" };
    let (id, eid, tail) = match l.key {
        0 => (
            "id INTEGER PRIMARY KEY,",
            "event_id INTEGER NOT NULL UNIQUE,",
            "STRICT",
        ),
        1 => ("", "event_id INTEGER PRIMARY KEY,", "STRICT"),
        2 => ("", "event_id INTEGER PRIMARY KEY,", "STRICT, WITHOUT ROWID"),
        _ => (
            "id INTEGER PRIMARY KEY,",
            "event_id INTEGER NOT NULL,",
            "STRICT",
        ),
    };
    let payload = if l.payload {
        ", payload BLOB NOT NULL"
    } else {
        ""
    };
    format!(
        "CREATE TABLE events ({id} {eid} event_type {t} NOT NULL, account_id INTEGER NOT NULL, \
         amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, channel {t} NOT NULL, \
         status {t} NOT NULL, country TEXT NOT NULL, transaction_ref TEXT NOT NULL, \
         counterparty_account_id INTEGER, created_at_us INTEGER NOT NULL, \
         committed_at_us INTEGER NOT NULL, kafka_partition INTEGER NOT NULL, \
         kafka_offset INTEGER NOT NULL{payload}) {tail};
         CREATE TABLE account_balances (account_id INTEGER NOT NULL, currency TEXT NOT NULL, \
         balance_minor INTEGER NOT NULL, event_count INTEGER NOT NULL, \
         PRIMARY KEY (account_id, currency)) STRICT, WITHOUT ROWID;"
    )
}

fn insert_sql(l: &Layout, rows: usize) -> String {
    let cols = if l.payload { 15 } else { 14 };
    let payload = if l.payload { ", payload" } else { "" };
    let mut s = format!(
        "INSERT INTO events (event_id, event_type, account_id, amount_minor, currency, channel, \
         status, country, transaction_ref, counterparty_account_id, created_at_us, \
         committed_at_us, kafka_partition, kafka_offset{payload}) VALUES "
    );
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('?');
        }
        s.push(')');
    }
    s
}

fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    l: &Layout,
    at: usize,
    ev: &Ev,
    now: i64,
) -> rusqlite::Result<usize> {
    let e = &ev.e;
    let mut i = at;
    let mut b = |stmt: &mut rusqlite::Statement<'_>, v: &dyn rusqlite::ToSql| {
        i += 1;
        stmt.raw_bind_parameter(i, v)
    };
    b(stmt, &(e.event_id as i64))?;
    if l.int_enums {
        b(stmt, &e.event_type)?;
    } else {
        b(stmt, &name(e.event_type))?;
    }
    b(stmt, &(e.account_id as i64))?;
    b(stmt, &e.amount_minor)?;
    b(stmt, &e.currency)?;
    if l.int_enums {
        b(stmt, &e.channel)?;
        b(stmt, &e.status)?;
    } else {
        b(stmt, &name(e.channel))?;
        b(stmt, &name(e.status))?;
    }
    b(stmt, &e.country)?;
    b(stmt, &e.transaction_ref)?;
    let cp = (e.counterparty_account_id != 0).then_some(e.counterparty_account_id as i64);
    b(stmt, &cp)?;
    b(stmt, &e.created_at_us)?;
    b(stmt, &now)?;
    b(stmt, &ev.partition)?;
    b(stmt, &ev.offset)?;
    if l.payload {
        b(stmt, &ev.payload)?;
    }
    Ok(i)
}

fn name(v: i32) -> &'static str {
    [
        "UNSPECIFIED",
        "TRANSACTION",
        "DEPOSIT",
        "WITHDRAWAL",
        "TRANSFER",
        "PAYMENT",
        "FEE",
    ][v as usize % 7]
}

/// CPU time of the calling thread: on a shared machine the wall time of a
/// CPU-bound loop measures the neighbours as much as the loop.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn run(o: &Opts, l: &Layout, evs: &[Ev], db: &Path) -> (Duration, Duration, u64) {
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", db.display()));
    }
    let mut c = Connection::open(db).unwrap();
    c.pragma_update(None, "page_size", l.page_size).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.pragma_update(None, "cache_size", -(i64::from(o.cache_mib) * 1024))
        .unwrap();
    c.pragma_update(None, "temp_store", "MEMORY").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", l.checkpoint)
        .unwrap();
    if l.mmap {
        c.pragma_update(None, "mmap_size", 1i64 << 34).unwrap();
    }
    c.execute_batch(&schema(l)).unwrap();
    let one = insert_sql(l, 1);
    let many = insert_sql(l, l.rows);
    let mut total = Duration::ZERO;
    let cpu0 = thread_cpu();
    for batch in evs.chunks(o.batch) {
        let t = Instant::now();
        let tx = c.transaction().unwrap();
        let now = 1;
        {
            let mut chunks = batch.chunks_exact(l.rows);
            if l.rows > 1 {
                let mut stmt = tx.prepare_cached(&many).unwrap();
                for ch in chunks.by_ref() {
                    let mut at = 0;
                    for ev in ch {
                        at = bind(&mut stmt, l, at, ev, now).unwrap();
                    }
                    assert_eq!(stmt.raw_execute().unwrap(), l.rows);
                }
            }
            let rest = if l.rows > 1 {
                chunks.remainder()
            } else {
                batch
            };
            let mut stmt = tx.prepare_cached(&one).unwrap();
            for ev in rest {
                bind(&mut stmt, l, 0, ev, now).unwrap();
                stmt.raw_execute().unwrap();
            }
        }
        if l.balances {
            let mut changes: HashMap<(u64, &str), (i64, u64)> = HashMap::new();
            for ev in batch {
                for ch in ev.e.balance_changes() {
                    let s = changes.entry((ch.account_id, ch.currency)).or_default();
                    s.0 += ch.delta_minor;
                    s.1 += 1;
                }
            }
            let changes: BTreeMap<_, _> = changes.into_iter().collect();
            let changes: Vec<_> = changes.into_iter().collect();
            let upsert = "INSERT INTO account_balances (account_id, currency, balance_minor, event_count) VALUES ";
            let tail = " ON CONFLICT (account_id, currency) DO UPDATE SET balance_minor = balance_minor + excluded.balance_minor, event_count = event_count + excluded.event_count";
            let k = if l.multi_balance { 64 } else { 1 };
            let sql = |n: usize| format!("{upsert}{}{tail}", vec!["(?,?,?,?)"; n].join(","));
            let mut chunks = changes.chunks_exact(k);
            let mut stmt = tx.prepare_cached(&sql(k)).unwrap();
            for ch in chunks.by_ref() {
                for (j, ((a, cur), (d, n))) in ch.iter().enumerate() {
                    stmt.raw_bind_parameter(j * 4 + 1, *a as i64).unwrap();
                    stmt.raw_bind_parameter(j * 4 + 2, *cur).unwrap();
                    stmt.raw_bind_parameter(j * 4 + 3, *d).unwrap();
                    stmt.raw_bind_parameter(j * 4 + 4, *n as i64).unwrap();
                }
                stmt.raw_execute().unwrap();
            }
            let mut stmt = tx.prepare_cached(&sql(1)).unwrap();
            for ((a, cur), (d, n)) in chunks.remainder() {
                stmt.execute(params![*a as i64, *cur, *d, *n as i64])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        total += t.elapsed();
    }
    let cpu = thread_cpu() - cpu0;
    drop(c);
    let bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", db.display()));
    }
    (total, cpu, bytes)
}

fn main() {
    let o = parse();
    let evs = events(&o);
    eprintln!(
        "{} events, order {}, batch {}, page {} cache {} MiB",
        evs.len(),
        o.order,
        o.batch,
        o.page_size,
        o.cache_mib
    );
    let db = o.dir.join(format!("layouts-{}.db", std::process::id()));
    let mut results: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut cpu_results: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut sizes: BTreeMap<usize, u64> = BTreeMap::new();
    for r in 0..o.rounds {
        for (i, v) in o.variants.iter().enumerate() {
            let l = layout(v, &o);
            let (t, cpu, bytes) = run(&o, &l, &evs, &db);
            let rate = evs.len() as f64 / t.as_secs_f64();
            let cpu_rate = evs.len() as f64 / cpu.as_secs_f64();
            eprintln!(
                "round {r} {v:<40} {rate:>10.0} rows/s wall {cpu_rate:>10.0} rows/CPU-s  {:>6.1} B/event",
                bytes as f64 / evs.len() as f64
            );
            results.entry(i).or_default().push(rate);
            cpu_results.entry(i).or_default().push(cpu_rate);
            sizes.insert(i, bytes);
        }
    }
    // Medians: one round disturbed by a neighbour should not move them.
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&results[&0]);
    let cpu_base = median(&cpu_results[&0]);
    println!(
        "variant,rows_per_wall_s_median,ratio,rows_per_cpu_s_median,cpu_ratio,bytes_per_event,wall_rounds"
    );
    for (i, v) in o.variants.iter().enumerate() {
        let (w, c) = (median(&results[&i]), median(&cpu_results[&i]));
        println!(
            "{v},{w:.0},{:.3},{c:.0},{:.3},{:.1},{:?}",
            w / base,
            c / cpu_base,
            sizes[&i] as f64 / evs.len() as f64,
            results[&i]
                .iter()
                .map(|x| x.round() as u64)
                .collect::<Vec<_>>()
        );
    }
}
