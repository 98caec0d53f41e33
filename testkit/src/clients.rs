//! Plain rdkafka clients for checks the binaries cannot make themselves:
//! reading a topic back, sending arbitrary (bad) messages and learning
//! where each landed, reading a group's committed offsets.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use prost::Message as _;
use proto::BankingEvent;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Reads `topic` from the beginning until `expected` messages arrived or
/// `timeout` passed, then one more second to catch any extra message;
/// returns the decoded payloads (panics on one that does not decode: the
/// producer only sends valid events).
pub fn read_back(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<BankingEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::kafka::unique("testkit-read-back"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
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

/// The committed offsets of `group` on `topic` (partitions `0..partitions`)
/// in Kafka.
pub fn group_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
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

/// Delivery reports of [`RawProducer`].
#[derive(Default)]
struct Deliveries {
    acknowledged: AtomicU64,
    failed: Mutex<Vec<String>>,
    /// Tag -> where the tagged message landed.
    landed: Mutex<BTreeMap<usize, (i32, i64)>>,
    /// Partition -> the offset after the highest one acknowledged.
    next: Mutex<BTreeMap<i32, i64>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        match result {
            Ok(m) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
                let at = (m.partition(), m.offset());
                let mut next = self.next.lock().unwrap();
                let slot = next.entry(at.0).or_insert(0);
                *slot = (*slot).max(at.1 + 1);
                if tag != UNTAGGED {
                    self.landed.lock().unwrap().insert(tag, at);
                }
            }
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

const UNTAGGED: usize = usize::MAX;

/// What a [`RawProducer`] got acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    /// Messages acknowledged.
    pub acknowledged: u64,
    /// Tag -> (partition, offset) of each tagged message.
    pub tagged: BTreeMap<usize, (i32, i64)>,
    /// Partition -> the offset after the highest one acknowledged.
    pub next_offsets: BTreeMap<i32, i64>,
}

/// A plain idempotent producer for messages of any shape (bad ones
/// included), reporting where the tagged ones landed.
pub struct RawProducer {
    producer: BaseProducer<Deliveries>,
    sent: u64,
}

impl RawProducer {
    /// An idempotent, lz4-compressing producer on `bootstrap`.
    pub fn new(bootstrap: &str) -> Result<RawProducer> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("message.timeout.ms", "120000")
            .set("queue.buffering.max.messages", "500000")
            .create_with_context(Deliveries::default())
            .context("create a plain producer")?;
        Ok(RawProducer { producer, sent: 0 })
    }

    /// Queues one message; `tag` (when given) makes its landing place part
    /// of [`Landed::tagged`].
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
        let d = self.producer.context();
        let failed = std::mem::take(&mut *d.failed.lock().unwrap());
        let acknowledged = d.acknowledged.load(Ordering::Relaxed);
        if !failed.is_empty() || acknowledged != self.sent {
            bail!(
                "{acknowledged} of {} messages acknowledged; failures: {:?}",
                self.sent,
                &failed[..failed.len().min(5)]
            );
        }
        Ok(Landed {
            acknowledged,
            tagged: std::mem::take(&mut *d.landed.lock().unwrap()),
            next_offsets: std::mem::take(&mut *d.next.lock().unwrap()),
        })
    }
}

/// Deletes the records of `topic`'s `partition` before offset `before`
/// through the admin API (Kafka's DeleteRecords, what retention does by
/// time): the partition's log start moves to `before`.
pub fn delete_records(bootstrap: &str, topic: &str, partition: i32, before: i64) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("create an admin client")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before))?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let result = futures::executor::block_on(admin.delete_records(&tpl, &opts))
        .with_context(|| format!("delete records of {topic}/{partition} before {before}"))?;
    for e in result.elements() {
        if let Err(err) = e.error() {
            bail!("delete records of {topic}/{}: {err}", e.partition());
        }
    }
    Ok(())
}

/// Deletes `topic` through the admin API and waits until the broker no
/// longer lists it (an operator's `kafka-topics.sh --delete`).
pub fn delete_topic(bootstrap: &str, topic: &str) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("create an admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let result = futures::executor::block_on(admin.delete_topics(&[topic], &opts))
        .with_context(|| format!("delete topic {topic}"))?;
    for r in result {
        if let Err((name, code)) = r {
            bail!("delete topic {name}: {code}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("read metadata")?;
        let gone = metadata
            .topics()
            .iter()
            .all(|t| t.name() != topic || t.error().is_some());
        if gone {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} is still listed 60 s after its deletion");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The high watermark (the next offset to be written) of partitions
/// `0..partitions` of `topic`.
pub fn high_watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
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
