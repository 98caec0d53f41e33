//! Scenarios on a cluster of three Apache Kafka nodes (issue 16): topics
//! with three replicas and `min.insync.replicas=2`, the producer with
//! `acks=all` and idempotence. Each starts a cluster of its own under
//! `--out/<scenario>/cluster`.
//!
//! - **leader-kill**: `kill -9` of the node leading the most partitions,
//!   once while the consumers drain a backlog and once during live
//!   production; the node is restarted 15 s later (after Kafka's 9 s
//!   broker session timeout has moved its leaderships).
//! - **rolling-restart**: each node stopped (controlled shutdown) and
//!   restarted in turn during live production.
//! - **scale-out**: three instances of each consumer in a group, each with
//!   its own database and `--instance-id`; one is killed and restarted
//!   within the session timeout, another killed for good, a fourth joins.
//!   The databases read as one ([`ledger`]) hold every event; the events
//!   stored twice are counted and bounded.
//! - **minority-loss**: two of the three nodes down: the producer fails
//!   within its `--timeout` saying why, and nothing it had acknowledged is
//!   missing; with the nodes back, a new run completes.
//! - **slow-revoke**: a rebalance while another process holds the
//!   database's write lock longer than `max.poll.interval.ms`: the member
//!   gives its open batch up in time and stops, nothing lost or doubled.
//!
//! Every database is checked against the independently computed totals
//! (count, ids, amount sum, checksum, every balance). The figures give the
//! longest pause of any partition's commits after the fault ("recovery")
//! and the latency percentiles of the events created during the fault.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::{commit_timeline, committed_messages, latency_between, longest_pause_after};
use testkit::{Broker, Cluster, ConsumerCmd, ConsumerStats, Expected, Model, Proc, verify};

use super::{Background, check, consumer, exactness, expected, fresh_dir, producer, topic};
use crate::{Config, Outcome, Scenario};

/// Nodes of the cluster.
const NODES: usize = 3;
/// How long a killed node stays down: longer than Kafka's broker session
/// timeout (9 s), so that its leaderships move to the other nodes.
const DOWN: Duration = Duration::from_secs(15);
/// How long after a fault its effects are looked for.
const WINDOW: Duration = Duration::from_secs(60);
/// The consumers' group session timeout here: well past the time the
/// cluster takes to notice a dead node (Kafka's `broker.session.timeout.ms`,
/// 9 s, more on a loaded machine), during which the group coordinator's
/// writes to its replicated offsets topic wait for the dead replica (or
/// the coordinator itself is the dead node), and heartbeats go unanswered.
/// With the tests' usual 6 s the consumers lost their assignment at every
/// node death and rejoined (20 s pauses measured); with 15 s they still
/// did when the machine was overloaded (load 19 on 2 cores). The librdkafka
/// default is 45 s.
const SESSION: [&str; 2] = ["-X", "session.timeout.ms=30000"];
/// `--exit-when-idle` here: longer than the cluster's idempotent producer
/// may take to start (its producer id waits for the transaction
/// coordinator), so that no consumer leaves before the events flow.
const IDLE_SECS: u64 = 20;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn start_cluster(dir: &Path) -> Result<Cluster> {
    Cluster::start_in_dir(&dir.join("cluster"), NODES).context("start a three-node Apache Kafka")
}

/// Events per second of a live part lasting at least `secs` seconds: the
/// configured live rate, lower when there are too few events for that.
fn live_rate(cfg: &Config, secs: u64) -> u64 {
    cfg.live_rate.min(cfg.events / secs).max(1)
}

/// A subdirectory of `dir`.
fn sub(dir: &Path, name: &str) -> Result<PathBuf> {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    Ok(d)
}

/// Starts one consumer per configured model on `topic`, each in a group of
/// its own, and waits until each has its partitions.
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

/// What a fault did to one consumer's flow, from its database.
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

