//! The rebalance handling that makes delivery into SQLite exactly once.
//!
//! librdkafka calls [`ExactlyOnceContext::rebalance`] from inside
//! `poll()` (consumer-pull) or the message stream (consumer-push), on the
//! thread that consumes, whenever the group hands out or takes back
//! partitions:
//!
//! - **assign**: each partition starts from the offset stored in SQLite,
//!   else the group's committed offset, else `auto.offset.reset`
//!   (earliest). When both exist the larger wins: the group's offset is
//!   only ever ahead of this database when another member, writing to its
//!   own database, consumed that stretch, and reading it again would store
//!   those events twice across the databases. That skipped range is
//!   recorded in the database (`offset_gaps`, a hand-over) before the
//!   partition starts, as is a range the broker deleted before it was read
//!   (only with `--accept-data-loss`; without it the run stops). The store
//!   refuses any batch that jumps past its stored offset otherwise, so no
//!   gap is ever silent. If the stored offsets cannot be read, no partition
//!   is taken and the run stops.
//! - **revoke**: before the partitions are let go, the open batch is
//!   flushed into SQLite ([`Committer::flush`]: the handler runs inside the
//!   feed's poll, so every message received is in that batch, in flight or
//!   committed), then the offsets SQLite holds for the revoked partitions
//!   are committed to Kafka synchronously, so that the next owner (whatever
//!   its database) starts exactly where this one stopped.
//!
//! The handler blocks the thread that polls (the poll loop, or whichever
//! thread polls the stream) while it flushes and commits. Nothing it waits
//! for needs that thread: the SQLite writer is a thread of its own, and
//! librdkafka answers the commit from its own threads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use store::{GapReason, Store};
use tracing::{debug, error, info, warn};

use crate::committer::Committer;
use crate::error::ConsumerError;
use crate::ready::ReadyFile;
use crate::writer::{CommittedOffsets, offsets_tpl};

/// The partitions currently assigned, as the consuming loop sees them: a
/// generation number that changes with every assignment change, so the
/// loop can notice cheaply.
#[derive(Debug, Default)]
pub struct AssignmentWatch {
    generation: AtomicU64,
    partitions: Mutex<Option<BTreeSet<i32>>>,
    ready: OnceLock<ReadyFile>,
    offset_gaps: AtomicU64,
}

impl AssignmentWatch {
    fn lock(&self) -> MutexGuard<'_, Option<BTreeSet<i32>>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped at every assignment change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Offset gaps recorded on assignment so far (hand-overs, accepted
    /// losses).
    pub fn offset_gaps(&self) -> u64 {
        self.offset_gaps.load(Ordering::Relaxed)
    }

    /// The assigned partitions; `None` before the first assignment and
    /// while a rebalance is in progress.
    pub fn partitions(&self) -> Option<BTreeSet<i32>> {
        self.lock().clone()
    }

    /// `--ready-file`: written at the first non-empty assignment. Set once,
    /// before the consumer subscribes.
    pub fn set_ready_file(&self, ready: ReadyFile) {
        if self.ready.set(ready).is_err() {
            panic!("the ready file is set once");
        }
    }

    fn update(&self, f: impl FnOnce(&mut Option<BTreeSet<i32>>)) {
        let mut p = self.lock();
        f(&mut p);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let (Some(ready), Some(assigned)) = (self.ready.get(), p.as_ref()) {
            ready.assigned(assigned);
        }
    }

    #[cfg(test)]
    pub(crate) fn set_for_tests(&self, partitions: Option<BTreeSet<i32>>) {
        self.update(|a| *a = partitions);
    }
}

/// Per kind of global librdkafka error: when it was last logged, and how
/// many repeats were not logged since.
type GlobalErrorLog = std::collections::HashMap<String, (Option<Instant>, u64)>;

/// At most one log line per kind of global librdkafka error in this time.
const GLOBAL_ERROR_EVERY: Duration = Duration::from_secs(5);

