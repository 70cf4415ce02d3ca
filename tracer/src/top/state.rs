//! What `tracer top` knows, folded from records one at a time: the live
//! processes with their fork rates and children's endings, the machine-wide
//! rates, the alerts and the last events. Pure: no I/O, no clock of its own
//! (time is the records' `ktime_ns`, or the tick's), so every rule is tested from
//! hand-written records. Memory is bounded by the live processes: a process is
//! forgotten when it is reaped, and the alert and event tails are capped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::record::{Body, ProcId, Record};

const SEC: u64 = 1_000_000_000;
/// Seconds of history per process: 10 full seconds and the one being filled.
const PROC_SECS: usize = 11;
/// Seconds of machine-wide history (the sparkline): 60 full ones and the current.
pub const SPARK_SECS: usize = 61;
/// Alerts kept for the alerts pane.
const KEEP_ALERTS: usize = 64;
/// Records kept for the event tail.
const KEEP_TAIL: usize = 64;

/// Counts per second over the last `N - 1` full seconds and the current one.
#[derive(Clone, Debug)]
pub struct Buckets<const N: usize> {
    /// The second (ktime / 1 s) the newest slot counts.
    last: u64,
    counts: [u32; N],
}

impl<const N: usize> Default for Buckets<N> {
    fn default() -> Self {
        Buckets {
            last: 0,
            counts: [0; N],
        }
    }
}

impl<const N: usize> Buckets<N> {
    /// Moves the window on to second `s`, zeroing the seconds that passed.
    fn advance(&mut self, s: u64) {
        if s <= self.last {
            return;
        }
        let steps = (s - self.last).min(N as u64);
        for k in 1..=steps {
            self.counts[((self.last + k) % N as u64) as usize] = 0;
        }
        self.last = s;
    }

    fn add(&mut self, ktime_ns: u64) {
        let s = ktime_ns / SEC;
        self.advance(s);
        // An event older than the window (reordered across CPUs) counts where it
        // still fits, else nowhere.
        if self.last - s < N as u64 {
            let i = (s % N as u64) as usize;
            self.counts[i] = self.counts[i].saturating_add(1);
        }
    }

    /// The count of full second `s`, if still in the window.
    fn at(&self, s: u64) -> u32 {
        if s > self.last || self.last - s >= N as u64 {
            0
        } else {
            self.counts[(s % N as u64) as usize]
        }
    }

    /// Per second over the last full second before `now_ns`.
    pub fn rate_1s(&self, now_ns: u64) -> u64 {
        let now = now_ns / SEC;
        now.checked_sub(1).map_or(0, |s| u64::from(self.at(s)))
    }

    /// Mean per second over the last 10 full seconds before `now_ns`.
    pub fn rate_10s(&self, now_ns: u64) -> u64 {
        let now = now_ns / SEC;
        let sum: u64 = (1..=10u64)
            .filter_map(|k| now.checked_sub(k))
            .map(|s| u64::from(self.at(s)))
            .sum();
        sum.div_ceil(10)
    }

    /// The last `n` full seconds before `now_ns`, oldest first.
    pub fn history(&self, now_ns: u64, n: usize) -> Vec<u64> {
        let now = now_ns / SEC;
        (1..=n as u64)
            .rev()
            .map(|k| now.checked_sub(k).map_or(0, |s| u64::from(self.at(s))))
            .collect()
    }

    fn is_quiet(&self, now_ns: u64) -> bool {
        let now = now_ns / SEC;
        now.saturating_sub(self.last) >= N as u64
    }
}

/// One live (or zombie) process.
#[derive(Clone, Debug)]
pub struct Proc {
    pub id: ProcId,
    pub ppid: u32,
    /// What it runs: the last exec'd file's base name, else its comm.
    pub name: String,
    pub cgroup: Option<Arc<str>>,
    /// When it exited: it is a zombie until reaped (CLOCK_BOOTTIME ns).
    pub exited_ns: Option<u64>,
    /// Forks it made (processes and, with `--threads`, threads); `None` until its first.
    pub forks: Option<Box<Buckets<PROC_SECS>>>,
    /// Its children that exited, and of those the ones a signal ended.
    pub child_exits: u64,
    pub child_crashes: u64,
}

