//! Creating the database file, checking what is in it before touching it,
//! and the schema itself.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tracing::{info, warn};

use crate::retry::{Failure, Patience, retry_busy};
use crate::{SCHEMA_VERSION, StoreError, StoreOptions};

/// `CREATE TABLE $name` with the columns of `events` since version 3, and
/// `$unique` (` UNIQUE`, or nothing) after `event_id`: the table itself,
/// the upgrade's copy of it, and the benchmark's [`BareTable`](crate::BareTable).
macro_rules! events_table {
    ($name:literal, $unique:literal) => {
        concat!(
            "\nCREATE TABLE ",
            $name,
            " (
    id                      INTEGER PRIMARY KEY,
    event_id                INTEGER NOT NULL",
            $unique,
            ",
    event_type              INTEGER NOT NULL,
    account_id              INTEGER NOT NULL,
    amount_minor            INTEGER NOT NULL,
    currency                TEXT    NOT NULL,
    channel                 INTEGER NOT NULL,
    status                  INTEGER NOT NULL,
    country                 TEXT    NOT NULL,
    transaction_ref         TEXT    NOT NULL,
    counterparty_account_id INTEGER,
    created_at_us           INTEGER NOT NULL,
    committed_at_us         INTEGER NOT NULL,
    kafka_partition         INTEGER NOT NULL,
    kafka_offset            INTEGER NOT NULL,
    payload                 BLOB
) STRICT;
"
        )
    };
}
pub(crate) use events_table;

/// The tables of version 1, `events` in its version 3 layout. A new file
/// then gets what versions 2 to 4 added, in the order an upgrade adds it.
///
/// - `events` has no secondary index: an index maintained on every insert
///   costs SQLite an order of magnitude in load rate (docs/design.md: ~475k vs
///   ~31k rows/s). [`Store::ensure_query_index`](crate::Store::ensure_query_index)
///   builds it after a load instead.
/// - The rowid `id` is commit order (batch after batch; within a batch by
///   `event_id`), so every row appends to the right edge of the table's
///   b-tree whatever order the ids come in, and the
///   uniqueness of `event_id` (what turns a duplicate into a dead letter) is
///   an index of ~16 bytes per row. The ids do not come in order: each
///   partition holds every sixth id or so, and an in-memory broker such as
///   Nisshi 0.8.1 fills a fetch from the first partition listed, so a
///   consumer reads one partition after another. With `event_id` as
///   the rowid each partition's pass inserted into the middle of the whole
///   table and late batches rewrote pages all over it (docs/store.md, "What
///   was tried").
/// - Version 3: `event_type`, `channel` and `status` are the protobuf enum
///   numbers (1 byte each on disk instead of 3 to 11 characters); the view
///   `events_named` shows their names. `payload` (the raw protobuf bytes) is
///   NULL unless the store was opened with
///   [`StoreOptions::keep_event_payloads`](crate::StoreOptions::keep_event_payloads):
///   every field is in its own column already, and the bytes were ~40% of
///   the file. Dead letters always keep theirs.
/// - STRICT tables refuse a value of the wrong type instead of storing it.
///   The one that matters: SQLite turns an integer sum that overflows 64 bits
///   into a REAL, and a STRICT `balance_minor` refuses that REAL, so an
///   overflowing balance fails the batch instead of silently losing cents.
/// - `account_balances` and `offsets` are WITHOUT ROWID: they are looked up
///   only by their primary key, which then is the table itself.
const SCHEMA: &str = concat!(
    events_table!("events", " UNIQUE"),
    r#"
CREATE TABLE account_balances (
    account_id    INTEGER NOT NULL,
    currency      TEXT    NOT NULL,
    balance_minor INTEGER NOT NULL,
    event_count   INTEGER NOT NULL,
    PRIMARY KEY (account_id, currency)
) STRICT, WITHOUT ROWID;

CREATE TABLE offsets (
    topic       TEXT    NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, "partition")
) STRICT, WITHOUT ROWID;

