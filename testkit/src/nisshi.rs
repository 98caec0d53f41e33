//! Nisshi, the embedded Rust broker, where Java is absent (`chaos --broker
//! nisshi`, `scripts/broker.sh`): `nisshi broker` on a free loopback port,
//! killed when the guard is dropped; the pinned [`VERSION`], installed by
//! `broker install` (docs/brokers.md).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::brokerproc::{BrokerProc, Lifetime, broker_guard, created};
use crate::free_port;

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// What `nisshi broker` prints once it serves clients.
const READY: &str = "ready in ";

pub const VERSION: &str = "0.8.1";
/// `cargo` arguments that install it; `--ignore-rust-version`: its
/// dependency rama declares a newer rust-version than it needs.
pub const INSTALL: &[&str] = &[
    "install",
    "nisshi",
    "--version",
    VERSION,
    "--locked",
    "--ignore-rust-version",
];

/// The version `bin --version` reports.
pub fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.split_whitespace().nth(1)?.to_string()).filter(|_| out.status.success())
}

/// `$NISSHI`, else `nisshi` on `PATH`, else `~/.cargo/bin/nisshi`.
pub fn binary() -> Option<PathBuf> {
    let from_env = std::env::var_os("NISSHI").map(PathBuf::from);
    let on_path = crate::on_path("nisshi");
    let cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|d| d.join("bin/nisshi"));
    [from_env, on_path, cargo]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// The binary when a broker can be started here, else why not.
pub fn available() -> Result<PathBuf> {
    let install = format!(
        "cargo {}, ~20-45 minutes; scripts/setup.sh does it where Apache Kafka cannot be installed",
        INSTALL.join(" ")
    );
    let Some(bin) = binary() else {
        bail!("nisshi is not installed (not in $NISSHI, on PATH or in ~/.cargo/bin): {install}");
    };
    if version_of(&bin).is_none() {
        bail!("{} --version failed; reinstall: {install}", bin.display());
    }
    Ok(bin)
}

/// Where the broker keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// Fast; the topics die with the process.
    Memory,
    /// `nisshi.db` in the broker's directory: kept across a restart.
    Sqlite,
}

impl Storage {
    /// The `--storage-engine` URL, relative to the broker's directory.
    pub fn url(self) -> &'static str {
        match self {
            Storage::Memory => "memory://nisshi/",
            Storage::Sqlite => "sqlite://nisshi.db",
        }
    }
}

/// A `nisshi broker`; killed on drop. Its output is in `nisshi.log`.
pub struct Nisshi {
    proc: BrokerProc,
    storage: Storage,
    bin: PathBuf,
}

broker_guard!(Nisshi);

impl Nisshi {
    pub fn start_in_dir(dir: &Path, storage: Storage) -> Result<Nisshi> {
        let dir = created(dir)?;
        let address = format!("127.0.0.1:{}", free_port());
        let mut nisshi = Nisshi::new(&dir, &address, storage)?;
        nisshi.restart()?;
        Ok(nisshi)
    }

    /// A broker that runs on after this process; returns its pid.
    pub(crate) fn start_detached(dir: &Path, address: &str, storage: Storage) -> Result<u32> {
        let mut nisshi = Nisshi::new(dir, address, storage)?;
        nisshi.spawn_as(Lifetime::Detached)?;
        Ok(nisshi.detach().unwrap_or_default())
    }

    fn new(dir: &Path, address: &str, storage: Storage) -> Result<Nisshi> {
        // SIGKILL 10 s after SIGTERM: Nisshi 0.8.1 takes ~2 s idle, ~6 s
        // with clients connected.
        let times = (Duration::from_secs(10), START_TIMEOUT);
        Ok(Nisshi {
            proc: BrokerProc::new("nisshi", address.to_string(), dir, times),
            storage,
            bin: available()?,
        })
    }

    /// Starts it again on the same port and storage, and waits until ready.
    pub fn restart(&mut self) -> Result<()> {
        self.spawn_as(Lifetime::Thread)
    }

    fn spawn_as(&mut self, lifetime: Lifetime) -> Result<()> {
        let dir = self.dir.clone();
        let log = dir.join("nisshi.log");
        let ready_before = fs::read_to_string(&log).map_or(0, |t| t.matches(READY).count());
        let (bin, url, storage) = (&self.bin, format!("tcp://{}", self.bootstrap), self.storage);
        self.proc.launch(lifetime, || {
            // Appended: a restart keeps what the earlier run printed.
            let mut out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .with_context(|| format!("open {}", log.display()))?;
            writeln!(out, "--- nisshi broker on {url} ---")?;
            let mut cmd = Command::new(bin);
            cmd.arg("broker")
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", storage.url()])
                // As the local Kafka's group.initial.rebalance.delay.ms=0
                // (Nisshi's default is 3 s).
                .args(["--group-initial-rebalance-delay", "0s"])
                // Its directory: where sqlite:// puts the file, and no stray
                // .env is read (Nisshi loads one from its working directory).
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            Ok(cmd)
        })?;
        let logs = [log];
        self.proc.wait_serving(
            || fs::read_to_string(&logs[0]).is_ok_and(|t| t.matches(READY).count() > ready_before),
            &logs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_a_plain_one() {
        let v = VERSION;
        let parts: Vec<&str> = v.split('.').collect();
        assert_eq!(parts.len(), 3, "{v}");
        assert!(
            parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "not a plain version: {v}"
        );
    }
}
