//! Two instances in one group, each with its own database (chaos/README.md,
//! `two-instances`).

use testkit::ConsumerStats;

use anyhow::Result;
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::{row_count, stored_ids};
use testkit::{Model, verify_all};

use super::{Producing, check, consumer, exactness, sub, while_producing};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::TwoInstances;

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    // About 12 s of production, so that the second instance joins, and the
    // group rebalances, while events are still arriving.
    while_producing(cfg, SC, 12, |s, m| one(cfg, m, s))
}

fn one(cfg: &Config, model: Model, s: &Producing<'_>) -> Result<Outcome> {
    let (brokers, topic, dir) = (s.brokers.as_str(), s.topic.as_str(), s.dir.as_path());
    let (expected, background) = (&s.expected, s.background);
    let n = cfg.events;
    let instance = |name: &str| -> Result<testkit::ConsumerCmd> {
        let own = sub(dir, &format!("{}-{name}", model.name()))?;
        let mut cmd = consumer(cfg, SC, model, brokers, topic, &own);
        // Idle longer than a rebalance takes: the newcomer holds no
        // partition between the two rounds of the cooperative protocol.
        cmd.idle_secs = Some(8);
        // One of several instances, each with its own database: the
        // partitions each gets from the other are hand-overs.
        cmd.extra.push("--scale-out".into());
        Ok(cmd)
    };
    let cmd_a = instance("a")?;
    let mut cmd_b = instance("b")?;
    cmd_b.group = cmd_a.group.clone();
    let (db_a, db_b) = (&cmd_a.db, &cmd_b.db);
    let mut problems = Vec::new();

    let mut a = cmd_a.spawn(&cfg.bins, 0, &[])?;
    wait_until(GENEROUS, "the first instance's first rows", || {
        row_count(db_a) > 0 || a.try_status().is_some()
    })?;
    let mut b = cmd_b.spawn(&cfg.bins, 0, &[])?;
    background.finished()?;
    wait_until(GENEROUS, "both instances to store everything", || {
        row_count(db_a) + row_count(db_b) >= n || b.try_status().is_some()
    })?;
    let nb = row_count(db_b);
    check(&mut problems, nb > 0, || {
        format!(
            "the second instance never got a partition: {}",
            b.log_tail(5)
        )
    });
    b.sigterm();
    let stats_b: ConsumerStats = b.wait_success()?;
    let reason = stats_b.exit_reason.name();
    check(&mut problems, reason == "signal", || {
        format!("the second instance's exit_reason {reason}, not signal")
    });
    let stats_a: ConsumerStats = a.wait_success()?;
    check(&mut problems, a.log_text().contains("(group)"), || {
        "the first instance did not resume any partition from the group's offsets".into()
    });

    let (na, nb) = (row_count(db_a), row_count(db_b));
    let f = verify_all(&[db_a, db_b], expected, 0)?;
    exactness(&f, n, &mut problems);
    for (name, stats, rows) in [("first", &stats_a, na), ("second", &stats_b, nb)] {
        let committed = stats.events_committed;
        check(&mut problems, committed == rows, || {
            format!("the {name} instance's stats say {committed} events, its database {rows}")
        });
    }
    let (ids_a, ids_b) = (stored_ids(db_a)?, stored_ids(db_b)?);
    let both = ids_a.intersection(&ids_b).count();
    check(&mut problems, both == 0, || {
        format!("{both} events are in both databases")
    });
    let figures = format!(
        "events {} first {na} second {nb} in_both {both} {}",
        f.events,
        f.brief()
    );
    Ok(Outcome::new(SC, model.name(), figures, problems))
}
