//! A cluster of Apache Kafka nodes on one machine, each a [`Kafka`] and a
//! voter of one controller quorum, replicated as [`Replication`] says: the
//! loss of any one node loses nothing acknowledged. Failure detection keeps
//! Kafka's defaults, so the recovery times measured are the ones users see.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::MetadataTopic;

use crate::brokerproc::Lifetime;
use crate::clients::topic_metadata;
use crate::kafka::{self, Existing, Kafka, KafkaOptions};
use crate::settings::Replication;
use crate::{Broker, free_port};

/// Several local Apache Kafka nodes forming one cluster; killed on drop.
pub struct Cluster {
    nodes: Vec<Kafka>,
    bootstrap: String,
}

impl Cluster {
    /// Starts `nodes` nodes with their files in `dir/node-<id>` (kept).
    pub fn start_in_dir(dir: &Path, nodes: usize) -> Result<Cluster> {
        if nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        let dir = crate::brokerproc::created(dir)?;
        let controllers: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let ids: Vec<u32> = (1..=nodes as u32).collect();
        let place = |i: u32| {
            let node = dir.join(format!("node-{i}"));
            (node, KafkaOptions::default(), controllers[i as usize - 1])
        };
        let nodes = kafka::start_nodes(nodes as u32, &ids, "127.0.0.1", Lifetime::Thread, place)?;
        let bootstrap = Cluster::bootstrap_of(nodes.iter());
        Ok(Cluster { nodes, bootstrap })
    }

    fn bootstrap_of<'a>(nodes: impl Iterator<Item = &'a Kafka>) -> String {
        let addresses: Vec<&str> = nodes.map(|n| n.bootstrap()).collect();
        addresses.join(",")
    }

    /// Node `id` (1-based, as Kafka's `node.id`).
    fn node_mut(&mut self, id: u32) -> Result<&mut Kafka> {
        let count = self.nodes.len();
        self.nodes
            .get_mut((id as usize).wrapping_sub(1))
            .with_context(|| format!("no node {id} in a cluster of {count}"))
    }

    pub fn kill(&mut self, id: u32) -> Result<()> {
        self.node_mut(id)?.kill()
    }

    pub fn stop(&mut self, id: u32) -> Result<()> {
        self.node_mut(id)?.stop()
    }

    pub fn restart(&mut self, id: u32) -> Result<()> {
        self.node_mut(id)?.restart()
    }

    fn live_bootstrap(&self) -> String {
        Cluster::bootstrap_of(self.nodes.iter().filter(|n| n.is_running()))
    }

    fn metadata_client(&self) -> Result<BaseConsumer> {
        let config = crate::clients::config(&self.live_bootstrap(), &[]);
        config.create().context("create a metadata client")
    }

    /// The node leading the most partitions (the lowest id on a tie), and
    /// how many.
    pub fn busiest_leader(&self, topic: &str) -> Result<(u32, usize)> {
        let leaders = |t: &MetadataTopic| {
            let led = t.partitions().iter().filter(|p| p.leader() > 0);
            led.map(|p| p.leader() as u32).collect::<Vec<_>>()
        };
        let leaders = topic_metadata(self.metadata_client()?.client(), topic, leaders)?
            .with_context(|| format!("no topic {topic}"))?;
        let mut per_node: BTreeMap<u32, usize> = BTreeMap::new();
        for node in leaders {
            *per_node.entry(node).or_default() += 1;
        }
        per_node
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .context("no partition has a leader")
    }

    /// Waits until every partition has a leader and all replicas in sync.
    pub fn wait_in_sync(&self, topic: &str, timeout: Duration) -> Result<()> {
        let client = self.metadata_client()?;
        let in_sync = |t: &MetadataTopic| {
            let p = t.partitions();
            p.iter()
                .all(|p| p.leader() > 0 && p.isr().len() == p.replicas().len())
        };
        crate::procs::wait_until(timeout, "every replica in sync", || {
            topic_metadata(client.client(), topic, in_sync).is_ok_and(|t| t == Some(true))
        })
    }
}

impl Broker for Cluster {
    fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let (replication, same) = (
            Replication::for_nodes(self.nodes.len()),
            Existing::SamePartitions,
        );
        kafka::create_topic(&self.live_bootstrap(), topic, partitions, replication, same).map(drop)
    }
}
