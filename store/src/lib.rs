//! The SQLite store both consumers write to.
//!
//! Kafka can only deliver at least once to an external store. The store
//! turns that into exactly once by keeping the consumed offsets in the same
//! SQLite transaction as the rows they produced (Kafka's "Storing Offsets
//! Outside Kafka"): each [`Batch`] becomes one `BEGIN IMMEDIATE; events;
//! balances; dead letters; offsets; COMMIT`. After a crash the consumer
//! resumes from [`Store::stored_offsets`], which can never be ahead of, nor
//! behind, the rows in the file.
//!
//! ```no_run
//! # use store::{Batch, Store};
//! # fn next_message() -> Option<(i32, i64, Vec<u8>)> { None }
//! let mut store = Store::open("pull.db".as_ref())?;
//! let resume_at = store.stored_offsets("banking.events")?; // seek here on assignment
//! let mut batch = Batch::with_capacity("banking.events", 20_000);
//! while let Some((partition, offset, bytes)) = next_message() {
//!     match proto::decode_event(&bytes) {
//!         Ok(event) => batch.push_event(partition, offset, event, bytes),
//!         Err(e) => batch.push_dead_letter(partition, offset, None, Some(bytes), e.to_string()),
//!     }
//!     if batch.len() == 20_000 {
//!         store.commit(&batch)?;
//!         batch.clear();
//!     }
//! }
//! # Ok::<(), store::StoreError>(())
//! ```
//!
//! What the store guarantees:
//! - a commit is all or nothing: rows, balances, dead letters and offsets
//!   of a batch are stored together or not at all;
//! - a duplicate event id (a producer sending one id twice; Kafka redelivery
//!   cannot cause it, offsets see to that) never moves money twice: the copy
//!   becomes a dead letter;
//! - a file that is not a banking store of a version this build knows is
//!   refused without being modified;
//! - a lock held by another connection is waited out, never reported as an
//!   error, and never leaves anything half-written.
//!
//! The writer is the ceiling of the whole pipeline, so the insert path is
//! lean (docs/store.md, "How fast, and what was tried"): cached prepared
//! statements of [`ROWS_PER_INSERT`] rows each, no secondary index during
//! loads ([`Store::ensure_query_index`] builds it on demand), enums stored
//! as their numbers, the raw bytes of events only when asked
//! ([`StoreOptions::keep_event_payloads`]), balance changes summed in
//! memory and written once per account and currency per batch, 16 KiB
//! pages, a 64 MiB WAL between restarts, checkpointed on a thread of the
//! store's own (`checkpoint.rs`), and each batch written in id order.

#![deny(missing_docs)]

mod bare;
mod batch;
mod checkpoint;
mod error;
mod offsets;
mod queries;
mod retry;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::{BankingEvent, IdChecksum};
use rusqlite::{Connection, Statement, TransactionBehavior, params};
use rustc_hash::FxHashMap;
use tracing::{debug, warn};

pub use bare::BareTable;
pub use batch::{Batch, BatchDeadLetter, BatchEvent};
pub use error::StoreError;
pub use offsets::{GapReason, OffsetGap, TopicIdentity, TopicReset};
use retry::{Failure, retry_busy};

/// The schema version this build writes and understands, kept in
/// `PRAGMA user_version`. A database with a higher number is refused, so an
/// old consumer never writes rows a newer one would misread.
pub const SCHEMA_VERSION: i32 = 4;

