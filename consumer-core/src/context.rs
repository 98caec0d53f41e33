//! The rebalance handling that makes delivery into SQLite exactly once.
//!
//! librdkafka calls [`ExactlyOnceContext::rebalance`] from inside
//! `poll()` (consumer-pull) or the message stream (consumer-push), on the
//! thread that consumes, whenever the group hands out or takes back
//! partitions:
//!
//! - **assign**: the facts of each partition are gathered (this database's
//!   stored offset, the group's committed offset and the database that
//!   committed it, the broker's watermarks, the topic's identity) and
//!   [`crate::start::decide`] picks the start, or refuses. A refusal, or a
//!   lookup that fails, takes no partition and stops the run with an error
//!   that says what to do. The ranges a start skips with the operator's
//!   word (a hand-over to another instance, events deleted unread) are
//!   recorded in the database before the partition starts; the store
//!   refuses any batch that jumps past its stored offset otherwise, so no
//!   gap is ever silent.
//! - **revoke**: before the partitions are let go, the open batch is
//!   flushed into SQLite ([`Committer::flush_within`]: the handler runs
//!   inside the feed's poll, so every message received is in that batch,
//!   in flight or committed), then the revoked partitions' offsets are
//!   committed to Kafka synchronously, so that the next owner (whatever its
//!   database) starts exactly where this one stopped. The partitions kept
//!   (a cooperative rebalance) keep their pending offsets.
//!
//! The handler blocks the thread that polls (the poll loop, or whichever
//! thread polls the stream) while it flushes and commits. Nothing it waits
//! for needs that thread: the SQLite writer is a thread of its own, and
//! librdkafka answers the commit from its own threads.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use store::{Store, StoreError};
use tracing::{debug, error, info, warn};

use crate::assignment::AssignmentWatch;
use crate::committer::Committer;
use crate::error::ConsumerError;
use crate::group::{self, unproven};
use crate::pending::PendingOffsets;
use crate::start::{self, Allowed, Facts, Refusal, Start};
use crate::throttle::{Throttle, held_back};

/// At most one log line per kind of global librdkafka error in this time.
const GLOBAL_ERROR_EVERY: Duration = Duration::from_secs(5);

/// What the operator allowed on the command line, for the start decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartFlags {
    /// See [`Allowed`].
    pub allowed: Allowed,
    /// `--accept-new-topic`: a topic deleted and created again is read from
    /// its start into this database (the old offsets go to
    /// `topic_resets`).
    pub accept_new_topic: bool,
}

