//! What a member tells Kafka about its offsets, and what it asks Kafka:
//! the group's committed offsets (with the database that committed them),
//! the partitions' watermarks, the topic's identity, and whether the rest
//! of the group has drained its partitions.
//!
//! Every offset this project commits carries, as its metadata, the id of
//! the database that stored the range below it
//! ([`crate::start::commit_metadata`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString, c_char};
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};
use store::TopicIdentity;
use tracing::{debug, warn};

use crate::context::ExactlyOnceContext;
use crate::start::{GroupOffset, Writer};

/// How long each lookup of the broker may take.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `(partition, next offset)` pairs of `topic` as a list to commit, each
/// with `metadata`.
pub fn offsets_tpl(topic: &str, offsets: &[(i32, i64)], metadata: &str) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for &(p, o) in offsets {
        let mut e = tpl.add_partition(topic, p);
        // Only fails for Offset::OffsetTail, which this is not.
        let _ = e.set_offset(Offset::Offset(o));
        e.set_metadata(metadata);
    }
    tpl
}

/// Copies what SQLite committed to Kafka without waiting, when it is due
/// (see [`crate::pending`]): the group's view of this member's progress.
/// Call it from the thread that polls, after each message (a load and no
/// lock unless a batch was committed since) and on idle ticks.
pub fn commit_due<C: Consumer<ExactlyOnceContext>>(consumer: &C, idle_tick: bool) {
    let pending = consumer.context().pending();
    if !idle_tick && !pending.has_news() {
        return;
    }
    let send = pending.due(Instant::now());
    if send.is_empty() {
        return;
    }
    let context = consumer.context();
    let tpl = offsets_tpl(context.topic(), &send, context.commit_metadata());
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        debug!("could not queue an offset commit to Kafka: {e}");
        pending.send_failed(&send);
    }
}

/// Commits every SQLite-committed offset of this run to Kafka and waits at
/// most `limit` for the answer: the last step before leaving the group.
/// Bounded because a broker that is gone (or up but not answering, e.g.
/// with its disk full) would hold a synchronous commit for as long as
/// librdkafka waits for a coordinator, and a stopped consumer must exit
/// within its grace period. Nothing is lost on a timeout: the database
/// holds the offsets and a restart on it resumes from them.
pub fn commit_final<C: Consumer<ExactlyOnceContext>>(consumer: &C, limit: Duration) {
    let offsets = consumer.context().pending().take_all();
    if offsets.is_empty() {
        return;
    }
    match commit_within(consumer, &offsets, limit) {
        Ok(()) => debug!("final offsets committed to Kafka: {offsets:?}"),
        Err(e) => warn!(
            "could not commit the final offsets {offsets:?} to Kafka ({e}); the database \
             holds them, a restart with the same database resumes correctly"
        ),
    }
}

/// Commits `offsets` and waits for the answer at most `limit`: at exit,
/// and on revocation so that the partitions' next owner starts exactly
/// where this member stopped. librdkafka's `rd_kafka_commit_queue` with a
/// private queue (the rdkafka crate only offers a synchronous commit that
/// waits without a bound, or an asynchronous one whose answer comes
/// through the consumer's poll).
pub(crate) fn commit_within<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    offsets: &[(i32, i64)],
    limit: Duration,
) -> Result<(), String> {
    let context = consumer.context();
    let tpl = offsets_tpl(context.topic(), offsets, context.commit_metadata());
    let rk = consumer.client().native_ptr();
    // SAFETY: rk lives as long as the consumer and tpl for this function;
    // librdkafka copies the list, and holds its own reference to the queue
    // for the answer, so destroying ours after a timeout is allowed (a
    // late answer is dropped with it). The event is destroyed here.
    unsafe {
        let queue = rdsys::rd_kafka_queue_new(rk);
        let err = rdsys::rd_kafka_commit_queue(rk, tpl.ptr(), queue, None, std::ptr::null_mut());
        let result = if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Err(KafkaError::ConsumerCommit(err.into()).to_string())
        } else {
            let event = rdsys::rd_kafka_queue_poll(queue, limit.as_millis() as i32);
            if event.is_null() {
                Err(format!("no answer within {limit:?}"))
            } else {
                let err = rdsys::rd_kafka_event_error(event);
                rdsys::rd_kafka_event_destroy(event);
                match err {
                    rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
                    e => Err(KafkaError::ConsumerCommit(e.into()).to_string()),
                }
            }
        };
        rdsys::rd_kafka_queue_destroy(queue);
        result
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
    let stored = consumer
        .context()
        .stored_offsets()
        .map_err(|e| e.to_string())?;
    let offsets: Vec<(i32, i64)> = stored
        .into_iter()
        .filter(|(p, _)| mine.contains(p))
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    commit_within(consumer, &offsets, LOOKUP_TIMEOUT)
        .map_err(|e| format!("commit the stored offsets to Kafka: {e}"))
}

