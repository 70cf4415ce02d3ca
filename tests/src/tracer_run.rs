//! Runs of the real `tracer` binary: `tracer watch` on a `tracer-workload` mode
//! ([`run_traced`]), other subcommands to their end ([`run_tracer`]), where the
//! binaries are, and what the end-of-run summary line says.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::child::{DEADLINE, require_root, spawn_with_deadline, tail};
use crate::trace::Trace;
use crate::workloads::{facts_of, workload_bin};

/// Runs `tracer watch --format jsonl --quiet -o FILE [extra_tracer_flags] -- tracer-workload ARGS`
/// and returns the checked trace. Panics (the test fails) if not root, if the tracer
/// binary is missing, if the run takes longer than [`DEADLINE`], if the workload did not
/// report its pids, or if any record breaks the schema.
pub fn run_traced(args: &[&str], extra_tracer_flags: &[&str]) -> Trace {
    run_traced_within(args, extra_tracer_flags, DEADLINE)
}

/// [`run_traced`] with a chosen deadline.
pub fn run_traced_within(args: &[&str], extra_tracer_flags: &[&str], deadline: Duration) -> Trace {
    run_traced_by(&tracer_bin(), args, extra_tracer_flags, deadline)
}

/// [`run_traced_within`] with a chosen tracer binary (the static one, say).
pub fn run_traced_by(
    tracer: &Path,
    args: &[&str],
    extra_tracer_flags: &[&str],
    deadline: Duration,
) -> Trace {
    require_root();
    let dir = run_dir(args.first().copied().unwrap_or("run"));
    let output = dir.join("trace.jsonl");
    let mut cmd = Command::new(tracer);
    cmd.args(["watch", "--format", "jsonl", "--quiet", "-o"])
        .arg(&output)
        .args(extra_tracer_flags)
        .arg("--")
        .arg(workload_bin())
        .args(args);
    let run = spawn_with_deadline(&mut cmd, Stdio::null(), deadline, || {
        let seen = std::fs::read_to_string(&output).unwrap_or_else(|e| format!("(no output: {e})"));
        format!("--- {} so far:\n{}", output.display(), tail(&seen, 200))
    });
    let mut trace = Trace::from_output(&run, &output, facts_of(&run), &dir);
    trace.args = args.iter().map(|s| s.to_string()).collect();
    trace
}

/// The tracer under test: `TRACER_BIN` (set by `cargo xtask test`), or
/// target/debug/tracer.
pub fn tracer_bin() -> PathBuf {
    built_tracer("TRACER_BIN", "debug", "cargo xtask build")
}

/// The release tracer: `TRACER_RELEASE_BIN` (set by `cargo xtask test`), or
/// target/release/tracer. For tests that measure what a server would run
/// (memory under a fork bomb), where the debug build's 10-30× slower agent
/// would measure its own backlog instead.
pub fn tracer_release_bin() -> PathBuf {
    built_tracer(
        "TRACER_RELEASE_BIN",
        "release",
        "cargo xtask build --release",
    )
}

/// The static release tracer (musl): `TRACER_STATIC_BIN` (set by `cargo xtask test`),
/// or target/x86_64-unknown-linux-musl/release/tracer.
pub fn tracer_static_bin() -> PathBuf {
    built_tracer(
        "TRACER_STATIC_BIN",
        "x86_64-unknown-linux-musl/release",
        "cargo xtask build --release --target x86_64-unknown-linux-musl",
    )
}

fn built_tracer(var: &str, profile: &str, build: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ sits in the workspace")
            .join("target")
            .join(profile)
            .join("tracer"),
    };
    if !path.is_file() {
        panic!(
            "tracer binary not found at {}: build it first (`{build}`) or set {var} \
             (`cargo xtask test` does both)",
            path.display()
        );
    }
    path
}

