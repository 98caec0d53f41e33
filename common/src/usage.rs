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
            // Linux reports ru_maxrss in KiB.
            max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
        }
    }
}
