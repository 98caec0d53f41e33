//! What a consumer hands the store: the messages of one topic read since the
//! last commit, decoded or not.

use std::collections::BTreeMap;

use proto::BankingEvent;

/// One decoded event and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEvent {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset within the partition.
    pub offset: i64,
    /// The decoded event.
    pub event: BankingEvent,
    /// The raw protobuf bytes, stored as they arrived so that a row can
    /// always be traced back to the exact message.
    pub payload: Vec<u8>,
}

/// A message that could not be stored as an event (undecodable, invalid),
/// kept so that it neither stops the pipeline nor disappears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDeadLetter {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset within the partition.
    pub offset: i64,
    /// The Kafka key, if the message had one.
    pub key: Option<Vec<u8>>,
    /// The raw message value, if it had one.
    pub payload: Option<Vec<u8>>,
    /// Why it was refused.
    pub error: String,
}

/// The messages of one topic that go into one SQLite transaction.
///
/// A batch is reused: [`Batch::clear`] keeps its allocations, so a consumer
/// that commits every 20,000 messages allocates the vectors once.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    topic: String,
    events: Vec<BatchEvent>,
    dead_letters: Vec<BatchDeadLetter>,
    /// Per partition, the offset after the highest one pushed. A BTreeMap
    /// keeps the offsets in partition order, so commits touch the offsets
    /// table in the same order every time.
    next_offsets: BTreeMap<i32, i64>,
}

impl Batch {
    /// An empty batch for `topic`.
    pub fn new(topic: impl Into<String>) -> Batch {
        Batch {
            topic: topic.into(),
            ..Batch::default()
        }
    }

    /// An empty batch with room for `n` events, for consumers that know
    /// their batch size.
    pub fn with_capacity(topic: impl Into<String>, n: usize) -> Batch {
        Batch {
            topic: topic.into(),
            events: Vec::with_capacity(n),
            ..Batch::default()
        }
    }

    /// The topic every message of the batch came from; offsets are stored
    /// under it.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Adds a decoded event. The store validates it again before writing,
    /// so an invalid one ends up as a dead letter, never as a row.
    pub fn push_event(
        &mut self,
        partition: i32,
        offset: i64,
        event: BankingEvent,
        payload: Vec<u8>,
    ) {
        self.add_event(BatchEvent {
            partition,
            offset,
            event,
            payload,
        });
    }

    /// [`push_event`](Batch::push_event) for an event already in its struct.
    pub fn add_event(&mut self, event: BatchEvent) {
        self.advance(event.partition, event.offset);
        self.events.push(event);
    }

    /// Adds a message that cannot be stored as an event. Its offset moves
    /// forward like any other: a poison message must not stop the pipeline.
    pub fn add_dead_letter(&mut self, dead: BatchDeadLetter) {
        self.advance(dead.partition, dead.offset);
        self.dead_letters.push(dead);
    }

    /// [`add_dead_letter`](Batch::add_dead_letter) from its parts.
    pub fn push_dead_letter(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        error: String,
    ) {
        self.add_dead_letter(BatchDeadLetter {
            partition,
            offset,
            key,
            payload,
            error,
        });
    }

    fn advance(&mut self, partition: i32, offset: i64) {
        let next = offset.saturating_add(1);
        self.next_offsets
            .entry(partition)
            .and_modify(|n| *n = (*n).max(next))
            .or_insert(next);
    }

    /// Events plus dead letters.
    pub fn len(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }

    /// True when nothing was pushed since the last [`Batch::clear`].
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dead_letters.is_empty()
    }

    /// The events in the order they were pushed (the latency histogram needs
    /// each one's `created_at_us`).
    pub fn events(&self) -> &[BatchEvent] {
        &self.events
    }

    /// The dead letters in the order they were pushed.
    pub fn dead_letters(&self) -> &[BatchDeadLetter] {
        &self.dead_letters
    }

    /// Per partition, in partition order: the highest offset pushed plus
    /// one, i.e. where to resume reading after this batch is committed.
    pub fn next_offsets(&self) -> impl Iterator<Item = (i32, i64)> {
        self.next_offsets.iter().map(|(&p, &o)| (p, o))
    }

    /// Empties the batch, keeping its topic and its allocations.
    pub fn clear(&mut self) {
        self.events.clear();
        self.dead_letters.clear();
        self.next_offsets.clear();
    }
}
