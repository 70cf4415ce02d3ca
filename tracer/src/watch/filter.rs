//! `watch --uid/--comm/--cgroup/--events`: which records are written, to stdout and
//! the output file alike. It runs at the sink stage, on records the model has
//! already made: the model and the alert engine see every event, so the tree,
//! parents and alerts stay right whatever is shown.
//!
//! Never filtered: `meta` (it does not pass here), `lost`, `alert`, `alert_end`,
//! and any record that is not about a process's life (the run's `end`, and types a
//! later version adds): losses and alerts must not be hidden. The start-up (and
//! each new file's) `process` snapshot is filtered like the rest: it is the type
//! `process` for `--events`.

use std::collections::HashMap;

use clap::ValueEnum;

use crate::{
    cgroup::CgroupResolver,
    filter::{ProcFilter, file_name},
    record::{Body, ProcId, Record},
};

/// A record type `--events` can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum EventType {
    /// The start-up snapshot of the processes already running.
    Process,
    /// A process (or, with --threads, a thread) was created.
    Fork,
    Exec,
    /// execve returned an error (as `execsnoop -x`).
    ExecFailed,
    /// A process (or, with --threads, a thread) ended.
    Exit,
    /// Its parent (or init) collected the exit status.
    Reap,
    /// fork/clone returned an error.
    ForkFailed,
}

impl EventType {
    /// The record `type` it keeps (docs/events.md).
    pub fn type_name(self) -> &'static str {
        match self {
            EventType::Process => "process",
            EventType::Fork => "fork",
            EventType::Exec => "exec",
            EventType::ExecFailed => "exec_failed",
            EventType::Exit => "exit",
            EventType::Reap => "reap",
            EventType::ForkFailed => "fork_failed",
        }
    }

    /// The type of a record `--events` applies to; `None` for records never filtered.
    fn of(body: &Body) -> Option<EventType> {
        Some(match body {
            Body::Process { .. } => EventType::Process,
            Body::Fork { .. } => EventType::Fork,
            Body::Exec { .. } => EventType::Exec,
            Body::ExecFailed { .. } => EventType::ExecFailed,
            Body::Exit { .. } => EventType::Exit,
            Body::Reap { .. } => EventType::Reap,
            Body::ForkFailed { .. } => EventType::ForkFailed,
            Body::Alert(_) | Body::Lost { .. } | Body::End { .. } => return None,
        })
    }
}

/// Decides record by record; sees every record, written or not.
pub struct RecordFilter {
    procs: ProcFilter,
    /// `--events`; `None`: every type.
    events: Option<Vec<EventType>>,
    /// With `--comm`: the file name of the executable each live process runs, as the
    /// records so far say (from its `exec` or snapshot, or inherited at its fork:
    /// kernel/fork.c copy_process shares or copies the parent's mm). An `exit` or
    /// `reap` carries only the comm, which a script or `prctl(PR_SET_NAME)` may
    /// have changed. Dropped at the process's `reap`.
    exes: HashMap<ProcId, Vec<u8>>,
    /// Records not written, for the summary.
    pub filtered: u64,
}

impl RecordFilter {
    /// `None` when no filter is given (everything is written).
    pub fn new(procs: ProcFilter, events: &[EventType]) -> Option<RecordFilter> {
        if procs.is_empty() && events.is_empty() {
            return None;
        }
        Some(RecordFilter {
            procs,
            events: (!events.is_empty()).then(|| events.to_vec()),
            exes: HashMap::new(),
            filtered: 0,
        })
    }

