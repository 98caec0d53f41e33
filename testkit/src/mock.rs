//! librdkafka's mock cluster, hosted by the test process and listening on
//! real TCP ports, so that binaries spawned by the test can use it too.
//!
//! For fast hermetic tests (no JVM) and fault injection the real broker
//! cannot give; never the only proof of a guarantee. It keeps at most
//! 5 MiB or 100,000 batches per partition and silently drops older data
//! (DESIGN.md): keep tests well under that.

use anyhow::{Context, Result};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::Broker;

/// A one-broker mock cluster; gone when dropped.
pub struct MockKafka {
    /// Kept alive for as long as the test needs the broker; also the
    /// handle for fault injection (`request_errors`, ...).
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

impl MockKafka {
    /// A one-broker mock cluster without topics.
    pub fn new() -> Result<MockKafka> {
        let cluster = MockCluster::new(1).context("start librdkafka's mock cluster")?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(MockKafka { cluster, bootstrap })
    }

    /// A one-broker mock cluster with `topic` of `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> MockKafka {
        let mock = MockKafka::new().expect("start librdkafka's mock cluster");
        mock.create_topic(topic, partitions)
            .expect("create a topic on the mock cluster");
        mock
    }

    /// `host:port` of its broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

impl Broker for MockKafka {
    fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .with_context(|| format!("create topic {topic} on the mock cluster"))
    }
}
