//! Waiting for another connection's lock: retry the whole unit of work with
//! exponential backoff, for as long as it takes, and say so in the log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::StoreError;
use crate::error::is_busy;

/// First pause after SQLITE_BUSY (on top of SQLite's own short busy timeout).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause: waiting longer between tries only delays the writer once
/// the lock is free.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// An error inside a unit of work: SQLite's, which may be "busy" and worth a
/// retry, or one of ours, which never is.
#[derive(Debug)]
pub(crate) enum Failure {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Sqlite(e)
    }
}

/// How a unit of work waits for another connection's lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience<'a> {
    /// How often to say in the log that it is still waiting.
    pub log_every: Duration,
    /// Once set, the next "busy" ends the wait (`Store::set_give_up`).
    pub give_up: Option<&'a AtomicBool>,
    /// Longest wait (`StoreOptions::lock_wait_limit`); `None`: unbounded.
    pub limit: Option<Duration>,
}

impl Patience<'_> {
    /// Waits as long as it takes, saying so every `log_every`.
    pub(crate) fn unbounded(log_every: Duration) -> Patience<'static> {
        Patience {
            log_every,
            give_up: None,
            limit: None,
        }
    }
}

/// Runs `work` until it succeeds or fails with anything but "busy".
///
/// `work` must be a whole transaction (or a single statement): when it fails
/// its transaction has been rolled back, so running it again is safe and
/// nothing is half-written. Waiting is unbounded unless `patience` says
/// otherwise: a lock held by a backup or a long query ends eventually, and
/// giving up would only turn a pause into a crash and a redelivery. The
/// exceptions: once `give_up` is set, or once `limit` has passed, the next
/// "busy" ends the wait with [`StoreError::GaveUp`], nothing written (see
/// `Store::set_give_up`, `StoreOptions::lock_wait_limit`).
pub(crate) fn retry_busy<T>(
    path: &Path,
    patience: &Patience<'_>,
    what: &str,
    mut work: impl FnMut() -> Result<T, Failure>,
) -> Result<T, StoreError> {
    let mut started: Option<Instant> = None;
    let mut last_log: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match work() {
            Ok(v) => {
                if let (Some(start), Some(_)) = (started, last_log) {
                    info!(
                        "database {} is free again after {:.1}s; {what} succeeded",
                        path.display(),
                        start.elapsed().as_secs_f64()
                    );
                }
                return Ok(v);
            }
            Err(Failure::Sqlite(e)) if is_busy(&e) => {
                let start = *started.get_or_insert_with(|| {
                    debug!(
                        "database {} is locked; will retry to {what}",
                        path.display()
                    );
                    Instant::now()
                });
                let Patience {
                    log_every,
                    give_up,
                    limit,
                } = *patience;
                if give_up.is_some_and(|g| g.load(Ordering::Acquire))
                    || limit.is_some_and(|l| start.elapsed() >= l)
                {
                    warn!(
                        "database {} is still locked after {:.1}s; giving up (to {what}), \
                         nothing written",
                        path.display(),
                        start.elapsed().as_secs_f64()
                    );
                    return Err(StoreError::GaveUp {
                        path: path.to_path_buf(),
                        what: what.to_string(),
                        waited: start.elapsed(),
                    });
                }
                let since = last_log.unwrap_or(start);
                if since.elapsed() >= log_every {
                    warn!(
                        "database {} is locked by another connection; waited {}s, retrying \
                         (to {what})",
                        path.display(),
                        start.elapsed().as_secs()
                    );
                    last_log = Some(Instant::now());
                }
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(Failure::Sqlite(e)) => return Err(StoreError::from_sqlite(path, e)),
            Err(Failure::Store(e)) => return Err(e),
        }
    }
}