/// How long to wait for the group's committed offsets on assignment.
const COMMITTED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// The consumer context of both consumers. See the module documentation.
pub struct ExactlyOnceContext {
    topic: String,
    offsets_db: Mutex<Store>,
    committed: Arc<CommittedOffsets>,
    assignment: Arc<AssignmentWatch>,
    committer: Arc<Committer>,
    fatal: Mutex<Option<ConsumerError>>,
    has_fatal: AtomicBool,
    commit_warned: Mutex<Option<Instant>>,
    global_errors: Mutex<GlobalErrorLog>,
    accept_data_loss: AtomicBool,
    /// Offsets committed to SQLite and not yet sent to Kafka, per
    /// partition (see [`commit_async`]).
    kafka_pending: Mutex<BTreeMap<i32, i64>>,
    /// When the last asynchronous offset commit was sent.
    kafka_sent: Mutex<Option<Instant>>,
    /// `kafka_pending` is not empty: the per-message call of
    /// [`commit_async`] takes no lock otherwise.
    kafka_has_pending: AtomicBool,
}

impl std::fmt::Debug for ExactlyOnceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactlyOnceContext")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl ExactlyOnceContext {
    /// A context for `topic`. `offsets_db` is a connection of its own to the
    /// consumer's database, used to read stored offsets on assignment;
    /// `committer` is flushed before partitions are revoked.
    pub fn new(
        topic: &str,
        offsets_db: Store,
        committed: Arc<CommittedOffsets>,
        assignment: Arc<AssignmentWatch>,
        committer: Arc<Committer>,
    ) -> ExactlyOnceContext {
        ExactlyOnceContext {
            topic: topic.to_string(),
            offsets_db: Mutex::new(offsets_db),
            committed,
            assignment,
            committer,
            fatal: Mutex::new(None),
            has_fatal: AtomicBool::new(false),
            commit_warned: Mutex::new(None),
            global_errors: Mutex::new(GlobalErrorLog::new()),
            accept_data_loss: AtomicBool::new(false),
            kafka_pending: Mutex::new(BTreeMap::new()),
            kafka_sent: Mutex::new(None),
            kafka_has_pending: AtomicBool::new(false),
        }
    }

    /// `--accept-data-loss`: when the broker's log start has moved past a
    /// partition's stored offset, record the lost range and go on instead
    /// of stopping.
    pub fn set_accept_data_loss(&self, accept: bool) {
        self.accept_data_loss.store(accept, Ordering::Relaxed);
    }

    /// Whether an error inside a rebalance requires the run to stop.
    #[inline]
    pub fn has_fatal(&self) -> bool {
        self.has_fatal.load(Ordering::Acquire)
    }

    /// The error recorded inside a rebalance, if any (taken once).
    pub fn take_fatal(&self) -> Option<ConsumerError> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn set_fatal(&self, e: ConsumerError) {
        error!("{}", crate::error::error_chain(&e));
        let mut slot = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.has_fatal.store(true, Ordering::Release);
    }

    /// The SQLite-committed offsets of this run.
    pub fn committed(&self) -> &Arc<CommittedOffsets> {
        &self.committed
    }

    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let stored = match self
            .offsets_db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stored_offsets(&self.topic)
        {
            Ok(s) => s,
            Err(e) => {
                // Without the stored offsets any start position could store
                // events twice or skip some: take no partition, stop.
                error!("cannot read the stored offsets, so no partition is taken: {e}");
                self.set_fatal(e.into());
                return;
            }
        };
        let group = if partitions.is_empty() {
            None
        } else {
            match consumer.committed_offsets(tpl.clone(), COMMITTED_LOOKUP_TIMEOUT) {
                Ok(g) => Some(g),
                Err(e) => {
                    warn!(
                        "could not read the group's committed offsets ({e}); partitions without \
                         an offset in the database start from the group's offset as librdkafka \
                         finds it, else from auto.offset.reset"
                    );
                    None
                }
            }
        };
        let mut plan = Vec::with_capacity(partitions.len());
        // Partitions where this database is ahead of the group's committed
        // offset (a member killed before its commit reached Kafka): the
        // group is told, so that its offsets, which lag tools and
        // `--exit-when-idle` of other members read, match the store.
        let mut ahead = Vec::new();
        for &p in &partitions {
            let db = stored.get(&p).copied();
            let grp = group
                .as_ref()
                .and_then(|g| g.find_partition(&self.topic, p))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                });
            let start = match self.start_offset(consumer, p, db, grp) {
                Ok(start) => start,
                Err(e) => {
                    self.set_fatal(e);
                    return;
                }
            };
            if let Some((o, "db")) = start {
                if grp.is_none_or(|g| g < o) {
                    ahead.push((p, o));
                }
            }
            if let Some((o, _)) = start {
                if let Err(e) = tpl.set_partition_offset(&self.topic, p, Offset::Offset(o)) {
                    self.set_fatal(ConsumerError::kafka("set a start offset", e));
                    return;
                }
            }
            plan.push(match start {
                Some((o, from)) => format!("{p}@{o}({from})"),
                None => format!("{p}@auto.offset.reset"),
            });
        }
        info!(
            "assigned {} partition(s) of {}: {}",
            partitions.len(),
            self.topic,
            if plan.is_empty() {
                "none".to_string()
            } else {
                plan.join(" ")
            }
        );
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = if cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = result {
            self.set_fatal(ConsumerError::kafka("assign partitions", e));
        } else {
            commit_async(consumer, &self.topic, &ahead);
        }
        self.assignment.update(|a| {
            let set = a.get_or_insert_with(BTreeSet::new);
            if !cooperative {
                set.clear();
            }
            set.extend(partitions.iter().copied());
        });
    }

    /// Where partition `p` starts, and why, from this database's stored
    /// offset `db` and the group's committed offset `group`. Every range
    /// skipped on the way is recorded in the database first (see
    /// `Store::record_gap`), so that the store, which refuses any batch that
    /// jumps past its stored offset, accepts the new start:
    ///
    /// - the group is ahead of the database: another instance, with its own
    ///   database, stored that stretch; recorded as a hand-over;
    /// - the broker's log starts past that position (retention or
    ///   DeleteRecords removed unread events): an error naming the loss,
    ///   unless `--accept-data-loss`, which records it and starts at the log
    ///   start.
    ///
    /// `None`: neither knows the partition; `auto.offset.reset` decides.
    fn start_offset(
        &self,
        consumer: &BaseConsumer<Self>,
        p: i32,
        db: Option<i64>,
        group: Option<i64>,
    ) -> Result<Option<(i64, &'static str)>, ConsumerError> {
        let topic = self.topic.as_str();
        let (mut start, from) = match (db, group) {
            (Some(d), Some(g)) if g > d => {
                warn!(
                    "partition {p}: the group's offset {g} is ahead of this database's {d}: \
                     another member with its own database consumed offsets {d}..{g} (or this \
                     database is older than the group's progress, e.g. restored from a backup); \
                     reading resumes at {g}, and the range is recorded in offset_gaps as a \
                     hand-over"
                );
                self.record_gap(p, d, g, GapReason::HandOver)?;
                (g, "group")
            }
            (Some(d), _) => (d, "db"),
            (None, Some(g)) => {
                if g > 0 {
                    info!(
                        "partition {p}: new to this database; the group has read it up to {g}, \
                         so offsets 0..{g} are recorded in offset_gaps as a hand-over"
                    );
                    self.record_gap(p, 0, g, GapReason::HandOver)?;
                }
                (g, "group")
            }
            (None, None) => return Ok(None),
        };
        match consumer.fetch_watermarks(topic, p, COMMITTED_LOOKUP_TIMEOUT) {
            Ok((log_start, _)) if log_start > start => {
                if !self.accept_data_loss.load(Ordering::Relaxed) {
                    return Err(ConsumerError::LogStartMoved {
                        topic: topic.to_string(),
                        partition: p,
                        stored: start,
                        log_start,
                    });
                }
                warn!(
                    "partition {p}: the broker deleted offsets {start}..{log_start} ({} event(s)) \
                     before this database read them; --accept-data-loss: recorded in offset_gaps, \
                     reading resumes at {log_start}",
                    log_start - start
                );
                self.record_gap(p, start, log_start, GapReason::LogStartMoved)?;
                start = log_start;
            }
            Ok(_) => {}
            // The store still refuses any batch that would jump past the
            // stored offset, so an unchecked start cannot skip silently.
            Err(e) => warn!("partition {p}: could not read the log start ({e}); not checked"),
        }
        Ok(Some((start, from)))
    }

    fn record_gap(
        &self,
        p: i32,
        from: i64,
        to: i64,
        reason: GapReason,
    ) -> Result<(), ConsumerError> {
        let recorded = self
            .offsets_db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_gap(&self.topic, p, from, to, reason)?;
        if recorded {
            self.assignment.offset_gaps.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Hands partitions back: the open batch is committed first, then the
    /// offsets go to Kafka synchronously.
    ///
    /// The group waits for this member at most `max.poll.interval.ms`;
    /// past it librdkafka leaves the group, the partitions go to their next
    /// owner from the group's older offsets, and a batch committed here
    /// afterwards would be stored a second time by that owner (with its own
    /// database). So the wait for the batch is bounded by half that
    /// interval: a batch still waiting for another process's lock on the
    /// database then gives up (rolled back, nothing written), the revoked
    /// partitions' offsets committed so far go to Kafka, and the run stops
    /// with the error. The abandoned events stay in Kafka for the next
    /// owner: nothing lost, nothing stored twice. A restart resumes from
    /// this database.
    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        debug!("revoking partitions {partitions:?}: flushing the open batch first");
        // Their offsets are committed synchronously below; an older copy
        // sent later could move the next owner's offset back.
        {
            let mut pending = self.kafka_pending.lock().unwrap_or_else(|e| e.into_inner());
            for p in &partitions {
                pending.remove(p);
            }
        }
        let limit = self.committer.wait_limit();
        match self.committer.flush_within(limit) {
            // A writer that stopped earlier has reported why already.
            Ok(()) | Err(ConsumerError::WriterStopped) => {}
            Err(e) => {
                if matches!(&e, ConsumerError::Store(store::StoreError::GaveUp { .. })) {
                    error!(
                        "partitions {partitions:?} are being revoked and the group waits at most \
                         max.poll.interval.ms for this member, but the open batch could not \
                         commit within {limit:?} (the database is locked by another process): \
                         the batch is abandoned (nothing of it written; its events stay in \
                         Kafka for the partitions' next owner) and this consumer stops. A \
                         restart resumes from its database"
                    );
                }
                self.set_fatal(e);
            }
        }
        let offsets = self.committed.take(&partitions);
        if offsets.is_empty() {
            debug!("nothing committed for the revoked partitions");
        } else if consumer.assignment_lost() {
            warn!(
                "the assignment was lost (session timeout?); offsets {offsets:?} stay in the \
                 database but are not committed to Kafka"
            );
        } else {
            match consumer.commit(&offsets_tpl(&self.topic, &offsets), CommitMode::Sync) {
                Ok(()) => info!("revoked {partitions:?}; committed {offsets:?} to Kafka"),
                Err(e) => warn!(
                    "could not commit offsets {offsets:?} to Kafka on revocation ({e}): the next \
                     owner of these partitions starts from the group's older offsets. Harmless \
                     when it shares this database; with a database of its own it stores the \
                     events in between a second time"
                ),
            }
        }
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = result {
            warn!("unassign failed: {e}");
        }
        self.assignment.update(|a| {
            if cooperative {
                if let Some(set) = a {
                    for p in &partitions {
                        set.remove(p);
                    }
                }
            } else {
                // Eager: everything was revoked; the next assignment follows.
                *a = None;
            }
        });
    }
}

