//! The process model: the process tree rebuilt from kernel events, and the records
//! that describe what happened to it.
//!
//! Pure: no I/O, no clocks, no kernel access. The start-up state comes in through
//! [`Model::seed`] (the agent reads /proc), kernel events through [`Model::apply`],
//! drops through [`Model::lost`]; every call pushes the records it produces onto the
//! caller's vector. Any sequence of events can therefore be replayed in unit tests,
//! and no sequence makes the model panic.
//!
//! Identity: a process is its [`ProcId`] (pid and start time), never a pid alone.
//! When an event names a process that started after the one holding its pid, the
//! holder must have ended unseen (lost events); it is marked gone, never merged.
//!
//! Truth: kernel events are the truth. The model reparents orphans itself when
//! their parent dies (as kernel/exit.c find_new_reaper does), and any later event
//! reporting a different parent pid corrects it. After [`Model::lost`] the tree may
//! be wrong in ways nothing reveals; [`Model::uncertain_since`] says since when.
//!
//! Uncertainty: a loss is reported some time after it happened (the agent polls the
//! drop counters), and the lost event may be about any process that lived then.
//! So at each [`Model::lost`] every held, unreleased process is marked
//! [`Proc::uncertain`], and so is every process first seen later that started
//! before that loss was reported (its events may still have been in the ring). A
//! process born after the last loss is certain until the next one. Its `exit`,
//! `reap` and `process` records carry the mark. A process found gone without its
//! end being seen (pid reuse, a free event with no exit, [`Model::vanished`]) gets
//! a `reap` record with no reaper, marked uncertain: its release is a fact, when
//! and how it ended is not known.
//!
//! Memory: released processes are dropped as soon as no held process descends from
//! them (by [`Proc::creator`]), so the model holds the live tree plus the ancestry
//! of live orphans, whatever the length of the run; the ids of the last few
//! thousand dropped ones are remembered so a late event cannot resurrect them.
//! A process whose end was lost stays until its pid is reused or its task freed.

mod apply;
mod follow;
mod inferred;
mod proc;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

// Looked up several times per event: std's SipHash was a sixth of the agent's CPU.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

pub use proc::{EXEC_HISTORY_MAX, ExecInfo, ExitInfo, Proc, ReapHow, ReapInfo};

use crate::event::{Comm, Event, EventKind, Task};
use crate::record::{Body, ProcId, Record, Subject};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelConfig {
    /// Emit thread fork/exit records (`--threads`).
    pub threads: bool,
}

/// One process read from /proc at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedProc {
    pub pid: u32,
    pub ppid: u32,
    /// /proc/PID/stat field 22.
    pub start_ticks: u64,
    pub comm: Comm,
    /// /proc/PID/stat field 3 (R, S, D, Z, T, ...).
    pub state: char,
    /// /proc/PID/exe target, if readable.
    pub filename: Option<Vec<u8>>,
    pub argv: Vec<Vec<u8>>,
    pub uid: Option<u32>,
    pub cgroup_id: u64,
    /// Not visible in /proc: false unless known otherwise.
    pub subreaper: bool,
}

/// Counters of what the model had to guess or ignore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Events the kernel reported lost.
    pub lost: u64,
    /// Processes marked gone without their end being seen.
    pub presumed_dead: u64,
    /// Events ignored because they were about a process older than the one holding
    /// its pid, or about a process already released, or repeated an exit.
    pub stale: u64,
    /// wait4/waitid returns that matched no zombie child (stop/continue reports,
    /// ptrace, other pid namespaces).
    pub unmatched_waits: u64,
    /// Of those: waitid returns with a NULL `infop` while the waiter had several
    /// zombie children (or events were lost), so which one went is not known.
    pub unnamed_waits: u64,
    /// Reaps told by a waitid with a NULL `infop`: the waiter's only zombie child.
    pub only_child_reaps: u64,
    /// Zombies found gone from /proc with no reap event ([`Model::reaped_unseen`]).
    pub inferred_reaps: u64,
}

