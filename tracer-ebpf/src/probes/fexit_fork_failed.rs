//! fexit on kernel_clone (kernel/fork.c): process or thread creation that failed,
//! on kernels that run BPF trampolines. fork, vfork, clone and clone3 all create
//! through kernel_clone, so one program replaces the four syscall tracepoints of
//! fork_failed.rs, and other syscalls pay nothing.

use aya_ebpf::{
    macros::fexit, programs::FExitContext,
};

use super::fork_failed::emit;
use crate::{config::conf, task::read_ptr};

/// `pid_t kernel_clone(struct kernel_clone_args *args)`: the new task's pid in the
/// parent, or a negative errno.
#[fexit(function = "kernel_clone")]
pub fn fexit_kernel_clone(ctx: FExitContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    // pid_t is an int: the slot's upper half is not part of the value.
    let ret: u64 = ctx.arg(1);
    let ret = ret as u32 as i32;
    if ret >= 0 {
        return 0;
    }
    // Kernel threads (kernel_thread, user_mode_thread from a worker) create
    // through kernel_clone too, but not through a syscall: the syscall path
    // never saw those, so neither does this one. They have no mm.
    // SAFETY: task::current gives the running task in the form task::read reads
    // through on this kernel (BTF-typed where bpf_get_current_task_btf exists).
    let mm = unsafe { read_ptr(crate::task::current(), conf!(task_mm)) };
    if mm.is_null() {
        return 0;
    }
    emit((-ret) as u32);
    0
}