impl ClientContext for ExactlyOnceContext {
    /// librdkafka's statistics, every `statistics.interval.ms` (set with
    /// `--metrics-addr` only): the per-partition lag gauge.
    fn stats(&self, statistics: rdkafka::Statistics) {
        crate::metrics::record_lag(&self.topic, &statistics);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Failed offset commits are reported by `commit_callback` and the
        // revoke handler, with what they mean here.
        if fac == "COMMITFAIL" {
            debug!("librdkafka: {fac} {log_message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!("librdkafka: {fac} {log_message}"),
            RDKafkaLogLevel::Warning => warn!("librdkafka: {fac} {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!("librdkafka: {fac} {log_message}")
            }
            RDKafkaLogLevel::Debug => debug!("librdkafka: {fac} {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            // Delivered to the consuming loop as well, which is where it
            // matters (`--exit-when-idle`).
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {}
            // Anything else global is transient (brokers down, ...):
            // librdkafka keeps retrying; fatal errors also reach the loop.
            // While a broker is down librdkafka repeats the same error many
            // times a second: say it once per GLOBAL_ERROR_EVERY per kind,
            // with how many repeats were not shown.
            _ => {
                let kind = match error.rdkafka_error_code() {
                    Some(code) => format!("{code:?}"),
                    None => error.to_string(),
                };
                let mut seen = self.global_errors.lock().unwrap_or_else(|e| e.into_inner());
                let slot = seen.entry(kind).or_insert((None, 0));
                match slot.0 {
                    Some(t) if t.elapsed() < GLOBAL_ERROR_EVERY => {
                        slot.1 += 1;
                        debug!("librdkafka: {error}: {reason}");
                    }
                    _ => {
                        let repeats = std::mem::take(&mut slot.1);
                        slot.0 = Some(Instant::now());
                        if repeats > 0 {
                            warn!(
                                "librdkafka: {error}: {reason} ({repeats} more like it since the last such line)"
                            );
                        } else {
                            warn!("librdkafka: {error}: {reason}");
                        }
                    }
                }
            }
        }
    }
}

impl ConsumerContext for ExactlyOnceContext {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(base_consumer, tpl)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(base_consumer, tpl)
            }
            other => {
                let e = KafkaError::Rebalance(other.into());
                error!("rebalance failed: {e}; dropping the assignment");
                if let Err(e) = base_consumer.unassign() {
                    warn!("unassign failed: {e}");
                }
                self.assignment.update(|a| *a = None);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(
                "offsets committed to Kafka: {} partition(s)",
                offsets.count()
            ),
            // Kafka's copy of the offsets is informational while partitions
            // are assigned; SQLite's is the truth. A failed commit only delays
            // what lag tools show; the revoke handler commits the latest
            // offsets again before partitions are let go.
            Err(e) => {
                let mut last = self.commit_warned.lock().unwrap_or_else(|e| e.into_inner());
                let rebalancing = matches!(
                    e,
                    KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress)
                );
                if rebalancing || last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
                    debug!("committing offsets to Kafka failed (informational copy): {e}");
                } else {
                    *last = Some(Instant::now());
                    warn!("committing offsets to Kafka failed (informational copy): {e}");
                }
            }
        }
    }
}

