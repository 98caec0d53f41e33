//! The scenarios, one module each, and what they share.

mod bad_input;
mod bad_messages;
mod db_faults;
mod kill9;
mod no_broker;
mod outage;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use banking_testkit::Expected;

use crate::broker::Broker;
use crate::procs::{ConsumerArgs, Proc, SECRET};
use crate::{Config, Consumer, Outcome, Scenario, free_port, tansu_installed};

/// Runs one scenario; never panics, a harness failure is a failed outcome.
pub fn run(cfg: &Config, sc: Scenario) -> Vec<Outcome> {
    // kill9, disk-full and outage use librdkafka's mock cluster.
    let needs_tansu = matches!(
        sc,
        Scenario::BadMessages | Scenario::NoBroker | Scenario::DbLock
    );
    if needs_tansu && !tansu_installed() {
        return vec![Outcome::skipped(
            sc,
            "all",
            "tansu is not installed: cargo install tansu --locked --features dynostore".into(),
        )];
    }
    let result = match sc {
        Scenario::BadInput => bad_input::run(cfg),
        Scenario::Kill9 => kill9::run(cfg),
        Scenario::BadMessages => bad_messages::run(cfg),
        Scenario::NoBroker => no_broker::run(cfg),
        Scenario::DbLock => db_faults::lock(cfg),
        Scenario::DiskFull => db_faults::disk_full(cfg),
        Scenario::Outage => outage::run(cfg),
    };
    result.unwrap_or_else(|e| vec![Outcome::error(sc, "all", &e)])
}

/// A fresh directory for a scenario (or a part of one) under `--out`.
pub(crate) fn fresh_dir(cfg: &Config, name: &str) -> Result<PathBuf> {
    let dir = cfg.out.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// A private Tansu for one scenario, its state under `dir`.
pub(crate) fn start_broker(cfg: &Config, dir: &Path) -> Result<Broker> {
    Broker::start(&cfg.broker_script, &dir.join("broker"), free_port())
}

/// The events every scenario produces with the producer binary.
pub(crate) fn expected(cfg: &Config) -> Expected {
    Expected::of(cfg.seed, cfg.accounts, cfg.events)
}

/// Runs `f` for every configured consumer at once, one thread each.
pub(crate) fn per_consumer<F>(cfg: &Config, sc: Scenario, f: F) -> Vec<Outcome>
where
    F: Fn(Consumer) -> Result<Outcome> + Sync,
{
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = cfg
            .consumers
            .iter()
            .map(|&c| (c, s.spawn(move || f(c))))
            .collect();
        handles
            .into_iter()
            .map(|(c, h)| match h.join() {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => Outcome::error(sc, c.name(), &e),
                Err(_) => Outcome::error(sc, c.name(), &anyhow!("the scenario thread panicked")),
            })
            .collect()
    })
}

/// Spawns consumer `c` with the usual arguments.
pub(crate) struct Spawn<'a> {
    pub cfg: &'a Config,
    pub consumer: Consumer,
    pub brokers: &'a str,
    pub topic: &'a str,
    pub dir: &'a Path,
    pub idle_secs: u64,
    /// Where the database goes, when not in `dir`.
    pub db_dir: Option<&'a Path>,
}

impl Spawn<'_> {
    /// The database path.
    pub fn db(&self) -> PathBuf {
        self.db_dir
            .unwrap_or(self.dir)
            .join(format!("{}.db", self.consumer.name()))
    }

    /// Run number `n`: log `<consumer>-<n>.log`, stats `<consumer>-<n>.json`.
    pub fn run(&self, n: u32, extra: &[&str]) -> Result<Proc> {
        let name = format!("{}-{n}", self.consumer.name());
        let stats = self.dir.join(format!("{name}.json"));
        let db = self.db();
        let batch = self.cfg.batch_args();
        let mut all: Vec<&str> = batch.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        // One group per consumer and directory: runs in other directories
        // (rounds, scenarios) must not inherit this one's Kafka offsets.
        let group = format!(
            "chaos-{}-{}",
            self.consumer.name(),
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let args = ConsumerArgs {
            brokers: self.brokers,
            topic: self.topic,
            group: &group,
            db: &db,
            stats: &stats,
            idle_secs: self.idle_secs,
            extra: &all,
        };
        Proc::spawn(
            &self.cfg.bin_dir.join(self.consumer.binary()),
            &args.to_vec(),
            &self.dir.join(format!("{name}.log")),
            None,
            &name,
        )
    }

    /// The stats file of run `n`.
    pub fn stats(&self, n: u32) -> Result<serde_json::Value> {
        let path = self.dir.join(format!("{}-{n}.json", self.consumer.name()));
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Problems when the secret passed with `-X` appears in any file of `dir`
/// (logs, stats; databases excluded).
pub(crate) fn secret_leaks(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let is_text = matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("log") | Some("json")
        );
        if is_text {
            let bytes = std::fs::read(&p).unwrap_or_default();
            if String::from_utf8_lossy(&bytes).contains(SECRET) {
                out.push(format!("the -X secret appears in {}", p.display()));
            }
        }
    }
    out
}

/// Problems when a database or stats file is readable by anyone but its
/// owner.
pub(crate) fn loose_modes(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let mut candidates = vec![p.clone()];
        if p.extension().is_some_and(|x| x == "db") {
            for suffix in ["-wal", "-shm"] {
                let mut s = p.clone().into_os_string();
                s.push(suffix);
                candidates.push(PathBuf::from(s));
            }
        }
        for c in candidates {
            if let Ok(m) = std::fs::metadata(&c) {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    out.push(format!("{} has mode {mode:o}, not 0600", c.display()));
                }
            }
        }
    }
    out
}

/// Standard end of a scenario: verification figures and problems.
pub(crate) fn exactness(
    figures: &crate::verify::Figures,
    expected_events: u64,
    problems: &mut Vec<String>,
) {
    if !figures.exact() || figures.events != expected_events {
        problems.push(format!(
            "database holds {} events of {expected_events}: {}",
            figures.events,
            figures.brief()
        ));
    }
}
