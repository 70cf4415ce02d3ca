//! sched/sched_process_free: a task_struct is being freed.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{FreeEvent, kind};

use crate::{
    config::conf,
    maps::{EVENTS, count_lost, count_seen, wakeup_flags},
    task::{fill_header, read},
};

/// `trace_sched_process_free(tsk)` in kernel/exit.c delayed_put_task_struct, an
/// RCU callback after release_task: `current` is unrelated here. For a thread-group
/// leader this means the process is gone for good, reaped by whoever did it; the
/// agent uses it when it did not see the wait() (e.g. waitid with a NULL infop).
#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let task: *const u8 = ctx.arg(0);
    unsafe {
        let tid = read::<u32>(task, conf!(task_pid));
        let tgid = read::<u32>(task, conf!(task_tgid));
        if tid != tgid {
            return 0;
        }
        count_seen(kind::FREE);
        let Some(mut entry) = EVENTS.reserve::<FreeEvent>(0) else {
            count_lost(kind::FREE);
            return 0;
        };
        let ev = &mut *entry.as_mut_ptr();
        fill_header(&mut ev.header, kind::FREE, task, false);
        entry.submit(wakeup_flags());
    }
    0
}
