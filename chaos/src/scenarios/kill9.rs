//! Item 1: `kill -9` of the consumer at random moments, restarted each
//! time; at the end the database must hold exactly the produced events.
//!
//! Most moments are points of progress (a random number of committed
//! messages, then a random 0-250 ms more, so the kill lands inside a batch
//! as often as between two); every fourth is a random delay after the
//! restart, so some kills hit a consumer that is still joining the group or
//! reading its offsets. Both consumers run at once, each in its own group
//! with its own database, on the same topic.

use std::thread;
use std::time::Duration;

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Spawn, exactness, expected, fresh_dir, loose_modes, per_consumer, secret_leaks, wait_until,
};
use crate::broker::Mock;
use crate::procs::produce;
use crate::verify::{committed_messages, verify};
use crate::{Config, Consumer, Outcome, Scenario, TOPIC};

enum Moment {
    /// Kill once this many messages are committed (plus a short random delay).
    Progress(u64, u64),
    /// Kill this many milliseconds after the restart.
    Delay(u64),
}

/// Runs the scenario for every consumer at once.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "kill9")?;
    // The mock cluster, not Tansu: restarts resume mid-batch (see broker.rs).
    let broker = Mock::start()?;
    broker.topic(TOPIC, cfg.partitions, cfg.events)?;
    let produced = produce(
        &cfg.bin_dir,
        &dir,
        "producer",
        &broker.bootstrap,
        TOPIC,
        cfg.events,
        cfg.seed,
        cfg.accounts,
        1,
    )?;
    let expected = expected(cfg);
    if produced["id_checksum"].as_str() != Some(expected.id_checksum.hex().as_str()) {
        bail!("the producer's id checksum differs from the regenerated events'");
    }
    Ok(per_consumer(cfg, Scenario::Kill9, |c| {
        one(cfg, c, &broker.bootstrap, &dir, &expected)
    }))
}

fn one(
    cfg: &Config,
    c: Consumer,
    brokers: &str,
    dir: &std::path::Path,
    expected: &banking_testkit::Expected,
) -> Result<Outcome> {
    let spawn = Spawn {
        cfg,
        consumer: c,
        brokers,
        topic: TOPIC,
        dir,
        idle_secs: 5,
        db_dir: None,
    };
    let db = spawn.db();
    let n = cfg.events;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ ((c as u64 + 1) * 0x9e37_79b9));
    let mut progress: Vec<u64> = (0..cfg.kills)
        .filter(|i| i % 4 != 3)
        .map(|_| rng.random_range(n / 50..=n * 19 / 20))
        .collect();
    progress.sort_unstable();
    let mut progress = progress.into_iter();
    let moments: Vec<Moment> = (0..cfg.kills)
        .map(|i| {
            if i % 4 == 3 {
                Moment::Delay(rng.random_range(0..3_000))
            } else {
                Moment::Progress(progress.next().unwrap_or(n / 2), rng.random_range(0..250))
            }
        })
        .collect();

    let mut problems = Vec::new();
    let mut kills = 0;
    let mut run_no = 0;
    let mut p = spawn.run(run_no, &[])?;
    for m in &moments {
        match *m {
            Moment::Progress(at, extra_ms) => {
                wait_until(Duration::from_secs(900), "progress before a kill", || {
                    committed_messages(&db) >= at || p.try_status().is_some()
                })?;
                thread::sleep(Duration::from_millis(extra_ms));
            }
            Moment::Delay(ms) => thread::sleep(Duration::from_millis(ms)),
        }
        if p.kill9() {
            kills += 1;
        } else if let Some(s) = p.try_status().filter(|s| !s.success()) {
            problems.push(format!("{} exited with {s}: {}", p.name, p.log_tail(5)));
        }
        run_no += 1;
        p = spawn.run(run_no, &[])?;
    }
    let status = p.wait(Duration::from_secs(1800))?;
    if !status.success() {
        problems.push(format!("final run exited with {status}: {}", p.log_tail(5)));
    }
    let figures = verify(&db, expected, 0)?;
    exactness(&figures, n, &mut problems);
    problems.extend(secret_leaks(dir));
    let mut files = vec![db.clone(), dir.join("producer.json")];
    files.push(dir.join(format!("{}-{run_no}.json", c.name())));
    problems.extend(loose_modes(&files));
    Ok(Outcome::new(
        Scenario::Kill9,
        c.name(),
        format!(
            "events {} kills {kills} restarts {run_no} {}",
            figures.events,
            figures.brief()
        ),
        problems,
    ))
}
