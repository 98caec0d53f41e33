//! What can go wrong with the store, worded for the person who reads the log.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Why the store refused to open a file or could not commit a batch.
///
/// Every variant names the database file, because a consumer log line is
/// often the only thing an operator sees. A failed [`commit`] is always
/// rolled back as a whole: no rows and no offsets of that batch are stored.
/// "Locked by another connection" never appears here: the store waits for
/// the lock itself (see [`StoreOptions::busy_log_every`]).
///
/// [`commit`]: crate::Store::commit
/// [`StoreOptions::busy_log_every`]: crate::StoreOptions::busy_log_every
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another connection held the write lock, and the caller asked the
    /// wait to end ([`crate::Store::set_give_up`]): the transaction was
    /// rolled back, nothing of it was written.
    #[error(
        "database {} stayed locked by another connection for {:.1}s; gave up trying to {what} \
         (nothing written)",
        path.display(),
        waited.as_secs_f64()
    )]
    GaveUp {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// How long it waited.
        waited: std::time::Duration,
    },

    /// The directory that should hold a new database does not exist. The
    /// store does not create directories: a typo in a path should not
    /// silently start an empty database somewhere else.
    #[error(
        "cannot create database {}: directory {} does not exist",
        path.display(),
        dir.display()
    )]
    MissingDirectory {
        /// The database file asked for.
        path: PathBuf,
        /// Its missing parent directory.
        dir: PathBuf,
    },

    /// The new database file could not be created (permissions, read-only
    /// file system, ...). Nothing was created.
    #[error("cannot create database {}: {io}", path.display())]
    CreateFile {
        /// The database file asked for.
        path: PathBuf,
        /// What the operating system said.
        io: std::io::Error,
    },

    /// The file exists but cannot be opened as a database at all (a
    /// directory, no permission, ...).
    #[error("cannot open database {}: {detail}", path.display())]
    CannotOpen {
        /// The database file.
        path: PathBuf,
        /// Why.
        detail: String,
    },

    /// The file exists and is not SQLite. It was left untouched.
    #[error(
        "{} is not a SQLite database; refusing to use it (the file was not modified). \
         Point the consumer at a new path or at an existing banking store",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },

    /// The database was written by a newer version of this program. It was
    /// left untouched; upgrade the consumer instead.
    #[error(
        "database {} has schema version {found}, newer than the {supported} this program \
         supports; refusing to use it (the file was not modified). Use a newer build",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA user_version`.
        found: i32,
        /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
        supported: i32,
    },

    /// A SQLite database that belongs to something else (tables of its own,
    /// or a version number but not our tables). It was left untouched.
    #[error(
        "database {} is not a banking store ({found}); refusing to use it \
         (the file was not modified)",
        path.display()
    )]
    NotABankingStore {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },

    /// The disk, or SQLite's `max_page_count`, has no room left.
    #[error(
        "database {} is full: the disk (or max_page_count) has no room; free space and \
         restart, the batch was rolled back and its offsets were not stored ({detail})",
        path.display()
    )]
    Full {
        /// The database file.
        path: PathBuf,
        /// SQLite's message and code.
        detail: String,
    },

    /// The operating system failed a read or write of the database.
    #[error(
        "I/O error on database {}: {detail}; check the disk and the file system \
         (a batch in progress was rolled back)",
        path.display()
    )]
    Io {
        /// The database file.
        path: PathBuf,
        /// SQLite's message and code.
        detail: String,
    },

    /// SQLite found the file damaged.
    #[error(
        "database {} is corrupt: {detail}; restore it from a backup or move it aside \
         and let the consumer start a new one",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's message and code.
        detail: String,
    },

    /// The file, its directory or the file system does not allow writing.
    #[error(
        "database {} is read-only: {detail}; the consumer must be able to write the file, \
         its -wal and -shm files and their directory",
        path.display()
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// SQLite's message and code.
        detail: String,
    },

    /// Adding one batch to a balance would leave the 64-bit range. The
    /// batch was rolled back rather than stored with a wrong balance.
    #[error(
        "database {}: the balance of account {account_id} in {currency} would overflow \
         64 bits; the batch was rolled back",
        path.display()
    )]
    BalanceOverflow {
        /// The database file.
        path: PathBuf,
        /// The account.
        account_id: u64,
        /// The currency of the balance.
        currency: String,
    },

    /// A batch would continue a partition past the offset this database
    /// stopped at: the offsets in between would be skipped without a trace.
    /// Our topics hold neither transactions nor compaction, so their offsets
    /// are contiguous and a jump means events went missing on the way (a
    /// broker that answered a fetch from a later offset than asked, or a
    /// log start that moved past the stored offset). Nothing of the batch
    /// was stored.
    #[error(
        "database {}: partition {partition} of {topic} would continue at offset {found}, but          this database stopped at {expected}: {} offset(s) in between were never delivered.          Nothing of this batch was stored. If the broker deleted them (retention,          DeleteRecords), restart with --accept-data-loss to record the gap and go on",
        path.display(),
        found - expected
    )]
    OffsetGap {
        /// The database file.
        path: PathBuf,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset this database expects.
        expected: i64,
        /// The offset the batch continues at.
        found: i64,
    },

    /// Any other SQLite failure.
    #[error("database {}: {detail}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's primary result code, when there is one.
        code: Option<ErrorCode>,
        /// SQLite's message and code.
        detail: String,
    },
}

impl StoreError {
    /// Whether the consumer should stop rather than try the same batch again.
    ///
    /// Only a few SQLite conditions pass by themselves (out of memory, an
    /// interrupt, a schema change seen by a prepared statement, a locking
    /// protocol hiccup); after those the transaction was rolled back and the
    /// very same batch may be committed again. Everything else (a full disk,
    /// I/O errors, corruption, a file that is not ours) needs a person, and
    /// retrying would only spin.
    pub fn is_fatal(&self) -> bool {
        match self {
            StoreError::Sqlite { code, .. } => !matches!(
                code,
                Some(
                    ErrorCode::OutOfMemory
                        | ErrorCode::OperationInterrupted
                        | ErrorCode::SchemaChanged
                        | ErrorCode::FileLockingProtocolFailed
                )
            ),
            _ => true,
        }
    }

    /// The database file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::GaveUp { path, .. }
            | StoreError::MissingDirectory { path, .. }
            | StoreError::CreateFile { path, .. }
            | StoreError::CannotOpen { path, .. }
            | StoreError::NotADatabase { path }
            | StoreError::NewerSchema { path, .. }
            | StoreError::NotABankingStore { path, .. }
            | StoreError::Full { path, .. }
            | StoreError::Io { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::ReadOnly { path, .. }
            | StoreError::BalanceOverflow { path, .. }
            | StoreError::OffsetGap { path, .. }
            | StoreError::Sqlite { path, .. } => path,
        }
    }

    /// Sorts a SQLite error into the variant an operator can act on.
    pub(crate) fn from_sqlite(path: &Path, err: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        let detail = describe(&err);
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full { path, detail },
            Some(ErrorCode::SystemIoFailure) => StoreError::Io { path, detail },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { path, detail },
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, detail },
            Some(ErrorCode::CannotOpen) => StoreError::CannotOpen { path, detail },
            code => StoreError::Sqlite { path, code, detail },
        }
    }
}

/// SQLite's message plus its extended result code, which tells apart the
/// dozens of I/O errors (`SQLITE_IOERR_WRITE`, `_FSYNC`, ...) that share one
/// message.
fn describe(err: &rusqlite::Error) -> String {
    match err.sqlite_error() {
        Some(e) => format!("{err} (SQLite code {})", e.extended_code),
        None => err.to_string(),
    }
}

/// Whether another connection holds the lock we need: wait and try again.
pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
