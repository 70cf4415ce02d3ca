//! The storm modes, the conditions a storm runs under (untraced, tracer, the peers), how
//! each condition is started, and how its output is counted.
//!
//! Counting keeps to the storm's own events: the machine does other things meanwhile.
//! Every child the storm makes has a worker as its parent and every thread it makes
//! belongs to a worker, and the workers live through the whole run, so their pids pick
//! out the storm's events without ambiguity.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Deserialize;

/// What the storm does (see tests/src/bin/tracer-storm.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Mode {
    ForkExit,
    ForkExec,
    PosixSpawn,
    Threads,
    Zombie,
}

impl Mode {
    pub const ALL: [Mode; 5] = [
        Mode::ForkExit,
        Mode::ForkExec,
        Mode::PosixSpawn,
        Mode::Threads,
        Mode::Zombie,
    ];

    /// The name tracer-storm takes.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ForkExit => "fork-exit",
            Mode::ForkExec => "fork-exec",
            Mode::PosixSpawn => "posix-spawn",
            Mode::Threads => "threads",
            Mode::Zombie => "zombie",
        }
    }

    /// Operations for the calibration run: enough for a rate, a fraction of a second.
    pub fn calibration_count(self) -> u64 {
        match self {
            Mode::ForkExit | Mode::Zombie => 2_000,
            Mode::ForkExec => 500,
            Mode::PosixSpawn => 1_000,
            Mode::Threads => 20_000,
        }
    }
}

/// What runs while the storm runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Condition {
    /// Nothing: the reference.
    Untraced,
    /// `tracer watch --quiet -o FILE` (processes only).
    Tracer,
    /// `tracer watch --quiet --threads -o FILE`.
    TracerThreads,
    /// `tracer top -o FILE`, on a pseudo-terminal (its screen drawn and thrown away).
    Top,
    /// `tracer top --threads -o FILE`.
    TopThreads,
    /// `forkstat -e fork,exec,exit` (proc connector).
    Forkstat,
    /// libbpf-tools `execsnoop`.
    Execsnoop,
    /// libbpf-tools `exitsnoop`.
    Exitsnoop,
    /// bpftrace printing the three sched tracepoints.
    Bpftrace,
}

impl Condition {
    pub const ALL: [Condition; 9] = [
        Condition::Untraced,
        Condition::Tracer,
        Condition::TracerThreads,
        Condition::Top,
        Condition::TopThreads,
        Condition::Forkstat,
        Condition::Execsnoop,
        Condition::Exitsnoop,
        Condition::Bpftrace,
    ];

