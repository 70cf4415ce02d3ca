//! Live alerts: fork storms, zombie build-ups, crash loops and bursts of failed
//! forks, found in the stream of [`Record`]s the model produces.
//!
//! Pure, like the model: no I/O, no clocks. Time is the records' `ktime_ns` and
//! the `now` given to [`Engine::tick`], which the agent calls a few times a
//! second so that conditions that change with time alone (a zombie growing old,
//! a rate falling to nothing, a crash leaving its window) are seen.
//!
//! Every detector counts by a key (a parent process, a cgroup, a parent and an
//! executable, a user and a cgroup) and keeps a `Phase` per key: the alert is
//! raised once, when the condition has held long enough, and the episode ends
//! once the condition has been false for the quiet period (`--alert-quiet`);
//! then an `alert_end` record sums it up, and a later recurrence raises a new
//! alert.
//!
//! Memory stays bounded on a run of any length: processes are forgotten soon
//! after their reap (`procs.rs`), per-key state is swept once idle, and every map
//! is capped at [`MAX_KEYS`] (beyond that, new keys are not counted; see
//! [`Engine::skipped`]).

mod crash;
mod forkfail;
mod procs;
mod storm;
mod window;
mod zombie;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use storm::PeakRates;

use crate::record::{Alert, AlertKind, AlertProc, Body, ProcId, Record, Subject};
use procs::{Image, ProcState, Procs};

/// Rates are counted over the last second.
pub const RATE_WINDOW_NS: u64 = 1_000_000_000;
/// A parent's zombie count must stay above `--zombie-max` this long: a parent
/// that reaps a burst of children a moment after they exit is not building up.
pub const ZOMBIE_COUNT_SUSTAIN_NS: u64 = 1_000_000_000;
/// How often idle per-key state is swept.
const SWEEP_EVERY_NS: u64 = 1_000_000_000;
/// Most keys one detector map holds.
pub const MAX_KEYS: usize = 65_536;

/// Thresholds; the defaults are the `tracer watch` flag defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Fork storm: more than this many children per second...
    pub storm_rate: u64,
    /// ...for at least this long.
    pub storm_for_ns: u64,
    /// Zombie build-up: a parent holding more than this many zombies...
    pub zombie_max: u64,
    /// ...or one zombie older than this.
    pub zombie_age_ns: u64,
    /// Crash loop: this many failed exits of one executable under one parent...
    pub crash_count: u32,
    /// ...within this time.
    pub crash_window_ns: u64,
    /// Fork failures: this many failed forks by one user in one cgroup...
    pub fork_fail_count: u32,
    /// ...within this time.
    pub fork_fail_window_ns: u64,
    /// An episode ends once its condition has been false this long.
    pub quiet_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            storm_rate: 200,
            storm_for_ns: 3_000_000_000,
            zombie_max: 50,
            zombie_age_ns: 30_000_000_000,
            crash_count: 5,
            crash_window_ns: 60_000_000_000,
            fork_fail_count: 10,
            fork_fail_window_ns: 10_000_000_000,
            quiet_ns: 10_000_000_000,
        }
    }
}

/// What the engine holds, for checking that it stays bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub processes: usize,
    /// Per-key detector state (rate windows, zombie holders, crash and failure counts).
    pub keys: usize,
}

