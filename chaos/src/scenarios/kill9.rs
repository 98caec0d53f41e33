//! `kill9` (chaos/README.md): kills at points of progress land inside a
//! batch as often as between two; those after a restart hit a joining one.

use std::thread;
use std::time::Duration;
use testkit::ConsumerStats;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::{committed_messages, row_count};
use testkit::{Model, verify};

use super::{Producing, check, consumer, exactness, loose_modes, secret_leaks, while_producing};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::Kill9;

enum Moment {
    /// Kill once this many messages are committed (plus a short random delay).
    Progress(u64, u64),
    /// Kill this many milliseconds after the restart.
    Delay(u64),
}

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    while_producing(cfg, SC, 0, |s, m| one(cfg, m, s))
}

fn one(cfg: &Config, model: Model, s: &Producing<'_>) -> Result<Outcome> {
    let (brokers, topic, dir, expected) =
        (s.brokers.as_str(), s.topic.as_str(), &s.dir, &s.expected);
    let cmd = consumer(cfg, SC, model, brokers, topic, dir);
    let db = &cmd.db;
    let n = cfg.events;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ ((model as u64 + 1) * 0x9e37_79b9));
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
    let mut stored_before_last = 0;
    let mut p = cmd.spawn(&cfg.bins, run_no, &[])?;
    for m in &moments {
        match *m {
            Moment::Progress(at, extra_ms) => {
                wait_until(GENEROUS, "progress before a kill", || {
                    committed_messages(db) >= at || p.try_status().is_some()
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
        // What the killed run committed is consistent: rows and offsets
        // agree (the figures of a partial database count the rest as lost).
        if db.exists() {
            let f = verify(db, expected, 0)?;
            check(
                &mut problems,
                f.offsets_inconsistent == 0 && f.duplicated == 0,
                || format!("after kill {kills}: {}", f.brief()),
            );
        }
        stored_before_last = row_count(db);
        run_no += 1;
        p = cmd.spawn(&cfg.bins, run_no, &[])?;
    }
    let stats: ConsumerStats = p.wait_success()?;
    let f = verify(db, expected, 0)?;
    exactness(&f, n, &mut problems);
    let last = stats.events_committed;
    let left = n.saturating_sub(stored_before_last);
    check(&mut problems, last == left, || {
        format!("the last run stored {last} events, not the {left} the killed runs had not")
    });
    let duplicates = stats.duplicates;
    check(&mut problems, duplicates == 0, || {
        format!("the last run met {duplicates} duplicate ids")
    });
    problems.extend(secret_leaks(dir));
    let files = vec![db.clone(), dir.join("producer.json"), cmd.stats(run_no)];
    problems.extend(loose_modes(&files));
    let figures = format!(
        "events {} kills {kills} restarts {run_no} {}",
        f.events,
        f.brief()
    );
    Ok(Outcome::new(SC, model.name(), figures, problems))
}