    /// Short name, used in the JSON file and the progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Untraced => "untraced",
            Condition::Tracer => "tracer",
            Condition::TracerThreads => "tracer --threads",
            Condition::Top => "top",
            Condition::TopThreads => "top --threads",
            Condition::Forkstat => "forkstat",
            Condition::Execsnoop => "execsnoop",
            Condition::Exitsnoop => "exitsnoop",
            Condition::Bpftrace => "bpftrace",
        }
    }

    /// The command line, as the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Condition::Untraced => "untraced",
            Condition::Tracer => "tracer watch --quiet -o FILE",
            Condition::TracerThreads => "tracer watch --quiet --threads -o FILE",
            Condition::Top => "tracer top -o FILE (on a pty)",
            Condition::TopThreads => "tracer top --threads -o FILE (on a pty)",
            Condition::Forkstat => "forkstat -e fork,exec,exit",
            Condition::Execsnoop => "execsnoop (libbpf-tools)",
            Condition::Exitsnoop => "exitsnoop (libbpf-tools)",
            Condition::Bpftrace => "bpftrace (3 tracepoints, printf)",
        }
    }

    pub fn is_tracer(self) -> bool {
        matches!(self, Condition::Tracer | Condition::TracerThreads)
    }

    /// `tracer top`: the same pipeline as `watch`, its view in place of the lines.
    pub fn is_top(self) -> bool {
        matches!(self, Condition::Top | Condition::TopThreads)
    }

    /// The `watch` condition a `top` one is compared with.
    pub fn watch_twin(self) -> Option<Condition> {
        match self {
            Condition::Top => Some(Condition::Tracer),
            Condition::TopThreads => Some(Condition::TracerThreads),
            _ => None,
        }
    }

    pub fn is_peer(self) -> bool {
        !self.is_tracer() && !self.is_top() && self != Condition::Untraced
    }

    /// Runs BPF programs (whose in-kernel cost the bench reads).
    pub fn uses_bpf(self) -> bool {
        !matches!(self, Condition::Untraced | Condition::Forkstat)
    }

    /// The Debian package that provides a peer.
    pub fn package(self) -> Option<&'static str> {
        match self {
            Condition::Forkstat => Some("forkstat"),
            Condition::Execsnoop | Condition::Exitsnoop => Some("libbpf-tools"),
            Condition::Bpftrace => Some("bpftrace"),
            _ => None,
        }
    }

    /// Events of the kinds this condition records that one storm operation makes.
    ///
    /// tracer: fork, exec, exit and reap per process (no exec without one); threads only
    /// with `--threads` (thread fork and exit). forkstat: fork, exec, exit; a thread's
    /// creation is a "clone" event, which `-e fork,...` leaves out, but its exit is an
    /// exit event (proc_exit_connector runs in do_exit for every task). execsnoop: the
    /// exec. exitsnoop: the process exit (threads only with -T). bpftrace: every
    /// sched_process_fork/exec/exit, which fire for threads as for processes.
    pub fn events_per_op(self, mode: Mode) -> u64 {
        use Condition as C;
        use Mode as M;
        match (self, mode) {
            (C::Untraced, _) => 0,
            (C::Tracer | C::TracerThreads | C::Top | C::TopThreads, M::ForkExit | M::Zombie) => 3,
            (
                C::Tracer | C::TracerThreads | C::Top | C::TopThreads,
                M::ForkExec | M::PosixSpawn,
            ) => 4,
            (C::Tracer | C::Top, M::Threads) => 0,
            (C::TracerThreads | C::TopThreads, M::Threads) => 2,
            (C::Forkstat, M::ForkExit | M::Zombie) => 2,
            (C::Forkstat, M::ForkExec | M::PosixSpawn) => 3,
            (C::Forkstat, M::Threads) => 1,
            (C::Execsnoop, M::ForkExec | M::PosixSpawn) => 1,
            (C::Execsnoop, _) => 0,
            (C::Exitsnoop, M::Threads) => 0,
            (C::Exitsnoop, _) => 1,
            (C::Bpftrace, M::ForkExit | M::Zombie | M::Threads) => 2,
            (C::Bpftrace, M::ForkExec | M::PosixSpawn) => 3,
        }
    }

    /// Whether to run it on a mode at all: a peer that records nothing of a storm is
    /// skipped there (its cost would be that of a probe that never fires). The tracer
    /// runs on every mode: processes-only on a thread storm is a target of its own.
    pub fn applies_to(self, mode: Mode) -> bool {
        !self.is_peer() || self.events_per_op(mode) > 0
    }
}

/// Programs and files the conditions need.
pub struct Tools {
    pub tracer: PathBuf,
    pub forkstat: Option<PathBuf>,
    pub execsnoop: Option<PathBuf>,
    pub exitsnoop: Option<PathBuf>,
    pub bpftrace: Option<PathBuf>,
    /// The bpftrace script ([`BPFTRACE_SCRIPT`]) written to a file.
    pub bpftrace_script: PathBuf,
}

impl Tools {
    /// Whether the condition's program is there.
    pub fn has(&self, condition: Condition) -> bool {
        match condition {
            Condition::Untraced
            | Condition::Tracer
            | Condition::TracerThreads
            | Condition::Top
            | Condition::TopThreads => true,
            Condition::Forkstat => self.forkstat.is_some(),
            Condition::Execsnoop => self.execsnoop.is_some(),
            Condition::Exitsnoop => self.exitsnoop.is_some(),
            Condition::Bpftrace => self.bpftrace.is_some(),
        }
    }

    /// The command of a traced condition; the tracer writes to `output`, peers to stdout.
    pub fn command(&self, condition: Condition, output: &Path) -> Option<Command> {
        let mut c;
        match condition {
            Condition::Untraced => return None,
            Condition::Tracer | Condition::TracerThreads => {
                c = Command::new(&self.tracer);
                c.args(["watch", "--quiet"]);
                if condition == Condition::TracerThreads {
                    c.arg("--threads");
                }
                // Each run replaces the last one's scratch file.
                c.arg("-o").arg(output).arg("--force");
            }
            Condition::Top | Condition::TopThreads => {
                // stdin and stdout: a pty the bench opens (`Bench::run`).
                c = Command::new(&self.tracer);
                c.arg("top");
                if condition == Condition::TopThreads {
                    c.arg("--threads");
                }
                c.arg("-o").arg(output).arg("--force");
            }
            Condition::Forkstat => {
                c = Command::new(self.forkstat.as_ref()?);
                c.args(["-e", "fork,exec,exit"]);
            }
            Condition::Execsnoop => c = Command::new(self.execsnoop.as_ref()?),
            Condition::Exitsnoop => c = Command::new(self.exitsnoop.as_ref()?),
            Condition::Bpftrace => {
                c = Command::new(self.bpftrace.as_ref()?);
                c.arg(&self.bpftrace_script);
            }
        }
        Some(c)
    }
}

