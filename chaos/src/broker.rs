//! A private Tansu broker for the scenarios, driven through
//! `scripts/broker.sh` (in-memory storage, its own port and run directory),
//! which the harness can freeze (SIGSTOP) to make it unreachable without
//! losing the topic's data, and thaw again (SIGCONT).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A Tansu broker started by the harness; stopped on drop.
pub struct Broker {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
    script: PathBuf,
    run_dir: PathBuf,
    port: u16,
}

impl Broker {
    /// Starts Tansu on `port` with its state in `run_dir` (no topic).
    pub fn start(script: &Path, run_dir: &Path, port: u16) -> Result<Broker> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("create {}", run_dir.display()))?;
        let broker = Broker {
            bootstrap: format!("127.0.0.1:{port}"),
            script: script.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            port,
        };
        let out = broker.command().args(["start", "--no-topic"]).output()?;
        if !out.status.success() {
            bail!(
                "scripts/broker.sh start failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(broker)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.script);
        c.env("BROKER_KIND", "tansu")
            .env("BROKER_PORT", self.port.to_string())
            .env("RUN_DIR", &self.run_dir)
            .env_remove("KAFKA_BROKERS");
        c
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let out = self
            .command()
            .args(["topic", topic, "--partitions", &partitions.to_string()])
            .output()?;
        if !out.status.success() {
            bail!(
                "scripts/broker.sh topic {topic} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Tansu's process id.
    pub fn pid(&self) -> Result<i32> {
        let text = std::fs::read_to_string(self.run_dir.join("pid"))
            .context("the broker's pid file is missing")?;
        Ok(text.trim().parse()?)
    }

    /// Freezes the broker: connections stay open but nothing answers, as
    /// with a broker cut off by the network.
    pub fn freeze(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Lets a frozen broker run again.
    pub fn thaw(&self) -> Result<()> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self.pid()?;
        // SAFETY: plain kill(2) on the pid of the broker this harness started.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.thaw();
        let _ = self.command().arg("stop").output();
    }
}
