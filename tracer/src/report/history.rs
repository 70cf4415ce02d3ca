//! The life of every process in a recording, rebuilt from its records: when it was
//! first seen, its parent, what it ran, how it ended, how long it was a zombie and
//! who reaped it. Pure: built from [`Records`], no I/O.
//!
//! This is the parsed form every `tracer report` output starts from (statistics,
//! tree, and any later timeline export): read once, then walk [`History::procs`].
//!
//! A process is keyed by its run (host + boot) and `proc_id`, never by pid alone.
//! Records are taken in time order, but nothing relies on it: a record about a
//! process not seen yet creates it (as "inferred"), and a later `process` or `fork`
//! record about it fills in what it knows. Parents are linked by `parent_proc_id`
//! where a `fork` gives it, otherwise by pid: the process that held the parent pid
//! when the child was first seen. Parent links never form a cycle, whatever the input.
//!
//! Every output file starts with a `process` snapshot of the tree, so rotated files
//! read together repeat processes already known: a `process` record of a process
//! known from its `fork` or an earlier snapshot changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::fmt::basename;
use super::reader::{Rec, Records, Run};
use crate::event::Comm;
use crate::output::escape::json_text;
use crate::record::{Body, Record, Subject};
use crate::record::{NS_PER_TICK, ProcId};

/// [`History::take`] gives back the records' buffer after this many records.
const TAKE_SHRINK_EVERY: usize = 1 << 16;

/// Index into [`History::procs`].
pub type ProcIdx = usize;

/// How a process came to be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// In the `/proc` snapshot taken when tracing began.
    Snapshot,
    /// Its `fork` record was seen.
    Fork,
    /// Only later records were seen (its fork was lost, or happened before tracing
    /// began and it was not in the snapshot, or it is only named as a parent).
    Inferred,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    pub ktime_ns: u64,
    pub filename: Arc<[u8]>,
    pub argv: Vec<Vec<u8>>,
    pub argv_truncated: bool,
    /// comm after the exec.
    pub comm: Comm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub ktime_ns: u64,
    pub code: Option<u8>,
    pub signal: Option<u8>,
    pub core_dumped: bool,
    /// As recorded, or from the fork time when the record had none.
    pub lifetime_ns: Option<u64>,
    /// Parent pid at exit: the process that is told and should reap.
    pub ppid: u32,
    /// That process, when known.
    pub parent: Option<ProcIdx>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reap {
    pub ktime_ns: u64,
    /// As recorded, or from the exit time when the record had none.
    pub zombie_ns: Option<u64>,
    pub reaper_pid: Option<u32>,
    pub reaper_comm: Option<Comm>,
    pub autoreap: bool,
    /// Inferred from /proc: the zombie was found gone, no event showed the reap.
    pub inferred: bool,
    /// Parent pid when reaped.
    pub ppid: u32,
}

/// How a process ended, as far as the recording shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// No exit seen: alive at the end of the recording (or its exit was lost).
    Alive,
    Exited(u8),
    Killed {
        signal: u8,
        core_dumped: bool,
    },
    /// An exit record with neither code nor signal.
    Unknown,
    /// Released without an exit seen (its exit was lost).
    ExitUnseen,
    /// Already a zombie in the snapshot: it ended before tracing began.
    ZombieAtStart,
}

impl Ending {
    /// Ended by itself with 0.
    pub fn is_success(self) -> bool {
        self == Ending::Exited(0)
    }