/// What the bpftrace condition runs: one line per event of the three tracepoints the
/// tracer is built on, with the pids needed to tell the storm's events apart.
pub const BPFTRACE_SCRIPT: &str = r#"// cargo xtask bench: the bpftrace peer.
tracepoint:sched:sched_process_fork { printf("fork %d %d\n", args->parent_pid, args->child_pid); }
tracepoint:sched:sched_process_exec { printf("exec %d %d %s\n", pid, curtask->real_parent->tgid, str(args->filename)); }
tracepoint:sched:sched_process_exit { printf("exit %d %d %d\n", tid, pid, curtask->real_parent->tgid); }
"#;

/// The storm's processes: its own pid and its workers'.
pub struct Storm {
    pub pid: i64,
    pub workers: HashSet<i64>,
}

/// What a condition recorded of one storm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// The storm's events recorded.
    pub recorded: u64,
    /// The same, per kind (record type or event name).
    pub by_kind: BTreeMap<String, u64>,
    /// Events the condition says it lost (all processes, not just the storm's); `None`
    /// when it has no way of saying.
    pub lost: Option<u64>,
    /// forkstat: how many times the kernel reported its socket overflowed (ENOBUFS); the
    /// number of events lost each time is unknown.
    pub overflows: u64,
}

impl Counted {
    fn add(&mut self, kind: &str) {
        self.recorded += 1;
        *self.by_kind.entry(kind.to_string()).or_default() += 1;
    }
}

/// Counts what `condition` recorded of `storm`: the tracer's JSON Lines in `output`, a
/// peer's stdout in `stdout`; lost-event reports are read from `stderr` as well.
pub fn count(
    condition: Condition,
    output: &Path,
    stdout: &Path,
    stderr: &Path,
    storm: &Storm,
) -> Result<Counted> {
    let mut counted = match condition {
        Condition::Untraced => return Ok(Counted::default()),
        Condition::Tracer | Condition::TracerThreads | Condition::Top | Condition::TopThreads => {
            return count_lines(output, |lines| tracer_records(lines, storm));
        }
        Condition::Forkstat => count_lines(stdout, |lines| forkstat_lines(lines, storm))?,
        Condition::Execsnoop => count_lines(stdout, |lines| {
            // PCOMM PID PPID RET ARGS
            snoop_lines(lines, storm, "exec")
        })?,
        Condition::Exitsnoop => count_lines(stdout, |lines| {
            // PCOMM PID PPID TID AGE(s) EXIT_CODE
            snoop_lines(lines, storm, "exit")
        })?,
        Condition::Bpftrace => count_lines(stdout, |lines| bpftrace_lines(lines, storm))?,
    };
    if matches!(
        condition,
        Condition::Execsnoop | Condition::Exitsnoop | Condition::Bpftrace
    ) {
        // libbpf-tools: "Lost N events on CPU #M!" per perf buffer loss; bpftrace:
        // "Lost N events" at the end. Either stream, to be safe.
        let mut lost = 0;
        for path in [stdout, stderr] {
            lost += count_lines(path, |lines| Ok(lost_reports(lines)))?;
        }
        counted.lost = Some(lost);
    }
    Ok(counted)
}

fn count_lines<T>(
    path: &Path,
    f: impl FnOnce(&mut dyn Iterator<Item = String>) -> Result<T>,
) -> Result<T> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut lines = std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            // A last line without '\n' was cut short; it is not a whole record.
            Ok(0) | Err(_) => None,
            Ok(_) if buf.last() != Some(&b'\n') => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        }
    });
    f(&mut lines)
}

/// The fields of a tracer record the count needs; the rest is skipped.
#[derive(Deserialize)]
struct TracerLine {
    #[serde(rename = "type")]
    kind: String,
    pid: Option<i64>,
    ppid: Option<i64>,
    thread: Option<bool>,
    count: Option<u64>,
}

