//! sched/sched_process_exec: a process replaced its image.

use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_ringbuf_output},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::warn;
use tracer_common::{ARGV_LEN, EXEC_EVENT_MAX, ExecEvent, FILENAME_LEN, exec_flags, kind};

use crate::{
    config::conf,
    maps::{EVENTS, EXEC_SCRATCH, count_lost, count_seen, wakeup_flags},
    task::{fill_header, read, read_ptr},
};

const FIXED: usize = core::mem::size_of::<ExecEvent>();

/// `trace_sched_process_exec(current, old_pid, bprm)` in fs/exec.c
/// exec_binprm, after the new image is loaded: `current->mm` is the new mm, whose
/// argument area (mm->arg_start..arg_end) the kernel just filled in
/// create_elf_tables/copy_strings, so it is resident and can be read here. Reading
/// it later from /proc would miss short-lived processes.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let task: *const u8 = ctx.arg(0);
    let old_pid: u32 = ctx.arg(1);
    let bprm: *const u8 = ctx.arg(2);
    let Some(buf) = EXEC_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    unsafe {
        let buf = &mut *buf;
        let ev = &mut *(buf.as_mut_ptr() as *mut ExecEvent);
        fill_header(&mut ev.header, kind::EXEC, task, true);
        ev.old_tid = old_pid;
        ev.flags = 0;

        let filename = read_ptr(bprm, conf!(bprm_filename));
        let n = bpf_probe_read_kernel_str(
            ev.filename.as_mut_ptr().cast(),
            FILENAME_LEN as u32,
            filename.cast(),
        );
        if n < 0 {
            warn!(
                &ctx,
                "exec of pid {}: reading bprm->filename failed (error {}); the record has no file name",
                ev.header.pid,
                n
            );
        }
        let n = if n > 0 { n as u32 - 1 } else { 0 };
        if n as usize >= FILENAME_LEN - 1 {
            ev.flags |= exec_flags::FILENAME_TRUNCATED;
        }
        ev.filename_len = n;

        let mm = read_ptr(task, conf!(task_mm));
        let start = read::<u64>(mm, conf!(mm_arg_start));
        let end = read::<u64>(mm, conf!(mm_arg_end));
        if end < start || start == 0 {
            // A faulting read gives 0 (see task::read): a NULL mm, or offsets that
            // do not fit this kernel's mm_struct.
            warn!(
                &ctx,
                "exec of pid {}: unexpected argument area {:x}..{:x} in its mm (mm_struct arg_start..arg_end)",
                ev.header.pid,
                start,
                end
            );
        }
        let mut len = end.wrapping_sub(start);
        if len > ARGV_LEN as u64 {
            len = ARGV_LEN as u64;
            ev.flags |= exec_flags::ARGV_TRUNCATED;
        }
        // Masks restate the bound in a form the verifier tracks.
        let len = (len as u32) & (2 * ARGV_LEN as u32 - 1);
        let len = if len > ARGV_LEN as u32 {
            ARGV_LEN as u32
        } else {
            len
        };
        let mut got = 0u32;
        if len > 0 {
            let err =
                bpf_probe_read_user(buf.as_mut_ptr().add(FIXED).cast(), len, start as *const _);
            if err == 0 {
                got = len;
            } else {
                warn!(
                    &ctx,
                    "exec of pid {}: reading {} bytes of argv at {:x} failed (error {}); the record has no argv",
                    ev.header.pid,
                    len,
                    start,
                    err
                );
            }
        }
        ev.argv_len = got;

        let total = FIXED as u64 + got as u64;
        let total = if total > EXEC_EVENT_MAX as u64 {
            EXEC_EVENT_MAX as u64
        } else {
            total
        };
        count_seen(kind::EXEC);
        let ret = bpf_ringbuf_output(
            (&raw const EVENTS).cast_mut().cast(),
            buf.as_mut_ptr().cast(),
            total,
            wakeup_flags(),
        );
        if ret != 0 {
            count_lost(kind::EXEC);
        }
    }
    0
}
