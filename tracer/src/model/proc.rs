//! One process as the model knows it.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::event::{Comm, ExitStatus, Task};
use crate::record::{NS_PER_TICK, ProcId};

use super::SeedProc;

/// Exec history kept per process. A program that re-execs itself in a loop (some
/// daemons do on reload) would otherwise grow a process without bound; the oldest
/// entries go first and are counted in [`Proc::execs_dropped`].
pub const EXEC_HISTORY_MAX: usize = 32;

/// One successful exec. Its filename and argv are shared with the process's
/// current image ([`Proc::filename`], [`Proc::argv`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecInfo {
    pub ktime_ns: u64,
    pub filename: Arc<[u8]>,
    pub argv: Arc<[Vec<u8>]>,
    pub argv_truncated: bool,
    /// The thread that exec'd, when it was not the leader (fs/exec.c de_thread gave it the tgid).
    pub old_tid: Option<u32>,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// When its last thread exited; `None` for a process that was already a zombie
    /// when /proc was read.
    pub ktime_ns: Option<u64>,
    /// `None` for a zombie found in /proc.
    pub status: Option<ExitStatus>,
    /// The thread whose exit ended the process: the last one, not always the leader.
    pub tid: u32,
}

/// How the process was released (its pid freed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapHow {
    /// A wait4/waitid of the reaper returned it (kernel/exit.c wait_task_zombie).
    Wait,
    /// The kernel released it at exit because its parent ignores SIGCHLD or the exit
    /// signal is none (kernel/signal.c do_notify_parent returns autoreap).
    Autoreap,
    /// Its task was freed while no wait had been seen: the reaper is inferred to be
    /// its parent at that moment, the only process that could wait for it.
    Free,
    /// No event told it: the agent found the zombie gone from /proc
    /// ([`super::Model::reaped_unseen`]); the reaper is its parent as the model
    /// knows it.
    Inferred,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReapInfo {
    pub ktime_ns: u64,
    /// The reaping process; an identifier only, it may no longer be held by the model.
    pub reaper: Option<ProcId>,
    pub reaper_pid: Option<u32>,
    pub how: ReapHow,
}

impl ReapInfo {
    pub fn autoreap(&self) -> bool {
        self.how == ReapHow::Autoreap
    }
}

/// A process. The model hands out `&Proc` only, so the fields are read-only to
/// everybody else; the bookkeeping that links the tree is private.
#[derive(Clone, Debug)]
pub struct Proc {
    pub id: ProcId,
    /// Parent pid as the kernel last reported it (or as the model reparented it).
    pub ppid: u32,
    /// Current real parent, if the model holds it. `None` for roots (parent unknown)
    /// and for released processes, which are nobody's children any more.
    pub parent: Option<ProcId>,
    /// Parent when the process was first seen: at its fork, or at the /proc scan or
    /// first event when the fork was not seen. Unlike `parent` it never changes on
    /// reparenting, so an orphan's original ancestry stays resolvable
    /// ([`super::Model::lineage`]). Always held while this process is held.
    pub creator: Option<ProcId>,
    /// Command name of the process (its leader's comm, or the comm set by exec).
    pub comm: Comm,
    pub uid: Option<u32>,
    /// cgroup v2 id, 0 if unknown.
    pub cgroup_id: u64,
    /// Exact start (CLOCK_BOOTTIME ns) when a kernel event gave it; `None` for
    /// processes only seen in /proc, whose start is `id.start_ticks` (10 ms precision).
    pub start_ns: Option<u64>,
    /// ps state letter when the process came from the /proc scan.
    pub seed_state: Option<char>,
    /// Current program: inherited from the parent at fork until the process execs.
    /// `None` if unknown. Shared (with the parent, the children forked since, the
    /// exec history), so that a fork copies no argv.
    pub filename: Option<Arc<[u8]>>,
    pub argv: Arc<[Vec<u8>]>,
    /// Execs seen, oldest first, at most [`EXEC_HISTORY_MAX`].
    pub execs: Vec<ExecInfo>,
    pub execs_dropped: u64,
    pub exit: Option<ExitInfo>,
    pub reap: Option<ReapInfo>,
    /// Set when the process was found to be gone without its end being seen (lost
    /// events): its pid was reused, or its task was freed before any exit arrived.
    /// The ktime of the event that showed it.
    pub gone_ns: Option<u64>,
    /// Events were lost while it lived (or before it was first seen, for one
    /// born before a loss): its history may miss an exec, an exit or a reap,
    /// its children may be incomplete and its parent wrong. Never cleared.
    pub uncertain: bool,
    /// PR_SET_CHILD_SUBREAPER, as last reported by an event (unknown from /proc: false).
    pub subreaper: bool,
    /// Part of what `-p` / `-- COMMAND` follows.
    pub followed: bool,
    /// Thread ids other than the leader's that are alive, as far as thread events
    /// tell (only sent with `--threads`).
    pub threads: BTreeSet<u32>,
    /// Current children (by `parent`).
    pub(super) children: BTreeSet<ProcId>,
    /// Held processes whose `creator` is this one: while non-zero this process is kept.
    pub(super) created: usize,
}