fn tracer_records(lines: &mut dyn Iterator<Item = String>, storm: &Storm) -> Result<Counted> {
    let mut counted = Counted {
        lost: Some(0),
        ..Counted::default()
    };
    for (n, line) in lines.enumerate() {
        let rec: TracerLine = serde_json::from_str(&line)
            .with_context(|| format!("tracer output line {} is not a record", n + 1))?;
        if rec.kind == "lost" {
            *counted.lost.get_or_insert(0) += rec.count.unwrap_or(0);
            continue;
        }
        let child_of_worker = rec.ppid.is_some_and(|p| storm.workers.contains(&p));
        let worker_thread =
            rec.thread == Some(true) && rec.pid.is_some_and(|p| storm.workers.contains(&p));
        if child_of_worker || worker_thread {
            let kind = if rec.thread == Some(true) {
                format!("thread {}", rec.kind)
            } else {
                rec.kind
            };
            counted.add(&kind);
        }
    }
    Ok(counted)
}

/// execsnoop and exitsnoop: a header, then one event per line with PPID third.
fn snoop_lines(
    lines: &mut dyn Iterator<Item = String>,
    storm: &Storm,
    kind: &str,
) -> Result<Counted> {
    let mut counted = Counted::default();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .get(2)
            .and_then(|p| p.parse::<i64>().ok())
            .is_some_and(|ppid| storm.workers.contains(&ppid))
        {
            counted.add(kind);
        }
    }
    Ok(counted)
}

/// forkstat: `TIME fork PPID parent CMD` followed by `TIME fork PID child CMD`;
/// `TIME exec PID CMD`; `TIME exit PID CODE DURATION CMD`; and on a socket overflow
/// `TIME recv ----- nobufs ...`.
fn forkstat_lines(lines: &mut dyn Iterator<Item = String>, storm: &Storm) -> Result<Counted> {
    let mut counted = Counted::default();
    let mut children: HashSet<i64> = HashSet::new();
    let mut parent_is_worker = false;
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&event), Some(pid)) = (f.get(1), f.get(2)) else {
            continue;
        };
        if event == "recv" && f.get(3) == Some(&"nobufs") {
            counted.overflows += 1;
            continue;
        }
        let Ok(pid) = pid.parse::<i64>() else {
            continue;
        };
        match (event, f.get(3).copied()) {
            ("fork", Some("parent")) => parent_is_worker = storm.workers.contains(&pid),
            ("fork", Some("child")) => {
                if parent_is_worker {
                    children.insert(pid);
                    counted.add("fork");
                }
                parent_is_worker = false;
            }
            ("exec", _) if children.contains(&pid) => counted.add("exec"),
            ("exit", _) => {
                if children.remove(&pid) {
                    counted.add("exit");
                } else if pid != storm.pid
                    && !storm.workers.contains(&pid)
                    && line.contains("tracer-storm")
                {
                    // A thread's exit (its creation is not shown): forkstat names it
                    // by the command line of its process, a worker.
                    counted.add("thread exit");
                }
            }
            _ => {}
        }
    }
    Ok(counted)
}

/// The bpftrace script's lines: `fork PARENT_TID CHILD_TID`, `exec PID PPID FILE`,
/// `exit TID PID PPID`.
fn bpftrace_lines(lines: &mut dyn Iterator<Item = String>, storm: &Storm) -> Result<Counted> {
    let mut counted = Counted::default();
    let w = |s: Option<&&str>| {
        s.and_then(|s| s.parse::<i64>().ok())
            .is_some_and(|p| storm.workers.contains(&p))
    };
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            // A worker's process children and its threads alike have the worker's
            // main thread (tid = worker pid) as the forking task.
            Some("fork") if w(f.get(1)) => counted.add("fork"),
            Some("exec") if w(f.get(2)) => counted.add("exec"),
            Some("exit") => {
                if w(f.get(3)) {
                    counted.add("exit");
                } else if w(f.get(2)) && f.get(1) != f.get(2) {
                    counted.add("thread exit");
                }
            }
            _ => {}
        }
    }
    Ok(counted)
}

