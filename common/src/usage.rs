//! CPU time and peak memory of this process, from `getrusage`, as the
//! benchmark reports them.

/// Resource usage of the calling process so far.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ResourceUsage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size in bytes.
    pub max_rss_bytes: u64,
}

impl ResourceUsage {
    /// Reads `getrusage(RUSAGE_SELF)`.
    pub fn now() -> ResourceUsage {
        // SAFETY: getrusage only writes into the zeroed struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        if rc != 0 {
            return ResourceUsage {
                cpu_seconds: 0.0,
                max_rss_bytes: 0,
            };
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        ResourceUsage {
            cpu_seconds: tv(ru.ru_utime) + tv(ru.ru_stime),
            // Linux reports ru_maxrss in KiB, and carries it over exec from
            // the parent's address space: a consumer spawned by a 500 MiB
            // orchestrator would report 500 MiB. VmHWM belongs to this
            // process's own memory map.
            max_rss_bytes: vm_hwm_bytes().unwrap_or((ru.ru_maxrss.max(0) as u64) * 1024),
        }
    }
}

/// Peak resident set size of this process's own address space (`VmHWM` in
/// /proc/self/status), where the kernel has it.
fn vm_hwm_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the chaos suite: consumers spawned by the harness (holding
    /// the expected totals of 1M events) all reported the harness's peak
    /// RSS as their own. Re-runs this test binary as a child from a parent
    /// that holds 400 MiB; the child must report its own, small, peak.
    #[test]
    fn peak_rss_is_not_inherited_from_the_parent() {
        if std::env::var_os("USAGE_TEST_CHILD").is_some() {
            println!("CHILD_MAX_RSS={}", ResourceUsage::now().max_rss_bytes);
            return;
        }
        if !std::path::Path::new("/proc/self/status").exists() {
            eprintln!("SKIPPED: no /proc/self/status on this system");
            return;
        }
        let mut ballast = vec![0u8; 400 << 20];
        for i in (0..ballast.len()).step_by(4096) {
            ballast[i] = 1;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "usage::tests::peak_rss_is_not_inherited_from_the_parent",
                "--nocapture",
            ])
            .env("USAGE_TEST_CHILD", "1")
            .output()
            .unwrap();
        std::hint::black_box(&ballast);
        let text = String::from_utf8_lossy(&out.stdout);
        let child: u64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("CHILD_MAX_RSS="))
            .unwrap_or_else(|| panic!("no figure from the child: {text}"))
            .parse()
            .unwrap();
        assert!(
            child < 200 << 20,
            "child reports {} MiB, the parent's 400 MiB leaked in",
            child >> 20
        );
        assert!(ResourceUsage::now().max_rss_bytes >= 400 << 20);
    }
}
