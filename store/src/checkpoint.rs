//! WAL checkpoints off the commit path.
//!
//! In WAL mode a commit appends its pages to the `-wal` file. A checkpoint
//! copies them into the database file and syncs both files, after which
//! the WAL can start over from its beginning. SQLite's automatic checkpoint
//! runs inside the commit that crosses its threshold, so that commit also
//! waits for the disk to flush ~64 MiB twice: 50–280 ms every few seconds
//! on this project's VM disk, against under 10 ms for the same commits in
//! memory (`cargo run --release -p store --example commit_stalls`).
//!
//! Here a thread with its own connection does that work while the writer
//! goes on committing:
//!
//! - after each commit the writer learns how many pages the WAL holds
//!   (SQLite's WAL hook); once [`STEP_PAGES`] of them are not yet copied,
//!   it asks the thread for a pass (a `PASSIVE` checkpoint: it copies what
//!   was committed when it started, syncs, and never blocks the writer);
//! - once the WAL holds [`RESTART_PAGES`], the writer asks for one more
//!   pass, and after it copies the few pages committed since (those of the
//!   commits during that pass), itself, with the disk mostly flushed
//!   already. With every page copied, SQLite starts the WAL over at the
//!   next commit;
//! - should the thread fall behind (a slow disk, a reader holding an old
//!   snapshot), the writer waits for its pass at [`MAX_PAGES`] and then
//!   checkpoints itself, so the WAL stays bounded as before.
//!
//! Durability is SQLite's, unchanged: `synchronous=NORMAL` syncs the WAL
//! before a checkpoint copies it, whichever connection runs it, and a
//! process killed in the middle of a checkpoint leaves a consistent file
//! (the WAL is replayed on the next open).

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

use crate::StoreOptions;
use crate::schema::WAL_AUTOCHECKPOINT_PAGES;

/// Pages committed but not yet copied after which the writer asks for a
/// pass: 16 MiB at 16 KiB pages.
pub(crate) const STEP_PAGES: i32 = 1_000;

/// WAL size at which it is started over: after one more pass, the writer
/// copies the pages committed during it. The same 64 MiB as SQLite's
/// automatic checkpoint when this thread is off: the file it reuses stays
/// that size.
pub(crate) const RESTART_PAGES: i32 = WAL_AUTOCHECKPOINT_PAGES as i32;

/// Pages the writer copies itself to start the WAL over, when no pass
/// ended since its last commit: 2 MiB.
pub(crate) const FINISH_PAGES: i32 = 128;

/// WAL size at which the writer stops for a pass in progress and
/// checkpoints itself: 256 MiB.
pub(crate) const MAX_PAGES: i32 = 16_000;

thread_local! {
    /// Pages in the WAL after the last commit on this thread, from SQLite's
    /// WAL hook; -1 when nothing was committed since it was read. The hook
    /// runs inside `COMMIT`, on the committing thread, so the commit that
    /// reads it right after is the one that set it.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(-1) };
}

