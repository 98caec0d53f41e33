//! The run directory of `scripts/broker.sh`: one small file per fact, read
//! by later commands, `bench` and people; and a lock, so that parallel
//! callers never start two brokers.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::brokerproc::is_zombie;

/// A run directory, locked while the value lives (see [`RunDir::lock`]).
pub struct RunDir {
    dir: PathBuf,
    _lock: Option<File>,
}

impl RunDir {
    /// Unlocked: enough to read it.
    pub fn open(dir: &Path) -> RunDir {
        RunDir {
            dir: dir.to_path_buf(),
            _lock: None,
        }
    }

    /// Created if need be and locked (`flock`) until dropped.
    pub fn lock(dir: &Path) -> Result<RunDir> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let file = File::create(dir.join("lock"))?;
        // SAFETY: flock(2) on a descriptor this value owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).context("lock the run directory");
        }
        Ok(RunDir {
            dir: dir.to_path_buf(),
            _lock: Some(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file `name`, trimmed; `None` when missing or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        let path = self.dir.join(name);
        fs::write(&path, format!("{value}\n")).with_context(|| format!("write {}", path.display()))
    }

    pub fn remove(&self, name: &str) {
        let _ = fs::remove_file(self.dir.join(name));
    }

    /// The pid in the file `name`, when it runs and its command line
    /// contains `marker` (a recycled pid is not ours).
    pub fn live_pid(&self, name: &str, marker: &str) -> Option<u32> {
        let pid: u32 = self.get(name)?.parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let alive = String::from_utf8_lossy(&cmdline).contains(marker) && !is_zombie(pid);
        alive.then_some(pid)
    }
}

/// Whether a TCP connection to one of the comma-separated `addresses`
/// (`host:port`, `PLAINTEXT://host:port`) succeeds within 2 s.
pub fn answers(addresses: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    addresses.split(',').any(|a| {
        let a = a.trim();
        let a = a.split_once("://").map_or(a, |(_, rest)| rest);
        let default_port = if a.contains(':') { "" } else { ":9092" };
        format!("{a}{default_port}")
            .to_socket_addrs()
            .is_ok_and(|mut addrs| {
                addrs.any(|sa| TcpStream::connect_timeout(&sa, Duration::from_secs(2)).is_ok())
            })
    })
}
