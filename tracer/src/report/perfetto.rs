//! `--perfetto FILE`: the recording as a Chrome trace event JSON file (the "JSON
//! Trace Event Format"), which ui.perfetto.dev and chrome://tracing open as a
//! timeline. The structure is described in docs/report.md; in short:
//!
//! - Each root of the process tree (per host and boot) is one trace *process*: a
//!   track group, named `PID COMM (EXE)` after the root, ordered by
//!   `process_sort_index`.
//! - Each traced process is one *thread* track in its root's group, named
//!   `· · PID COMM (EXE)` with one `· ` per level below the root, and ordered depth
//!   first by `thread_sort_index` (and by `tid`, which is a sequence number in the
//!   same order), so every process sits under its parent like in `--tree`.
//!   Perfetto groups tracks by `pid` and sorts by these hints; one group per
//!   process would give thousands of collapsed top-level groups instead of one
//!   readable tree.
//! - On its track, a `running` slice from fork (or first sight) to exit, then a
//!   `zombie` slice from exit to reap; instants for execs, failed execs and forks,
//!   and alerts; a `fork` flow arrow from the parent at the fork to the child.
//!
//! Times are µs from one zero for the whole file: the earliest record on the wall
//! clock when every run has a readable `ts`, so several hosts line up in real
//! time; otherwise each run's own earliest record. Every event carries the exact
//! `ktime_ns` values in its args.
//!
//! The file is streamed event by event; nothing is capped.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::fmt::{lossy, text};
use super::history::{Ending, History, Origin, Proc, ProcIdx};
use super::stats::ending_text;
use super::walltime::rfc3339;
use crate::names::errno_name;

/// Below this depth track names stop indenting and show the depth instead (a fork
/// bomb can nest thousands deep).
pub const MAX_INDENT: usize = 40;

/// Version of the file's structure, in its `metadata`.
pub const PERFETTO_VERSION: u32 = 1;

/// Where each `ktime_ns` of each run lands on the file's time axis.
struct Clock {
    /// Per run: ns to add to a `ktime_ns` to get ns since the file's zero.
    shift: Vec<i128>,
    /// The wall-clock time of zero, when runs are placed by wall clock.
    wall_zero: Option<i128>,
}

impl Clock {
    fn new(h: &History) -> Clock {
        let walls: Option<Vec<i128>> = h.runs.iter().map(|r| r.wall_offset_ns).collect();
        match walls {
            Some(offsets) if !offsets.is_empty() => {
                let zero = h
                    .runs
                    .iter()
                    .zip(&offsets)
                    .map(|(r, o)| i128::from(r.first_ktime_ns) + o)
                    .min()
                    .unwrap_or(0);
                Clock {
                    shift: offsets.iter().map(|o| o - zero).collect(),
                    wall_zero: Some(zero),
                }
            }
            _ => Clock {
                shift: h
                    .runs
                    .iter()
                    .map(|r| -i128::from(r.first_ktime_ns))
                    .collect(),
                wall_zero: None,
            },
        }
    }

