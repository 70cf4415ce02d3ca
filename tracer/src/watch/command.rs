//! `watch -- COMMAND`: running the command and reaping its process tree.

use std::{ffi::OsString, io, os::unix::process::CommandExt, process::Command};

use anyhow::{Context, bail};

/// The command tracer started, and how it ended.
pub struct Spawned {
    pub pid: u32,
    /// Wait status once reaped.
    pub status: Option<i32>,
    /// waitpid(-1) said there are no children left: the command and every orphan
    /// of its tree (all reparented to us, the subreaper) are gone.
    pub tree_gone: bool,
}

/// Makes this process the child subreaper of everything it starts, then starts
/// `argv`. Orphans of the command's tree are then reparented to tracer rather
/// than to init (kernel/exit.c find_new_reaper), so tracer can tell when the
/// last of them is gone and they are reaped even where pid 1 does not reap.
pub fn spawn(argv: &[OsString]) -> anyhow::Result<Spawned> {
    let Some((prog, args)) = argv.split_first() else {
        bail!("no command given after --")
    };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error()).context("prctl(PR_SET_CHILD_SUBREAPER)");
    }
    let mut cmd = Command::new(prog);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // The child should get default SIGINT/SIGTERM handling, not tokio's.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot run {:?}: check the command name and PATH", prog))?;
    let pid = child.id();
    // We reap by waitpid(-1) ourselves (see `reap`); the std handle is not needed.
    drop(child);
    Ok(Spawned {
        pid,
        status: None,
        tree_gone: false,
    })
}

impl Spawned {
    /// Reaps every child that has ended (the command and adopted orphans), without
    /// blocking. Each reap is also seen by the kernel programs as a wait4.
    pub fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: plain syscall with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                if pid as u32 == self.pid {
                    self.status = Some(status);
                }
                continue;
            }
            if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                self.tree_gone = true;
            }
            return;
        }
    }

    /// The command was reaped, killed by `sig`.
    pub fn killed_by(&self, sig: i32) -> bool {
        self.status
            .is_some_and(|s| libc::WIFSIGNALED(s) && libc::WTERMSIG(s) == sig)
    }

    /// tracer's exit code for the command's wait status: its code, or 128 + signal as shells do.
    pub fn exit_code(&self) -> Option<u8> {
        let s = self.status?;
        if libc::WIFEXITED(s) {
            Some(libc::WEXITSTATUS(s) as u8)
        } else if libc::WIFSIGNALED(s) {
            Some(128u8.wrapping_add(libc::WTERMSIG(s) as u8))
        } else {
            None
        }
    }
}