/// Waits for each consumer to exit 0 and checks its database: exact, and
/// its stats agree.
fn finish_consumers(
    consumers: Vec<(ConsumerCmd, Proc)>,
    expected: &Expected,
    n: u64,
) -> Vec<(Model, PathBuf, Result<Vec<String>>)> {
    consumers
        .into_iter()
        .map(|(cmd, mut p)| {
            let result = (|| {
                let mut problems = Vec::new();
                let stats: ConsumerStats = p.wait_success()?;
                let f = verify(&cmd.db, expected, 0)?;
                exactness(&f, n, &mut problems);
                check(&mut problems, f.offsets_inconsistent == 0, || {
                    format!("offsets and rows disagree: {}", f.brief())
                });
                check(&mut problems, stats.events_committed == n, || {
                    format!("the stats say {} events, not {n}", stats.events_committed)
                });
                Ok(problems)
            })();
            (cmd.model, cmd.db.clone(), result)
        })
        .collect()
}

/// kill -9 of the busiest leader during a backlog drain, then during live
/// production.
pub fn leader_kill(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::LeaderKill;
    let dir = fresh_dir(cfg, sc.name())?;
    let mut cluster = start_cluster(&dir)?;
    let brokers = cluster.bootstrap().to_string();
    let expected = expected(cfg);
    let n = cfg.events;
    let mut outcomes = Vec::new();

    // 1. The backlog: every event acknowledged before the consumers start.
    let backlog = sub(&dir, "backlog")?;
    let topic_b = topic(cfg, &cluster, "leader-kill-backlog")?;
    producer(cfg, &brokers, &topic_b).run(&cfg.bins, &backlog, "producer")?;
    let mut consumers = start_consumers(cfg, sc, &brokers, &topic_b, &backlog)?;
    // A third of the way in (at the first commit for small runs, which
    // drain in a moment).
    let at = if n >= 200_000 { n / 3 } else { 1 };
    wait_until(GENEROUS, "the consumers' progress before the kill", || {
        consumers
            .iter_mut()
            .all(|(c, p)| committed_messages(&c.db) >= at || p.try_status().is_some())
    })?;
    let (node, led) = cluster.busiest_leader(&topic_b)?;
    let fault_us = now_us();
    cluster.kill(node)?;
    thread::sleep(DOWN);
    cluster.restart(node)?;
    for (model, db, result) in finish_consumers(consumers, &expected, n) {
        let effect = Effect::of(&db, fault_us, None);
        outcomes.push(outcome(sc, model, "backlog", node, led, result, effect, n));
    }
    cluster.wait_in_sync(&topic_b, Duration::from_secs(120))?;

    // 2. Live: the consumers keep up with the producer when the node dies.
    let live = sub(&dir, "live")?;
    let topic_l = topic(cfg, &cluster, "leader-kill-live")?;
    let consumers = start_consumers(cfg, sc, &brokers, &topic_l, &live)?;
    let mut produce = producer(cfg, &brokers, &topic_l);
    produce.rate = live_rate(cfg, 40);
    let mut p = produce.spawn(&cfg.bins, &live, "producer")?;
    let quarter = Duration::from_secs_f64(n as f64 / produce.rate as f64 / 4.0);
    thread::sleep(quarter);
    let (node, led) = cluster.busiest_leader(&topic_l)?;
    let fault_us = now_us();
    cluster.kill(node)?;
    thread::sleep(DOWN);
    cluster.restart(node)?;
    let back_us = now_us();
    let produced = produce.finish(&mut p);
    for (model, db, mut result) in finish_consumers(consumers, &expected, n) {
        if let (Ok(problems), Err(e)) = (&mut result, &produced) {
            problems.push(format!("the producer: {e:#}"));
        }
        let effect = Effect::of(&db, fault_us, Some(back_us + 10_000_000));
        outcomes.push(outcome(sc, model, "live", node, led, result, effect, n));
    }
    Ok(outcomes)
}

