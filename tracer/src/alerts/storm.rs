//! Fork storms, and fork rates per parent, executable and cgroup.
//!
//! Every process creation is counted in one-second windows: its parent's, its
//! executable's (the image that called fork: the parent's, which the child
//! inherits), its cgroup's, and apart from those, what its children ran (the
//! inherited image, moved to the one the child execs first). Two of them can
//! raise an alert:
//!
//! - a parent whose rate stays above `--storm-rate` for `--storm-for` (scope
//!   `process`; the culprit is that parent);
//! - a cgroup whose *unexplained* rate does: the creations by parents that were
//!   not themselves above the threshold at that moment (scope `cgroup`). That
//!   catches a storm spread over many parents, such as a fork bomb where every
//!   process forks only twice, without raising a second alert for a storm one
//!   parent already explains. The culprit is the latest such parent.
//!
//! Executable rates are not alerted on (a storm of one executable comes from a
//! parent or a cgroup that is); they, and the peaks of all three, are reported
//! by [`Storms::peaks`].

// Looked up on every fork: std's SipHash cost more than the lookups.
use foldhash::{HashMap, HashSet};

use super::window::Window;
use super::{Config, Culprit, MAX_KEYS, Phase, RATE_WINDOW_NS, Step, Tally, name};
use crate::record::{AlertKind, AlertProc, ProcId, Record};
use crate::units::{span, thousands};

/// How many of the highest rates [`PeakRates`] keeps per dimension.
pub const PEAKS: usize = 5;

/// One process creation.
pub struct Fork<'a> {
    pub t: u64,
    pub child: ProcId,
    pub parent: Option<ProcId>,
    /// The image the child inherited (empty when unknown).
    pub exe: &'a [u8],
    pub cgroup_id: u64,
}

/// The highest one-second fork rates seen, highest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeakRates {
    pub parents: Vec<(AlertProc, u64)>,
    /// By the executable that called fork; `None`: its image was unknown.
    pub executables: Vec<(Option<Vec<u8>>, u64)>,
    /// By what the children ran (the first program they exec'd, else the image
    /// they inherited): a separate figure, never what forks are counted under.
    pub children_ran: Vec<(Option<Vec<u8>>, u64)>,
    /// cgroup id (0: unknown) and rate.
    pub cgroups: Vec<(u64, u64)>,
}

/// The episode (or the run-up to one) of one key.
#[derive(Debug)]
struct Run {
    /// When the condition began to hold.
    since: u64,
    children: u64,
    peak: u64,
    exes: Tally,
    culprit: Option<Culprit>,
}

#[derive(Debug)]
struct Key {
    window: Window,
    phase: Phase,
    run: Option<Box<Run>>,
}

impl Key {
    fn new() -> Self {
        Key {
            window: Window::new(RATE_WINDOW_NS),
            phase: Phase::default(),
            run: None,
        }
    }
}

#[derive(Debug)]
struct CgroupKey {
    /// All creations in the cgroup.
    all: Window,
    key: Key,
    /// Parent of the latest unexplained creation.
    latest: Option<ProcId>,
}

#[derive(Debug, Default)]
pub struct Storms {
    parents: HashMap<ProcId, Key>,
    cgroups: HashMap<u64, CgroupKey>,
    exes: HashMap<Vec<u8>, Window>,
    /// Creations by what the child ran.
    children: HashMap<Vec<u8>, Window>,
    /// Keys with a condition pending or an episode open: looked at on every tick.
    hot_parents: HashSet<ProcId>,
    hot_cgroups: HashSet<u64>,
    peak_parents: Vec<(AlertProc, u64)>,
    peak_exes: Vec<(Vec<u8>, u64)>,
    peak_children: Vec<(Vec<u8>, u64)>,
    peak_cgroups: Vec<(u64, u64)>,
    pub skipped: u64,
}

/// Offers `rate` for the top list `v` (highest first, at most [`PEAKS`]).
fn offer<K>(v: &mut Vec<(K, u64)>, is: impl Fn(&K) -> bool, rate: u64, make: impl FnOnce() -> K) {
    if let Some(i) = v.iter().position(|(k, _)| is(k)) {
        v[i].1 = v[i].1.max(rate);
    } else if v.len() < PEAKS {
        v.push((make(), rate));
    } else if v.last().is_some_and(|(_, r)| rate > *r) {
        v.pop();
        v.push((make(), rate));
    } else {
        return;
    }
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
}

/// Which alert a key raises and how it reads.
#[derive(Clone, Copy)]
enum Scope {
    Parent,
    Cgroup,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Parent => "process",
            Scope::Cgroup => "cgroup",
        }
    }
}

