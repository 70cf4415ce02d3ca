//! task/task_newtask: the only place the clone flags of a new task are visible.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

use crate::{config::conf, maps::CLONE_FLAGS, task::read};

/// `trace_task_newtask(p, clone_flags)` at the end of kernel/fork.c copy_process,
/// in the parent, just before sched_process_fork.
#[btf_tracepoint(function = "task_newtask")]
pub fn task_newtask(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let task: *const u8 = ctx.arg(0);
    let flags: u64 = ctx.arg(1);
    unsafe {
        let tid = read::<u32>(task, conf!(task_pid));
        let tgid = read::<u32>(task, conf!(task_tgid));
        // sched_process_fork drops threads unless asked for: don't park their flags.
        if tid != tgid && conf!(threads) == 0 {
            return 0;
        }
        let _ = CLONE_FLAGS.insert(&tid, &flags, 0);
    }
    0
}
