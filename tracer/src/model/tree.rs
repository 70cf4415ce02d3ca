//! The tree itself: identity look-ups, parent links, reparenting, release and pruning.
//!
//! Invariants (checked by `check_invariants` in tests):
//! - `pids` maps a pid to the one held, unreleased process with that pid: the kernel
//!   frees a pid only when the process is released (kernel/exit.c release_task), so
//!   a zombie still holds its pid.
//! - `parent` and `children` mirror each other; a parent is always held and unreleased;
//!   released processes have neither.
//! - `creator` is always held; `created` counts the held processes naming it.
//! - Neither links ever form a cycle, so every upward walk ends.

use std::collections::BTreeSet;

use crate::event::Task;
use crate::record::{Body, ProcId, Record};

use super::Model;
use super::proc::Proc;

/// What the model holds for a process id an event names.
pub(super) enum Lookup {
    /// This very process is held (it may be released).
    Held(ProcId),
    /// Not held. If another process held the pid, it was older and is now marked gone.
    Absent,
    /// Not held, and the pid belongs to a process that started later: the event is
    /// about a process older than the one we know. Nothing can be done with it.
    Stale,
    /// Released and already dropped: a late event must not bring it back.
    Ended,
}

/// Released processes remembered after they are dropped, so that a late event about
/// one (out of order, or repeated) is not taken for a new process that would then
/// stay in the model, and in a follow run's count, until its pid is reused.
pub(super) const ENDED_MEMORY: usize = 4096;

impl Model {
    /// The process an event's task belongs to.
    pub(super) fn id_of(&self, task: &Task) -> ProcId {
        if task.start_ns == 0 {
            // Start time not read by the kernel side: fall back on the pid alone,
            // which is right unless the pid was reused meanwhile.
            if let Some(&id) = self.pids.get(&task.pid) {
                return id;
            }
        }
        ProcId::from_start_ns(task.pid, task.start_ns)
    }

    /// Finds `id`, applying the pid reuse rule: a pid is held by one process at a
    /// time, so if an event names a process that started after the one holding its
    /// pid, the holder must have ended without us seeing it (lost events). Two
    /// processes with the same pid are never merged.
    pub(super) fn lookup(&mut self, id: ProcId, ktime_ns: u64) -> Lookup {
        if self.procs.contains_key(&id) {
            return Lookup::Held(id);
        }
        if self.ended.contains(&id) {
            return Lookup::Ended;
        }
        match self.pids.get(&id.pid).copied() {
            Some(holder) if holder.start_ticks > id.start_ticks => Lookup::Stale,
            Some(holder) => {
                self.presume_dead(holder, ktime_ns);
                Lookup::Absent
            }
            None => Lookup::Absent,
        }
    }

    /// Adds a process that `lookup` found absent. Its `parent` and `creator` fields
    /// are taken as wishes: ids not held are dropped.
    pub(super) fn insert(&mut self, mut proc: Proc) {
        let id = proc.id;
        let parent = proc.parent.take();
        let creator = proc.creator.take();
        let followed = proc.followed
            || self.pending_spawn.remove(&id.pid)
            || parent.is_some_and(|p| self.is_followed(p));
        let ppid = proc.ppid;
        proc.followed = false;
        // Born before the latest loss was reported: events of its life may be
        // among the lost ones (or still be arriving).
        if let Some(t) = self.lost_upto
            && proc.start_estimate_ns().is_none_or(|s| s < t)
        {
            proc.uncertain = true;
        }
        let released = proc.is_released();
        self.procs.insert(id, proc);
        if !released {
            self.pids.insert(id.pid, id);
        }
        self.set_parent(id, parent, ppid);
        self.set_creator(id, creator);
        if followed {
            self.mark_followed(id);
        }
    }

    /// Makes `parent` the current parent of `id` (pid `ppid`). A parent that is not
    /// held, is released, or would close a cycle is not linked: `id` becomes a root
    /// with only the number `ppid`.
    pub(super) fn set_parent(&mut self, id: ProcId, parent: Option<ProcId>, ppid: u32) {
        // `id` can be among `p`'s ancestors only if it has children (they mirror
        // `parent`): a new process has none, and skips the walk to the root.
        let may_cycle = self.procs.get(&id).is_some_and(|q| !q.children.is_empty());
        let parent = parent.filter(|&p| {
            p != id
                && self.procs.get(&p).is_some_and(|q| !q.is_released())
                && !(may_cycle && self.parent_chain_contains(p, id))
        });
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        proc.ppid = ppid;
        let old = std::mem::replace(&mut proc.parent, parent);
        if old == parent {
            return;
        }
        if let Some(old) = old.and_then(|o| self.procs.get_mut(&o)) {
            old.children.remove(&id);
        }
        if let Some(new) = parent.and_then(|p| self.procs.get_mut(&p)) {
            new.children.insert(id);
        }
    }

