//! Bursts of failed forks: `--fork-fail-count` failed fork/clone calls within
//! `--fork-fail-window` by the processes of one user in one cgroup.
//!
//! Counted by user and cgroup, not by process, because the limits that make a
//! fork fail are shared that way: `RLIMIT_NPROC` counts a user's processes
//! (kernel/fork.c copy_process, is_rlimit_overlimit on the real uid's ucounts),
//! `pids.max` a cgroup's (kernel/cgroup/pids.c pids_can_fork); and a fork bomb
//! spreads its failures over many processes, each retrying only a few times.
//! The culprit named is the process with the most failures in the window.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Config, Culprit, MAX_KEYS, Phase, Procs, Step};
use crate::names::errno_name;
use crate::record::{AlertKind, ProcId, Record};
use crate::units::{span, thousands};

const EAGAIN: u32 = 11;
const ENOMEM: u32 = 12;

#[derive(Clone, Copy, Debug)]
struct Failure {
    t: u64,
    who: ProcId,
    errno: u32,
}

#[derive(Debug, Default)]
struct Burst {
    /// The latest failures, oldest first: at most `--fork-fail-count`.
    recent: VecDeque<Failure>,
    phase: Phase,
    in_episode: u64,
    culprit: Option<Culprit>,
    errno: u32,
}

/// uid (None: unknown) and cgroup id.
type BurstKey = (Option<u32>, u64);

#[derive(Debug, Default)]
pub struct ForkFailures {
    bursts: HashMap<BurstKey, Burst>,
    open: HashSet<BurstKey>,
    pub skipped: u64,
}

/// What an errno from fork means, for the message.
fn meaning(errno: u32) -> String {
    let name = errno_name(errno).map_or_else(|| format!("errno {errno}"), str::to_string);
    match errno {
        EAGAIN => format!("{name}, fork limit reached (RLIMIT_NPROC or pids.max)"),
        ENOMEM => format!("{name}, out of memory"),
        _ => name,
    }
}

fn in_window(b: &Burst, cfg: &Config, now: u64) -> usize {
    b.recent
        .iter()
        .filter(|f| now.saturating_sub(f.t) < cfg.fork_fail_window_ns)
        .count()
}

fn step(b: &mut Burst, procs: &Procs, cfg: &Config, now: u64, out: &mut Vec<Record>) {
    let n = in_window(b, cfg, now);
    let step = b
        .phase
        .update(n >= cfg.fork_fail_count as usize, now, 0, cfg.quiet_ns);
    match step {
        Step::Nothing => {}
        Step::Begin { since } => {
            let counted: Vec<Failure> = b.recent.iter().rev().take(n).copied().collect();
            // Newest first, so ties go to the latest process.
            let mut per_proc: Vec<(ProcId, u64)> = Vec::new();
            let mut per_errno: Vec<(u32, u64)> = Vec::new();
            for f in &counted {
                match per_proc.iter_mut().find(|(p, _)| *p == f.who) {
                    Some((_, k)) => *k += 1,
                    None => per_proc.push((f.who, 1)),
                }
                match per_errno.iter_mut().find(|(e, _)| *e == f.errno) {
                    Some((_, k)) => *k += 1,
                    None => per_errno.push((f.errno, 1)),
                }
            }
            let Some(&(who, by_who)) = per_proc.iter().max_by_key(|(_, k)| *k) else {
                return;
            };
            let errno = per_errno
                .iter()
                .max_by_key(|(_, k)| *k)
                .map_or(0, |&(e, _)| e);
            let first = counted.last().map_or(now, |f| f.t);
            let c = Culprit::of_or_unknown(procs, who);
            let mut a = c.alert(AlertKind::ForkFailures, "user_cgroup", since, false);
            a.errno = Some(errno);
            a.figures = vec![
                ("failures".into(), n as u64),
                ("within_ns".into(), now.saturating_sub(first)),
                ("processes".into(), per_proc.len() as u64),
                ("by_culprit".into(), by_who),
            ];
            let others = match per_proc.len() - 1 {
                0 => String::new(),
                k => format!(
                    " and {} other process{} of its user",
                    thousands(k as u64),
                    if k == 1 { "" } else { "es" }
                ),
            };
            a.what = format!(
                "{others} failed to fork {} times in {}: {}",
                thousands(n as u64),
                span(now.saturating_sub(first)),
                meaning(errno)
            )
            .trim_start()
            .to_string();
            out.push(c.record(now, a));
            b.in_episode = n as u64;
            b.errno = errno;
            b.culprit = Some(c);
        }
        Step::End { since, until } => {
            if let Some(c) = b.culprit.take() {
                let mut a = c.alert(AlertKind::ForkFailures, "user_cgroup", since, true);
                a.errno = Some(b.errno);
                a.figures = vec![
                    ("duration_ns".into(), until - since),
                    ("failures".into(), b.in_episode),
                ];
                a.what = format!(
                    "after {}: {} failed forks",
                    span(until - since),
                    thousands(b.in_episode)
                );
                out.push(c.record(now, a));
            }
            b.in_episode = 0;
        }
    }
}

impl ForkFailures {
    pub fn keys(&self) -> usize {
        self.bursts.len()
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's state, passed apart to keep borrows disjoint"
    )]
    pub fn on_failure(
        &mut self,
        procs: &Procs,
        cfg: &Config,
        who: ProcId,
        errno: u32,
        t: u64,
        now: u64,
        out: &mut Vec<Record>,
    ) {
        let (uid, cgroup_id) = procs
            .get(&who)
            .map_or((None, 0), |p| (p.subject.uid, p.subject.cgroup_id));
        let key = (uid, cgroup_id);
        if !self.bursts.contains_key(&key) && self.bursts.len() >= MAX_KEYS {
            self.skipped += 1;
            return;
        }
        let b = self.bursts.entry(key).or_default();
        b.recent.push_back(Failure { t, who, errno });
        while b.recent.len() > cfg.fork_fail_count as usize {
            b.recent.pop_front();
        }
        if b.phase.is_open() {
            b.in_episode += 1;
        }
        step(b, procs, cfg, now, out);
        if b.phase.is_open() {
            self.open.insert(key);
        }
    }

    pub fn tick(&mut self, procs: &Procs, cfg: &Config, now: u64, out: &mut Vec<Record>) {
        let mut closed = Vec::new();
        for key in &self.open {
            match self.bursts.get_mut(key) {
                Some(b) => {
                    step(b, procs, cfg, now, out);
                    if !b.phase.is_open() {
                        closed.push(*key);
                    }
                }
                None => closed.push(*key),
            }
        }
        for key in closed {
            self.open.remove(&key);
        }
    }

    pub fn sweep(&mut self, cfg: &Config, now: u64) {
        self.bursts
            .retain(|_, b| !b.phase.is_idle() || in_window(b, cfg, now) > 0);
    }
}
