//! The project's binaries as child processes: command lines, log and stats
//! files, waiting, signals. A [`Proc`] is SIGKILLed when dropped.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use common::stats::{ProducerStats, read_stats};
use serde::de::DeserializeOwned;

use crate::bins::{Bins, Model};

mod echoed;
pub use echoed::Finished;

/// Quick group changes: a killed member is dead after 6 s (the lowest
/// Kafka accepts) instead of 45 s; a rebalance is noticed within 0.5 s.
const FAST_GROUP: [&str; 4] = [
    "-X",
    "session.timeout.ms=6000",
    "-X",
    "heartbeat.interval.ms=500",
];

/// Passed as `-X sasl.password=` to every consumer run (ignored under
/// PLAINTEXT); it must never show up in a log or stats file.
pub const SECRET: &str = "chaos-Secret-7f3a9c";

/// How long anything but the explicit bounds of a test may take.
pub const GENEROUS: Duration = Duration::from_secs(900);

pub struct Proc {
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
    pub stats: Option<PathBuf>,
    pub name: String,
    status: Option<ExitStatus>,
    started: Instant,
    /// The threads copying its output ([`Proc::spawn_echoed`]).
    copiers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Spawns `bin` with `args`, output appended to `log`, in `cwd` if
    /// given, with `RUST_LOG=info` and without `KAFKA_BROKERS`.
    pub fn spawn(
        bin: &Path,
        args: &[OsString],
        log: &Path,
        cwd: Option<&Path>,
        name: &str,
    ) -> Result<Proc> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("create {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env_remove("KAFKA_BROKERS")
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        Proc::start(cmd, log, name, |_| Vec::new())
    }

    /// Starts `cmd`; `copiers` starts the threads copying its output.
    fn start(
        mut cmd: Command,
        log: &Path,
        name: &str,
        copiers: impl FnOnce(&mut Child) -> Vec<JoinHandle<()>>,
    ) -> Result<Proc> {
        let bin = Path::new(cmd.get_program()).to_path_buf();
        let mut child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        Ok(Proc {
            copiers: copiers(&mut child),
            child,
            log: log.to_path_buf(),
            stats: None,
            name: name.to_string(),
            status: None,
            started: Instant::now(),
        })
    }

    /// `bin` with `args` and `--stats-json <dir>/<name>.json`, its output
    /// in `<dir>/<name>.log`.
    fn spawn_in(bin: &Path, mut args: Vec<OsString>, dir: &Path, name: &str) -> Result<Proc> {
        let stats = dir.join(format!("{name}.json"));
        args.splice(0..0, ["--stats-json".into(), stats.clone().into()]);
        let mut p = Proc::spawn(bin, &args, &dir.join(format!("{name}.log")), None, name)?;
        p.stats = Some(stats);
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits at most `timeout` for it to exit; kills it after that.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match self.end_by(Instant::now() + timeout, Duration::ZERO, false) {
            (status, false) => Ok(status),
            (_, true) => bail!(
                "{} did not exit within {timeout:?} (log {}):\n{}",
                self.name,
                self.log.display(),
                self.log_tail(20)
            ),
        }
    }

    /// Waits for it to exit; at `deadline` SIGTERM (announced on stderr
    /// with `announce`), SIGKILL `grace` later. True: it had to be stopped.
    fn end_by(&mut self, deadline: Instant, grace: Duration, announce: bool) -> (ExitStatus, bool) {
        while self.try_status().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let stopped = self.try_status().is_none();
        if stopped {
            if announce {
                let ran = self.started.elapsed();
                eprintln!("{} still runs after {ran:.0?}; sending SIGTERM", self.name);
            }
            crate::brokerproc::terminate(self.pid(), grace, &self.name);
        }
        let status = self.child.wait().expect("wait for a child");
        self.status = Some(status);
        for c in self.copiers.drain(..) {
            let _ = c.join();
        }
        (status, stopped)
    }

    /// Waits (at most [`GENEROUS`]) for exit status 0; returns the stats
    /// file, as the program's own stats type.
    pub fn wait_success<T: DeserializeOwned>(&mut self) -> Result<T> {
        let status = self.wait(GENEROUS)?;
        if !status.success() {
            bail!("{} exited with {status}:\n{}", self.name, self.log_tail(20));
        }
        self.read_stats()
    }

    /// The `--stats-json` file (its format version checked).
    pub fn read_stats<T: DeserializeOwned>(&self) -> Result<T> {
        let path = self
            .stats
            .as_ref()
            .with_context(|| format!("{} writes no stats file", self.name))?;
        if !path.exists() {
            let tail = self.log_tail(10);
            bail!("{}: no stats file {}:\n{tail}", self.name, path.display());
        }
        Ok(read_stats(path)?)
    }

    /// SIGKILL, then reap it. True when it was still running.
    pub fn kill9(&mut self) -> bool {
        if self.try_status().is_some() {
            return false;
        }
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        true
    }

    pub fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid (not yet reaped while
        // `status` is None, so the pid is not reused).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        crate::last_lines(&self.log_text(), n)
    }