#[allow(clippy::too_many_arguments)]
fn outcome(
    sc: Scenario,
    model: Model,
    part: &str,
    node: u32,
    led: usize,
    result: Result<Vec<String>>,
    effect: Result<Effect>,
    n: u64,
) -> Outcome {
    let subject = format!("{} {part}", model.name());
    match (result, effect) {
        (Ok(problems), Ok(effect)) => Outcome::new(
            sc,
            &subject,
            format!(
                "events {n} killed node {node} (leader of {led}) {}",
                effect.brief()
            ),
            problems,
        ),
        (Err(e), _) | (_, Err(e)) => Outcome::error(sc, &subject, &e),
    }
}

/// Each node stopped and restarted in turn during live production.
pub fn rolling_restart(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::RollingRestart;
    let dir = fresh_dir(cfg, sc.name())?;
    let mut cluster = start_cluster(&dir)?;
    let brokers = cluster.bootstrap().to_string();
    let expected = expected(cfg);
    let n = cfg.events;
    let topic = topic(cfg, &cluster, "rolling-restart")?;
    let consumers = start_consumers(cfg, sc, &brokers, &topic, &dir)?;
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = live_rate(cfg, 60);
    let mut p = produce.spawn(&cfg.bins, &dir, "producer")?;
    thread::sleep(Duration::from_secs(3));
    let start_us = now_us();
    for node in 1..=NODES as u32 {
        cluster.stop(node)?;
        thread::sleep(Duration::from_secs(3));
        cluster.restart(node)?;
        cluster.wait_in_sync(&topic, Duration::from_secs(120))?;
    }
    let end_us = now_us();
    let produced = produce.finish(&mut p);
    let mut outcomes = Vec::new();
    for (model, db, mut result) in finish_consumers(consumers, &expected, n) {
        if let (Ok(problems), Err(e)) = (&mut result, &produced) {
            problems.push(format!("the producer: {e:#}"));
        }
        let subject = model.name();
        match (result, Effect::of(&db, start_us, Some(end_us))) {
            (Ok(problems), Ok(effect)) => outcomes.push(Outcome::new(
                sc,
                subject,
                format!(
                    "events {n} nodes restarted {NODES} in {:.0} s {}",
                    (end_us - start_us) as f64 / 1e6,
                    effect.brief()
                ),
                problems,
            )),
            (Err(e), _) | (_, Err(e)) => outcomes.push(Outcome::error(sc, subject, &e)),
        }
    }
    Ok(outcomes)
}