impl Proc {
    pub fn rate_1s(&self, now_ns: u64) -> u64 {
        self.forks.as_ref().map_or(0, |b| b.rate_1s(now_ns))
    }
    pub fn rate_10s(&self, now_ns: u64) -> u64 {
        self.forks.as_ref().map_or(0, |b| b.rate_10s(now_ns))
    }
}

/// An alert as the pane shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertLine {
    pub ktime_ns: u64,
    /// The episode ended (`alert_end`).
    pub end: bool,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct State {
    pub procs: HashMap<ProcId, Proc>,
    /// The live process holding each pid.
    pub by_pid: HashMap<u32, ProcId>,
    pub forks: Buckets<SPARK_SECS>,
    pub execs: Buckets<SPARK_SECS>,
    pub exits: Buckets<SPARK_SECS>,
    /// Events the kernel could not deliver, per kind, since the start.
    pub lost: Vec<(String, u64)>,
    pub alerts: VecDeque<AlertLine>,
    /// Alert episodes begun and not yet ended.
    pub active_alerts: u64,
    pub tail: VecDeque<Record>,
    /// The newest time seen (records and ticks).
    pub now_ns: u64,
    pub records: u64,
}

impl State {
    pub fn lost_total(&self) -> u64 {
        self.lost.iter().map(|(_, n)| n).sum()
    }

