//! `sigterm` (chaos/README.md): batches larger than the topic and a flush
//! interval longer than the scenario, so the first run stores exactly its
//! open batch, committed on the way out.

use std::thread;
use std::time::{Duration, Instant};
use testkit::ConsumerStats;

use anyhow::Result;
use testkit::procs::GENEROUS;
use testkit::verify::{row_count, stored_offsets};
use testkit::{Model, group_offsets, verify};

use super::{Producing, check, consumer, exactness, while_producing};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::Sigterm;

/// The bound on the exit after SIGTERM.
pub(crate) const SIGTERM_BOUND: Duration = Duration::from_secs(5);

/// Docker's default time between SIGTERM and SIGKILL: the bound when the
/// database is locked by another process.
const DOCKER_GRACE: Duration = Duration::from_secs(10);

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    // About 10 s of production: the signal comes while events arrive.
    while_producing(cfg, SC, 10, |s, m| one(cfg, m, s))
}

fn one(cfg: &Config, model: Model, s: &Producing<'_>) -> Result<Outcome> {
    let (brokers, topic, expected) = (s.brokers.as_str(), s.topic.as_str(), &s.expected);
    let n = cfg.events;
    let cmd = consumer(cfg, SC, model, brokers, topic, &s.dir);
    let db = &cmd.db;
    let mut problems = Vec::new();
    let mut unbatched = cmd.clone();
    unbatched.extra = ["--batch-size", "1000000", "--flush-interval-ms", "600000"]
        .map(String::from)
        .to_vec();
    let start_unbatched = |n: u32| -> Result<testkit::Proc> {
        let mut p = unbatched.spawn(&cfg.bins, n, &[])?;
        p.wait_for_log("assigned ", GENEROUS)?;
        thread::sleep(Duration::from_secs(1));
        Ok(p)
    };
    let mut first = start_unbatched(0)?;
    let early = row_count(db);
    check(&mut problems, early == 0, || {
        format!("{early} events committed before the signal")
    });
    let signalled = Instant::now();
    first.sigterm();
    let status = first.wait(Duration::from_secs(60))?;
    let took = signalled.elapsed();
    check(&mut problems, status.success(), || {
        format!("exit status after SIGTERM: {status}: {}", first.log_tail(5))
    });
    check(&mut problems, took <= SIGTERM_BOUND, || {
        format!("took {took:?} to exit after SIGTERM")
    });
    let stats: ConsumerStats = first.read_stats()?;
    let reason = stats.exit_reason.name();
    check(&mut problems, reason == "signal", || {
        format!("exit_reason {reason}, not signal")
    });
    let at_signal = row_count(db);
    check(&mut problems, at_signal > 0, || {
        "the open batch was not committed on SIGTERM".into()
    });
    check(&mut problems, at_signal < n, || {
        "the signal came after everything was produced".into()
    });
    let committed = stats.events_committed;
    let batches = stats.batches;
    check(
        &mut problems,
        committed == at_signal && batches == 1,
        || format!("stats: {committed} events in {batches} batches, {at_signal} rows stored"),
    );
    let partial = verify(db, expected, 0)?;
    check(
        &mut problems,
        partial.offsets_inconsistent == 0 && partial.duplicated == 0,
        || format!("after the signal: {}", partial.brief()),
    );
    // Kafka got the same offsets before the consumer left the group.
    let stored = stored_offsets(db)?;
    let in_kafka = group_offsets(brokers, &cmd.group, topic, cfg.partitions)?;
    check(&mut problems, in_kafka == stored, || {
        format!("Kafka's offsets {in_kafka:?} differ from the database's {stored:?}")
    });

    // SIGTERM while another process holds the database's write lock: the
    // open batch cannot commit, and the consumer must still be gone within
    // Docker's 10 s grace, having written nothing (the batch is read again
    // at the next start).
    let mut locked = start_unbatched(1)?;
    let lock = rusqlite::Connection::open(db)?;
    lock.execute_batch("BEGIN IMMEDIATE")?;
    let signalled = Instant::now();
    locked.sigterm();
    let locked_status = locked.wait(Duration::from_secs(60));
    let locked_took = signalled.elapsed();
    lock.execute_batch("COMMIT")?;
    drop(lock);
    locked_status?;
    check(&mut problems, locked_took <= DOCKER_GRACE, || {
        format!(
            "took {locked_took:?} to exit after SIGTERM with the database locked: {}",
            locked.log_tail(5)
        )
    });
    let after_locked = row_count(db);
    check(&mut problems, after_locked == at_signal, || {
        format!(
            "{after_locked} rows after the locked SIGTERM, not {at_signal}: something was written"
        )
    });

    s.background.finished()?;
    let stats: ConsumerStats = cmd.spawn(&cfg.bins, 2, &[])?.wait_success()?;
    let f = verify(db, expected, 0)?;
    exactness(&f, n, &mut problems);
    let second = stats.events_committed;
    check(&mut problems, second == n - at_signal.min(n), || {
        format!(
            "the restart stored {second} events, not the {} left",
            n - at_signal.min(n)
        )
    });
    let figures = format!(
        "events {} at_signal {at_signal} exit_after_sigterm_s {:.2} locked_exit_s {:.2} kafka_offsets_match {} {}",
        f.events,
        took.as_secs_f64(),
        locked_took.as_secs_f64(),
        in_kafka == stored,
        f.brief()
    );
    Ok(Outcome::new(SC, model.name(), figures, problems))
}
