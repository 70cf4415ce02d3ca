//! Reaps no event showed. pid 1 (and any reaper) may release a zombie without a
//! wait event the probes see, and `sched_process_free` is no dependable sign
//! either: the kernel runs it from an RCU callback once the last reference to the
//! task is dropped (kernel/exit.c delayed_put_task_struct), seconds later or not
//! during the run at all. So the agent checks overdue zombies against /proc and
//! tells the model what it found; the model stays pure and takes the fact "gone
//! at T" like any event.

use crate::record::{Body, ProcId, ReapWindow, Record};

use super::Model;
use super::proc::{ReapHow, ReapInfo};

impl Model {
    /// The agent found `id` gone from /proc (or its pid held by a newer process)
    /// at `gone_ns`, having last seen it present at `seen_ns` (if ever). Call only
    /// once events up to `gone_ns` have been applied (plus the ring's reordering
    /// slack): a reap event still in the ring would otherwise be taken for a new
    /// process's. A zombie is released with an inferred `reap` record whose reaper
    /// is its parent as the model knows it (after reparenting: the subreaper or
    /// init that adopted it), stamped `gone_ns`, with the window
    /// (`max(exit, seen_ns)`, `gone_ns`). A process the model still thinks alive
    /// lost its exit: it is presumed dead ([`Model::vanished`]). A process already
    /// released, or not held, is left alone.
    pub fn reaped_unseen(
        &mut self,
        id: ProcId,
        seen_ns: Option<u64>,
        gone_ns: u64,
        out: &mut Vec<Record>,
    ) {
        let Some(p) = self.procs.get(&id) else { return };
        if p.is_released() {
            return;
        }
        if !p.is_zombie() {
            self.vanished(id, gone_ns, out);
            return;
        }
        let exit_ns = p.exit.and_then(|e| e.ktime_ns);
        let after_ns = match (exit_ns, seen_ns) {
            (Some(e), Some(s)) => Some(e.max(s)),
            (e, s) => e.or(s),
        }
        .map(|a| a.min(gone_ns));
        let reaper = p.parent;
        let reaper_pid = (p.ppid != 0).then_some(p.ppid);
        let reaper_comm = reaper.and_then(|r| self.procs.get(&r)).map(|r| r.comm);
        // The window's end: the record says it was a zombie at most this long.
        let zombie_ns = exit_ns.map(|e| gone_ns.saturating_sub(e));
        if let Some(p) = self.procs.get_mut(&id) {
            p.reap = Some(ReapInfo {
                ktime_ns: gone_ns,
                reaper,
                reaper_pid,
                how: ReapHow::Inferred,
            });
        }
        self.stats.inferred_reaps += 1;
        if self.emits(id) {
            out.push(Record {
                ktime_ns: gone_ns,
                subject: self.subject_of_proc(id),
                body: Body::Reap {
                    zombie_ns,
                    reaper_pid,
                    reaper_comm,
                    autoreap: false,
                    inferred: Some(ReapWindow {
                        after_ns,
                        before_ns: gone_ns,
                    }),
                },
                uncertain: self.is_uncertain(id),
            });
        }
        self.release(id);
    }

    /// Zombies held (exited, not released), with their exit time when an event
    /// gave it (`None` for zombies of the start-up snapshot).
    pub fn zombies(&self) -> impl Iterator<Item = (ProcId, Option<u64>)> + '_ {
        self.pids.values().filter_map(|id| {
            let p = self.procs.get(id)?;
            p.is_zombie()
                .then(|| (*id, p.exit.and_then(|e| e.ktime_ns)))
        })
    }
}