/// Sum of N over lines saying "Lost N events" (any case).
fn lost_reports(lines: &mut dyn Iterator<Item = String>) -> u64 {
    let mut lost = 0;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        let mut words = lower.split_whitespace().peekable();
        while let Some(word) = words.next() {
            if word == "lost"
                && let Some(n) = words.peek().and_then(|n| n.parse::<u64>().ok())
            {
                words.next();
                if words.peek().is_some_and(|w| w.starts_with("event")) {
                    lost += n;
                }
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm() -> Storm {
        Storm {
            pid: 100,
            workers: HashSet::from([101, 102]),
        }
    }

    fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
        text.lines().map(|l| format!("{l}\n"))
    }

    #[test]
    fn tracer_counts_the_storm_s_children_and_threads_and_sums_lost() {
        let text = r#"{"seq":1,"type":"process","pid":1,"tid":1,"ppid":0}
{"seq":2,"type":"fork","pid":500,"tid":500,"ppid":101,"thread":false}
{"seq":3,"type":"exec","pid":500,"tid":500,"ppid":101,"argv":["true"]}
{"seq":4,"type":"exit","pid":500,"tid":500,"ppid":101,"thread":false}
{"seq":5,"type":"reap","pid":500,"tid":500,"ppid":101}
{"seq":6,"type":"fork","pid":102,"tid":600,"ppid":100,"thread":true}
{"seq":7,"type":"exit","pid":102,"tid":600,"ppid":100,"thread":true}
{"seq":8,"type":"fork","pid":101,"tid":101,"ppid":100,"thread":false}
{"seq":9,"type":"fork","pid":700,"tid":700,"ppid":55,"thread":false}
{"seq":10,"type":"lost","count":12,"kind":"exec"}
{"seq":11,"type":"lost","count":3,"kind":"exit"}"#;
        let c = tracer_records(&mut lines(text), &storm()).unwrap();
        assert_eq!(c.recorded, 6);
        assert_eq!(c.by_kind["thread fork"], 1);
        assert_eq!(c.by_kind["reap"], 1);
        assert_eq!(c.lost, Some(15));
        assert!(tracer_records(&mut lines("not json"), &storm()).is_err());
    }

    #[test]
    fn forkstat_pairs_fork_lines_and_follows_the_children() {
        let text = "Time     Event     PID Info   Duration Process
04:42:20 fork      101 parent          /t/tracer-storm fork-exec
04:42:20 fork      500 child           /t/tracer-storm fork-exec
04:42:20 fork       55 parent          bash
04:42:20 fork      501 child           bash
04:42:20 exec      500                 true
04:42:20 exec      501                 ls
04:42:20 exit      500      0   0.009s true
04:42:20 exit      501      0   0.009s ls
04:42:20 exit      650      0   0.001s /t/tracer-storm threads
04:42:20 exit      101      0   1.001s /t/tracer-storm threads
04:42:21 recv ----- nobufs          (No buffer space available)";
        let c = forkstat_lines(&mut lines(text), &storm()).unwrap();
        assert_eq!(c.recorded, 4);
        assert_eq!(c.by_kind["fork"], 1);
        assert_eq!(c.by_kind["exec"], 1);
        assert_eq!(c.by_kind["exit"], 1);
        assert_eq!(c.by_kind["thread exit"], 1);
        assert_eq!(c.overflows, 1);
    }

    #[test]
    fn snoops_match_on_the_parent_pid() {
        let text = "PCOMM            PID    PPID   RET ARGS
true             500    101      0 /bin/true
ls               501    55       0 /bin/ls";
        let c = snoop_lines(&mut lines(text), &storm(), "exec").unwrap();
        assert_eq!(c.recorded, 1);
    }

    #[test]
    fn bpftrace_counts_process_and_thread_events() {
        let text = "Attaching 3 probes...
fork 101 500
fork 55 501
exec 500 101 /bin/true
exit 500 500 101
fork 102 600
exit 600 102 100
exit 102 102 100";
        let c = bpftrace_lines(&mut lines(text), &storm()).unwrap();
        assert_eq!(c.by_kind["fork"], 2);
        assert_eq!(c.by_kind["exec"], 1);
        assert_eq!(c.by_kind["exit"], 1);
        assert_eq!(c.by_kind["thread exit"], 1);
        assert_eq!(c.recorded, 5);
    }

    #[test]
    fn lost_reports_are_summed() {
        let text = "Lost 12 events on CPU #0!\nsomething else\nLost 3 events\nlost 9 packets";
        assert_eq!(lost_reports(&mut lines(text)), 15);
    }

    #[test]
    fn every_condition_records_something_of_some_mode() {
        for c in Condition::ALL.into_iter().skip(1) {
            assert!(Mode::ALL.iter().any(|&m| c.events_per_op(m) > 0), "{c:?}");
        }
        assert!(Condition::Tracer.applies_to(Mode::Threads));
        assert!(!Condition::Execsnoop.applies_to(Mode::ForkExit));
    }
}
