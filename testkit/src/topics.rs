//! The one topic creation of the harness (tests, chaos, bench,
//! `scripts/broker.sh`): through the Kafka admin API, so it works the same
//! on Apache Kafka, Nisshi and Docker's broker, replicated as
//! [`Replication`] says, and done only once every partition has a leader.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::Replication;

/// Creates `topic` on the broker at `bootstrap` through the admin API
/// (an existing topic is fine), then waits until every partition has a
/// leader.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    create_replicated_topic(bootstrap, topic, partitions, Replication::for_nodes(1))
}

/// [`create_topic`] with the replicas and `min.insync.replicas` of
/// `replication`; fails when the topic exists with another number of
/// partitions.
pub fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: Replication,
) -> Result<()> {
    let have = ensure_topic(bootstrap, topic, partitions, replication)?;
    if have != partitions {
        bail!("topic {topic} exists with {have} partitions, not {partitions}");
    }
    Ok(())
}

/// The one topic creation: creates `topic` (replicated as `replication`
/// says) unless it exists, waits until every partition has a leader, and
/// returns how many partitions it has (an existing topic keeps its own).
pub fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: Replication,
) -> Result<i32> {
    make_topic(bootstrap, topic, partitions, replication, false)
}

/// Creates `topic` with `partitions` partitions (one replica), failing
/// when it exists already (a benchmark phase needs an empty one), and
/// waits until every partition has a leader.
pub fn create_new_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    make_topic(
        bootstrap,
        topic,
        partitions,
        Replication::for_nodes(1),
        true,
    )
    .map(drop)
}

fn make_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: Replication,
    new_only: bool,
) -> Result<i32> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("create an admin client")?;
    let mut new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication.replicas),
    );
    let config = replication.topic_config();
    for (k, v) in &config {
        new = new.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .with_context(|| format!("create topic {topic}"))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) if new_only => {
                bail!("topic {name} exists already on {bootstrap}; a fresh one is needed")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("create topic {name} on {bootstrap}: {code}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader() >= 0)
                {
                    return Ok(t.partitions().len() as i32);
                }
            }
        }
        if Instant::now() >= deadline {
            bail!("topic {topic} has no leaders after 60 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
}
