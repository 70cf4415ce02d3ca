//! Kernel events after decoding: owned, checked, and free of the wire layout.
//!
//! This is what the process model consumes. Decoding from ring-buffer bytes lives
//! in [`crate::decode`]; nothing here does I/O.

/// A task's command name (task->comm), NUL-padded as the kernel keeps it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm(pub [u8; tracer_common::COMM_LEN]);

impl Comm {
    /// Builds a comm from bytes, cut to 15 bytes as the kernel does (`__set_task_comm`).
    pub fn new(name: &[u8]) -> Self {
        let mut c = [0u8; tracer_common::COMM_LEN];
        let n = name.len().min(tracer_common::COMM_LEN - 1);
        c[..n].copy_from_slice(&name[..n]);
        Comm(c)
    }

    /// The name without its NUL padding.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The task an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    /// Thread-group id: the process.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process (real_parent->tgid) at the time of the event.
    pub ppid: u32,
    /// Process start, CLOCK_BOOTTIME ns (group leader's start_boottime).
    pub start_ns: u64,
    pub uid: u32,
    /// cgroup v2 id, 0 if unknown.
    pub cgroup_id: u64,
    pub comm: Comm,
    /// The process has PR_SET_CHILD_SUBREAPER set.
    pub subreaper: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_BOOTTIME ns.
    pub ktime_ns: u64,
    pub task: Task,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `task` is the new task; it is a thread when `task.tid != task.pid`.
    Fork(Fork),
    /// `task` is the process after exec (its tid is the tgid).
    Exec(Exec),
    ExecFailed(ExecFailed),
    /// `task` is the exiting thread; `group_dead` says the whole process is dead.
    Exit(Exit),
    /// `task` is the reaper thread.
    Wait(Wait),
    /// `task` is a freed thread-group leader: the process is gone, reaped or not.
    Free,
    /// `task` tried to create a process or thread and the syscall failed.
    ForkFailed(ForkFailed),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForkFailed {
    /// Positive errno.
    pub errno: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fork {
    /// clone flags, 0 if unknown.
    pub clone_flags: u64,
    /// Start of the parent process (`task.ppid`).
    pub parent_start_ns: u64,
    /// The process and thread that called fork/clone.
    pub creator_pid: u32,
    pub creator_tid: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exec {
    /// Thread id before exec; differs from `task.tid` when a non-leader thread exec'd.
    pub old_tid: u32,
    pub filename: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub argv_truncated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecFailed {
    pub filename: Vec<u8>,
    /// Positive errno.
    pub errno: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    /// Wait status (see [`crate::event::ExitStatus`]).
    pub status: u32,
    /// The last thread exited: the process is dead.
    pub group_dead: bool,
    /// The kernel releases it without a wait() (parent ignores SIGCHLD).
    pub autoreap: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wait {
    /// The pid wait4/waitid returned, in the reaper's pid namespace; 0 when the
    /// kernel did not say (waitid with a NULL `infop`).
    pub child_pid: u32,
    /// waitid's options (`tracer_common::wait_options`); 0 for wait4.
    pub options: u32,
}

/// A wait status taken apart as WIFEXITED/WTERMSIG/WCOREDUMP do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// 0-255 when the process exited by itself.
    pub code: Option<u8>,
    /// The signal that killed it.
    pub signal: Option<u8>,
    pub core_dumped: bool,
}

impl ExitStatus {
    pub fn from_wait_status(status: u32) -> Self {
        let sig = (status & 0x7f) as u8;
        if sig == 0 {
            ExitStatus {
                code: Some(((status >> 8) & 0xff) as u8),
                signal: None,
                core_dumped: false,
            }
        } else {
            ExitStatus {
                code: None,
                signal: Some(sig),
                core_dumped: status & 0x80 != 0,
            }
        }
    }
}
