//! Kernel tests of `tracer watch` as a user drives it: following an existing pid
//! (`-p`), `--duration`, SIGINT/SIGTERM, refusing to run unprivileged or on bad
//! input, reporting lost events, the text format, `fork_failed` and `-o -`.
//!
//! Like tests/kernel.rs these run the real tracer (`TRACER_BIN`) on real workloads
//! and need root (`sudo cargo xtask test`). Every wait is for a condition with a
//! deadline ([`STEP_DEADLINE`]); no assertion depends on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use serde_json::Value;
use tracer_tests::{
    Proc, Rec, STEP_DEADLINE, Summary, Trace, complete_records, ensure, ensure_eq, facts_in,
    facts_of, poll_until, run_dir, summary_in, workload_bin,
};

/// comm of the workload (its file name is exactly 15 bytes, so not cut).
const WORKLOAD_COMM: &str = "tracer-workload";

/// Arguments of setpriv that drop root for the user nobody (uid/gid 65534, no
/// supplementary groups; changing uid from 0 clears the capabilities).
const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];
const NOBODY: u64 = 65534;

/// The `kind` values of `lost` records (docs/events.md).
const LOST_KINDS: [&str; 8] = [
    "fork",
    "exec",
    "exec_failed",
    "exit",
    "wait",
    "free",
    "fork_failed",
    "unknown",
];

/// clap's hint under a usage error; not part of the message itself.
const CLAP_HINT: &str = "For more information, try '--help'.";

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// setpriv (util-linux), looked up in PATH.
fn setpriv() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("setpriv"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("setpriv not found in PATH: install util-linux"))
}

/// Makes this test process a child subreaper: a process of a test that is orphaned
/// is reparented here rather than to init (kernel/exit.c, find_new_reaper), so the
/// test can reap it by pid. (Init of a container need not reap at all, and a
/// followed orphan that is never released would keep `-p` running.)
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            panic!(
                "PR_SET_CHILD_SUBREAPER: {}",
                std::io::Error::last_os_error()
            );
        }
    });
}

/// Reaps `pid`, a child of this (subreaper) process, waiting for it to end; false
/// if it did not within the deadline.
fn reap_child(pid: u32) -> bool {
    poll_until(STEP_DEADLINE, || {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        rc == pid as libc::pid_t || rc < 0
    })
}

/// The command line of process `pid` (NUL-separated arguments), if it is alive.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The state letter of process `pid` (`/proc/PID/stat` field 3), if it exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The stderr of a run that must fail on bad input: exactly one line saying what
/// is wrong (clap's hint line aside), no panic. Returns that line.
fn one_error_line<'a>(run: &Proc, stderr: &'a str) -> &'a str {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !stderr.contains(bad),
            "stderr has {bad:?}: a panic, not an error message\n{}",
            run.describe()
        );
    }
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != CLAP_HINT)
        .collect();
    match lines[..] {
        [line] => line,
        _ => panic!(
            "expected exactly one error line on stderr, got {}\n{}",
            lines.len(),
            run.describe()
        ),
    }
}

/// The end-of-run summary of `t`, checked against the records: the total and
/// per-type counts are what the output holds, and the lost total is the sum of
/// the `lost` records' counts.
fn check_summary(t: &Trace) -> Summary {
    let Some(sum) = summary_in(&t.stderr) else {
        t.fail(
            &[],
            "no summary line (`tracer: ... records ..., N events lost`) on stderr",
        )
    };
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in &t.records {
        *per_type.entry(r.ty().to_string()).or_default() += 1;
    }
    ensure_eq!(
        t,
        [],
        sum.records,
        t.records.len() as u64,
        "records in the summary line {:?}",
        sum.line
    );
    ensure_eq!(
        t,
        [],
        sum.per_type,
        per_type,
        "records per type in the summary line {:?}",
        sum.line
    );
    let lost: u64 = t
        .find("lost", |_| true)
        .iter()
        .filter_map(|r| r.u64("count"))
        .sum();
    ensure_eq!(
        t,
        [],
        sum.lost,
        lost,
        "events lost in the summary line {:?} vs the lost records",
        sum.line
    );
    sum
}

/// A JSON Lines output that is complete: not empty and ending with a newline (so
/// its last record was written whole; [`Trace::from_run`] checked every line).
fn check_complete(run: &Proc, content: &str, what: &str) {
    assert!(
        content.ends_with('\n'),
        "{what} does not end with a newline (last record cut or not flushed): {:?}\n{}",
        &content[content.len().saturating_sub(200)..],
        run.describe()
    );
}

/// The one record of type `ty` about process `pid`.
fn only<'t>(t: &'t Trace, ty: &str, pid: u32) -> &'t Rec {
    t.one(ty, &[pid], &format!("for process {pid}"), |r| {
        r.pid() == Some(pid) && !r.thread()
    })
}