    /// Time passes without records (the pipeline's tick; a replay's clock).
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        // Rates fall to zero once a process stops forking: drop the buckets of
        // the quiet, so a storm's memory does not outlive it.
        let now = self.now_ns;
        for p in self.procs.values_mut() {
            if p.forks.as_ref().is_some_and(|b| b.is_quiet(now)) {
                p.forks = None;
            }
        }
        for b in [&mut self.forks, &mut self.execs, &mut self.exits] {
            b.advance(now / SEC);
        }
    }

    fn proc_entry(&mut self, rec: &Record) -> Option<&mut Proc> {
        let s = rec.subject.as_ref()?;
        if let Some(old) = self.by_pid.get(&s.pid)
            && *old != s.proc_id
        {
            // The pid was reused: the one we had is gone, its end lost.
            let old = *old;
            self.procs.remove(&old);
        }
        self.by_pid.insert(s.pid, s.proc_id);
        let p = self.procs.entry(s.proc_id).or_insert_with(|| Proc {
            id: s.proc_id,
            ppid: s.ppid,
            name: String::from_utf8_lossy(s.comm.as_bytes()).into_owned(),
            cgroup: None,
            exited_ns: None,
            forks: None,
            child_exits: 0,
            child_crashes: 0,
        });
        p.ppid = s.ppid;
        if s.cgroup.is_some() {
            p.cgroup.clone_from(&s.cgroup);
        }
        Some(p)
    }

    fn count_fork(&mut self, parent: ProcId, ktime_ns: u64) {
        if let Some(p) = self.procs.get_mut(&parent) {
            p.forks.get_or_insert_default().add(ktime_ns);
        }
    }

    fn parent_of(&self, ppid: u32, parent: Option<ProcId>) -> Option<ProcId> {
        parent
            .filter(|p| self.procs.contains_key(p))
            .or_else(|| self.by_pid.get(&ppid).copied())
    }

    pub fn apply(&mut self, rec: &Record) {
        self.records += 1;
        self.now_ns = self.now_ns.max(rec.ktime_ns);
        let t = rec.ktime_ns;
        match &rec.body {
            Body::Process {
                filename, state, ..
            } => {
                let name = filename.as_deref().map(base_name);
                if let Some(p) = self.proc_entry(rec) {
                    if let Some(n) = name {
                        p.name = n;
                    }
                    if *state == Some('Z') {
                        // A zombie already: how long it has been one is unknown,
                        // at least since now.
                        p.exited_ns = Some(t);
                    }
                }
            }
            Body::Fork {
                parent_proc_id,
                thread,
                ..
            } => {
                let Some(s) = rec.subject.as_ref() else {
                    return;
                };
                self.forks.add(t);
                if *thread {
                    // A new thread of the subject's process: that process made it.
                    let id = s.proc_id;
                    if !self.procs.contains_key(&id) {
                        self.proc_entry(rec);
                    }
                    self.count_fork(id, t);
                    return;
                }
                if let Some(parent) = self.parent_of(s.ppid, *parent_proc_id) {
                    self.count_fork(parent, t);
                }
                self.proc_entry(rec);
            }
            Body::Exec { filename, .. } => {
                self.execs.add(t);
                let name = base_name(filename);
                if let Some(p) = self.proc_entry(rec) {
                    p.name = name;
                }
            }
            Body::Exit { signal, thread, .. } => {
                if *thread {
                    return;
                }
                self.exits.add(t);
                let Some(s) = rec.subject.as_ref() else {
                    return;
                };
                if let Some(parent) = self.parent_of(s.ppid, None)
                    && let Some(pp) = self.procs.get_mut(&parent)
                {
                    pp.child_exits += 1;
                    if signal.is_some() {
                        pp.child_crashes += 1;
                    }
                }
                if let Some(p) = self.proc_entry(rec) {
                    p.exited_ns = Some(t);
                }
            }
            Body::Reap { .. } => {
                if let Some(s) = rec.subject.as_ref() {
                    self.procs.remove(&s.proc_id);
                    if self.by_pid.get(&s.pid) == Some(&s.proc_id) {
                        self.by_pid.remove(&s.pid);
                    }
                }
            }
            Body::Lost { kind, count } => match self.lost.iter_mut().find(|(k, _)| k == kind) {
                Some((_, n)) => *n += count,
                None => self.lost.push((kind.to_string(), *count)),
            },
            Body::Alert(a) => {
                if a.end {
                    self.active_alerts = self.active_alerts.saturating_sub(1);
                } else {
                    self.active_alerts += 1;
                }
                let cgroup = rec.subject.as_ref().and_then(|s| s.cgroup.as_deref());
                let message = match &a.message {
                    Some(m) => String::from_utf8_lossy(m).into_owned(),
                    None => String::from_utf8_lossy(&crate::alert_text::message(
                        a,
                        rec.subject.as_ref(),
                        cgroup,
                    ))
                    .into_owned(),
                };
                push_capped(
                    &mut self.alerts,
                    AlertLine {
                        ktime_ns: t,
                        end: a.end,
                        message,
                    },
                    KEEP_ALERTS,
                );
            }
            Body::ExecFailed { .. } | Body::ForkFailed { .. } | Body::End { .. } => {}
        }
        if !matches!(rec.body, Body::End { .. } | Body::Process { .. }) {
            push_capped(&mut self.tail, rec.clone(), KEEP_TAIL);
        }
    }

    /// Zombies now, and the oldest one's age.
    pub fn zombies(&self) -> (u64, Option<u64>) {
        let mut n = 0;
        let mut oldest: Option<u64> = None;
        for p in self.procs.values() {
            if let Some(t) = p.exited_ns {
                n += 1;
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
        (n, oldest.map(|t| self.now_ns.saturating_sub(t)))
    }

    pub fn alive(&self) -> u64 {
        self.procs
            .values()
            .filter(|p| p.exited_ns.is_none())
            .count() as u64
    }
}

fn push_capped<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// The last part of an executable's path, as a name to show.
pub fn base_name(path: &[u8]) -> String {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    String::from_utf8_lossy(if base.is_empty() { path } else { base }).into_owned()
}
