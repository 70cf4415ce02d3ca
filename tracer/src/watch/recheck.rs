//! After lost events, a process's end may never arrive: a `-p` or `-- COMMAND`
//! run would wait for it forever, and in a long run with ongoing losses (a fork
//! bomb) the model, and the alert engine, would hold every such process until its
//! pid is reused (pid_max is 4 million on many systems). So after losses, held
//! processes are checked against /proc, and those gone (or whose pid now belongs
//! to a newer process) are released with an uncertain `reap` record
//! ([`Model::vanished`]), which the alert engine also sees.
//!
//! Not at once: when the agent lags behind the kernel (the ring holds seconds of
//! events under a storm), a process that is gone from /proc may have its exit and
//! reap still waiting in the ring. Released early, it would get a made-up end, and
//! its real one, arriving later, would be taken for a new process. So a process
//! found gone at time V is only a suspect; it is released once the events applied
//! have reached V (plus [`REORDER_SLACK_NS`]): an exit or wait event of it would
//! have come by then (both happen before kernel/exit.c release_task unhashes the
//! pid from /proc; only the free event can come later, and a free of a released
//! process is ignored).

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    model::Model,
    procfs,
    record::{ProcId, Record},
};

/// After losses, how often every held process is checked against /proc (the
/// followed ones of `-p`/`-- COMMAND` every time [`Recheck::run`] is called).
/// Memory under ongoing losses holds about this long of lost ends.
pub const RECHECK_ALL_EVERY: Duration = Duration::from_secs(2);

/// Events reach the ring roughly in time order: one CPU takes its timestamp
/// before it reserves its slot, and can be overtaken meanwhile, but not by this
/// long.
pub const REORDER_SLACK_NS: u64 = 100_000_000;

#[derive(Debug)]
pub struct Recheck {
    /// Held processes found gone from /proc, with when they were found so.
    suspects: HashMap<ProcId, u64>,
    /// Lost events counted at the last full check.
    lost_at_last: u64,
    last_all: Instant,
}

impl Recheck {
    pub fn new() -> Self {
        Recheck {
            suspects: HashMap::new(),
            lost_at_last: 0,
            last_all: Instant::now(),
        }
    }

    /// Called about once a second with the events lost so far, the time
    /// (CLOCK_BOOTTIME ns) and the time up to which events have been applied (the
    /// latest applied, or when the ring was last found empty). Without losses it
    /// does nothing: the kernel's events are complete. Pushes the records of the
    /// processes released.
    pub fn run(
        &mut self,
        model: &mut Model,
        lost: u64,
        now: u64,
        applied: u64,
        out: &mut Vec<Record>,
    ) {
        if model.uncertain_since().is_none() {
            return;
        }
        // Suspects whose end events would have been applied by now: released.
        self.suspects.retain(|&id, &mut found| {
            let held = model.get(id).is_some_and(|p| !p.is_released());
            if held && applied > found.saturating_add(REORDER_SLACK_NS) {
                model.vanished(id, now, out);
                return false;
            }
            held
        });
        let all = lost > self.lost_at_last && self.last_all.elapsed() >= RECHECK_ALL_EVERY;
        let ids: Vec<ProcId> = if all {
            self.lost_at_last = lost;
            self.last_all = Instant::now();
            model
                .iter()
                .filter(|p| !p.is_released())
                .map(|p| p.id)
                .collect()
        } else if model.is_following() {
            model.followed_ids().collect()
        } else {
            return;
        };
        for id in ids {
            if self.suspects.contains_key(&id) {
                continue;
            }
            if procfs::start_ticks(Path::new("/proc"), id.pid) != Some(id.start_ticks) {
                self.suspects.insert(id, now);
            }
        }
    }

    /// Processes found gone and not yet released.
    #[cfg(test)]
    pub fn suspects(&self) -> usize {
        self.suspects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind};
    use crate::model::ModelConfig;
    use crate::record::{Body, NS_PER_TICK};
    use crate::watch::gone::{GONE, S, fork_by_init, task};

    fn fork(pid: u32, ktime_ns: u64) -> Event {
        Event {
            ktime_ns,
            task: task(pid, ktime_ns),
            kind: fork_by_init(),
        }
    }

    #[test]
    fn gone_processes_are_released_once_events_caught_up() {
        let mut m = Model::new(ModelConfig::default());
        let mut out = Vec::new();
        let mut r = Recheck::new();
        m.apply(fork(GONE, 10 * S), &mut out);
        let id = ProcId::from_start_ns(GONE, 10 * S);
        assert_eq!(id.start_ticks, 10 * S / NS_PER_TICK);

        // No losses: /proc is not even read.
        r.run(&mut m, 0, 20 * S, 20 * S, &mut out);
        assert_eq!(r.suspects(), 0);

        out.clear();
        m.lost(tracer_common::kind::EXIT, 1, 11 * S, &mut out);
        out.clear();
        r.last_all -= RECHECK_ALL_EVERY;
        // Found gone at 12 s while events are applied up to 11 s: its end may
        // still be in the ring.
        r.run(&mut m, 1, 12 * S, 11 * S, &mut out);
        assert_eq!(r.suspects(), 1);
        assert!(out.is_empty());
        assert!(m.get(id).is_some_and(|p| !p.is_released()));
        // Applied up to just past 12 s, within the reorder slack: still waiting.
        r.run(&mut m, 1, 13 * S, 12 * S + 1, &mut out);
        assert!(out.is_empty());
        // Caught up: released, with an uncertain reap and no reaper.
        r.run(&mut m, 1, 14 * S, 13 * S, &mut out);
        assert_eq!(r.suspects(), 0);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].uncertain);
        assert!(matches!(
            out[0].body,
            Body::Reap {
                reaper_pid: None,
                zombie_ns: None,
                ..
            }
        ));
        assert!(m.get(id).is_none_or(|p| p.is_released()));
    }

    #[test]
    fn a_suspect_whose_end_arrives_is_not_released_twice() {
        let mut m = Model::new(ModelConfig::default());
        let mut out = Vec::new();
        let mut r = Recheck::new();
        m.apply(fork(GONE, 10 * S), &mut out);
        m.lost(tracer_common::kind::FORK, 1, 11 * S, &mut out);
        r.last_all -= RECHECK_ALL_EVERY;
        r.run(&mut m, 1, 12 * S, 11 * S, &mut out);
        assert_eq!(r.suspects(), 1);
        // Its exit and autoreap come through the ring meanwhile.
        let mut exit = fork(GONE, 10 * S);
        exit.ktime_ns = 11 * S + 5;
        exit.kind = EventKind::Exit(crate::event::Exit {
            status: 0,
            group_dead: true,
            autoreap: true,
        });
        out.clear();
        m.apply(exit, &mut out);
        assert_eq!(
            out.iter().map(|r| r.body.type_name()).collect::<Vec<_>>(),
            ["exit", "reap"]
        );
        out.clear();
        r.run(&mut m, 1, 14 * S, 13 * S, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.suspects(), 0);
    }
}
