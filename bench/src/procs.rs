//! Running the pipeline's binaries as child processes: their output goes to
//! a log file in the run directory and, prefixed with their name, to our
//! stderr, so the person watching sees their progress lines live.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A child process whose output is being copied.
pub struct Running {
    name: String,
    child: Child,
    copiers: Vec<JoinHandle<()>>,
    log: PathBuf,
    started: Instant,
}

/// How a child ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its name in the logs (`pull`, `producer`, ...).
    pub name: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Seconds from spawn to exit.
    pub seconds: f64,
    /// Its log file.
    pub log: PathBuf,
    /// Killed because it overran its time limit.
    pub timed_out: bool,
}

impl Finished {
    /// Exit code, or 128 + signal number.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .or_else(|| self.status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }

    /// Exited 0 within its time limit.
    pub fn ok(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// A one-line description of a failure, pointing at the log.
    pub fn failure(&self) -> String {
        if self.timed_out {
            format!(
                "{} did not finish in time and was stopped (log: {})",
                self.name,
                self.log.display()
            )
        } else {
            format!(
                "{} exited with status {} (log: {})",
                self.name,
                self.code(),
                self.log.display()
            )
        }
    }
}

/// Starts `program args...`, copying stdout and stderr to `log` and, line
/// by line with a `[name]` prefix, to our stderr.
pub fn spawn(name: &str, program: &Path, args: &[OsString], log: &Path) -> anyhow::Result<Running> {
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let file = Arc::new(Mutex::new(file));
    {
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "$ {} {}", program.display(), shell_words(args));
    }
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(copy_lines(name, out, Arc::clone(&file)));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(copy_lines(name, err, Arc::clone(&file)));
    }
    Ok(Running {
        name: name.to_string(),
        child,
        copiers,
        log: log.to_path_buf(),
        started: Instant::now(),
    })
}

fn copy_lines<R: Read + Send + 'static>(
    name: &str,
    from: R,
    log: Arc<Mutex<File>>,
) -> JoinHandle<()> {
    let prefix = format!("  [{name}] ");
    std::thread::spawn(move || {
        let reader = BufReader::new(from);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            // Progress bars redraw with \r; keep the last state only.
            let text = text.rsplit('\r').next().unwrap_or_default();
            {
                let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "{text}");
            }
            eprintln!("{prefix}{text}");
        }
    })
}

fn shell_words(args: &[OsString]) -> String {
    args.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", s.replace('\'', "'\\''"))
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it has exited already (without reaping the output copiers).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits up to `limit` from its start; past it, asks the child to stop
    /// (SIGTERM, so it still writes its stats), then kills it 10 s later.
    pub fn wait(self, limit: Duration) -> anyhow::Result<Finished> {
        let deadline = self.started + limit;
        self.wait_until(deadline, Some(limit))
    }

    fn wait_until(
        mut self,
        deadline: Instant,
        limit: Option<Duration>,
    ) -> anyhow::Result<Finished> {
        let mut terminated_at: Option<Instant> = None;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            let now = Instant::now();
            match terminated_at {
                None if now >= deadline => {
                    if let Some(limit) = limit {
                        eprintln!(
                            "bench: {} still runs after {:.0}s; sending SIGTERM",
                            self.name,
                            limit.as_secs_f64()
                        );
                    }
                    terminate(self.child.id());
                    terminated_at = Some(now);
                }
                Some(t) if now >= t + Duration::from_secs(10) => {
                    let _ = self.child.kill();
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for c in self.copiers.drain(..) {
            let _ = c.join();
        }
        Ok(Finished {
            name: self.name.clone(),
            status,
            seconds: self.started.elapsed().as_secs_f64(),
            log: self.log.clone(),
            timed_out: limit.is_some() && terminated_at.is_some(),
        })
    }

    /// Stops the child now (SIGTERM, then SIGKILL after 10 s) and reaps it.
    pub fn stop(self) -> anyhow::Result<Finished> {
        self.wait_until(Instant::now(), None)
    }
}

/// Sends SIGTERM to one process (ours, by pid).
fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Runs to completion with a time limit.
pub fn run(
    name: &str,
    program: &Path,
    args: &[OsString],
    log: &Path,
    limit: Duration,
) -> anyhow::Result<Finished> {
    spawn(name, program, args, log)?.wait(limit)
}
