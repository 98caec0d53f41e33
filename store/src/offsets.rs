//! The exactly-once rule, as the store keeps it: per partition, every
//! offset from 0 up to the stored next offset is either stored here (an
//! event or a dead letter) or inside a recorded gap (`offset_gaps`), and a
//! batch can only continue exactly where the partition stopped.
//!
//! - [`plan`] checks a batch against the stored offsets inside the
//!   committing transaction: a message below the stored offset is a
//!   redelivery (skipped, counted), the next one is written, and one above
//!   it fails the whole batch ([`StoreError::OffsetGap`]). A partition this
//!   database has never stored starts at offset 0: a consumer that starts
//!   anywhere else must say why first ([`Store::record_gap`]).
//! - [`Store::record_gap`] is the only way past a range: it records why
//!   (a hand-over to another instance's database, events the broker
//!   deleted before anyone read them) and moves the stored offset.
//! - The database's own id ([`Store::database_id`]) goes with every offset
//!   the consumer commits to Kafka, so that a group offset can be traced to
//!   the database that stored the range; the topic's identity
//!   ([`Store::topic_identity`]) is kept beside the offsets, so that a
//!   deleted and recreated topic is not mistaken for the old one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::retry::{Failure, retry_busy};
use crate::{Batch, Store, StoreError, now_us};

/// Why a database skips a range of offsets ([`Store::record_gap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The group's committed offset is ahead of this database's: another
    /// instance of the group, with a database of its own, stored that
    /// stretch (the operator said this is one of several instances).
    HandOver,
    /// The broker deleted the events (retention, `DeleteRecords`) before
    /// they were read, and the operator accepted the loss
    /// (`--accept-data-loss`).
    LogStartMoved,
    /// On the group's first read of the partition, the broker's log no
    /// longer started at 0: retention had deleted those events before the
    /// pipeline ever started. Nothing this group could have read.
    RetentionBeforeFirstRead,
}

impl GapReason {
    /// The `reason` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::HandOver => "hand-over",
            GapReason::LogStartMoved => "log-start-moved",
            GapReason::RetentionBeforeFirstRead => "retention-before-first-read",
        }
    }
}

/// One row of `offset_gaps`: offsets `[from_offset, to_offset)` of a
/// partition that this database skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetGap {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First skipped offset.
    pub from_offset: i64,
    /// First offset after the gap.
    pub to_offset: i64,
    /// [`GapReason::as_str`].
    pub reason: String,
    /// For a hand-over: the id of the database that stored the range, as
    /// the group's committed offset named it (`None`: not named, e.g. an
    /// offset committed by an older version or by a tool).
    pub source_database: Option<String>,
    /// When it was recorded, microseconds since the Unix epoch.
    pub recorded_at_us: i64,
}

/// What identifies a topic beyond its name: a topic deleted and created
/// again under the same name starts its offsets at 0 again, and must not be
/// read as the continuation of the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicIdentity {
    /// Kafka's topic ID (base64), where the broker and client give one.
    pub topic_id: Option<String>,
    /// The number of partitions when it was recorded.
    pub partitions: i32,
}

/// One row of `topic_resets`: the operator accepted a new topic under an
/// old name (`--accept-new-topic`), and the old offsets were put aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReset {
    /// Topic name.
    pub topic: String,
    /// The old topic's ID, if known.
    pub old_topic_id: Option<String>,
    /// The new topic's ID, if known.
    pub new_topic_id: Option<String>,
    /// The old topic's stored offsets, `partition:next_offset` separated by
    /// commas.
    pub old_offsets: String,
    /// When, microseconds since the Unix epoch.
    pub recorded_at_us: i64,
}

pub(crate) const UPSERT_OFFSET: &str = "\
    INSERT INTO offsets (topic, \"partition\", next_offset) VALUES (?1, ?2, ?3) \
    ON CONFLICT (topic, \"partition\") DO UPDATE SET next_offset = excluded.next_offset";