/// The consumer context of both consumers. See the module documentation.
pub struct ExactlyOnceContext {
    topic: String,
    offsets_db: Mutex<Store>,
    database_id: String,
    commit_metadata: String,
    pending: Arc<PendingOffsets>,
    assignment: Arc<AssignmentWatch>,
    committer: Arc<Committer>,
    flags: StartFlags,
    fatal: Mutex<Option<ConsumerError>>,
    has_fatal: AtomicBool,
    commit_warned: Mutex<Throttle>,
    global_errors: Mutex<Throttle>,
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
    /// consumer's database (opened with a lock wait limit), used on
    /// assignment; `pending` is what the writer committed and Kafka has not
    /// been told; `committer` is flushed before partitions are revoked.
    pub fn new(
        topic: &str,
        offsets_db: Store,
        pending: Arc<PendingOffsets>,
        assignment: Arc<AssignmentWatch>,
        committer: Arc<Committer>,
        flags: StartFlags,
    ) -> ExactlyOnceContext {
        ExactlyOnceContext {
            topic: topic.to_string(),
            database_id: offsets_db.database_id().to_string(),
            commit_metadata: start::commit_metadata(offsets_db.database_id()),
            offsets_db: Mutex::new(offsets_db),
            pending,
            assignment,
            committer,
            flags,
            fatal: Mutex::new(None),
            has_fatal: AtomicBool::new(false),
            commit_warned: Mutex::new(Throttle::new(Duration::from_secs(10))),
            global_errors: Mutex::new(Throttle::new(GLOBAL_ERROR_EVERY)),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// This database's id.
    pub fn database_id(&self) -> &str {
        &self.database_id
    }

    /// The metadata of every offset this member commits to Kafka.
    pub fn commit_metadata(&self) -> &str {
        &self.commit_metadata
    }

    /// The offsets SQLite committed and Kafka has not been told.
    pub fn pending(&self) -> &PendingOffsets {
        &self.pending
    }

    /// This database's stored offsets of the topic.
    pub fn stored_offsets(&self) -> Result<HashMap<i32, i64>, StoreError> {
        self.db().stored_offsets(&self.topic)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Store> {
        self.offsets_db.lock().unwrap_or_else(|e| e.into_inner())
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

    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let starts = if partitions.is_empty() {
            Ok(Vec::new())
        } else {
            self.plan_starts(consumer, &partitions)
        };
        let starts = match starts {
            Ok(s) => s,
            Err(e) => {
                // No partition is taken: the run stops with the error.
                self.set_fatal(e);
                return;
            }
        };
        let mut plan = Vec::with_capacity(starts.len());
        // Partitions where this database is ahead of the group's committed
        // offset (a member killed before its commit reached Kafka): the
        // group is told, so that its offsets, which lag tools and
        // `--exit-when-idle` of other members read, match the store.
        let mut ahead = Vec::new();
        for (p, start, group) in &starts {
            if let Err(e) = self.record_gaps(*p, start) {
                self.set_fatal(e);
                return;
            }
            if let Err(e) = tpl.set_partition_offset(&self.topic, *p, Offset::Offset(start.offset))
            {
                self.set_fatal(ConsumerError::kafka("set a start offset", e));
                return;
            }
            if group.is_none_or(|g| g < start.offset) && start.offset > 0 {
                ahead.push((*p, start.offset));
            }
            plan.push(format!("{p}@{}({})", start.offset, start.from.as_str()));
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
        let cooperative = cooperative(consumer);
        let result = if cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = result {
            self.set_fatal(ConsumerError::kafka("assign partitions", e));
        } else {
            self.pending.record(&ahead);
        }
        self.assignment.update(|a| {
            let set = a.get_or_insert_with(BTreeSet::new);
            if !cooperative {
                set.clear();
            }
            set.extend(partitions.iter().copied());
        });
    }

    /// The facts of `partitions`, and where each starts
    /// ([`start::decide`]), with the group's offset beside it. Checks the
    /// topic's identity first; with `--accept-new-topic`, a recreated topic
    /// resets this database's offsets of it (once) and the facts are read
    /// again.
    fn plan_starts(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Start, Option<i64>)>, ConsumerError> {
        let topic = self.topic.as_str();
        let current = group::topic_identity(consumer)
            .map_err(|e| unproven(topic, "the topic's metadata", e))?;
        let mut reset = false;
        // Bound first: a guard in the match's scrutinee would live through
        // the arms, which lock the database again.
        let recorded = self.db().topic_identity(topic)?;
        match start::check_topic(topic, recorded.as_ref(), &current) {
            Ok(true) => self.db().record_topic_identity(topic, &current)?,
            Ok(false) => {}
            Err(refusal) => self.reset_or_refuse(refusal, &current, &mut reset)?,
        }
        loop {
            let stored = self.db().stored_offsets(topic)?;
            let groups = group::group_offsets(consumer, partitions)
                .map_err(|e| unproven(topic, "the group's committed offsets", e))?;
            let mut starts = Vec::with_capacity(partitions.len());
            let mut refused = None;
            for &p in partitions {
                let (log_start, high_watermark) = group::watermarks(consumer, p)
                    .map_err(|e| unproven(topic, "the partitions' watermarks", e))?;
                let facts = Facts {
                    partition: p,
                    database: stored.get(&p).copied(),
                    group: groups.get(&p).cloned(),
                    log_start,
                    high_watermark,
                };
                match start::decide(topic, &facts, self.flags.allowed) {
                    Ok(s) => starts.push((p, s, facts.group.map(|g| g.offset))),
                    Err(r) => {
                        refused = Some(r);
                        break;
                    }
                }
            }
            match refused {
                None => return Ok(starts),
                Some(r @ Refusal::PastTheEnd { .. }) if !reset => {
                    self.reset_or_refuse(r, &current, &mut reset)?
                }
                Some(r) => return Err(r.into()),
            }
        }
    }

    /// With `--accept-new-topic`, forgets this database's offsets of the
    /// old topic (kept in `topic_resets`) and records the new identity;
    /// otherwise returns the refusal.
    fn reset_or_refuse(
        &self,
        refusal: Refusal,
        current: &store::TopicIdentity,
        reset: &mut bool,
    ) -> Result<(), ConsumerError> {
        if !self.flags.accept_new_topic || *reset {
            return Err(refusal.into());
        }
        let old = self.db().reset_topic(&self.topic, current)?;
        warn!(
            "{refusal}. --accept-new-topic: this database's offsets of the old topic \
             ({old:?}) are kept in topic_resets, and the new topic is read from its start"
        );
        *reset = true;
        Ok(())
    }

    /// Records the ranges `start` skips, in order, before the partition
    /// starts. Bounded: the database connection gives up after the
    /// committer's wait limit (another process holding the write lock),
    /// and the run stops with nothing assigned.
    fn record_gaps(&self, p: i32, start: &Start) -> Result<(), ConsumerError> {
        for gap in &start.gaps {
            let recorded = self.db().record_gap_from(
                &self.topic,
                p,
                gap.from,
                gap.to,
                gap.reason,
                gap.source_database.as_deref(),
            )?;
            if recorded {
                self.assignment.gap_recorded();
                warn!(
                    "partition {p}: offsets {}..{} ({} event(s)) are not read into this \
                     database: {}{}; recorded in offset_gaps",
                    gap.from,
                    gap.to,
                    gap.to - gap.from,
                    gap.reason.as_str(),
                    gap.source_database
                        .as_deref()
                        .map(|d| format!(" (stored by database {d})"))
                        .unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    /// Hands partitions back: the open batch is committed first, then the
    /// revoked partitions' offsets go to Kafka synchronously.
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
        let limit = self.committer.wait_limit();
        match self.committer.flush_within(limit) {
            // A writer that stopped earlier has reported why already.
            Ok(()) | Err(ConsumerError::WriterStopped) => {}
            Err(e) => {
                if matches!(&e, ConsumerError::Store(StoreError::GaveUp { .. })) {
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
        // Only the revoked partitions: the ones kept still send theirs.
        let offsets = self.pending.take(&partitions);
        if offsets.is_empty() {
            debug!("nothing committed for the revoked partitions");
        } else if consumer.assignment_lost() {
            warn!(
                "the assignment was lost (session timeout?); offsets {offsets:?} stay in the \
                 database but are not committed to Kafka"
            );
        } else {
            match group::commit_within(consumer, &offsets, limit) {
                Ok(()) => info!("revoked {partitions:?}; committed {offsets:?} to Kafka"),
                Err(e) => warn!(
                    "could not commit offsets {offsets:?} to Kafka on revocation ({e}): the next \
                     owner of these partitions starts from the group's older offsets. Harmless \
                     when it shares this database; with a database of its own it stores the \
                     events in between a second time"
                ),
            }
        }
        let cooperative = cooperative(consumer);
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

/// Whether the group rebalances cooperatively (incremental assign and
/// unassign) rather than eagerly (everything revoked, then assigned).
fn cooperative(consumer: &BaseConsumer<ExactlyOnceContext>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
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
                match seen.pass(&kind) {
                    None => debug!("librdkafka: {error}: {reason}"),
                    Some(held) => warn!("librdkafka: {error}: {reason}{}", held_back(held)),
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
                if rebalancing || last.pass("commit").is_none() {
                    debug!("committing offsets to Kafka failed (informational copy): {e}");
                } else {
                    warn!("committing offsets to Kafka failed (informational copy): {e}");
                }
            }
        }
    }
}
