//! What the process model tells the world: one [`Record`] per line of output.
//!
//! Pure data, and the one type for a record both ways: the model fills these
//! in, the host stage adds the cgroup path, the writers in [`crate::output`] add
//! the per-run fields (`seq`, wall-clock `ts`, `host`, `boot_id`), and
//! `tracer report` reads a JSON Lines line back into the same [`Record`]
//! (`crate::report::reader`). A new field is added here once.

use std::borrow::Cow;
use std::sync::Arc;

use crate::event::Comm;

/// A name the agent writes from a fixed set (`lost` kinds, alert scopes and
/// figure names): borrowed on the agent's hot path, owned only when a reader
/// meets one this version does not know.
pub type Name = Cow<'static, str>;

/// Names one process for its whole life: its pid and its start time in clock
/// ticks since boot (USER_HZ, as in /proc/PID/stat field 22), so processes seen
/// in /proc at start-up and processes seen by the kernel programs get the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: u32,
    pub start_ticks: u64,
}

/// Nanoseconds per USER_HZ tick: /proc reports start times as
/// `nsec_to_clock_t(start_boottime)` (fs/proc/array.c, do_task_stat) with USER_HZ = 100.
pub const NS_PER_TICK: u64 = 10_000_000;

impl ProcId {
    pub fn from_start_ns(pid: u32, start_ns: u64) -> Self {
        ProcId {
            pid,
            start_ticks: start_ns / NS_PER_TICK,
        }
    }
}

impl std::fmt::Display for ProcId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.pid, self.start_ticks)
    }
}

/// The process a record is about, as it was at that moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The process (tgid).
    pub pid: u32,
    pub tid: u32,
    /// Parent process at that moment.
    pub ppid: u32,
    pub proc_id: ProcId,
    pub comm: Comm,
    pub uid: Option<u32>,
    /// cgroup v2 id, 0 if unknown.
    pub cgroup_id: u64,
    /// cgroup v2 path of `cgroup_id` (`/` is the root), put in by the host stage
    /// (`crate::cgroup::CgroupResolver::fill`) before a writer sees the record;
    /// `None` from the model and when it is unknown. Shared: few distinct paths.
    pub cgroup: Option<Arc<str>>,
    /// The systemd unit or scope of `cgroup`, its container (all 64 hex digits)
    /// and Kubernetes pod, where the path says ([`crate::identity`]); put in by
    /// the host stage with `cgroup`, `None` from the model.
    pub unit: Option<Arc<str>>,
    pub container_id: Option<Arc<str>>,
    pub pod_uid: Option<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// CLOCK_BOOTTIME ns of the event (for `process`, when it was read from /proc).
    pub ktime_ns: u64,
    /// `None` only for `lost`.
    pub subject: Option<Subject>,
    pub body: Body,
    /// Events were lost while the subject lived, so what the record says about
    /// its life may be incomplete or wrong (see docs/events.md, `uncertain`).
    /// Set by the model on `exit`, `reap` and `process` records only.
    pub uncertain: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A process that existed when tracing began.
    Process {
        filename: Option<Vec<u8>>,
        argv: Vec<Vec<u8>>,
        /// ps STAT letter (R, S, D, Z, T, ...); always known to the agent,
        /// `None` only for a recording that lacks it.
        state: Option<char>,
        /// Secrets in `argv` were replaced by `***` ([`crate::redact`]); set by
        /// the writer side, false from the model.
        argv_redacted: bool,
    },
    Fork {
        parent_proc_id: Option<ProcId>,
        thread: bool,
        clone_flags: Option<u64>,
    },
    Exec {
        filename: Vec<u8>,
        argv: Vec<Vec<u8>>,
        argv_truncated: bool,
        /// Secrets in `argv` were replaced by `***` ([`crate::redact`]); set by
        /// the writer side, false from the model.
        argv_redacted: bool,
        /// Set when a non-leader thread exec'd.
        old_tid: Option<u32>,
    },
    ExecFailed {
        filename: Vec<u8>,
        errno: u32,
    },
    Exit {
        exit_code: Option<u8>,
        signal: Option<u8>,
        core_dumped: bool,
        lifetime_ns: Option<u64>,
        /// A thread of a live process exited (only with --threads).
        thread: bool,
    },
    Reap {
        zombie_ns: Option<u64>,
        reaper_pid: Option<u32>,
        reaper_comm: Option<Comm>,
        autoreap: bool,
        /// No event told the reap: the agent found the zombie gone from /proc
        /// (see docs/events.md, `inferred`). `None` for a reap an event showed.
        inferred: Option<ReapWindow>,
    },
    /// fork/vfork/clone/clone3 returned an error (EAGAIN from RLIMIT_NPROC or a
    /// cgroup's pids.max, ENOMEM, ...): the subject is the process that tried.
    ForkFailed {
        errno: u32,
    },
    /// A pattern the alert engine ([`crate::alerts`]) watches for began (`alert`)
    /// or ended (`alert_end`). The subject is the culprit. Boxed: it is five
    /// times the size of any other body, and every record is moved a few times
    /// between the model and the writers.
    Alert(Box<Alert>),
    /// Events the kernel could not deliver (ring buffer full).
    Lost {
        /// Event kind name (`fork`, `exec`, ...).
        kind: Name,
        count: u64,
    },
    /// The last record of an output file (docs/events.md, `end`): why the run,
    /// or this file of it, ended, and the run's totals so far. No subject.
    End {
        /// `duration`, `signal`, `command`, `pid-gone`, `stdout-closed`, `error`, `quit`,
        /// or `rotated` for a file that a later one continues.
        reason: Name,
        /// Records of the run so far, per type (this one not included).
        records: Vec<(Name, u64)>,
        /// Events the kernel could not deliver, per kind, over the run so far.
        lost: Vec<(Name, u64)>,
        /// Records that could not be written to the output file.
        not_written: u64,
    },
}

