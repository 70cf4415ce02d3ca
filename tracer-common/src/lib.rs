//! Records the eBPF programs write into the ring buffer, and the load-time
//! configuration the agent hands to them.
//!
//! Plain data only: fixed-width integers and byte arrays, widest fields first so
//! there is no hidden padding, and an explicit `kind` tag the agent turns into an
//! enum after checking it. Sizes are asserted because both sides rely on them.
#![no_std]

use core::mem::size_of;

/// `TASK_COMM_LEN` in include/linux/sched.h.
pub const COMM_LEN: usize = 16;
/// Bytes of the exec'd file name kept (bprm->filename, or the user string of a failed exec).
pub const FILENAME_LEN: usize = 256;
/// Bytes of the argument area (mm->arg_start..arg_end) kept per exec. A power of
/// two so the eBPF side can bound a variable length with a mask.
pub const ARGV_LEN: usize = 4096;

/// Event kinds: the `kind` field of [`Header`] and the index into the drop counters.
pub mod kind {
    /// A task was created (task_newtask). Processes always, threads with `threads`.
    pub const FORK: u32 = 1;
    /// A process replaced its image (sched_process_exec).
    pub const EXEC: u32 = 2;
    /// execve/execveat returned an error.
    pub const EXEC_FAILED: u32 = 3;
    /// A task exited (sched_process_exit): whole processes always, threads with `threads`.
    pub const EXIT: u32 = 4;
    /// wait4/waitid returned a child: the reaper side of a reap.
    pub const WAIT: u32 = 5;
    /// A thread-group leader's task_struct was freed (sched_process_free): the process
    /// is gone for good, however it was reaped.
    pub const FREE: u32 = 6;
    /// fork/vfork/clone/clone3 returned an error.
    pub const FORK_FAILED: u32 = 7;
    /// One past the largest kind: the size of the per-kind counter arrays.
    pub const COUNT: u32 = 8;

    /// A short name for each kind, for `lost` records and summaries.
    pub const fn name(kind: u32) -> &'static str {
        match kind {
            FORK => "fork",
            EXEC => "exec",
            EXEC_FAILED => "exec_failed",
            EXIT => "exit",
            WAIT => "wait",
            FREE => "free",
            FORK_FAILED => "fork_failed",
            _ => "unknown",
        }
    }
}

/// Bits of [`Header::flags`].
pub mod header_flags {
    /// The subject process has PR_SET_CHILD_SUBREAPER set (signal->is_child_subreaper).
    pub const SUBREAPER: u32 = 1;
}

/// Bits of [`ExitEvent::flags`].
pub mod exit_flags {
    /// The last thread of the process exited: the process is now dead (signal->live == 0).
    pub const GROUP_DEAD: u32 = 1;
    /// The parent ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT) or the exit signal is none:
    /// the kernel will release the process without a wait() (do_notify_parent's autoreap).
    pub const AUTOREAP: u32 = 2;
}

/// Bits of [`ExecEvent::flags`].
pub mod exec_flags {
    /// The argument area was longer than [`super::ARGV_LEN`] and was cut.
    pub const ARGV_TRUNCATED: u32 = 1;
    /// The file name was longer than [`super::FILENAME_LEN`] and was cut.
    pub const FILENAME_TRUNCATED: u32 = 2;
}

/// Which syscall a [`WaitEvent`] came from.
pub mod wait_syscall {
    pub const WAIT4: u32 = 1;
    pub const WAITID: u32 = 2;
    /// waitid with a NULL `infop` returned 0 without WNOHANG: it collected a child
    /// but the kernel does not say which (`child_pid` is 0, `options` says how it
    /// waited).
    pub const WAITID_NULL_INFOP: u32 = 3;
}

/// Bits of waitid's `options` (include/uapi/linux/wait.h).
pub mod wait_options {
    pub const WNOHANG: u32 = 0x0000_0001;
    pub const WSTOPPED: u32 = 0x0000_0002;
    pub const WEXITED: u32 = 0x0000_0004;
    pub const WCONTINUED: u32 = 0x0000_0008;
    pub const WNOWAIT: u32 = 0x0100_0000;
}

/// The task an event is about, and when it happened. First in every record.
///
/// For `FORK` the subject is the new task; for `FREE` the freed task; otherwise the
/// task that ran the tracepoint (`current`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME.
    pub ktime_ns: u64,
    /// The process's start (group_leader->start_boottime, CLOCK_BOOTTIME ns): with
    /// `pid` it names one process for its whole life, across pid reuse.
    pub start_ns: u64,
    /// cgroup v2 id of the task (the cgroup directory's inode number), 0 if unknown.
    pub cgroup_id: u64,
    /// One of [`kind`].
    pub kind: u32,
    /// Thread-group id (the process id users see).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// real_parent->tgid: the process that will be told of this one's death.
    pub ppid: u32,
    pub uid: u32,
    /// [`header_flags`].
    pub flags: u32,
    /// task->comm, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: Header,
    /// clone flags, from task_newtask's argument.
    pub clone_flags: u64,
    /// Start of the parent process (real_parent's group leader).
    pub parent_start_ns: u64,
    /// The task that called fork/clone (may differ from the parent with CLONE_PARENT).
    pub creator_pid: u32,
    pub creator_tid: u32,
}

