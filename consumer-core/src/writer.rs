//! From Kafka messages to committed SQLite batches.
//!
//! [`Decoded`] turns a message into what the store takes (an event, or a
//! dead letter with the reason), and [`StoreWriter`] commits batches, keeps
//! the figures, and hands the store's next offsets to
//! [`PendingOffsets`], whence they go to Kafka.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::Progress;
use rdkafka::message::Message;
use store::{Batch, BatchDeadLetter, BatchEvent, Store, StoreOptions};
use tracing::{error, warn};

use crate::error::ConsumerError;
use crate::metrics::WriterMetrics;
use crate::pending::PendingOffsets;
use crate::stats::{RunClock, RunStats};

/// A Kafka message, decoded and validated, ready for a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A valid banking event.
    Event(BatchEvent),
    /// A message that cannot be stored as an event, with the reason.
    DeadLetter(BatchDeadLetter),
}

impl Decoded {
    /// Decodes and validates `message` ([`proto::decode_event`]).
    /// Never fails: a bad message becomes a dead letter.
    pub fn from_message<M: Message>(message: &M) -> Decoded {
        let (partition, offset) = (message.partition(), message.offset());
        let error = match message.payload() {
            Some(bytes) => match proto::decode_event(bytes) {
                Ok(event) => {
                    let payload = bytes.to_vec();
                    return Decoded::Event(BatchEvent {
                        partition,
                        offset,
                        event,
                        payload,
                    });
                }
                Err(e) => e.to_string(),
            },
            None => "message has no value (null payload)".to_string(),
        };
        Decoded::DeadLetter(BatchDeadLetter {
            partition,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            error,
        })
    }

    /// Adds it to `batch`.
    pub fn push_into(self, batch: &mut Batch) {
        match self {
            Decoded::Event(event) => batch.add_event(event),
            Decoded::DeadLetter(dead) => batch.add_dead_letter(dead),
        }
    }
}

/// How often a store error that passes by itself is retried on the same
/// batch before the run gives up.
const TRANSIENT_ATTEMPTS: u32 = 5;

/// The one SQLite writer of a consumer: commits batches, records what they
/// did, and remembers their offsets.
///
/// After an error that needs a person it refuses every further commit, so
/// that nothing (rows or offsets) is written past a failed batch.
pub struct StoreWriter {
    store: Store,
    committed: Arc<PendingOffsets>,
    clock: Arc<RunClock>,
    stats: RunStats,
    metrics: WriterMetrics,
    progress: Progress,
    failed: bool,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("db", &self.store.path())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// What a successful [`StoreWriter::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `(partition, next offset)` of the batch's partitions, as stored in
    /// SQLite now: what to commit to Kafka.
    pub offsets: Vec<(i32, i64)>,
    /// Messages in the batch (events and dead letters).
    pub messages: usize,
}

impl StoreWriter {
    /// See `Store::set_give_up`: once `flag` is set, a commit waiting for
    /// another connection's lock gives up, nothing written.
    pub fn set_give_up(&mut self, flag: Arc<AtomicBool>) {
        self.store.set_give_up(flag);
    }

    /// Opens (or creates) the database at `db` with `opts`.
    pub fn open(
        db: &Path,
        opts: &StoreOptions,
        committed: Arc<PendingOffsets>,
        clock: Arc<RunClock>,
    ) -> Result<StoreWriter, ConsumerError> {
        let store = Store::open_with(db, opts)?;
        Ok(StoreWriter {
            store,
            committed,
            clock,
            stats: RunStats::new(),
            metrics: WriterMetrics::new(),
            progress: Progress::new(None, "stored"),
            failed: false,
        })
    }

    /// Commits `batch` in one transaction (events, balances, dead letters,
    /// offsets). Returns `None` for an empty batch.
    ///
    /// A lock held by another connection is waited out by the store. Errors
    /// that pass by themselves are retried a few times on the same batch;
    /// anything else (a full disk, an I/O error, ...) is returned, and the
    /// writer refuses every later batch. Either way the batch is not
    /// cleared: that is the caller's job once it succeeded.
    pub fn commit(&mut self, batch: &Batch) -> Result<Option<Committed>, ConsumerError> {
        if self.failed {
            return Err(ConsumerError::WriterStopped);
        }
        if batch.is_empty() {
            return Ok(None);
        }
        let mut attempt = 1;
        let started = Instant::now();
        let outcome = loop {
            match self.store.commit(batch) {
                Ok(outcome) => break outcome,
                Err(e) if !e.is_fatal() && attempt < TRANSIENT_ATTEMPTS => {
                    warn!("attempt {attempt} to commit a batch failed, retrying: {e}");
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                    attempt += 1;
                }
                Err(e) => {
                    self.failed = true;
                    error!("{e}");
                    return Err(if e.is_fatal() {
                        ConsumerError::Store(e)
                    } else {
                        ConsumerError::StoreRetriesExhausted {
                            attempts: attempt,
                            last: e,
                        }
                    });
                }
            }
        };
        self.committed.record(&outcome.next_offsets);
        let took = started.elapsed();
        self.metrics.record_commit(
            &outcome,
            took,
            batch.events().iter().map(|e| e.event.created_at_us),
        );
        self.stats.record_commit(
            &outcome,
            batch.events().iter().map(|e| e.event.created_at_us),
            took,
            &self.clock,
        );
        self.progress.inc(batch.len() as u64);
        Ok(Some(Committed {
            offsets: outcome.next_offsets,
            messages: batch.len(),
        }))
    }

