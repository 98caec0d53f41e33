//! Spawning the project's binaries as separate processes, with their output
//! in a log file, and waiting for, signalling or killing them.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Which consumer binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// consumer-pull (BaseConsumer poll loop).
    Pull,
    /// consumer-push (StreamConsumer on tokio).
    Push,
}

impl Consumer {
    /// `pull` or `push`.
    pub fn name(self) -> &'static str {
        match self {
            Consumer::Pull => "pull",
            Consumer::Push => "push",
        }
    }

    /// The binary's file name.
    pub fn binary(self) -> &'static str {
        match self {
            Consumer::Pull => "consumer-pull",
            Consumer::Push => "consumer-push",
        }
    }

    /// Parses `pull` or `push`.
    pub fn parse(s: &str) -> Result<Consumer> {
        match s.trim() {
            "pull" => Ok(Consumer::Pull),
            "push" => Ok(Consumer::Push),
            other => bail!("unknown consumer {other:?} (expected pull or push)"),
        }
    }
}

/// Settings that make group changes quick: a killed member is declared dead
/// after 6 s instead of 45 s.
pub const FAST_GROUP: [&str; 4] = [
    "-X",
    "session.timeout.ms=6000",
    "-X",
    "heartbeat.interval.ms=500",
];

/// A secret passed with `-X` to every consumer run of the scenarios that
/// talk to a broker; it must never show up in a log or a stats file. Under
/// PLAINTEXT librdkafka ignores it.
pub const SECRET: &str = "chaos-Secret-7f3a9c";

/// One running (or finished) process.
pub struct Proc {
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// For messages.
    pub name: String,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `bin` with `args`, output to `log` (appended), in `cwd` if
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
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env_remove("KAFKA_BROKERS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        Ok(Proc {
            child,
            log: log.to_path_buf(),
            name: name.to_string(),
            status: None,
        })
    }

    /// Whether it has exited (and with what).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits at most `timeout` for it to exit; kills it after that and fails.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                self.kill9();
                bail!(
                    "{} did not exit within {timeout:?} (log: {})",
                    self.name,
                    self.log.display()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
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

    /// Sends `sig`.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Everything it wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Builds a consumer's command line.
pub struct ConsumerArgs<'a> {
    /// Bootstrap list.
    pub brokers: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Group.
    pub group: &'a str,
    /// Database.
    pub db: &'a Path,
    /// Stats file.
    pub stats: &'a Path,
    /// `--exit-when-idle`.
    pub idle_secs: u64,
    /// More arguments.
    pub extra: &'a [&'a str],
}

impl ConsumerArgs<'_> {
    /// The argument vector.
    pub fn to_vec(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        for s in [
            "--brokers",
            self.brokers,
            "--topic",
            self.topic,
            "--group",
            self.group,
        ] {
            v.push(s.into());
        }
        v.push("--db".into());
        v.push(self.db.into());
        v.push("--stats-json".into());
        v.push(self.stats.into());
        v.push("--exit-when-idle".into());
        v.push(self.idle_secs.to_string().into());
        v.extend(FAST_GROUP.iter().map(OsString::from));
        v.push("-X".into());
        v.push(format!("sasl.password={SECRET}").into());
        v.extend(self.extra.iter().map(OsString::from));
        v
    }
}

/// Runs the producer binary to completion: `count` events of `seed` with
/// ids from `first_id`. Returns its stats file.
#[allow(clippy::too_many_arguments)]
pub fn produce(
    bin_dir: &Path,
    work: &Path,
    name: &str,
    brokers: &str,
    topic: &str,
    count: u64,
    seed: u64,
    accounts: u64,
    first_id: u64,
) -> Result<serde_json::Value> {
    let stats = work.join(format!("{name}.json"));
    let args: Vec<OsString> = [
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--count",
        &count.to_string(),
        "--seed",
        &seed.to_string(),
        "--accounts",
        &accounts.to_string(),
        "--first-id",
        &first_id.to_string(),
        "--timeout",
        "120",
        "--stats-json",
    ]
    .iter()
    .map(OsString::from)
    .chain([stats.clone().into_os_string()])
    .collect();
    let mut p = Proc::spawn(
        &bin_dir.join("producer"),
        &args,
        &work.join(format!("{name}.log")),
        None,
        name,
    )?;
    let status = p.wait(Duration::from_secs(1800))?;
    if !status.success() {
        bail!("{name}: producer exited with {status}:\n{}", p.log_tail(20));
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats)?)?;
    if v["events_failed"].as_u64() != Some(0) || v["events_acknowledged"].as_u64() != Some(count) {
        bail!("{name}: the producer did not get every event acknowledged: {v}");
    }
    Ok(v)
}