/// A new empty directory for one run (a [`Trace`] made from it removes it if the
/// test passes).
pub fn run_dir(label: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tracer-tests-{}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        label
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// What the end-of-run summary line on stderr says:
/// `tracer: 1.40s, 92 records (exec 2, fork 2, process 84, ...), 0 events lost ...`
/// (`1 record`, `1 event lost` in the singular).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Records per type, as listed in parentheses.
    pub per_type: BTreeMap<String, u64>,
    pub lost: u64,
    /// The whole line.
    pub line: String,
}

/// The summary line of a tracer's stderr, if there is one that parses.
pub fn summary_in(stderr: &str) -> Option<Summary> {
    let line = stderr.lines().find(|l| {
        l.starts_with("tracer: ")
            && l.contains(" record")
            && (l.contains(" events lost") || l.contains(" event lost"))
    })?;
    // After "tracer: <duration>, ".
    let rest = line.strip_prefix("tracer: ")?.split_once(", ")?.1;
    let (records, rest) = rest.split_once(" record")?;
    let rest = rest.strip_prefix('s').unwrap_or(rest);
    // Totals are written with thousands separators (`26,008 records`).
    let records = records.replace(',', "").parse().ok()?;
    let mut per_type = BTreeMap::new();
    let rest = match rest.strip_prefix(" (") {
        Some(r) => {
            let (list, after) = r.split_once(')')?;
            for item in list.split(", ") {
                let (ty, n) = item.rsplit_once(' ')?;
                per_type.insert(ty.to_string(), n.parse().ok()?);
            }
            after
        }
        None => rest,
    };
    let lost = rest
        .strip_prefix(", ")?
        .split_once(" event")?
        .0
        .replace(',', "")
        .parse()
        .ok()?;
    Some(Summary {
        records,
        per_type,
        lost,
        line: line.to_string(),
    })
}

/// What a run of `tracer` (other than `watch`) printed.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Ran {
    /// Fails the test unless the command exited with 0.
    pub fn ok(self) -> Ran {
        if !self.status.success() {
            panic!(
                "{} exited with {}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.command,
                self.status,
                tail(&self.stdout, 100),
                self.stderr
            );
        }
        self
    }

    /// Its stdout parsed as one JSON value; fails the test if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON ({e}):\n{}",
                self.command,
                tail(&self.stdout, 100)
            )
        })
    }
}

/// Runs `tracer ARGS` (e.g. `report FILE`) to its end, with stdin read from the file
/// `stdin` (empty when `None`). Panics if it cannot start or takes longer than
/// [`DEADLINE`].
pub fn run_tracer(args: &[&OsStr], stdin: Option<&Path>) -> Ran {
    let stdin = match stdin {
        Some(p) => std::fs::File::open(p)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()))
            .into(),
        None => Stdio::null(),
    };
    let run = spawn_with_deadline(
        Command::new(tracer_bin()).args(args),
        stdin,
        DEADLINE,
        String::new,
    );
    Ran {
        status: run.status().expect("ended"),
        stdout: run.stdout(),
        stderr: run.stderr(),
        command: run.command.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let s = summary_in(
            "tracer: skipped\ntracer: 1.40s, 92 records (exec 2, fork_failed 1, process 89), 4 events lost (exec 4; a larger --ring-size rides out bigger bursts)\ntracer: top forkers: 1 x (2)\n",
        )
        .expect("parses");
        assert_eq!((s.records, s.lost), (92, 4));
        assert_eq!(s.per_type.get("fork_failed"), Some(&1));
        assert_eq!(s.per_type.values().sum::<u64>(), 92);
        let empty = summary_in("tracer: 100.0ms, 0 records, 0 events lost\n").expect("parses");
        assert_eq!((empty.records, empty.lost, empty.per_type.len()), (0, 0, 0));
        let big = summary_in("tracer: 15.0s, 26,008 records (exec 26008), 1,200 events lost\n")
            .expect("parses");
        assert_eq!((big.records, big.lost), (26_008, 1_200));
        let one = summary_in("tracer: 1m05s, 1 record (meta 1), 1 event lost (exec 1)\n")
            .expect("parses");
        assert_eq!((one.records, one.lost, one.per_type.len()), (1, 1, 1));
        assert_eq!(summary_in("tracer: no process with pid 4\n"), None);
    }
}
