//! Crash loops: the same executable under the same parent exits non-zero or by a
//! signal `--crash-count` times within `--crash-window`. The parent is the one the
//! process had when it exited (a supervisor, systemd, a shell loop restarting it).
//! The culprit named is the latest process that failed; its parent is the
//! restarter.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Config, Culprit, MAX_KEYS, Phase, Procs, Step};
use crate::names::signal_name;
use crate::record::{AlertExit, AlertKind, ProcId, Record};
use crate::units::{duration, span, thousands};

/// How many of the last exits an alert lists.
pub const LAST_EXITS: usize = 5;

/// One failed exit.
pub struct Crash {
    pub t: u64,
    pub child: ProcId,
    /// The parent it had when it exited, when known.
    pub parent: Option<ProcId>,
    pub ppid: u32,
    pub exit_code: Option<u8>,
    pub signal: Option<u8>,
    pub lifetime_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    t: u64,
    exit: AlertExit,
    lifetime_ns: Option<u64>,
}

#[derive(Debug, Default)]
struct Loop {
    /// The latest failures, oldest first: at most max(crash count, LAST_EXITS).
    recent: VecDeque<Seen>,
    phase: Phase,
    /// Failures during the open episode.
    in_episode: u64,
    /// The latest process that failed.
    last: Option<Culprit>,
    culprit: Option<Culprit>,
}

/// The restarting parent (or, when it is unknown, its pid with start 0) and the
/// executable.
type LoopKey = (ProcId, Vec<u8>);

#[derive(Debug, Default)]
pub struct CrashLoops {
    loops: HashMap<LoopKey, Loop>,
    open: HashSet<LoopKey>,
    pub skipped: u64,
}

/// Failures of `l` within the window ending at `now`.
fn in_window(l: &Loop, cfg: &Config, now: u64) -> usize {
    l.recent
        .iter()
        .filter(|s| now.saturating_sub(s.t) < cfg.crash_window_ns)
        .count()
}

fn exit_text(e: &AlertExit) -> String {
    match (e.exit_code, e.signal) {
        (_, Some(sig)) => signal_name(sig).map_or_else(|| format!("signal {sig}"), str::to_string),
        (Some(c), None) => format!("code {c}"),
        (None, None) => "unknown".to_string(),
    }
}

fn step(l: &mut Loop, cfg: &Config, now: u64, out: &mut Vec<Record>) {
    let n = in_window(l, cfg, now);
    let step = l
        .phase
        .update(n >= cfg.crash_count as usize, now, 0, cfg.quiet_ns);
    match step {
        Step::Nothing => {}
        Step::Begin { since } => {
            let Some(c) = l.last.clone() else { return };
            let counted: Vec<Seen> = l.recent.iter().rev().take(n).rev().copied().collect();
            let first = counted.first().map_or(now, |s| s.t);
            let mut lifetimes: Vec<u64> = counted.iter().filter_map(|s| s.lifetime_ns).collect();
            lifetimes.sort_unstable();
            let median = lifetimes.get(lifetimes.len() / 2).copied();
            let mut a = c.alert(AlertKind::CrashLoop, "parent_executable", since, false);
            a.exits = l
                .recent
                .iter()
                .rev()
                .take(LAST_EXITS)
                .rev()
                .map(|s| s.exit)
                .collect();
            a.figures = vec![
                ("crashes".into(), n as u64),
                ("within_ns".into(), now.saturating_sub(first)),
                ("window_ns".into(), cfg.crash_window_ns),
            ];
            if let Some(m) = median {
                a.figures.push(("median_lifetime_ns".into(), m));
            }
            let under = match &c.parent {
                Some(p) => format!(
                    " under {} {}",
                    p.pid,
                    String::from_utf8_lossy(p.comm.as_bytes())
                ),
                None => String::new(),
            };
            let exits: Vec<String> = a.exits.iter().map(exit_text).collect();
            let typical = median
                .map(|m| format!("; typical lifetime {}", duration(m)))
                .unwrap_or_default();
            a.what = format!(
                "failed {} times in {}{under} (last: {}{typical})",
                thousands(n as u64),
                span(now.saturating_sub(first)),
                exits.join(", ")
            );
            out.push(c.record(now, a));
            l.in_episode = n as u64;
            l.culprit = Some(c);
        }
        Step::End { since, until } => {
            if let Some(c) = l.culprit.take() {
                let mut a = c.alert(AlertKind::CrashLoop, "parent_executable", since, true);
                a.figures = vec![
                    ("duration_ns".into(), until - since),
                    ("crashes".into(), l.in_episode),
                ];
                a.what = format!(
                    "after {}: {} failures",
                    span(until - since),
                    thousands(l.in_episode)
                );
                out.push(c.record(now, a));
            }
            l.in_episode = 0;
        }
    }
}

impl CrashLoops {
    pub fn keys(&self) -> usize {
        self.loops.len()
    }

    pub fn on_crash(
        &mut self,
        procs: &Procs,
        cfg: &Config,
        x: Crash,
        now: u64,
        out: &mut Vec<Record>,
    ) {
        let exe = procs
            .get(&x.child)
            .and_then(|p| p.image.filename.clone())
            .unwrap_or_default();
        let parent = x.parent.unwrap_or(ProcId {
            pid: x.ppid,
            start_ticks: 0,
        });
        let key = (parent, exe);
        if !self.loops.contains_key(&key) && self.loops.len() >= MAX_KEYS {
            self.skipped += 1;
            return;
        }
        let l = self.loops.entry(key.clone()).or_default();
        let keep = (cfg.crash_count as usize).max(LAST_EXITS);
        l.recent.push_back(Seen {
            t: x.t,
            exit: AlertExit {
                exit_code: x.exit_code,
                signal: x.signal,
            },
            lifetime_ns: x.lifetime_ns,
        });
        while l.recent.len() > keep {
            l.recent.pop_front();
        }
        l.last = Some(Culprit::of_or_unknown(procs, x.child));
        if l.phase.is_open() {
            l.in_episode += 1;
        }
        step(l, cfg, now, out);
        if l.phase.is_open() {
            self.open.insert(key);
        }
    }

    /// Ends episodes whose failures have left the window.
    pub fn tick(&mut self, cfg: &Config, now: u64, out: &mut Vec<Record>) {
        let mut closed = Vec::new();
        for key in &self.open {
            match self.loops.get_mut(key) {
                Some(l) => {
                    step(l, cfg, now, out);
                    if !l.phase.is_open() {
                        closed.push(key.clone());
                    }
                }
                None => closed.push(key.clone()),
            }
        }
        for key in closed {
            self.open.remove(&key);
        }
    }

    /// Forgets loops with no failure in the window and no episode.
    pub fn sweep(&mut self, cfg: &Config, now: u64) {
        self.loops
            .retain(|_, l| !l.phase.is_idle() || in_window(l, cfg, now) > 0);
    }
}
