//! Reading kernel objects at offsets resolved for the running kernel.

use aya_ebpf::helpers::generated::{
    bpf_get_current_cgroup_id, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns,
    bpf_probe_read_kernel,
};
use tracer_common::{COMM_LEN, Header, header_flags};

use crate::config::conf;

/// Reads a `T` at `base + off` from kernel memory; zero if the read faults (the
/// record then carries a zero, which the agent treats as unknown).
#[inline(always)]
pub unsafe fn read<T: Copy + Default>(base: *const u8, off: u32) -> T {
    let mut v = T::default();
    if !base.is_null() {
        unsafe {
            bpf_probe_read_kernel(
                (&raw mut v).cast(),
                core::mem::size_of::<T>() as u32,
                base.wrapping_add(off as usize).cast(),
            )
        };
    }
    v
}

/// Reads a kernel pointer at `base + off`.
#[inline(always)]
pub unsafe fn read_ptr(base: *const u8, off: u32) -> *const u8 {
    unsafe { read::<u64>(base, off) as *const u8 }
}

/// Fills `h` for task `t`: ids, the process's start time (the group leader's, so
/// every thread names the same process, and kernel/exec.c de_thread copies it to a
/// non-leader that execs), parent, comm and subreaper flag. `current` says
/// whether `t` is the running task, whose uid and cgroup the helpers can give.
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
        bpf_probe_read_kernel(
            h.comm.as_mut_ptr().cast(),
            COMM_LEN as u32,
            t.wrapping_add(conf!(task_comm) as usize).cast(),
        );
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