    /// `ts` of a `ktime_ns` of `run`, in µs (ns precision in the fraction).
    fn ts(&self, run: usize, ktime_ns: u64) -> f64 {
        let shift = self.shift.get(run).copied().unwrap_or(0);
        let ns = (i128::from(ktime_ns) + shift).max(0);
        ns as f64 / 1000.0
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Streams events into the `traceEvents` array and counts them.
struct Events<W: Write> {
    w: W,
    n: u64,
}

impl<W: Write> Events<W> {
    fn push(&mut self, event: &Value) -> io::Result<()> {
        self.w.write_all(if self.n == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.w, event)?;
        self.n += 1;
        Ok(())
    }
}

/// One process's track.
struct Track {
    proc: ProcIdx,
    /// The trace "process" (track group) it is in.
    group: u64,
    tid: u64,
    depth: usize,
}

/// `PID COMM (EXE)`, or `PID COMM` when the executable is unknown.
pub fn proc_name(p: &Proc) -> String {
    match p.exe() {
        Some(exe) => format!("{} {} ({})", p.pid(), text(p.comm.as_bytes()), text(exe)),
        None => format!("{} {}", p.pid(), text(p.comm.as_bytes())),
    }
}

/// The track name: one `· ` per level below the root, and past [`MAX_INDENT`] the
/// depth as `(N) `.
pub fn track_name(p: &Proc, depth: usize) -> String {
    let mut name = "· ".repeat(depth.min(MAX_INDENT));
    if depth > MAX_INDENT {
        name.push_str(&format!("({depth}) "));
    }
    name.push_str(&proc_name(p));
    name
}

/// The life of a process on its track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phases {
    /// Running: from fork (or first sight) to exit, or to the end of the recording.
    pub running: Option<(u64, u64)>,
    /// Zombie: from exit to reap, or to the end of the recording.
    pub zombie: Option<(u64, u64)>,
}

/// Where the running and zombie phases of `p` begin and end (`ktime_ns`).
pub fn phases(h: &History, p: &Proc) -> Phases {
    let end = h.end_ns(p.run).max(p.last_ns);
    let start = p.fork_ns.unwrap_or(p.first_ns);
    if p.ending() == Ending::ZombieAtStart {
        // It had exited before tracing began: a zombie from first sight.
        let until = p.reap.as_ref().map_or(end, |r| r.ktime_ns);
        return Phases {
            running: None,
            zombie: Some((p.first_ns, until.max(p.first_ns))),
        };
    }
    // The exit, or where a recorded zombie time puts it when the exit record is lost.
    let exit_at = match (&p.exit, &p.reap) {
        (Some(e), _) => Some(e.ktime_ns),
        (None, Some(r)) => r.zombie_ns.map(|z| r.ktime_ns.saturating_sub(z)),
        (None, None) => None,
    };
    match (exit_at, &p.reap) {
        (Some(x), Some(r)) => {
            let zombie_ns = r.zombie_ns.unwrap_or(r.ktime_ns.saturating_sub(x));
            Phases {
                running: Some((start, x.max(start))),
                zombie: Some((x, x.saturating_add(zombie_ns))),
            }
        }
        (Some(x), None) => Phases {
            running: Some((start, x.max(start))),
            zombie: Some((x, end.max(x))),
        },
        // Released without a known exit: it ran until then, as far as anyone knows.
        (None, Some(r)) => Phases {
            running: Some((start, r.ktime_ns.max(start))),
            zombie: None,
        },
        (None, None) => Phases {
            running: Some((start, end.max(start))),
            zombie: None,
        },
    }
}

fn origin_text(o: Origin) -> &'static str {
    match o {
        Origin::Snapshot => "snapshot",
        Origin::Fork => "fork",
        Origin::Inferred => "inferred",
    }
}

/// Args of a running slice: who the process is, its parent, how it ended.
fn running_args(h: &History, p: &Proc, alive_at_end: bool) -> Value {
    let parent = p.parent.map(|i| &h.procs[i]);
    let run = &h.runs[p.run];
    let ending = p.ending();
    let (exit_code, signal) = match ending {
        Ending::Exited(c) => (Some(c), None),
        Ending::Killed { signal, .. } => (None, Some(signal)),
        _ => (None, None),
    };
    let mut args = json!({
        "pid": p.pid(),
        "proc_id": p.id.to_string(),
        "parent_pid": parent.map_or(p.ppid, Proc::pid),
        "parent_proc_id": parent.map(|q| q.id.to_string()),
        "comm": lossy(p.comm.as_bytes()),
        "exe": p.exe().map(|e| lossy(e)),
        "chain": p.chain().iter().map(|c| lossy(c)).collect::<Vec<_>>(),
        "cgroup": p.cgroup.as_deref(),
        "origin": origin_text(p.origin),
        "start_ktime_ns": p.fork_ns.unwrap_or(p.first_ns),
        "start": run.wall_ns(p.fork_ns.unwrap_or(p.first_ns)).map(rfc3339),
        "ending": ending_text(ending),
        "exit_code": exit_code,
        "signal": signal,
        "lifetime_ns": p.lifetime_ns(),
        "alive_at_end": alive_at_end,
        "host": run.host,
    });
    if !p.argv.is_empty() {
        args["argv"] = json!(p.argv.iter().map(|a| lossy(a)).collect::<Vec<_>>());
    }
    if p.threads_created > 0 {
        args["threads_created"] = json!(p.threads_created);
    }
    args
}