/// The alert engine. Feed it every record with [`Engine::observe`] and call
/// [`Engine::tick`] regularly; both push the alert records they raise.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    /// The latest time seen: records may come slightly out of order, time does not.
    now: u64,
    last_sweep: u64,
    procs: Procs,
    storms: storm::Storms,
    zombies: zombie::Zombies,
    crashes: crash::CrashLoops,
    failures: forkfail::ForkFailures,
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        Engine {
            now: 0,
            last_sweep: 0,
            procs: Procs::default(),
            storms: storm::Storms::default(),
            zombies: zombie::Zombies::default(),
            crashes: crash::CrashLoops::default(),
            failures: forkfail::ForkFailures::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Takes in one record; pushes the alert records it raises.
    pub fn observe(&mut self, rec: &Record, out: &mut Vec<Record>) {
        let Some(s) = &rec.subject else {
            return;
        };
        let t = rec.ktime_ns;
        self.now = self.now.max(t);
        match &rec.body {
            Body::Process {
                filename,
                argv,
                state,
                ..
            } => self.process(s, filename, argv, *state, t, out),
            Body::Fork {
                parent_proc_id,
                thread: false,
                ..
            } => self.fork(s, *parent_proc_id, t, out),
            Body::Exec { filename, argv, .. } => self.exec(s, filename, argv),
            Body::Exit {
                exit_code,
                signal,
                lifetime_ns,
                thread: false,
                ..
            } => self.exit(s, *exit_code, *signal, *lifetime_ns, t, out),
            Body::Reap { .. } => self.reap(s, t, out),
            Body::ForkFailed { errno } => {
                let id = self.ensure(s);
                self.failures
                    .on_failure(&self.procs, &self.cfg, id, *errno, t, self.now, out);
            }
            Body::Alert(_) | Body::Lost { .. } | Body::End { .. } => {}
            Body::Fork { .. } | Body::Exit { .. } | Body::ExecFailed { .. } => {
                self.ensure(s);
            }
        }
    }

    /// Time has come to `now` (CLOCK_BOOTTIME ns): ends and raises what time alone
    /// changes, and forgets what is no longer needed.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Record>) {
        self.now = self.now.max(now);
        let now = self.now;
        self.storms.tick(&self.procs, &self.cfg, now, out);
        self.zombies.tick(&self.procs, &self.cfg, now, out);
        self.crashes.tick(&self.cfg, now, out);
        self.failures.tick(&self.procs, &self.cfg, now, out);
        self.procs.expire(now);
        if now.saturating_sub(self.last_sweep) >= SWEEP_EVERY_NS {
            self.last_sweep = now;
            self.storms.sweep(now);
            self.zombies.sweep();
            self.crashes.sweep(&self.cfg, now);
            self.failures.sweep(&self.cfg, now);
        }
    }

    pub fn held(&self) -> Held {
        Held {
            processes: self.procs.len(),
            keys: self.storms.keys()
                + self.zombies.keys()
                + self.crashes.keys()
                + self.failures.keys(),
        }
    }

    /// Events not counted because a detector map was full ([`MAX_KEYS`]).
    pub fn skipped(&self) -> u64 {
        self.storms.skipped + self.crashes.skipped + self.failures.skipped + self.zombies.skipped
    }

    /// The highest fork rates seen, per parent, executable and cgroup.
    pub fn peak_rates(&self) -> PeakRates {
        self.storms.peaks()
    }

    /// The process a record is about, added if not yet known, and updated.
    fn ensure(&mut self, s: &Subject) -> ProcId {
        if self.procs.get(&s.proc_id).is_some() {
            self.procs.refresh(s);
        } else {
            let parent = self.procs.by_pid(s.ppid).filter(|p| *p != s.proc_id);
            self.insert(ProcState::new(s.clone(), parent, Arc::default()));
        }
        s.proc_id
    }

    fn insert(&mut self, p: ProcState) {
        if let Some(old) = self.procs.insert(p) {
            self.forget(old);
        }
    }

    /// `old` lost its pid to a new process, so it ended unseen: it is no
    /// zombie any more, and holds none.
    fn forget(&mut self, old: ProcState) {
        let id = old.subject.proc_id;
        if let (Some(holder), Some(t)) = (old.zombie_of, old.exited_at) {
            self.zombies.remove(holder, id, t);
        }
        for z in self.zombies.holder_exited(id) {
            if let Some(p) = self.procs.get_mut(&z) {
                p.zombie_of = None;
            }
        }
    }

    fn process(
        &mut self,
        s: &Subject,
        filename: &Option<Vec<u8>>,
        argv: &[Vec<u8>],
        state: Option<char>,
        t: u64,
        out: &mut Vec<Record>,
    ) {
        let id = self.ensure(s);
        if let Some(p) = self.procs.get_mut(&id)
            && p.image.filename.is_none()
        {
            p.image = Arc::new(Image {
                filename: filename.clone(),
                argv: argv.to_vec(),
            });
        }
        if state == Some('Z') {
            // When it exited is unknown: it has been a zombie at least since now.
            self.became_zombie(id, t, out);
        }
    }

    fn fork(&mut self, s: &Subject, parent_proc_id: Option<ProcId>, t: u64, out: &mut Vec<Record>) {
        let id = s.proc_id;
        let parent = parent_proc_id
            .or_else(|| self.procs.by_pid(s.ppid))
            .filter(|p| *p != id);
        let image = parent
            .and_then(|p| self.procs.get(&p))
            .map(|p| Arc::clone(&p.image))
            .unwrap_or_default();
        if let Some(p) = self.procs.get_mut(&id) {
            // Known already (its fork came after another of its records): fill in.
            p.parent = p.parent.or(parent);
        } else {
            let mut p = ProcState::new(s.clone(), parent, Arc::clone(&image));
            p.forked_at = Some(t);
            self.insert(p);
        }
        let exe = image.filename.as_deref().unwrap_or_default();
        self.storms.on_fork(
            &self.procs,
            &self.cfg,
            storm::Fork {
                t,
                child: id,
                parent,
                exe,
                cgroup_id: s.cgroup_id,
            },
            self.now,
            out,
        );
    }

    fn exec(&mut self, s: &Subject, filename: &[u8], argv: &[Vec<u8>]) {
        let id = self.ensure(s);
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let first = !p.execd;
        p.execd = true;
        let new = Arc::new(Image {
            filename: Some(filename.to_vec()),
            argv: argv.to_vec(),
        });
        let old = std::mem::replace(&mut p.image, new);
        if first && let Some(forked) = p.forked_at {
            let parent = p.parent;
            let old = old.filename.as_deref().unwrap_or_default();
            self.storms
                .on_child_exec(forked, self.now, parent, old, filename);
        }
    }

    fn exit(
        &mut self,
        s: &Subject,
        exit_code: Option<u8>,
        signal: Option<u8>,
        lifetime_ns: Option<u64>,
        t: u64,
        out: &mut Vec<Record>,
    ) {
        let id = self.ensure(s);
        if self.procs.get(&id).is_some_and(|p| p.exited_at.is_some()) {
            return;
        }
        // Its own zombies go to whoever adopts them (kernel/exit.c forget_original_parent).
        for z in self.zombies.holder_exited(id) {
            if let Some(p) = self.procs.get_mut(&z) {
                p.zombie_of = None;
            }
        }
        self.became_zombie(id, t, out);
        let failed = signal.is_some() || exit_code.is_some_and(|c| c != 0);
        if failed {
            let parent = self.procs.parent_of(&id);
            self.crashes.on_crash(
                &self.procs,
                &self.cfg,
                crash::Crash {
                    t,
                    child: id,
                    parent,
                    ppid: s.ppid,
                    exit_code,
                    signal,
                    lifetime_ns,
                },
                self.now,
                out,
            );
        }
    }

    fn became_zombie(&mut self, id: ProcId, t: u64, out: &mut Vec<Record>) {
        let holder = self.procs.parent_of(&id);
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if p.exited_at.is_some() {
            return;
        }
        p.exited_at = Some(t);
        if let Some(h) = holder {
            p.zombie_of = Some(h);
            self.zombies
                .on_exit(&self.procs, &self.cfg, h, id, t, self.now, out);
        }
    }

    fn reap(&mut self, s: &Subject, t: u64, out: &mut Vec<Record>) {
        let id = self.ensure(s);
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let zombie = p.zombie_of.take().zip(p.exited_at);
        if let Some((holder, exited)) = zombie {
            self.zombies.remove(holder, id, exited);
            self.zombies
                .evaluate(&self.procs, &self.cfg, holder, self.now, out);
        }
        self.procs.release(id, t);
        self.procs.expire(self.now);
    }
}