/// Fixed part of an exec record; `argv_len` bytes of the argument area follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub header: Header,
    /// The thread id before exec: differs from `header.tid` when a non-leader thread exec'd.
    pub old_tid: u32,
    /// [`exec_flags`].
    pub flags: u32,
    /// Bytes of argument area that follow (NUL-separated strings), <= ARGV_LEN.
    pub argv_len: u32,
    /// Bytes of `filename` used (no NUL).
    pub filename_len: u32,
    pub filename: [u8; FILENAME_LEN],
}

/// Largest exec record: the fixed part and a full argument area.
pub const EXEC_EVENT_MAX: usize = size_of::<ExecEvent>() + ARGV_LEN;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecFailedEvent {
    pub header: Header,
    /// Positive errno.
    pub errno: u32,
    pub filename_len: u32,
    pub filename: [u8; FILENAME_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: Header,
    /// Wait status as wait() will see it: `(code & 0xff) << 8` for exit(code),
    /// `sig | 0x80 if core` when killed (task->exit_code / signal->group_exit_code).
    pub status: u32,
    /// [`exit_flags`].
    pub flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitEvent {
    /// The reaper (the thread whose wait returned).
    pub header: Header,
    /// The pid wait returned, as seen in the reaper's pid namespace; 0 with
    /// [`wait_syscall::WAITID_NULL_INFOP`].
    pub child_pid: u32,
    /// [`wait_syscall`].
    pub syscall: u32,
    /// waitid's options ([`wait_options`]); 0 for wait4.
    pub options: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkFailedEvent {
    /// The task whose fork/clone failed.
    pub header: Header,
    /// Positive errno.
    pub errno: u32,
    pub _pad: u32,
}

/// Key of the in-kernel per-process fork counter (`FORKS` map): one process, by
/// pid and start time, so pid reuse does not merge two forkers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ForkerKey {
    pub start_ns: u64,
    pub pid: u32,
    pub _pad: u32,
}

/// Value of the `FORKS` map, per CPU: processes created by one process on that
/// CPU, and its command name when it first forked there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkerStats {
    pub count: u64,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeEvent {
    /// The freed task (only thread-group leaders are sent).
    pub header: Header,
}

/// Offsets resolved for the running kernel and settings, handed to the eBPF
/// programs as one read-only global (`CONFIG`) at load time. Nothing here is
/// compiled in: the agent fills it from BTF and tracefs format files.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    // struct task_struct
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_start_boottime: u32,
    pub task_comm: u32,
    pub task_exit_code: u32,
    pub task_exit_signal: u32,
    pub task_signal: u32,
    pub task_sighand: u32,
    pub task_mm: u32,
    // struct signal_struct
    pub signal_live: u32,
    pub signal_flags: u32,
    pub signal_group_exit_code: u32,
    /// Byte holding the is_child_subreaper bit field, and its mask within that byte.
    pub signal_subreaper_byte: u32,
    pub signal_subreaper_mask: u32,
    // struct sighand_struct / k_sigaction / sigaction
    pub sighand_action: u32,
    pub k_sigaction_size: u32,
    pub sigaction_handler: u32,
    pub sigaction_flags: u32,
    // struct mm_struct
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    // struct linux_binprm
    pub bprm_filename: u32,
    // Syscall tracepoint fields, from events/syscalls/<name>/format.
    pub execve_filename: u32,
    pub execveat_filename: u32,
    pub sys_exit_ret: u32,
    pub waitid_infop: u32,
    pub waitid_options: u32,
    /// `siginfo_t.si_pid` offset (uapi ABI of the running architecture).
    pub siginfo_pid: u32,
    // fexit path (see tracer/src/hooks.rs): `struct pt_regs` members holding a
    // syscall's first and second argument, and `struct waitid_info.pid`.
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub waitid_info_pid: u32,
    /// SIGNAL_GROUP_EXIT (include/linux/sched/signal.h).
    pub signal_group_exit_flag: u32,
    /// Non-zero: also send thread fork/exit records.
    pub threads: u32,
    /// Unread bytes in the ring buffer from which a new record wakes the agent.
    /// Below it records are added silently and the agent drains on a short timer:
    /// one wake-up per batch, not per record.
    pub wakeup_bytes: u32,
    /// Non-zero once filled in by the agent; programs do nothing until then.
    pub ready: u32,
    /// Non-zero when the running kernel has bpf_get_current_task_btf (Linux 5.11,
    /// kernel/trace/bpf_trace.c): kernel memory is then read with plain loads the
    /// verifier checks against BTF. Zero (5.10): `current` comes from
    /// bpf_get_current_task, an untyped number, and every read is a
    /// bpf_probe_read_kernel call. Probed at load time (tracer/src/features.rs).
    pub task_btf: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), made only of integers and byte arrays, with
    // no padding (asserted below), so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::Header {}
    unsafe impl aya::Pod for super::ForkerKey {}
    unsafe impl aya::Pod for super::ForkerStats {}
}

const _: () = assert!(size_of::<Header>() == 64);
const _: () = assert!(size_of::<ForkEvent>() == 88);
const _: () = assert!(size_of::<ExecEvent>() == 64 + 16 + FILENAME_LEN);
const _: () = assert!(size_of::<ExecFailedEvent>() == 64 + 8 + FILENAME_LEN);
const _: () = assert!(size_of::<ExitEvent>() == 72);
const _: () = assert!(size_of::<WaitEvent>() == 80);
const _: () = assert!(size_of::<FreeEvent>() == 64);
const _: () = assert!(size_of::<ForkFailedEvent>() == 72);
const _: () = assert!(size_of::<ForkerKey>() == 16);
const _: () = assert!(size_of::<ForkerStats>() == 24);
const _: () = assert!(size_of::<Config>() == 37 * 4);
