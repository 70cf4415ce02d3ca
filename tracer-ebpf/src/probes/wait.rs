//! syscalls/sys_exit_wait4, sys_enter_waitid, sys_exit_waitid: who reaped whom,
//! or with a NULL waitid `infop` only who reaped and when.

use aya_ebpf::{
    helpers::generated::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use aya_log_ebpf::warn;
use tracer_common::{WaitEvent, kind, wait_options, wait_syscall};

use crate::{
    config::conf,
    maps::{EVENTS, WAITID_PENDING, WaitidCall, count_lost, count_seen, wakeup_flags},
    task::fill_header,
};

/// wait4 returns the pid it waited for. It may be a stopped or continued child
/// (WUNTRACED/WCONTINUED) rather than a reaped one; the agent only counts it as a
/// reap when that pid is a zombie child of the caller.
#[tracepoint]
pub fn sys_exit_wait4(ctx: TracePointContext) -> u32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let Ok(ret) = (unsafe { ctx.read_at::<i64>(conf!(sys_exit_ret) as usize) }) else {
        return 0;
    };
    if ret > 0 {
        emit(ret as u32, wait_syscall::WAIT4, 0);
    }
    0
}

#[tracepoint]
pub fn sys_enter_waitid(ctx: TracePointContext) -> u32 {
    if conf!(ready) == 0 {
        return 0;
    }
    unsafe {
        let (Ok(infop), Ok(options)) = (
            ctx.read_at::<u64>(conf!(waitid_infop) as usize),
            ctx.read_at::<u64>(conf!(waitid_options) as usize),
        ) else {
            return 0;
        };
        // WNOWAIT leaves the child waitable: nothing is reaped. With a NULL infop
        // only a blocking wait for exits tells anything: with WNOHANG, waitid
        // returns 0 whether or not it found a child (kernel/exit.c
        // SYSCALL_DEFINE5(waitid) returns do_wait's 0 as is), and without WEXITED
        // it cannot reap.
        let options = options & 0xffff_ffff;
        if options & u64::from(wait_options::WNOWAIT) != 0 {
            return 0;
        }
        if infop == 0
            && (options & u64::from(wait_options::WEXITED) == 0
                || options & u64::from(wait_options::WNOHANG) != 0)
        {
            return 0;
        }
        let tid = bpf_get_current_pid_tgid() as u32;
        let _ = WAITID_PENDING.insert(&tid, &WaitidCall { infop, options }, 0);
    }
    0
}

/// waitid returns 0 on success; the pid is in `infop->si_pid` (kernel/exit.c
/// kernel_waitid / SYSCALL_DEFINE5(waitid) copies it out before returning).
#[tracepoint]
pub fn sys_exit_waitid(ctx: TracePointContext) -> u32 {
    if conf!(ready) == 0 {
        return 0;
    }
    unsafe {
        let tid = bpf_get_current_pid_tgid() as u32;
        let Some(WaitidCall { infop, options }) = WAITID_PENDING.get(&tid).copied() else {
            return 0;
        };
        let _ = WAITID_PENDING.remove(&tid);
        let Ok(ret) = ctx.read_at::<i64>(conf!(sys_exit_ret) as usize) else {
            return 0;
        };
        if ret != 0 {
            return 0;
        }
        if infop == 0 {
            // A blocking waitid succeeded, so do_wait found a child (it returns
            // its pid, which SYSCALL_DEFINE5(waitid) turns into 0): which one only
            // the agent can tell, when the waiter had just one it could collect.
            emit(0, wait_syscall::WAITID_NULL_INFOP, options as u32);
            return 0;
        }
        let mut pid: i32 = 0;
        let addr = (infop as *const u8).wrapping_add(conf!(siginfo_pid) as usize);
        let err = bpf_probe_read_user((&raw mut pid).cast(), 4, addr.cast());
        if err != 0 {
            // waitid succeeded, so the kernel itself wrote to infop: a failure
            // here means its page went away in between.
            warn!(
                &ctx,
                "waitid in tid {}: reading infop->si_pid at {:x} failed (error {}); no wait record",
                tid,
                addr as u64,
                err
            );
            return 0;
        }
        if pid <= 0 {
            return 0;
        }
        emit(pid as u32, wait_syscall::WAITID, options as u32);
    }
    0
}

/// Sends a wait record for the running task (also used by the fexit path, fexit_wait.rs).
#[inline(always)]
pub(crate) fn emit(child_pid: u32, syscall: u32, options: u32) {
    count_seen(kind::WAIT);
    let Some(mut entry) = EVENTS.reserve::<WaitEvent>(0) else {
        count_lost(kind::WAIT);
        return;
    };
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        let task = crate::task::current();
        fill_header(&mut ev.header, kind::WAIT, task, true);
        ev.child_pid = child_pid;
        ev.syscall = syscall;
        ev.options = options;
        ev._pad = 0;
    }
    entry.submit(wakeup_flags());
}
