//! The benchmark's way of running a process: its output shown live, a
//! time limit after which it is asked to stop, and how it ended.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Proc;

/// How a process ended ([`Proc::finish_within`], [`Proc::stop`]).
#[derive(Debug, Clone)]
pub struct Finished {
    pub name: String,
    pub status: ExitStatus,
    /// From spawn to exit.
    pub seconds: f64,
    pub log: PathBuf,
    /// Stopped because it overran its time limit.
    pub timed_out: bool,
}

impl Finished {
    /// Exit code, or 128 + signal.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        let signal = self.status.signal().map(|s| 128 + s);
        self.status.code().or(signal).unwrap_or(-1)
    }

    /// Exited 0 within its time limit.
    pub fn ok(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// A one-line description of a failure, pointing at the log.
    pub fn failure(&self) -> String {
        let what = if self.timed_out {
            "did not finish in time and was stopped".to_string()
        } else {
            format!("exited with status {}", self.code())
        };
        format!("{} {what} (log: {})", self.name, self.log.display())
    }
}

impl Proc {
    /// Spawns `bin` in the caller's environment, its output copied to `log`
    /// (after the command line) and, `[name]`-prefixed, to our stderr.
    pub fn spawn_echoed(bin: &Path, args: &[OsString], log: &Path, name: &str) -> Result<Proc> {
        let mut file = File::create(log).with_context(|| format!("create {}", log.display()))?;
        writeln!(file, "$ {} {}", bin.display(), shell_words(args))?;
        let file = Arc::new(Mutex::new(file));
        let mut cmd = Command::new(bin);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        Proc::start(cmd, log, name, |child| {
            let out = child.stdout.take().map(|o| copy_lines(name, o, &file));
            let err = child.stderr.take().map(|e| copy_lines(name, e, &file));
            out.into_iter().chain(err).collect()
        })
    }

    /// Waits up to `limit` from its start; then SIGTERM (it still writes
    /// its stats), SIGKILL 10 s later.
    pub fn finish_within(&mut self, limit: Duration) -> Result<Finished> {
        let (status, timed_out) = self.end_by(self.started + limit, GRACE, true);
        Ok(self.finished(status, timed_out))
    }

    /// SIGTERM now, SIGKILL after 10 s.
    pub fn stop(&mut self) -> Result<Finished> {
        let (status, _) = self.end_by(Instant::now(), GRACE, false);
        Ok(self.finished(status, false))
    }

    fn finished(&self, status: ExitStatus, timed_out: bool) -> Finished {
        Finished {
            name: self.name.clone(),
            status,
            seconds: self.started.elapsed().as_secs_f64(),
            log: self.log.clone(),
            timed_out,
        }
    }
}

/// How long a process asked to stop may take before it is killed.
const GRACE: Duration = Duration::from_secs(10);

fn copy_lines<R: Read + Send + 'static>(
    name: &str,
    from: R,
    log: &Arc<Mutex<File>>,
) -> JoinHandle<()> {
    let prefix = format!("  [{name}] ");
    let log = Arc::clone(log);
    thread::spawn(move || {
        for line in BufReader::new(from).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            // Progress bars redraw with \r; keep the last state only.
            let text = text.rsplit('\r').next().unwrap_or_default();
            let _ = writeln!(log.lock().unwrap_or_else(|e| e.into_inner()), "{text}");
            eprintln!("{prefix}{text}");
        }
    })
}

fn shell_words(args: &[OsString]) -> String {
    let word = |a: &OsString| {
        let s = a.to_string_lossy();
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            format!("'{}'", s.replace('\'', "'\\''"))
        } else {
            s.into_owned()
        }
    };
    args.iter().map(word).collect::<Vec<_>>().join(" ")
}
