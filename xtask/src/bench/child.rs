//! The processes the bench starts (tracer, peers, storms, markers).
//!
//! Each runs in a process group of its own, so a Ctrl-C on the terminal reaches only
//! xtask, which then stops them itself; and each is killed with its whole group when its
//! [`Child`] is dropped, so an error, a panic or Ctrl-C leaves no tracer, peer or storm
//! worker behind.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How often waits look at the clock, the child and the interrupt flag.
pub const POLL: Duration = Duration::from_millis(20);

/// Makes SIGINT, SIGTERM and SIGHUP set a flag that every wait of the bench checks, so
/// the bench unwinds (dropping, and so killing, its children) instead of dying with them
/// still running.
pub fn catch_interrupts() {
    extern "C" fn on_signal(_signal: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler) };
    }
}

/// Fails once an interrupt arrived.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted: stopped the tracer, the peers and the storm");
    }
    Ok(())
}

/// Sleeps `d`, in steps, failing early on an interrupt.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        thread::sleep(POLL.min(end - now));
    }
}

/// A started process, killed with its process group when dropped before it was reaped.
pub struct Child {
    inner: std::process::Child,
    name: String,
    status: Option<ExitStatus>,
}

impl Child {
    /// Starts `command` in a new process group; `name` is used in messages.
    pub fn spawn(command: &mut Command, name: &str) -> Result<Child> {
        command.process_group(0);
        let inner = command
            .spawn()
            .with_context(|| format!("could not start {name}: `{}`", cmd::show(command)))?;
        Ok(Child {
            inner,
            name: name.to_string(),
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if it has ended (reaping it), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .inner
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.status)
    }

    /// Waits up to `limit` for it to end; `None` if it still runs then.
    pub fn wait_for(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            check_interrupted()?;
            if Instant::now() >= end {
                return Ok(None);
            }
            thread::sleep(POLL);
        }
    }

    /// Sends SIGINT (how a user stops a tracer) and waits up to `grace` for it to end,
    /// then kills its group. Returns how it ended and whether it had to be killed.
    pub fn stop(&mut self, grace: Duration) -> Result<(ExitStatus, bool)> {
        if let Some(status) = self.try_wait()? {
            return Ok((status, false));
        }
        self.signal(libc::SIGINT);
        if let Some(status) = self.wait_for(grace)? {
            return Ok((status, false));
        }
        self.kill_group();
        let status = self
            .inner
            .wait()
            .with_context(|| format!("waiting for {}", self.name))?;
        self.status = Some(status);
        Ok((status, true))
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on a child this process has not reaped yet.
        unsafe { libc::kill(self.inner.id() as libc::pid_t, signal) };
    }

    /// SIGKILL to every process of its group (the storm's workers and their children too).
    pub fn kill_group(&self) {
        // The group id is the child's pid; while the child is not reaped that id cannot
        // have been reused, and workers still alive keep the group alive.
        // SAFETY: plain kill(2) on a process group.
        unsafe { libc::kill(-(self.inner.id() as libc::pid_t), libc::SIGKILL) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill_group();
            let _ = self.inner.wait();
        }
    }
}

/// "exit 3" or "signal 9", for messages.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}