/// Tuning of a [`Store`]. Every field has a default that suits a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// SQLite page cache of the connection, in MiB. The working set of a
    /// load is the right edge of the events b-tree plus the balances table;
    /// 64 MiB holds the balances of a few hundred thousand accounts.
    pub cache_mib: u32,
    /// While waiting for another connection's lock, how often to say so in
    /// the log. The wait itself is unbounded.
    pub busy_log_every: Duration,
    /// Store each event's raw protobuf bytes in `events.payload` beside the
    /// decoded columns. Off by default: every field already has a column,
    /// and the bytes were ~40% of the file and cost ~20% of the insert rate
    /// (docs/store.md). Turn it on where the exact message must be kept for
    /// audit, or where producers may send fields this build does not know
    /// (decoding drops unknown fields; the bytes keep them). Dead letters
    /// always keep their bytes.
    pub keep_event_payloads: bool,
    /// Checkpoint the WAL on a thread of the store's own, with a second
    /// connection, instead of inside the commit that fills it (on by
    /// default). A checkpoint syncs ~64 MiB to disk; inside a commit that
    /// took 50–280 ms on this project's VM disk, every few seconds
    /// (docs/store.md, "Checkpoints off the commit path"). Off: SQLite's
    /// automatic checkpoint every 64 MiB, as before; kept for measurement.
    pub background_checkpoints: bool,
    /// Longest wait for another connection's write lock before an
    /// operation gives up with [`StoreError::GaveUp`], nothing written.
    /// `None` (the default): wait as long as it takes. The consumers set it
    /// on the connection their rebalance handler uses, which must answer
    /// within the group's `max.poll.interval.ms`.
    pub lock_wait_limit: Option<Duration>,
}

impl StoreOptions {
    /// How a unit of work waits for a lock on a connection with these
    /// options.
    pub(crate) fn patience<'a>(&self, give_up: Option<&'a AtomicBool>) -> retry::Patience<'a> {
        retry::Patience {
            log_every: self.busy_log_every,
            give_up,
            limit: self.lock_wait_limit,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            cache_mib: 64,
            busy_log_every: Duration::from_secs(2),
            keep_event_payloads: false,
            background_checkpoints: true,
            lock_wait_limit: None,
        }
    }
}

/// What one [`Store::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Events written to `events` (and to the balances).
    pub events_stored: usize,
    /// Rows written to `dead_letters`: the batch's own dead letters, plus
    /// the events refused here (duplicates, and any that fail validation).
    pub dead_letters: usize,
    /// Of those, events whose id was already stored (earlier in this batch
    /// or in an earlier one).
    pub duplicates: usize,
    /// Messages skipped because this database already holds their offset:
    /// Kafka delivered them again (after a seek back, a rebalance, a
    /// restart). Neither stored nor dead letters.
    pub redelivered: usize,
    /// When COMMIT returned, in microseconds since the Unix epoch: the end
    /// of the end-to-end latency clock. The rows' `committed_at_us` column
    /// holds the moment the transaction got the write lock, which is earlier
    /// by the time it took to write the batch.
    pub committed_at_us: i64,
    /// `(partition, next offset)` of every partition in the batch, as
    /// stored once it committed: what the consumer may tell Kafka. For a
    /// partition whose messages were all redeliveries, the stored offset,
    /// never the batch's lower one.
    pub next_offsets: Vec<(i32, i64)>,
}

/// Totals over the whole database, to check it against what the producer
/// says it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Rows in `events`.
    pub events: u64,
    /// Distinct ids among them. Equal to `events` by construction (the id is
    /// a unique key); counted anyway because a verification should not
    /// take the schema's word for it.
    pub distinct_event_ids: u64,
    /// Sum of `amount_minor` over all events, in an integer wide enough
    /// never to overflow.
    pub amount_minor_sum: i128,
    /// [`IdChecksum`] of every stored id, comparable with the producer's.
    pub id_checksum: IdChecksum,
    /// Rows in `dead_letters`.
    pub dead_letters: u64,
    /// Rows in `offset_gaps`: ranges of offsets this database skipped on
    /// purpose (see [`Store::record_gap`]). 0 for a database that is the
    /// only one of its group and lost nothing.
    pub offset_gaps: u64,
    /// `PRAGMA user_version` of the file.
    pub schema_version: i32,
}

/// One row of `account_balances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// The account.
    pub account_id: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of the signed balance changes of the stored events, minor units.
    pub balance_minor: i64,
    /// How many stored events changed this balance (a transfer counts on
    /// both sides).
    pub event_count: u64,
}