CREATE TABLE dead_letters (
    id             INTEGER PRIMARY KEY,
    topic          TEXT    NOT NULL,
    "partition"    INTEGER NOT NULL,
    "offset"       INTEGER NOT NULL,
    key            BLOB,
    payload        BLOB,
    error          TEXT    NOT NULL,
    recorded_at_us INTEGER NOT NULL
) STRICT;
"#
);

/// What version 4 adds, to a new file and to an upgraded one alike:
///
/// - `store_identity`: this database's id, random, made once. The
///   consumers write it into the metadata of every offset they commit to
///   Kafka, so that a group offset tells which database stored the range
///   (a hand-over to another instance, or this very database before it was
///   restored from a backup);
/// - `topics`: each topic's identity (Kafka's topic ID, the partition
///   count) when first read, so that a topic deleted and created again is
///   not taken for the old one;
/// - `topic_resets`: the old offsets of a topic that the operator accepted
///   as new (`--accept-new-topic`).
const SCHEMA_V4: &str = r#"
CREATE TABLE store_identity (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    database_id   TEXT    NOT NULL,
    created_at_us INTEGER NOT NULL
) STRICT;

INSERT INTO store_identity (id, database_id, created_at_us)
VALUES (1, lower(hex(randomblob(16))), CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE topics (
    topic          TEXT    NOT NULL PRIMARY KEY,
    topic_id       TEXT,
    partitions     INTEGER NOT NULL,
    recorded_at_us INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE topic_resets (
    id             INTEGER PRIMARY KEY,
    topic          TEXT    NOT NULL,
    old_topic_id   TEXT,
    new_topic_id   TEXT,
    old_offsets    TEXT    NOT NULL,
    recorded_at_us INTEGER NOT NULL
) STRICT;
"#;

/// Version 3 to 4: the tables above, and the database a hand-over came
/// from in `offset_gaps`.
const UPGRADE_V3_TO_V4: &str = r#"
ALTER TABLE offset_gaps ADD COLUMN source_database TEXT;
"#;

/// The names of the enum numbers, for people reading the file with the
/// `sqlite3` shell: `SELECT * FROM events_named`. Part of version 3.
const EVENTS_NAMED: &str = r#"
CREATE VIEW events_named AS SELECT
    id, event_id,
    CASE event_type WHEN 1 THEN 'TRANSACTION' WHEN 2 THEN 'DEPOSIT' WHEN 3 THEN 'WITHDRAWAL'
        WHEN 4 THEN 'TRANSFER' WHEN 5 THEN 'PAYMENT' WHEN 6 THEN 'FEE'
        ELSE 'UNSPECIFIED' END AS event_type,
    account_id, amount_minor, currency,
    CASE channel WHEN 1 THEN 'ATM' WHEN 2 THEN 'ONLINE' WHEN 3 THEN 'MOBILE'
        WHEN 4 THEN 'BRANCH' WHEN 5 THEN 'API' ELSE 'UNSPECIFIED' END AS channel,
    CASE status WHEN 1 THEN 'COMPLETED' WHEN 2 THEN 'PENDING' WHEN 3 THEN 'DECLINED'
        ELSE 'UNSPECIFIED' END AS status,
    country, transaction_ref, counterparty_account_id, created_at_us, committed_at_us,
    kafka_partition, kafka_offset, payload
FROM events;
"#;

/// What version 2 added to version 1 (to a new file, and when a version 1
/// file is upgraded):
///
/// - a message is a dead letter at most once: (topic, partition, offset) is
///   unique;
/// - `offset_gaps`: every range of offsets `[from_offset, to_offset)` this
///   database skipped, and why (`hand-over`: another instance with its own
///   database stored that stretch; `log-start-moved`: the broker deleted
///   those events before they were read, accepted by the operator).
const SCHEMA_V2: &str = r#"
CREATE UNIQUE INDEX dead_letters_by_offset ON dead_letters (topic, "partition", "offset");

CREATE TABLE offset_gaps (
    id             INTEGER PRIMARY KEY,
    topic          TEXT    NOT NULL,
    "partition"    INTEGER NOT NULL,
    from_offset    INTEGER NOT NULL,
    to_offset      INTEGER NOT NULL,
    reason         TEXT    NOT NULL,
    recorded_at_us INTEGER NOT NULL,
    CHECK (to_offset > from_offset)
) STRICT;
"#;

/// Version 2 to 3, in place: `events` is copied into the version 3 layout
/// (enum names become their numbers, every stored payload is kept, the
/// rowids stay), the old table and its indexes go (the query index is
/// rebuilt on demand), and the view is created. One pass over the table,
/// in the upgrading transaction: about as long as loading it took.
const UPGRADE_V2_TO_V3: &str = concat!(
    events_table!("events_v3", " UNIQUE"),
    r#"INSERT INTO events_v3 SELECT
    id, event_id,
    CASE event_type WHEN 'TRANSACTION' THEN 1 WHEN 'DEPOSIT' THEN 2 WHEN 'WITHDRAWAL' THEN 3
        WHEN 'TRANSFER' THEN 4 WHEN 'PAYMENT' THEN 5 WHEN 'FEE' THEN 6 ELSE 0 END,
    account_id, amount_minor, currency,
    CASE channel WHEN 'ATM' THEN 1 WHEN 'ONLINE' THEN 2 WHEN 'MOBILE' THEN 3
        WHEN 'BRANCH' THEN 4 WHEN 'API' THEN 5 ELSE 0 END,
    CASE status WHEN 'COMPLETED' THEN 1 WHEN 'PENDING' THEN 2 WHEN 'DECLINED' THEN 3
        ELSE 0 END,
    country, transaction_ref, counterparty_account_id, created_at_us, committed_at_us,
    kafka_partition, kafka_offset, payload
FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
"#
);

/// Version 1 stored a dead letter again when its message was read twice;
/// keep the first copy of each before the unique index can be built.
const DEDUPE_DEAD_LETTERS: &str = r#"
DELETE FROM dead_letters WHERE id NOT IN (
    SELECT min(id) FROM dead_letters GROUP BY topic, "partition", "offset"
);
"#;

/// The tables a store of each version must have (versions 2 and 3 have
/// the same tables).
const TABLES_V1: [&str; 4] = ["events", "account_balances", "offsets", "dead_letters"];
const TABLES_V2: [&str; 5] = [
    "events",
    "account_balances",
    "offsets",
    "dead_letters",
    "offset_gaps",
];
const TABLES_V4: [&str; 8] = [
    "events",
    "account_balances",
    "offsets",
    "dead_letters",
    "offset_gaps",
    "store_identity",
    "topics",
    "topic_resets",
];

/// How long SQLite itself spins on a lock before handing SQLITE_BUSY back to
/// our retry loop, which logs and backs off. Kept short so the loop, not
/// SQLite, decides how waiting looks.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(50);

/// Room for the per-row statements, the per-batch ones and the queries.
const STATEMENT_CACHE: usize = 32;

/// Opens (creating if needed) the store at `path`, refusing anything that is
/// not ours before changing a single byte of it.
pub(crate) fn open(path: &Path, opts: &StoreOptions) -> Result<Connection, StoreError> {
    let created = create_file(path)?;
    let result = check_file(path, opts).and_then(|found| init(path, opts, found));
    if result.is_err() && created {
        // Nothing of value is in a file we created a moment ago; leaving it
        // behind would make the next start see a half-made database.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

/// Creates a missing database file with mode 0600 (bank data is for the
/// owner only; SQLite gives the -wal and -shm files the same mode). Returns
/// whether the file is new.
fn create_file(path: &Path) -> Result<bool, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: "it is a directory".into(),
        }),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(StoreError::MissingDirectory {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                });
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {
                    info!(path = %path.display(), "created new database file (mode 0600)");
                    Ok(true)
                }
                // Another process created it between our two calls: use theirs.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(io) => Err(StoreError::CreateFile {
                    path: path.to_path_buf(),
                    io,
                }),
            }
        }
        Err(io) => Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: io.to_string(),
        }),
    }
}

