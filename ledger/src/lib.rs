//! Several consumers' databases read as one ledger.
//!
//! The instances of a consumer group each store into a database of their
//! own, and each database is exactly once for what it holds. A partition
//! that changes hands cleanly (a revocation) is committed to Kafka first,
//! so its next owner starts where the last one stopped. After a crash it is
//! not: the next owner starts from the group's committed offset, which may
//! lag the dead instance's database by the batches it had committed to
//! SQLite but not yet to Kafka, and those events are then stored in two
//! databases. Read as one, each event counts once, by its id:
//!
//! - [`Ledger::summary`]: rows, distinct events, and the events stored in
//!   more than one database;
//! - [`Ledger::balances`], [`Ledger::account_balances`]: each database's
//!   balances summed, minus what the extra copies of a twice-stored event
//!   added (the one balance rule, `BankingEvent::balance_changes`);
//! - [`Ledger::latest_events`]: an account's newest events across the
//!   databases, each once.
//!
//! It reads; it never writes an event (opening a database of an older
//! schema version upgrades it, as a consumer would).

#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use proto::{BankingEvent, EventType, Status};
use rusqlite::{Connection, OpenFlags};
use store::{Balance, EventRow, GapReason, OffsetGap, Store, StoreError};

/// SQLite's default limit of attached databases.
pub const MAX_DATABASES: usize = 10;

/// What can go wrong reading databases as one.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// No database was given.
    #[error("no database given")]
    NoDatabase,
    /// More than [`MAX_DATABASES`].
    #[error("at most {MAX_DATABASES} databases at once, got {0}")]
    TooMany(usize),
    /// A path that is not a file (a store would create it).
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// The same file twice: its events would count as stored twice.
    #[error("{0} is given twice")]
    Twice(PathBuf),
    /// A database could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query across the databases failed.
    #[error("{what}: {source}")]
    Sql {
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored name this build does not know.
    #[error("event {event_id} has a {what} this build does not know: {name:?}")]
    UnknownName {
        /// The event.
        event_id: u64,
        /// `type` or `status`.
        what: &'static str,
        /// The stored name.
        name: String,
    },
}

fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> LedgerError {
    move |source| LedgerError::Sql { what, source }
}

/// One database's share of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSummary {
    /// The file.
    pub path: PathBuf,
    /// Rows in `events`.
    pub events: u64,
    /// Rows in `dead_letters`.
    pub dead_letters: u64,
    /// Offset ranges skipped on purpose (hand-overs, accepted losses).
    pub offset_gaps: u64,
}

/// The databases as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Per database, in the order given.
    pub databases: Vec<DatabaseSummary>,
    /// Rows in `events` over all databases.
    pub rows: u64,
    /// Distinct event ids over all databases.
    pub distinct_events: u64,
    /// Events stored in more than one database.
    pub stored_twice: u64,
    /// Extra copies: `rows - distinct_events`.
    pub extra_copies: u64,
    /// Sum of `amount_minor` over the distinct events.
    pub amount_minor_sum: i128,
}

/// Several databases read as one. See the crate documentation.
pub struct Ledger {
    stores: Vec<Store>,
    /// An in-memory connection with every database attached read-only as
    /// `db0`, `db1`, ...: the queries across them.
    across: Connection,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("databases", &self.paths())
            .finish_non_exhaustive()
    }
}

/// `path` as an SQLite URI, read-only.
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

