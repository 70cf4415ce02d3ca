//! sched/sched_process_exit: a thread exited; when it was the last, the process died.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{ExitEvent, exit_flags, kind};

use crate::{
    config::conf,
    maps::{EVENTS, count_lost, count_seen, wakeup_flags},
    task::{fill_header, read, read_ptr},
};

const SIGCHLD: u32 = 17;
const SIG_IGN: u64 = 1;
const SA_NOCLDWAIT: u64 = 2;

/// `trace_sched_process_exit(tsk, ..)` in kernel/exit.c do_exit, once per thread.
/// do_exit has already done `atomic_dec_and_test(&tsk->signal->live)`, so
/// `live == 0` means this is the last thread: the process is dead. That holds on
/// every kernel, unlike the `group_dead` argument 6.18 added, and it is right when
/// the leader exited before the other threads (then the last thread is not the
/// leader, and pid == tid would be wrong).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    if conf!(ready) == 0 {
        return 0;
    }
    let task: *const u8 = ctx.arg(0);
    unsafe {
        let signal = read_ptr(task, conf!(task_signal));
        let live = read::<i32>(signal, conf!(signal_live));
        let group_dead = live == 0;
        if !group_dead && conf!(threads) == 0 {
            return 0;
        }
        // What wait() will report (kernel/exit.c wait_task_zombie): the group exit
        // code after exit_group() or a fatal signal, else the leader's own code.
        let sflags = read::<u32>(signal, conf!(signal_flags));
        let status = if sflags & conf!(signal_group_exit_flag) != 0 {
            read::<u32>(signal, conf!(signal_group_exit_code))
        } else {
            let leader = read_ptr(task, conf!(task_group_leader));
            if group_dead {
                read::<u32>(leader, conf!(task_exit_code))
            } else {
                read::<u32>(task, conf!(task_exit_code))
            }
        };
        let mut flags = 0;
        if group_dead {
            flags |= exit_flags::GROUP_DEAD;
            if autoreap(task) {
                flags |= exit_flags::AUTOREAP;
            }
        }
        count_seen(kind::EXIT);
        let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) else {
            count_lost(kind::EXIT);
            return 0;
        };
        let ev = &mut *entry.as_mut_ptr();
        fill_header(&mut ev.header, kind::EXIT, task, true);
        ev.status = status;
        ev.flags = flags;
        entry.submit(wakeup_flags());
    }
    0
}

/// Whether the kernel will release the dead process without anyone calling
/// wait(): kernel/signal.c do_notify_parent sets `autoreap` when the exit signal
/// is SIGCHLD and the parent ignores SIGCHLD or set SA_NOCLDWAIT. The leader's
/// exit_signal and parent are what count (kernel/exit.c exit_notify, release_task).
#[inline(always)]
unsafe fn autoreap(task: *const u8) -> bool {
    unsafe {
        let leader = read_ptr(task, conf!(task_group_leader));
        let exit_signal = read::<i32>(leader, conf!(task_exit_signal));
        if exit_signal != SIGCHLD as i32 {
            return false;
        }
        let parent = read_ptr(leader, conf!(task_real_parent));
        let sighand = read_ptr(parent, conf!(task_sighand));
        let action = sighand
            .wrapping_add(conf!(sighand_action) as usize)
            .wrapping_add(((SIGCHLD - 1) * conf!(k_sigaction_size)) as usize);
        let handler = read::<u64>(action, conf!(sigaction_handler));
        let sa_flags = read::<u64>(action, conf!(sigaction_flags));
        handler == SIG_IGN || sa_flags & SA_NOCLDWAIT != 0
    }
}