/// What [`check_file`] found in an acceptable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// An empty database (or a new, empty file): create the schema.
    Empty,
    /// A store of the current schema version.
    Current,
    /// A store of version 1: upgraded in place when opened for writing.
    Version1,
    /// A store of version 2: upgraded in place when opened for writing.
    Version2,
    /// A store of version 3: upgraded in place when opened for writing.
    Version3,
}

/// Looks at the file through a read-only connection that is not allowed to
/// checkpoint on close, so that a file we refuse keeps every byte it had.
fn check_file(path: &Path, opts: &StoreOptions) -> Result<Found, StoreError> {
    let probe = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::from_sqlite(path, e))?;
    probe
        .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| StoreError::from_sqlite(path, e))?;
    probe
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .map_err(|e| StoreError::from_sqlite(path, e))?;
    retry_busy(
        path,
        &Patience::unbounded(opts.busy_log_every),
        "read the schema",
        || classify(path, &probe),
    )
}

/// Decides from `user_version` and the objects present whether the file is
/// ours. Shared by the read-only probe and the re-check inside the schema
/// creating transaction (another process may have been faster).
fn classify(path: &Path, conn: &Connection) -> Result<Found, Failure> {
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let refuse = |found: String| {
        Failure::Store(StoreError::NotABankingStore {
            path: path.to_path_buf(),
            found,
        })
    };
    if version > SCHEMA_VERSION {
        return Err(Failure::Store(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        }));
    }
    if version < 0 {
        return Err(refuse(format!("user_version {version}")));
    }
    let mut stmt = conn.prepare(
        "SELECT type, name FROM sqlite_schema \
         WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
    )?;
    let objects = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    if version == 0 {
        if objects.is_empty() {
            return Ok(Found::Empty);
        }
        let names: Vec<String> = objects.iter().map(|(t, n)| format!("{t} {n}")).collect();
        return Err(refuse(format!(
            "user_version 0 but it holds {}",
            names.join(", ")
        )));
    }
    let tables: &[&str] = match version {
        1 => &TABLES_V1,
        2 | 3 => &TABLES_V2,
        _ => &TABLES_V4,
    };
    let missing: Vec<&str> = tables
        .iter()
        .copied()
        .filter(|t| !objects.iter().any(|(ty, n)| ty == "table" && n == t))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "user_version {version} but no table {}",
            missing.join(", ")
        )));
    }
    Ok(match version {
        1 => Found::Version1,
        2 => Found::Version2,
        3 => Found::Version3,
        _ => Found::Current,
    })
}

