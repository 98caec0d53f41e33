//! The one owner of the offsets bound for Kafka.
//!
//! SQLite holds the truth; Kafka gets a copy, so that lag tools, other
//! members' `--exit-when-idle` and the partitions' next owners see where
//! this member is. [`PendingOffsets`] holds, per partition assigned to this
//! member, the next offset SQLite has committed, as the store itself
//! reports it (never a batch's own offsets: a batch of redeliveries would
//! send an older offset), and which of them Kafka has not been sent yet:
//!
//! - the writer thread [`record`](PendingOffsets::record)s after each
//!   SQLite commit;
//! - the thread that polls sends what is [`due`](PendingOffsets::due),
//!   asynchronously, at most every [`KAFKA_COMMIT_EVERY`];
//! - a revocation [`take`](PendingOffsets::take)s the revoked partitions'
//!   entries, and only theirs (a cooperative rebalance revokes some and
//!   keeps the others, whose offsets must still go out), to commit them
//!   synchronously; taking them out matters: should a partition come back
//!   later, an entry from the earlier assignment would be stale;
//! - the end of a run [`take_all`](PendingOffsets::take_all)s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// At most one asynchronous offset commit to Kafka per this interval.
///
/// Sending one per batch (hundreds a second at live rates) was measured to
/// leave the group's offsets seconds behind on a replicated cluster: the
/// broker answers an offset commit once its offsets topic has replicated
/// it, and serves the requests of a connection in order, so they queued
/// (2.3 s behind on three nodes, ~200 events per partition stored twice
/// after a crash hand-over). Ten a second keep the group's offsets a
/// fraction of a second behind the database, and spare the broker the
/// rest.
pub const KAFKA_COMMIT_EVERY: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct PendingOffsets {
    inner: Mutex<Inner>,
    /// Something was recorded since the last [`PendingOffsets::due`]: the
    /// per-message check takes no lock otherwise.
    news: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per partition, the next offset committed to SQLite during this
    /// assignment.
    latest: BTreeMap<i32, i64>,
    /// The partitions whose latest offset Kafka has not been sent.
    unsent: BTreeSet<i32>,
    /// When offsets were last sent.
    sent_at: Option<Instant>,
}

impl PendingOffsets {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a SQLite commit: the store's next offsets of the batch's
    /// partitions. An offset never moves back.
    pub fn record(&self, offsets: &[(i32, i64)]) {
        if offsets.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for &(p, o) in offsets {
            let slot = inner.latest.entry(p).or_insert(o);
            if o >= *slot {
                *slot = o;
                inner.unsent.insert(p);
            }
        }
        self.news.store(true, Ordering::Release);
    }

    /// Whether anything was recorded since the last [`due`](Self::due): a
    /// load, no lock.
    #[inline]
    pub fn has_news(&self) -> bool {
        self.news.load(Ordering::Acquire)
    }

    /// The offsets not yet sent, if [`KAFKA_COMMIT_EVERY`] has passed since
    /// the last send (then they count as sent); else none, and they wait for
    /// a later call.
    pub fn due(&self, now: Instant) -> Vec<(i32, i64)> {
        self.news.store(false, Ordering::Release);
        let mut inner = self.lock();
        if inner.unsent.is_empty()
            || inner
                .sent_at
                .is_some_and(|t| now.saturating_duration_since(t) < KAFKA_COMMIT_EVERY)
        {
            return Vec::new();
        }
        inner.sent_at = Some(now);
        let unsent = std::mem::take(&mut inner.unsent);
        unsent.into_iter().map(|p| (p, inner.latest[&p])).collect()
    }

    /// Sending `offsets` failed before it left: they are unsent again
    /// (unless a revocation took their partitions meanwhile).
    pub fn send_failed(&self, offsets: &[(i32, i64)]) {
        let mut inner = self.lock();
        for &(p, _) in offsets {
            if inner.latest.contains_key(&p) {
                inner.unsent.insert(p);
            }
        }
        self.news.store(true, Ordering::Release);
    }

    /// Removes and returns the latest offsets of `partitions` (sent or
    /// not), for the synchronous commit of a revocation. The other
    /// partitions keep theirs.
    pub fn take(&self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut inner = self.lock();
        partitions
            .iter()
            .filter_map(|p| {
                inner.unsent.remove(p);
                inner.latest.remove(p).map(|o| (*p, o))
            })
            .collect()
    }

    /// Removes and returns every latest offset: the end of a run.
    pub fn take_all(&self) -> Vec<(i32, i64)> {
        let mut inner = self.lock();
        inner.unsent.clear();
        std::mem::take(&mut inner.latest).into_iter().collect()
    }

    /// A copy of every latest offset.
    pub fn snapshot(&self) -> Vec<(i32, i64)> {
        self.lock().latest.iter().map(|(&p, &o)| (p, o)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_only_grow_and_go_out_at_most_every_interval() {
        let pending = PendingOffsets::default();
        let t0 = Instant::now();
        assert!(!pending.has_news());
        pending.record(&[(0, 10), (1, 5)]);
        pending.record(&[(0, 8)]);
        assert!(pending.has_news());
        assert_eq!(pending.due(t0), vec![(0, 10), (1, 5)]);
        assert!(!pending.has_news());
        pending.record(&[(1, 9)]);
        // Too soon: held back, then sent.
        assert!(pending.due(t0 + Duration::from_millis(10)).is_empty());
        assert_eq!(pending.due(t0 + KAFKA_COMMIT_EVERY), vec![(1, 9)]);
        assert!(pending.due(t0 + 3 * KAFKA_COMMIT_EVERY).is_empty());
        // A failed send goes again.
        pending.send_failed(&[(1, 9)]);
        assert_eq!(pending.due(t0 + 4 * KAFKA_COMMIT_EVERY), vec![(1, 9)]);
    }

    /// A cooperative rebalance revokes one partition of three: only its
    /// offset is taken; the two kept ones still go to Kafka afterwards,
    /// including what they had not sent yet.
    #[test]
    fn a_partial_revocation_takes_only_the_revoked_partitions() {
        let pending = PendingOffsets::default();
        let t0 = Instant::now();
        pending.record(&[(0, 100), (1, 200), (2, 300)]);
        assert_eq!(pending.due(t0).len(), 3);
        pending.record(&[(0, 150), (2, 350)]);
        assert_eq!(pending.take(&[2]), vec![(2, 350)]);
        assert_eq!(
            pending.due(t0 + KAFKA_COMMIT_EVERY),
            vec![(0, 150)],
            "the kept partition's unsent offset still goes out"
        );
        assert_eq!(pending.snapshot(), vec![(0, 150), (1, 200)]);
        // The revoked partition comes back later: nothing stale of it.
        pending.send_failed(&[(2, 350)]);
        assert!(pending.due(t0 + 2 * KAFKA_COMMIT_EVERY).is_empty());
        assert_eq!(pending.take_all(), vec![(0, 150), (1, 200)]);
        assert!(pending.snapshot().is_empty());
    }
}
