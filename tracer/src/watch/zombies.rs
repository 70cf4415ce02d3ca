//! Zombies whose reap no event shows are checked against /proc, always (not only
//! after losses as [`super::recheck`] does): pid 1 reaps the orphans it adopts
//! without a wait the probes see, and `sched_process_free` may come seconds
//! later or never during the run (see [`crate::model::Model::reaped_unseen`]).
//!
//! Which: zombies not reaped [`OVERDUE_NS`] after their exit. A reap normally
//! follows an exit within milliseconds (the parent's SIGCHLD handler), and its
//! wait event is applied within a tick; checking every zombie at once would cost
//! a /proc read per exit of every short-lived process (thousands a second in a
//! build) for reaps that come anyway. The price: a reap inferred for a zombie
//! reaped right away is stamped up to about [`OVERDUE_NS`] + [`REFILL_NS`] late,
//! and its window says so.
//!
//! Cost: at most [`LOOKUPS_PER_SEC`] stats of /proc/PID a second, round robin
//! over the overdue zombies, so 30,000 zombies are each checked every
//! 30,000 / [`LOOKUPS_PER_SEC`] = 6 seconds, at a cost of a few percent of one
//! core (see docs/events.md, `inferred`, for the measurement).
//!
//! Order: as in [`super::recheck`], a zombie found gone at V is released only
//! once the events applied have reached V plus [`REORDER_SLACK_NS`]: its wait
//! event, if any, would have been applied by then and given the exact reap.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::Path,
};

use super::recheck::REORDER_SLACK_NS;
use crate::{
    model::Model,
    procfs,
    record::{ProcId, Record},
};

/// A zombie is checked once it has not been reaped this long after its exit.
pub const OVERDUE_NS: u64 = 1_000_000_000;
/// How often the model's zombies are scanned for newly overdue ones.
pub const REFILL_NS: u64 = 250_000_000;
/// Lookups of /proc/PID per second at most: 8-17 us each measured on a loaded
/// 2-core VM, so at most 4-8% of one core.
pub const LOOKUPS_PER_SEC: u64 = 5_000;

#[derive(Debug, Default)]
pub struct Zombies {
    /// Overdue zombies to check, round robin.
    queue: VecDeque<ProcId>,
    /// In `queue` or in `suspects`.
    queued: HashSet<ProcId>,
    /// When each was last found present.
    seen: HashMap<ProcId, u64>,
    /// Found gone, at that time, not yet released.
    suspects: Vec<(ProcId, u64)>,
    /// Lookups that may be spent now (the budget accrues with time).
    tokens: u64,
    last_ns: u64,
    last_refill_ns: u64,
    /// /proc lookups done.
    pub lookups: u64,
}