/// `fork` of `pid` from `parent`, `exit` with `code` and, if `reaper` is given, a
/// `reap` by it after the exit.
fn check_life(t: &Trace, pid: u32, parent: u32, code: u64, reaper: Option<u32>) {
    let about = [parent, pid];
    let fork = only(t, "fork", pid);
    ensure_eq!(
        t,
        about,
        fork.ppid(),
        Some(parent),
        "ppid in the fork of {pid}"
    );
    ensure_eq!(
        t,
        about,
        fork.str("parent_proc_id"),
        Some(t.proc_id_of(parent).as_str()),
        "parent_proc_id in the fork of {pid}"
    );
    let exit = only(t, "exit", pid);
    ensure_eq!(
        t,
        about,
        exit.u64("exit_code"),
        Some(code),
        "exit_code of {pid}"
    );
    ensure!(
        t,
        about,
        fork.seq() < exit.seq(),
        "exit of {pid} before its fork"
    );
    if let Some(reaper) = reaper {
        let reap = only(t, "reap", pid);
        ensure_eq!(
            t,
            about,
            reap.u64("reaper_pid"),
            Some(u64::from(reaper)),
            "reaper of {pid}"
        );
        ensure!(
            t,
            about,
            exit.seq() < reap.seq(),
            "reap of {pid} before its exit"
        );
    }
}

/// The text lines on `stdout` with event label `label` about pid `pid`
/// (`04:13:22.200000  fork         1240 bash  <- 1234 bash`), ANSI colours removed.
fn text_lines(stdout: &str, label: &str, pid: u32) -> Vec<String> {
    stdout
        .lines()
        .map(strip_ansi)
        .filter(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some(label) && words.next() == Some(pid.to_string().as_str())
        })
        .collect()
}

/// Removes ANSI CSI sequences (`ESC [ ... final byte`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until the tracer has written a complete record for which `pred` holds
/// (the file is flushed at least every second), and returns it.
fn wait_record(run: &mut Proc, out: &Path, what: &str, pred: impl Fn(&Rec) -> bool) -> Rec {
    let mut found = None;
    let ok = poll_until(STEP_DEADLINE, || {
        found = complete_records(out).into_iter().find(|r| pred(r));
        found.is_some() || run.try_status().is_some()
    });
    match found {
        Some(r) => r,
        None => panic!(
            "{} while waiting for {what} in {}\n{}",
            if ok { "the tracer ended" } else { "timed out" },
            out.display(),
            run.describe()
        ),
    }
}

// ---------------------------------------------------------------------------
// -p PID

#[test]
fn follow_pid_records_its_subtree_only_and_ends_when_it_is_gone() {
    become_subreaper();
    let test_pid = std::process::id();
    let dir = run_dir("follow-pid");
    let out = dir.join("trace.jsonl");
    let workload = workload_bin();
    let mut wl = Proc::spawn(Command::new(&workload).arg("gated"), true);
    let me = wl.pid();
    let mut go = wl.stdin().expect("stdin piped");

    let mut tracer = Proc::tracer(&[
        "watch",
        "--format",
        "jsonl",
        "--quiet",
        "-o",
        s(&out),
        "-p",
        &me.to_string(),
    ]);
    // The start-up snapshot is written right after the programs are attached.
    wait_record(
        &mut tracer,
        &out,
        "the process record of the followed pid",
        |r| r.ty() == "process" && r.pid() == Some(me),
    );

    // Not a descendant: none of its records may appear.
    let unrelated = Command::new("/bin/sh")
        .args(["-c", "true"])
        .spawn()
        .expect("run sh");
    let unrelated_pid = unrelated.id();
    let st = unrelated.wait_with_output().expect("wait for sh").status;
    assert!(st.success(), "sh -c true: {st}");

    go.write_all(b"go\n").expect("release the workload");
    go.flush().expect("release the workload");
    if !poll_until(STEP_DEADLINE, || wl.try_status().is_some()) {
        panic!("the workload did not end\n{}", wl.describe());
    }
    let wl_status = wl.try_status().expect("ended");
    let mut facts = None;
    poll_until(STEP_DEADLINE, || {
        facts = facts_in(&wl.stdout());
        facts.is_some()
    });
    let Some(facts) = facts else {
        panic!("the workload printed no pids line\n{}", wl.describe());
    };
    assert_eq!(wl_status.code(), Some(0), "workload\n{}", wl.describe());
    let orphan = facts["orphan"].as_u64().expect("orphan pid") as u32;

    // The orphan is alive (blocked on stdin): the tracer must still be following.
    // Wait until it processed the workload's reap by this test, so a tracer that
    // stops at the followed pid's end would be stopping now.
    wait_record(&mut tracer, &out, "the reap of the followed pid", |r| {
        r.ty() == "reap" && r.pid() == Some(me)
    });
    assert!(
        tracer.try_status().is_none(),
        "the tracer ended while the orphan {orphan} of the followed process still ran\n{}",
        tracer.describe()
    );

    // End of file on stdin ends the orphan; it was reparented to this subreaper.
    drop(go);
    assert!(reap_child(orphan), "orphan {orphan} did not end");
    let status = tracer.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&tracer, &out, facts, &dir);
    drop(wl);

    let exec_child = t.pid("exec_child");
    let middle = t.pid("middle");
    let grandchild = t.pid("grandchild");
    let family = [me, exec_child, middle, grandchild, orphan];
    ensure_eq!(t, family, status.code(), Some(0), "tracer exit code");

    // Only the followed process was in the snapshot (it had no children yet).
    let snap = t.find("process", |_| true);
    ensure_eq!(
        t,
        family,
        snap.iter().map(|r| r.pid()).collect::<Vec<_>>(),
        vec![Some(me)],
        "pids of the process records"
    );
    let p = snap[0];
    ensure_eq!(
        t,
        family,
        p.ppid(),
        Some(test_pid),
        "ppid of the followed process"
    );
    ensure_eq!(
        t,
        family,
        p.argv(),
        vec![s(&workload), "gated"],
        "argv of the followed process"
    );
    ensure_eq!(t, family, p.str("comm"), Some(WORKLOAD_COMM), "comm");

    // Nothing about anything else.
    let strays: Vec<&Rec> = t
        .records
        .iter()
        .filter(|r| r.pid().is_some_and(|p| !family.contains(&p)))
        .collect();
    ensure!(
        t,
        family,
        strays.is_empty(),
        "records about processes outside the followed tree (sh -c true was {unrelated_pid}):\n{}",
        strays
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );

    check_life(&t, exec_child, me, 0, Some(me));
    let exec = only(&t, "exec", exec_child);
    ensure_eq!(
        t,
        family,
        exec.str("filename"),
        Some("/bin/true"),
        "exec filename"
    );
    check_life(&t, middle, me, 4, Some(me));
    check_life(&t, grandchild, middle, 3, Some(middle));
    check_life(&t, orphan, me, 0, Some(test_pid));
    ensure_eq!(
        t,
        family,
        only(&t, "exit", orphan).ppid(),
        Some(test_pid),
        "parent of the orphan at its exit (the subreaper that adopted it)"
    );
    ensure!(
        t,
        family,
        only(&t, "exit", orphan).seq() > only(&t, "exit", me).seq(),
        "the orphan exits after the followed process"
    );
    let me_exit = only(&t, "exit", me);
    ensure_eq!(
        t,
        family,
        me_exit.u64("exit_code"),
        Some(0),
        "exit_code of {me}"
    );
    ensure_eq!(
        t,
        family,
        only(&t, "reap", me).u64("reaper_pid"),
        Some(u64::from(test_pid)),
        "reaper of the followed process (this test)"
    );
    check_summary(&t);
}

