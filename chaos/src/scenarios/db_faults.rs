//! `db-lock` and `disk-full` (chaos/README.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::ConsumerStats;

use anyhow::{Context, Result, bail};
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::committed_messages;
use testkit::{Expected, verify};

use super::{
    broker, check, consumer, each, exactness, expected, fresh_dir, produce, producer, secret_leaks,
    topic,
};
use crate::{Config, Outcome, Scenario};

const DB_LOCK: Scenario = Scenario::DbLock;
const DISK_FULL: Scenario = Scenario::DiskFull;

/// Each consumer on a topic of its own. The lock is taken once the first
/// third is committed, and only then the rest produced, so the consumer
/// meets the lock with events to write however fast it drains.
pub fn lock(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "db-lock")?;
    let broker = broker(cfg)?;
    let first = (cfg.events / 3).max(1).min(cfg.events);
    let rest = cfg.events - first;
    // Both parts from the same seed; the ids carry on.
    let expected = Expected::of_runs(cfg.seed, cfg.accounts, &[(1, first), (first + 1, rest)]);
    let mut topics = Vec::new();
    for &c in &cfg.consumers {
        let topic = topic(cfg, &*broker, &format!("db-lock.{}", c.name()))?;
        topics.push((c, (c, topic)));
    }
    let brokers = broker.bootstrap().to_string();
    let (dir, expected) = (&dir, &expected);
    Ok(each(DB_LOCK, topics, |(c, topic)| {
        let topic = &topic;
        let part = |name: &str, count: u64, first_id: u64| {
            let name = format!("producer-{}-{name}", c.name());
            produce(cfg, (&brokers, topic), (first_id, count), dir, &name)
        };
        part("before", first, 1)?;
        let cmd = consumer(cfg, DB_LOCK, c, &brokers, topic, dir);
        let db = &cmd.db;
        let mut p = cmd.spawn(&cfg.bins, 0, &[])?;
        let mut problems = Vec::new();
        wait_until(GENEROUS, "the first third of the events", || {
            committed_messages(db) >= first || p.try_status().is_some()
        })?;
        let conn = rusqlite::Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(120))?;
        conn.execute_batch("BEGIN IMMEDIATE")
            .context("take the write lock")?;
        let locked_at = committed_messages(db);
        let started = Instant::now();
        let produced = if rest > 0 {
            part("under-lock", rest, first + 1).map(drop)
        } else {
            Ok(())
        };
        std::thread::sleep(Duration::from_secs(cfg.lock_secs).saturating_sub(started.elapsed()));
        let held = started.elapsed();
        let during = committed_messages(db);
        let alive = p.try_status().is_none();
        conn.execute_batch("COMMIT")?;
        drop(conn);
        produced?;
        check(&mut problems, during == locked_at, || {
            format!(
                "{} messages committed under another process's lock",
                during.abs_diff(locked_at)
            )
        });
        check(&mut problems, alive, || {
            format!("exited while the database was locked: {}", p.log_tail(3))
        });
        let status = p.wait(GENEROUS)?;
        check(&mut problems, status.success(), || {
            format!("exited with {status}: {}", p.log_tail(5))
        });
        let waits_logged = p
            .log_text()
            .lines()
            .filter(|l| l.contains("locked by another") || l.contains("free again"))
            .count();
        check(&mut problems, waits_logged > 0 || rest == 0, || {
            "logged nothing while waiting for the lock".into()
        });
        let stats: ConsumerStats = p.read_stats()?;
        let committed = stats.events_committed;
        check(&mut problems, committed == cfg.events, || {
            format!("stats: events_committed {committed}, not {}", cfg.events)
        });
        let rss = stats.max_rss_bytes >> 20;
        let f = verify(db, expected, 0)?;
        exactness(&f, cfg.events, &mut problems);
        problems.extend(secret_leaks(dir));
        let figures = format!(
            "events {} locked_s {:.1} at_message {locked_at} of {} lock_wait_lines_logged {waits_logged} peak_rss_mib {rss} {}",
            f.events,
            held.as_secs_f64(),
            cfg.events,
            f.brief()
        );
        Ok(Outcome::new(DB_LOCK, c.name(), figures, problems))
    }))
}