impl Zombies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Called on every tick with the time (CLOCK_BOOTTIME ns) and the time up to
    /// which events have been applied. Pushes the records of zombies released.
    pub fn run(&mut self, model: &mut Model, now: u64, applied: u64, out: &mut Vec<Record>) {
        self.release_ripe(model, applied, out);
        if now.saturating_sub(self.last_refill_ns) >= REFILL_NS {
            self.last_refill_ns = now;
            self.refill(model, now);
        }
        let accrued =
            now.saturating_sub(self.last_ns) as u128 * LOOKUPS_PER_SEC as u128 / 1_000_000_000;
        self.last_ns = now;
        // At most a quarter second's worth at once: an idle spell does not
        // save up for a burst.
        self.tokens = (self.tokens + accrued as u64).min(LOOKUPS_PER_SEC / 4);
        // Each zombie once per call at most.
        let mut left = self.queue.len();
        while left > 0 && self.tokens > 0 {
            left -= 1;
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            if !model.get(id).is_some_and(|p| p.is_zombie()) {
                self.forget(id);
                continue;
            }
            self.tokens -= 1;
            if self.check(id, now) {
                self.queue.push_back(id);
            }
        }
    }

    /// Queues the zombies now overdue.
    fn refill(&mut self, model: &Model, now: u64) {
        for (id, exit_ns) in model.zombies() {
            let overdue = exit_ns.is_none_or(|e| e.saturating_add(OVERDUE_NS) <= now);
            if overdue && self.queued.insert(id) {
                self.queue.push_back(id);
            }
        }
    }

    /// Looks /proc up for `id`: true if present, false if gone, and then it is a
    /// suspect. A stat of /proc/PID, not a read of /proc/PID/stat: measured here
    /// the read costs 10 to 20 times more (fs/proc/array.c do_task_stat formats
    /// fifty fields), and the start time it gives is not needed without losses:
    /// a zombie holds its pid until released (kernel/exit.c release_task), and a
    /// process that took the pid after would show in its fork event, which makes
    /// the model drop the zombie (pid reuse rule). After losses
    /// [`super::recheck`] compares start times.
    fn check(&mut self, id: ProcId, now: u64) -> bool {
        self.lookups += 1;
        if procfs::pid_present(Path::new("/proc"), id.pid) {
            self.seen.insert(id, now);
            true
        } else {
            self.suspects.push((id, now));
            false
        }
    }

    fn forget(&mut self, id: ProcId) {
        self.queued.remove(&id);
        self.seen.remove(&id);
    }

    fn release_ripe(&mut self, model: &mut Model, applied: u64, out: &mut Vec<Record>) {
        let mut i = 0;
        while i < self.suspects.len() {
            let (id, gone) = self.suspects[i];
            if applied > gone.saturating_add(REORDER_SLACK_NS) {
                self.suspects.swap_remove(i);
                // Released meanwhile by its own event: nothing is inferred.
                model.reaped_unseen(id, self.seen.get(&id).copied(), gone, out);
                self.forget(id);
            } else {
                i += 1;
            }
        }
    }

    /// At the end of a run: checks every zombie the model holds, overdue or
    /// not, without the budget. Returns how many were found gone; release them
    /// with [`Zombies::finish`] once the ring has been drained past `now` plus
    /// [`REORDER_SLACK_NS`].
    pub fn check_all(&mut self, model: &Model, now: u64) -> usize {
        let before = self.suspects.len();
        let ids: Vec<ProcId> = model.zombies().map(|(id, _)| id).collect();
        for id in ids {
            if self.suspects.iter().any(|&(s, _)| s == id) {
                continue;
            }
            self.queued.insert(id);
            self.check(id, now);
        }
        self.suspects.len() - before
    }

    /// Releases the suspects whose end events would have been applied by
    /// `applied`; the others stay zombies in the recording (their reap, if it
    /// came, may still be in the ring).
    pub fn finish(&mut self, model: &mut Model, applied: u64, out: &mut Vec<Record>) {
        self.release_ripe(model, applied, out);
    }

    /// Zombies found gone and not yet released.
    #[cfg(test)]
    pub fn suspects(&self) -> usize {
        self.suspects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comm, Event, EventKind, Exit};
    use crate::model::ModelConfig;
    use crate::record::Body;
    use crate::watch::gone::{GONE, S, fork_by_init, task};

    fn ev(ktime_ns: u64, kind: EventKind) -> Event {
        Event {
            ktime_ns,
            task: task(GONE, 10 * S),
            kind,
        }
    }

    #[test]
    fn an_overdue_zombie_gone_from_proc_is_released_once_events_caught_up() {
        let mut m = Model::new(ModelConfig::default());
        let mut out = Vec::new();
        m.apply(ev(10 * S, fork_by_init()), &mut out);
        let exit = Exit {
            status: 0,
            group_dead: true,
            autoreap: false,
        };
        m.apply(ev(11 * S, EventKind::Exit(exit)), &mut out);
        out.clear();
        let mut z = Zombies::new();
        // Not overdue yet: not even read.
        z.run(&mut m, 11 * S + 500_000_000, 11 * S, &mut out);
        assert_eq!((z.lookups, z.suspects()), (0, 0));
        // Overdue and gone, found at 12.5 s with events applied up to 12 s only:
        // its reap may still be in the ring.
        z.run(&mut m, 12 * S + 500_000_000, 12 * S, &mut out);
        assert_eq!((z.lookups, z.suspects()), (1, 1));
        assert!(out.is_empty());
        // Within the slack: still waiting.
        z.run(&mut m, 12 * S + 550_000_000, 12 * S + 550_000_000, &mut out);
        assert!(out.is_empty());
        // Caught up: an inferred reap, stamped when it was found gone.
        z.run(&mut m, 13 * S, 13 * S, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].ktime_ns, 12 * S + 500_000_000);
        let Body::Reap {
            inferred: Some(w),
            reaper_pid: Some(1),
            ..
        } = out[0].body
        else {
            panic!("{out:?}");
        };
        assert_eq!(w.after_ns, Some(11 * S));
        assert_eq!(m.zombie_count(), 0);
        assert_eq!(z.suspects(), 0);
        // Nothing left to read.
        z.run(&mut m, 14 * S, 14 * S, &mut out);
        assert_eq!(z.lookups, 1);
    }

    fn seed_zombie(pid: u32, start_ticks: u64) -> crate::model::SeedProc {
        crate::model::SeedProc {
            pid,
            ppid: 1,
            start_ticks,
            comm: Comm::new(b"z"),
            state: 'Z',
            filename: None,
            argv: Vec::new(),
            uid: None,
            cgroup_id: 0,
            subreaper: false,
        }
    }

    #[test]
    fn the_budget_bounds_the_reads() {
        let mut m = Model::new(ModelConfig::default());
        let mut out = Vec::new();
        // Zombies of the start-up snapshot are overdue at once; these are not in
        // /proc (pids above pid_max).
        m.seed(
            (0..2_000).map(|i| seed_zombie(GONE + i, 5)).collect(),
            S,
            &mut out,
        );
        let mut z = Zombies::new();
        z.run(&mut m, 100 * S, 100 * S, &mut out);
        // A quarter second's worth at most at once.
        assert_eq!(z.lookups, LOOKUPS_PER_SEC / 4);
        // 100 ms later: 100 ms worth more.
        z.run(&mut m, 100 * S + S / 10, 100 * S, &mut out);
        assert_eq!(z.lookups, LOOKUPS_PER_SEC / 4 + LOOKUPS_PER_SEC / 10);
    }

    #[test]
    fn a_present_zombie_is_read_once_per_call_and_kept() {
        let mut m = Model::new(ModelConfig::default());
        let mut out = Vec::new();
        // Our own process stands for a zombie that stays.
        let me = std::process::id();
        let start = procfs::start_ticks(Path::new("/proc"), me).expect("own stat");
        m.seed(vec![seed_zombie(me, start)], S, &mut out);
        let mut z = Zombies::new();
        for t in [100 * S, 100 * S + 1_000_000, 101 * S] {
            z.run(&mut m, t, t, &mut out);
        }
        assert_eq!(z.lookups, 3);
        assert_eq!(m.zombie_count(), 1);
        assert_eq!(z.suspects(), 0);
        assert!(
            out.iter().all(|r| r.body.type_name() == "process"),
            "{out:?}"
        );
    }
}