fn record_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// What the writer and the checkpointing thread share.
#[derive(Default)]
struct State {
    /// A pass is asked for and has not started.
    requested: bool,
    /// A pass is running.
    running: bool,
    /// Pages of the WAL copied into the database by the last pass (its
    /// size when that pass started); 0 after the WAL started over.
    copied: i32,
    /// A pass ended since the writer last looked.
    fresh: bool,
    /// WAL size after the last commit, to notice that it started over.
    last_pages: i32,
    /// The WAL passed [`MAX_PAGES`] since it last started over (said once).
    outgrown: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in the other thread while it held the lock leaves a state
        // that is still meaningful (plain numbers); carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The checkpointing thread of one writing connection.
///
/// Dropping it stops and joins the thread. Drop it before the writing
/// connection: the last connection to close checkpoints the rest and
/// removes the WAL.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Starts the thread for the database at `path`, whose writing
    /// connection is `writer`, and turns off `writer`'s automatic
    /// checkpoint, unless `opts` turns background checkpoints off. When
    /// the thread's connection cannot be opened, says so and returns
    /// `None`: `writer` then keeps SQLite's automatic checkpoint, which is
    /// slower at the tail but just as safe.
    pub(crate) fn start(
        writer: &Connection,
        path: &Path,
        opts: &StoreOptions,
    ) -> Option<Checkpointer> {
        if !opts.background_checkpoints {
            return None;
        }
        let conn = match Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            // A checkpoint reads the WAL and writes the file directly; its
            // page cache is not used for that.
            c.pragma_update(None, "cache_size", -256)?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                warn!(
                    path = %path.display(),
                    error = %e,
                    "could not open a second connection for background checkpoints; \
                     commits will checkpoint themselves"
                );
                return None;
            }
        };
        if let Err(e) = writer.pragma_update(None, "wal_autocheckpoint", 0) {
            warn!(path = %path.display(), error = %e, "could not turn off automatic checkpoints");
            return None;
        }
        // After the pragma, which installs (or removes) a hook of its own.
        writer.wal_hook(Some(record_wal_pages));
        WAL_PAGES.set(-1);

        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            let path = path.to_path_buf();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(&conn, &path, &shared))
        };
        match thread {
            Ok(thread) => Some(Checkpointer {
                shared,
                thread: Some(thread),
                path: path.to_path_buf(),
            }),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "could not start the checkpoint thread");
                writer.wal_hook(None);
                let _ = writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES);
                None
            }
        }
    }

    /// Called by the writer after each write transaction it committed.
    pub(crate) fn after_commit(&self, writer: &Connection) {
        let pages = WAL_PAGES.replace(-1);
        if pages < 0 {
            return;
        }
        let mut state = self.shared.lock();
        if pages < state.last_pages || pages < state.copied {
            // The WAL started over at this commit (or a pass that ended
            // just before that reported pages of the old one).
            state.copied = 0;
            state.outgrown = false;
        }
        state.last_pages = pages;
        if pages >= MAX_PAGES {
            let since = Instant::now();
            while state.requested || state.running {
                state = self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            // Once per episode: a reader pinning an old snapshot keeps the
            // WAL this large for as long as it reads.
            let first = !std::mem::replace(&mut state.outgrown, true);
            drop(state);
            let waited_ms = since.elapsed().as_secs_f64() * 1e3;
            if first {
                warn!(
                    path = %self.path.display(),
                    wal_pages = pages,
                    waited_ms,
                    "the WAL outgrew the background checkpoints (a slow disk, or a reader \
                     holding an old snapshot); the writer checkpoints after each commit \
                     until it starts over"
                );
            } else {
                debug!(wal_pages = pages, waited_ms, "WAL still over its bound");
            }
            self.finish(writer);
            return;
        }
        // A pass ended since the last commit: what it left is at most what
        // this commit and those during the pass wrote.
        let fresh = std::mem::take(&mut state.fresh);
        if state.requested || state.running {
            return;
        }
        // `behind` that small means a pass (or an earlier finish) copied
        // the rest since the WAL started over.
        let behind = pages - state.copied;
        if pages >= RESTART_PAGES && (fresh || behind <= FINISH_PAGES) {
            drop(state);
            self.finish(writer);
        } else if behind >= STEP_PAGES || pages >= RESTART_PAGES {
            state.requested = true;
            drop(state);
            self.shared.changed.notify_all();
        }
    }

    /// Copies what the passes left, on the writer's connection, so that
    /// the next commit starts the WAL over.
    fn finish(&self, writer: &Connection) {
        let started = Instant::now();
        match passive(writer) {
            Ok((busy, wal, copied)) => {
                debug!(
                    busy,
                    wal,
                    copied,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "checkpoint finished on the writer"
                );
                let mut state = self.shared.lock();
                state.copied = copied;
            }
            Err(e) => warn!(path = %self.path.display(), error = %e, "checkpoint failed"),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: (busy, pages in the WAL, pages copied).
fn passive(conn: &Connection) -> rusqlite::Result<(i32, i32, i32)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// The thread: one pass per request, until stopped.
fn run(conn: &Connection, path: &Path, shared: &Shared) {
    let mut state = shared.lock();
    loop {
        while !state.requested && !state.stop {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        if state.stop {
            return;
        }
        state.requested = false;
        state.running = true;
        drop(state);

        let started = Instant::now();
        let result = passive(conn);
        let took = started.elapsed();

        state = shared.lock();
        state.running = false;
        match result {
            Ok((_, wal, copied)) if wal >= 0 => {
                state.copied = copied;
                state.fresh = true;
                debug!(
                    wal,
                    copied,
                    ms = took.as_secs_f64() * 1e3,
                    "background checkpoint"
                );
            }
            Ok(_) => {}
            Err(e) => {
                warn!(path = %path.display(), error = %e, "background checkpoint failed");
                // Not in a tight loop: the writer asks again after its next
                // commit.
                drop(state);
                std::thread::sleep(Duration::from_millis(100));
                state = shared.lock();
            }
        }
        shared.changed.notify_all();
    }
}