const UPSERT_TOPIC: &str = "\
    INSERT INTO topics (topic, topic_id, partitions, recorded_at_us) VALUES (?1, ?2, ?3, ?4) \
    ON CONFLICT (topic) DO UPDATE SET topic_id = excluded.topic_id, \
    partitions = excluded.partitions, recorded_at_us = excluded.recorded_at_us";

impl Store {
    /// This database's id: random, made when the file was created (or
    /// upgraded to schema 4), and the same in every copy of the file. The
    /// consumers put it in the metadata of each offset they commit to
    /// Kafka.
    pub fn database_id(&self) -> &str {
        &self.database_id
    }

    /// Where to resume reading `topic`: per partition, the offset after the
    /// last message committed here (or after a recorded gap). Empty when
    /// nothing of `topic` was ever committed.
    pub fn stored_offsets(&self, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
        self.read("read stored offsets", |conn| {
            Ok(stored_offsets(conn, topic)?.into_iter().collect())
        })
    }

    /// Records that this database skips offsets `[from, to)` of
    /// `partition`, for `reason`, and moves the partition's stored offset to
    /// `to`, in one transaction: batches then continue at `to` (see
    /// [`commit`](Store::commit): a batch never jumps over offsets without
    /// such a record). Does nothing when `to <= from`, or when the stored
    /// offset is already at or past `to`. Returns whether a gap was
    /// recorded.
    pub fn record_gap(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        reason: GapReason,
    ) -> Result<bool, StoreError> {
        self.record_gap_from(topic, partition, from, to, reason, None)
    }