/// Counts one creation into `key` (already in its window) and moves its phase.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per scope; a struct would only rename them"
)]
fn step_key(
    key: &mut Key,
    cfg: &Config,
    scope: Scope,
    count: Option<u64>,
    exe: Option<&[u8]>,
    now: u64,
    culprit: impl FnOnce() -> Culprit,
    extra: &[(&'static str, u64)],
    out: &mut Vec<Record>,
) {
    let rate = key.window.rate_per_s(now);
    let step = key
        .phase
        .update(rate > cfg.storm_rate, now, cfg.storm_for_ns, cfg.quiet_ns);
    if !key.phase.is_idle() || matches!(step, Step::End { .. }) {
        let run = key.run.get_or_insert_with(|| {
            Box::new(Run {
                since: key
                    .phase
                    .pending
                    .or(key.phase.open.map(|o| o.0))
                    .unwrap_or(now),
                children: 0,
                peak: 0,
                exes: Tally::default(),
                culprit: None,
            })
        });
        if let Some(n) = count {
            run.children += n;
        }
        if let Some(exe) = exe {
            run.exes.add(exe);
        }
        run.peak = run.peak.max(rate);
    }
    match step {
        Step::Nothing => {}
        Step::Begin { since } => {
            let c = culprit();
            let run = key.run.as_mut().expect("created above");
            let mut a = c.alert(AlertKind::ForkStorm, scope.name(), since, false);
            a.executables = run.exes.top(5);
            a.figures = vec![
                ("rate_per_s".into(), rate),
                ("threshold_per_s".into(), cfg.storm_rate),
                ("for_ns".into(), now - since),
                ("children".into(), run.children),
                ("peak_per_s".into(), run.peak),
            ];
            a.figures
                .extend(extra.iter().map(|&(name, n)| (name.into(), n)));
            let most = a
                .executables
                .first()
                .map(|(f, _)| format!(", most running {}", name(f)))
                .unwrap_or_default();
            a.what = match scope {
                Scope::Parent => format!(
                    "forked {}/s for {} ({} children{most}; threshold {}/s)",
                    thousands(rate),
                    span(now - since),
                    thousands(run.children),
                    thousands(cfg.storm_rate),
                ),
                Scope::Cgroup => format!(
                    "and other processes of its cgroup forked {}/s for {}, no single parent above {}/s ({} children{most})",
                    thousands(rate),
                    span(now - since),
                    thousands(cfg.storm_rate),
                    thousands(run.children),
                ),
            };
            out.push(c.record(now, a));
            run.culprit = Some(c);
        }
        Step::End { since, until } => {
            if let Some(run) = key.run.take()
                && let Some(c) = &run.culprit
            {
                let mut a = c.alert(AlertKind::ForkStorm, scope.name(), since, true);
                a.executables = run.exes.top(5);
                a.figures = vec![
                    ("duration_ns".into(), until - since),
                    ("children".into(), run.children),
                    ("peak_per_s".into(), run.peak),
                ];
                a.what = format!(
                    "after {}: {} children, peak {}/s",
                    span(until - since),
                    thousands(run.children),
                    thousands(run.peak)
                );
                out.push(c.record(now, a));
            }
        }
    }
    if key.phase.is_idle() {
        key.run = None;
    }
}

impl Storms {
    pub fn keys(&self) -> usize {
        self.parents.len() + self.cgroups.len() + self.exes.len() + self.children.len()
    }

    pub fn on_fork(
        &mut self,
        procs: &super::Procs,
        cfg: &Config,
        f: Fork<'_>,
        now: u64,
        out: &mut Vec<Record>,
    ) {
        // Executable.
        if let Some(w) = get_or_insert(&mut self.exes, f.exe, &mut self.skipped) {
            w.add(f.t, 1);
            let rate = w.rate_per_s(now);
            offer(&mut self.peak_exes, |k| k == f.exe, rate, || f.exe.to_vec());
        }
        // What the child runs: the same image until it execs (`on_child_exec`).
        if let Some(w) = get_or_insert(&mut self.children, f.exe, &mut self.skipped) {
            w.add(f.t, 1);
            let rate = w.rate_per_s(now);
            offer(
                &mut self.peak_children,
                |k| k == f.exe,
                rate,
                || f.exe.to_vec(),
            );
        }

        // Parent.
        let mut explained = false;
        if let Some(parent) = f.parent {
            if !self.parents.contains_key(&parent) && self.parents.len() >= MAX_KEYS {
                self.skipped += 1;
            } else {
                let key = self.parents.entry(parent).or_insert_with(Key::new);
                key.window.add(f.t, 1);
                let rate = key.window.rate_per_s(now);
                explained = rate > cfg.storm_rate;
                offer(
                    &mut self.peak_parents,
                    |k| k.proc_id == parent,
                    rate,
                    || Culprit::of_or_unknown(procs, parent).as_alert_proc(),
                );
                step_key(
                    key,
                    cfg,
                    Scope::Parent,
                    Some(1),
                    Some(f.exe),
                    now,
                    || Culprit::of_or_unknown(procs, parent),
                    &[],
                    out,
                );
                if key.phase.is_idle() {
                    self.hot_parents.remove(&parent);
                } else {
                    self.hot_parents.insert(parent);
                }
            }
        }

        // cgroup.
        if !self.cgroups.contains_key(&f.cgroup_id) && self.cgroups.len() >= MAX_KEYS {
            self.skipped += 1;
            return;
        }
        let cg = self
            .cgroups
            .entry(f.cgroup_id)
            .or_insert_with(|| CgroupKey {
                all: Window::new(RATE_WINDOW_NS),
                key: Key::new(),
                latest: None,
            });
        cg.all.add(f.t, 1);
        let all_rate = cg.all.rate_per_s(now);
        offer(
            &mut self.peak_cgroups,
            |k| *k == f.cgroup_id,
            all_rate,
            || f.cgroup_id,
        );
        let (count, exe) = if explained {
            (None, None)
        } else {
            cg.key.window.add(f.t, 1);
            cg.latest = Some(f.parent.unwrap_or(f.child));
            (Some(1), Some(f.exe))
        };
        let latest = cg.latest.unwrap_or(f.child);
        step_key(
            &mut cg.key,
            cfg,
            Scope::Cgroup,
            count,
            exe,
            now,
            || Culprit::of_or_unknown(procs, latest),
            &[("cgroup_rate_per_s", all_rate)],
            out,
        );
        if cg.key.phase.is_idle() {
            self.hot_cgroups.remove(&f.cgroup_id);
        } else {
            self.hot_cgroups.insert(f.cgroup_id);
        }
    }

    /// A child counted under `old` at `forked` first exec'd `new`: count it there
    /// among what children ran (the fork stays with the executable that made it).
    pub fn on_child_exec(
        &mut self,
        forked: u64,
        now: u64,
        parent: Option<ProcId>,
        old: &[u8],
        new: &[u8],
    ) {
        if old == new {
            return;
        }
        if let Some(w) = self.children.get_mut(old) {
            w.remove(forked, 1);
        }
        if let Some(w) = get_or_insert(&mut self.children, new, &mut self.skipped)
            && w.add(forked, 1)
        {
            let rate = w.rate_per_s(now);
            offer(&mut self.peak_children, |k| k == new, rate, || new.to_vec());
        }
        if let Some(run) = parent
            .and_then(|p| self.parents.get_mut(&p))
            .and_then(|k| k.run.as_mut())
            && forked >= run.since
        {
            run.exes.take_back(old);
            run.exes.add(new);
        }
    }

    pub fn tick(&mut self, procs: &super::Procs, cfg: &Config, now: u64, out: &mut Vec<Record>) {
        let mut cooled = Vec::new();
        for &p in &self.hot_parents {
            let Some(key) = self.parents.get_mut(&p) else {
                cooled.push(p);
                continue;
            };
            step_key(
                key,
                cfg,
                Scope::Parent,
                None,
                None,
                now,
                || Culprit::of_or_unknown(procs, p),
                &[],
                out,
            );
            if key.phase.is_idle() {
                cooled.push(p);
            }
        }
        for p in cooled {
            self.hot_parents.remove(&p);
        }
        let mut cooled = Vec::new();
        for &id in &self.hot_cgroups {
            let Some(cg) = self.cgroups.get_mut(&id) else {
                cooled.push(id);
                continue;
            };
            let all_rate = cg.all.rate_per_s(now);
            let latest = cg.latest;
            step_key(
                &mut cg.key,
                cfg,
                Scope::Cgroup,
                None,
                None,
                now,
                || match latest {
                    Some(p) => Culprit::of_or_unknown(procs, p),
                    None => Culprit::unknown(ProcId {
                        pid: 0,
                        start_ticks: 0,
                    }),
                },
                &[("cgroup_rate_per_s", all_rate)],
                out,
            );
            if cg.key.phase.is_idle() {
                cooled.push(id);
            }
        }
        for id in cooled {
            self.hot_cgroups.remove(&id);
        }
    }

    /// Forgets keys with nothing in their window and no episode.
    pub fn sweep(&mut self, now: u64) {
        self.parents
            .retain(|_, k| !k.phase.is_idle() || k.window.count(now) > 0);
        self.cgroups
            .retain(|_, c| !c.key.phase.is_idle() || c.all.count(now) > 0);
        self.exes.retain(|_, w| w.count(now) > 0);
        self.children.retain(|_, w| w.count(now) > 0);
    }

    pub fn peaks(&self) -> PeakRates {
        let named = |v: &[(Vec<u8>, u64)]| {
            v.iter()
                .map(|(k, r)| ((!k.is_empty()).then(|| k.clone()), *r))
                .collect()
        };
        PeakRates {
            parents: self.peak_parents.clone(),
            executables: named(&self.peak_exes),
            children_ran: named(&self.peak_children),
            cgroups: self.peak_cgroups.clone(),
        }
    }
}

/// The executable's window, created if there is room.
fn get_or_insert<'a>(
    map: &'a mut HashMap<Vec<u8>, Window>,
    exe: &[u8],
    skipped: &mut u64,
) -> Option<&'a mut Window> {
    if !map.contains_key(exe) {
        if map.len() >= MAX_KEYS {
            *skipped += 1;
            return None;
        }
        map.insert(exe.to_vec(), Window::new(RATE_WINDOW_NS));
    }
    map.get_mut(exe)
}