    /// Whether `rec` is written. `cgroups` names its cgroup for `--cgroup`.
    pub fn keep(&mut self, rec: &Record, cgroups: &mut CgroupResolver) -> bool {
        let Some(kind) = EventType::of(&rec.body) else {
            return true;
        };
        let Some(s) = &rec.subject else {
            return true;
        };
        let exe = self.track(rec, s.proc_id);
        let keep = self.events.as_ref().is_none_or(|e| e.contains(&kind))
            && self.procs.uid_matches(s.uid)
            && self.procs.comm_matches(
                [s.comm.as_bytes()]
                    .into_iter()
                    .chain(exe.as_deref().map(file_name))
                    // A failed exec matches by the file it tried too.
                    .chain(match &rec.body {
                        Body::ExecFailed { filename, .. } => Some(file_name(filename)),
                        _ => None,
                    }),
            )
            && (self.procs.cgroup.is_none()
                || self.procs.cgroup_matches(match s.cgroup_id {
                    0 => None,
                    id => cgroups.path(id),
                }));
        if let Body::Reap { .. } = rec.body {
            self.exes.remove(&s.proc_id);
        }
        if !keep {
            self.filtered += 1;
        }
        keep
    }

    /// Follows the executable of the record's process (only with `--comm`); returns
    /// the one it runs now.
    fn track(&mut self, rec: &Record, id: ProcId) -> Option<Vec<u8>> {
        self.procs.comm.as_ref()?;
        match &rec.body {
            Body::Exec { filename, .. } => {
                self.exes.insert(id, filename.clone());
            }
            Body::Process {
                filename: Some(filename),
                ..
            } => {
                self.exes.insert(id, filename.clone());
            }
            Body::Fork {
                parent_proc_id: Some(parent),
                thread: false,
                ..
            } => {
                if let Some(exe) = self.exes.get(parent).cloned() {
                    self.exes.insert(id, exe);
                }
            }
            _ => {}
        }
        self.exes.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::Comm, filter::parse_comm_regex, record::Subject};

    fn subject(pid: u32, comm: &str, uid: u32) -> Subject {
        Subject {
            pid,
            tid: pid,
            ppid: 1,
            proc_id: ProcId {
                pid,
                start_ticks: u64::from(pid),
            },
            comm: Comm::new(comm.as_bytes()),
            uid: Some(uid),
            cgroup_id: 0,
            cgroup: None,
            unit: None,
            container_id: None,
            pod_uid: None,
        }
    }

    fn rec(s: Subject, body: Body) -> Record {
        Record {
            ktime_ns: 1,
            subject: Some(s),
            body,
            uncertain: false,
        }
    }

    fn fork(pid: u32, parent: u32, comm: &str, uid: u32) -> Record {
        rec(
            subject(pid, comm, uid),
            Body::Fork {
                parent_proc_id: Some(ProcId {
                    pid: parent,
                    start_ticks: u64::from(parent),
                }),
                thread: false,
                clone_flags: None,
            },
        )
    }

    fn exec(pid: u32, comm: &str, file: &str, uid: u32) -> Record {
        rec(
            subject(pid, comm, uid),
            Body::Exec {
                filename: file.as_bytes().to_vec(),
                argv: vec![],
                argv_truncated: false,
                argv_redacted: false,
                old_tid: None,
            },
        )
    }

    fn exit(pid: u32, comm: &str, uid: u32) -> Record {
        rec(
            subject(pid, comm, uid),
            Body::Exit {
                exit_code: Some(0),
                signal: None,
                core_dumped: false,
                lifetime_ns: None,
                thread: false,
            },
        )
    }

    fn reap(pid: u32, comm: &str, uid: u32) -> Record {
        rec(
            subject(pid, comm, uid),
            Body::Reap {
                zombie_ns: None,
                reaper_pid: Some(1),
                reaper_comm: None,
                autoreap: false,
                inferred: None,
            },
        )
    }

    fn exec_failed(pid: u32, comm: &str, file: &str) -> Record {
        rec(
            subject(pid, comm, 0),
            Body::ExecFailed {
                filename: file.as_bytes().to_vec(),
                errno: 2,
            },
        )
    }

    fn lost() -> Record {
        Record {
            ktime_ns: 1,
            subject: None,
            body: Body::Lost {
                kind: "exec".into(),
                count: 3,
            },
            uncertain: false,
        }
    }