fn zombie_args(p: &Proc, from: u64) -> Value {
    let r = p.reap.as_ref();
    let at_start = p.ending() == Ending::ZombieAtStart;
    json!({
        "pid": p.pid(),
        "proc_id": p.id.to_string(),
        "exit_ktime_ns": (!at_start).then_some(from),
        "zombie_ns": r.and_then(|r| r.zombie_ns),
        "reap_ktime_ns": r.map(|r| r.ktime_ns),
        "reaper_pid": r.and_then(|r| r.reaper_pid),
        "reaper_comm": r.and_then(|r| r.reaper_comm.as_ref()).map(|c| lossy(c.as_bytes())),
        "autoreap": r.is_some_and(|r| r.autoreap),
        "unreaped_at_end": r.is_none(),
        "zombie_at_start": at_start,
    })
}

/// Writes the trace of the processes under `roots` (all of them: [`History::roots`])
/// to `out`; returns the number of events written.
pub fn write(out: impl Write, h: &History, roots: &[ProcIdx]) -> io::Result<u64> {
    let clock = Clock::new(h);
    let many_runs = h.runs.len() > 1;

    // Tree order: the roots in order, each one's processes depth first. `tid`s
    // follow that order after the group `pid`s, so no track is a group's "main
    // thread" and viewers that sort by tid see the same order.
    let groups = roots.len() as u64;
    let mut tracks: Vec<Track> = Vec::new();
    let mut tid_of: Vec<Option<u64>> = vec![None; h.procs.len()];
    for (g, &root) in roots.iter().enumerate() {
        let mut stack = vec![(root, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            let tid = groups + 1 + tracks.len() as u64;
            tid_of[i] = Some(tid);
            tracks.push(Track {
                proc: i,
                group: g as u64 + 1,
                tid,
                depth,
            });
            stack.extend(h.procs[i].children.iter().rev().map(|&c| (c, depth + 1)));
        }
    }
    // The group of each run's first root: for what concerns a whole run.
    let mut run_group: Vec<Option<u64>> = vec![None; h.runs.len()];
    for (g, &root) in roots.iter().enumerate().rev() {
        run_group[h.procs[root].run] = Some(g as u64 + 1);
    }

    let mut hosts: Vec<&str> = Vec::new();
    for r in &h.runs {
        if !hosts.contains(&r.host.as_str()) {
            hosts.push(&r.host);
        }
    }
    let mut w = out;
    let metadata = json!({
        "generator": "tracer report --perfetto",
        "tracer_perfetto_version": PERFETTO_VERSION,
        "time_base": if clock.wall_zero.is_some() { "wall" } else { "run" },
        "time_zero": clock.wall_zero.map(rfc3339),
        "hosts": hosts.join(", "),
        "processes": tracks.len(),
    });
    w.write_all(b"{\"displayTimeUnit\":\"ms\",\"metadata\":")?;
    serde_json::to_writer(&mut w, &metadata)?;
    w.write_all(b",\"traceEvents\":[")?;
    let mut ev = Events { w, n: 0 };

    for (g, &root) in roots.iter().enumerate() {
        let p = &h.procs[root];
        let pid = g as u64 + 1;
        let name = if many_runs {
            let run = &h.runs[p.run];
            let boot: String = run.boot_id.chars().take(8).collect();
            format!("{} (boot {boot}): {}", run.host, proc_name(p))
        } else {
            proc_name(p)
        };
        ev.push(
            &json!({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
            "args": {"name": name}}),
        )?;
        ev.push(
            &json!({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
            "args": {"sort_index": pid}}),
        )?;
    }

    for t in &tracks {
        let p = &h.procs[t.proc];
        let (pid, tid) = (t.group, t.tid);
        ev.push(
            &json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
            "args": {"name": track_name(p, t.depth)}}),
        )?;
        ev.push(
            &json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
            "args": {"sort_index": tid}}),
        )?;
        let ph = phases(h, p);
        if let Some((from, to)) = ph.running {
            let alive_at_end = p.alive_at_end();
            ev.push(&json!({"ph": "X", "name": "running", "cat": "process",
                "pid": pid, "tid": tid, "ts": clock.ts(p.run, from), "dur": us(to - from),
                "args": running_args(h, p, alive_at_end)}))?;
        }
        // The fork as a flow arrow, parent to child; both ends bind to the slice
        // that encloses them (the parent's and the child's running slices).
        if let (Origin::Fork, Some(fork), Some(parent)) = (p.origin, p.fork_ns, p.parent)
            && let Some(ptid) = tid_of[parent]
        {
            let ts = clock.ts(p.run, fork);
            ev.push(&json!({"ph": "s", "name": "fork", "cat": "fork", "id": tid,
                "pid": tracks_group(&tracks, ptid, groups), "tid": ptid, "ts": ts}))?;
            ev.push(
                &json!({"ph": "f", "bp": "e", "name": "fork", "cat": "fork", "id": tid,
                "pid": pid, "tid": tid, "ts": ts}),
            )?;
        }
        if let Some((from, to)) = ph.zombie {
            ev.push(&json!({"ph": "X", "name": "zombie", "cat": "process",
                "pid": pid, "tid": tid, "ts": clock.ts(p.run, from), "dur": us(to - from),
                "args": zombie_args(p, from)}))?;
        }
        for e in &p.execs {
            ev.push(&json!({"ph": "i", "s": "t", "name": "exec", "cat": "exec",
            "pid": pid, "tid": tid, "ts": clock.ts(p.run, e.ktime_ns),
            "args": {
                "filename": lossy(&e.filename),
                "argv": e.argv.iter().map(|a| lossy(a)).collect::<Vec<_>>(),
                "argv_truncated": e.argv_truncated,
                "ktime_ns": e.ktime_ns,
            }}))?;
        }
    }

    let track_of = |i: ProcIdx| tid_of[i].map(|tid| (tracks_group(&tracks, tid, groups), tid));
    for f in &h.exec_failures {
        let Some((pid, tid)) = track_of(f.proc) else {
            continue;
        };
        let run = h.procs[f.proc].run;
        ev.push(
            &json!({"ph": "i", "s": "t", "name": "exec_failed", "cat": "error",
            "pid": pid, "tid": tid, "ts": clock.ts(run, f.ktime_ns),
            "args": {"filename": lossy(&f.filename), "errno": f.errno,
                "error": errno_name(f.errno), "ktime_ns": f.ktime_ns}}),
        )?;
    }
    for f in &h.fork_failures {
        let Some((pid, tid)) = track_of(f.proc) else {
            continue;
        };
        let run = h.procs[f.proc].run;
        ev.push(
            &json!({"ph": "i", "s": "t", "name": "fork_failed", "cat": "error",
            "pid": pid, "tid": tid, "ts": clock.ts(run, f.ktime_ns),
            "args": {"errno": f.errno, "error": errno_name(f.errno), "ktime_ns": f.ktime_ns}}),
        )?;
    }
    for a in &h.alerts {
        let name = format!(
            "{}: {}",
            if a.end { "alert ended" } else { "alert" },
            a.alert
        );
        let args = json!({"alert": a.alert, "end": a.end, "message": a.message,
            "ktime_ns": a.ktime_ns});
        let ts = clock.ts(a.run, a.ktime_ns);
        match a.proc {
            // On the culprit's track; a culprit outside the subtrees shown is skipped.
            Some(i) => {
                if let Some((pid, tid)) = track_of(i) {
                    ev.push(&json!({"ph": "i", "s": "t", "name": name, "cat": "alert",
                        "pid": pid, "tid": tid, "ts": ts, "args": args}))?;
                }
            }
            None => {
                if let Some(pid) = run_group[a.run] {
                    ev.push(&json!({"ph": "i", "s": "p", "name": name, "cat": "alert",
                        "pid": pid, "ts": ts, "args": args}))?;
                }
            }
        }
    }
    for l in &h.lost {
        if let Some(pid) = run_group[l.run] {
            ev.push(&json!({"ph": "i", "s": "p", "name": "lost", "cat": "error",
                "pid": pid, "ts": clock.ts(l.run, l.ktime_ns),
                "args": {"kind": l.kind, "count": l.count, "ktime_ns": l.ktime_ns}}))?;
        }
    }

    let Events { mut w, n } = ev;
    w.write_all(b"\n]}\n")?;
    w.flush()?;
    Ok(n)
}

/// The group (`pid`) of the track with this `tid`.
fn tracks_group(tracks: &[Track], tid: u64, groups: u64) -> u64 {
    tracks[(tid - groups - 1) as usize].group
}
