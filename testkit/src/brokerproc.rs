//! Broker processes (Kafka's JVM, Nisshi): [`BrokerProc`], the part of
//! their guards that [`Kafka`](crate::Kafka) and [`Nisshi`](crate::Nisshi)
//! share, and stopping them by pid.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::clients::{Existing, create_topic};
use crate::settings::Replication;

/// How long a broker process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the thread that started it ends: the tests' brokers.
    Thread,
    /// In a session of its own, until stopped: `scripts/broker.sh`'s.
    Detached,
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
    /// The longest wait for it to serve.
    timeout: Duration,
}

impl BrokerProc {
    pub(crate) fn new(
        what: &'static str,
        bootstrap: String,
        dir: &Path,
        (grace, timeout): (Duration, Duration),
    ) -> BrokerProc {
        let (dir, temp, child) = (dir.to_path_buf(), None, None);
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

    /// Starts the process `cmd()` makes, without waiting.
    pub(crate) fn launch(
        &mut self,
        lifetime: Lifetime,
        cmd: impl FnOnce() -> Result<Command>,
    ) -> Result<()> {
        if self.child.is_some() {
            bail!("the broker is running");
        }
        let mut cmd = cmd()?;
        // SAFETY: prctl and setsid are async-signal-safe; they only ask the
        // kernel for a death signal or a session, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                match lifetime {
                    Lifetime::Thread => libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL),
                    Lifetime::Detached => libc::setsid(),
                };
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", self.what))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `ready()` holds and its address takes a connection;
    /// fails (killing it) with the end of its `logs` when it exits first or
    /// the timeout passes.
    pub(crate) fn wait_serving(
        &mut self,
        mut ready: impl FnMut() -> bool,
        logs: &[PathBuf],
    ) -> Result<()> {
        let child = self.child.as_mut().context("the broker was not launched")?;
        let deadline = Instant::now() + self.timeout;
        while !(ready() && std::net::TcpStream::connect(&self.bootstrap).is_ok()) {
            let why = match child.try_wait()? {
                Some(status) => format!("exited ({status}) before serving clients"),
                None if Instant::now() >= deadline => {
                    format!("did not start within {:?}", self.timeout)
                }
                None => {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            self.kill()?;
            let tail = |f: &PathBuf| {
                let text = fs::read_to_string(f).unwrap_or_default();
                let last = crate::last_lines(&text, 15);
                format!("last lines of {}:\n{last}\n", f.display())
            };
            let tails: String = logs.iter().map(tail).collect();
            bail!("{} {why}; {tails}", self.what);
        }
        Ok(())
    }

    /// Lets the process run on after this guard; returns its pid.
    pub(crate) fn detach(&mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Creates `topic` (one replica) and waits for its leaders.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let (one, same) = (Replication::for_nodes(1), Existing::SamePartitions);
        create_topic(&self.bootstrap, topic, partitions, one, same).map(drop)
    }

    /// SIGTERM (a controlled shutdown), SIGKILL after the grace period.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(child.id(), self.grace, self.what);
            child.wait()?;
        }
        Ok(())
    }

    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A broker that can be stopped (SIGTERM) and started again on its data.
pub trait Restartable: crate::Broker {
    fn stop(&mut self) -> Result<()>;
    fn restart(&mut self) -> Result<()>;
}

/// `Deref` and `DerefMut` of a broker guard (a struct with a `proc:
/// BrokerProc` field and a `restart`) to its [`BrokerProc`], its
/// [`crate::Broker`] and [`Restartable`].
macro_rules! broker_guard {
    ($guard:ty) => {
        impl $crate::brokerproc::Restartable for $guard {
            fn stop(&mut self) -> anyhow::Result<()> {
                self.proc.stop()
            }

            fn restart(&mut self) -> anyhow::Result<()> {
                <$guard>::restart(self)
            }
        }
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

/// Creates `dir` and returns it absolute (a broker runs in it).
pub(crate) fn created(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    dir.canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))
}

/// SIGTERM to `pid`, SIGKILL after `grace`; returns once it is gone.
pub(crate) fn terminate(pid: u32, grace: Duration, what: &str) {
    signal(pid, libc::SIGTERM);
    if !wait_gone(pid, grace) {
        eprintln!("{what} did not exit within {grace:?} of SIGTERM; sending SIGKILL");
        kill9(pid);
    }
}

pub(crate) fn kill9(pid: u32) {
    signal(pid, libc::SIGKILL);
    wait_gone(pid, Duration::from_secs(30));
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a broker this harness started: its child, or a
    // pid checked by RunDir::live_pid.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    true
}

pub(crate) fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