    /// Exited non-zero or was killed by a signal.
    pub fn is_failure(self) -> bool {
        matches!(self, Ending::Exited(c) if c != 0) || matches!(self, Ending::Killed { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub run: usize,
    pub id: ProcId,
    pub origin: Origin,
    /// When its `fork` record says it was created.
    pub fork_ns: Option<u64>,
    /// Earliest and latest `ktime_ns` of its records.
    pub first_ns: u64,
    pub last_ns: u64,
    /// Parent pid when first seen, and the latest one seen (differs once reparented).
    pub ppid: u32,
    pub last_ppid: u32,
    pub parent: Option<ProcIdx>,
    /// Child processes (not threads), by start time.
    pub children: Vec<ProcIdx>,
    /// comm when first seen, and the latest.
    pub start_comm: Comm,
    pub comm: Comm,
    pub uid: Option<u32>,
    /// cgroup when first seen.
    pub cgroup: Option<Arc<str>>,
    /// The unit, container and pod its records named with that cgroup.
    pub identity: crate::identity::Identity,
    /// The executable it started with: the snapshot's `/proc/PID/exe`, or for a
    /// forked process its parent's executable at the fork.
    pub image: Option<Arc<[u8]>>,
    /// Snapshot only: its command line and state letter.
    pub argv: Vec<Vec<u8>>,
    pub state: Option<char>,
    pub clone_flags: Option<u64>,
    pub execs: Vec<Exec>,
    pub exec_failed: u64,
    pub exit: Option<Exit>,
    pub reap: Option<Reap>,
    /// Failed fork/clone calls it made, per errno.
    pub fork_failed: BTreeMap<u32, u64>,
    pub threads_created: u64,
    pub threads_exited: u64,
    /// Records about this process (0 for one only named as a parent).
    pub records: u64,
    /// One of its records said `uncertain`: events were lost while it lived, so
    /// its history here may miss an exec, its end or children.
    pub uncertain: bool,
}

/// The unit, container and pod a record names.
fn identity_of(s: &Subject) -> crate::identity::Identity {
    crate::identity::Identity {
        unit: s.unit.clone(),
        container_id: s.container_id.clone(),
        pod_uid: s.pod_uid.clone(),
    }
}

impl Proc {
    fn new(run: usize, id: ProcId, ktime_ns: u64) -> Proc {
        Proc {
            run,
            id,
            origin: Origin::Inferred,
            fork_ns: None,
            first_ns: ktime_ns,
            last_ns: ktime_ns,
            ppid: 0,
            last_ppid: 0,
            parent: None,
            children: Vec::new(),
            start_comm: Comm::default(),
            comm: Comm::default(),
            uid: None,
            cgroup: None,
            identity: Default::default(),
            image: None,
            argv: Vec::new(),
            state: None,
            clone_flags: None,
            execs: Vec::new(),
            exec_failed: 0,
            exit: None,
            reap: None,
            fork_failed: BTreeMap::new(),
            threads_created: 0,
            threads_exited: 0,
            records: 0,
            uncertain: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.id.pid
    }

    /// When it started: its fork, else the start time in its `proc_id` (10 ms ticks).
    pub fn start_ns(&self) -> u64 {
        self.fork_ns
            .unwrap_or_else(|| self.id.start_ticks.saturating_mul(NS_PER_TICK))
    }

    /// The executable it was running at `ktime_ns`.
    pub fn image_at(&self, ktime_ns: u64) -> Option<&Arc<[u8]>> {
        self.execs
            .iter()
            .rev()
            .find(|e| e.ktime_ns <= ktime_ns)
            .map(|e| &e.filename)
            .or(self.image.as_ref())
    }

    /// The executable it ran last.
    pub fn exe(&self) -> Option<&Arc<[u8]>> {
        self.execs
            .last()
            .map(|e| &e.filename)
            .or(self.image.as_ref())
    }

    /// What it ran, in order: the executables it exec'd (by file name), preceded by
    /// what it was running when first seen unless it was forked (a forked process
    /// runs its parent's program until it execs, which says nothing about it); a
    /// process that never exec'd is named by its comm.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        let mut chain = Vec::new();
        if self.execs.is_empty() || self.origin == Origin::Snapshot {
            chain.push(match (&self.image, self.origin) {
                (Some(img), Origin::Snapshot) => basename(img).to_vec(),
                _ => self.start_comm.as_bytes().to_vec(),
            });
        }
        chain.extend(self.execs.iter().map(|e| basename(&e.filename).to_vec()));
        chain
    }

    /// [`Proc::chain`] as it stood at `ktime_ns`: what it had run by then, the last
    /// being the program a child forked at that moment started with. A forked
    /// process that had not exec'd yet is named by its comm.
    pub fn chain_at(&self, ktime_ns: u64) -> Vec<Vec<u8>> {
        let n = self.execs.partition_point(|e| e.ktime_ns <= ktime_ns);
        if n == self.execs.len() {
            return self.chain();
        }
        let mut chain = Vec::new();
        if n == 0 || self.origin == Origin::Snapshot {
            chain.push(match (&self.image, self.origin) {
                (Some(img), Origin::Snapshot) => basename(img).to_vec(),
                _ => self.start_comm.as_bytes().to_vec(),
            });
        }
        chain.extend(
            self.execs[..n]
                .iter()
                .map(|e| basename(&e.filename).to_vec()),
        );
        chain
    }

    pub fn ending(&self) -> Ending {
        match &self.exit {
            Some(e) => match (e.code, e.signal) {
                (Some(c), _) => Ending::Exited(c),
                (None, Some(s)) => Ending::Killed {
                    signal: s,
                    core_dumped: e.core_dumped,
                },
                (None, None) => Ending::Unknown,
            },
            None if self.state == Some('Z') => Ending::ZombieAtStart,
            None if self.reap.is_some() => Ending::ExitUnseen,
            None => Ending::Alive,
        }
    }

    /// From start to exit, when both are known.
    pub fn lifetime_ns(&self) -> Option<u64> {
        self.exit.as_ref().and_then(|e| e.lifetime_ns)
    }

    /// From exit to reap, when both are known.
    pub fn zombie_ns(&self) -> Option<u64> {
        self.reap.as_ref().and_then(|r| r.zombie_ns)
    }

    /// Exited and not reaped by the end of the recording.
    pub fn zombie_at_end(&self) -> bool {
        (self.exit.is_some() || self.state == Some('Z')) && self.reap.is_none()
    }

    /// No end seen at all: running when the recording stopped.
    pub fn alive_at_end(&self) -> bool {
        self.ending() == Ending::Alive
    }
}

/// Events the kernel could not deliver, as a `lost` record reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub run: usize,
    pub ktime_ns: u64,
    pub kind: String,
    pub count: u64,
}

/// An alert `watch` raised live (or the end of its episode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSeen {
    pub run: usize,
    pub ktime_ns: u64,
    /// `fork_storm`, `zombie_buildup`, `crash_loop`, `fork_failures`.
    pub alert: String,
    /// An `alert_end` record: the episode ended.
    pub end: bool,
    pub message: String,
    /// The culprit the record names, when a record about it came before.
    pub proc: Option<ProcIdx>,
}

/// A failed execve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecFailure {
    pub proc: ProcIdx,
    pub ktime_ns: u64,
    pub filename: Vec<u8>,
    pub errno: u32,
}