/// Who an alert is about, captured when it is raised so that its end can name
/// the same process after that process is gone.
#[derive(Clone, Debug)]
struct Culprit {
    subject: Subject,
    image: Arc<Image>,
    parent: Option<AlertProc>,
}

impl Culprit {
    fn of(procs: &Procs, id: ProcId) -> Option<Culprit> {
        let p = procs.get(&id)?;
        let parent = procs
            .parent_of(&id)
            .and_then(|q| procs.get(&q))
            .map(ProcState::as_alert_proc);
        Some(Culprit {
            subject: Subject {
                tid: p.subject.pid,
                ..p.subject.clone()
            },
            image: Arc::clone(&p.image),
            parent,
        })
    }

    /// For a process the engine holds nothing about: its id alone.
    fn unknown(id: ProcId) -> Culprit {
        Culprit {
            subject: Subject {
                pid: id.pid,
                tid: id.pid,
                ppid: 0,
                proc_id: id,
                comm: Default::default(),
                uid: None,
                cgroup_id: 0,
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            },
            image: Arc::default(),
            parent: None,
        }
    }

    fn of_or_unknown(procs: &Procs, id: ProcId) -> Culprit {
        Culprit::of(procs, id).unwrap_or_else(|| Culprit::unknown(id))
    }

    fn as_alert_proc(&self) -> AlertProc {
        AlertProc {
            pid: self.subject.pid,
            proc_id: self.subject.proc_id,
            comm: self.subject.comm,
            filename: self.image.filename.clone(),
        }
    }