/// Two of three nodes down: the producer fails within its timeout, saying
/// why; nothing acknowledged is missing; with the nodes back a new run
/// completes.
pub fn minority_loss(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::MinorityLoss;
    let dir = fresh_dir(cfg, sc.name())?;
    let mut cluster = start_cluster(&dir)?;
    let brokers = cluster.bootstrap().to_string();
    let topic = topic(cfg, &cluster, "minority-loss")?;
    let mut problems = Vec::new();

    // A first run with two nodes down.
    let first = cfg.events.min(10_000);
    cluster.kill(2)?;
    cluster.kill(3)?;
    let mut stalled = producer(cfg, &brokers, &topic);
    stalled.count = first;
    stalled.timeout_secs = 20;
    let started = std::time::Instant::now();
    let mut p = stalled.spawn(&cfg.bins, &dir, "producer-stalled")?;
    let status = p.wait(Duration::from_secs(120))?;
    let took = started.elapsed();
    let text = p.log_text();
    check(&mut problems, !status.success(), || {
        "the producer succeeded with two of three nodes down".into()
    });
    check(
        &mut problems,
        took < Duration::from_secs(stalled.timeout_secs + 30),
        || format!("the producer took {took:?} to give up (--timeout 20)"),
    );
    let named = [
        "NOT_ENOUGH_REPLICAS",
        "NotEnoughReplicas",
        "timed out",
        "Timed out",
    ]
    .iter()
    .any(|w| text.contains(w));
    check(&mut problems, named, || {
        format!(
            "the producer's error names neither NOT_ENOUGH_REPLICAS nor a timeout: {}",
            p.log_tail(3)
        )
    });
    let stalled_stats: Option<testkit::ProducerStats> = p.read_stats().ok();
    let acked = stalled_stats.as_ref().map_or(0, |s| s.events_acknowledged);

    // The nodes come back; a second run completes.
    cluster.restart(2)?;
    cluster.restart(3)?;
    cluster.wait_in_sync(&topic, Duration::from_secs(120))?;
    let mut second = producer(cfg, &brokers, &topic);
    second.first_id = first + 1;
    second.count = first;
    let second_ok = second.run(&cfg.bins, &dir, "producer-second");
    if let Err(e) = &second_ok {
        problems.push(format!("the run after the nodes came back: {e:#}"));
    }

    // Each consumer reads the topic: every event of the second run, at
    // least the acknowledged ones of the first, nothing twice.
    let runs = Expected::of_runs(cfg.seed, cfg.accounts, &[(1, first), (first + 1, first)]);
    let mut figures = Vec::new();
    for (cmd, mut c) in start_consumers(cfg, sc, &brokers, &topic, &dir)? {
        let stats: ConsumerStats = c.wait_success()?;
        let f = verify(&cmd.db, &runs, 0)?;
        let ids = testkit::verify::stored_ids(&cmd.db)?;
        let of_first = ids.iter().filter(|&&id| id <= first).count() as u64;
        let of_second = ids.iter().filter(|&&id| id > first).count() as u64;
        let name = cmd.model.name();
        check(
            &mut problems,
            f.duplicated == 0 && f.unexpected == 0,
            || format!("{name}: {}", f.brief()),
        );
        check(&mut problems, of_second == first, || {
            format!("{name}: {of_second} events of the second run stored, not {first}")
        });
        check(&mut problems, of_first >= acked, || {
            format!(
                "{name}: {of_first} events of the first run stored, fewer than the {acked} acknowledged"
            )
        });
        figures.push(format!(
            "{name} stored {} (first run {of_first}, second {of_second})",
            stats.events_committed
        ));
    }
    Ok(vec![Outcome::new(
        sc,
        "all",
        format!(
            "first run {first} events: acknowledged {acked}, gave up after {:.0} s; second run {}; {}",
            took.as_secs_f64(),
            if second_ok.is_ok() {
                "complete"
            } else {
                "FAILED"
            },
            figures.join(", ")
        ),
        problems,
    )])
}

/// Three instances of each consumer in a group, each with its own database
/// and instance id: one killed and restarted within the session timeout,
/// one killed for good, a fourth joining; the databases as one hold every
/// event, and the events stored twice stay within the bound.
pub fn scale_out(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::ScaleOut;
    let dir = fresh_dir(cfg, sc.name())?;
    let cluster = start_cluster(&dir)?;
    let brokers = cluster.bootstrap().to_string();
    let topic = topic(cfg, &cluster, "scale-out")?;
    let expected = expected(cfg);
    let n = cfg.events;
    let rate = live_rate(cfg, 40);
    let secs = n / rate;

    // Every model's first three instances, each with its database, before
    // the events flow.
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = rate;
    let mut groups = Vec::new();
    for &m in &cfg.consumers {
        let group = testkit::kafka::unique(&format!("chaos-scale-out-{}", m.name()));
        let cmds: Vec<ConsumerCmd> = (1..=4)
            .map(|i| -> Result<ConsumerCmd> {
                let d = sub(&dir, &format!("{}-{i}", m.name()))?;
                let mut cmd = consumer(cfg, sc, m, &brokers, &topic, &d);
                cmd.group = group.clone();
                cmd.idle_secs = Some(IDLE_SECS);
                cmd.extra.extend(SESSION.map(String::from));
                cmd.extra
                    .extend(["--instance-id".to_string(), format!("{}-{i}", m.name())]);
                Ok(cmd)
            })
            .collect::<Result<_>>()?;
        let mut procs = Vec::new();
        for cmd in &cmds[..3] {
            procs.push(cmd.spawn(&cfg.bins, 0, &[])?);
        }
        groups.push((m, cmds, procs));
    }
    for (_, _, procs) in &mut groups {
        for p in procs {
            p.wait_for_log("assigned ", Duration::from_secs(120))?;
        }
    }
    let background = Background::start(cfg, produce, &dir)?;

    let outcomes = thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|(m, cmds, procs)| {
                let background = &background;
                let expected = &expected;
                (
                    m,
                    s.spawn(move || scale_out_one(cfg, &cmds, procs, secs, background, expected)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(m, h)| match h.join() {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => Outcome::error(sc, m.name(), &e),
                Err(_) => Outcome::error(sc, m.name(), &anyhow::anyhow!("the thread panicked")),
            })
            .collect()
    });
    background.finished()?;
    Ok(outcomes)
}