    fn kept(f: &mut RecordFilter, recs: &[Record]) -> Vec<bool> {
        let mut cg = CgroupResolver::unavailable();
        recs.iter().map(|r| f.keep(r, &mut cg)).collect()
    }

    #[test]
    fn no_filter_is_no_filter() {
        assert!(RecordFilter::new(ProcFilter::default(), &[]).is_none());
    }

    #[test]
    fn events_keep_their_types_and_never_losses() {
        let mut f = RecordFilter::new(ProcFilter::default(), &[EventType::ExecFailed]).unwrap();
        let recs = [
            fork(10, 1, "sh", 0),
            exec_failed(10, "sh", "/usr/local/bin/x"),
            exec(10, "x", "/usr/bin/x", 0),
            lost(),
            exit(10, "x", 0),
        ];
        assert_eq!(kept(&mut f, &recs), [false, true, false, true, false]);
        assert_eq!(f.filtered, 3);
    }

    #[test]
    fn uid_filter_keeps_that_users_records() {
        let procs = ProcFilter {
            uids: vec![65534],
            ..Default::default()
        };
        let mut f = RecordFilter::new(procs, &[]).unwrap();
        let recs = [
            fork(10, 1, "bash", 0),
            exec(10, "id", "/usr/bin/id", 65534),
            exit(10, "id", 65534),
            fork(11, 1, "bash", 0),
            lost(),
        ];
        assert_eq!(kept(&mut f, &recs), [false, true, true, false, true]);
    }

    #[test]
    fn comm_follows_the_executable_through_fork_and_renames() {
        let procs = ProcFilter {
            comm: Some(parse_comm_regex("^python3$").unwrap()),
            ..Default::default()
        };
        let mut f = RecordFilter::new(procs, &[]).unwrap();
        let recs = [
            fork(10, 1, "bash", 0),
            // comm is the script's name; the executable is python3.
            exec(10, "myscript", "/usr/bin/python3", 0),
            // Its child runs python3 until it execs.
            fork(11, 10, "myscript", 0),
            exec(11, "ls", "/usr/bin/ls", 0),
            exit(11, "ls", 0),
            exit(10, "myscript", 0),
            reap(10, "myscript", 0),
            // Reaped: a new process with the same id is not taken for python3.
            exit(10, "myscript", 0),
        ];
        assert_eq!(
            kept(&mut f, &recs),
            [false, true, true, false, false, true, true, false]
        );
        let child = recs[2].subject.as_ref().unwrap().proc_id;
        assert_eq!(
            f.exes.get(&child).map(Vec::as_slice),
            Some(&b"/usr/bin/ls"[..])
        );
    }

    #[test]
    fn comm_matches_what_a_failed_exec_tried() {
        let procs = ProcFilter {
            comm: Some(parse_comm_regex("^nope$").unwrap()),
            ..Default::default()
        };
        let mut f = RecordFilter::new(procs, &[EventType::ExecFailed]).unwrap();
        let recs = [
            exec_failed(10, "bash", "/usr/local/bin/nope"),
            exec_failed(10, "bash", "/usr/bin/other"),
        ];
        assert_eq!(kept(&mut f, &recs), [true, false]);
    }

    #[test]
    fn cgroup_unknown_is_not_a_match_but_alerts_pass() {
        let procs = ProcFilter {
            cgroup: Some("/system.slice".into()),
            ..Default::default()
        };
        let mut f = RecordFilter::new(procs, &[]).unwrap();
        let mut alert = exit(10, "x", 0);
        alert.body = Body::Alert(Box::new(crate::record::Alert {
            kind: crate::record::AlertKind::CrashLoop,
            end: false,
            scope: "process".into(),
            since_ns: 0,
            filename: None,
            argv: vec![],
            parent: None,
            figures: vec![],
            executables: vec![],
            exits: vec![],
            errno: None,
            what: String::new(),
            message: None,
        }));
        assert_eq!(kept(&mut f, &[exit(10, "x", 0), alert]), [false, true]);
    }
}
