//! The one topic creation of the harness, through the admin API (the same
//! on every broker), done once every partition has a leader.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::clients::{admin, admin_options, topic_metadata};
use crate::procs::wait_until;
use crate::settings::Replication;

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
    let mut new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication.replicas),
    );
    let config = replication.topic_config();
    for (k, v) in &config {
        new = new.set(k, v);
    }
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
    let mut have = 0;
    wait_until(
        Duration::from_secs(60),
        &format!("leaders of {topic}"),
        || {
            let led = |t: &rdkafka::metadata::MetadataTopic| {
                let p = t.partitions();
                (!p.is_empty() && p.iter().all(|p| p.leader() >= 0)).then_some(p.len() as i32)
            };
            have = topic_metadata(admin.inner(), topic, led)
                .ok()
                .flatten()
                .flatten()
                .unwrap_or(0);
            have > 0
        },
    )?;
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