/// A failed fork/clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkFailure {
    pub proc: ProcIdx,
    pub ktime_ns: u64,
    pub errno: u32,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub runs: Vec<Run>,
    pub procs: Vec<Proc>,
    pub lost: Vec<Lost>,
    pub exec_failures: Vec<ExecFailure>,
    pub fork_failures: Vec<ForkFailure>,
    pub alerts: Vec<AlertSeen>,
    /// Parent links dropped because the input made them circular.
    pub cycles_broken: u64,
    index: HashMap<(usize, ProcId), ProcIdx>,
}

impl History {
    /// Builds the history of everything in `records`.
    pub fn build(records: &Records) -> History {
        let mut h = History {
            runs: records.runs.clone(),
            ..Default::default()
        };
        for rec in &records.records {
            h.apply(rec.clone());
        }
        h.finish();
        h
    }

    /// Builds the history and takes the records out of `records` on the way (the
    /// history holds what they said), so a large input is not held twice: the
    /// records' own buffer is given back as the history grows, not at the end.
    pub fn take(records: &mut Records) -> History {
        let mut h = History {
            runs: records.runs.clone(),
            ..Default::default()
        };
        let mut recs = std::mem::take(&mut records.records);
        // Taken from the end, so the buffer can shrink in place as it empties
        // (a large allocation is its own mapping: glibc's realloc shrinks it with
        // mremap, without copying).
        recs.reverse();
        let mut taken = 0usize;
        while let Some(rec) = recs.pop() {
            h.apply(rec);
            taken += 1;
            if taken.is_multiple_of(TAKE_SHRINK_EVERY) {
                recs.shrink_to_fit();
            }
        }
        h.finish();
        h
    }

    /// Links what needs every process known: parents by pid, children, images.
    fn finish(&mut self) {
        let h = self;
        h.link_parents();
        h.break_cycles();
        h.fill_children();
        h.fill_images();
        h.fill_exit_parents();
    }

