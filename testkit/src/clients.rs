//! Plain rdkafka clients for checks the binaries cannot make themselves,
//! and the one topic creation of the harness (the same on every broker).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use prost::Message as _;
use proto::BankingEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::metadata::MetadataTopic;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::procs::wait_until;
use crate::settings::Replication;

pub(crate) fn config(bootstrap: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (k, v) in settings {
        config.set(*k, *v);
    }
    config
}

pub(crate) fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
    config(bootstrap, &[])
        .create()
        .context("create an admin client")
}

pub(crate) fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// What `f` says of `topic`'s metadata, `None` while it is not listed
/// (or listed with an error).
pub(crate) fn topic_metadata<T>(
    client: &Client<impl ClientContext>,
    topic: &str,
    f: impl FnOnce(&MetadataTopic) -> T,
) -> Result<Option<T>> {
    let md = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("metadata of {topic}"))?;
    let listed = md.topics().iter().find(|t| t.name() == topic);
    Ok(listed.filter(|t| t.error().is_none()).map(f))
}

/// Reads `topic` from the beginning until `expected` messages arrived or
/// `timeout` passed, then one more second for any extra one.
pub fn read_back(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<BankingEvent> {
    let group = crate::kafka::unique("testkit-read-back");
    let consumer: BaseConsumer = config(
        bootstrap,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .expect("create read-back consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(expected);
    let mut take = |deadline: Instant, until: usize| {
        while out.len() < until && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => out.push(
                    BankingEvent::decode(m.payload().unwrap_or_default()).expect("a valid event"),
                ),
                Some(Err(e)) => eprintln!("read_back: {e}"),
                None => {}
            }
        }
    };
    take(deadline, expected);
    take(Instant::now() + Duration::from_secs(1), usize::MAX);
    out
}

/// The offsets `group` committed to Kafka on `topic`.
pub fn group_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>> {
    let settings = [("group.id", group), ("enable.auto.commit", "false")];
    let consumer: BaseConsumer = config(bootstrap, &settings)
        .create()
        .context("create an offsets reader")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, partitions - 1);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .context("read committed offsets")?;
    Ok(committed
        .elements_for_topic(topic)
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// What a [`RawProducer`] got acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    pub acknowledged: u64,
    /// Tag -> (partition, offset) of each tagged message.
    pub tagged: BTreeMap<usize, (i32, i64)>,
}

#[derive(Default)]
struct Deliveries(Mutex<(Landed, Vec<String>)>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let (landed, failed) = &mut *self.0.lock().unwrap();
        match result {
            Ok(m) => {
                landed.acknowledged += 1;
                if tag != UNTAGGED {
                    landed.tagged.insert(tag, (m.partition(), m.offset()));
                }
            }
            Err((e, _)) => failed.push(e.to_string()),
        }
    }
}

const UNTAGGED: usize = usize::MAX;

/// An idempotent producer of messages of any shape (bad ones included),
/// reporting where the tagged ones landed.
pub struct RawProducer {
    producer: BaseProducer<Deliveries>,
    sent: u64,
}

impl RawProducer {
    pub fn new(bootstrap: &str) -> Result<RawProducer> {
        let settings = [
            ("enable.idempotence", "true"),
            ("compression.type", "lz4"),
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
            ("message.timeout.ms", "120000"),
            ("queue.buffering.max.messages", "500000"),
        ];
        let producer = config(bootstrap, &settings)
            .create_with_context(Deliveries::default())
            .context("create a plain producer")?;
        Ok(RawProducer { producer, sent: 0 })
    }