    /// An alert about this culprit, with no figures yet.
    fn alert(&self, kind: AlertKind, scope: &'static str, since_ns: u64, end: bool) -> Alert {
        Alert {
            kind,
            end,
            scope: scope.into(),
            since_ns,
            filename: self.image.filename.clone(),
            argv: self.image.argv.clone(),
            parent: self.parent.clone(),
            figures: Vec::new(),
            executables: Vec::new(),
            exits: Vec::new(),
            errno: None,
            what: String::new(),
            message: None,
        }
    }

    fn record(&self, now: u64, alert: Alert) -> Record {
        Record {
            ktime_ns: now,
            subject: Some(self.subject.clone()),
            body: Body::Alert(Box::new(alert)),
            uncertain: false,
        }
    }
}

/// What a [`Phase`] update means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Nothing,
    /// Raise the alert: the condition has held since `since`.
    Begin {
        since: u64,
    },
    /// The episode that began at `since` is over; its condition stopped holding
    /// at `until`.
    End {
        since: u64,
        until: u64,
    },
}

/// Once-per-episode bookkeeping for one key.
#[derive(Clone, Debug, Default)]
struct Phase {
    /// Since when the condition has held without a break (no episode open).
    pending: Option<u64>,
    /// The open episode: its start, and since when its condition is false.
    open: Option<(u64, Option<u64>)>,
}

impl Phase {
    /// The condition is `cond` at `now`. An episode begins once the condition has
    /// held `sustain_ns`, and ends once it has been false `quiet_ns`.
    fn update(&mut self, cond: bool, now: u64, sustain_ns: u64, quiet_ns: u64) -> Step {
        match (&mut self.open, cond) {
            (Some((_, false_since)), true) => {
                *false_since = None;
                Step::Nothing
            }
            (Some((since, false_since)), false) => {
                let until = *false_since.get_or_insert(now);
                if now.saturating_sub(until) >= quiet_ns {
                    let since = *since;
                    self.open = None;
                    Step::End { since, until }
                } else {
                    Step::Nothing
                }
            }
            (None, true) => {
                let since = *self.pending.get_or_insert(now);
                if now.saturating_sub(since) >= sustain_ns {
                    self.pending = None;
                    self.open = Some((since, None));
                    Step::Begin { since }
                } else {
                    Step::Nothing
                }
            }
            (None, false) => {
                self.pending = None;
                Step::Nothing
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.pending.is_none() && self.open.is_none()
    }

    fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

/// A bounded tally of executables: the first [`TALLY_KEYS`] distinct ones are
/// counted by name, the rest together.
#[derive(Clone, Debug, Default)]
struct Tally {
    counts: Vec<(Vec<u8>, u64)>,
    others: u64,
}

const TALLY_KEYS: usize = 8;

impl Tally {
    fn add(&mut self, key: &[u8]) {
        match self.counts.iter().position(|(k, _)| k == key) {
            Some(i) => self.counts[i].1 += 1,
            None if self.counts.len() < TALLY_KEYS => self.counts.push((key.to_vec(), 1)),
            None => self.others += 1,
        }
    }

    fn take_back(&mut self, key: &[u8]) {
        match self.counts.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n = n.saturating_sub(1),
            None => self.others = self.others.saturating_sub(1),
        }
    }

    /// Most first, at most `n`; an empty name (unknown image) becomes `None`.
    fn top(&self, n: usize) -> Vec<(Option<Vec<u8>>, u64)> {
        let mut v: Vec<_> = self.counts.iter().filter(|(_, c)| *c > 0).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.into_iter()
            .take(n)
            .map(|(k, c)| ((!k.is_empty()).then(|| k.clone()), *c))
            .collect()
    }
}

/// A file name for a message (lossy: messages are for people).
fn name(f: &Option<Vec<u8>>) -> String {
    match f {
        Some(f) => String::from_utf8_lossy(f).into_owned(),
        None => "an unknown image".to_string(),
    }
}
