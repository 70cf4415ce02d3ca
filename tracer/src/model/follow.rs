//! Follow mode: `-p PID` and `-- COMMAND` restrict the output to one subtree.
//!
//! A followed process passes the mark to every process it forks (as real parent or
//! as the caller of clone with CLONE_PARENT), and the mark survives reparenting: an
//! orphan that outlives the command is still reported, and the run lasts until the
//! last followed process is released.

use std::collections::BTreeSet;

use crate::record::{ProcId, Record};

use super::Model;

impl Model {
    /// Follows the process currently holding `pid`, its current descendants, and all
    /// their future descendants. Returns false if no process with that pid is held
    /// (seed the model first).
    ///
    /// Current descendants are included so that e.g. `-p $(pidof make)` also reports
    /// the compilers already running under it.
    pub fn follow_pid(&mut self, pid: u32) -> bool {
        let Some(&id) = self.pids.get(&pid) else {
            return false;
        };
        self.following = true;
        self.follow_subtree(id);
        true
    }

    /// The agent spawned `pid`: follow it and all its descendants. Its fork event may
    /// already have been applied (then it is marked now) or may come later (then the
    /// first process with that pid the model learns about is marked).
    pub fn follow_spawned(&mut self, pid: u32) {
        self.following = true;
        match self.pids.get(&pid) {
            Some(&id) => self.follow_subtree(id),
            None => {
                self.pending_spawn.insert(pid);
            }
        }
    }

    /// True once a follow was requested: records are then only emitted about
    /// followed processes (`lost` records always).
    pub fn is_following(&self) -> bool {
        self.following
    }

    /// Followed processes not yet released, plus spawned pids not seen yet. 0 means a
    /// `-- COMMAND` or `-p` run is over.
    pub fn followed_remaining(&self) -> usize {
        self.followed.len() + self.pending_spawn.len()
    }

    /// Followed processes not yet released: after lost events the agent checks
    /// them against the system (see [`Model::vanished`]).
    pub fn followed_ids(&self) -> impl Iterator<Item = ProcId> + '_ {
        self.followed.iter().copied()
    }

    /// The agent found `id` gone from the system although its end was never seen
    /// (its exit, reap or free event was lost): release it as its free would have,
    /// pushing an uncertain `reap` record with no reaper (see the module's
    /// "Uncertainty").
    pub fn vanished(&mut self, id: ProcId, ktime_ns: u64, out: &mut Vec<Record>) {
        let start = out.len();
        self.presume_dead(id, ktime_ns);
        self.flush_pending(start, out);
    }

    /// Whether the process currently holding `pid` is followed (e.g. to filter the
    /// start-up records after [`Model::follow_pid`]).
    pub fn is_followed_pid(&self, pid: u32) -> bool {
        self.by_pid(pid).is_some_and(|p| p.followed)
    }

    pub(super) fn is_followed(&self, id: ProcId) -> bool {
        self.procs.get(&id).is_some_and(|p| p.followed)
    }

    /// Whether records about `id` go out.
    pub(super) fn emits(&self, id: ProcId) -> bool {
        !self.following || self.is_followed(id)
    }

    pub(super) fn mark_followed(&mut self, id: ProcId) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        p.followed = true;
        if !p.is_released() {
            self.followed.insert(id);
        }
    }

    fn follow_subtree(&mut self, root: ProcId) {
        let mut stack = vec![root];
        let mut seen = BTreeSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            self.mark_followed(id);
            if let Some(p) = self.procs.get(&id) {
                stack.extend(p.children.iter().copied());
            }
        }
    }
}