/// A tmpfs mounted by the harness, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, bytes: u64) -> Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let size = format!("size={bytes},mode=0700");
        mount(&["-t", "tmpfs", "-o", &size, "tmpfs"], at).context("needs root")?;
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn grow(&self, bytes: u64) -> Result<()> {
        mount(&["-o", &format!("remount,size={bytes}")], &self.0)
    }
}

fn mount(args: &[&str], at: &Path) -> Result<()> {
    let out = Command::new("mount").args(args).arg(at).output()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        bail!("mount {} failed: {}", args.join(" "), why.trim());
    }
    Ok(())
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// Bytes of database per event, roughly (row, payload, WAL).
const BYTES_PER_EVENT: u64 = 400;

/// The disk-full scenario, both consumers at once, each on its own tmpfs.
pub fn disk_full(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "disk-full")?;
    // Too small for the events: about a third of them fit.
    let small = (cfg.events * BYTES_PER_EVENT / 3).max(512 * 1024);
    let mut disks = Vec::new();
    for &c in &cfg.consumers {
        match Tmpfs::mount(&dir.join(format!("{}-disk", c.name())), small) {
            Ok(t) => disks.push((c, (c, t))),
            Err(e) => {
                return Ok(vec![Outcome::skipped(DISK_FULL, "all", format!("{e:#}"))]);
            }
        }
    }
    let broker = broker(cfg)?;
    let topic = topic(cfg, &*broker, "disk-full")?;
    let brokers = broker.bootstrap().to_string();
    producer(cfg, &brokers, &topic).run(&cfg.bins, &dir, "producer")?;
    let expected = expected(cfg);
    let (dir, topic) = (&dir, &topic);
    Ok(each(DISK_FULL, disks, |(c, disk)| {
        let mut cmd = consumer(cfg, DISK_FULL, c, &brokers, topic, dir);
        cmd.db = disk.0.join(format!("{}.db", c.name()));
        let db = &cmd.db;
        let mut problems = Vec::new();
        let mut p = cmd.spawn(&cfg.bins, 0, &[])?;
        let status = p.wait(GENEROUS)?;
        let at_full = committed_messages(db);
        let first_code = status.code().unwrap_or(-1);
        let text = p.log_text();
        let error_line = text
            .lines()
            .rfind(|l| l.to_ascii_lowercase().contains("error"));
        let error_line = error_line.unwrap_or("").to_string();
        if status.success() {
            problems.push(format!(
                "exit status 0 on a full disk ({at_full} of {} committed)",
                cfg.events
            ));
        }
        if !error_line.to_ascii_lowercase().contains("full") {
            problems.push(format!("no clear 'full' error: {error_line:?}"));
        }
        // Space freed: the file system grows to hold everything.
        disk.grow((cfg.events * BYTES_PER_EVENT * 4).max(64 * 1024 * 1024))?;
        let mut again = cmd.spawn(&cfg.bins, 1, &[])?;
        let status = again.wait(GENEROUS)?;
        if !status.success() {
            problems.push(format!(
                "restart after freeing space exited with {status}: {}",
                again.log_tail(5)
            ));
        }
        let f = verify(db, &expected, 0)?;
        exactness(&f, cfg.events, &mut problems);
        problems.extend(secret_leaks(dir));
        let shown = error_line.rsplit("error: ").next().unwrap_or("");
        let shown: String = shown.chars().take(120).collect();
        let figures = format!(
            "events {} fs_bytes {small} stopped_at {at_full} exit_code {} error {shown:?} {}",
            f.events,
            first_code,
            f.brief()
        );
        Ok(Outcome::new(DISK_FULL, c.name(), figures, problems))
    }))
}
