//! fexit on kernel_wait4 and kernel_waitid (kernel/exit.c): who reaped whom, on
//! kernels that run BPF trampolines. Unlike the syscall tracepoints (wait.rs),
//! these cost nothing to the syscalls that are not waits.
//!
//! The agent checks at load time (tracer/src/hooks.rs) that both functions are in
//! the kernel's BTF with the parameters read here, so the argument positions and
//! the return value's slot (after the last argument) are right for this kernel.

use aya_ebpf::{macros::fexit, programs::FExitContext};
use tracer_common::{wait_options, wait_syscall};

use super::wait::emit;
use crate::{config::conf, task::read};

/// `long kernel_wait4(pid_t upid, int __user *stat_addr, int options, struct rusage *ru)`
/// returns what wait4 returns: the pid it waited for, which the agent counts as a
/// reap only when it is a zombie child of the caller (as for sys_exit_wait4).
/// compat wait4/waitpid come through here too.
#[fexit(function = "kernel_wait4")]
pub fn fexit_kernel_wait4(ctx: FExitContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let ret: i64 = ctx.arg(4);
    if ret > 0 {
        emit(ret as u32, wait_syscall::WAIT4, 0);
    }
    0
}

/// `long kernel_waitid(int which, pid_t upid, struct waitid_info *infop, int options,
/// struct rusage *ru)` returns do_wait's result: the pid of the child it found
/// (> 0), 0 when WNOHANG found none, or an error. The pid is also in the kernel's
/// own `struct waitid_info` (wait_task_zombie fills `infop->pid`), which
/// SYSCALL_DEFINE5(waitid) always passes, whether or not the caller's `infop` is
/// NULL: so a NULL-infop waitid names its child here too.
#[fexit(function = "kernel_waitid")]
pub fn fexit_kernel_waitid(ctx: FExitContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let ret: i64 = ctx.arg(5);
    if ret <= 0 {
        return 0;
    }
    let options: u64 = ctx.arg(3);
    let options = options as u32;
    // WNOWAIT leaves the child waitable: nothing was reaped.
    if options & wait_options::WNOWAIT != 0 {
        return 0;
    }
    let info: *const u8 = ctx.arg(2);
    // SAFETY: `info` is a BTF-typed argument (struct waitid_info *); see task::read.
    let pid = unsafe { read::<i32>(info, conf!(waitid_info_pid)) };
    // do_wait returned this pid: the field agrees unless `info` was NULL (a
    // caller other than the waitid syscall), then the return value stands.
    let pid = if pid > 0 { pid as u32 } else { ret as u32 };
    emit(pid, wait_syscall::WAITID, options);
    0
}
