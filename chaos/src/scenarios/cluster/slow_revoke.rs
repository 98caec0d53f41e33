//! slow-revoke: a rebalance while another process holds the write lock past
//! `max.poll.interval.ms`; the member gives its open batch up in time.

use super::*;

pub fn slow_revoke(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::SlowRevoke;
    let (dir, cluster, _) = start_cluster(cfg, sc)?;
    producing_on(cfg, sc, dir, &cluster, live_rate(cfg, 40), |s, m| {
        slow_revoke_one(cfg, m, s)
    })
}

/// The group waits this long for a member (the consumers' flag here).
const MAX_POLL: [&str; 2] = ["-X", "max.poll.interval.ms=10000"];

/// How long the other process holds the lock: past `MAX_POLL`.
const LOCK_HELD: Duration = Duration::from_secs(15);

fn slow_revoke_one(cfg: &Config, model: Model, s: &Producing<'_>) -> Result<Outcome> {
    let (brokers, topic, dir, expected) =
        (s.brokers.as_str(), s.topic.as_str(), &s.dir, &s.expected);
    let background = s.background;
    let sc = Scenario::SlowRevoke;
    let group = testkit::kafka::unique(&format!("chaos-slow-revoke-{}", model.name()));
    let instance = |name: &str| -> Result<ConsumerCmd> {
        let d = sub(dir, &format!("{}-{name}", model.name()))?;
        let mut cmd = consumer(cfg, sc, model, brokers, topic, &d);
        cmd.group = group.clone();
        cmd.idle_secs = Some(IDLE_SECS);
        // No node dies here: the tests' 6 s session timeout, which
        // librdkafka requires to be at most max.poll.interval.ms.
        cmd.extra.extend(MAX_POLL.map(String::from));
        cmd.extra.push("--scale-out".into());
        Ok(cmd)
    };
    let (cmd_a, cmd_b) = (instance("a")?, instance("b")?);
    let mut problems = Vec::new();
    let mut a = cmd_a.spawn(&cfg.bins, 0, &[])?;
    wait_until(GENEROUS, "the first instance's first commit", || {
        committed_messages(&cmd_a.db) > 0 || a.try_status().is_some()
    })?;
    // Another process takes the write lock, then a second member joins:
    // the first must hand partitions over while its batch cannot commit.
    let locker = rusqlite::Connection::open(&cmd_a.db)?;
    locker.execute_batch("BEGIN IMMEDIATE")?;
    let locked = std::time::Instant::now();
    let mut b = cmd_b.spawn(&cfg.bins, 0, &[])?;
    // The first instance must stop while the lock is still held.
    let mut stopped = None;
    while locked.elapsed() < LOCK_HELD {
        if let Some(s) = a.try_status() {
            stopped = Some(s);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let gave_up_after = locked.elapsed();
    thread::sleep(LOCK_HELD.saturating_sub(locked.elapsed()));
    locker.execute_batch("COMMIT")?;
    drop(locker);
    let status = match stopped {
        Some(s) => s,
        None => {
            problems.push(format!(
                "the first instance still ran when the lock was released after {LOCK_HELD:?}"
            ));
            a.wait(Duration::from_secs(60))?
        }
    };
    let log = a.log_text();
    check(&mut problems, !status.success(), || {
        format!("the first instance exited {status} while its database was locked")
    });
    check(
        &mut problems,
        log.contains("given up") || log.contains("abandoned"),
        || {
            format!(
                "the first instance did not say it gave the batch up: {}",
                a.log_tail(5)
            )
        },
    );
    check(
        &mut problems,
        !log.contains("maximum poll interval"),
        || "the group evicted the first instance (max.poll.interval.ms exceeded)".into(),
    );
    // Restarted, it resumes from its database and the group's offsets.
    let mut a = cmd_a.spawn(&cfg.bins, 1, &[])?;
    background.finished()?;
    let _: ConsumerStats = a.wait_success()?;
    let _: ConsumerStats = b.wait_success()?;

    let dbs = vec![cmd_a.db.clone(), cmd_b.db.clone()];
    let ledger = ledger::Ledger::open(&dbs)?;
    let summary = ledger.summary()?;
    let lost = in_no_database(&dbs, expected)?;
    check(&mut problems, lost == 0, || {
        format!("{lost} events in no database")
    });
    check(&mut problems, summary.stored_twice == 0, || {
        format!("{} events stored in both databases", summary.stored_twice)
    });
    check(
        &mut problems,
        summary.amount_minor_sum == expected.amount_minor_sum
            && summary.distinct_events == expected.ids.len() as u64,
        || "the databases as one do not hold exactly the produced events".into(),
    );
    let wrong = wrong_balances(&ledger, expected)?;
    check(&mut problems, wrong == 0, || {
        format!("{wrong} balances wrong")
    });
    let figures = format!(
        "events {} lost {lost} stored_twice {} wrong_balances {wrong} gave_up_after_s {:.1} lock_s {}",
        summary.distinct_events,
        summary.stored_twice,
        gave_up_after.as_secs_f64(),
        LOCK_HELD.as_secs()
    );
    Ok(Outcome::new(sc, model.name(), figures, problems))
}