    /// Waits until its log contains `needle`; fails when it exits first or
    /// after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let logged = wait_until(timeout, &format!("{needle:?} in its log"), || {
            self.log_text().contains(needle) || self.try_status().is_some()
        });
        match self.status {
            Some(s) if logged.is_ok() && !self.log_text().contains(needle) => {
                Err(anyhow!("exited ({s}) before logging {needle:?}"))
            }
            _ => logged,
        }
        .map_err(|e| anyhow!("{} {e}:\n{}", self.name, self.log_tail(20)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A consumer's command line: the usual flags, [`FAST_GROUP`],
/// [`SECRET`], then `extra`.
#[derive(Debug, Clone)]
pub struct ConsumerCmd {
    pub model: Model,
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub db: PathBuf,
    /// Where run `n` writes `<model>-<n>.log` and `<model>-<n>.json`.
    pub dir: PathBuf,
    /// `--exit-when-idle` (None: runs until signalled).
    pub idle_secs: Option<u64>,
    pub extra: Vec<String>,
}

impl ConsumerCmd {
    /// Its database `<dir>/<model>.db`, idle after 5 s.
    pub fn new(model: Model, brokers: &str, topic: &str, group: &str, dir: &Path) -> ConsumerCmd {
        ConsumerCmd {
            model,
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            group: group.to_string(),
            db: dir.join(format!("{}.db", model.name())),
            dir: dir.to_path_buf(),
            idle_secs: Some(5),
            extra: Vec::new(),
        }
    }

    fn name(&self, n: u32) -> String {
        format!("{}-{n}", self.model.name())
    }

    pub fn stats(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}.json", self.name(n)))
    }

    pub fn spawn(&self, bins: &Bins, n: u32, extra: &[&str]) -> Result<Proc> {
        let (b, t, g) = (&self.brokers, &self.topic, &self.group);
        let mut args = words(&["--brokers", b, "--topic", t, "--group", g, "--db"]);
        args.push(self.db.clone().into());
        if let Some(idle) = self.idle_secs {
            args.extend(words(&["--exit-when-idle", &idle.to_string()]));
        }
        args.extend(words(&FAST_GROUP));
        args.extend(words(&["-X", &format!("sasl.password={SECRET}")]));
        args.extend(self.extra.iter().map(OsString::from));
        args.extend(words(extra));
        Proc::spawn_in(&bins.consumer(self.model), args, &self.dir, &self.name(n))
    }
}

fn words(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// A producer's command line: `count` events of `seed` over `accounts`
/// accounts with ids from `first_id`, at `rate` events/s (0: as fast as
/// it can), `--timeout` seconds for every acknowledgement.
#[derive(Debug, Clone)]
pub struct ProducerCmd {
    pub brokers: String,
    pub topic: String,
    pub count: u64,
    pub seed: u64,
    pub accounts: u64,
    pub first_id: u64,
    pub rate: u64,
    pub timeout_secs: u64,
    pub extra: Vec<String>,
}

impl ProducerCmd {
    /// Ids from 1, unthrottled, 120 s for the acknowledgements.
    pub fn new(brokers: &str, topic: &str, count: u64, seed: u64, accounts: u64) -> ProducerCmd {
        ProducerCmd {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            count,
            seed,
            accounts,
            first_id: 1,
            rate: 0,
            timeout_secs: 120,
            extra: Vec::new(),
        }
    }

    /// Starts it, its files `<dir>/<name>.log` and `.json`.
    pub fn spawn(&self, bins: &Bins, dir: &Path, name: &str) -> Result<Proc> {
        let mut args = words(&["--brokers", &self.brokers, "--topic", &self.topic]);
        let numbers = format!(
            "--count {} --seed {} --accounts {} --first-id {} --rate {} --timeout {}",
            self.count, self.seed, self.accounts, self.first_id, self.rate, self.timeout_secs
        );
        args.extend(numbers.split(' ').map(OsString::from));
        args.extend(self.extra.iter().map(OsString::from));
        Proc::spawn_in(&bins.producer(), args, dir, name)
    }

    pub fn run(&self, bins: &Bins, dir: &Path, name: &str) -> Result<ProducerStats> {
        let mut p = self.spawn(bins, dir, name)?;
        self.finish(&mut p)
    }

    /// Waits for it; fails unless every event was acknowledged.
    pub fn finish(&self, p: &mut Proc) -> Result<ProducerStats> {
        let stats: ProducerStats = p.wait_success()?;
        if stats.events_failed != 0 || stats.events_acknowledged != self.count {
            bail!(
                "{}: the producer did not get every event acknowledged: {} of {}, {} failed ({:?})",
                p.name,
                stats.events_acknowledged,
                self.count,
                stats.events_failed,
                stats.errors
            );
        }
        Ok(stats)
    }
}

/// The `.log` and `.json` files of `dir` that contain `secret`.
pub fn files_showing(dir: &Path, secret: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("log" | "json")))
        .filter(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).contains(secret))
        .collect()
}

/// Polls `cond` every 20 ms until it holds; fails after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