/// At most one asynchronous offset commit to Kafka per this interval.
pub const KAFKA_COMMIT_EVERY: Duration = Duration::from_millis(100);

/// Copies offsets committed to SQLite to Kafka without waiting: the
/// group's view of this member's progress. Call it with each batch's
/// offsets, and with none every so often: offsets accumulate (the latest
/// per partition) and go in one request at most every
/// [`KAFKA_COMMIT_EVERY`].
///
/// Sending one per batch (hundreds a second at live rates) was measured to
/// leave the group's offsets seconds behind on a replicated cluster: the
/// broker answers an offset commit once its offsets topic has replicated
/// it, and serves the requests of a connection in order, so they queued
/// (2.3 s behind on three nodes, ~200 events per partition stored twice
/// after a crash hand-over). Ten a second keep the group's offsets a
/// fraction of a second behind the database, and spare the broker the
/// rest.
pub fn commit_async<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    topic: &str,
    offsets: &[(i32, i64)],
) {
    let context = consumer.context();
    if offsets.is_empty() && !context.kafka_has_pending.load(Ordering::Acquire) {
        return;
    }
    let send: Vec<(i32, i64)> = {
        let mut pending = context
            .kafka_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        merge_max(&mut pending, offsets.iter().copied());
        if pending.is_empty() {
            context.kafka_has_pending.store(false, Ordering::Release);
            return;
        }
        let mut sent = context.kafka_sent.lock().unwrap_or_else(|e| e.into_inner());
        if sent.is_some_and(|t| t.elapsed() < KAFKA_COMMIT_EVERY) {
            context.kafka_has_pending.store(true, Ordering::Release);
            return;
        }
        *sent = Some(Instant::now());
        context.kafka_has_pending.store(false, Ordering::Release);
        std::mem::take(&mut *pending).into_iter().collect()
    };
    if let Err(e) = consumer.commit(&offsets_tpl(topic, &send), CommitMode::Async) {
        debug!("could not queue an offset commit to Kafka: {e}");
        let mut pending = context
            .kafka_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        merge_max(&mut pending, send);
        context.kafka_has_pending.store(true, Ordering::Release);
    }
}

