//! Reading kernel objects at offsets resolved for the running kernel.

use aya_ebpf::helpers::generated::{
    bpf_get_current_cgroup_id, bpf_get_current_task, bpf_get_current_task_btf,
    bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
};
use tracer_common::{Header, header_flags};

use crate::config::conf;

/// Reads a `T` at `base + off` from kernel memory; zero if the read faults (the
/// record then carries a zero, which the agent treats as unknown).
///
/// Two ways, chosen by `CONFIG.task_btf`, a constant once CONFIG is frozen in
/// .rodata, so the verifier only ever walks one of them (kernel/bpf/verifier.c
/// prunes the branch a known constant rules out, and opt_remove_dead_code drops it):
///
/// - Linux 5.11 on (bpf_get_current_task_btf exists): `base` is a pointer the
///   verifier types from BTF: a tp_btf argument, bpf_get_current_task_btf(), or a
///   pointer field loaded through one of those. The load is then a plain load: the
///   verifier checks `off` against the struct's BTF (kernel/bpf/btf.c
///   btf_struct_walk), and the JIT emits it as a BPF_PROBE_MEM load whose fault, a
///   NULL `base` included, reads 0 (kernel/bpf/verifier.c check_ptr_to_btf_access;
///   arch/x86/net/bpf_jit_comp.c ex_handler_bpf). That saves a helper call per
///   field, which is most of what these programs cost.
/// - Linux 5.10: `current` is only an untyped number (bpf_get_current_task), so a
///   plain load through it is refused; every read is a bpf_probe_read_kernel call,
///   which zeroes the destination when the read faults
///   (kernel/trace/bpf_trace.c bpf_probe_read_kernel_common).
#[inline(always)]
pub unsafe fn read<T: Copy>(base: *const u8, off: u32) -> T {
    let at = base.wrapping_add(off as usize);
    if conf!(task_btf) != 0 {
        // SAFETY: see above; the verifier makes a faulting load read zero.
        unsafe { core::ptr::read_volatile(at.cast::<T>()) }
    } else {
        let mut value = core::mem::MaybeUninit::<T>::zeroed();
        // SAFETY: `value` is a T-sized stack slot; the helper fills or zeroes it.
        unsafe {
            bpf_probe_read_kernel(
                value.as_mut_ptr().cast(),
                core::mem::size_of::<T>() as u32,
                at.cast(),
            );
            value.assume_init()
        }
    }
}

/// The running task, in the form [`read`] can read through on this kernel.
#[inline(always)]
pub fn current() -> *const u8 {
    // SAFETY: both helpers only return the running task's address.
    unsafe {
        if conf!(task_btf) != 0 {
            bpf_get_current_task_btf() as *const u8
        } else {
            bpf_get_current_task() as *const u8
        }
    }
}

/// Reads a kernel pointer at `base + off`; the verifier types the result from BTF,
/// so it can be read through in turn.
#[inline(always)]
pub unsafe fn read_ptr(base: *const u8, off: u32) -> *const u8 {
    unsafe { read::<u64>(base, off) as *const u8 }
}

/// Reads task->comm of `t` (TASK_COMM_LEN bytes) with two 8-byte loads; the
/// verifier lets a char array be read in any piece that stays inside it.
#[inline(always)]
pub unsafe fn read_comm(t: *const u8, comm: &mut [u8; 16]) {
    unsafe {
        let off = conf!(task_comm);
        let a = read::<u64>(t, off);
        let b = read::<u64>(t, off + 8);
        comm[..8].copy_from_slice(&a.to_ne_bytes());
        comm[8..].copy_from_slice(&b.to_ne_bytes());
    }
}

/// Fills `h` for task `t`: ids, the process's start time (the group leader's, so
/// every thread names the same process, and kernel/exec.c de_thread copies it to a
/// non-leader that execs), parent, comm and subreaper flag. `current` says
/// whether `t` is the running task, whose uid and cgroup the helpers can give.
/// `t` must be a pointer [`read`] can read through.
#[inline(always)]
pub unsafe fn fill_header(h: &mut Header, kind: u32, t: *const u8, current: bool) {
    unsafe {
        h.kind = kind;
        h.ktime_ns = bpf_ktime_get_boot_ns();
        h.tid = read::<u32>(t, conf!(task_pid));
        h.pid = read::<u32>(t, conf!(task_tgid));
        let leader = read_ptr(t, conf!(task_group_leader));
        h.start_ns = read::<u64>(leader, conf!(task_start_boottime));
        let parent = read_ptr(t, conf!(task_real_parent));
        h.ppid = read::<u32>(parent, conf!(task_tgid));
        read_comm(t, &mut h.comm);
        let signal = read_ptr(t, conf!(task_signal));
        let sub = read::<u8>(signal, conf!(signal_subreaper_byte));
        h.flags = if sub & (conf!(signal_subreaper_mask) as u8) != 0 {
            header_flags::SUBREAPER
        } else {
            0
        };
        if current {
            h.uid = bpf_get_current_uid_gid() as u32;
            h.cgroup_id = bpf_get_current_cgroup_id();
        } else {
            h.uid = 0;
            h.cgroup_id = 0;
        }
    }
}
