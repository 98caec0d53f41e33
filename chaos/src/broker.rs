//! The broker of a scenario: a private Tansu driven through
//! `scripts/broker.sh` (in-memory storage, its own port and run directory),
//! or librdkafka's mock cluster hosted by the harness.
//!
//! Tansu 0.6.0's in-memory engine cannot serve a fetch that starts inside a
//! record batch (it returns only the batches whose base offset is at or
//! after the requested offset), so a consumer that resumes mid-batch, as
//! every restart after `kill -9` does, would wait forever or skip the rest
//! of the batch. Apache Kafka and the mock cluster return the batch that
//! holds the offset. The scenarios that restart consumers therefore use the
//! mock cluster, which can also take its broker down and up again.
//!
//! Tansu can be frozen (SIGSTOP) to make it unreachable without losing the
//! topic's data, and thawed again (SIGCONT).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// The mock cluster keeps at most 5 MiB per partition and silently drops
/// older data (DESIGN.md): the topic gets enough partitions to hold this
/// many events each, whatever was asked for.
const MOCK_EVENTS_PER_PARTITION: u64 = 25_000;

/// librdkafka's mock cluster, one broker, hosted by this process.
pub struct Mock {
    /// `host:port`.
    pub bootstrap: String,
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Mock {
    /// A one-broker mock cluster.
    pub fn start() -> Result<Mock> {
        let cluster = MockCluster::new(1)?;
        Ok(Mock {
            bootstrap: cluster.bootstrap_servers(),
            cluster,
        })
    }

    /// Creates `topic` for `events` events: at least `partitions`
    /// partitions, more when needed to stay under the mock's per-partition
    /// limit. Returns the number of partitions.
    pub fn topic(&self, topic: &str, partitions: i32, events: u64) -> Result<i32> {
        let needed = events.div_ceil(MOCK_EVENTS_PER_PARTITION) as i32;
        let partitions = partitions.max(needed);
        self.cluster.create_topic(topic, partitions, 1)?;
        Ok(partitions)
    }

    /// Takes the broker down: connections are closed and refused.
    pub fn down(&self) -> Result<()> {
        Ok(self.cluster.broker_down(1)?)
    }

    /// Brings the broker back.
    pub fn up(&self) -> Result<()> {
        Ok(self.cluster.broker_up(1)?)
    }
}

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