/// Adds `offsets` to `pending`, keeping the larger offset per partition.
fn merge_max(pending: &mut BTreeMap<i32, i64>, offsets: impl IntoIterator<Item = (i32, i64)>) {
    for (p, o) in offsets {
        let slot = pending.entry(p).or_insert(o);
        *slot = (*slot).max(o);
    }
}

/// Commits this database's stored offsets of the partitions in `mine` to
/// Kafka, and waits for the answer. `--exit-when-idle` calls it before it
/// asks about the rest of the group: the asynchronous copies may have been
/// refused during a rebalance (and librdkafka reports nothing of them), and
/// a drained partition sends no new ones, so without it two drained
/// members could each wait for the other's stale offsets forever
/// (observed). The database's offsets are the truth, so they are what is
/// sent.
pub fn publish_stored_offsets<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    mine: &BTreeSet<i32>,
) -> Result<(), String> {
    let context = consumer.context();
    let stored = context
        .offsets_db
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stored_offsets(&context.topic)
        .map_err(|e| e.to_string())?;
    let offsets: Vec<(i32, i64)> = stored
        .into_iter()
        .filter(|(p, _)| mine.contains(p))
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    consumer
        .commit(&offsets_tpl(&context.topic, &offsets), CommitMode::Sync)
        .map_err(|e| format!("commit the stored offsets to Kafka: {e}"))
}

