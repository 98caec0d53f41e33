//! `outage` (chaos/README.md). No idle timeout: it could fire during the
//! outage; the consumers get SIGTERM once every event is committed.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use testkit::brokerproc::Restartable;
use testkit::nisshi::Storage;
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::committed_messages;
use testkit::{Kafka, KafkaOptions, Nisshi, verify};

use super::sigterm::SIGTERM_BOUND;
use super::{check, consumer, exactness, expected, fresh_dir, producer, secret_leaks, topic};
use crate::{BrokerKind, Config, Outcome, Scenario};

const SC: Scenario = Scenario::Outage;

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "outage")?;
    // Stopped and restarted from this thread, which outlives it (a broker
    // dies with the thread that started it).
    // Nisshi on SQLite (in memory its log would not survive the restart).
    let mut kafka: Box<dyn Restartable> = match cfg.broker {
        BrokerKind::Nisshi => Box::new(Nisshi::start_in_dir(&dir.join("nisshi"), Storage::Sqlite)?),
        _ => Box::new(Kafka::start_in_dir(
            &dir.join("kafka"),
            KafkaOptions::default(),
        )?),
    };
    let topic = topic(cfg, &*kafka, "outage")?;
    let brokers = kafka.bootstrap().to_string();
    let outage = Duration::from_secs(cfg.outage_secs);
    let rate = (cfg.events / (cfg.outage_secs * 3)).max(1_000);

    let mut consumers = Vec::new();
    for &c in &cfg.consumers {
        let mut cmd = consumer(cfg, SC, c, &brokers, &topic, &dir);
        cmd.idle_secs = None;
        let p = cmd.spawn(&cfg.bins, 0, &[])?;
        consumers.push((cmd, p));
    }
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = rate;
    produce.timeout_secs = cfg.outage_secs * 3 + 120;
    let mut producer = produce.spawn(&cfg.bins, &dir, "producer")?;

    // A third of the way into production.
    thread::sleep(outage);
    if producer.try_status().is_some() {
        bail!(
            "the producer exited before the outage: {}",
            producer.log_tail(5)
        );
    }
    let lines = |p: &testkit::Proc| p.log_text().lines().count();
    let before: Vec<usize> = consumers.iter().map(|(_, p)| lines(p)).collect();
    let producer_lines_before = lines(&producer);
    let at_down: Vec<u64> = consumers
        .iter()
        .map(|(cmd, _)| committed_messages(&cmd.db))
        .collect();
    let down_at = Instant::now();
    kafka.stop()?;
    thread::sleep(outage);
    let alive: Vec<bool> = consumers
        .iter_mut()
        .map(|(_, p)| p.try_status().is_none())
        .collect();
    let producer_alive = producer.try_status().is_none();
    let during: Vec<usize> = consumers
        .iter()
        .zip(&before)
        .map(|((_, p), b)| lines(p).saturating_sub(*b))
        .collect();
    let producer_lines = lines(&producer).saturating_sub(producer_lines_before);
    kafka.restart()?;
    let down_for = down_at.elapsed();

    let mut outcomes = Vec::new();
    let mut pproblems = Vec::new();
    check(&mut pproblems, producer_alive, || {
        format!("exited during the outage: {}", producer.log_tail(3))
    });
    check(&mut pproblems, producer_lines > 0, || {
        "logged nothing during the outage".into()
    });
    let acked = match produce.finish(&mut producer) {
        Ok(stats) => stats.events_acknowledged,
        Err(e) => {
            pproblems.push(format!("{e:#}"));
            0
        }
    };
    let figures = format!(
        "events {} rate {rate}/s outage_s {:.1} acknowledged {acked} log_lines_during_outage {producer_lines}",
        cfg.events,
        down_for.as_secs_f64()
    );
    outcomes.push(Outcome::new(SC, "producer", figures, pproblems));

    // Every event committed (a consumer that exited is reported below),
    // then the broker goes for good and the consumers are stopped: the
    // signal must be obeyed within the bound though the last Kafka commit
    // and the leave from the group get no answer.
    let committed: Vec<Result<()>> = consumers
        .iter_mut()
        .map(|(cmd, p)| {
            wait_until(GENEROUS, "every event committed", || {
                committed_messages(&cmd.db) >= cfg.events || p.try_status().is_some()
            })
        })
        .collect();
    kafka.stop()?;
    let signalled = Instant::now();
    for (_, p) in consumers.iter_mut() {
        p.sigterm();
    }
    let expected = expected(cfg);
    for (i, (cmd, p)) in consumers.iter_mut().enumerate() {
        let mut problems = Vec::new();
        check(&mut problems, alive[i], || {
            format!("exited during the outage: {}", p.log_tail(3))
        });
        check(&mut problems, during[i] > 0, || {
            "logged nothing during the outage".into()
        });
        if let Err(e) = &committed[i] {
            problems.push(format!("{e:#}"));
        }
        let status = p.wait(GENEROUS)?;
        // Signalled together: an upper bound for the later ones.
        let exit_s = signalled.elapsed();
        check(&mut problems, status.success(), || {
            format!("exited with {status}: {}", p.log_tail(5))
        });
        check(&mut problems, exit_s <= SIGTERM_BOUND, || {
            format!(
                "took {exit_s:.1?} to exit after SIGTERM with the broker gone (bound \
                 {SIGTERM_BOUND:?}): {}",
                p.log_tail(5)
            )
        });
        let f = verify(&cmd.db, &expected, 0)?;
        exactness(&f, cfg.events, &mut problems);
        problems.extend(secret_leaks(&dir));
        let figures = format!(
            "events {} outage_s {:.1} committed_at_outage {} log_lines_during_outage {} \
                 exit_without_broker_s {:.1} {}",
            f.events,
            down_for.as_secs_f64(),
            at_down[i],
            during[i],
            exit_s.as_secs_f64(),
            f.brief()
        );
        outcomes.push(Outcome::new(SC, cmd.model.name(), figures, problems));
    }
    Ok(outcomes)
}
