//! Deletion of the fresh topics each run and phase creates (testkit's
//! `create_new_topic`), through the Kafka admin API, so it works the same on
//! any broker: local, in Docker or external.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;

/// Deletes `name`, to give the broker its memory and disk back (an
/// in-memory engine keeps every message). Failure is only logged: a leftover topic
/// costs memory, not correctness.
pub fn delete(brokers: &str, name: &str) {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let result = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Error)
        .create::<AdminClient<DefaultClientContext>>()
        .context("cannot create a Kafka admin client")
        .and_then(|admin| {
            futures::executor::block_on(admin.delete_topics(&[name], &options))
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