    /// Queues one message; a `tag` puts its landing place in [`Landed`].
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        tag: Option<usize>,
    ) -> Result<()> {
        let mut record = BaseRecord::with_opaque_to(topic, tag.unwrap_or(UNTAGGED));
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("send to {topic}: {e}"),
            }
        }
        self.sent += 1;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Waits for every acknowledgement; fails unless all were delivered.
    pub fn finish(self) -> Result<Landed> {
        self.producer
            .flush(Duration::from_secs(300))
            .context("flush the plain producer")?;
        let (landed, failed) = std::mem::take(&mut *self.producer.context().0.lock().unwrap());
        if !failed.is_empty() || landed.acknowledged != self.sent {
            bail!(
                "{} of {} messages acknowledged; failures: {:?}",
                landed.acknowledged,
                self.sent,
                &failed[..failed.len().min(5)]
            );
        }
        Ok(landed)
    }
}

/// Deletes the records of `partition` before `before` (what retention
/// does): its log start moves to `before`.
pub fn delete_records(bootstrap: &str, topic: &str, partition: i32, before: i64) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before))?;
    let admin = admin(bootstrap)?;
    let result = futures::executor::block_on(admin.delete_records(&tpl, &admin_options()))
        .with_context(|| format!("delete records of {topic}/{partition} before {before}"))?;
    for e in result.elements() {
        if let Err(err) = e.error() {
            bail!("delete records of {topic}/{}: {err}", e.partition());
        }
    }
    Ok(())
}

/// Deletes `topic` and waits until the broker no longer lists it.
pub fn delete_topic(bootstrap: &str, topic: &str) -> Result<()> {
    let admin = admin(bootstrap)?;
    let result = futures::executor::block_on(admin.delete_topics(&[topic], &admin_options()))
        .with_context(|| format!("delete topic {topic}"))?;
    for r in result {
        if let Err((name, code)) = r {
            bail!("delete topic {name}: {code}");
        }
    }
    wait_until(
        Duration::from_secs(60),
        &format!("{topic} unlisted"),
        || topic_metadata(admin.inner(), topic, |_| ()).is_ok_and(|t| t.is_none()),
    )
}

/// The next offset to be written of each partition of `topic`.
pub fn high_watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = config(bootstrap, &[])
        .create()
        .context("create a watermark reader")?;
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .with_context(|| format!("watermarks of {topic}/{p}"))?;
            Ok((p, high))
        })
        .collect()
}

/// What [`create_topic`] does with a topic that exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Keeps it, with its own partitions.
    Keep,
    /// Keeps it when it has the partitions asked for, else fails.
    SamePartitions,
    /// Fails: a fresh topic is needed (a benchmark phase's).
    Fail,
}

/// Creates `topic`, waits until every partition has a leader, and returns
/// how many it has.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: Replication,
    existing: Existing,
) -> Result<i32> {
    let admin = admin(bootstrap)?;
    let (replicas, min_isr) = (replication.replicas, replication.min_isr.to_string());
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas))
        .set("min.insync.replicas", &min_isr);
    let results = futures::executor::block_on(admin.create_topics([&new], &admin_options()))
        .with_context(|| format!("create topic {topic}"))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) if existing == Existing::Fail => {
                bail!("topic {name} exists already on {bootstrap}; a fresh one is needed")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("create topic {name} on {bootstrap}: {code}"),
        }
    }
    let led = |t: &MetadataTopic| {
        let p = t.partitions();
        (!p.is_empty() && p.iter().all(|p| p.leader() >= 0)).then_some(p.len() as i32)
    };
    let (mut have, what) = (0, format!("leaders of {topic}"));
    wait_until(Duration::from_secs(60), &what, || {
        let leaders = topic_metadata(admin.inner(), topic, led);
        have = leaders.ok().flatten().flatten().unwrap_or(0);
        have > 0
    })?;
    if existing == Existing::SamePartitions && have != partitions {
        bail!("topic {topic} exists with {have} partitions, not {partitions}");
    }
    Ok(have)
}

/// Creates `topic` (one replica), failing when it exists already.
pub fn create_new_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let one = Replication::for_nodes(1);
    create_topic(bootstrap, topic, partitions, one, Existing::Fail).map(drop)
}