impl Ledger {
    /// Opens `paths` (1 to [`MAX_DATABASES`] consumer databases).
    pub fn open(paths: &[PathBuf]) -> Result<Ledger, LedgerError> {
        if paths.is_empty() {
            return Err(LedgerError::NoDatabase);
        }
        if paths.len() > MAX_DATABASES {
            return Err(LedgerError::TooMany(paths.len()));
        }
        let mut seen = Vec::new();
        for p in paths {
            if !p.is_file() {
                return Err(LedgerError::Missing(p.clone()));
            }
            let real = p.canonicalize().unwrap_or_else(|_| p.clone());
            if seen.contains(&real) {
                return Err(LedgerError::Twice(p.clone()));
            }
            seen.push(real);
        }
        let stores = paths
            .iter()
            .map(|p| Store::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let across = Connection::open_with_flags(
            ":memory:",
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("open an in-memory connection"))?;
        for (i, p) in paths.iter().enumerate() {
            across
                .execute(&format!("ATTACH DATABASE ?1 AS db{i}"), [read_only_uri(p)])
                .map_err(sql("attach a database"))?;
        }
        Ok(Ledger { stores, across })
    }

    /// The databases, in the order given.
    pub fn paths(&self) -> Vec<&Path> {
        self.stores.iter().map(Store::path).collect()
    }

    /// `SELECT <columns> FROM db0.events [WHERE ..] UNION ALL ...`.
    fn union(&self, columns: &str, filter: &str) -> String {
        (0..self.stores.len())
            .map(|i| format!("SELECT {columns} FROM db{i}.events {filter}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// Event ids stored in more than one database, with their number of
    /// copies; only events of `account` (as owner or counterparty) when
    /// given.
    pub fn twice_stored(&self, account: Option<u64>) -> Result<Vec<(u64, u64)>, LedgerError> {
        if self.stores.len() < 2 {
            return Ok(Vec::new());
        }
        let filter = match account {
            Some(_) => "WHERE account_id = ?1 OR counterparty_account_id = ?1",
            None => "",
        };
        let query = format!(
            "SELECT event_id, count(*) FROM ({}) GROUP BY event_id HAVING count(*) > 1",
            self.union("event_id", filter)
        );
        let mut stmt = self
            .across
            .prepare(&query)
            .map_err(sql("find events stored twice"))?;
        let map =
            |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64));
        let rows = match account {
            Some(a) => stmt.query_map([a as i64], map),
            None => stmt.query_map([], map),
        }
        .map_err(sql("find events stored twice"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql("find events stored twice"))?;
        Ok(rows)
    }

    /// The hand-overs recorded in these databases whose range was stored by
    /// a database that is not among them (or by one that was not named):
    /// until it is given too, the databases do not hold the group's whole
    /// history. Each with the database that recorded it.
    pub fn missing_hand_overs(&self) -> Result<Vec<(PathBuf, OffsetGap)>, LedgerError> {
        let ids: Vec<&str> = self.stores.iter().map(Store::database_id).collect();
        let mut out = Vec::new();
        for store in &self.stores {
            for gap in store.offset_gaps()? {
                let known = gap
                    .source_database
                    .as_deref()
                    .is_some_and(|d| ids.contains(&d));
                if gap.reason == GapReason::HandOver.as_str() && !known {
                    out.push((store.path().to_path_buf(), gap));
                }
            }
        }
        Ok(out)
    }

    /// Rows, distinct events, events stored twice and the amount sum of
    /// the distinct events.
    pub fn summary(&self) -> Result<Summary, LedgerError> {
        let mut databases = Vec::new();
        let mut rows = 0u64;
        let mut amount_minor_sum = 0i128;
        for store in &self.stores {
            let s = store.summary()?;
            rows += s.events;
            amount_minor_sum += s.amount_minor_sum;
            databases.push(DatabaseSummary {
                path: store.path().to_path_buf(),
                events: s.events,
                dead_letters: s.dead_letters,
                offset_gaps: s.offset_gaps,
            });
        }
        let twice = self.twice_stored(None)?;
        let extra_copies: u64 = twice.iter().map(|(_, n)| n - 1).sum();
        for &(id, copies) in &twice {
            let row = self.event(id)?;
            amount_minor_sum -= i128::from(row.amount_minor) * i128::from(copies as i64 - 1);
        }
        Ok(Summary {
            databases,
            rows,
            distinct_events: rows - extra_copies,
            stored_twice: twice.len() as u64,
            extra_copies,
            amount_minor_sum,
        })
    }

    /// The event with id `id` from the first database holding it.
    fn event(&self, id: u64) -> Result<EventRow, LedgerError> {
        for store in &self.stores {
            if let Some(row) = store.event(id)? {
                return Ok(row);
            }
        }
        Err(LedgerError::Sql {
            what: "read an event stored twice",
            source: rusqlite::Error::QueryReturnedNoRows,
        })
    }

    /// Every balance, each event counted once, ordered by account then
    /// currency.
    pub fn balances(&self) -> Result<Vec<Balance>, LedgerError> {
        let mut sum: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
        for store in &self.stores {
            for b in store.balances()? {
                let slot = sum.entry((b.account_id, b.currency)).or_default();
                slot.0 += b.balance_minor;
                slot.1 += b.event_count;
            }
        }
        self.correct(&mut sum, None)?;
        Ok(into_balances(sum))
    }

    /// The balances of `account`, one per currency, each event counted once.
    pub fn account_balances(&self, account: u64) -> Result<Vec<Balance>, LedgerError> {
        let mut sum: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
        for store in &self.stores {
            for b in store.account_balances(account)? {
                let slot = sum.entry((b.account_id, b.currency)).or_default();
                slot.0 += b.balance_minor;
                slot.1 += b.event_count;
            }
        }
        self.correct(&mut sum, Some(account))?;
        Ok(into_balances(sum))
    }

    /// Takes out of `sum` what the extra copies of twice-stored events
    /// added (only `account`'s balances when given).
    fn correct(
        &self,
        sum: &mut BTreeMap<(u64, String), (i64, u64)>,
        account: Option<u64>,
    ) -> Result<(), LedgerError> {
        for (id, copies) in self.twice_stored(account)? {
            let extra = copies - 1;
            let event = to_event(&self.event(id)?)?;
            for change in event.balance_changes() {
                if account.is_some_and(|a| a != change.account_id) {
                    continue;
                }
                let slot = sum
                    .entry((change.account_id, change.currency.to_string()))
                    .or_default();
                slot.0 -= change.delta_minor * extra as i64;
                slot.1 -= extra;
            }
        }
        sum.retain(|_, (_, count)| *count > 0);
        Ok(())
    }

    /// The `limit` newest events of `account` across the databases, each
    /// once, newest first (by creation time, then id). Fast once each
    /// database has its query index (`Store::ensure_query_index`).
    pub fn latest_events(&self, account: u64, limit: usize) -> Result<Vec<EventRow>, LedgerError> {
        let mut by_id: HashMap<u64, EventRow> = HashMap::new();
        for store in &self.stores {
            for row in store.latest_events(account, limit)? {
                by_id.entry(row.event_id).or_insert(row);
            }
        }
        let mut rows: Vec<EventRow> = by_id.into_values().collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at_us, r.event_id)));
        rows.truncate(limit);
        Ok(rows)
    }

