//! The alert engine's own, small view of processes: enough to name a culprit
//! (pid, comm, executable, arguments, parent, cgroup) and to tell which parent a
//! zombie or a crash belongs to. Built from the records alone.
//!
//! Bounded: a process is dropped [`RELEASED_GRACE_NS`] after its reap (or once
//! [`RELEASED_MAX`] newer ones were reaped), and at once when a new process takes
//! its pid (then its end was lost). So what is held is the live processes and
//! zombies plus a short tail of released ones, however long the run.

use std::collections::VecDeque;

// Looked up several times per record: std's SipHash cost more than the lookups.
use foldhash::HashMap;
use std::sync::Arc;

use crate::record::{AlertProc, ProcId, Subject};

/// How long a reaped process stays known, for records that arrive late (events
/// from other CPUs come slightly out of order).
pub const RELEASED_GRACE_NS: u64 = 5_000_000_000;
/// At most this many reaped processes are kept for that grace: 0.3 s of the
/// fastest storms here (13k reaps/s), still six times the agent's 50 ms drain tick
/// within which records of different CPUs can come out of order. A hash table
/// with churn grows to about 4× its entries (hashbrown rehashes into a bigger table
/// once more than half of it is live), ~180 bytes per slot: 16,384 cost 12 MB here.
pub const RELEASED_MAX: usize = 4_096;

/// What a process runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub filename: Option<Vec<u8>>,
    pub argv: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct ProcState {
    pub subject: Subject,
    /// Its parent process, when known.
    pub parent: Option<ProcId>,
    /// Shared with the parent until the child execs: a storm of children that do
    /// not exec costs no copies.
    pub image: Arc<Image>,
    /// When its fork was seen; its creation was counted under its inherited image
    /// at that time, and moves to the image it execs first.
    pub forked_at: Option<u64>,
    pub execd: bool,
    /// When it exited (for a zombie found at start-up: when it was found).
    pub exited_at: Option<u64>,
    /// The process it is an unreaped zombie of, as counted by the zombie detector.
    pub zombie_of: Option<ProcId>,
    pub released: bool,
}

impl ProcState {
    pub fn new(subject: Subject, parent: Option<ProcId>, image: Arc<Image>) -> Self {
        ProcState {
            subject,
            parent,
            image,
            forked_at: None,
            execd: false,
            exited_at: None,
            zombie_of: None,
            released: false,
        }
    }

    pub fn as_alert_proc(&self) -> AlertProc {
        AlertProc {
            pid: self.subject.pid,
            proc_id: self.subject.proc_id,
            comm: self.subject.comm,
            filename: self.image.filename.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Procs {
    /// Boxed: the map holds thousands of released processes (their grace), and
    /// with the states inline every insert and removal touched cold memory and
    /// a rehash moved them all.
    map: HashMap<ProcId, Box<ProcState>>,
    /// pid -> the unreleased process holding it.
    pids: HashMap<u32, ProcId>,
    /// Released processes, in release order, with their release time.
    released: VecDeque<(u64, ProcId)>,
}

impl Procs {
    pub fn get(&self, id: &ProcId) -> Option<&ProcState> {
        self.map.get(id).map(|p| &**p)
    }

    pub fn get_mut(&mut self, id: &ProcId) -> Option<&mut ProcState> {
        self.map.get_mut(id).map(|p| &mut **p)
    }

    /// The unreleased process holding `pid`.
    pub fn by_pid(&self, pid: u32) -> Option<ProcId> {
        self.pids.get(&pid).copied()
    }

    /// Processes held, released ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a process. If another unreleased process held its pid, that one's end
    /// was lost: it is dropped and returned, so the caller can forget it too.
    pub fn insert(&mut self, p: ProcState) -> Option<ProcState> {
        let id = p.subject.proc_id;
        let old = match self.pids.insert(id.pid, id) {
            Some(old) if old != id => self.map.remove(&old).map(|p| *p),
            _ => None,
        };
        self.map.insert(id, Box::new(p));
        old
    }

    /// Updates what a record says about its process (name, uid, cgroup, parent pid).
    pub fn refresh(&mut self, s: &Subject) {
        if let Some(p) = self.map.get_mut(&s.proc_id) {
            // comm and cgroup are per thread; the process's are its leader's.
            if s.tid == s.pid {
                p.subject.comm = s.comm;
                if s.cgroup_id != 0 {
                    p.subject.cgroup_id = s.cgroup_id;
                }
            }
            p.subject.uid = s.uid.or(p.subject.uid);
            if s.ppid != p.subject.ppid {
                p.subject.ppid = s.ppid;
                p.parent = self.pids.get(&s.ppid).copied();
            }
        }
    }

    /// The process is released (reaped): it leaves the pid table now and the
    /// table [`RELEASED_GRACE_NS`] later.
    pub fn release(&mut self, id: ProcId, now: u64) {
        let Some(p) = self.map.get_mut(&id) else {
            return;
        };
        if p.released {
            return;
        }
        p.released = true;
        if self.pids.get(&id.pid) == Some(&id) {
            self.pids.remove(&id.pid);
        }
        self.released.push_back((now, id));
    }

    /// Drops released processes past their grace.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(t, id)) = self.released.front() {
            if now.saturating_sub(t) < RELEASED_GRACE_NS && self.released.len() <= RELEASED_MAX {
                break;
            }
            self.released.pop_front();
            self.map.remove(&id);
        }
        // After a storm the table keeps the size it grew to; give it back, so memory
        // follows what is held (a rare rehash of a small table).
        if self.map.capacity() > 4 * self.map.len().max(1024) {
            self.map.shrink_to(2 * self.map.len());
            self.pids.shrink_to(2 * self.pids.len());
            self.released.shrink_to(2 * self.released.len());
        }
    }

    /// The parent of `id` as far as anything says: the one it recorded, if that
    /// still has its parent pid, else whoever holds that pid now.
    pub fn parent_of(&self, id: &ProcId) -> Option<ProcId> {
        let p = self.map.get(id)?;
        p.parent
            .filter(|q| q.pid == p.subject.ppid)
            .or_else(|| self.by_pid(p.subject.ppid).filter(|q| q != id))
    }
}
