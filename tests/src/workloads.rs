//! The `tracer-workload` binary (tests/src/bin) the kernel tests trace: where it
//! is, the `pids:` line in which it reports the processes it made, and where
//! its orphans can go.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::child::Proc;

/// The workload binary: `TRACER_WORKLOAD`, or `tracer-workload` in the directory
/// above the test executable's (cargo puts test executables in `<profile>/deps`
/// and builds the package's binaries into `<profile>` before running them).
pub fn workload_bin() -> PathBuf {
    let path = match std::env::var_os("TRACER_WORKLOAD") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("path of the test executable");
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable in <profile>/deps");
            profile.join("tracer-workload")
        }
    };
    if !path.is_file() {
        panic!(
            "workload binary not found at {}: build it with `cargo build -p tracer-tests` or set TRACER_WORKLOAD",
            path.display()
        );
    }
    path
}

/// The pids from this test process up to init: the processes an orphan of the run can
/// be reparented to (besides the tracer), whichever of them is a subreaper.
pub fn ancestors_of_self() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    while pid != 0 && !out.contains(&pid) {
        out.push(pid);
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            break;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            break;
        };
        // After the comm: state, then ppid.
        pid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    out
}

/// The workload's `pids:` line in what `run` printed; fails the test if there is
/// none that parses.
pub fn facts_of(run: &Proc) -> Value {
    facts_in(&run.stdout()).unwrap_or_else(|| {
        panic!(
            "the workload printed no `pids:` line that parses\n{}",
            run.describe()
        )
    })
}

/// The JSON of a workload's `pids: {...}` line in `stdout`.
pub fn facts_in(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .and_then(|j| serde_json::from_str(j).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_end_at_init() {
        let a = ancestors_of_self();
        assert_eq!(a.first(), Some(&std::process::id()));
        assert_eq!(a.last(), Some(&1), "{a:?}");
    }
}