impl Body {
    /// The record's `type` in JSON Lines.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Process { .. } => "process",
            Body::Fork { .. } => "fork",
            Body::Exec { .. } => "exec",
            Body::ExecFailed { .. } => "exec_failed",
            Body::Exit { .. } => "exit",
            Body::Reap { .. } => "reap",
            Body::ForkFailed { .. } => "fork_failed",
            Body::Alert(a) if a.end => "alert_end",
            Body::Alert(_) => "alert",
            Body::Lost { .. } => "lost",
            Body::End { .. } => "end",
        }
    }
}

/// When an inferred reap happened: after the process was last seen present
/// (or exited), before it was first seen gone. CLOCK_BOOTTIME ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReapWindow {
    /// `None` when nothing bounds it (a zombie of the start-up snapshot that was
    /// never seen present again).
    pub after_ns: Option<u64>,
    pub before_ns: u64,
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// A process (or the processes of one cgroup) created children faster than
    /// the threshold, for longer than the threshold.
    ForkStorm,
    /// A parent holds too many unreaped zombies, or one too old.
    ZombieBuildup,
    /// The same executable under the same parent kept failing.
    CrashLoop,
    /// fork/clone kept failing (a process limit, or memory, ran out).
    ForkFailures,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::ForkStorm,
        AlertKind::ZombieBuildup,
        AlertKind::CrashLoop,
        AlertKind::ForkFailures,
    ];

    /// The kind of an `alert` field ([`Self::name`]).
    pub fn from_name(name: &str) -> Option<AlertKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The `alert` field in JSON Lines.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::ForkStorm => "fork_storm",
            AlertKind::ZombieBuildup => "zombie_buildup",
            AlertKind::CrashLoop => "crash_loop",
            AlertKind::ForkFailures => "fork_failures",
        }
    }

    /// For people: how a message starts.
    pub fn title(self) -> &'static str {
        match self {
            AlertKind::ForkStorm => "fork storm",
            AlertKind::ZombieBuildup => "zombie build-up",
            AlertKind::CrashLoop => "crash loop",
            AlertKind::ForkFailures => "fork failures",
        }
    }
}

/// Another process an alert names (the culprit's parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertProc {
    pub pid: u32,
    pub proc_id: ProcId,
    pub comm: Comm,
    pub filename: Option<Vec<u8>>,
}

/// How one process of a crash loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertExit {
    pub exit_code: Option<u8>,
    pub signal: Option<u8>,
}

/// One alert episode starting or ending (see docs/events.md, `alert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The episode ended (`alert_end`); false when it begins (`alert`).
    pub end: bool,
    /// What was counted together: `process`, `cgroup`, `parent_executable`, `user_cgroup`.
    pub scope: Name,
    /// When the condition began to hold (ktime ns).
    pub since_ns: u64,
    /// The culprit's executable and arguments, as last seen.
    pub filename: Option<Vec<u8>>,
    pub argv: Vec<Vec<u8>>,
    /// The culprit's parent, when known.
    pub parent: Option<AlertProc>,
    /// The numbers that tripped it (or, at the end, that sum the episode up),
    /// name (with its unit) and value.
    pub figures: Vec<(Name, u64)>,
    /// Executables involved and how many processes ran each, most first: a fork
    /// storm's children.
    pub executables: Vec<(Option<Vec<u8>>, u64)>,
    /// A crash loop's last exits, oldest first.
    pub exits: Vec<AlertExit>,
    /// A fork failure burst's (most frequent) errno.
    pub errno: Option<u32>,
    /// The message after the culprit's name, e.g. `forked 2,310/s for 5 s`; the
    /// writers put the kind, the culprit and its cgroup in front
    /// ([`crate::alert_text::message`]).
    pub what: String,
    /// The whole message, when a recording gave one that is not what
    /// [`crate::alerts::message`] composes from these fields (written by hand or
    /// by another version): kept as it was, and written instead of the composed
    /// one; `what` is then empty. `None` from the alert engine.
    pub message: Option<Vec<u8>>,
}
