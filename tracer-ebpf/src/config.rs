//! The load-time configuration: offsets for the running kernel and settings.

use tracer_common::Config;

/// Filled in by the agent with `EbpfLoader::override_global("CONFIG", ..)`; it lives
/// in .rodata, so after load the verifier sees constants and prunes dead branches.
#[unsafe(no_mangle)]
pub static CONFIG: Config = Config {
    task_pid: 0,
    task_tgid: 0,
    task_real_parent: 0,
    task_group_leader: 0,
    task_start_boottime: 0,
    task_comm: 0,
    task_exit_code: 0,
    task_exit_signal: 0,
    task_signal: 0,
    task_sighand: 0,
    task_mm: 0,
    signal_live: 0,
    signal_flags: 0,
    signal_group_exit_code: 0,
    signal_subreaper_byte: 0,
    signal_subreaper_mask: 0,
    sighand_action: 0,
    k_sigaction_size: 0,
    sigaction_handler: 0,
    sigaction_flags: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    bprm_filename: 0,
    execve_filename: 0,
    execveat_filename: 0,
    sys_exit_ret: 0,
    waitid_infop: 0,
    waitid_options: 0,
    siginfo_pid: 0,
    regs_arg0: 0,
    regs_arg1: 0,
    waitid_info_pid: 0,
    signal_group_exit_flag: 0,
    threads: 0,
    wakeup_bytes: 0,
    ready: 0,
    task_btf: 0,
};

/// Reads one field of [`CONFIG`]. The volatile read keeps the compiler from
/// folding the all-zero initialiser into the code; the real value is patched in
/// at load time.
macro_rules! conf {
    ($field:ident) => {
        $crate::config::load(&raw const $crate::config::CONFIG.$field)
    };
}
pub(crate) use conf;

#[inline(always)]
pub fn load(field: *const u32) -> u32 {
    // SAFETY: `field` points into the CONFIG static, which is always valid.
    unsafe { core::ptr::read_volatile(field) }
}