fn scale_out_one(
    cfg: &Config,
    cmds: &[ConsumerCmd],
    mut procs: Vec<Proc>,
    secs: u64,
    background: &Background,
    expected: &Expected,
) -> Result<Outcome> {
    let sc = Scenario::ScaleOut;
    let model = cmds[0].model;
    let step = Duration::from_secs((secs / 4).max(2));
    let mut problems = Vec::new();
    wait_until(GENEROUS, "the first events stored", || {
        cmds[..3].iter().any(|c| committed_messages(&c.db) > 0)
    })?;
    // Instance 1: kill -9, back within the session timeout (30 s here).
    thread::sleep(step);
    procs[0].kill9();
    thread::sleep(Duration::from_secs(1));
    procs[0] = cmds[0].spawn(&cfg.bins, 1, &[])?;
    // Instance 2: kill -9 for good; its partitions move once its session
    // times out, from the group's offsets.
    thread::sleep(step);
    procs[1].kill9();
    // Instance 4 joins.
    thread::sleep(step);
    procs.push(cmds[3].spawn(&cfg.bins, 0, &[])?);
    background.finished()?;
    for (i, p) in procs.iter_mut().enumerate() {
        if i == 1 {
            continue;
        }
        let _: ConsumerStats = p.wait_success()?;
    }
    check(&mut problems, procs[0].log_text().contains("(db)"), || {
        "the restarted instance did not resume from its own database".into()
    });

    let dbs: Vec<PathBuf> = cmds
        .iter()
        .map(|c| c.db.clone())
        .filter(|d| d.exists())
        .collect();
    let ledger = ledger::Ledger::open(&dbs)?;
    let summary = ledger.summary()?;
    let lost = in_no_database(&dbs, expected)?;
    for db in &dbs {
        let f = verify(db, expected, 0)?;
        check(
            &mut problems,
            f.duplicated == 0 && f.unexpected == 0,
            || format!("{}: {}", db.display(), f.brief()),
        );
    }
    check(&mut problems, lost == 0, || {
        format!("{lost} events in no database")
    });
    check(
        &mut problems,
        summary.distinct_events == expected.ids.len() as u64,
        || {
            format!(
                "{} distinct events in the databases, not {}",
                summary.distinct_events,
                expected.ids.len()
            )
        },
    );
    check(
        &mut problems,
        summary.amount_minor_sum == expected.amount_minor_sum,
        || "the amount sum of the distinct events is wrong".into(),
    );
    let wrong = wrong_balances(&ledger, expected)?;
    check(&mut problems, wrong == 0, || {
        format!("{wrong} balances of the databases read as one are wrong")
    });
    // Every hand-over names a database among these: the union is the
    // group's whole history.
    let missing = ledger.missing_hand_overs()?;
    check(&mut problems, missing.is_empty(), || {
        format!("hand-overs from databases not among the group's: {missing:?}")
    });

    // The bound: only the instance killed for good hands its partitions
    // over without committing to Kafka first, and what it had stored but
    // not yet committed to Kafka is what it stored during one offset
    // commit's round trip (one request in flight at a time, see
    // consumer-core's `commit_async`): checked here as at most what it
    // stored in its last second.
    let dead = &cmds[1].db;
    let twice = ledger.twice_stored(None)?;
    let dead_ids = testkit::verify::stored_ids(dead)?;
    let outside = twice
        .iter()
        .filter(|(id, _)| !dead_ids.contains(id))
        .count();
    check(&mut problems, outside == 0, || {
        format!("{outside} events stored twice are not the dead instance's")
    });
    let bound = stored_in_last(dead, Duration::from_secs(1))?;
    check(&mut problems, summary.extra_copies <= bound, || {
        format!(
            "{} extra copies across the databases, more than the dead instance stored in its last second ({bound})",
            summary.extra_copies
        )
    });
    Ok(Outcome::new(
        sc,
        model.name(),
        format!(
            "instances 4 events {} distinct {} lost {lost} stored_twice {} (bound {bound}) wrong_balances {wrong}",
            summary.rows, summary.distinct_events, summary.stored_twice
        ),
        problems,
    ))
}