#[test]
fn follow_nonexistent_pid_is_one_clear_error() {
    // Above PID_MAX_LIMIT (4194304): no process can have it.
    let pid = "999999999";
    let mut run = Proc::tracer(&["watch", "--quiet", "-p", pid]);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(
        !status.success(),
        "exit status {status}\n{}",
        run.describe()
    );
    let stderr = run.stderr();
    let line = one_error_line(&run, &stderr);
    assert!(
        line.contains(pid) && line.starts_with("tracer: "),
        "the error line does not name pid {pid}: {line:?}"
    );
}

// ---------------------------------------------------------------------------
// --duration

#[test]
fn duration_ends_the_run_with_complete_output_and_summary() {
    let dir = run_dir("duration");
    let out = dir.join("trace.jsonl");
    let mut run = Proc::tracer(&[
        "watch",
        "--format",
        "jsonl",
        "--quiet",
        "-o",
        s(&out),
        "--duration",
        "1s",
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, Value::Null, &dir);
    ensure_eq!(t, [], status.code(), Some(0), "tracer exit code");
    // No filter: the snapshot holds every process, this test and the tracer included.
    for pid in [std::process::id(), run.pid()] {
        ensure_eq!(
            t,
            [pid],
            t.find("process", |r| r.pid() == Some(pid)).len(),
            1,
            "process records of {pid}"
        );
    }
    check_summary(&t);
}

// ---------------------------------------------------------------------------
// SIGINT, SIGTERM

/// Traces everything, runs `fork-exit` once attached, stops the tracer with `sig`.
fn stops_on_signal(sig: i32, label: &str) {
    let dir = run_dir(label);
    let out = dir.join("trace.jsonl");
    let mut run = Proc::tracer(&["watch", "--color", "never", "-o", s(&out)]);
    wait_record(&mut run, &out, "a first record", |_| true);

    let wl = Command::new(workload_bin())
        .arg("fork-exit")
        .output()
        .expect("run the workload");
    let wl_stdout = String::from_utf8_lossy(&wl.stdout);
    assert!(
        wl.status.success(),
        "workload: {}\n{wl_stdout}\n{}",
        wl.status,
        String::from_utf8_lossy(&wl.stderr)
    );
    let facts = facts_in(&wl_stdout).expect("the workload's pids line");

    // Its events are all in the ring buffer now; the tracer must take them before
    // it ends.
    run.signal(sig);
    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, facts, &dir);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    ensure_eq!(
        t,
        about,
        status.code(),
        Some(0),
        "tracer exit code after {label}"
    );
    let exec = only(&t, "exec", me);
    ensure!(
        t,
        about,
        exec.str("filename")
            .is_some_and(|f| f.ends_with("/tracer-workload"))
            && exec.argv().get(1) == Some(&"fork-exit"),
        "exec of the workload: {exec}"
    );
    check_life(&t, child, me, 7, None);
    ensure_eq!(
        t,
        about,
        only(&t, "exit", me).u64("exit_code"),
        Some(0),
        "workload exit"
    );
    // The text on stdout was flushed as well.
    for label in ["fork", "exit"] {
        ensure!(
            t,
            about,
            text_lines(&t.stdout, label, child).len() == 1,
            "no {label} line for {child} on stdout:\n{}",
            t.stdout
                .lines()
                .filter(|l| l.contains(&child.to_string()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    check_summary(&t);
}

#[test]
fn sigint_stops_tracing_everything_cleanly() {
    stops_on_signal(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_stops_tracing_everything_cleanly() {
    stops_on_signal(libc::SIGTERM, "sigterm");
}

/// `-- sleep 30`: the signal ends the tracer with 128 + signal (as a shell reports
/// a command killed by it; tracer/src/watch/mod.rs), output complete.
fn command_stops_on_signal(sig: i32, label: &str) {
    become_subreaper();
    let dir = run_dir(label);
    let out = dir.join("trace.jsonl");
    let mut run = Proc::tracer(&[
        "watch",
        "--format",
        "jsonl",
        "--quiet",
        "-o",
        s(&out),
        "--",
        "sleep",
        "30",
    ]);
    let exec = wait_record(&mut run, &out, "the exec of sleep", |r| {
        r.ty() == "exec" && r.argv() == ["sleep", "30"]
    });
    let sleep = exec.pid().expect("exec has a pid");
    run.signal(sig);
    let status = run.wait_exit_within(STEP_DEADLINE);

    // SIGTERM is passed on to the command (as `timeout` does); SIGINT is not (from
    // a terminal the command gets it directly), so `sleep` lives on, adopted by this
    // subreaper.
    let is_alive = || {
        proc_state(sleep).is_some_and(|c| c != 'Z')
            && cmdline(sleep).is_some_and(|a| a == ["sleep", "30"])
    };
    if sig == libc::SIGTERM {
        assert!(
            poll_until(STEP_DEADLINE, || !is_alive()),
            "{label}: `sleep 30` (pid {sleep}) still runs after the tracer got SIGTERM"
        );
    }
    let alive = is_alive();
    if alive {
        // SAFETY: pid checked just above to be our sleep; it is our child now.
        unsafe { libc::kill(sleep as libc::pid_t, libc::SIGKILL) };
    }
    reap_child(sleep);
    // Now that sleep no longer holds them, take all of stdout and stderr.
    run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, Value::Null, &dir);
    ensure_eq!(
        t,
        [sleep],
        status.code(),
        Some(128 + sig),
        "tracer exit code after {label} with a running command"
    );
    let fork = only(&t, "fork", sleep);
    ensure_eq!(
        t,
        [sleep],
        fork.ppid(),
        Some(t.tracer_pid),
        "sleep's parent"
    );
    ensure_eq!(
        t,
        [sleep],
        t.records.iter().filter(|r| r.ty() == "process").count(),
        0,
        "process records with a command (its tree did not exist at start)"
    );
    check_summary(&t);
}

#[test]
fn sigterm_ends_a_command_run_with_143() {
    command_stops_on_signal(libc::SIGTERM, "sigterm-command");
}

#[test]
fn sigint_ends_a_command_run_with_130() {
    command_stops_on_signal(libc::SIGINT, "sigint-command");
}

// ---------------------------------------------------------------------------
// Refusals

#[test]
fn unprivileged_is_one_line_asking_for_root() {
    let tracer = tracer_tests::tracer_bin();
    let mut run = Proc::spawn(
        Command::new(setpriv())
            .args(AS_NOBODY)
            .arg(&tracer)
            .args(["watch", "--quiet"]),
        false,
    );
    let status = run.wait_within(STEP_DEADLINE);
    assert!(
        !status.success(),
        "exit status {status}\n{}",
        run.describe()
    );
    let stderr = run.stderr();
    let line = one_error_line(&run, &stderr);
    assert!(
        line.contains("root") && line.contains("sudo"),
        "the error does not say root is needed and how (sudo): {line:?}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "stderr must be exactly one line\n{}",
        run.describe()
    );
}

/// `tracer watch ARGS` fails at once with one line that names `bad` and contains `hint`.
fn refuses(args: &[&str], bad: &str, hint: &str) {
    let mut all = vec!["watch"];
    all.extend_from_slice(args);
    let mut run = Proc::tracer(&all);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(
        !status.success() && status.code().is_some(),
        "exit status {status} for bad input\n{}",
        run.describe()
    );
    let stderr = run.stderr();
    let line = one_error_line(&run, &stderr);
    assert!(
        line.contains(bad) && line.contains(hint),
        "the error line should name {bad:?} and say {hint:?}: {line:?}"
    );
}

#[test]
fn ring_size_not_a_power_of_two_is_refused() {
    refuses(&["--ring-size", "3M"], "3M", "power of two");
}

#[test]
fn duration_with_unknown_unit_is_refused() {
    refuses(&["--duration", "5x"], "5x", "ms, s, m, h");
}

#[test]
fn output_in_missing_directory_is_refused() {
    let dir = Path::new("/nonexistent-dir");
    assert!(!dir.exists(), "{} exists on this machine", dir.display());
    refuses(
        &["--quiet", "-o", "/nonexistent-dir/x.jsonl"],
        "/nonexistent-dir/x.jsonl",
        "directory exists",
    );
    assert!(!dir.exists(), "the tracer created {}", dir.display());
}

// ---------------------------------------------------------------------------
// Lost events

#[test]
fn lost_events_are_recorded_and_summed() {
    const N: &str = "2000";
    let dir = run_dir("lost");
    let out = dir.join("trace.jsonl");
    let workload = workload_bin();
    let mut run = Proc::tracer(&[
        "watch",
        "--ring-size",
        "4K",
        "--quiet",
        "-o",
        s(&out),
        "--",
        s(&workload),
        "storm-gated",
        s(&dir),
        N,
    ]);
    // A stalled consumer: the tracer is stopped while the storm runs, so its 4 KiB
    // ring fills after a few dozen events and the kernel programs count the rest.
    // (A 4K ring alone lost events in only some runs on a 2-core machine.)
    if !poll_until(STEP_DEADLINE, || {
        dir.join("ready").exists() || run.try_status().is_some()
    }) {
        panic!("the workload never got ready\n{}", run.describe());
    }
    run.signal(libc::SIGSTOP);
    std::fs::write(dir.join("go"), "").expect("write the go file");
    let stormed = poll_until(STEP_DEADLINE, || dir.join("done").exists());
    run.signal(libc::SIGCONT);
    assert!(stormed, "the storm did not finish\n{}", run.describe());

    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, Value::Null, &dir);
    ensure_eq!(
        t,
        [],
        status.code(),
        Some(3),
        "tracer exit code (the workload's 0, but events were lost)"
    );
    let lost = t.find("lost", |_| true);
    ensure!(
        t,
        [],
        !lost.is_empty(),
        "no lost record after a stalled storm"
    );
    for r in &lost {
        ensure!(
            t,
            [],
            r.u64("count").is_some_and(|n| n > 0),
            "lost record without a positive count: {r}"
        );
        ensure!(
            t,
            [],
            r.str("kind").is_some_and(|k| LOST_KINDS.contains(&k)),
            "lost record with an unknown kind: {r}"
        );
    }
    let sum = check_summary(&t);
    ensure!(
        t,
        [],
        sum.lost > 0,
        "the summary says nothing was lost: {:?}",
        sum.line
    );
}

#[test]
fn follow_pid_ends_even_after_lost_events() {
    let dir = run_dir("follow-lost");
    let out = dir.join("trace.jsonl");
    let mut wl = Proc::spawn(
        Command::new(workload_bin()).args(["storm-gated", s(&dir), "2000"]),
        false,
    );
    let me = wl.pid();
    if !poll_until(STEP_DEADLINE, || {
        dir.join("ready").exists() || wl.try_status().is_some()
    }) {
        panic!("the workload never got ready\n{}", wl.describe());
    }
    let mut run = Proc::tracer(&[
        "watch",
        "--ring-size",
        "4K",
        "--format",
        "jsonl",
        "--quiet",
        "-o",
        s(&out),
        "-p",
        &me.to_string(),
    ]);
    wait_record(
        &mut run,
        &out,
        "the process record of the followed pid",
        |r| r.ty() == "process" && r.pid() == Some(me),
    );
    // Stalled while the followed process storms: most of its events are lost.
    run.signal(libc::SIGSTOP);
    std::fs::write(dir.join("go"), "").expect("write the go file");
    let stormed = poll_until(STEP_DEADLINE, || dir.join("done").exists());
    run.signal(libc::SIGCONT);
    assert!(stormed, "the storm did not finish\n{}", wl.describe());
    let wl_status = wl.wait_within(STEP_DEADLINE);
    assert_eq!(wl_status.code(), Some(0), "workload\n{}", wl.describe());

    // The followed tree is gone (the workers reaped every child, this test reaped
    // the workload): the tracer must notice and end by itself.
    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, Value::Null, &dir);
    ensure_eq!(
        t,
        [me],
        status.code(),
        Some(3),
        "tracer exit code (events lost)"
    );
    ensure!(
        t,
        [me],
        !t.find("lost", |_| true).is_empty(),
        "no lost record after a stalled storm"
    );
    check_summary(&t);
}

// ---------------------------------------------------------------------------
// Output forms

/// Runs `tracer watch --color WHEN -- tracer-workload fork-exit` (text on stdout).
fn text_run(when: &str) -> (Proc, u32, u32) {
    let mut run = Proc::tracer(&[
        "watch",
        "--color",
        when,
        "--",
        s(&workload_bin()),
        "fork-exit",
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", run.describe());
    let facts = facts_of(&run);
    let pid = |k: &str| facts[k].as_u64().expect("pid") as u32;
    let (me, child) = (pid("self"), pid("child"));
    (run, me, child)
}

#[test]
fn text_output_shows_fork_exit_reap() {
    let (run, me, child) = text_run("never");
    let stdout = run.stdout();
    assert!(
        !stdout.contains('\u{1b}'),
        "--color never wrote an escape\n{}",
        run.describe()
    );
    for label in ["fork", "exit", "reap"] {
        let lines = text_lines(&stdout, label, child);
        assert_eq!(
            lines.len(),
            1,
            "{label} lines of {child}\n{}",
            run.describe()
        );
    }
    let exit = &text_lines(&stdout, "exit", child)[0];
    assert!(
        exit.contains("code=7"),
        "exit line without code=7: {exit:?}"
    );
    let reap = &text_lines(&stdout, "reap", child)[0];
    assert!(
        reap.contains(&format!("by {me} ")),
        "reap line does not name the reaper {me}: {reap:?}"
    );
    assert!(
        summary_in(&run.stderr()).is_some(),
        "no summary\n{}",
        run.describe()
    );
}

#[test]
fn color_always_adds_ansi_escapes() {
    let (run, _, child) = text_run("always");
    let stdout = run.stdout();
    let coloured: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(&format!(" {child} ")) && l.contains("\u{1b}["))
        .collect();
    assert!(
        coloured.len() >= 3,
        "--color always: fewer than 3 coloured lines about {child}\n{}",
        run.describe()
    );
    for label in ["fork", "exit", "reap"] {
        assert_eq!(
            text_lines(&stdout, label, child).len(),
            1,
            "{label} line of {child} once colours are removed\n{}",
            run.describe()
        );
    }
}

#[test]
fn output_dash_writes_jsonl_to_stdout() {
    let dir = run_dir("stdout");
    let facts_file = dir.join("pids");
    // The workload's own stdout goes to a file, so stdout carries only JSON Lines;
    // `exec` keeps the shell's pid.
    let mut run = Proc::tracer(&[
        "watch",
        "-o",
        "-",
        "--",
        "/bin/sh",
        "-c",
        "exec \"$0\" fork-exit > \"$1\"",
        s(&workload_bin()),
        s(&facts_file),
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    let stdout = run.stdout();
    check_complete(&run, &stdout, "stdout");
    let facts = std::fs::read_to_string(&facts_file)
        .ok()
        .and_then(|f| facts_in(&f))
        .unwrap_or_else(|| {
            panic!(
                "no pids line in {}\n{}",
                facts_file.display(),
                run.describe()
            )
        });
    let t = Trace::from_run(&run, &stdout, Path::new("-"), facts, &dir);
    let me = t.workload_pid();
    let child = t.pid("child");
    ensure_eq!(t, [me, child], status.code(), Some(0), "tracer exit code");
    check_life(&t, child, me, 7, Some(me));
    let execs: BTreeSet<&str> = t
        .find("exec", |r| r.pid() == Some(me))
        .iter()
        .filter_map(|r| r.str("filename"))
        .collect();
    ensure!(
        t,
        [me],
        execs.contains("/bin/sh") && execs.iter().any(|f| f.ends_with("/tracer-workload")),
        "execs of {me}: {execs:?}"
    );
    check_summary(&t);
}

// ---------------------------------------------------------------------------
// fork_failed

#[test]
fn fork_failed_under_rlimit_nproc() {
    let dir = run_dir("fork-fail");
    let out = dir.join("trace.jsonl");
    let setpriv = setpriv();
    let mut args = vec!["watch", "--quiet", "-o", s(&out), "--", s(&setpriv)];
    args.extend(AS_NOBODY);
    let workload = workload_bin();
    args.extend([s(&workload), "fork-fail"]);
    let mut run = Proc::tracer(&args);
    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, facts_of(&run), &dir);
    let me = t.workload_pid();
    let children = t.pids("children");
    let mut about = children.clone();
    about.push(me);
    ensure_eq!(
        t,
        about,
        status.code(),
        Some(0),
        "tracer exit code (the workload's)"
    );
    let failed = t.find("fork_failed", |r| r.pid() == Some(me));
    ensure!(
        t,
        about,
        !failed.is_empty(),
        "no fork_failed record of {me}"
    );
    for f in &failed {
        ensure_eq!(t, about, f.u64("errno"), Some(11), "errno of {f}");
        ensure_eq!(t, about, f.str("error"), Some("EAGAIN"), "error of {f}");
        ensure_eq!(t, about, f.tid(), Some(me), "tid of {f}");
        ensure_eq!(t, about, f.u64("uid"), Some(NOBODY), "uid of {f}");
        ensure_eq!(t, about, f.str("comm"), Some(WORKLOAD_COMM), "comm of {f}");
        ensure_eq!(
            t,
            about,
            f.str("proc_id"),
            Some(t.proc_id_of(me).as_str()),
            "proc_id of {f}"
        );
    }
    // The forks before the limit succeeded and were recorded as forks.
    for &c in &children {
        check_life(&t, c, me, 0, Some(me));
        ensure!(
            t,
            about,
            only(&t, "fork", c).seq() < failed[0].seq(),
            "fork_failed before the successful fork of {c}"
        );
    }
    check_summary(&t);
}

// ---------------------------------------------------------------------------
// Summary: top forkers

#[test]
fn top_forkers_are_named_by_comm() {
    let dir = run_dir("top-forkers");
    let out = dir.join("trace.jsonl");
    let mut run = Proc::tracer(&[
        "watch",
        "--quiet",
        "-o",
        s(&out),
        "--",
        s(&workload_bin()),
        "fork-on-cpus",
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    let t = Trace::from_output(&run, &out, facts_of(&run), &dir);
    let me = t.workload_pid();
    let children = t.pids("children");
    ensure_eq!(t, [me], status.code(), Some(0), "tracer exit code");
    let Some(line) = t
        .stderr
        .lines()
        .find(|l| l.starts_with("tracer: top forkers: "))
    else {
        t.fail(&[me], "no `tracer: top forkers:` line on stderr")
    };
    let want = format!("{me} {WORKLOAD_COMM} ({})", children.len());
    ensure!(
        t,
        [me],
        line.split(": ")
            .nth(2)
            .is_some_and(|list| list.split(", ").any(|f| f == want)),
        "top forkers line {line:?} lacks {want:?} (the workload forked on CPUs {})",
        t.fact("cpus")
    );
}

// ---------------------------------------------------------------------------
// Hints that point the right way (issue 14 papercuts)

/// `tracer watch ARGS` with PATH set to `path`: its exit code and its one stderr line.
fn refused_line(args: &[&std::ffi::OsStr], path: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new(tracer_tests::tracer_bin());
    cmd.arg("watch").args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut run = Proc::spawn(&mut cmd, false);
    let code = run.wait_within(STEP_DEADLINE).code();
    let stderr = run.stderr();
    (code, one_error_line(&run, &stderr).to_string())
}

#[test]
fn output_that_is_a_directory_is_refused_as_one() {
    let dir = tracer_tests::run_dir("out-dir");
    let (code, line) = refused_line(&["--quiet".as_ref(), "-o".as_ref(), dir.as_os_str()], None);
    assert_eq!(code, Some(2), "{line}");
    assert!(
        line.contains(dir.to_str().unwrap()) && line.contains("is a directory: give a file name"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jsonl_on_stdout_with_format_text_is_refused() {
    let (code, line) = refused_line(
        &["-o", "-", "--format", "text"].map(std::ffi::OsStr::new),
        None,
    );
    assert_eq!(code, Some(2), "{line}");
    assert!(
        line.contains("--format text") && line.contains("-o -"),
        "{line}"
    );
}

#[test]
fn missing_command_exits_127_and_a_non_executable_one_126() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tracer_tests::run_dir("cmd");
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.join("out.jsonl");
    let path = format!("{}:/usr/bin:/bin", dir.display());
    for (prog, code, hint) in [
        ("no-such-command-here", 127, "not found"),
        ("script.sh", 126, "not executable"),
        (script.to_str().unwrap(), 126, "not executable"),
        (dir.to_str().unwrap(), 126, "a directory"),
    ] {
        let args = ["--quiet", "-o", out.to_str().unwrap(), "--", prog];
        let (got, line) = refused_line(&args.map(std::ffi::OsStr::new), Some(&path));
        assert_eq!(got, Some(code), "{prog}: {line}");
        assert!(line.contains(prog) && line.contains(hint), "{prog}: {line}");
        assert!(!out.exists(), "{prog}: an output file was left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tracers_own_path_search_leaves_no_exec_failed() {
    let dir = tracer_tests::run_dir("path-search");
    let out = dir.join("out.jsonl");
    let mut cmd = Command::new(tracer_tests::tracer_bin());
    cmd.args(["watch", "--quiet", "-o"])
        .arg(&out)
        .args(["--", "true"])
        .env("PATH", "/nonexistent-a:/nonexistent-b:/usr/bin:/bin");
    let mut run = Proc::spawn(&mut cmd, false);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(status.success(), "{}", run.describe());
    let content = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no readable output: {e}\n{}", run.describe()));
    let recs = tracer_tests::parse_records(&content).expect("whole records");
    let execs: Vec<&Rec> = recs.iter().filter(|r| r.ty() == "exec").collect();
    assert_eq!(execs.len(), 1, "the command's exec\n{content}");
    assert!(
        execs[0]
            .str("filename")
            .is_some_and(|f| f.ends_with("/true")),
        "{content}"
    );
    let failed: Vec<&Rec> = recs.iter().filter(|r| r.ty() == "exec_failed").collect();
    assert!(failed.is_empty(), "tracer's own PATH misses: {failed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// The terminal view: header, local time, PATH misses folded

/// Runs `TZ=tz tracer watch --color never -o FILE [flags] -- /usr/bin/env PATH=path CMD`:
/// env(1) runs CMD through execvp, which tries each PATH entry in turn.
fn env_run(
    label: &str,
    tz: &str,
    flags: &[&str],
    path: &str,
    cmd: &str,
) -> (Proc, Option<i32>, Vec<Rec>) {
    let dir = run_dir(label);
    let out = dir.join("trace.jsonl");
    let path_var = format!("PATH={path}");
    let mut args = vec!["watch", "--color", "never", "-o", s(&out)];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "/usr/bin/env", &path_var, cmd]);
    let mut run = Proc::spawn(
        Command::new(tracer_tests::tracer_bin())
            .env("TZ", tz)
            .args(&args),
        false,
    );
    let code = run.wait_within(STEP_DEADLINE).code();
    let records = complete_records(&out);
    (run, code, records)
}

/// The pid that exec'd `filename` in `records`.
fn exec_pid(run: &Proc, records: &[Rec], filename: &str) -> u32 {
    records
        .iter()
        .find(|r| r.ty() == "exec" && r.str("filename") == Some(filename))
        .and_then(Rec::pid)
        .unwrap_or_else(|| panic!("no exec of {filename} recorded\n{}", run.describe()))
}

/// `HH:MM:SS.uuuuuu` of an RFC 3339 UTC `ts`, shifted by `hours`.
fn time_of_day(ts: &str, hours: u32) -> String {
    let hms = &ts[11..26];
    let h: u32 = hms[..2].parse().expect("hour");
    format!("{:02}{}", (h + hours) % 24, &hms[2..])
}

#[test]
fn terminal_header_local_time_and_path_misses_folded() {
    // POSIX TZ "TST-3": a zone called TST, 3 hours east of UTC.
    let (run, _, records) = env_run(
        "path-misses",
        "TST-3",
        &[],
        "/nonexistent-a:/nonexistent-b:/usr/bin:/bin",
        "true",
    );
    let stdout = run.stdout();
    let pid = exec_pid(&run, &records, "/usr/bin/true");
    // The file keeps every miss.
    let misses: Vec<&Rec> = records
        .iter()
        .filter(|r| r.ty() == "exec_failed" && r.pid() == Some(pid))
        .collect();
    let names: Vec<&str> = misses.iter().filter_map(|r| r.str("filename")).collect();
    assert_eq!(
        names,
        ["/nonexistent-a/true", "/nonexistent-b/true"],
        "{}",
        run.describe()
    );
    // The terminal: a header naming the columns, with the date and zone.
    let first = stdout.lines().next().unwrap_or_default();
    let exec = records
        .iter()
        .find(|r| r.ty() == "exec" && r.str("filename") == Some("/usr/bin/true"))
        .expect("found above");
    let ts = exec.str("ts").expect("ts");
    assert!(
        first.starts_with("TIME             EVENT         PID NAME  DETAILS  [")
            && first.ends_with(", local time TST (UTC+03:00)]"),
        "header line {first:?}\n{}",
        run.describe()
    );
    // No exec-fail line for the misses: one exec line that counts them, in
    // local time, with ppid and uid.
    assert!(
        text_lines(&stdout, "exec-fail", pid).is_empty(),
        "{}",
        run.describe()
    );
    let lines = text_lines(&stdout, "exec", pid);
    assert_eq!(lines.len(), 2, "env's exec and true's\n{}", run.describe());
    let line = &lines[1];
    let ppid = exec.ppid().expect("ppid");
    let uid = exec.u64("uid").expect("uid");
    assert_eq!(
        line,
        &format!(
            "{}  exec      {pid:>7} /usr/bin/true  ppid={ppid} uid={uid}  true  (after 2 PATH misses)",
            time_of_day(ts, 3)
        ),
        "{}",
        run.describe()
    );
}

#[test]
fn unanswered_path_misses_are_shown_and_utc_says_so() {
    let (run, code, records) = env_run(
        "path-misses-unanswered",
        "TST-3",
        &["--utc"],
        "/nonexistent-a:/nonexistent-b",
        "tracer-no-such-command",
    );
    assert_eq!(
        code,
        Some(127),
        "env's status for a command it cannot find\n{}",
        run.describe()
    );
    let stdout = run.stdout();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.ends_with(", UTC]"),
        "header {first:?}\n{}",
        run.describe()
    );
    let pid = exec_pid(&run, &records, "/usr/bin/env");
    let failed: Vec<&Rec> = records
        .iter()
        .filter(|r| r.ty() == "exec_failed" && r.pid() == Some(pid))
        .collect();
    assert_eq!(failed.len(), 2, "{}", run.describe());
    // Both shown as they are, at UTC times (no exec followed to fold them into).
    let lines = text_lines(&stdout, "exec-fail", pid);
    let want: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "{}  exec-fail {pid:>7} env  {}: ENOENT",
                time_of_day(r.str("ts").expect("ts"), 0),
                r.str("filename").expect("filename")
            )
        })
        .collect();
    assert_eq!(lines, want, "{}", run.describe());
}

/// The tracer forks COMMAND outside the traced tree: every summary line names
/// it the same way (the kernel's comm), never `?`; and the kernel's counts say
/// they are the whole machine's.
#[test]
fn summary_names_the_tracer_one_way_and_says_what_kernel_counts_cover() {
    let mut run = Proc::tracer(&["watch", "--quiet", "--", "/bin/sh", "-c", "/bin/true"]);
    let status = run.wait_within(STEP_DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", run.describe());
    let stderr = run.stderr();
    let me = format!("{} tracer", run.pid());
    let line = |prefix: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{}", run.describe()))
            .to_string()
    };
    let top = line("tracer: top forkers: ");
    assert!(top.contains(&format!("{me} (1)")), "{top}");
    let peaks = line("tracer: peak fork rates: ");
    assert!(
        peaks.contains(&format!("by parent {me} ")) || peaks.contains(&format!(", {me} ")),
        "{peaks}"
    );
    assert!(!peaks.contains(" ? "), "{peaks}");
    let kernel = line("tracer: the kernel saw (");
    assert!(
        kernel.contains("all processes on this machine, not only those followed"),
        "{kernel}"
    );
}
