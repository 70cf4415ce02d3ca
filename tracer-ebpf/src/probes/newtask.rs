//! task/task_newtask: a new process (or, with `threads`, a new thread).

use aya_ebpf::{
    helpers::generated::bpf_get_current_pid_tgid, macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{ForkEvent, ForkerKey, ForkerStats, kind};

use crate::{
    config::conf,
    maps::{EVENTS, FORKS, count_lost, count_seen, wakeup_flags},
    task::{fill_header, read, read_comm, read_ptr},
};

/// `trace_task_newtask(p, clone_flags)` at the end of kernel/fork.c copy_process,
/// in the parent (`current`), once the child is committed: it has its pid, is in
/// the task list and its cgroup, and nothing after this point in copy_process can
/// fail. kernel_clone wakes the child (wake_up_new_task) only after copy_process
/// returns, so this record is reserved before any record of the child's.
///
/// This is the one hook that has both the child and its clone flags, so the fork
/// record is written here rather than at sched_process_fork (kernel_clone, just
/// after copy_process), which would need the flags handed over through a map.
/// Unlike sched_process_fork it also fires for the idle tasks of CPUs brought up
/// (kernel/fork.c fork_idle: pid 0, skipped below) and for the kernel-run threads
/// of a process (create_io_thread for io_uring, vhost_task_create): threads, shown
/// with `threads`, as their exits are.
#[btf_tracepoint(function = "task_newtask")]
pub fn task_newtask(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(0);
    let clone_flags: u64 = ctx.arg(1);
    unsafe {
        let tid = read::<u32>(child, conf!(task_pid));
        let tgid = read::<u32>(child, conf!(task_tgid));
        // A thread shares its creator's tgid (copy_process: CLONE_THREAD).
        if (tid != tgid && conf!(threads) == 0) || tid == 0 {
            return 0;
        }
        count_seen(kind::FORK);
        if tid == tgid {
            count_forker();
        }
        let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) else {
            count_lost(kind::FORK);
            return 0;
        };
        let ev = &mut *entry.as_mut_ptr();
        // The child inherits the parent's uid and cgroup at fork: `current` gives them.
        fill_header(&mut ev.header, kind::FORK, child, true);
        ev.clone_flags = clone_flags;
        let parent = read_ptr(child, conf!(task_real_parent));
        let parent_leader = read_ptr(parent, conf!(task_group_leader));
        ev.parent_start_ns = read::<u64>(parent_leader, conf!(task_start_boottime));
        let creator = bpf_get_current_pid_tgid();
        ev.creator_pid = (creator >> 32) as u32;
        ev.creator_tid = creator as u32;
        entry.submit(wakeup_flags());
    }
    0
}

/// Adds one to the creating process's entry in `FORKS`.
#[inline(always)]
unsafe fn count_forker() {
    unsafe {
        let current = crate::task::current();
        let leader = read_ptr(current, conf!(task_group_leader));
        let key = ForkerKey {
            start_ns: read::<u64>(leader, conf!(task_start_boottime)),
            pid: (bpf_get_current_pid_tgid() >> 32) as u32,
            _pad: 0,
        };
        match FORKS.get_ptr_mut(&key) {
            // This CPU's slot: no other writer can race with it. An entry inserted
            // on another CPU leaves this CPU's slot zeroed: fill in the name then.
            Some(stats) => {
                let stats = &mut *stats;
                if stats.count == 0 {
                    read_comm(current, &mut stats.comm);
                }
                stats.count += 1;
            }
            None => {
                let mut stats = ForkerStats {
                    count: 1,
                    comm: [0; tracer_common::COMM_LEN],
                };
                read_comm(current, &mut stats.comm);
                let _ = FORKS.insert(&key, &stats, 0);
            }
        }
    }
}