/// The writer's page cache (`opts.cache_mib`) and in-memory temporary
/// storage: set when the connection opens, and again after a step that
/// needs other settings ([`Store::ensure_query_index`](crate::Store::ensure_query_index)).
pub(crate) fn writer_cache(conn: &Connection, opts: &StoreOptions) -> rusqlite::Result<()> {
    let cache_kib = -(i64::from(opts.cache_mib) * 1024);
    conn.pragma_update(None, "cache_size", cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// The writer's pragmas, the same for the store and for the benchmark's
/// bare-SQLite table ([`crate::BareTable`]). `new_file`: the file holds no
/// page yet, so its page size can still be chosen.
pub(crate) fn writer_pragmas(
    conn: &Connection,
    path: &Path,
    opts: &StoreOptions,
    new_file: bool,
) -> Result<(), StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    if new_file {
        // Before WAL: the page size of a WAL database is fixed.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(sqlite)?;
    }
    let mode: String = retry_busy(
        path,
        &Patience::unbounded(opts.busy_log_every),
        "switch to WAL",
        || Ok(conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?),
    )?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still atomic (rollback journal), only slower and blocking readers.
        warn!(path = %path.display(), mode, "could not switch the database to WAL");
    }
    // NORMAL in WAL mode: a commit is atomic and consistent; a power cut may
    // lose the last commits, which Kafka then redelivers because their
    // offsets were lost with them. OFF could corrupt the file: never.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(sqlite)?;
    writer_cache(conn, opts).map_err(sqlite)
}