    /// [`record_gap`](Store::record_gap), naming the database that stored
    /// the range (a hand-over), so that the group's databases can be
    /// checked as one.
    pub fn record_gap_from(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        reason: GapReason,
        source_database: Option<&str>,
    ) -> Result<bool, StoreError> {
        if to <= from {
            return Ok(false);
        }
        self.write("record an offset gap", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT next_offset FROM offsets WHERE topic = ?1 AND \"partition\" = ?2",
                    params![topic, partition],
                    |r| r.get(0),
                )
                .optional()?;
            if stored.is_some_and(|s| s >= to) {
                return Ok(false);
            }
            let from = stored.map_or(from, |s| s.max(from));
            tx.execute(
                "INSERT INTO offset_gaps (topic, \"partition\", from_offset, to_offset, reason, \
                 recorded_at_us, source_database) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    topic,
                    partition,
                    from,
                    to,
                    reason.as_str(),
                    now_us(),
                    source_database
                ],
            )?;
            tx.execute(UPSERT_OFFSET, params![topic, partition, to])?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Every recorded gap, oldest first.
    pub fn offset_gaps(&self) -> Result<Vec<OffsetGap>, StoreError> {
        self.read("read offset gaps", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT topic, \"partition\", from_offset, to_offset, reason, recorded_at_us, \
                 source_database FROM offset_gaps ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(OffsetGap {
                    topic: r.get(0)?,
                    partition: r.get(1)?,
                    from_offset: r.get(2)?,
                    to_offset: r.get(3)?,
                    reason: r.get(4)?,
                    recorded_at_us: r.get(5)?,
                    source_database: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The identity of `topic` recorded here (`None`: never recorded).
    pub fn topic_identity(&self, topic: &str) -> Result<Option<TopicIdentity>, StoreError> {
        self.read("read the topic's identity", |conn| {
            Ok(conn
                .query_row(
                    "SELECT topic_id, partitions FROM topics WHERE topic = ?1",
                    [topic],
                    |r| {
                        Ok(TopicIdentity {
                            topic_id: r.get(0)?,
                            partitions: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Records (or updates) the identity of `topic`.
    pub fn record_topic_identity(
        &mut self,
        topic: &str,
        identity: &TopicIdentity,
    ) -> Result<(), StoreError> {
        self.write("record the topic's identity", |conn| {
            conn.execute(
                UPSERT_TOPIC,
                params![topic, identity.topic_id, identity.partitions, now_us()],
            )?;
            Ok(())
        })
    }

    /// The topic `topic` was deleted and created again, and the operator
    /// accepted it (`--accept-new-topic`): in one transaction, the old
    /// topic's stored offsets are moved to `topic_resets` (with both
    /// identities), its offsets and gaps are forgotten, and `new` becomes
    /// its identity. The events and dead letters stay. Returns the old
    /// offsets.
    pub fn reset_topic(
        &mut self,
        topic: &str,
        new: &TopicIdentity,
    ) -> Result<BTreeMap<i32, i64>, StoreError> {
        self.write("reset the topic's offsets", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old = stored_offsets(&tx, topic)?;
            let old_id: Option<String> = tx
                .query_row(
                    "SELECT topic_id FROM topics WHERE topic = ?1",
                    [topic],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let listed: Vec<String> = old.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            tx.execute(
                "INSERT INTO topic_resets (topic, old_topic_id, new_topic_id, old_offsets, \
                 recorded_at_us) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![topic, old_id, new.topic_id, listed.join(","), now_us()],
            )?;
            tx.execute("DELETE FROM offsets WHERE topic = ?1", [topic])?;
            tx.execute("DELETE FROM offset_gaps WHERE topic = ?1", [topic])?;
            tx.execute(
                UPSERT_TOPIC,
                params![topic, new.topic_id, new.partitions, now_us()],
            )?;
            tx.commit()?;
            Ok(old)
        })
    }

    /// Every accepted topic reset, oldest first.
    pub fn topic_resets(&self) -> Result<Vec<TopicReset>, StoreError> {
        self.read("read topic resets", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT topic, old_topic_id, new_topic_id, old_offsets, recorded_at_us \
                 FROM topic_resets ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TopicReset {
                    topic: r.get(0)?,
                    old_topic_id: r.get(1)?,
                    new_topic_id: r.get(2)?,
                    old_offsets: r.get(3)?,
                    recorded_at_us: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Runs a write that is its own transaction (or one statement) with the
    /// same lock waiting as reads, checkpointing afterwards as commits do.
    fn write<T>(
        &mut self,
        what: &str,
        mut work: impl FnMut(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let Store {
            checkpointer,
            conn,
            path,
            opts,
            ..
        } = self;
        let v = retry_busy(path, &opts.patience(None), what, || work(conn))?;
        if let Some(checkpointer) = checkpointer {
            checkpointer.after_commit(conn);
        }
        Ok(v)
    }
}

/// The stored next offsets of `topic`, in partition order.
pub(crate) fn stored_offsets(
    conn: &Connection,
    topic: &str,
) -> rusqlite::Result<BTreeMap<i32, i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT \"partition\", next_offset FROM offsets WHERE topic = ?1")?;
    let rows = stmt.query_map([topic], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Which messages of a batch to write, checked against the stored offsets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OffsetPlan {
    /// Per event of the batch: already stored (redelivered), skip it.
    pub skip_event: Vec<bool>,
    /// Per dead letter of the batch: the same.
    pub skip_dead_letter: Vec<bool>,
    /// How many were skipped.
    pub redelivered: usize,
    /// The partitions whose stored offset this batch moves, and where to.
    pub write: BTreeMap<i32, i64>,
    /// Every partition of the batch and its stored next offset once the
    /// batch is committed (what the consumer may tell Kafka): for a
    /// partition whose messages were all redeliveries, the stored one, never
    /// the batch's lower one.
    pub positions: BTreeMap<i32, i64>,
}

/// [`plan`] with the offsets stored in `conn` (inside the committing
/// transaction).
pub(crate) fn plan_in(
    conn: &Connection,
    path: &Path,
    batch: &Batch,
) -> Result<OffsetPlan, Failure> {
    let stored = stored_offsets(conn, batch.topic())?;
    plan(&stored, batch).map_err(|(partition, expected, found)| {
        Failure::Store(StoreError::OffsetGap {
            path: path.to_path_buf(),
            topic: batch.topic().to_string(),
            partition,
            expected,
            found,
        })
    })
}

/// Walks each partition's messages in offset order from where this
/// database stopped (0 for a partition it has never stored): an offset
/// below it is a redelivery (skipped, counted), the next one is written,
/// and one above it is a gap: `Err((partition, expected, found))`, and the
/// whole batch fails.
pub(crate) fn plan(
    stored: &BTreeMap<i32, i64>,
    batch: &Batch,
) -> Result<OffsetPlan, (i32, i64, i64)> {
    let events = batch.events();
    let dead = batch.dead_letters();
    // (partition, offset, is a dead letter, index); stable, so a message
    // delivered twice within the batch keeps its first copy.
    let mut order: Vec<(i32, i64, bool, usize)> = Vec::with_capacity(events.len() + dead.len());
    order.extend(
        events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.partition, e.offset, false, i)),
    );
    order.extend(
        dead.iter()
            .enumerate()
            .map(|(i, d)| (d.partition, d.offset, true, i)),
    );
    order.sort_by_key(|&(p, o, _, _)| (p, o));
    let mut plan = OffsetPlan {
        skip_event: vec![false; events.len()],
        skip_dead_letter: vec![false; dead.len()],
        redelivered: 0,
        write: BTreeMap::new(),
        positions: BTreeMap::new(),
    };
    for (p, o, is_dead, i) in order {
        let expect = *plan
            .positions
            .entry(p)
            .or_insert_with(|| stored.get(&p).copied().unwrap_or(0));
        if o < expect {
            plan.redelivered += 1;
            if is_dead {
                plan.skip_dead_letter[i] = true;
            } else {
                plan.skip_event[i] = true;
            }
        } else if o > expect {
            return Err((p, expect, o));
        } else {
            plan.positions.insert(p, o + 1);
            plan.write.insert(p, o + 1);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(messages: &[(i32, i64)]) -> Batch {
        let mut b = Batch::new("t");
        for &(p, o) in messages {
            b.push_dead_letter(p, o, None, None, "x".into());
        }
        b
    }

    #[test]
    fn a_new_partition_starts_at_zero_and_nowhere_else() {
        let stored = BTreeMap::new();
        let ok = plan(&stored, &batch(&[(0, 0), (0, 1)])).unwrap();
        assert_eq!(ok.write, BTreeMap::from([(0, 2)]));
        assert_eq!(plan(&stored, &batch(&[(3, 5)])), Err((3, 0, 5)));
    }

    #[test]
    fn redeliveries_report_the_stored_offset_not_the_batch_one() {
        let stored = BTreeMap::from([(0, 100), (1, 7)]);
        let p = plan(&stored, &batch(&[(0, 40), (0, 41), (1, 7)])).unwrap();
        assert_eq!(p.redelivered, 2);
        assert_eq!(p.write, BTreeMap::from([(1, 8)]));
        assert_eq!(p.positions, BTreeMap::from([(0, 100), (1, 8)]));
    }

    #[test]
    fn a_jump_fails_and_a_duplicate_within_the_batch_is_skipped() {
        let stored = BTreeMap::from([(0, 10)]);
        assert_eq!(plan(&stored, &batch(&[(0, 10), (0, 12)])), Err((0, 11, 12)));
        let p = plan(&stored, &batch(&[(0, 10), (0, 10), (0, 11)])).unwrap();
        assert_eq!(p.redelivered, 1);
        assert_eq!(p.skip_dead_letter, vec![false, true, false]);
        assert_eq!(p.positions, BTreeMap::from([(0, 12)]));
    }
}
