//! Zombie build-up: a parent holding more than `--zombie-max` unreaped zombies
//! (for [`ZOMBIE_COUNT_SUSTAIN_NS`] at least), or any zombie older than
//! `--zombie-age`.
//!
//! A zombie is held by its parent when it exits. When that parent exits in turn,
//! its zombies are reparented (kernel/exit.c forget_original_parent) to a reaper
//! the records do not name; they stop counting for anyone, and their reap record
//! still removes them.

use std::collections::BTreeSet;

// Looked up on every exit and reap.
use foldhash::HashMap;

use super::{Config, Culprit, MAX_KEYS, Phase, Procs, Step, ZOMBIE_COUNT_SUSTAIN_NS};
use crate::record::{AlertKind, ProcId, Record};
use crate::units::{span, thousands};

#[derive(Debug, Default)]
struct Holder {
    /// (exit time, zombie), oldest first.
    zombies: BTreeSet<(u64, ProcId)>,
    /// Since when the count has been above the maximum.
    over_since: Option<u64>,
    phase: Phase,
    /// Of the open episode: the most zombies held, the oldest age seen.
    peak: u64,
    oldest: u64,
    culprit: Option<Culprit>,
}

#[derive(Debug, Default)]
pub struct Zombies {
    holders: HashMap<ProcId, Holder>,
    pub skipped: u64,
}

impl Zombies {
    pub fn keys(&self) -> usize {
        self.holders.len()
    }

    /// `zombie` exited at `t`, held by `holder`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's state, passed apart to keep borrows disjoint"
    )]
    pub fn on_exit(
        &mut self,
        procs: &Procs,
        cfg: &Config,
        holder: ProcId,
        zombie: ProcId,
        t: u64,
        now: u64,
        out: &mut Vec<Record>,
    ) {
        if !self.holders.contains_key(&holder) && self.holders.len() >= MAX_KEYS {
            self.skipped += 1;
            return;
        }
        self.holders
            .entry(holder)
            .or_default()
            .zombies
            .insert((t, zombie));
        self.evaluate(procs, cfg, holder, now, out);
    }

    /// `zombie` (exited at `exited`) is no longer `holder`'s: reaped or gone.
    pub fn remove(&mut self, holder: ProcId, zombie: ProcId, exited: u64) {
        if let Some(h) = self.holders.get_mut(&holder) {
            h.zombies.remove(&(exited, zombie));
        }
    }

    /// `holder` exited (or ended unseen): returns the zombies it held, which no
    /// longer count. Its episode, if any, ends after the quiet period.
    pub fn holder_exited(&mut self, holder: ProcId) -> Vec<ProcId> {
        match self.holders.get_mut(&holder) {
            Some(h) => std::mem::take(&mut h.zombies)
                .into_iter()
                .map(|(_, z)| z)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Looks at `holder`'s condition at `now`.
    pub fn evaluate(
        &mut self,
        procs: &Procs,
        cfg: &Config,
        holder: ProcId,
        now: u64,
        out: &mut Vec<Record>,
    ) {
        if let Some(h) = self.holders.get_mut(&holder) {
            step(h, procs, cfg, holder, now, out);
        }
    }

    pub fn tick(&mut self, procs: &Procs, cfg: &Config, now: u64, out: &mut Vec<Record>) {
        for (&id, h) in &mut self.holders {
            step(h, procs, cfg, id, now, out);
        }
    }

    /// Forgets holders with no zombies and no episode.
    pub fn sweep(&mut self) {
        self.holders
            .retain(|_, h| !h.zombies.is_empty() || !h.phase.is_idle());
    }
}

fn step(h: &mut Holder, procs: &Procs, cfg: &Config, id: ProcId, now: u64, out: &mut Vec<Record>) {
    let count = h.zombies.len() as u64;
    let oldest = h.zombies.first().map_or(0, |&(t, _)| now.saturating_sub(t));
    if count > cfg.zombie_max {
        h.over_since.get_or_insert(now);
    } else {
        h.over_since = None;
    }
    let too_many = h
        .over_since
        .is_some_and(|s| now - s >= ZOMBIE_COUNT_SUSTAIN_NS);
    let too_old = count > 0 && oldest > cfg.zombie_age_ns;
    let step = h.phase.update(too_many || too_old, now, 0, cfg.quiet_ns);
    if h.phase.is_open() {
        h.peak = h.peak.max(count);
        h.oldest = h.oldest.max(oldest);
    }
    match step {
        Step::Nothing => {}
        Step::Begin { since } => {
            let c = Culprit::of_or_unknown(procs, id);
            let mut a = c.alert(AlertKind::ZombieBuildup, "process", since, false);
            a.figures = vec![
                ("zombies".into(), count),
                ("oldest_zombie_ns".into(), oldest),
                ("max_zombies".into(), cfg.zombie_max),
                ("max_age_ns".into(), cfg.zombie_age_ns),
            ];
            let why = if too_many {
                format!("more than {}", thousands(cfg.zombie_max))
            } else {
                format!("one older than {}", span(cfg.zombie_age_ns))
            };
            a.what = format!(
                "holds {} unreaped {}, the oldest {} old ({why})",
                thousands(count),
                if count == 1 { "zombie" } else { "zombies" },
                span(oldest)
            );
            out.push(c.record(now, a));
            h.culprit = Some(c);
        }
        Step::End { since, until } => {
            if let Some(c) = h.culprit.take() {
                let mut a = c.alert(AlertKind::ZombieBuildup, "process", since, true);
                a.figures = vec![
                    ("duration_ns".into(), until - since),
                    ("peak_zombies".into(), h.peak),
                    ("oldest_zombie_ns".into(), h.oldest),
                    ("zombies".into(), count),
                ];
                a.what = format!(
                    "after {}: at most {} {}, the oldest {} old; {} left",
                    span(until - since),
                    thousands(h.peak),
                    if h.peak == 1 { "zombie" } else { "zombies" },
                    span(h.oldest),
                    thousands(count)
                );
                out.push(c.record(now, a));
            }
            h.peak = 0;
            h.oldest = 0;
        }
    }
}
