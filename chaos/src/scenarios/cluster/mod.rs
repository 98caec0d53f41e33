//! The scenarios on a cluster of three Apache Kafka nodes
//! (chaos/README.md), one file each; this one holds what they share.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::{commit_timeline, committed_messages, latency_between, longest_pause_after};
use testkit::{Broker, Cluster, ConsumerCmd, ConsumerStats, Expected, Model, Proc, verify};

use super::{
    Background, Producing, check, consumer, each, exactness, expected, fresh_dir, producer,
    producing_on, sub, topic,
};
use crate::{Config, Outcome, Scenario};
use common::now_us;

mod leader_kill;
mod minority_loss;
mod rolling_restart;
mod scale_out;
mod slow_revoke;

pub use leader_kill::leader_kill;
pub use minority_loss::minority_loss;
pub use rolling_restart::rolling_restart;
pub use scale_out::scale_out;
pub use slow_revoke::slow_revoke;

const NODES: usize = 3;

/// How long a killed node stays down: longer than Kafka's broker session
/// timeout (9 s), so that its leaderships move to the other nodes.
const DOWN: Duration = Duration::from_secs(15);

const WINDOW: Duration = Duration::from_secs(60);

/// The group session timeout: well past the time the cluster takes to
/// notice a dead node (9 s, more on a loaded machine), while heartbeats go
/// unanswered; with 6 s or 15 s the consumers lost their assignment at
/// node deaths (docs/cluster.md).
const SESSION: [&str; 2] = ["-X", "session.timeout.ms=30000"];

/// `--exit-when-idle`: longer than the idempotent producer may take to
/// start on a cluster, so that no consumer leaves before the events flow.
const IDLE_SECS: u64 = 20;

/// A fresh directory, a cluster of its own in `<dir>/cluster`, and its
/// bootstrap list.
fn start_cluster(cfg: &Config, sc: Scenario) -> Result<(PathBuf, Cluster, String)> {
    let dir = fresh_dir(cfg, &sc.name())?;
    let cluster = Cluster::start_in_dir(&dir.join("cluster"), NODES)
        .context("start a three-node Apache Kafka")?;
    let brokers = cluster.bootstrap().to_string();
    Ok((dir, cluster, brokers))
}

/// The live rate, lower when there are too few events to last `secs`.
fn live_rate(cfg: &Config, secs: u64) -> u64 {
    cfg.live_rate.min(cfg.events / secs).max(1)
}

/// Starts one consumer per model, each in a group of its own, and waits
/// until each has its partitions.
fn start_consumers(
    cfg: &Config,
    sc: Scenario,
    brokers: &str,
    topic: &str,
    dir: &Path,
) -> Result<Vec<(ConsumerCmd, Proc)>> {
    let mut out = Vec::new();
    for &m in &cfg.consumers {
        let mut cmd = consumer(cfg, sc, m, brokers, topic, dir);
        cmd.idle_secs = Some(IDLE_SECS);
        cmd.extra.extend(SESSION.map(String::from));
        let p = cmd.spawn(&cfg.bins, 0, &[])?;
        out.push((cmd, p));
    }
    for (_, p) in &mut out {
        p.wait_for_log("assigned ", Duration::from_secs(120))?;
    }
    Ok(out)
}

/// What a fault did to one consumer's flow.
struct Effect {
    recovery_ms: Option<i64>,
    /// p50, p99 (ms) and count of the events created in the fault window.
    during: Option<(f64, f64, usize)>,
}

impl Effect {
    fn of(db: &Path, fault_us: i64, window_end_us: Option<i64>) -> Result<Effect> {
        let timeline = commit_timeline(db)?;
        let recovery_ms =
            longest_pause_after(&timeline, fault_us, WINDOW.as_micros() as i64).map(|us| us / 1000);
        let during = window_end_us
            .and_then(|end| latency_between(&timeline, fault_us, end))
            .map(|(p50, p99, n)| (p50 as f64 / 1000.0, p99 as f64 / 1000.0, n));
        Ok(Effect {
            recovery_ms,
            during,
        })
    }

    fn brief(&self) -> String {
        let mut s = match self.recovery_ms {
            Some(ms) => format!("recovery_ms {ms}"),
            None => "recovery_ms -".to_string(),
        };
        if let Some((p50, p99, n)) = self.during {
            s.push_str(&format!(
                " fault_window_events {n} p50_ms {p50:.1} p99_ms {p99:.1}"
            ));
        }
        s
    }
}

/// The end of a fault at `fault_us`: waits for each consumer to exit 0
/// and gives its outcome (database and stats checked, a failed producer a
/// problem; `what` happened and the fault's [`Effect`] the figures).
fn finish_consumers(
    sc: Scenario,
    consumers: Vec<(ConsumerCmd, Proc)>,
    (expected, n): (&Expected, u64),
    produced: Result<()>,
    (part, what): (&str, &str),
    (fault_us, window_end_us): (i64, Option<i64>),
) -> Vec<Outcome> {
    let produced = produced.err().map(|e| format!("the producer: {e:#}"));
    let one = |cmd: ConsumerCmd, mut p: Proc| -> Result<Outcome> {
        let mut problems: Vec<String> = produced.iter().cloned().collect();
        let stats: ConsumerStats = p.wait_success()?;
        let f = verify(&cmd.db, expected, 0)?;
        exactness(&f, n, &mut problems);
        check(&mut problems, f.offsets_inconsistent == 0, || {
            format!("offsets and rows disagree: {}", f.brief())
        });
        check(&mut problems, stats.events_committed == n, || {
            format!("the stats say {} events, not {n}", stats.events_committed)
        });
        let effect = Effect::of(&cmd.db, fault_us, window_end_us)?.brief();
        let subject = format!("{}{part}", cmd.model.name());
        let figures = format!("events {n} {what} {effect}");
        Ok(Outcome::new(sc, &subject, figures, problems))
    };
    let outcomes = consumers.into_iter().map(|(cmd, p)| {
        let subject = format!("{}{part}", cmd.model.name());
        one(cmd, p).unwrap_or_else(|e| Outcome::error(sc, &subject, &e))
    });
    outcomes.collect()
}

/// How many expected events none of `dbs` holds.
fn in_no_database(dbs: &[PathBuf], expected: &Expected) -> Result<usize> {
    let mut union = std::collections::HashSet::new();
    for db in dbs {
        union.extend(testkit::verify::stored_ids(db)?);
    }
    Ok(expected.ids.iter().filter(|id| !union.contains(id)).count())
}

/// Balances of the databases as one that differ, are missing or extra.
fn wrong_balances(ledger: &ledger::Ledger, expected: &Expected) -> Result<u64> {
    let mut wrong = 0u64;
    let mut seen = 0usize;
    for b in ledger.balances()? {
        match expected.balances.get(&(b.account_id, b.currency.clone())) {
            Some(&(amount, count)) if amount == b.balance_minor && count == b.event_count => {
                seen += 1
            }
            _ => wrong += 1,
        }
    }
    Ok(wrong + (expected.balances.len() - seen) as u64)
}
