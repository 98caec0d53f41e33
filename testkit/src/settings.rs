//! The settings every Apache Kafka this project starts gets, the
//! replication rule, the cluster id and the version, written once;
//! `docker-compose.yml` sets the same (a test compares the two).

use std::fs;

use anyhow::{Context, Result};

use crate::repo_root;

/// The compose file's `CLUSTER_ID`: any fixed base64 UUID.
pub const CLUSTER_ID: &str = "b4nk1ngEv3ntsPipe1ineQ";

/// KRaft combined mode, no initial rebalance delay (it would show in every
/// test and latency figure), no topic made by a typo.
pub const BROKER_SETTINGS: &[(&str, &str)] = &[
    ("process.roles", "broker,controller"),
    ("controller.listener.names", "CONTROLLER"),
    ("inter.broker.listener.name", "PLAINTEXT"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("auto.create.topics.enable", "false"),
];

/// Settings whose value depends on where the broker runs.
pub const PLACED: &[&str] = &[
    "node.id",
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
];

/// One replica per node, at most three, and `min.insync.replicas` one
/// fewer (at least one): with `acks=all` losing any node loses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replication {
    pub replicas: i32,
    pub min_isr: i32,
}

impl Replication {
    pub fn for_nodes(nodes: usize) -> Replication {
        let replicas = nodes.clamp(1, 3) as i32;
        Replication {
            replicas,
            min_isr: (replicas - 1).max(1),
        }
    }

    /// Internal and new topics replicated alike; on several nodes also no
    /// unclean leader election.
    pub fn broker_settings(self) -> Vec<(String, String)> {
        let (rf, isr) = (self.replicas.to_string(), self.min_isr.to_string());
        let mut settings = vec![
            ("offsets.topic.replication.factor", &rf),
            ("transaction.state.log.replication.factor", &rf),
            ("transaction.state.log.min.isr", &isr),
            ("share.coordinator.state.topic.replication.factor", &rf),
            ("share.coordinator.state.topic.min.isr", &isr),
            ("default.replication.factor", &rf),
        ];
        let no = "false".to_string();
        if self.replicas > 1 {
            settings.extend([
                ("min.insync.replicas", &isr),
                ("unclean.leader.election.enable", &no),
            ]);
        }
        settings
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// Every setting a broker of `nodes` nodes gets but the placed ones.
pub fn settings(nodes: usize) -> Vec<(String, String)> {
    BROKER_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(Replication::for_nodes(nodes).broker_settings())
        .collect()
}

/// The tag of the `apache/kafka` image `docker-compose.yml` names.
pub fn version() -> Result<String> {
    let compose = repo_root().join("docker-compose.yml");
    let text =
        fs::read_to_string(&compose).with_context(|| format!("read {}", compose.display()))?;
    version_in(&text).context("docker-compose.yml names no apache/kafka:<version> image")
}

fn version_in(text: &str) -> Option<String> {
    text.match_indices("apache/kafka:").find_map(|(at, m)| {
        let tag: String = text[at + m.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        tag.starts_with(|c: char| c.is_ascii_digit()).then_some(tag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replication_rule() {
        let r = |n| {
            let r = Replication::for_nodes(n);
            (r.replicas, r.min_isr)
        };
        assert_eq!([r(1), r(2), r(3), r(5)], [(1, 1), (2, 1), (3, 2), (3, 2)]);
    }

    #[test]
    fn the_version_is_read_from_a_plain_tag_or_a_default() {
        assert_eq!(version_in("image: apache/kafka:4.3.1\n").unwrap(), "4.3.1");
        assert_eq!(
            version_in("image: \"${KAFKA_IMAGE:-apache/kafka:4.3.1}\"").unwrap(),
            "4.3.1"
        );
        assert_eq!(version_in("# apache/kafka:<tag>\nimage: x"), None);
        let v = version().unwrap();
        assert!(v.split('.').all(|p| p.parse::<u32>().is_ok()), "{v}");
    }
}