/// One row of `events`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Unique id (a unique key of the table).
    pub event_id: u64,
    /// `DEPOSIT`, `TRANSFER`, ... (the protobuf name without its prefix).
    pub event_type: String,
    /// The account the event belongs to.
    pub account_id: u64,
    /// Strictly positive amount, minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `ATM`, `ONLINE`, ...
    pub channel: String,
    /// `COMPLETED`, `PENDING` or `DECLINED`.
    pub status: String,
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
    /// The bank's reference.
    pub transaction_ref: String,
    /// The receiving account of a transfer; `None` for other types.
    pub counterparty_account_id: Option<u64>,
    /// Producer's creation time, µs since the epoch.
    pub created_at_us: i64,
    /// When the store's transaction took the write lock, µs since the epoch.
    pub committed_at_us: i64,
    /// Kafka partition the event was read from.
    pub kafka_partition: i32,
    /// Kafka offset the event was read from.
    pub kafka_offset: i64,
    /// The raw protobuf bytes, when the store that wrote the row kept them
    /// ([`StoreOptions::keep_event_payloads`]).
    pub payload: Option<Vec<u8>>,
}

/// One row of `dead_letters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka key, if any.
    pub key: Option<Vec<u8>>,
    /// Raw message value, if any.
    pub payload: Option<Vec<u8>>,
    /// Why the message was not stored as an event.
    pub error: String,
    /// When it was stored, µs since the epoch.
    pub recorded_at_us: i64,
}

/// A banking store: one SQLite file, one connection, one writer.
///
/// A `Store` is `Send` but not `Sync`: hand it to the writer thread. Other
/// processes may read the file at any time (WAL mode); another writer makes
/// [`commit`](Store::commit) wait, not fail.
#[derive(Debug)]
pub struct Store {
    // Before `conn`: dropped first, so that the writer is the last
    // connection to close and checkpoints what is left.
    checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
    path: PathBuf,
    opts: StoreOptions,
    give_up: Option<Arc<AtomicBool>>,
    database_id: String,
}

/// The columns of `events` a commit writes, in binding order.
const EVENT_COLUMNS: &str = "event_id, event_type, account_id, amount_minor, currency, channel, \
status, country, transaction_ref, counterparty_account_id, created_at_us, committed_at_us, \
kafka_partition, kafka_offset, payload";

/// Parameters per event row.
const EVENT_PARAMS: usize = 15;