/// How long each lookup of [`undrained_elsewhere`] may take.
const GROUP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A partition of the topic held elsewhere in the group and not yet
/// consumed to its end: the group's committed offset (`None`: none yet) and
/// the partition's end (high watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undrained {
    /// The partition.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: Option<i64>,
    /// The high watermark.
    pub end: i64,
}

/// The partitions of the topic that are not in `mine` and that the group
/// has not consumed to their end (committed offset below the high
/// watermark). `--exit-when-idle` uses it: a member whose own partitions are
/// drained must not leave while others hold undrained ones, in particular
/// members killed without leaving the group, which hold theirs until their
/// session times out. A few requests to the broker; call it rarely.
pub fn undrained_elsewhere<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    mine: &BTreeSet<i32>,
) -> KafkaResult<Vec<Undrained>> {
    let topic = consumer.context().topic.as_str();
    let metadata = consumer.fetch_metadata(Some(topic), GROUP_LOOKUP_TIMEOUT)?;
    let others: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .filter(|p| !mine.contains(p))
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for &p in &others {
        tpl.add_partition(topic, p);
    }
    let group = consumer.committed_offsets(tpl, GROUP_LOOKUP_TIMEOUT)?;
    let mut undrained = Vec::new();
    for p in others {
        let (log_start, end) = consumer.fetch_watermarks(topic, p, GROUP_LOOKUP_TIMEOUT)?;
        let committed = group
            .find_partition(topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            });
        let drained = match committed {
            Some(c) => c >= end,
            None => end <= log_start,
        };
        if !drained {
            undrained.push(Undrained {
                partition: p,
                committed,
                end,
            });
        }
    }
    Ok(undrained)
}

/// Commits every SQLite-committed offset of this run to Kafka and waits for
/// the answer: the last step before leaving the group.
pub fn commit_final<C: Consumer<ExactlyOnceContext>>(consumer: &C, topic: &str) {
    let offsets = consumer.context().committed().take_all();
    if offsets.is_empty() {
        return;
    }
    match consumer.commit(&offsets_tpl(topic, &offsets), CommitMode::Sync) {
        Ok(()) => debug!("final offsets committed to Kafka: {offsets:?}"),
        Err(e) => warn!(
            "could not commit the final offsets {offsets:?} to Kafka ({e}); the database \
             holds them, a restart with the same database resumes correctly"
        ),
    }
}