/// Page size of a new database file. SQLite's default is 4096; 16 KiB
/// pages measured ~17% less CPU per event for the load (fewer pages to
/// split, balance and checkpoint per row; docs/store.md), and a point query
/// still reads a handful of pages. An existing file keeps the size it was
/// made with.
const PAGE_SIZE: u32 = 16_384;

/// WAL pages after which a commit checkpoints: 4,000 pages of 16 KiB, a
/// 64 MiB WAL (SQLite's default, 1,000 pages, is 4 MiB at its default page
/// size). Fewer checkpoints copy the pages a load rewrites many times
/// (the right edge of each b-tree, the balances) fewer times. With
/// background checkpoints (the default) it is the size at which the WAL
/// starts over instead (`checkpoint::RESTART_PAGES`).
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 4_000;

/// Opens the writing connection, sets the pragmas and creates the schema if
/// the file is empty. Only reached for a file [`check_file`] accepted.
fn init(path: &Path, opts: &StoreOptions, found: Found) -> Result<Connection, StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    // Not SQLITE_OPEN_CREATE: the file exists (create_file made sure), and if
    // it vanished since, creating an empty one here would hide that.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    // SQLite quietly falls back to read-only when the file is not writable;
    // better to say so now than at the first commit.
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(sqlite)? {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: "the file is not writable by this user".into(),
        });
    }
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(sqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

    writer_pragmas(&conn, path, opts, found == Found::Empty)?;

    if found == Found::Empty {
        retry_busy(
            path,
            &Patience::unbounded(opts.busy_log_every),
            "create the schema",
            || {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if classify(path, &tx)? == Found::Empty {
                    for sql in [SCHEMA, SCHEMA_V2, EVENTS_NAMED, UPGRADE_V3_TO_V4, SCHEMA_V4] {
                        tx.execute_batch(sql)?;
                    }
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                    tx.commit()?;
                    info!(path = %path.display(), version = SCHEMA_VERSION, "created the store's schema");
                }
                Ok(())
            },
        )?;
    }
    if matches!(found, Found::Version1 | Found::Version2 | Found::Version3) {
        retry_busy(
            path,
            &Patience::unbounded(opts.busy_log_every),
            "upgrade the schema",
            || {
                let started = std::time::Instant::now();
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let from = classify(path, &tx)?;
                let mut removed = 0;
                let mut events: Option<i64> = None;
                if from == Found::Version1 {
                    removed = tx.execute(DEDUPE_DEAD_LETTERS, [])?;
                    tx.execute_batch(SCHEMA_V2)?;
                }
                if matches!(from, Found::Version1 | Found::Version2) {
                    let rows: i64 =
                        tx.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                    events = Some(rows);
                    if rows > 1_000_000 {
                        info!(
                            path = %path.display(),
                            events = rows,
                            "upgrading the store's schema to version 3: rewriting the events table \
                             (about as long as loading it took)"
                        );
                    }
                    tx.execute_batch(UPGRADE_V2_TO_V3)?;
                    tx.execute_batch(EVENTS_NAMED)?;
                }
                if matches!(from, Found::Version1 | Found::Version2 | Found::Version3) {
                    tx.execute_batch(UPGRADE_V3_TO_V4)?;
                    tx.execute_batch(SCHEMA_V4)?;
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                    tx.commit()?;
                    info!(
                        path = %path.display(),
                        from = match from {
                            Found::Version1 => 1,
                            Found::Version2 => 2,
                            _ => 3,
                        },
                        to = SCHEMA_VERSION,
                        duplicate_dead_letters_removed = removed,
                        events = ?events,
                        elapsed_s = started.elapsed().as_secs_f64(),
                        "upgraded the store's schema"
                    );
                }
                Ok(())
            },
        )?;
    }
    Ok(conn)
}

/// The database's id (`store_identity`, made with the schema).
pub(crate) fn database_id(conn: &Connection, path: &Path) -> Result<String, StoreError> {
    conn.query_row(
        "SELECT database_id FROM store_identity WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(|e| StoreError::from_sqlite(path, e))
}