/// The group's committed offsets of `partitions`, each with the database
/// that committed it. Tried three times before it fails: a start position
/// is not decided without them.
pub(crate) fn group_offsets<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    partitions: &[i32],
) -> KafkaResult<BTreeMap<i32, GroupOffset>> {
    let context = consumer.context();
    let topic = context.topic();
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = retry(|| consumer.committed_offsets(tpl.clone(), LOOKUP_TIMEOUT))?;
    let mut out = BTreeMap::new();
    for e in committed.elements_for_topic(topic) {
        if let Offset::Offset(o) = e.offset() {
            if o >= 0 {
                let writer = Writer::from_metadata(e.metadata(), context.database_id());
                out.insert(e.partition(), GroupOffset { offset: o, writer });
            }
        }
    }
    Ok(out)
}

/// The log start and high watermark of partition `p`, tried three times.
pub(crate) fn watermarks<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
    p: i32,
) -> KafkaResult<(i64, i64)> {
    let topic = consumer.context().topic();
    retry(|| consumer.fetch_watermarks(topic, p, LOOKUP_TIMEOUT))
}

fn retry<T>(mut f: impl FnMut() -> KafkaResult<T>) -> KafkaResult<T> {
    let mut last = None;
    for attempt in 1..=3 {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => {
                debug!("broker lookup failed (attempt {attempt} of 3): {e}");
                last = Some(e);
            }
        }
    }
    Err(last.expect("three attempts"))
}

/// The topic's identity on the broker: its partition count (metadata) and
/// Kafka's topic ID where the broker and librdkafka give one
/// (`DescribeTopics`; `None` from brokers without topic IDs).
pub(crate) fn topic_identity<C: Consumer<ExactlyOnceContext>>(
    consumer: &C,
) -> KafkaResult<TopicIdentity> {
    let topic = consumer.context().topic();
    let metadata = retry(|| consumer.fetch_metadata(Some(topic), LOOKUP_TIMEOUT))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as i32);
    let topic_id = describe_topic_id(consumer.client().native_ptr(), topic, LOOKUP_TIMEOUT);
    Ok(TopicIdentity {
        topic_id,
        partitions,
    })
}

/// Kafka's topic ID of `topic` (base64), through librdkafka's
/// `DescribeTopics` admin call, which any client handle may make (the
/// rdkafka crate has no wrapper for it). `None` when the broker does not
/// answer it or has no IDs (all zero).
fn describe_topic_id(rk: *mut rdsys::rd_kafka_t, topic: &str, timeout: Duration) -> Option<String> {
    let name = CString::new(topic).ok()?;
    // SAFETY: every pointer passed is valid for the call (rk for the
    // consumer's lifetime, the name for this function's), every object
    // created here is destroyed here, and the result's strings are copied
    // before the event that owns them is destroyed.
    unsafe {
        let queue = rdsys::rd_kafka_queue_new(rk);
        let mut names = [name.as_ptr()];
        let collection = rdsys::rd_kafka_TopicCollection_of_topic_names(names.as_mut_ptr(), 1);
        let options = rdsys::rd_kafka_AdminOptions_new(
            rk,
            rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        );
        let mut errstr = [0 as c_char; 256];
        rdsys::rd_kafka_AdminOptions_set_request_timeout(
            options,
            timeout.as_millis() as i32,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        rdsys::rd_kafka_DescribeTopics(rk, collection, options, queue);
        let event = rdsys::rd_kafka_queue_poll(queue, timeout.as_millis() as i32 + 1_000);
        let mut id = None;
        if !event.is_null()
            && rdsys::rd_kafka_event_error(event)
                == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            let result = rdsys::rd_kafka_event_DescribeTopics_result(event);
            if !result.is_null() {
                let mut n = 0usize;
                let topics = rdsys::rd_kafka_DescribeTopics_result_topics(result, &mut n);
                for i in 0..n {
                    let description = *topics.add(i);
                    let error = rdsys::rd_kafka_TopicDescription_error(description);
                    if !error.is_null()
                        && rdsys::rd_kafka_error_code(error)
                            != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    {
                        continue;
                    }
                    let uuid = rdsys::rd_kafka_TopicDescription_topic_id(description);
                    if uuid.is_null()
                        || (rdsys::rd_kafka_Uuid_most_significant_bits(uuid) == 0
                            && rdsys::rd_kafka_Uuid_least_significant_bits(uuid) == 0)
                    {
                        continue;
                    }
                    let text = rdsys::rd_kafka_Uuid_base64str(uuid);
                    if !text.is_null() {
                        id = Some(CStr::from_ptr(text).to_string_lossy().into_owned());
                    }
                }
            }
        }
        if !event.is_null() {
            rdsys::rd_kafka_event_destroy(event);
        }
        rdsys::rd_kafka_AdminOptions_destroy(options);
        rdsys::rd_kafka_TopicCollection_destroy(collection);
        rdsys::rd_kafka_queue_destroy(queue);
        id
    }
}

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

/// How long each lookup of [`undrained_elsewhere`] may take.
const GROUP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

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
    let topic = consumer.context().topic();
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

/// Why a start position could not be decided: a lookup that failed.
pub(crate) fn unproven(
    topic: &str,
    what: &'static str,
    source: KafkaError,
) -> crate::ConsumerError {
    crate::ConsumerError::StartUnproven {
        topic: topic.to_string(),
        what,
        source,
    }
}