    /// Builds each database's query index (see `Store::ensure_query_index`).
    pub fn ensure_query_index(&self) -> Result<(), LedgerError> {
        for store in &self.stores {
            store.ensure_query_index()?;
        }
        Ok(())
    }
}

fn into_balances(sum: BTreeMap<(u64, String), (i64, u64)>) -> Vec<Balance> {
    sum.into_iter()
        .map(
            |((account_id, currency), (balance_minor, event_count))| Balance {
                account_id,
                currency,
                balance_minor,
                event_count,
            },
        )
        .collect()
}

/// The event a stored row holds, as far as the balance rule needs it.
fn to_event(row: &EventRow) -> Result<BankingEvent, LedgerError> {
    let unknown = |what, name: &str| LedgerError::UnknownName {
        event_id: row.event_id,
        what,
        name: name.to_string(),
    };
    let event_type = EventType::from_str_name(&format!("EVENT_TYPE_{}", row.event_type))
        .ok_or_else(|| unknown("type", &row.event_type))?;
    let status = Status::from_str_name(&format!("STATUS_{}", row.status))
        .ok_or_else(|| unknown("status", &row.status))?;
    Ok(BankingEvent {
        event_id: row.event_id,
        event_type: event_type as i32,
        account_id: row.account_id,
        amount_minor: row.amount_minor,
        currency: row.currency.clone(),
        status: status as i32,
        counterparty_account_id: row.counterparty_account_id.unwrap_or(0),
        created_at_us: row.created_at_us,
        ..BankingEvent::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Channel;
    use store::Batch;

    fn event(id: u64, event_type: EventType, account: u64, amount: i64) -> BankingEvent {
        BankingEvent {
            event_id: id,
            event_type: event_type as i32,
            account_id: account,
            amount_minor: amount,
            currency: "EUR".into(),
            channel: Channel::Online as i32,
            status: Status::Completed as i32,
            country: "DE".into(),
            transaction_ref: format!("{id:0>64}"),
            counterparty_account_id: if event_type == EventType::Transfer {
                20_000_002
            } else {
                0
            },
            created_at_us: 1_700_000_000_000_000 + id as i64,
        }
    }

    /// A database holding `events` of partition 0 from offset `first`.
    fn db(dir: &Path, name: &str, first: i64, events: &[BankingEvent]) -> PathBuf {
        let path = dir.join(name);
        let mut store = Store::open(&path).unwrap();
        let mut batch = Batch::new("t");
        for (i, e) in events.iter().enumerate() {
            batch.push_event(0, first + i as i64, e.clone(), vec![1]);
        }
        if first > 0 {
            store
                .record_gap("t", 0, 0, first, store::GapReason::HandOver)
                .unwrap();
        }
        store.commit(&batch).unwrap();
        path
    }

    /// A database holding one deposit, of id `offset + 1`, at `offset`.
    fn deposit_db(dir: &Path, name: &str, offset: i64) -> PathBuf {
        let id = offset as u64 + 1;
        db(
            dir,
            name,
            offset,
            &[event(id, EventType::Deposit, 10_000_001, 5)],
        )
    }

    #[test]
    fn a_hand_over_from_a_database_not_given_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let a = deposit_db(dir.path(), "a", 0);
        let b = deposit_db(dir.path(), "b", 1);
        let a_id = Store::open(&a).unwrap().database_id().to_string();
        Store::open(&b)
            .unwrap()
            .record_gap_from("t", 3, 0, 9, GapReason::HandOver, Some(&a_id))
            .unwrap();
        let both = Ledger::open(&[a.clone(), b.clone()]).unwrap();
        // b's first gap (0..1, no source named) is unverifiable; its gap
        // from a is covered by a.
        let missing = both.missing_hand_overs().unwrap();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].1.partition, 0);
        let alone = Ledger::open(&[b]).unwrap();
        assert_eq!(alone.missing_hand_overs().unwrap().len(), 2);
    }

    #[test]
    fn an_event_in_two_databases_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = 20_000_001;
        let e1 = event(1, EventType::Deposit, a, 1_000);
        let e2 = event(2, EventType::Transfer, a, 300);
        let e3 = event(3, EventType::Fee, a, 7);
        // The dead instance stored 1, 2; its successor started from the
        // group's older offset and stored 2 again, then 3.
        let dead = db(dir.path(), "a.db", 0, &[e1.clone(), e2.clone()]);
        let next = db(dir.path(), "b.db", 1, &[e2.clone(), e3.clone()]);
        let ledger = Ledger::open(&[dead, next]).unwrap();

        let s = ledger.summary().unwrap();
        assert_eq!(s.rows, 4);
        assert_eq!(s.distinct_events, 3);
        assert_eq!(s.stored_twice, 1);
        assert_eq!(s.extra_copies, 1);
        assert_eq!(s.amount_minor_sum, 1_000 + 300 + 7);
        assert_eq!(ledger.twice_stored(None).unwrap(), vec![(2, 2)]);

        let mine = ledger.account_balances(a).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].balance_minor, 1_000 - 300 - 7);
        assert_eq!(mine[0].event_count, 3);
        let theirs = ledger.account_balances(20_000_002).unwrap();
        assert_eq!(theirs[0].balance_minor, 300, "the transfer credited once");
        assert_eq!(theirs[0].event_count, 1);
        let all = ledger.balances().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].balance_minor, 693);
        assert_eq!(all[1].balance_minor, 300);

        let latest = ledger.latest_events(a, 50).unwrap();
        let ids: Vec<u64> = latest.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, vec![3, 2, 1], "newest first, each once");
        assert_eq!(ledger.latest_events(a, 2).unwrap().len(), 2);
    }

    #[test]
    fn refuses_what_would_miscount() {
        let dir = tempfile::tempdir().unwrap();
        let a = deposit_db(dir.path(), "a.db", 0);
        assert!(matches!(Ledger::open(&[]), Err(LedgerError::NoDatabase)));
        assert!(matches!(
            Ledger::open(&[a.clone(), a.clone()]),
            Err(LedgerError::Twice(_))
        ));
        let missing = dir.path().join("nope.db");
        assert!(matches!(
            Ledger::open(std::slice::from_ref(&missing)),
            Err(LedgerError::Missing(_))
        ));
        assert!(!missing.exists(), "a missing database is not created");
        let one = Ledger::open(&[a]).unwrap();
        assert_eq!(one.summary().unwrap().distinct_events, 1);
    }
}
