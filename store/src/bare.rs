//! The benchmark's bare-SQLite ceiling: the store's event rows, alone.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rusqlite::{Connection, OpenFlags};

use crate::checkpoint::Checkpointer;
use crate::schema::{events_table, writer_pragmas};
use crate::{
    BatchEvent, EVENT_PARAMS, ROWS_PER_INSERT, StoreError, StoreOptions, bind_event,
    insert_events_sql, now_us,
};

/// The same columns as `events`, in one b-tree: the rowid, no unique key.
const BARE_TABLE: &str = events_table!("bare_events", "");

static INSERT_MANY: LazyLock<String> =
    LazyLock::new(|| insert_events_sql("bare_events", ROWS_PER_INSERT, ""));
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_events_sql("bare_events", 1, ""));

/// The physical limit of the store's design on the machine at hand: the
/// same event rows as [`Store::commit`](crate::Store::commit) writes, with
/// the same pragmas, checkpoints, statements and transaction size, into a
/// single table with one b-tree, and nothing else: no duplicate check, no
/// balances, no offsets, no dead letters, no validation.
///
/// It exists for the benchmark (`bench ceiling-bare`); it is not a store.
#[derive(Debug)]
pub struct BareTable {
    // Before `conn`, as in `Store`.
    checkpointer: Option<Checkpointer>,
    conn: Connection,
    path: PathBuf,
    opts: StoreOptions,
}

impl BareTable {
    /// Creates the table in a new file at `path` (which must not exist),
    /// or opens the one an earlier call made there.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<BareTable, StoreError> {
        let sqlite = |e| StoreError::from_sqlite(path, e);
        let new_file = !path.exists();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        writer_pragmas(&conn, path, opts, new_file)?;
        if new_file {
            conn.execute_batch(BARE_TABLE).map_err(sqlite)?;
        }
        let checkpointer = Checkpointer::start(&conn, path, opts);
        Ok(BareTable {
            checkpointer,
            conn,
            path: path.to_path_buf(),
            opts: opts.clone(),
        })
    }

    /// Inserts `events` in one transaction.
    pub fn insert(&mut self, events: &[BatchEvent]) -> Result<(), StoreError> {
        let path = &self.path;
        let sqlite = |e| StoreError::from_sqlite(path, e);
        let keep = self.opts.keep_event_payloads;
        let tx = self.conn.transaction().map_err(sqlite)?;
        let stamped_at = now_us();
        {
            let mut many = tx.prepare_cached(&INSERT_MANY).map_err(sqlite)?;
            let mut chunks = events.chunks_exact(ROWS_PER_INSERT);
            for chunk in &mut chunks {
                for (k, item) in chunk.iter().enumerate() {
                    bind_event(&mut many, k * EVENT_PARAMS + 1, item, stamped_at, keep)
                        .map_err(sqlite)?;
                }
                many.raw_execute().map_err(sqlite)?;
            }
            let mut one = tx.prepare_cached(&INSERT_ONE).map_err(sqlite)?;
            for item in chunks.remainder() {
                bind_event(&mut one, 1, item, stamped_at, keep).map_err(sqlite)?;
                one.raw_execute().map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_commit(&self.conn);
        }
        Ok(())
    }

    /// Rows in the table.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM bare_events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| StoreError::from_sqlite(&self.path, e))
    }
}