    /// The figures so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Whether a commit failed for good.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Removes the progress bar (before the summary is printed).
    pub fn finish_progress(&self) {
        self.progress.finish();
    }

    /// The store, for tests that provoke failures.
    #[cfg(test)]
    pub(crate) fn store_for_tests(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proto::BankingEvent;
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    fn message(payload: Option<Vec<u8>>) -> OwnedMessage {
        OwnedMessage::new(
            payload,
            Some(b"k".to_vec()),
            "t".into(),
            Timestamp::NotAvailable,
            2,
            7,
            None,
        )
    }

    #[test]
    fn bad_messages_become_dead_letters() {
        match Decoded::from_message(&message(Some(vec![0xff, 0xff, 0xff]))) {
            Decoded::DeadLetter(d) => {
                assert_eq!((d.partition, d.offset), (2, 7));
                assert_eq!(d.key.as_deref(), Some(&b"k"[..]));
                assert_eq!(d.payload, Some(vec![0xff, 0xff, 0xff]));
                assert!(
                    d.error.contains("not a banking.v1.BankingEvent"),
                    "{}",
                    d.error
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Decoded::from_message(&message(None)),
            Decoded::DeadLetter(BatchDeadLetter { payload: None, .. })
        ));
        // Decodes (empty message) but fails validation.
        assert!(matches!(
            Decoded::from_message(&message(Some(Vec::new()))),
            Decoded::DeadLetter(_)
        ));
    }

    /// A valid deposit of id `id` (the committer's tests use it too).
    pub(crate) fn deposit(id: u64) -> BankingEvent {
        use proto::{Channel, EventType, Status};
        BankingEvent {
            event_id: id,
            event_type: EventType::Deposit as i32,
            account_id: 10_000_001 + id % 50,
            amount_minor: 100,
            currency: "EUR".into(),
            channel: Channel::Online as i32,
            status: Status::Completed as i32,
            country: "DE".into(),
            transaction_ref: format!("{id:0>64}"),
            created_at_us: common::now_us(),
            ..Default::default()
        }
    }

    /// A writer on a new database in `dir`, and where its offsets go.
    fn writer(dir: &Path) -> (StoreWriter, Arc<PendingOffsets>) {
        let committed = Arc::new(PendingOffsets::default());
        let db = dir.join("w.db");
        let clock = Arc::new(RunClock::new());
        let opts = StoreOptions::default();
        let w = StoreWriter::open(&db, &opts, committed.clone(), clock).unwrap();
        (w, committed)
    }

    #[test]
    fn a_full_disk_stops_the_writer_and_no_offset_passes_the_failed_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, committed) = writer(dir.path());
        let mut batch = Batch::new("t");
        batch.push_event(0, 0, deposit(1), vec![1]);
        w.commit(&batch).unwrap();
        assert_eq!(committed.snapshot(), vec![(0, 1)]);

        w.store.forbid_growth_for_tests();
        batch.clear();
        for id in 2..5_000 {
            batch.push_event(0, id as i64 - 1, deposit(id), vec![0; 100]);
        }
        let err = w.commit(&batch).unwrap_err();
        assert!(
            matches!(err, ConsumerError::Store(ref e) if e.is_fatal()),
            "{err}"
        );
        assert!(err.to_string().contains("full"), "{err}");
        assert!(w.has_failed());
        assert_eq!(
            committed.snapshot(),
            vec![(0, 1)],
            "offsets stay behind the failed batch"
        );
        assert!(matches!(
            w.commit(&batch),
            Err(ConsumerError::WriterStopped)
        ));
        assert_eq!(w.stats().events_committed(), 1);
    }

    #[test]
    fn writer_commits_and_remembers_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, committed) = writer(dir.path());
        w.clock.message_received();
        // The message is at offset 7 of a partition new to the database:
        // the store takes it once the range before it is accounted for.
        w.store
            .record_gap("t", 2, 0, 7, store::GapReason::HandOver)
            .unwrap();
        let mut batch = Batch::new("t");
        assert_eq!(w.commit(&batch).unwrap(), None);
        Decoded::from_message(&message(Some(vec![1, 2, 3]))).push_into(&mut batch);
        let c = w.commit(&batch).unwrap().unwrap();
        assert_eq!(c.offsets, vec![(2, 8)]);
        assert_eq!(committed.snapshot(), vec![(2, 8)]);
        assert_eq!(w.stats().dead_letters(), 1);
        assert_eq!(w.stats().batches(), 1);
    }
}
