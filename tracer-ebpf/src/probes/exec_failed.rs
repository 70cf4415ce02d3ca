//! syscalls/sys_{enter,exit}_{execve,execveat}: execs that failed.
//!
//! A successful exec is reported by sched_process_exec; a failed one never gets
//! there, so the file name is parked at syscall entry and reported at exit when
//! the syscall returned an error.

use aya_ebpf::{
    EbpfContext,
    helpers::generated::{bpf_get_current_pid_tgid, bpf_probe_read_user_str},
    macros::tracepoint,
    programs::TracePointContext,
};
use aya_log_ebpf::warn;
use tracer_common::{ExecFailedEvent, FILENAME_LEN, kind};

use crate::{
    config::conf,
    maps::{EVENTS, EXEC_PENDING, count_lost, count_seen, wakeup_flags},
    task::fill_header,
};

#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    enter(&ctx, conf!(execve_filename));
    0
}

#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    enter(&ctx, conf!(execveat_filename));
    0
}

#[tracepoint]
pub fn sys_exit_execve(ctx: TracePointContext) -> u32 {
    exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_execveat(ctx: TracePointContext) -> u32 {
    exit(&ctx);
    0
}

#[inline(always)]
fn enter(ctx: &TracePointContext, filename_off: u32) {
    if conf!(ready) == 0 {
        return;
    }
    let Ok(ptr) = (unsafe { ctx.read_at::<u64>(filename_off as usize) }) else {
        return;
    };
    let tid = unsafe { bpf_get_current_pid_tgid() } as u32;
    let _ = EXEC_PENDING.insert(&tid, &ptr, 0);
}

#[inline(always)]
fn exit(ctx: &TracePointContext) {
    if conf!(ready) == 0 {
        return;
    }
    let tid = unsafe { bpf_get_current_pid_tgid() } as u32;
    let Some(ptr) = (unsafe { EXEC_PENDING.get(&tid) }).copied() else {
        return;
    };
    let _ = EXEC_PENDING.remove(&tid);
    let Ok(ret) = (unsafe { ctx.read_at::<i64>(conf!(sys_exit_ret) as usize) }) else {
        return;
    };
    if ret >= 0 {
        return;
    }
    emit(ctx, (-ret) as u32, ptr);
}

/// Sends an exec_failed record for the running task, whose exec of the file name
/// at user address `ptr` failed with `errno` (also used by the fexit path,
/// fexit_exec_failed.rs).
#[inline(always)]
pub(crate) fn emit<C: EbpfContext>(ctx: &C, errno: u32, ptr: u64) {
    count_seen(kind::EXEC_FAILED);
    let Some(mut entry) = EVENTS.reserve::<ExecFailedEvent>(0) else {
        count_lost(kind::EXEC_FAILED);
        return;
    };
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        let task = crate::task::current();
        fill_header(&mut ev.header, kind::EXEC_FAILED, task, true);
        ev.errno = errno;
        // The caller's memory is intact after a failed exec: read the name now.
        let n = bpf_probe_read_user_str(
            ev.filename.as_mut_ptr().cast(),
            FILENAME_LEN as u32,
            ptr as *const _,
        );
        if n < 0 {
            // execve((char *)1, ..) fails with EFAULT for the same reason.
            warn!(
                ctx,
                "failed exec of pid {} (errno {}): reading the file name at {:x} failed (error {}); the record has no file name",
                ev.header.pid,
                ev.errno,
                ptr,
                n
            );
        }
        ev.filename_len = if n > 0 { n as u32 - 1 } else { 0 };
    }
    entry.submit(wakeup_flags());
}
