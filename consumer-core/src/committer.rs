//! The batch committer both consumers feed: one batching policy, one
//! SQLite writer, whatever the consumption model.
//!
//! ```text
//! feed (poll loop / stream handler) ──push──▶ open batch ──taken by──▶ writer thread: SQLite commit
//!                                             (≤ --batch-size)         (one batch in flight)
//! ```
//!
//! - The feed only hands each decoded message over ([`Committer::push`],
//!   or [`Committer::push_async`] on tokio). Everything else happens here,
//!   so that pull and push batch identically and differ only in how
//!   messages arrive.
//! - **Policy**, applied by the writer thread: it takes the open batch when
//!   the batch is full (`--batch-size`), when its first message is
//!   `--flush-interval-ms` old, or when a flush is asked for, and only once
//!   the previous batch is committed. A due batch therefore keeps filling
//!   while the writer is busy, so batches grow by themselves under load
//!   and stay small when traffic is light.
//! - **No busy wait**: the writer sleeps on a condition variable until a
//!   batch opens, fills, comes due (a timed wait on its due time) or is
//!   flushed; the feed never sets timers and never polls the writer. It
//!   waits only when the open batch is full and the writer still busy
//!   (backpressure): blocking on a condition variable (pull), or awaiting a
//!   [`tokio::sync::Notify`] (push), until the writer takes the batch.
//! - **Bounded memory**: the open batch and the batch in flight, each at
//!   most `--batch-size` messages, whatever the backlog; the feed stops
//!   taking messages from librdkafka while it waits, and librdkafka's own
//!   prefetch queue is bounded by its settings.
//! - **Two batches**, swapped: the writer commits one while the feed fills
//!   the other, and hands its cleared batch back as the next open one.
//! - **Offsets**: each commit stores the batch's offsets in the same SQLite
//!   transaction ([`StoreWriter::commit`]), which hands the store's next
//!   offsets to [`crate::pending::PendingOffsets`], the one owner of what
//!   goes to Kafka.
//! - **Revocation** ([`crate::context`]): librdkafka calls the rebalance
//!   handler from inside the feed's poll, so the feed is not adding
//!   messages, and every message it received is in the open batch, in
//!   flight, or committed. [`Committer::flush`] has the writer take the
//!   open batch at once and waits until nothing is open or in flight. The
//!   writer is a thread of its own and never waits for the feed, so this
//!   cannot deadlock, whichever thread (the poll loop, a tokio worker) the
//!   handler runs on.
//! - **Failure**: a batch that fails for good stops the writer; nothing
//!   after it is written, so no offset passes it. The feed gets the error
//!   once (from whichever call notices it first), then
//!   [`ConsumerError::WriterStopped`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use store::Batch;
use tokio::sync::Notify;

use crate::error::ConsumerError;
use crate::writer::{Decoded, StoreWriter};

/// See the module documentation. Shared (in an `Arc`) by the feed and the
/// rebalance handler.
pub struct Committer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<StoreWriter>>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("batch_size", &self.shared.batch_size)
            .field("flush_interval", &self.shared.flush_interval)
            .finish_non_exhaustive()
    }
}

/// The default of [`Committer::set_wait_limit`]: half of librdkafka's
/// default `max.poll.interval.ms` (300 s).
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(150);

/// What the feed and the writer thread share.
struct Shared {
    state: Mutex<State>,
    /// The writer waits on it for a batch to open, fill or be flushed, or
    /// for the stop.
    to_writer: Condvar,
    /// A blocking feed waits on it for room, or for a flush to complete.
    to_feed: Condvar,
    /// An async feed waits on it for room.
    room: Notify,
    /// Set when the writer stops (failed, or gone), so that the feed
    /// notices without taking the lock for every message.
    stopped: AtomicBool,
    /// Set to make a commit waiting for another connection's lock give up
    /// (see [`Committer::flush_within`]).
    give_up: Arc<AtomicBool>,
    /// Longest time the feed blocks (for room, or for a flush) before the
    /// waiting commit gives up, in ms; see [`Committer::set_wait_limit`].
    wait_limit_ms: AtomicU64,
    batch_size: usize,
    flush_interval: Duration,
}

