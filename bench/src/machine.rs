//! What the figures were measured on: the machine and the broker, and the
//! broker process's CPU and memory while each step ran.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procfs::Current as _;
use procfs::process::Process;
use serde::{Deserialize, Serialize};

use crate::phase::sampler::{Lags, Sampler};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub kernel: String,
    /// `git describe --always --dirty` of the working directory, if any.
    pub git_revision: String,
}

impl Machine {
    /// Reads /proc and asks git; anything unreadable stays empty.
    pub fn probe() -> Machine {
        let cpu_model = procfs::CpuInfo::current()
            .ok()
            .and_then(|c| c.model_name(0).map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = procfs::Meminfo::current().map_or(0, |m| m.mem_total);
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

/// The broker a run used, as `scripts/broker.sh` describes it in its run
/// directory (files `kind`, `version`, `address`, `heap`, `pid`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// `kafka`, `nisshi` (the embedded Rust broker), `docker`, `kafka-env`
    /// or `unknown`.
    pub kind: String,
    pub version: String,
    pub address: String,
    /// A local Apache Kafka's JVM heap options.
    pub heap: Option<String>,
    /// For the local kinds.
    pub pid: Option<u32>,
}

impl BrokerInfo {
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
            address: read("address").unwrap_or_else(|| address.to_string()),
            heap: read("heap"),
            pid: read("pid").and_then(|p| p.parse().ok()),
        }
    }
}

/// What one process used over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcUsage {
    pub cpu_seconds: f64,
    /// The highest `VmRSS` sampled (every 100 ms).
    pub max_rss_bytes: u64,
    /// `VmHWM` at the end: the peak over the process's whole life.
    pub hwm_bytes: u64,
}

/// A process's CPU and memory, sampled from `/proc` every 100 ms while a
/// step runs.
pub struct ProcSampler {
    pid: u32,
    /// Read before the sampler thread runs (it may start late).
    cpu_at_start: f64,
    sampler: Sampler,
}

impl ProcSampler {
    pub fn start(pid: u32) -> Option<ProcSampler> {
        let cpu_at_start = cpu_seconds(pid)?;
        let tracked = Arc::new(Mutex::new(vec![(String::new(), pid)]));
        let every = Duration::from_millis(100);
        let sampler = Sampler::start(Instant::now(), every, tracked, Lags::default());
        Some(ProcSampler {
            pid,
            cpu_at_start,
            sampler,
        })
    }

    pub fn finish(self) -> Option<ProcUsage> {
        let samples = self.sampler.finish();
        let points = samples.iter().flat_map(|s| &s.procs);
        Some(ProcUsage {
            cpu_seconds: cpu_seconds(self.pid)? - self.cpu_at_start,
            max_rss_bytes: points.map(|p| p.rss_bytes).max().unwrap_or(0),
            hwm_bytes: memory(self.pid)?.1,
        })
    }
}

/// User + system CPU of `pid` so far (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = Process::new(pid as i32).ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// `VmRSS` and `VmHWM` of `pid` (`/proc/PID/status`), in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = Process::new(pid as i32).ok()?.status().ok()?;
    Some((status.vmrss? * 1024, status.vmhwm? * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let none = BrokerInfo::from_run_dir(None, "h:1");
        assert_eq!(
            (none.kind.as_str(), none.address.as_str()),
            ("unknown", "h:1")
        );
        assert_eq!((none.heap, none.pid), (None, None));
        for (f, v) in [
            ("kind", "kafka\n"),
            ("version", "Apache Kafka 4.3.1\n"),
            ("heap", "-Xms1g -Xmx1g\n"),
            ("pid", "4242\n"),
        ] {
            std::fs::write(dir.path().join(f), v).unwrap();
        }
        let b = BrokerInfo::from_run_dir(Some(dir.path()), "h:1");
        assert_eq!(b.kind, "kafka");
        assert_eq!(b.version, "Apache Kafka 4.3.1");
        assert_eq!(b.heap.as_deref(), Some("-Xms1g -Xmx1g"));
        assert_eq!(b.pid, Some(4242));
        assert_eq!(b.address, "h:1");
    }

    /// This test process, sampled while it burns some CPU.
    #[test]
    fn a_process_is_sampled() {
        let pid = std::process::id();
        let sampler = ProcSampler::start(pid).unwrap();
        let start = cpu_seconds(pid).unwrap();
        let mut x = 0u64;
        while cpu_seconds(pid).unwrap() < start + 0.05 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let u = sampler.finish().unwrap();
        assert!(u.cpu_seconds > 0.0, "{u:?}");
        assert!(
            u.max_rss_bytes > 0 && u.hwm_bytes >= u.max_rss_bytes,
            "{u:?}"
        );
        assert!(ProcSampler::start(u32::MAX).is_none());
    }
}