#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    procs: HashMap<ProcId, Proc>,
    /// pid -> the held, unreleased process with that pid (alive or zombie).
    pids: HashMap<u32, ProcId>,
    following: bool,
    /// Followed processes not yet released.
    followed: HashSet<ProcId>,
    /// `follow_spawned` pids not seen yet.
    pending_spawn: BTreeSet<u32>,
    uncertain_since: Option<u64>,
    /// ktime of the latest loss: processes starting before it are uncertain.
    lost_upto: Option<u64>,
    /// The latest ktime of the events applied.
    applied_upto: u64,
    /// `reap` records of processes presumed dead inside a look-up, put in front
    /// of the records of the event that revealed it (see [`Model::apply`]).
    pending: Vec<Record>,
    stats: ModelStats,
    /// Recently dropped processes (at most [`tree::ENDED_MEMORY`]), oldest first.
    ended: HashSet<ProcId>,
    ended_order: VecDeque<ProcId>,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        Model {
            cfg,
            procs: HashMap::new(),
            pids: HashMap::new(),
            following: false,
            followed: HashSet::new(),
            pending_spawn: BTreeSet::new(),
            uncertain_since: None,
            lost_upto: None,
            applied_upto: 0,
            pending: Vec::new(),
            stats: ModelStats::default(),
            ended: HashSet::new(),
            ended_order: VecDeque::new(),
        }
    }

    /// Adds the processes of the start-up snapshot and pushes one `process` record
    /// per new process, parents before children, stamped `ktime_ns` (the time of the
    /// scan). Processes already held (their events overtook the scan) are completed,
    /// not repeated. When following, only followed ones are reported; for `-p`, seed
    /// first (records into a scratch vector), call [`Model::follow_pid`], then
    /// [`Model::snapshot`].
    pub fn seed(&mut self, procs: Vec<SeedProc>, ktime_ns: u64, out: &mut Vec<Record>) {
        let start = out.len();
        self.seed_inner(procs, ktime_ns, out);
        self.flush_pending(start, out);
    }

    fn seed_inner(&mut self, procs: Vec<SeedProc>, ktime_ns: u64, out: &mut Vec<Record>) {
        let mut added = BTreeSet::new();
        for sp in procs {
            let id = ProcId {
                pid: sp.pid,
                start_ticks: sp.start_ticks,
            };
            match self.lookup(id, ktime_ns) {
                tree::Lookup::Stale | tree::Lookup::Ended => self.stats.stale += 1,
                tree::Lookup::Held(id) => self.merge_seed(id, sp),
                tree::Lookup::Absent => {
                    self.insert(Proc::from_seed(id, sp));
                    added.insert(id);
                }
            }
        }
        // Link once all are in: /proc lists pids in numeric order, not parents first.
        for &id in &added {
            let Some(ppid) = self.procs.get(&id).map(|p| p.ppid) else {
                continue;
            };
            let parent = self.pids.get(&ppid).copied().filter(|&p| p != id);
            self.set_parent(id, parent, ppid);
            let parent = self.procs.get(&id).and_then(|p| p.parent);
            self.set_creator(id, parent);
        }
        let order = self.tree_order(&added);
        for &id in &order {
            let parent = self.procs.get(&id).and_then(|p| p.parent);
            if parent.is_some_and(|p| self.is_followed(p)) {
                self.mark_followed(id);
            }
        }
        for id in order {
            if self.emits(id) {
                out.extend(self.process_record(id, ktime_ns));
            }
        }
    }

    /// A scanned process the model already holds: fill in what events did not say.
    fn merge_seed(&mut self, id: ProcId, sp: SeedProc) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if p.is_released() {
            return;
        }
        if p.image_unknown() {
            p.filename = sp.filename.map(Arc::from);
            p.argv = Arc::from(sp.argv);
        }
        p.uid = p.uid.or(sp.uid);
        if p.cgroup_id == 0 {
            p.cgroup_id = sp.cgroup_id;
        }
        p.subreaper |= sp.subreaper;
        if p.exit.is_none() {
            // Its exit event will fill in the details, if it was not lost.
            p.exit = proc::seed_exit(sp.pid, sp.state);
            if p.exit.is_some() {
                self.reparent_children(id);
            }
        }
    }

    /// Tells the model that the process holding `pid` is (or is no longer) a child
    /// subreaper, for a flag set before any event of that process shows it, such as
    /// the agent's own PR_SET_CHILD_SUBREAPER. Returns false if `pid` is not held.
    pub fn set_subreaper(&mut self, pid: u32, on: bool) -> bool {
        let Some(p) = self.pids.get(&pid).and_then(|id| self.procs.get_mut(id)) else {
            return false;
        };
        p.subreaper = on;
        true
    }

    /// Pushes a `process` record for every held, unreleased process (only followed
    /// ones when following), parents before children. The state letter is the one
    /// read from /proc, 'Z' for zombies, and 'R' for processes known only from
    /// events (the model does not track scheduler states).
    pub fn snapshot(&self, ktime_ns: u64, out: &mut Vec<Record>) {
        let ids: BTreeSet<ProcId> = self
            .pids
            .values()
            .copied()
            .filter(|&id| self.emits(id))
            .collect();
        for id in self.tree_order(&ids) {
            out.extend(self.process_record(id, ktime_ns));
        }
    }

    fn process_record(&self, id: ProcId, ktime_ns: u64) -> Option<Record> {
        let p = self.procs.get(&id)?;
        let state = match (p.seed_state, p.exit) {
            (Some(s), None) => s,
            (Some(s), Some(e)) if e.ktime_ns.is_none() => s,
            (_, Some(_)) => 'Z',
            (None, None) => 'R',
        };
        Some(Record {
            ktime_ns,
            subject: self.subject_of_proc(id),
            body: Body::Process {
                filename: p.filename.as_deref().map(<[u8]>::to_vec),
                argv: p.argv.to_vec(),
                state: Some(state),
                argv_redacted: false,
            },
            uncertain: p.uncertain,
        })
    }

    /// Applies one kernel event, pushing 0..n records. It takes the event, so
    /// that an exec's filename and argv move into its record uncopied.
    pub fn apply(&mut self, ev: Event, out: &mut Vec<Record>) {
        let start = out.len();
        self.applied_upto = self.applied_upto.max(ev.ktime_ns);
        self.apply_inner(ev, out);
        self.flush_pending(start, out);
    }

    /// The latest `ktime_ns` of the events applied so far: events come roughly in
    /// time order, so what happened well before it has been seen, or lost.
    pub fn applied_upto(&self) -> u64 {
        self.applied_upto
    }

    /// Puts the records of processes presumed dead meanwhile at `start`: the end
    /// of the old holder of a pid comes before the news of the new one.
    fn flush_pending(&mut self, start: usize, out: &mut Vec<Record>) {
        if !self.pending.is_empty() {
            out.splice(start..start, self.pending.drain(..));
        }
    }

    fn apply_inner(&mut self, mut ev: Event, out: &mut Vec<Record>) {
        let kind = std::mem::replace(&mut ev.kind, EventKind::Free);
        let ev = &ev;
        match kind {
            EventKind::Fork(f) => self.fork(ev, &f, out),
            EventKind::Exec(x) => self.exec(ev, x, out),
            EventKind::ExecFailed(x) => self.exec_failed(ev, &x, out),
            EventKind::Exit(x) => self.exit(ev, &x, out),
            EventKind::Wait(w) => self.wait(ev, &w, out),
            EventKind::Free => self.free(ev, out),
            EventKind::ForkFailed(x) => self.fork_failed(ev, &x, out),
        }
    }

    /// `count` events of kind `kind` ([`tracer_common::kind`]) were lost: pushes a
    /// `lost` record and remembers that the tree is uncertain from then on.
    pub fn lost(&mut self, kind: u32, count: u64, ktime_ns: u64, out: &mut Vec<Record>) {
        if count == 0 {
            return;
        }
        self.stats.lost = self.stats.lost.saturating_add(count);
        self.uncertain_since.get_or_insert(ktime_ns);
        // Several kinds reported at one poll mark once.
        if self.lost_upto.is_none_or(|t| t < ktime_ns) {
            self.lost_upto = Some(ktime_ns);
            for id in self.pids.values() {
                if let Some(p) = self.procs.get_mut(id) {
                    p.uncertain = true;
                }
            }
        }
        out.push(Record {
            ktime_ns,
            subject: None,
            body: Body::Lost {
                kind: tracer_common::kind::name(kind).into(),
                count,
            },
            uncertain: false,
        });
    }

    /// Processes held, unreleased, and marked uncertain.
    pub fn uncertain_count(&self) -> usize {
        self.pids
            .values()
            .filter(|id| self.procs.get(id).is_some_and(|p| p.uncertain))
            .count()
    }

    /// ktime of the first loss: from then on the tree may miss processes or hold
    /// some that are gone (until pid reuse or a free event reveals it).
    pub fn uncertain_since(&self) -> Option<u64> {
        self.uncertain_since
    }

    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    pub fn config(&self) -> ModelConfig {
        self.cfg
    }

    /// A held process, alive or not.
    pub fn get(&self, id: ProcId) -> Option<&Proc> {
        self.procs.get(&id)
    }

    /// The process currently holding `pid`: alive or zombie, not released.
    pub fn by_pid(&self, pid: u32) -> Option<&Proc> {
        self.pids.get(&pid).and_then(|id| self.procs.get(id))
    }

    /// Current children of `id` (by current parent), in id order.
    pub fn children(&self, id: ProcId) -> impl Iterator<Item = &Proc> + '_ {
        self.procs
            .get(&id)
            .into_iter()
            .flat_map(|p| p.children.iter())
            .filter_map(|c| self.procs.get(c))
    }

    /// `id`'s original ancestry: its creator, the creator's creator, and so on
    /// (nearest first). Held for as long as `id` is.
    pub fn lineage(&self, id: ProcId) -> impl Iterator<Item = &Proc> + '_ {
        let mut cur = self.procs.get(&id).and_then(|p| p.creator);
        let mut left = self.procs.len();
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            let p = self.procs.get(&cur?)?;
            cur = p.creator;
            Some(p)
        })
    }

    /// All held processes, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Proc> + '_ {
        self.procs.values()
    }

    /// Processes held in memory (alive, zombie, and released ones kept for ancestry).
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Processes running (not exited).
    pub fn live_count(&self) -> usize {
        self.pids
            .values()
            .filter(|id| self.procs.get(id).is_some_and(|p| p.is_alive()))
            .count()
    }

    /// Zombies: exited, not yet reaped.
    pub fn zombie_count(&self) -> usize {
        self.pids
            .values()
            .filter(|id| self.procs.get(id).is_some_and(|p| p.is_zombie()))
            .count()
    }

    /// The subject of a record about the task that caused the event: the thread's
    /// own tid and comm, the process's current parent.
    fn subject_of_task(&self, id: ProcId, task: &Task) -> Subject {
        Subject {
            pid: id.pid,
            tid: task.tid,
            ppid: self.procs.get(&id).map_or(task.ppid, |p| p.ppid),
            proc_id: id,
            comm: task.comm,
            uid: Some(task.uid),
            cgroup_id: task.cgroup_id,
            cgroup: None,
            unit: None,
            container_id: None,
            pod_uid: None,
        }
    }

    /// The subject of a record about a process as the model holds it.
    fn subject_of_proc(&self, id: ProcId) -> Option<Subject> {
        let p = self.procs.get(&id)?;
        Some(Subject {
            pid: id.pid,
            tid: id.pid,
            ppid: p.ppid,
            proc_id: id,
            comm: p.comm,
            uid: p.uid,
            cgroup_id: p.cgroup_id,
            cgroup: None,
            unit: None,
            container_id: None,
            pod_uid: None,
        })
    }
}
