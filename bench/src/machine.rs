//! What the figures were measured on: the machine and the broker.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The machine a run used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `MemTotal` from /proc/meminfo.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// `git describe --always --dirty` of the working directory, if any.
    pub git_revision: String,
}

impl Machine {
    /// Reads /proc and asks git; anything unreadable stays empty.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let git_revision = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            memory_bytes,
            kernel,
            git_revision,
        }
    }
}

/// The broker a run used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerInfo {
    /// `tansu`, `docker`, `kafka-env`, or `unknown`.
    pub kind: String,
    /// e.g. `tansu 0.6.0`.
    pub version: String,
    /// Bootstrap address.
    pub address: String,
}

impl BrokerInfo {
    /// From the `kind` and `version` files `scripts/broker.sh` keeps in its
    /// run directory, when given.
    pub fn from_run_dir(run_dir: Option<&Path>, address: &str) -> BrokerInfo {
        let read = |name: &str| {
            run_dir
                .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        BrokerInfo {
            kind: read("kind").unwrap_or_else(|| "unknown".into()),
            version: read("version").unwrap_or_else(|| "unknown".into()),
            address: address.to_string(),
        }
    }
}
