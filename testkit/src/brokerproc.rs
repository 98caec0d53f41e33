//! Broker processes (Apache Kafka's JVM, Nisshi): how long they live,
//! waiting until they serve, stopping and killing them, and [`BrokerProc`],
//! the part of their guards that [`Kafka`](crate::Kafka) and
//! [`Nisshi`](crate::Nisshi) share.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Stops a broker process as an operator would: SIGTERM, then waits for it
/// to exit, with SIGKILL after `grace`. Does nothing for `None`.
pub fn terminate(child: Option<Child>, grace: Duration) -> Result<()> {
    if let Some(mut child) = child {
        // SAFETY: plain kill(2) on a process this harness started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                child.kill()?;
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        child.wait()?;
    }
    Ok(())
}

/// `kill -9` of a broker process, and reaps it. Does nothing for `None`.
pub fn kill9(child: Option<Child>) -> Result<()> {
    if let Some(mut child) = child {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}

/// Waits until a broker process just started serves clients: `ready()`
/// holds and `address` takes a TCP connection. Fails (killing the process
/// when it is still running) when it exits first or `timeout` passes;
/// `what` names it and `log_tail()` says why.
pub fn wait_until_serving(
    child: &mut Child,
    address: &str,
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
    log_tail: impl Fn() -> String,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() && std::net::TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited ({status}) before serving clients; {}",
                log_tail()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not start within {timeout:?}; {}", log_tail());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Makes the process `cmd` starts die (SIGKILL) when the thread that
/// started it ends, so that no broker outlives a test process that dies
/// without dropping its guard.
pub fn die_with_parent_thread(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; it only asks the kernel for the
    // signal, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// How long a broker process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the thread that started it ends ([`die_with_parent_thread`]):
    /// the tests' brokers.
    Thread,
    /// On its own, in a session of its own, until stopped: the brokers of
    /// `scripts/broker.sh`, which outlive the command that started them.
    Detached,
}

impl Lifetime {
    /// Sets `cmd` up to start a process that lives this long.
    pub fn apply(self, cmd: &mut Command) {
        match self {
            Lifetime::Thread => die_with_parent_thread(cmd),
            Lifetime::Detached => {
                use std::os::unix::process::CommandExt;
                // SAFETY: setsid is async-signal-safe; between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::setsid();
                        Ok(())
                    });
                }
            }
        }
    }
}

/// One broker process, its address and its directory; killed on drop.
pub struct BrokerProc {
    pub(crate) bootstrap: String,
    pub(crate) dir: PathBuf,
    pub(crate) temp: Option<tempfile::TempDir>,
    child: Option<Child>,
    what: &'static str,
    /// How long [`BrokerProc::stop`] waits before SIGKILL.
    grace: Duration,
    /// The longest wait for it to serve clients.
    timeout: Duration,
}

impl BrokerProc {
    pub(crate) fn new(
        what: &'static str,
        bootstrap: String,
        dir: &Path,
        temp: Option<tempfile::TempDir>,
        (grace, timeout): (Duration, Duration),
    ) -> BrokerProc {
        let dir = dir.to_path_buf();
        let child = None;
        BrokerProc {
            bootstrap,
            dir,
            temp,
            child,
            what,
            grace,
            timeout,
        }
    }

    /// Starts the process `cmd()` makes, to live as `lifetime` says,
    /// without waiting.
    pub(crate) fn launch(
        &mut self,
        lifetime: Lifetime,
        cmd: impl FnOnce() -> Result<Command>,
    ) -> Result<()> {
        if self.child.is_some() {
            bail!("the broker is running");
        }
        let mut cmd = cmd()?;
        lifetime.apply(&mut cmd);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("start {}", self.what))?,
        );
        Ok(())
    }

    /// Waits until the launched process serves clients (and `ready()`
    /// holds); kills it on failure, saying why from `log_tail()`.
    pub(crate) fn wait_serving(
        &mut self,
        ready: impl FnMut() -> bool,
        log_tail: impl Fn() -> String,
    ) -> Result<()> {
        let mut child = self.child.take().context("the broker was not launched")?;
        wait_until_serving(
            &mut child,
            &self.bootstrap,
            self.timeout,
            self.what,
            ready,
            log_tail,
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// Lets the process run on after this guard (and the process) is
    /// gone; returns its process id.
    pub(crate) fn detach(&mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    /// The PLAINTEXT bootstrap address, `host:port`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it runs (started and not stopped or killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Creates `topic` with `partitions` partitions (one replica) and waits
    /// until its leaders are known.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        crate::topics::create_topic(&self.bootstrap, topic, partitions)
    }

    /// Stops it as an operator would (SIGTERM: a controlled shutdown),
    /// keeping its log; SIGKILL after the grace period.
    pub fn stop(&mut self) -> Result<()> {
        terminate(self.child.take(), self.grace)
    }

    /// `kill -9`, keeping its log.
    pub fn kill(&mut self) -> Result<()> {
        kill9(self.child.take())
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `Deref` and `DerefMut` of a broker guard (a struct with a `proc:
/// BrokerProc` field) to its [`BrokerProc`], and its [`crate::Broker`].
macro_rules! broker_guard {
    ($guard:ty) => {
        impl std::ops::Deref for $guard {
            type Target = $crate::brokerproc::BrokerProc;
            fn deref(&self) -> &Self::Target {
                &self.proc
            }
        }

        impl std::ops::DerefMut for $guard {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.proc
            }
        }

        impl $crate::Broker for $guard {
            fn bootstrap(&self) -> &str {
                &self.proc.bootstrap
            }

            fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
                self.proc.create_topic(topic, partitions)
            }
        }
    };
}
pub(crate) use broker_guard;

/// Creates `dir` and returns it absolute: a broker runs in its directory
/// and reads its paths from there.
pub(crate) fn created(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    dir.canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))
}

/// The last 15 lines of each of `files`, for error messages.
pub(crate) fn tail(files: &[PathBuf]) -> String {
    let mut text = String::new();
    for file in files {
        let body = fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<&str> = body.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        text.push_str(&format!("last lines of {}:\n{tail}\n", file.display()));
    }
    text
}