struct State {
    /// The batch the feed fills.
    open: Batch,
    /// When the open batch must be taken at the latest (set with its first
    /// message).
    due: Option<Instant>,
    /// The writer is committing a batch.
    in_flight: bool,
    /// A flush asks the writer to take the open batch now.
    flush: bool,
    /// The writer thread must end.
    stop: bool,
    /// The writer thread has ended (stopped, failed or panicked).
    writer_gone: bool,
    /// A commit failed, or the writer thread panicked: nothing more is
    /// written.
    failed: bool,
    /// Why, until someone reports it.
    failure: Option<ConsumerError>,
    /// The writer sleeps on `to_writer` (so a notification is needed).
    writer_waiting: bool,
    /// Threads sleeping on `to_feed`.
    feed_waiting: usize,
}

impl State {
    /// Whether the writer will commit nothing more.
    fn stopped(&self) -> bool {
        self.failed || self.writer_gone
    }

    /// The failure, the first time it is asked for; afterwards, or when
    /// the writer just stopped, [`ConsumerError::WriterStopped`].
    fn take_error(&mut self) -> ConsumerError {
        self.failure.take().unwrap_or(ConsumerError::WriterStopped)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the writer if it sleeps. Called with the lock held, so the
    /// writer cannot be between its check and its sleep.
    fn wake_writer(&self, st: &State) {
        if st.writer_waiting {
            self.to_writer.notify_one();
        }
    }

    /// Wakes whatever feed waits for room or for a flush.
    fn wake_feed(&self, st: &State) {
        if st.feed_waiting > 0 {
            self.to_feed.notify_all();
        }
        self.room.notify_waiters();
    }

    /// Sleeps as the writer, until woken or until `timeout`.
    fn writer_sleep<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        st.writer_waiting = true;
        let mut st = match timeout {
            Some(t) => {
                self.to_writer
                    .wait_timeout(st, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.to_writer.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
        st.writer_waiting = false;
        st
    }

    /// Sleeps as a blocking feed, until the writer wakes it or (when
    /// given) until `deadline`.
    fn feed_sleep_until<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        st.feed_waiting += 1;
        let mut st = match deadline {
            Some(d) => {
                self.to_feed
                    .wait_timeout(st, d.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.to_feed.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
        st.feed_waiting -= 1;
        st
    }

    /// Whether the open batch has room for another message.
    fn has_room(&self, st: &State) -> bool {
        st.open.len() < self.batch_size
    }
}

impl Committer {
    /// Starts the writer thread with `store`: batches of `topic`, taken at
    /// `batch_size` messages or `flush_interval` after their first.
    pub fn start(
        mut store: StoreWriter,
        topic: &str,
        batch_size: usize,
        flush_interval: Duration,
    ) -> Result<Committer, ConsumerError> {
        let give_up = Arc::new(AtomicBool::new(false));
        store.set_give_up(give_up.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                open: Batch::with_capacity(topic, batch_size),
                due: None,
                in_flight: false,
                flush: false,
                stop: false,
                writer_gone: false,
                failed: false,
                failure: None,
                writer_waiting: false,
                feed_waiting: 0,
            }),
            to_writer: Condvar::new(),
            to_feed: Condvar::new(),
            room: Notify::new(),
            stopped: AtomicBool::new(false),
            give_up,
            wait_limit_ms: AtomicU64::new(DEFAULT_WAIT_LIMIT.as_millis() as u64),
            batch_size,
            flush_interval,
        });
        let spare = Batch::with_capacity(topic, batch_size);
        let for_writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let gone = Gone(&for_writer);
                let mut store = store;
                write_loop(gone.0, &mut store, spare);
                store
            })
            .map_err(|source| ConsumerError::Thread {
                what: "SQLite writer",
                source,
            })?;
        Ok(Committer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Adds `message` to the open batch; returns whether the batch is now
    /// full (and waiting for the writer).
    fn add(&self, message: Decoded) -> Result<bool, ConsumerError> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.stopped() {
            return Err(st.take_error());
        }
        let opens = st.open.is_empty();
        if opens {
            st.due = Some(Instant::now() + shared.flush_interval);
        }
        message.push_into(&mut st.open);
        let full = !shared.has_room(&st);
        if opens || full {
            shared.wake_writer(&st);
        }
        Ok(full)
    }

    /// Hands `message` over, for a feed that may block (pull). When the
    /// open batch is full, waits until the writer takes it (backpressure:
    /// at most the duration of the commit in flight).
    pub fn push(&self, message: Decoded) -> Result<(), ConsumerError> {
        if !self.add(message)? {
            return Ok(());
        }
        let shared = &*self.shared;
        let mut deadline = Some(Instant::now() + self.wait_limit());
        let mut st = shared.lock();
        loop {
            if st.stopped() {
                return Err(st.take_error());
            }
            if shared.has_room(&st) {
                shared.give_up.store(false, Ordering::Release);
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.give_up_waiting();
                deadline = None;
            }
            st = shared.feed_sleep_until(st, deadline);
        }
    }

    /// Longest time the feed may block on the writer (for room in a full
    /// batch, or for a flush before partitions are revoked) before the
    /// commit that holds it up gives up. A consumer that stops polling for
    /// `max.poll.interval.ms` is evicted from its group, and its partitions'
    /// next owner starts from the group's offsets: a batch committed here
    /// afterwards would be stored twice. So the consumers set half that
    /// interval. The wait only runs out while another process holds the
    /// database's write lock; a commit that has the lock always completes.
    pub fn set_wait_limit(&self, limit: Duration) {
        self.shared
            .wait_limit_ms
            .store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// See [`Committer::set_wait_limit`].
    pub fn wait_limit(&self) -> Duration {
        Duration::from_millis(self.shared.wait_limit_ms.load(Ordering::Relaxed))
    }

    /// The wait for the writer ran out: its commit, if waiting for the
    /// lock, gives up at its next try (nothing written) and the writer
    /// stops with `StoreError::GaveUp`.
    fn give_up_waiting(&self) {
        tracing::error!(
            "the database's write lock has been held by another process for over {:?}: a \
             consumer that does not poll for max.poll.interval.ms is evicted from its group, \
             so the batches not yet committed are given up (nothing of them written; their \
             events stay in Kafka) and this consumer stops. A restart resumes from its database",
            self.wait_limit()
        );
        self.shared.give_up.store(true, Ordering::Release);
    }

    /// Hands `message` over, for a feed on an async runtime (push). When the
    /// open batch is full, awaits the writer taking it (backpressure)
    /// without blocking the thread.
    pub async fn push_async(&self, message: Decoded) -> Result<(), ConsumerError> {
        if !self.add(message)? {
            return Ok(());
        }
        let shared = &*self.shared;
        let mut deadline = Some(tokio::time::Instant::now() + self.wait_limit());
        loop {
            let notified = shared.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so that a wake-up in between is
            // not lost.
            notified.as_mut().enable();
            {
                let mut st = shared.lock();
                if st.stopped() {
                    return Err(st.take_error());
                }
                if shared.has_room(&st) {
                    shared.give_up.store(false, Ordering::Release);
                    return Ok(());
                }
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        self.give_up_waiting();
                        deadline = None;
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Commits the open batch now and returns once nothing is open or in
    /// flight: before partitions are revoked, and at the end of a run.
    /// Blocks the calling thread for at most two commits (the one in
    /// flight, then the open batch). Call it from the feed's thread (the
    /// rebalance handler runs inside the feed's poll), so that nothing is
    /// added meanwhile.
    ///
    pub fn flush(&self) -> Result<(), ConsumerError> {
        self.flush_until(None)
    }

    /// [`Committer::flush`], but a commit still waiting for another
    /// connection's lock after `limit` gives up: its transaction is rolled
    /// back, nothing of it written, and the writer stops with
    /// `StoreError::GaveUp` (returned here). A commit that got the lock in
    /// time completes. For a rebalance, which cannot wait past the group's
    /// `max.poll.interval.ms`: the abandoned events stay unread in Kafka.
    pub fn flush_within(&self, limit: Duration) -> Result<(), ConsumerError> {
        self.flush_until(Some(Instant::now() + limit))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<(), ConsumerError> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if !st.open.is_empty() {
            st.flush = true;
            shared.wake_writer(&st);
        }
        let mut deadline = deadline;
        while !st.stopped() && (st.in_flight || !st.open.is_empty()) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // From now on the writer's next try at the lock ends its
                // wait; then it stops, and this loop with it.
                self.give_up_waiting();
                deadline = None;
            }
            st = shared.feed_sleep_until(st, deadline);
        }
        // The commit got through after all: later ones wait as usual.
        shared.give_up.store(false, Ordering::Release);
        st.flush = false;
        if st.failed || (st.writer_gone && !st.open.is_empty()) {
            return Err(st.take_error());
        }
        Ok(())
    }

    /// The writer's error, once, if it has failed; a load and no lock
    /// while it has not.
    pub fn check(&self) -> Result<(), ConsumerError> {
        if !self.shared.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut st = self.shared.lock();
        if st.failed {
            return Err(st.take_error());
        }
        Ok(())
    }

    /// Stops the writer thread, leaving the open batch uncommitted (call
    /// [`Committer::flush`] first), and returns the store writer with the
    /// run's figures.
    pub fn stop(&self) -> Result<StoreWriter, ConsumerError> {
        {
            let mut st = self.shared.lock();
            st.stop = true;
            self.shared.wake_writer(&st);
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(ConsumerError::WriterStopped)?;
        thread.join().map_err(|_| ConsumerError::WriterStopped)
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Marks the writer gone however its thread ends (a panic included) and
/// wakes every waiter, so that no feed waits for a writer that is not
/// there.
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.writer_gone = true;
        if !st.stop {
            st.failed = true;
        }
        st.in_flight = false;
        self.0.stopped.store(true, Ordering::Release);
        self.0.to_feed.notify_all();
        self.0.room.notify_waiters();
    }
}

/// The writer thread: takes the open batch when the policy says so,
/// commits it without holding the lock, and sleeps otherwise.
fn write_loop(shared: &Shared, store: &mut StoreWriter, mut batch: Batch) {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return;
        }
        if st.open.is_empty() {
            st = shared.writer_sleep(st, None);
            continue;
        }
        let take_now = st.flush || !shared.has_room(&st);
        if !take_now {
            let now = Instant::now();
            let due = st.due.unwrap_or(now);
            if due > now {
                st = shared.writer_sleep(st, Some(due - now));
                continue;
            }
        }
        std::mem::swap(&mut st.open, &mut batch);
        st.due = None;
        st.in_flight = true;
        shared.wake_feed(&st);
        drop(st);

        let result = store.commit(&batch);
        if result.is_ok() {
            // Outside the lock: freeing a batch's events takes milliseconds,
            // and the feed takes the lock for every message it adds.
            batch.clear();
        }

        st = shared.lock();
        st.in_flight = false;
        match result {
            Ok(_) => shared.wake_feed(&st),
            Err(e) => {
                // The store writer refuses every later batch anyway; the
                // open one is dropped with its offsets. `Gone` wakes the
                // feed.
                st.failed = true;
                st.failure = Some(e);
                shared.stopped.store(true, Ordering::Release);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pending::PendingOffsets;
    use crate::stats::RunClock;
    use crate::writer::tests::deposit;

    const TOPIC: &str = "t";
    /// Longer than any test: only size and flushes take batches.
    const NEVER: Duration = Duration::from_secs(3600);

    fn event(partition: i32, offset: i64) -> Decoded {
        Decoded::Event(store::BatchEvent {
            partition,
            offset,
            event: deposit(offset as u64 + 1 + partition as u64 * 1_000_000),
            payload: vec![1],
        })
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        committed: Arc<PendingOffsets>,
        committer: Committer,
    }

    fn start(batch_size: usize, flush_interval: Duration) -> Fixture {
        start_with(batch_size, flush_interval, |_| {})
    }

    /// `prepare` gets the store writer before the writer thread does.
    fn start_with(
        batch_size: usize,
        flush_interval: Duration,
        prepare: impl FnOnce(&StoreWriter),
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let committed = Arc::new(PendingOffsets::default());
        let store = StoreWriter::open(
            &dir.path().join("c.db"),
            &store::StoreOptions::default(),
            committed.clone(),
            Arc::new(RunClock::new()),
        )
        .unwrap();
        prepare(&store);
        let committer = Committer::start(store, TOPIC, batch_size, flush_interval).unwrap();
        Fixture {
            _dir: dir,
            committed,
            committer,
        }
    }

    /// Waits until the writer reports committed offsets. The bound is
    /// only there so that a committer that never commits fails the test
    /// instead of hanging it.
    fn wait_for_committed(f: &Fixture) -> Vec<(i32, i64)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            f.committer.check().unwrap();
            let offsets = f.committed.due(Instant::now() + Duration::from_secs(3600));
            if !offsets.is_empty() {
                return offsets;
            }
            assert!(Instant::now() < deadline, "nothing was ever committed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn full_batches_are_committed_by_size_and_never_grow_past_it() {
        let f = start(100, NEVER);
        for o in 0..250 {
            f.committer.push(event(0, o)).unwrap();
            assert!(f.committer.shared.lock().open.len() <= 100);
        }
        // Two full batches went by size alone; the last 50 wait.
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 250)]);
        let store = f.committer.stop().unwrap();
        assert_eq!(store.stats().batches(), 3);
        assert_eq!(store.stats().events_committed(), 250);
    }

    #[test]
    fn an_open_batch_is_committed_when_due_without_a_flush() {
        let f = start(1_000, Duration::from_millis(1));
        f.committer.push(event(3, 0)).unwrap();
        assert_eq!(wait_for_committed(&f), vec![(3, 1)]);
        assert_eq!(f.committed.snapshot(), vec![(3, 1)]);
        let store = f.committer.stop().unwrap();
        assert_eq!(store.stats().batches(), 1);
    }

    #[test]
    fn flush_commits_everything() {
        let f = start(1_000, NEVER);
        f.committer.push(event(0, 0)).unwrap();
        f.committer.push(event(1, 0)).unwrap();
        f.committer.push(event(1, 1)).unwrap();
        assert!(f.committed.snapshot().is_empty(), "nothing due yet");
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 1), (1, 2)]);
        // Nothing open: a second flush returns at once.
        f.committer.flush().unwrap();
        assert_eq!(f.committer.stop().unwrap().stats().batches(), 1);
    }

    #[test]
    fn committed_offsets_are_recorded_per_partition() {
        let f = start(2, NEVER);
        for o in 0..4 {
            f.committer.push(event(0, o)).unwrap();
        }
        f.committer.push(event(1, 0)).unwrap();
        // Both full batches were taken by size; wait until both are in.
        let mut seen = Vec::new();
        while seen.last() != Some(&(0, 4)) {
            seen.extend(wait_for_committed(&f));
        }
        assert!(seen.iter().all(|&(p, _)| p == 0), "{seen:?}");
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 4), (1, 1)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_async_feed_awaits_room_without_blocking() {
        let f = start(10, NEVER);
        for o in 0..95 {
            f.committer.push_async(event(2, o)).await.unwrap();
            assert!(f.committer.shared.lock().open.len() <= 10);
        }
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(2, 95)]);
        let store = f.committer.stop().unwrap();
        assert_eq!(store.stats().batches(), 10);
    }

    #[test]
    fn a_failed_commit_stops_everything_and_no_offset_passes_it() {
        // The database may not grow: a first event fits in the pages it
        // has, a batch of thousands does not (as on a full disk).
        let f = start_with(10_000, NEVER, |store| {
            store.store_for_tests().forbid_growth_for_tests()
        });
        f.committer.push(event(0, 0)).unwrap();
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 1)]);
        for o in 1..5_000 {
            f.committer.push(event(0, o)).unwrap();
        }
        let err = f.committer.flush().unwrap_err();
        assert!(
            matches!(err, ConsumerError::Store(ref e) if e.is_fatal()),
            "{err}"
        );
        assert!(matches!(
            f.committer.push(event(0, 5_000)),
            Err(ConsumerError::WriterStopped)
        ));
        assert!(matches!(
            f.committer.check(),
            Err(ConsumerError::WriterStopped)
        ));
        assert!(matches!(
            f.committer.flush(),
            Err(ConsumerError::WriterStopped)
        ));
        assert_eq!(
            f.committed.snapshot(),
            vec![(0, 1)],
            "offsets stay behind the failed batch"
        );
        assert_eq!(f.committer.stop().unwrap().stats().events_committed(), 1);
    }

    #[test]
    fn a_bounded_flush_gives_up_a_batch_the_lock_holds_and_writes_nothing() {
        let f = start(1_000, NEVER);
        f.committer.push(event(0, 0)).unwrap();
        f.committer.flush_within(Duration::from_secs(60)).unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 1)]);

        // Another process takes the write lock and keeps it.
        let locker = rusqlite::Connection::open(f._dir.path().join("c.db")).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        f.committer.push(event(0, 1)).unwrap();
        f.committer.push(event(0, 2)).unwrap();
        let err = f
            .committer
            .flush_within(Duration::from_millis(200))
            .unwrap_err();
        assert!(
            matches!(err, ConsumerError::Store(store::StoreError::GaveUp { .. })),
            "{err}"
        );
        locker.execute_batch("COMMIT").unwrap();
        drop(locker);
        assert_eq!(f.committed.snapshot(), vec![(0, 1)], "nothing of the batch");
        let check = store::Store::open(&f._dir.path().join("c.db")).unwrap();
        assert_eq!(check.summary().unwrap().events, 1, "nothing written");
        assert_eq!(check.stored_offsets(TOPIC).unwrap()[&0], 1);
        assert!(matches!(
            f.committer.push(event(0, 3)),
            Err(ConsumerError::WriterStopped)
        ));
    }

    #[test]
    fn a_bounded_flush_that_gets_the_lock_in_time_commits() {
        let f = start(1_000, NEVER);
        let locker = rusqlite::Connection::open(f._dir.path().join("c.db")).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        f.committer.push(event(0, 0)).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            locker.execute_batch("COMMIT").unwrap();
        });
        f.committer.flush_within(Duration::from_secs(60)).unwrap();
        release.join().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 1)]);
        f.committer.push(event(0, 1)).unwrap();
        f.committer.flush().unwrap();
        assert_eq!(f.committed.snapshot(), vec![(0, 2)]);
    }

    #[test]
    fn a_feed_blocked_by_a_lock_gives_up_within_the_wait_limit() {
        let f = start(2, NEVER);
        f.committer.set_wait_limit(Duration::from_millis(200));
        let locker = rusqlite::Connection::open(f._dir.path().join("c.db")).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Two fill a batch, the writer takes it and waits for the lock; two
        // more fill the next one, and the fifth has no room.
        let mut result = Ok(());
        for o in 0..5 {
            result = f.committer.push(event(0, o));
            if result.is_err() {
                break;
            }
        }
        let err = result.unwrap_err();
        assert!(
            matches!(err, ConsumerError::Store(store::StoreError::GaveUp { .. })),
            "{err}"
        );
        locker.execute_batch("COMMIT").unwrap();
        drop(locker);
        let check = store::Store::open(&f._dir.path().join("c.db")).unwrap();
        assert_eq!(check.summary().unwrap().events, 0, "nothing written");
    }
}
