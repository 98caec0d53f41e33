//! Fresh topics for each run and phase, created and deleted through the
//! Kafka admin API, so it works the same on Tansu, Apache Kafka in Docker and
//! an external broker.

use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

fn admin(brokers: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Error)
        .create()
        .context("cannot create a Kafka admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Creates `name` with `partitions` partitions (replication factor 1). A
/// topic that exists already is an error: every run and phase must start
/// from an empty topic.
pub fn create(brokers: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    let admin = admin(brokers)?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics([&topic], &options()))
        .with_context(|| format!("cannot create topic {name} on {brokers}"))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                bail!("topic {t} exists already on {brokers}; the benchmark needs a fresh one")
            }
            Err((t, code)) => bail!("cannot create topic {t} on {brokers}: {code}"),
        }
    }
    Ok(())
}

/// Deletes `name`, to give the broker its memory back (Tansu's in-memory
/// engine keeps every message). Failure is only logged: a leftover topic
/// costs memory, not correctness.
pub fn delete(brokers: &str, name: &str) {
    let result = admin(brokers).and_then(|admin| {
        futures::executor::block_on(admin.delete_topics(&[name], &options()))
            .with_context(|| format!("cannot delete topic {name}"))
    });
    match result {
        Ok(results) => {
            for r in results {
                if let Err((t, code)) = r {
                    eprintln!(
                        "bench: note: topic {t} not deleted ({code}); it stays on the broker"
                    );
                }
            }
        }
        Err(e) => eprintln!("bench: note: {e:#}"),
    }
}
