//! One handler per kernel event kind.

use std::sync::Arc;

use crate::event::{Event, Exec, ExecFailed, Exit, ExitStatus, Fork, ForkFailed, Task, Wait};
use crate::record::{Body, ProcId, Record};

use super::Model;
use super::proc::{ExecInfo, ExitInfo, Proc, ReapHow, ReapInfo};
use super::tree::Lookup;

impl Model {
    /// The process `task` belongs to, created on the fly if the model never saw it
    /// (born before a lost fork, or before the /proc scan): its parent is whoever
    /// holds `task.ppid`, else it is a new root. `None` if the event is stale.
    fn task_proc(&mut self, task: &Task, ktime_ns: u64) -> Option<ProcId> {
        let id = self.id_of(task);
        match self.lookup(id, ktime_ns) {
            Lookup::Held(id) => Some(id),
            Lookup::Absent => {
                let mut proc = Proc::from_task(id, task);
                let parent = self.pids.get(&task.ppid).copied();
                proc.parent = parent;
                proc.creator = parent;
                self.insert(proc);
                Some(id)
            }
            Lookup::Stale | Lookup::Ended => {
                self.stats.stale += 1;
                None
            }
        }
    }

    /// Like `task_proc`, but an event about a process already released changes
    /// nothing: it is counted as stale and `None` is returned.
    fn live_task_proc(&mut self, task: &Task, ktime_ns: u64) -> Option<ProcId> {
        let id = self.task_proc(task, ktime_ns)?;
        if self.procs.get(&id).is_none_or(|p| p.is_released()) {
            self.stats.stale += 1;
            return None;
        }
        self.touch(id, task);
        Some(id)
    }

