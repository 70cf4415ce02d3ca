//! Test helpers shared by the /proc checks of [`super::recheck`] and
//! [`super::zombies`]: events of a process that is not in /proc.

use crate::event::{Comm, EventKind, Fork, Task};

/// A process that is not in /proc: pid_max is at most 2^22.
pub const GONE: u32 = 3_000_000_000;
pub const S: u64 = 1_000_000_000;

/// The task of `pid`, a child of pid 1 started at `start_ns`.
pub fn task(pid: u32, start_ns: u64) -> Task {
    Task {
        pid,
        tid: pid,
        ppid: 1,
        start_ns,
        uid: 0,
        cgroup_id: 0,
        comm: Comm::new(b"gone"),
        subreaper: false,
    }
}

/// A fork by pid 1 (clone_flags 17: SIGCHLD, a new process).
pub fn fork_by_init() -> EventKind {
    EventKind::Fork(Fork {
        clone_flags: 17,
        parent_start_ns: 0,
        creator_pid: 1,
        creator_tid: 1,
    })
}
