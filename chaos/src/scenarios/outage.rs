//! Item 2: the broker unreachable for `--outage-secs` in the middle of a
//! run. The producer sends at a rate that spreads the events over about
//! three outages' time, the consumers read as it goes, and a third of the
//! way in the broker is taken down (librdkafka's mock cluster: connections
//! closed and refused) and brought back after the outage. The producer must
//! get every event acknowledged (its `--timeout`, librdkafka's
//! message.timeout.ms, outlasts the outage), nobody may crash, both sides
//! must log what they wait for, and the databases must end exact.

use std::ffi::OsString;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Spawn, exactness, expected, fresh_dir, secret_leaks};
use crate::broker::Mock;
use crate::procs::Proc;
use crate::verify::{committed_messages, verify};
use crate::{Config, Outcome, Scenario, TOPIC};

/// Runs the scenario, both consumers at once.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "outage")?;
    let broker = Mock::start()?;
    broker.topic(TOPIC, cfg.partitions, cfg.events)?;
    let outage = Duration::from_secs(cfg.outage_secs);
    let rate = (cfg.events / (cfg.outage_secs * 3)).max(1_000);
    let idle = cfg.outage_secs + 15;

    let mut consumers = Vec::new();
    for &c in &cfg.consumers {
        let spawn = Spawn {
            cfg,
            consumer: c,
            brokers: &broker.bootstrap,
            topic: TOPIC,
            dir: &dir,
            idle_secs: idle,
            db_dir: None,
        };
        let p = spawn.run(0, &[])?;
        consumers.push((c, spawn.db(), p));
    }
    let stats = dir.join("producer.json");
    let args: Vec<OsString> = [
        "--brokers",
        &broker.bootstrap,
        "--topic",
        TOPIC,
        "--count",
        &cfg.events.to_string(),
        "--seed",
        &cfg.seed.to_string(),
        "--accounts",
        &cfg.accounts.to_string(),
        "--rate",
        &rate.to_string(),
        "--timeout",
        &(cfg.outage_secs * 3 + 60).to_string(),
        "--stats-json",
    ]
    .iter()
    .map(OsString::from)
    .chain([stats.clone().into_os_string()])
    .collect();
    let mut producer = Proc::spawn(
        &cfg.bin_dir.join("producer"),
        &args,
        &dir.join("producer.log"),
        None,
        "producer",
    )?;

    // A third of the way into production, or once something is stored.
    let into = Duration::from_secs(cfg.outage_secs);
    let started = Instant::now();
    while started.elapsed() < into {
        if producer.try_status().is_some() {
            bail!(
                "the producer exited before the outage: {}",
                producer.log_tail(5)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let before: Vec<usize> = consumers
        .iter()
        .map(|(_, _, p)| p.log_text().lines().count())
        .collect();
    let producer_lines_before = producer.log_text().lines().count();
    let at_down: Vec<u64> = consumers
        .iter()
        .map(|(_, db, _)| committed_messages(db))
        .collect();
    broker.down()?;
    let down_at = Instant::now();
    thread::sleep(outage);
    let alive: Vec<bool> = consumers
        .iter_mut()
        .map(|(_, _, p)| p.try_status().is_none())
        .collect();
    let producer_alive = producer.try_status().is_none();
    let during: Vec<usize> = consumers
        .iter()
        .zip(&before)
        .map(|((_, _, p), b)| p.log_text().lines().count().saturating_sub(*b))
        .collect();
    let producer_lines = producer
        .log_text()
        .lines()
        .count()
        .saturating_sub(producer_lines_before);
    broker.up()?;
    let down_for = down_at.elapsed();

    let mut outcomes = Vec::new();
    let pstatus = producer.wait(Duration::from_secs(3600))?;
    let mut pproblems = Vec::new();
    if !producer_alive {
        pproblems.push(format!(
            "exited during the outage: {}",
            producer.log_tail(3)
        ));
    }
    if !pstatus.success() {
        pproblems.push(format!("exited with {pstatus}: {}", producer.log_tail(5)));
    }
    if producer_lines == 0 {
        pproblems.push("logged nothing during the outage".into());
    }
    let acked = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["events_acknowledged"].as_u64())
        .unwrap_or(0);
    if acked != cfg.events {
        pproblems.push(format!("{acked} of {} events acknowledged", cfg.events));
    }
    outcomes.push(Outcome::new(
        Scenario::Outage,
        "producer",
        format!(
            "events {} rate {rate}/s outage_s {:.1} acknowledged {acked} log_lines_during_outage {producer_lines}",
            cfg.events,
            down_for.as_secs_f64()
        ),
        pproblems,
    ));

    let expected = expected(cfg);
    for (i, (c, db, p)) in consumers.iter_mut().enumerate() {
        let mut problems = Vec::new();
        if !alive[i] {
            problems.push(format!("exited during the outage: {}", p.log_tail(3)));
        }
        if during[i] == 0 {
            problems.push("logged nothing during the outage".into());
        }
        let status = p.wait(Duration::from_secs(3600))?;
        if !status.success() {
            problems.push(format!("exited with {status}: {}", p.log_tail(5)));
        }
        let f = verify(db, &expected, 0)?;
        exactness(&f, cfg.events, &mut problems);
        problems.extend(secret_leaks(&dir));
        outcomes.push(Outcome::new(
            Scenario::Outage,
            c.name(),
            format!(
                "events {} outage_s {:.1} committed_at_outage {} log_lines_during_outage {} {}",
                f.events,
                down_for.as_secs_f64(),
                at_down[i],
                during[i],
                f.brief()
            ),
            problems,
        ));
    }
    Ok(outcomes)
}
