//! sched/sched_process_fork: a new process (or, with `threads`, a new thread).

use aya_ebpf::{
    helpers::generated::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{COMM_LEN, ForkEvent, ForkerKey, ForkerStats, kind};

use crate::{
    config::conf,
    maps::{CLONE_FLAGS, EVENTS, FORKS, count_lost, count_seen, wakeup_flags},
    task::{fill_header, read, read_ptr},
};

/// `trace_sched_process_fork(current, p)` in kernel/fork.c kernel_clone, after
/// copy_process and before wake_up_new_task: the child has not run yet, so this
/// record is reserved before any record of the child's.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    unsafe {
        let tid = read::<u32>(child, conf!(task_pid));
        let tgid = read::<u32>(child, conf!(task_tgid));
        // A thread shares its creator's tgid (copy_process: CLONE_THREAD).
        if tid != tgid && conf!(threads) == 0 {
            return 0;
        }
        let clone_flags = match CLONE_FLAGS.get(&tid) {
            Some(f) => {
                let f = *f;
                let _ = CLONE_FLAGS.remove(&tid);
                f
            }
            None => 0,
        };
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
        let current = bpf_get_current_task() as *const u8;
        let leader = read_ptr(current, conf!(task_group_leader));
        let key = ForkerKey {
            start_ns: read::<u64>(leader, conf!(task_start_boottime)),
            pid: (bpf_get_current_pid_tgid() >> 32) as u32,
            _pad: 0,
        };
        let comm_src = current.wrapping_add(conf!(task_comm) as usize).cast();
        match FORKS.get_ptr_mut(&key) {
            // This CPU's slot: no other writer can race with it. An entry inserted
            // on another CPU leaves this CPU's slot zeroed: fill in the name then.
            Some(stats) => {
                let stats = &mut *stats;
                if stats.count == 0 {
                    bpf_probe_read_kernel(
                        stats.comm.as_mut_ptr().cast(),
                        COMM_LEN as u32,
                        comm_src,
                    );
                }
                stats.count += 1;
            }
            None => {
                let mut stats = ForkerStats {
                    count: 1,
                    comm: [0; COMM_LEN],
                };
                bpf_probe_read_kernel(stats.comm.as_mut_ptr().cast(), COMM_LEN as u32, comm_src);
                let _ = FORKS.insert(&key, &stats, 0);
            }
        }
    }
}
