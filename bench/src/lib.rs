//! The push-vs-pull benchmark of the banking pipeline, behind the `bench`
//! binary that `scripts/bench.sh` calls.
//!
//! A run ([`run::run`]) drives the real binaries as child processes
//! against one broker: **live** phases at several rates, the **backlog**
//! drained by each consumer alone with the [`ceilings`] that bound it,
//! **verification** of every database ([`verify`]), and the **report**
//! ([`results`], [`report`], [`plots`]). `bench claims` ([`claims`]) tests
//! each push-vs-pull claim with a verdict. Both run their phases the same
//! way ([`phase`]), with command lines built from typed arguments
//! ([`argv`], [`settings`]). The method and the runs: `docs/benchmark.md`.

pub mod argv;
pub mod ceilings;
pub mod claims;
pub mod cli;
pub mod machine;
pub mod phase;
pub mod plots;
pub mod queries;
pub mod report;
pub mod results;
pub mod run;
pub mod settings;
pub mod stats;
pub mod verify;

#[cfg(test)]
mod tests {
    use crate::stats::{ProducerStats, STATS_VERSION};
    use std::collections::BTreeMap;

    /// `T`'s flags from the command line `bench --brokers h:1 <extra>`.
    pub(crate) fn parse<T: clap::Args + clap::FromArgMatches>(extra: &[&str]) -> T {
        let cmd = T::augment_args(clap::Command::new("bench"));
        let argv = ["bench", "--brokers", "h:1"].iter().chain(extra);
        T::from_arg_matches(&cmd.try_get_matches_from(argv).unwrap()).unwrap()
    }

    /// A producer's stats: `n` events from id `first`, their id checksum,
    /// acknowledged over `wall` seconds.
    pub(crate) fn producer_stats(first: u64, n: u64, wall: f64) -> ProducerStats {
        let sum: proto::IdChecksum = (first..first + n).collect();
        ProducerStats {
            version: STATS_VERSION,
            mode: common::stats::ProducerMode::Events,
            brokers: "b".into(),
            topic: "t".into(),
            events_requested: n,
            events_sent: n,
            events_acknowledged: n,
            events_failed: 0,
            amount_minor_sum: 0,
            id_checksum: sum.hex(),
            first_event_id: first,
            last_event_id: first + n - 1,
            seed: 42,
            accounts: 10,
            rate_limit: 0,
            wall_seconds: wall,
            events_per_second: n as f64 / wall,
            cpu_seconds: 0.5,
            max_rss_bytes: 1,
            interrupted: false,
            settings: BTreeMap::new(),
            errors: Vec::new(),
        }
    }
}