    /// Takes what the event says about its own process.
    fn touch(&mut self, id: ProcId, task: &Task) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        p.subreaper = task.subreaper;
        p.uid = Some(task.uid);
        if p.start_ns.is_none() && task.start_ns != 0 {
            p.start_ns = Some(task.start_ns);
        }
        // comm and cgroup are per thread; the process's are its leader's.
        if task.tid == task.pid {
            p.comm = task.comm;
            if task.cgroup_id != 0 {
                p.cgroup_id = task.cgroup_id;
            }
        }
        self.correct_parent(id, task.ppid);
    }

    fn push(&self, out: &mut Vec<Record>, ktime_ns: u64, id: ProcId, task: &Task, body: Body) {
        if self.emits(id) {
            // Only the end of a life sums it up; the other records tell one event.
            let uncertain =
                matches!(body, Body::Exit { .. } | Body::Reap { .. }) && self.is_uncertain(id);
            out.push(Record {
                ktime_ns,
                subject: Some(self.subject_of_task(id, task)),
                body,
                uncertain,
            });
        }
    }

    pub(super) fn is_uncertain(&self, id: ProcId) -> bool {
        self.procs.get(&id).is_some_and(|p| p.uncertain)
    }

    pub(super) fn fork(&mut self, ev: &Event, f: &Fork, out: &mut Vec<Record>) {
        let task = &ev.task;
        if task.tid != task.pid {
            return self.thread_fork(ev, f, out);
        }
        let t = ev.ktime_ns;
        // The event names the parent exactly; trust it over what we hold for its pid.
        let named_parent = (f.parent_start_ns != 0 && task.ppid != 0)
            .then(|| ProcId::from_start_ns(task.ppid, f.parent_start_ns));
        let parent = match named_parent {
            Some(p) => match self.lookup(p, t) {
                Lookup::Held(p) if self.procs.get(&p).is_some_and(|q| !q.is_released()) => Some(p),
                // Unknown parent: the child is a new root.
                _ => None,
            },
            None => self.pids.get(&task.ppid).copied(),
        };
        let id = self.id_of(task);
        let parent = parent.filter(|&p| p != id);
        // With CLONE_PARENT the caller is not the parent; the child still runs the
        // caller's image (kernel/fork.c copy_mm copies current->mm).
        let caller = self
            .pids
            .get(&f.creator_pid)
            .copied()
            .filter(|&c| c != id && f.creator_pid != 0)
            .or(parent);
        let followed = parent.is_some_and(|p| self.is_followed(p))
            || caller.is_some_and(|c| self.is_followed(c));
        let (filename, argv) = match caller.and_then(|c| self.procs.get(&c)) {
            Some(c) => (c.filename.clone(), Arc::clone(&c.argv)),
            None => (None, Arc::from([])),
        };
        match self.lookup(id, t) {
            Lookup::Stale => {
                self.stats.stale += 1;
                return;
            }
            // Its end overtook its fork (an autoreaped child, say) and it is already
            // dropped: the fork is still news, but there is nothing left to update.
            Lookup::Ended => {}
            Lookup::Absent => {
                let mut proc = Proc::from_task(id, task);
                proc.parent = parent;
                proc.creator = parent;
                proc.followed = followed;
                proc.filename = filename;
                proc.argv = argv;
                self.insert(proc);
            }
            Lookup::Held(id) => {
                // Seeded in the start-up race, or created by an event that overtook
                // its fork: the fork is still news, and it knows the start and parent.
                if self.procs.get(&id).is_some_and(|p| !p.is_released()) {
                    self.set_parent(id, parent, task.ppid);
                    self.set_creator(id, parent);
                    if let Some(p) = self.procs.get_mut(&id) {
                        if task.start_ns != 0 {
                            p.start_ns = Some(task.start_ns);
                        }
                        if p.image_unknown() {
                            p.filename = filename;
                            p.argv = argv;
                        }
                    }
                    if followed || self.pending_spawn.remove(&id.pid) {
                        self.mark_followed(id);
                    }
                }
            }
        }
        let body = Body::Fork {
            parent_proc_id: named_parent.or(parent),
            thread: false,
            clone_flags: (f.clone_flags != 0).then_some(f.clone_flags),
        };
        self.push(out, t, id, task, body);
    }

    fn thread_fork(&mut self, ev: &Event, f: &Fork, out: &mut Vec<Record>) {
        let task = &ev.task;
        let Some(id) = self.live_task_proc(task, ev.ktime_ns) else {
            return;
        };
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        p.threads.insert(task.tid);
        let parent = p.parent;
        if self.cfg.threads {
            let body = Body::Fork {
                parent_proc_id: parent,
                thread: true,
                clone_flags: (f.clone_flags != 0).then_some(f.clone_flags),
            };
            self.push(out, ev.ktime_ns, id, task, body);
        }
    }

    pub(super) fn exec(&mut self, ev: &Event, x: Exec, out: &mut Vec<Record>) {
        let task = &ev.task;
        let Some(id) = self.live_task_proc(task, ev.ktime_ns) else {
            return;
        };
        let old_tid = (x.old_tid != 0 && x.old_tid != task.tid).then_some(x.old_tid);
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        p.comm = task.comm;
        // fs/exec.c de_thread: every other thread is killed and the exec'ing thread
        // takes over the leader's pid, so the process is single-threaded again and
        // `old_tid` no longer exists.
        p.threads.clear();
        // One copy, shared by the process, its history and the children it forks.
        let filename: Arc<[u8]> = Arc::from(&x.filename[..]);
        let argv: Arc<[Vec<u8>]> = Arc::from(&x.argv[..]);
        p.filename = Some(Arc::clone(&filename));
        p.argv = Arc::clone(&argv);
        p.push_exec(ExecInfo {
            ktime_ns: ev.ktime_ns,
            filename,
            argv,
            argv_truncated: x.argv_truncated,
            old_tid,
        });
        let body = Body::Exec {
            filename: x.filename,
            argv: x.argv,
            argv_truncated: x.argv_truncated,
            argv_redacted: false,
            old_tid,
        };
        self.push(out, ev.ktime_ns, id, task, body);
    }

    pub(super) fn exec_failed(&mut self, ev: &Event, x: &ExecFailed, out: &mut Vec<Record>) {
        let task = &ev.task;
        let Some(id) = self.live_task_proc(task, ev.ktime_ns) else {
            return;
        };
        let body = Body::ExecFailed {
            filename: x.filename.clone(),
            errno: x.errno,
        };
        self.push(out, ev.ktime_ns, id, task, body);
    }

    pub(super) fn fork_failed(&mut self, ev: &Event, x: &ForkFailed, out: &mut Vec<Record>) {
        let task = &ev.task;
        let Some(id) = self.live_task_proc(task, ev.ktime_ns) else {
            return;
        };
        self.push(
            out,
            ev.ktime_ns,
            id,
            task,
            Body::ForkFailed { errno: x.errno },
        );
    }

    pub(super) fn exit(&mut self, ev: &Event, x: &Exit, out: &mut Vec<Record>) {
        let task = &ev.task;
        let t = ev.ktime_ns;
        let Some(id) = self.live_task_proc(task, t) else {
            return;
        };
        let status = ExitStatus::from_wait_status(x.status);
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if !x.group_dead {
            // One thread of a live process; the leader may be the one going first.
            p.threads.remove(&task.tid);
            if self.cfg.threads {
                let body = Body::Exit {
                    exit_code: status.code,
                    signal: status.signal,
                    core_dumped: status.core_dumped,
                    lifetime_ns: None,
                    thread: true,
                };
                self.push(out, t, id, task, body);
            }
            return;
        }
        // The last thread is gone (signal->live reached 0 in kernel/exit.c do_exit),
        // whichever it was: exactly one process exit. A process already known to
        // have exited is a repeat, except a zombie from the /proc scan, whose exit
        // event this is (start-up race).
        if p.exit.is_some_and(|e| e.ktime_ns.is_some()) {
            self.stats.stale += 1;
            return;
        }
        p.exit = Some(ExitInfo {
            ktime_ns: Some(t),
            status: Some(status),
            tid: task.tid,
        });
        p.threads.clear();
        let lifetime_ns = p.start_estimate_ns().map(|s| t.saturating_sub(s));
        let body = Body::Exit {
            exit_code: status.code,
            signal: status.signal,
            core_dumped: status.core_dumped,
            lifetime_ns,
            thread: false,
        };
        self.push(out, t, id, task, body);
        self.reparent_children(id);
        if x.autoreap {
            if let Some(p) = self.procs.get_mut(&id) {
                p.reap = Some(ReapInfo {
                    ktime_ns: t,
                    reaper: None,
                    reaper_pid: None,
                    how: ReapHow::Autoreap,
                });
            }
            let body = Body::Reap {
                zombie_ns: Some(0),
                reaper_pid: None,
                reaper_comm: None,
                autoreap: true,
                inferred: None,
            };
            self.push(out, t, id, task, body);
            self.release(id);
        }
    }

    /// A wait4/waitid returned `child_pid` (0: not told) to `ev.task`. It is a reap only if that
    /// pid is a zombie child of the waiting process; otherwise it was a stop or
    /// continue report (WUNTRACED/WCONTINUED), a ptrace tracee, or a pid in another
    /// pid namespace, and the release will be learnt from the free event instead.
    pub(super) fn wait(&mut self, ev: &Event, w: &Wait, out: &mut Vec<Record>) {
        let task = &ev.task;
        let t = ev.ktime_ns;
        let Some(reaper) = self.live_task_proc(task, t) else {
            return;
        };
        let child = if w.child_pid == 0 {
            self.only_waitable_zombie(reaper, w.options)
        } else {
            self.pids.get(&w.child_pid).copied().filter(|&c| {
                self.procs.get(&c).is_some_and(|p| {
                    p.is_zombie()
                        && (p.parent == Some(reaper)
                            || (p.parent.is_none() && p.ppid == reaper.pid))
                })
            })
        };
        let Some(child) = child else {
            self.stats.unmatched_waits += 1;
            if w.child_pid == 0 {
                self.stats.unnamed_waits += 1;
            }
            return;
        };
        if w.child_pid == 0 {
            self.stats.only_child_reaps += 1;
        }
        let reaper_comm = self.procs.get(&reaper).map(|p| p.comm);
        let Some(p) = self.procs.get_mut(&child) else {
            return;
        };
        let zombie_ns = p.exit.and_then(|e| e.ktime_ns).map(|e| t.saturating_sub(e));
        p.ppid = reaper.pid;
        p.reap = Some(ReapInfo {
            ktime_ns: t,
            reaper: Some(reaper),
            reaper_pid: Some(reaper.pid),
            how: ReapHow::Wait,
        });
        let body = Body::Reap {
            zombie_ns,
            reaper_pid: Some(reaper.pid),
            reaper_comm,
            autoreap: false,
            inferred: None,
        };
        if self.emits(child) {
            out.push(Record {
                ktime_ns: t,
                subject: self.subject_of_proc(child),
                body,
                uncertain: self.is_uncertain(child),
            });
        }
        self.release(child);
    }

    /// The child a blocking waitid(WEXITED) with a NULL `infop` collected. The
    /// kernel found one (it returned 0 without WNOHANG: kernel/exit.c
    /// SYSCALL_DEFINE5(waitid) drops do_wait's pid) but does not say which. Every
    /// child it could have reaped exited before the wait returned, so its exit is
    /// among the events applied so far: the waiter's zombie children the model
    /// holds include it. When there is just one, that is the one, at the wait's
    /// exact time. Not when events were lost while the waiter lived (a child's
    /// exit may be missing), and not with WSTOPPED/WCONTINUED (it may have
    /// reported a stopped child) or WNOWAIT (nothing was reaped). A ptracer that
    /// collects a tracee's exit this way is the case the model cannot see.
    fn only_waitable_zombie(&self, reaper: ProcId, options: u32) -> Option<ProcId> {
        use tracer_common::wait_options as o;
        let reaps = options & o::WEXITED != 0
            && options & (o::WNOHANG | o::WNOWAIT | o::WSTOPPED | o::WCONTINUED) == 0;
        if !reaps || self.is_uncertain(reaper) {
            return None;
        }
        let mut zombies = self
            .procs
            .get(&reaper)?
            .children
            .iter()
            .filter(|c| self.procs.get(c).is_some_and(Proc::is_zombie));
        let only = *zombies.next()?;
        zombies.next().is_none().then_some(only)
    }

    /// A thread-group leader's task_struct was freed (kernel/exit.c
    /// delayed_put_task_struct): the process is gone for good, however it went.
    pub(super) fn free(&mut self, ev: &Event, out: &mut Vec<Record>) {
        let task = &ev.task;
        let t = ev.ktime_ns;
        // After a non-leader exec, the old leader's task is freed under the exec'ing
        // thread's old tid: that is not the end of the process.
        if task.tid != task.pid {
            return;
        }
        let id = match self.lookup(self.id_of(task), t) {
            Lookup::Held(id) => id,
            // Never seen, or already dropped after its reap: nothing to tell.
            Lookup::Absent | Lookup::Stale | Lookup::Ended => return,
        };
        let Some(p) = self.procs.get(&id) else { return };
        if p.is_released() {
            return;
        }
        if p.exit.is_none() {
            // Its exit was lost.
            self.presume_dead(id, t);
            return;
        }
        // Exited, and no reap seen: the wait was not visible (waitid with a NULL
        // infop, a reaper in another pid namespace, a lost wait event) or the kernel
        // released it without one (reparented to a parent that ignores SIGCHLD,
        // kernel/exit.c reparent_leader). Its real parent now is the only process
        // that could have reaped it, so the record names it.
        self.touch(id, task);
        let Some(p) = self.procs.get(&id) else { return };
        let reaper = p.parent;
        let reaper_pid = (p.ppid != 0).then_some(p.ppid);
        let reaper_comm = reaper.and_then(|r| self.procs.get(&r)).map(|r| r.comm);
        let zombie_ns = p.exit.and_then(|e| e.ktime_ns).map(|e| t.saturating_sub(e));
        if let Some(p) = self.procs.get_mut(&id) {
            p.reap = Some(ReapInfo {
                ktime_ns: t,
                reaper,
                reaper_pid,
                how: ReapHow::Free,
            });
        }
        let body = Body::Reap {
            zombie_ns,
            reaper_pid,
            reaper_comm,
            autoreap: false,
            inferred: None,
        };
        if self.emits(id) {
            out.push(Record {
                ktime_ns: t,
                subject: self.subject_of_proc(id),
                body,
                uncertain: self.is_uncertain(id),
            });
        }
        self.release(id);
    }
}