/// Rows per multi-row `INSERT`: one statement execution, one parse of the
/// column list and one b-tree descent setup for many rows. 64 rows (960
/// parameters) measured within noise of 256 and ahead of 16 (docs/store.md).
pub const ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO events (...) VALUES (...), ... ` with `rows` rows, plus
/// `tail`.
fn insert_events_sql(table: &str, rows: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; EVENT_PARAMS].join(","));
    format!(
        "INSERT INTO {table} ({EVENT_COLUMNS}) VALUES {}{tail}",
        vec![one; rows].join(",")
    )
}

/// The fast path: [`ROWS_PER_INSERT`] rows, `OR IGNORE`, so a row with a
/// duplicate id is skipped rather than aborting the statement. A statement
/// that may abort halfway needs SQLite's statement journal, a copy of every
/// page it touches inside the table (the unique index's pages, mostly):
/// without it a commit took ~20% less CPU (docs/store.md). When fewer rows than
/// the chunk went in, the ones that did are read back by rowid and the
/// others go again row by row, which names each duplicate.
static INSERT_EVENTS: LazyLock<String> = LazyLock::new(|| {
    insert_events_sql("events", ROWS_PER_INSERT, "").replacen("INSERT", "INSERT OR IGNORE", 1)
});

/// One row; a duplicate id is no error but 0 rows changed.
static INSERT_EVENT: LazyLock<String> =
    LazyLock::new(|| insert_events_sql("events", 1, " ON CONFLICT (event_id) DO NOTHING"));

/// `INSERT INTO account_balances ... ON CONFLICT DO UPDATE` with `rows`
/// rows. A batch's changes are summed per (account, currency) first, so no
/// key appears twice in one statement.
fn upsert_balances_sql(rows: usize) -> String {
    format!(
        "INSERT INTO account_balances (account_id, currency, balance_minor, event_count) \
         VALUES {} ON CONFLICT (account_id, currency) DO UPDATE SET \
         balance_minor = balance_minor + excluded.balance_minor, \
         event_count = event_count + excluded.event_count",
        vec!["(?, ?, ?, ?)"; rows].join(", ")
    )
}

static UPSERT_BALANCES: LazyLock<String> = LazyLock::new(|| upsert_balances_sql(ROWS_PER_INSERT));
static UPSERT_BALANCE: LazyLock<String> = LazyLock::new(|| upsert_balances_sql(1));

const INSERT_DEAD_LETTER: &str = "\
INSERT INTO dead_letters (topic, \"partition\", \"offset\", key, payload, error, recorded_at_us) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl Store {
    /// Opens the store at `path` with [`StoreOptions::default`], creating
    /// the file and the schema if the file does not exist.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &StoreOptions::default())
    }

    /// Opens the store at `path`, creating the file (mode 0600) and the
    /// schema if needed.
    ///
    /// Before anything is written, the file is checked: a file that is not
    /// SQLite, a database of a newer schema version, or one holding tables
    /// of something else is refused and left byte for byte as it was. The
    /// parent directory is never created, so a mistyped path is an error
    /// rather than a fresh empty database.
    pub fn open_with(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        let conn = schema::open(path, opts)?;
        let database_id = schema::database_id(&conn, path)?;
        let checkpointer = checkpoint::Checkpointer::start(&conn, path, opts);
        debug!(path = %path.display(), cache_mib = opts.cache_mib, "store opened");
        Ok(Store {
            checkpointer,
            conn,
            path: path.to_path_buf(),
            opts: opts.clone(),
            give_up: None,
            database_id,
        })
    }

    /// A flag that, once set, ends a wait for another connection's write
    /// lock: the waiting [`commit`](Store::commit) returns
    /// [`StoreError::GaveUp`] with nothing written. A commit that already
    /// holds the lock finishes. The consumers set it when the group cannot
    /// wait any longer for the open batch.
    pub fn set_give_up(&mut self, flag: Arc<AtomicBool>) {
        self.give_up = Some(flag);
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `batch` in one transaction: events, balance changes, dead
    /// letters and the batch's next offsets, or nothing at all.
    ///
    /// Offsets are checked first, against those stored, in the same
    /// transaction: per partition, a message below the stored next offset
    /// is a redelivery, skipped and counted
    /// ([`CommitOutcome::redelivered`]), never stored twice nor turned into
    /// a dead letter; a message above it would skip offsets, and fails the
    /// whole batch ([`StoreError::OffsetGap`]) unless the range was recorded
    /// with [`record_gap`](Store::record_gap).
    ///
    /// Each event is validated again (a row in `events` is always a valid
    /// event, whatever the caller did); one that fails, or whose id is
    /// already stored at another offset, becomes a dead letter and moves no
    /// money. Its offset advances all the same.
    ///
    /// If another connection holds the write lock, waits (logging every
    /// [`StoreOptions::busy_log_every`]) and retries the whole transaction
    /// until it gets through. On error the transaction is rolled back, so
    /// the stored offsets still point at the first message of `batch` and
    /// committing the same batch again later is correct.
    pub fn commit(&mut self, batch: &Batch) -> Result<CommitOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(CommitOutcome {
                events_stored: 0,
                dead_letters: 0,
                duplicates: 0,
                redelivered: 0,
                committed_at_us: now_us(),
                next_offsets: Vec::new(),
            });
        }
        let started = Instant::now();
        let Store {
            checkpointer,
            conn,
            path,
            opts,
            give_up,
            ..
        } = self;
        let outcome = retry_busy(
            path,
            &opts.patience(give_up.as_deref()),
            "commit a batch",
            || write_batch(conn, path, opts, batch),
        )?;
        if let Some(checkpointer) = checkpointer {
            checkpointer.after_commit(conn);
        }
        if outcome.redelivered > 0 {
            warn!(
                "database {}: skipped {} message(s) of this batch whose offsets were already \
                 stored (delivered again by Kafka)",
                path.display(),
                outcome.redelivered
            );
        }
        if outcome.duplicates > 0 {
            warn!(
                "database {}: {} event(s) of this batch had an id that was already stored; \
                 they were recorded as dead letters and moved no money",
                path.display(),
                outcome.duplicates
            );
        }
        debug!(
            events = outcome.events_stored,
            dead_letters = outcome.dead_letters,
            duplicates = outcome.duplicates,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "batch committed"
        );
        Ok(outcome)
    }

    /// The connection itself, for tests that need to provoke failures (a
    /// tiny `max_page_count`, for one). Not part of the API.
    #[doc(hidden)]
    pub fn connection_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// Lets the database grow no further (`max_page_count` at its pages
    /// now): what a full disk looks like to SQLite. For tests; not part of
    /// the API.
    #[doc(hidden)]
    pub fn forbid_growth_for_tests(&self) {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .unwrap();
    }

    /// Runs a read (or a single self-contained statement) with the same
    /// lock waiting as commits.
    fn read<T>(
        &self,
        what: &str,
        mut work: impl FnMut(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        retry_busy(&self.path, &self.opts.patience(None), what, || {
            work(&self.conn)
        })
    }
}

/// One attempt at committing `batch`. Any error drops the transaction,
/// which rolls it back: nothing of the attempt remains.
fn write_batch(
    conn: &mut Connection,
    path: &Path,
    opts: &StoreOptions,
    batch: &Batch,
) -> Result<CommitOutcome, Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stamped_at = now_us();
    let topic = batch.topic();
    let events = batch.events();
    let plan = offsets::plan_in(&tx, path, batch)?;

    let mut stored = 0usize;
    let mut duplicates = 0usize;
    // Events that become dead letters: (index in the batch, why).
    let mut refused: Vec<(usize, String)> = Vec::new();
    // (account, currency) -> (sum of changes, number of events).
    // Grown as needed: a batch touches about as many keys as there are
    // accounts, far fewer than its events, and a table sized for the events
    // spreads those keys over megabytes of cache misses.
    let mut changes: FxHashMap<(u64, &str), (i64, u64)> = FxHashMap::default();

    let mut accepted: Vec<usize> = Vec::with_capacity(events.len());
    for (i, item) in events.iter().enumerate() {
        if plan.skip_event[i] {
            continue;
        }
        if let Err(why) = check(&item.event) {
            refused.push((i, why));
            continue;
        }
        accepted.push(i);
    }
    // Ids in ascending order: the unique index on `event_id` is then
    // written at its right edge, where SQLite finds the place without a
    // descent from the root, instead of hopping between the ranges the
    // batch's partitions cover (each partition holds every sixth id or so,
    // and a batch holds runs of each). A stable sort: of two copies of one
    // id, the one that came first is stored and the other is the
    // duplicate, as before. Measured in Kafka's arrival order: +11-25%
    // events per CPU second of the commit (docs/store.md). Events already
    // in order (the ceilings' generated ones) cost the sort one pass.
    accepted.sort_by_key(|&i| events[i].event.event_id);
    let keep_payloads = opts.keep_event_payloads;
    let mut inserted: Vec<usize> = Vec::with_capacity(accepted.len());
    {
        let mut multi = tx.prepare_cached(&INSERT_EVENTS)?;
        let mut single = tx.prepare_cached(&INSERT_EVENT)?;
        let mut one_by_one = |chunk: &[usize],
                              inserted: &mut Vec<usize>,
                              refused: &mut Vec<(usize, String)>|
         -> Result<(), Failure> {
            for &i in chunk {
                bind_event(&mut single, 1, &events[i], stamped_at, keep_payloads)?;
                if single.raw_execute()? == 0 {
                    duplicates += 1;
                    refused.push((i, duplicate_message(&tx, events[i].event.event_id)?));
                } else {
                    inserted.push(i);
                }
            }
            Ok(())
        };
        let mut chunks = accepted.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            for (k, &i) in chunk.iter().enumerate() {
                bind_event(
                    &mut multi,
                    k * EVENT_PARAMS + 1,
                    &events[i],
                    stamped_at,
                    keep_payloads,
                )?;
            }
            let went_in = multi.raw_execute()?;
            if went_in == chunk.len() {
                inserted.extend_from_slice(chunk);
            } else {
                let rest = skipped_rows(&tx, path, chunk, events, went_in, &mut inserted)?;
                one_by_one(&rest, &mut inserted, &mut refused)?;
            }
        }
        one_by_one(chunks.remainder(), &mut inserted, &mut refused)?;
    }
    for &i in &inserted {
        stored += 1;
        for change in events[i].event.balance_changes() {
            let slot = changes
                .entry((change.account_id, change.currency))
                .or_insert((0, 0));
            slot.0 = slot.0.checked_add(change.delta_minor).ok_or_else(|| {
                Failure::Store(StoreError::BalanceOverflow {
                    path: path.to_path_buf(),
                    account_id: change.account_id,
                    currency: change.currency.to_owned(),
                })
            })?;
            slot.1 += 1;
        }
    }
    // Dead letters in the order their messages came.
    refused.sort_unstable_by_key(|(i, _)| *i);

    if !changes.is_empty() {
        // Key order walks the balances b-tree left to right instead of
        // jumping around it.
        let mut changes: Vec<_> = changes.into_iter().collect();
        changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Many rows per statement, as for the events (docs/store.md).
        let mut many = tx.prepare_cached(&UPSERT_BALANCES)?;
        let mut chunks = changes.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            for (k, ((account, currency), (delta, count))) in chunk.iter().enumerate() {
                let at = k * 4;
                many.raw_bind_parameter(at + 1, *account as i64)?;
                many.raw_bind_parameter(at + 2, *currency)?;
                many.raw_bind_parameter(at + 3, *delta)?;
                many.raw_bind_parameter(at + 4, *count as i64)?;
            }
            many.raw_execute()?;
        }
        let mut upsert = tx.prepare_cached(&UPSERT_BALANCE)?;
        for ((account, currency), (delta, count)) in chunks.remainder() {
            upsert.execute(params![*account as i64, *currency, *delta, *count as i64])?;
        }
    }

    let kept_dead_letters = plan.skip_dead_letter.iter().filter(|s| !**s).count();
    let dead_letters = kept_dead_letters + refused.len();
    if dead_letters > 0 {
        let mut insert = tx.prepare_cached(INSERT_DEAD_LETTER)?;
        for (i, d) in batch.dead_letters().iter().enumerate() {
            if plan.skip_dead_letter[i] {
                continue;
            }
            insert.execute(params![
                topic,
                d.partition,
                d.offset,
                d.key,
                d.payload,
                d.error,
                stamped_at
            ])?;
        }
        for (i, why) in &refused {
            let item = &events[*i];
            insert.execute(params![
                topic,
                item.partition,
                item.offset,
                None::<&[u8]>,
                item.payload,
                why,
                stamped_at
            ])?;
        }
    }

    {
        let mut upsert = tx.prepare_cached(offsets::UPSERT_OFFSET)?;
        for (partition, next) in &plan.write {
            upsert.execute(params![topic, partition, next])?;
        }
    }

    tx.commit()?;
    Ok(CommitOutcome {
        events_stored: stored,
        dead_letters,
        duplicates,
        redelivered: plan.redelivered,
        committed_at_us: now_us(),
        next_offsets: plan.positions.into_iter().collect(),
    })
}

/// After a multi-row `INSERT OR IGNORE` of `chunk` stored only `went_in` of
/// its rows: pushes the rows that went in onto `inserted` and returns the
/// others, in batch order. The rows that went in are the last `went_in`
/// rowids (a table with an `INTEGER PRIMARY KEY` and no explicit ids gives
/// each new row the largest rowid plus one), so their event ids say which
/// rows they were; the first row carrying an id is the one SQLite kept.
fn skipped_rows(
    tx: &Connection,
    path: &Path,
    chunk: &[usize],
    events: &[BatchEvent],
    went_in: usize,
    inserted: &mut Vec<usize>,
) -> Result<Vec<usize>, Failure> {
    let mut kept: Vec<i64> = Vec::with_capacity(went_in);
    if went_in > 0 {
        let last = tx.last_insert_rowid();
        let mut stmt =
            tx.prepare_cached("SELECT event_id FROM events WHERE id > ?1 AND id <= ?2")?;
        for id in stmt.query_map([last - went_in as i64, last], |r| r.get(0))? {
            kept.push(id?);
        }
        if kept.len() != went_in {
            return Err(Failure::Store(StoreError::Sqlite {
                path: path.to_path_buf(),
                code: None,
                detail: format!(
                    "{went_in} rows of a multi-row insert went in, but {} rows carry the last rowids",
                    kept.len()
                ),
            }));
        }
    }
    let mut rest = Vec::with_capacity(chunk.len() - went_in);
    for &i in chunk {
        let id = events[i].event.event_id as i64;
        match kept.iter().position(|&k| k == id) {
            Some(at) => {
                kept.swap_remove(at);
                inserted.push(i);
            }
            None => rest.push(i),
        }
    }
    Ok(rest)
}

/// The store's own check of an event, on top of the caller's: `validate`,
/// plus the one limit SQLite adds (a signed 64-bit id).
fn check(e: &BankingEvent) -> Result<(), String> {
    proto::validate(e).map_err(|err| err.to_string())?;
    if e.event_id > i64::MAX as u64 {
        return Err(format!(
            "event_id {} is above the largest id the store can hold ({})",
            e.event_id,
            i64::MAX
        ));
    }
    Ok(())
}

/// Binds `item` as the row whose first parameter is `first` (1-based).
fn bind_event(
    stmt: &mut Statement<'_>,
    first: usize,
    item: &BatchEvent,
    stamped_at: i64,
    keep_payload: bool,
) -> rusqlite::Result<()> {
    let e = &item.event;
    let counterparty = match e.counterparty_account_id {
        0 => None,
        c => Some(c as i64),
    };
    stmt.raw_bind_parameter(first, e.event_id as i64)?;
    stmt.raw_bind_parameter(first + 1, e.event_type)?;
    stmt.raw_bind_parameter(first + 2, e.account_id as i64)?;
    stmt.raw_bind_parameter(first + 3, e.amount_minor)?;
    stmt.raw_bind_parameter(first + 4, e.currency.as_str())?;
    stmt.raw_bind_parameter(first + 5, e.channel)?;
    stmt.raw_bind_parameter(first + 6, e.status)?;
    stmt.raw_bind_parameter(first + 7, e.country.as_str())?;
    stmt.raw_bind_parameter(first + 8, e.transaction_ref.as_str())?;
    stmt.raw_bind_parameter(first + 9, counterparty)?;
    stmt.raw_bind_parameter(first + 10, e.created_at_us)?;
    stmt.raw_bind_parameter(first + 11, stamped_at)?;
    stmt.raw_bind_parameter(first + 12, item.partition)?;
    stmt.raw_bind_parameter(first + 13, item.offset)?;
    if keep_payload {
        stmt.raw_bind_parameter(first + 14, item.payload.as_slice())
    } else {
        stmt.raw_bind_parameter(first + 14, rusqlite::types::Null)
    }
}

/// Names where the first copy came from, which is what someone chasing a
/// producer bug needs.
fn duplicate_message(conn: &Connection, event_id: u64) -> Result<String, Failure> {
    let mut stmt = conn
        .prepare_cached("SELECT kafka_partition, kafka_offset FROM events WHERE event_id = ?1")?;
    let first: Option<(i32, i64)> = stmt
        .query_map([event_id as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .next()
        .transpose()?;
    Ok(match first {
        Some((p, o)) => {
            format!("duplicate event_id {event_id} (already stored, from partition {p} offset {o})")
        }
        None => format!("duplicate event_id {event_id} (already stored)"),
    })
}

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The consumers move the store into a writer thread.
    #[test]
    fn store_is_send() {
        fn send<T: Send>() {}
        send::<Store>();
        send::<Batch>();
        send::<StoreError>();
    }
}
