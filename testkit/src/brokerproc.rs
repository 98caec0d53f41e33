//! Broker processes (Apache Kafka's JVM, Nisshi): how long they live,
//! waiting until they serve, stopping and killing them.

use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

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