    /// Sets the creator of `id`, keeping the `created` counts right.
    pub(super) fn set_creator(&mut self, id: ProcId, creator: Option<ProcId>) {
        // Likewise, `id` can be among `c`'s creators only if it created something.
        let may_cycle = self.procs.get(&id).is_some_and(|q| q.created > 0);
        let creator = creator.filter(|&c| {
            c != id
                && self.procs.contains_key(&c)
                && !(may_cycle && self.creator_chain_contains(c, id))
        });
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut proc.creator, creator);
        if old == creator {
            return;
        }
        if let Some(new) = creator.and_then(|c| self.procs.get_mut(&c)) {
            new.created += 1;
        }
        if let Some(old) = old {
            if let Some(o) = self.procs.get_mut(&old) {
                o.created = o.created.saturating_sub(1);
            }
            self.prune(old);
        }
    }

    /// The kernel is the truth about parents: an event reporting `ppid` for a live
    /// process moves it under the process that holds that pid (or makes it a root).
    pub(super) fn correct_parent(&mut self, id: ProcId, ppid: u32) {
        let Some(proc) = self.procs.get(&id) else {
            return;
        };
        if proc.is_released() {
            return;
        }
        let want = self.pids.get(&ppid).copied().filter(|&p| p != id);
        if proc.ppid != ppid || proc.parent != want {
            self.set_parent(id, want, ppid);
        }
    }

    /// `dead` exited: its children (alive or zombie) go to a new parent as in
    /// kernel/exit.c forget_original_parent/find_new_reaper.
    pub(super) fn reparent_children(&mut self, dead: ProcId) {
        let Some(proc) = self.procs.get(&dead) else {
            return;
        };
        if proc.children.is_empty() {
            return;
        }
        let kids: Vec<ProcId> = proc.children.iter().copied().collect();
        let (reaper, reaper_pid) = self.find_new_reaper(dead);
        for kid in kids {
            self.set_parent(kid, reaper, reaper_pid);
        }
    }

    /// kernel/exit.c find_new_reaper: the nearest ancestor, following real parents
    /// up from the dead process, that is a child subreaper and still has a live
    /// thread; else the pid namespace's child reaper, init (pid 1 for the tracer,
    /// which sees global pids). The model does not know pid namespaces: a process in
    /// a container is reparented to the host's init here, and the next event about
    /// it corrects that from the ppid the kernel reports.
    fn find_new_reaper(&self, dead: ProcId) -> (Option<ProcId>, u32) {
        let mut cur = self.procs.get(&dead).and_then(|p| p.parent);
        let mut steps = 0;
        while let Some(a) = cur {
            let Some(p) = self.procs.get(&a) else { break };
            steps += 1;
            if steps > self.procs.len() {
                break;
            }
            if p.subreaper && p.is_alive() {
                return (Some(a), a.pid);
            }
            cur = p.parent;
        }
        let init = self
            .pids
            .get(&1)
            .copied()
            .filter(|&i| i != dead && self.procs.get(&i).is_some_and(|p| p.is_alive()));
        (init, 1)
    }

    /// The process ended without us seeing it end: mark it gone (and uncertain),
    /// reparent its children as its exit would have, and release it. Its release
    /// is told by a `reap` record with no reaper and no zombie time, marked
    /// uncertain, queued in `pending` (the callers put it in front of their own
    /// records); the count is in [`super::ModelStats::presumed_dead`].
    pub(super) fn presume_dead(&mut self, id: ProcId, ktime_ns: u64) {
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        if proc.is_released() {
            return;
        }
        proc.gone_ns = Some(ktime_ns);
        proc.uncertain = true;
        self.stats.presumed_dead += 1;
        if self.emits(id) {
            let rec = Record {
                ktime_ns,
                subject: self.subject_of_proc(id),
                body: Body::Reap {
                    zombie_ns: None,
                    reaper_pid: None,
                    reaper_comm: None,
                    autoreap: false,
                    inferred: None,
                },
                uncertain: true,
            };
            self.pending.push(rec);
        }
        self.release(id);
    }

    /// The process is released (its `reap` or `gone_ns` is set): it frees its pid,
    /// leaves the tree, stops counting as followed, and is pruned if nothing holds it.
    pub(super) fn release(&mut self, id: ProcId) {
        // Normally empty: children were reparented when the process exited.
        self.reparent_children(id);
        if self.pids.get(&id.pid) == Some(&id) {
            self.pids.remove(&id.pid);
        }
        self.followed.remove(&id);
        let parent = self.procs.get_mut(&id).and_then(|p| p.parent.take());
        if let Some(p) = parent.and_then(|p| self.procs.get_mut(&p)) {
            p.children.remove(&id);
        }
        self.prune(id);
    }

    /// Removes `id` if it is released and no held process names it as creator, then
    /// does the same for its creator, and so on up: an exited process is kept only
    /// while some descendant is, so memory follows the live tree, not the history.
    pub(super) fn prune(&mut self, id: ProcId) {
        let mut cur = Some(id);
        while let Some(c) = cur {
            let Some(p) = self.procs.get(&c) else { break };
            if !p.is_released() || p.created > 0 {
                break;
            }
            let Some(p) = self.procs.remove(&c) else {
                break;
            };
            self.remember_ended(c);
            cur = p.creator;
            if let Some(cp) = cur.and_then(|cr| self.procs.get_mut(&cr)) {
                cp.created = cp.created.saturating_sub(1);
            }
        }
    }

    fn remember_ended(&mut self, id: ProcId) {
        if self.ended_order.len() >= ENDED_MEMORY
            && let Some(old) = self.ended_order.pop_front()
        {
            self.ended.remove(&old);
        }
        if self.ended.insert(id) {
            self.ended_order.push_back(id);
        }
    }

    /// Whether `target` is `from` or one of its ancestors by current parent.
    fn parent_chain_contains(&self, from: ProcId, target: ProcId) -> bool {
        self.chain_contains(from, target, |p| p.parent)
    }

    fn creator_chain_contains(&self, from: ProcId, target: ProcId) -> bool {
        self.chain_contains(from, target, |p| p.creator)
    }

    fn chain_contains(
        &self,
        from: ProcId,
        target: ProcId,
        up: impl Fn(&Proc) -> Option<ProcId>,
    ) -> bool {
        let mut cur = Some(from);
        // Bounded even if an invariant were broken.
        for _ in 0..=self.procs.len() {
            match cur {
                Some(c) if c == target => return true,
                Some(c) => cur = self.procs.get(&c).and_then(&up),
                None => return false,
            }
        }
        false
    }

    /// `ids` ordered parents before children (pre-order over current parent links,
    /// siblings by id); ids whose parent is not in the set come as roots.
    pub(super) fn tree_order(&self, ids: &BTreeSet<ProcId>) -> Vec<ProcId> {
        let mut order = Vec::with_capacity(ids.len());
        let mut seen = BTreeSet::new();
        let roots = ids.iter().copied().filter(|id| {
            self.procs
                .get(id)
                .and_then(|p| p.parent)
                .is_none_or(|p| !ids.contains(&p))
        });
        for root in roots {
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                if !seen.insert(id) {
                    continue;
                }
                order.push(id);
                if let Some(p) = self.procs.get(&id) {
                    stack.extend(p.children.iter().rev().filter(|c| ids.contains(c)));
                }
            }
        }
        // Unreachable unless an invariant broke; never drop a process silently.
        order.extend(ids.iter().filter(|id| !seen.contains(id)));
        order
    }

    /// Checks the invariants listed at the top of this file.
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        for (&pid, id) in &self.pids {
            assert_eq!(pid, id.pid);
            let p = self
                .procs
                .get(id)
                .unwrap_or_else(|| panic!("pid {pid} -> {id} not held"));
            assert!(!p.is_released(), "released {id} holds its pid");
        }
        let mut created = std::collections::HashMap::<ProcId, usize>::new();
        for (id, p) in &self.procs {
            assert_eq!(*id, p.id);
            if !p.is_released() {
                assert_eq!(
                    self.pids.get(&id.pid),
                    Some(id),
                    "{id} not in the pid table"
                );
            } else {
                assert!(
                    p.parent.is_none() && p.children.is_empty(),
                    "released {id} linked"
                );
            }
            if let Some(parent) = p.parent {
                let q = self
                    .procs
                    .get(&parent)
                    .unwrap_or_else(|| panic!("{id}: parent {parent} not held"));
                assert!(q.children.contains(id), "{parent} does not list child {id}");
                assert!(!q.is_released(), "{id}: parent {parent} released");
            }
            for c in &p.children {
                assert_eq!(
                    self.procs.get(c).and_then(|c| c.parent),
                    Some(*id),
                    "{c} in {id}'s children"
                );
            }
            if let Some(cr) = p.creator {
                assert!(self.procs.contains_key(&cr), "{id}: creator {cr} not held");
                *created.entry(cr).or_default() += 1;
            }
            assert!(
                !self.parent_chain_contains_strict(*id),
                "parent cycle at {id}"
            );
            if p.followed && !p.is_released() {
                assert!(self.followed.contains(id), "followed {id} not counted");
            }
        }
        for (id, p) in &self.procs {
            assert_eq!(
                p.created,
                created.get(id).copied().unwrap_or(0),
                "created count of {id}"
            );
            assert!(
                p.created > 0 || !p.is_released(),
                "{id} should have been pruned"
            );
        }
        for id in &self.followed {
            assert!(
                self.procs
                    .get(id)
                    .is_some_and(|p| p.followed && !p.is_released())
            );
        }
    }

    #[cfg(test)]
    fn parent_chain_contains_strict(&self, id: ProcId) -> bool {
        self.procs
            .get(&id)
            .and_then(|p| p.parent)
            .is_some_and(|p| self.parent_chain_contains(p, id))
    }
}