    /// Keeps only the processes for which `keep` is true (`--uid`, `--comm`,
    /// `--cgroup` in `tracer report`): what is counted is theirs alone. A kept
    /// process whose parent is not kept has no parent here; failures of the others
    /// go with them; losses and alerts stay (an alert's culprit is forgotten if it
    /// is not kept).
    pub fn retain(&mut self, keep: impl Fn(&Proc) -> bool) {
        let mut new_idx: Vec<Option<ProcIdx>> = Vec::with_capacity(self.procs.len());
        let mut n = 0;
        for p in &self.procs {
            new_idx.push(keep(p).then(|| {
                n += 1;
                n - 1
            }));
        }
        let map = |i: Option<ProcIdx>| i.and_then(|i| new_idx[i]);
        let procs = std::mem::take(&mut self.procs);
        for (i, mut p) in procs.into_iter().enumerate() {
            if new_idx[i].is_none() {
                continue;
            }
            p.parent = map(p.parent);
            p.children = p.children.iter().filter_map(|&c| new_idx[c]).collect();
            if let Some(e) = p.exit.as_mut() {
                e.parent = map(e.parent);
            }
            self.procs.push(p);
        }
        self.exec_failures.retain_mut(|f| match new_idx[f.proc] {
            Some(i) => {
                f.proc = i;
                true
            }
            None => false,
        });
        self.fork_failures.retain_mut(|f| match new_idx[f.proc] {
            Some(i) => {
                f.proc = i;
                true
            }
            None => false,
        });
        for a in &mut self.alerts {
            a.proc = map(a.proc);
        }
        self.index = self
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.run, p.id), i))
            .collect();
    }

    /// The process with this id in this run.
    pub fn find(&self, run: usize, id: ProcId) -> Option<ProcIdx> {
        self.index.get(&(run, id)).copied()
    }

    /// Processes with no known parent, by run and start time.
    pub fn roots(&self) -> Vec<ProcIdx> {
        let mut roots: Vec<ProcIdx> = (0..self.procs.len())
            .filter(|&i| self.procs[i].parent.is_none())
            .collect();
        roots.sort_by_key(|&i| {
            (
                self.procs[i].run,
                self.procs[i].start_ns(),
                self.procs[i].pid(),
            )
        });
        roots
    }

    /// The end of the recording of a run: its last record.
    pub fn end_ns(&self, run: usize) -> u64 {
        self.runs.get(run).map_or(0, |r| r.last_ktime_ns)
    }

    fn proc_mut(&mut self, run: usize, id: ProcId, ktime_ns: u64) -> ProcIdx {
        if let Some(&i) = self.index.get(&(run, id)) {
            let p = &mut self.procs[i];
            p.first_ns = p.first_ns.min(ktime_ns);
            p.last_ns = p.last_ns.max(ktime_ns);
            return i;
        }
        let i = self.procs.len();
        self.procs.push(Proc::new(run, id, ktime_ns));
        self.index.insert((run, id), i);
        i
    }

    /// The process a record is about, updated with what the record says of it.
    fn subject(&mut self, run: usize, ktime_ns: u64, s: &Subject) -> ProcIdx {
        let i = self.proc_mut(run, s.proc_id, ktime_ns);
        let p = &mut self.procs[i];
        let first = p.records == 0;
        p.records += 1;
        if first {
            p.start_comm = s.comm;
            p.ppid = s.ppid;
        }
        // comm and cgroup are per thread; the process's are its main thread's.
        if s.tid == s.pid || first {
            if ktime_ns >= p.last_ns || first {
                p.comm = s.comm;
            }
            if p.cgroup.is_none() {
                p.cgroup.clone_from(&s.cgroup);
                p.identity = identity_of(s);
            }
        }
        if ktime_ns >= p.last_ns || first {
            p.last_ppid = s.ppid;
        }
        if s.uid.is_some() {
            p.uid = s.uid;
        }
        i
    }

    fn apply(&mut self, rec: Rec) {
        let Rec {
            run,
            record:
                Record {
                    ktime_ns: t,
                    subject,
                    body,
                    uncertain,
                },
            ..
        } = rec;
        let Some(s) = &subject else {
            if let Body::Lost { kind, count } = body {
                self.lost.push(Lost {
                    run,
                    ktime_ns: t,
                    kind: kind.into_owned(),
                    count,
                });
            }
            return;
        };
        match body {
            Body::Process {
                filename,
                argv,
                state,
                ..
            } => {
                let i = self.subject(run, t, s);
                let p = &mut self.procs[i];
                p.uncertain |= uncertain;
                if p.origin != Origin::Inferred {
                    // Already known from a fork or an earlier snapshot: this is the
                    // snapshot that starts a rotated or reopened file (docs/events.md,
                    // `meta`). It adds no process, and what the process ran and how
                    // it ended are already known better from its own records.
                    return;
                }
                p.origin = Origin::Snapshot;
                // What /proc said is the start: later records must not have
                // overwritten it with a newer comm.
                p.start_comm = s.comm;
                p.ppid = s.ppid;
                if p.image.is_none() {
                    p.image = filename.as_deref().map(Arc::from);
                }
                if p.argv.is_empty() {
                    p.argv = argv;
                }
                p.state = p.state.or(state);
            }
            Body::Fork {
                parent_proc_id,
                thread,
                clone_flags,
            } => {
                if thread {
                    let i = self.subject(run, t, s);
                    self.procs[i].threads_created += 1;
                    return;
                }
                let parent = parent_proc_id.map(|pid| self.proc_mut(run, pid, t));
                let i = self.subject(run, t, s);
                let p = &mut self.procs[i];
                p.origin = Origin::Fork;
                p.fork_ns = Some(t);
                p.start_comm = s.comm;
                p.ppid = s.ppid;
                p.clone_flags = clone_flags;
                if parent != Some(i) {
                    p.parent = parent;
                }
                if let Some(pi) = parent
                    && pi != i
                {
                    // A process named only as a parent gets its pid and comm from here.
                    let pp = &mut self.procs[pi];
                    if pp.records == 0 {
                        pp.start_comm = s.comm;
                        pp.comm = s.comm;
                        pp.cgroup.clone_from(&s.cgroup);
                        pp.identity = identity_of(s);
                    }
                }
            }
            Body::Exec {
                filename,
                argv,
                argv_truncated,
                ..
            } => {
                let i = self.subject(run, t, s);
                let p = &mut self.procs[i];
                let exec = Exec {
                    ktime_ns: t,
                    filename: Arc::from(filename),
                    argv,
                    argv_truncated,
                    comm: s.comm,
                };
                // Records come in time order; keep the list in order anyway.
                let at = p.execs.partition_point(|e| e.ktime_ns <= t);
                p.execs.insert(at, exec);
                p.comm = p.execs.last().map_or(s.comm, |e| e.comm);
            }
            Body::ExecFailed { filename, errno } => {
                let i = self.subject(run, t, s);
                self.procs[i].exec_failed += 1;
                self.exec_failures.push(ExecFailure {
                    proc: i,
                    ktime_ns: t,
                    filename,
                    errno,
                });
            }
            Body::Exit {
                exit_code,
                signal,
                core_dumped,
                lifetime_ns,
                thread,
            } => {
                let i = self.subject(run, t, s);
                let p = &mut self.procs[i];
                p.uncertain |= uncertain;
                if thread {
                    p.threads_exited += 1;
                    return;
                }
                let lifetime_ns = lifetime_ns.or_else(|| p.fork_ns.map(|f| t.saturating_sub(f)));
                p.exit = Some(Exit {
                    ktime_ns: t,
                    code: exit_code,
                    signal,
                    core_dumped,
                    lifetime_ns,
                    ppid: s.ppid,
                    parent: None,
                });
            }
            Body::Reap {
                zombie_ns,
                reaper_pid,
                reaper_comm,
                autoreap,
                inferred,
            } => {
                let i = self.subject(run, t, s);
                let p = &mut self.procs[i];
                p.uncertain |= uncertain;
                let zombie_ns =
                    zombie_ns.or_else(|| p.exit.as_ref().map(|e| t.saturating_sub(e.ktime_ns)));
                p.reap = Some(Reap {
                    ktime_ns: t,
                    zombie_ns,
                    reaper_pid,
                    reaper_comm,
                    autoreap,
                    inferred: inferred.is_some(),
                    ppid: s.ppid,
                });
            }
            Body::ForkFailed { errno } => {
                let i = self.subject(run, t, s);
                *self.procs[i].fork_failed.entry(errno).or_default() += 1;
                self.fork_failures.push(ForkFailure {
                    proc: i,
                    ktime_ns: t,
                    errno,
                });
            }
            Body::Lost { .. } | Body::End { .. } => {}
            Body::Alert(alert) => {
                // Only looked up: an alert is not a record of the culprit's life (an
                // `alert_end` may name a process long gone).
                let proc = self.find(run, s.proc_id);
                // The message as the recording has it (non-UTF-8 bytes as `\xNN`).
                let message = match &alert.message {
                    Some(kept) => json_text(kept),
                    None => json_text(&crate::alert_text::message(
                        &alert,
                        Some(s),
                        s.cgroup.as_deref(),
                    )),
                };
                self.alerts.push(AlertSeen {
                    run,
                    ktime_ns: t,
                    alert: alert.kind.name().to_owned(),
                    end: alert.end,
                    message,
                    proc,
                });
            }
        }
    }

    /// The process of `run` that held `pid` at `ktime_ns`: the latest one started by
    /// then and not yet reaped. `None` for pid 0 (the kernel's idle task, parent of
    /// init and kthreadd).
    fn holder(
        &self,
        by_pid: &HashMap<(usize, u32), Vec<ProcIdx>>,
        run: usize,
        pid: u32,
        ktime_ns: u64,
    ) -> Option<ProcIdx> {
        if pid == 0 {
            return None;
        }
        let candidates = by_pid.get(&(run, pid))?;
        candidates
            .iter()
            .copied()
            .filter(|&c| {
                let p = &self.procs[c];
                // proc_id start times are in 10 ms ticks, cut down: allow one tick.
                p.start_ns() <= ktime_ns.saturating_add(NS_PER_TICK)
                    && p.reap.as_ref().is_none_or(|r| r.ktime_ns >= ktime_ns)
            })
            .max_by_key(|&c| (self.procs[c].start_ns(), self.procs[c].first_ns))
    }

    fn pid_index(&self) -> HashMap<(usize, u32), Vec<ProcIdx>> {
        let mut by_pid: HashMap<(usize, u32), Vec<ProcIdx>> = HashMap::new();
        for (i, p) in self.procs.iter().enumerate() {
            by_pid.entry((p.run, p.pid())).or_default().push(i);
        }
        by_pid
    }

    /// Parents of processes whose fork did not name one: by pid.
    fn link_parents(&mut self) {
        let by_pid = self.pid_index();
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            if p.parent.is_some() {
                continue;
            }
            let parent = self.holder(&by_pid, p.run, p.ppid, p.first_ns);
            if parent != Some(i) {
                self.procs[i].parent = parent;
            }
        }
    }

    /// Drops parent links that would make a cycle (only bad input can): walks up
    /// from each process once, marking what it has seen.
    fn break_cycles(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut mark = vec![Mark::New; self.procs.len()];
        let mut path = Vec::new();
        for start in 0..self.procs.len() {
            let mut cur = Some(start);
            while let Some(c) = cur {
                match mark[c] {
                    Mark::Done => break,
                    Mark::OnPath => {
                        // `c` closes a cycle: cut it above `c`.
                        self.procs[c].parent = None;
                        self.cycles_broken += 1;
                        break;
                    }
                    Mark::New => {
                        mark[c] = Mark::OnPath;
                        path.push(c);
                        cur = self.procs[c].parent;
                    }
                }
            }
            for c in path.drain(..) {
                mark[c] = Mark::Done;
            }
        }
    }

    fn fill_children(&mut self) {
        for i in 0..self.procs.len() {
            if let Some(pi) = self.procs[i].parent {
                self.procs[pi].children.push(i);
            }
        }
        let keys: Vec<(u64, u32)> = self.procs.iter().map(|p| (p.start_ns(), p.pid())).collect();
        for p in &mut self.procs {
            p.children.sort_by_key(|&c| keys[c]);
        }
    }

    /// A forked process runs its parent's executable until it execs: fill in
    /// `image` parent first, from the roots down.
    fn fill_images(&mut self) {
        let mut stack = self.roots();
        while let Some(i) = stack.pop() {
            if self.procs[i].image.is_none()
                && let (Some(pi), Some(fork)) = (self.procs[i].parent, self.procs[i].fork_ns)
            {
                self.procs[i].image = self.procs[pi].image_at(fork).cloned();
            }
            stack.extend(self.procs[i].children.iter().copied());
        }
    }

    /// The process that should reap each exited one: its parent at exit.
    fn fill_exit_parents(&mut self) {
        let by_pid = self.pid_index();
        for i in 0..self.procs.len() {
            let Some(exit) = &self.procs[i].exit else {
                continue;
            };
            let parent = match self.procs[i].parent {
                Some(pi) if self.procs[pi].pid() == exit.ppid => Some(pi),
                _ => self.holder(&by_pid, self.procs[i].run, exit.ppid, exit.ktime_ns),
            };
            if let Some(e) = &mut self.procs[i].exit {
                e.parent = parent.filter(|&p| p != i);
            }
        }
    }
}