/// Events a database stored in the last `span` before its last commit.
fn stored_in_last(db: &Path, span: Duration) -> Result<u64> {
    let timeline = commit_timeline(db)?;
    let Some(last) = timeline.iter().map(|&(_, _, c)| c).max() else {
        return Ok(0);
    };
    let from = last - span.as_micros() as i64;
    Ok(timeline.iter().filter(|&&(_, _, c)| c >= from).count() as u64)
}

/// A rebalance while another process holds the database's write lock for
/// longer than the group's `max.poll.interval.ms` (10 s here): the member
/// revoking partitions waits at most half of it for its open batch, then
/// gives the batch up (nothing written) and stops, before the group would
/// evict it; the next owner reads those events; after a restart the
/// databases as one hold every event once.
pub fn slow_revoke(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::SlowRevoke;
    let dir = fresh_dir(cfg, sc.name())?;
    let cluster = start_cluster(&dir)?;
    let brokers = cluster.bootstrap().to_string();
    let topic = topic(cfg, &cluster, "slow-revoke")?;
    let expected = expected(cfg);
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = live_rate(cfg, 40);
    let background = Background::start(cfg, produce, &dir)?;
    Ok(super::per_consumer(cfg, sc, |m| {
        slow_revoke_one(cfg, m, &brokers, &topic, &dir, &background, &expected)
    }))
}

/// The group waits this long for a member (the consumers' flag here).
const MAX_POLL: [&str; 2] = ["-X", "max.poll.interval.ms=10000"];
/// How long the other process holds the lock: past `MAX_POLL`.
const LOCK_HELD: Duration = Duration::from_secs(15);

fn slow_revoke_one(
    cfg: &Config,
    model: Model,
    brokers: &str,
    topic: &str,
    dir: &Path,
    background: &Background,
    expected: &Expected,
) -> Result<Outcome> {
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
    Ok(Outcome::new(
        sc,
        model.name(),
        format!(
            "events {} lost {lost} stored_twice {} wrong_balances {wrong} gave_up_after_s {:.1} lock_s {}",
            summary.distinct_events,
            summary.stored_twice,
            gave_up_after.as_secs_f64(),
            LOCK_HELD.as_secs()
        ),
        problems,
    ))
}

/// How many expected events none of `dbs` holds.
fn in_no_database(dbs: &[PathBuf], expected: &Expected) -> Result<usize> {
    let mut union = std::collections::HashSet::new();
    for db in dbs {
        union.extend(testkit::verify::stored_ids(db)?);
    }
    Ok(expected.ids.iter().filter(|id| !union.contains(id)).count())
}

/// Balances of the databases read as one that differ from the expected
/// ones (or are missing or extra).
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
