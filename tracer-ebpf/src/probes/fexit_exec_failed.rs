//! fexit on the execve and execveat syscall functions: execs that failed, on
//! kernels that run BPF trampolines. Unlike the syscall tracepoints of
//! exec_failed.rs, a trampoline is attached to these two functions only, so
//! other syscalls pay nothing; and one program at exit sees both the arguments
//! and the result, so no map carries the file name from entry to exit.
//!
//! The functions are the architecture's syscall wrappers (`__x64_sys_execve` on
//! x86_64), which take the user's registers, `const struct pt_regs *`; the agent
//! resolves the members holding the first and second argument from BTF.
//! do_execveat_common would serve every architecture alike but is inlined
//! (absent from the BTF of Debian's 6.1 and of 6.18).

use aya_ebpf::{macros::fexit, programs::FExitContext};

use super::exec_failed::emit;
use crate::{config::conf, task::read};

/// `execve(const char *filename, ..)`: the name is the first argument.
#[fexit(function = "__x64_sys_execve")]
pub fn fexit_sys_execve(ctx: FExitContext) -> i32 {
    check(&ctx, conf!(regs_arg0));
    0
}

/// `execveat(int dfd, const char *filename, ..)`: the name is the second argument.
#[fexit(function = "__x64_sys_execveat")]
pub fn fexit_sys_execveat(ctx: FExitContext) -> i32 {
    check(&ctx, conf!(regs_arg1));
    0
}

#[inline(always)]
fn check(ctx: &FExitContext, filename_reg: u32) {
    if conf!(ready) == 0 {
        return;
    }
    let ret: i64 = ctx.arg(1);
    if ret >= 0 {
        return;
    }
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: `regs` is a BTF-typed argument (struct pt_regs *); see task::read.
    // The saved user registers are unchanged by a failed exec.
    let ptr = unsafe { read::<u64>(regs, filename_reg) };
    emit(ctx, (-ret) as u32, ptr);
}
