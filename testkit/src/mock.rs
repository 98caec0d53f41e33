//! librdkafka's mock cluster, in the test process on real TCP ports: fast,
//! hermetic, fault injection; never the only proof of a guarantee. It
//! silently drops data past 5 MiB or 100,000 batches per partition.

use anyhow::{Context, Result};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::Broker;

/// A one-broker mock cluster; gone when dropped.
pub struct MockKafka {
    /// Also the handle for fault injection (`request_errors`, ...).
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

impl MockKafka {
    pub fn new() -> Result<MockKafka> {
        let cluster = MockCluster::new(1).context("start librdkafka's mock cluster")?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(MockKafka { cluster, bootstrap })
    }

    /// With `topic`.
    pub fn start(topic: &str, partitions: i32) -> MockKafka {
        let mock = MockKafka::new().expect("start librdkafka's mock cluster");
        mock.create_topic(topic, partitions)
            .expect("create a topic on the mock cluster");
        mock
    }

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