impl Proc {
    pub(super) fn from_task(id: ProcId, task: &Task) -> Self {
        Proc {
            id,
            ppid: task.ppid,
            parent: None,
            creator: None,
            comm: task.comm,
            uid: Some(task.uid),
            cgroup_id: task.cgroup_id,
            start_ns: (task.start_ns != 0).then_some(task.start_ns),
            seed_state: None,
            filename: None,
            argv: Arc::new([]),
            execs: Vec::new(),
            execs_dropped: 0,
            exit: None,
            reap: None,
            gone_ns: None,
            uncertain: false,
            subreaper: task.subreaper,
            followed: false,
            threads: BTreeSet::new(),
            children: BTreeSet::new(),
            created: 0,
        }
    }

    pub(super) fn from_seed(id: ProcId, sp: SeedProc) -> Self {
        Proc {
            id,
            ppid: sp.ppid,
            parent: None,
            creator: None,
            comm: sp.comm,
            uid: sp.uid,
            cgroup_id: sp.cgroup_id,
            start_ns: None,
            seed_state: Some(sp.state),
            filename: sp.filename.map(Arc::from),
            argv: Arc::from(sp.argv),
            execs: Vec::new(),
            execs_dropped: 0,
            exit: seed_exit(sp.pid, sp.state),
            reap: None,
            gone_ns: None,
            uncertain: false,
            subreaper: sp.subreaper,
            followed: false,
            threads: BTreeSet::new(),
            children: BTreeSet::new(),
            created: 0,
        }
    }

    pub fn pid(&self) -> u32 {
        self.id.pid
    }

    /// Running: not exited, not released.
    pub fn is_alive(&self) -> bool {
        self.exit.is_none() && !self.is_released()
    }

    /// Exited and not yet reaped: it still holds its pid.
    pub fn is_zombie(&self) -> bool {
        self.exit.is_some() && !self.is_released()
    }

    /// Reaped, or found gone: the pid is free, the process is history.
    pub fn is_released(&self) -> bool {
        self.reap.is_some() || self.gone_ns.is_some()
    }

    /// Start time in ns: exact when a kernel event gave it, else from the /proc tick
    /// count (10 ms precision). `None` when nothing is known (0).
    pub fn start_estimate_ns(&self) -> Option<u64> {
        let ns = self
            .start_ns
            .unwrap_or(self.id.start_ticks.saturating_mul(NS_PER_TICK));
        (ns != 0).then_some(ns)
    }

    /// Current children (by current parent), as ids.
    pub fn child_ids(&self) -> impl Iterator<Item = ProcId> + '_ {
        self.children.iter().copied()
    }

    pub(super) fn push_exec(&mut self, exec: ExecInfo) {
        if self.execs.len() >= EXEC_HISTORY_MAX {
            self.execs.remove(0);
            self.execs_dropped += 1;
        }
        self.execs.push(exec);
    }

    /// No program known yet: neither inherited nor exec'd nor read from /proc.
    pub(super) fn image_unknown(&self) -> bool {
        self.filename.is_none() && self.execs.is_empty()
    }
}

/// A /proc state of Z (zombie) or X (dead, being released) means the process has
/// already exited; when and how is not known.
pub(super) fn seed_exit(pid: u32, state: char) -> Option<ExitInfo> {
    matches!(state, 'Z' | 'X').then_some(ExitInfo {
        ktime_ns: None,
        status: None,
        tid: pid,
    })
}
