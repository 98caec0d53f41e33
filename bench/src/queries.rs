//! Timing of the two queries a bank asks of the store: "the 50 latest
//! events of one account" and "the balance of one account", on a loaded
//! database, after [`Store::ensure_query_index`].

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use producer::generator::FIRST_ACCOUNT;
use serde::{Deserialize, Serialize};
use store::Store;

use crate::ceilings::db_bytes;

/// Timings of one query over the sampled accounts, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryTiming {
    pub samples: u64,
    /// Cold statement cache and pages.
    pub first_ms: f64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Rows per call.
    pub rows_mean: f64,
}

/// What `bench queries` measures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryStats {
    pub version: u32,
    pub db: String,
    /// 0 when the index existed.
    pub index_build_seconds: f64,
    pub db_bytes_before_index: u64,
    pub db_bytes_after_index: u64,
    pub latest_events_50: QueryTiming,
    pub account_balance: QueryTiming,
}

/// Builds the query index if needed, then runs both queries for `samples`
/// accounts spread evenly over the generator's `accounts`.
pub fn time_queries(db: &Path, accounts: u64, samples: u64) -> anyhow::Result<QueryStats> {
    anyhow::ensure!(db.exists(), "{} does not exist", db.display());
    let before = db_bytes(db);
    let store = Store::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let t = Instant::now();
    store
        .ensure_query_index()
        .context("cannot build the query index")?;
    let index_build_seconds = t.elapsed().as_secs_f64();
    let after = db_bytes(db);

    let samples = samples.clamp(1, accounts.max(1));
    let step = (accounts / samples).max(1);
    let ids: Vec<u64> = (0..samples).map(|i| FIRST_ACCOUNT + i * step).collect();

    let latest = time_each(&ids, |a| Ok(store.latest_events(a, 50)?.len()))?;
    let balance = time_each(&ids, |a| Ok(store.account_balances(a)?.len()))?;
    Ok(QueryStats {
        version: crate::stats::STATS_VERSION,
        db: db.display().to_string(),
        index_build_seconds,
        db_bytes_before_index: before,
        db_bytes_after_index: after,
        latest_events_50: latest,
        account_balance: balance,
    })
}

fn time_each(
    ids: &[u64],
    mut query: impl FnMut(u64) -> anyhow::Result<usize>,
) -> anyhow::Result<QueryTiming> {
    let mut ms = Vec::with_capacity(ids.len());
    let mut rows = 0usize;
    for &id in ids {
        let t = Instant::now();
        rows += query(id)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let first_ms = ms.first().copied().unwrap_or(0.0);
    let mean_ms = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    ms.sort_by(f64::total_cmp);
    let pct = |q: f64| -> f64 {
        if ms.is_empty() {
            return 0.0;
        }
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i]
    };
    Ok(QueryTiming {
        samples: ids.len() as u64,
        first_ms,
        min_ms: ms.first().copied().unwrap_or(0.0),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
        mean_ms,
        rows_mean: rows as f64 / ids.len().max(1) as f64,
    })
}
