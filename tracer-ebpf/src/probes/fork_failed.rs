//! syscalls/sys_exit_{fork,vfork,clone,clone3}: process or thread creation that failed.
//!
//! A failed fork never reaches sched_process_fork, and it is the clearest sign of
//! a fork bomb: EAGAIN once RLIMIT_NPROC or a cgroup's pids.max is reached
//! (kernel/fork.c copy_process), ENOMEM when memory runs out.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{ForkFailedEvent, kind};

use crate::{
    config::conf,
    maps::{EVENTS, count_lost, count_seen, wakeup_flags},
    task::fill_header,
};

#[tracepoint]
pub fn sys_exit_fork(ctx: TracePointContext) -> u32 {
    check(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_vfork(ctx: TracePointContext) -> u32 {
    check(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_clone(ctx: TracePointContext) -> u32 {
    check(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_clone3(ctx: TracePointContext) -> u32 {
    check(&ctx);
    0
}

/// In the parent, fork-family syscalls return the child's pid, or a negative
/// errno on failure; the child returns 0.
#[inline(always)]
fn check(ctx: &TracePointContext) {
    if conf!(ready) == 0 {
        return;
    }
    let Ok(ret) = (unsafe { ctx.read_at::<i64>(conf!(sys_exit_ret) as usize) }) else {
        return;
    };
    if ret >= 0 {
        return;
    }
    emit((-ret) as u32);
}

/// Sends a fork_failed record for the running task (also used by the fexit path,
/// fexit_fork_failed.rs).
#[inline(always)]
pub(crate) fn emit(errno: u32) {
    count_seen(kind::FORK_FAILED);
    let Some(mut entry) = EVENTS.reserve::<ForkFailedEvent>(0) else {
        count_lost(kind::FORK_FAILED);
        return;
    };
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        let task = crate::task::current();
        fill_header(&mut ev.header, kind::FORK_FAILED, task, true);
        ev.errno = errno;
        ev._pad = 0;
    }
    entry.submit(wakeup_flags());
}
