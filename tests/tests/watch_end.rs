//! Kernel tests of how a `tracer watch` run ends: Ctrl-C with a command, the
//! `end` record, a closed stdout, lost records in the exit status, and the exit
//! statuses README promises.
//!
//! Like tests/watch_cli.rs these run the real tracer (`TRACER_BIN`) on real
//! workloads and need root. Every wait is for a record or an exit, with a deadline.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

use tracer_tests::{
    Proc, Rec, STEP_DEADLINE, complete_records, poll_until, run_dir, tracer_bin, workload_bin,
};

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Waits until the tracer has written a complete record for which `pred` holds
/// (the file is flushed at least every second), and returns it.
fn wait_record(run: &mut Proc, out: &Path, what: &str, pred: impl Fn(&Rec) -> bool) -> Rec {
    let mut found = None;
    let ok = poll_until(STEP_DEADLINE, || {
        found = complete_records(out).into_iter().find(|r| pred(r));
        found.is_some() || run.try_status().is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "{} while waiting for {what} in {}\n{}",
            if ok { "the tracer ended" } else { "timed out" },
            out.display(),
            run.describe()
        )
    })
}

/// Every record of a finished run's file, which must end with a whole line.
fn records(run: &Proc, out: &Path) -> Vec<Rec> {
    let content = std::fs::read_to_string(out)
        .unwrap_or_else(|e| panic!("no output {}: {e}\n{}", out.display(), run.describe()));
    assert!(
        content.ends_with('\n'),
        "{} does not end with a whole line\n{}",
        out.display(),
        run.describe()
    );
    // Each line checked against the schema; `seq` goes on from file to file, so a
    // rotated file does not start at 1.
    content
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {e}: {l}\n{}", out.display(), run.describe()));
            tracer_tests::check_record(&v)
                .unwrap_or_else(|e| panic!("{}: {e}: {l}\n{}", out.display(), run.describe()));
            Rec(v)
        })
        .collect()
}

/// Bug: about one Ctrl-C in seven lost the command's `exit`, as tracer stopped
/// before the command's death reached the ring buffer. Twenty runs, each of
/// which must have it: SIGINT goes to tracer's process group as a terminal
/// sends it, once the command's exec is in the file.
#[test]
fn ctrl_c_keeps_the_commands_exit_every_time() {
    let dir = run_dir("ctrl-c-exit");
    for i in 0..20 {
        let out = dir.join(format!("run{i}.jsonl"));
        let mut run = Proc::tracer(&[
            "watch",
            "--quiet",
            "-o",
            s(&out),
            "--",
            "bash",
            "-c",
            "sleep 30",
        ]);
        let exec = wait_record(&mut run, &out, "the exec of sleep", |r| {
            r.ty() == "exec" && r.argv() == ["sleep", "30"]
        });
        let pid = exec.pid().expect("exec has a pid");
        run.signal_group(libc::SIGINT);
        let status = run.wait_within(STEP_DEADLINE);
        let recs = records(&run, &out);
        let exit = recs
            .iter()
            .find(|r| r.ty() == "exit" && r.pid() == Some(pid) && !r.thread());
        let Some(exit) = exit else {
            panic!(
                "run {i}: no exit record for the command (pid {pid}) after Ctrl-C\n{}",
                run.describe()
            )
        };
        assert_eq!(
            exit.u64("signal"),
            Some(libc::SIGINT as u64),
            "run {i}: {exit}"
        );
        assert!(
            recs.iter()
                .any(|r| r.ty() == "reap" && r.pid() == Some(pid)),
            "run {i}: no reap record for pid {pid}\n{}",
            run.describe()
        );
        assert_eq!(
            status.code(),
            Some(128 + libc::SIGINT),
            "run {i}: tracer's status is the command's (killed by SIGINT)\n{}",
            run.describe()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run's last record: an `end` with this reason.
fn check_end(run: &Proc, recs: &[Rec], reason: &str) {
    let last = recs.last().expect("records");
    assert!(
        last.ty() == "end" && last.str("reason") == Some(reason),
        "the last record is not an end with reason {reason:?}: {last}\n{}",
        run.describe()
    );
    // Its totals are the run's records before it, in this file and earlier
    // ones: with nothing left unwritten, every one took a `seq`.
    let before = last.seq() - 1;
    let total: u64 = last
        .get("records")
        .as_object()
        .expect("records object")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(
        total,
        before,
        "end's records vs its seq: {last}\n{}",
        run.describe()
    );
}

/// Runs `tracer watch --quiet -o FILE EXTRA...` to its end.
fn watch_to_end(label: &str, extra: &[&str]) -> (Proc, std::process::ExitStatus, Vec<Rec>) {
    let dir = run_dir(label);
    let out = dir.join("trace.jsonl");
    let mut args = vec!["watch", "--quiet", "-o", s(&out)];
    args.extend_from_slice(extra);
    let mut run = Proc::tracer(&args);
    let status = run.wait_within(STEP_DEADLINE);
    let recs = records(&run, &out);
    // What a failure needs to show is in `recs` and the run's output.
    let _ = std::fs::remove_dir_all(&dir);
    (run, status, recs)
}

/// README: a COMMAND killed by a signal makes tracer exit 128 + N, as a shell
/// reports it; the file ends with `end`, reason `command`.
#[test]
fn command_killed_by_a_signal_exits_128_plus_n() {
    let (run, status, recs) = watch_to_end("killed-cmd", &["--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGUSR1),
        "{}",
        run.describe()
    );
    assert!(
        recs.iter()
            .any(|r| r.ty() == "exit" && r.u64("signal") == Some(libc::SIGUSR1 as u64)),
        "no exit by SIGUSR1\n{}",
        run.describe()
    );
    check_end(&run, &recs, "command");
}

/// README: `--duration` with a COMMAND passes SIGTERM on to it and exits 0; the
/// command's exit (by SIGTERM) is recorded before the end.
#[test]
fn duration_with_a_command_terminates_it_and_exits_0() {
    let (run, status, recs) =
        watch_to_end("duration-cmd", &["--duration", "1s", "--", "sleep", "30"]);
    assert_eq!(status.code(), Some(0), "{}", run.describe());
    let sleep = recs
        .iter()
        .find(|r| r.ty() == "exec" && r.argv() == ["sleep", "30"])
        .and_then(Rec::pid)
        .unwrap_or_else(|| panic!("no exec of sleep\n{}", run.describe()));
    assert!(
        recs.iter().any(|r| r.ty() == "exit"
            && r.pid() == Some(sleep)
            && r.u64("signal") == Some(libc::SIGTERM as u64)),
        "sleep's exit by SIGTERM is not recorded\n{}",
        run.describe()
    );
    check_end(&run, &recs, "duration");
}

/// README: without `-o`, SIGHUP keeps its default and ends tracer (a closed
/// terminal). The marker: the first line tracer printed.
#[test]
fn sighup_without_output_ends_tracer() {
    let mut run = Proc::tracer(&["watch", "--format", "jsonl"]);
    assert!(
        poll_until(STEP_DEADLINE, || !run.stdout().is_empty()
            || run.try_status().is_some()),
        "nothing printed\n{}",
        run.describe()
    );
    run.signal(libc::SIGHUP);
    let status = run.wait_exit_within(STEP_DEADLINE);
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{}", run.describe());
}

/// Bug: `watch -o /dev/full` said `N records not written` and exited 0. Now 3
/// (README, Exit status); COMMAND's own non-zero status still wins.
#[test]
fn records_not_written_exit_3_unless_the_command_failed() {
    for (cmd, code) in [("exit 0", 3), ("exit 5", 5)] {
        let mut run = Proc::tracer(&["watch", "--quiet", "-o", "/dev/full", "--", "sh", "-c", cmd]);
        let status = run.wait_within(STEP_DEADLINE);
        assert_eq!(status.code(), Some(code), "{cmd}\n{}", run.describe());
        assert!(
            run.stderr().contains("records not written to /dev/full"),
            "{cmd}: the summary does not count them\n{}",
            run.describe()
        );
    }
}

/// Bug: `tracer watch | head` never ended. Through a real pipe to `head -n 3`:
/// once head has gone, tracer stops (passing SIGTERM to its command), exits 0
/// quietly, and its file ends with `end`, reason `stdout-closed`.
#[test]
fn closed_stdout_ends_the_run_cleanly() {
    let dir = run_dir("stdout-closed");
    let out = dir.join("trace.jsonl");
    let err = std::fs::File::create(dir.join("stderr")).expect("stderr file");
    // The command keeps events (and so lines) coming, and writes nothing itself.
    let mut tracer = Command::new(tracer_bin())
        .args([
            "watch",
            "-o",
            s(&out),
            "--",
            "sh",
            "-c",
            "while :; do /bin/true; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start tracer");
    let pgid = tracer.id() as libc::pid_t;
    let mut head = Command::new("head")
        .args(["-n", "3"])
        .stdin(tracer.stdout.take().expect("piped"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start head");
    let lines: Vec<String> = BufReader::new(head.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
        .collect();
    let head_status = head.wait().expect("wait for head");
    assert!(head_status.success(), "head: {head_status}");
    let mut status = None;
    let ended = poll_until(STEP_DEADLINE, || {
        status = tracer.try_wait().expect("wait");
        status.is_some()
    });
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    if !ended {
        // SAFETY: the group this test created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        panic!("tracer still runs after head exited\n{stderr}");
    }
    assert_eq!(lines.len(), 3, "head's lines: {lines:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    let content = std::fs::read_to_string(&out).expect("output");
    let recs = tracer_tests::parse_records(&content).unwrap_or_else(|e| panic!("{e}"));
    let last = recs.last().expect("records");
    assert!(
        last.ty() == "end" && last.str("reason") == Some("stdout-closed"),
        "last record: {last}\n{stderr}"
    );
    // SAFETY: the group this test created (the shell loop, should it be left).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rotation: every file ends with its own `end` (`rotated` for all but the
/// newest, which ends with the run's reason).
#[test]
fn every_rotated_file_ends_with_its_own_end() {
    let dir = run_dir("rotated-ends");
    let out = dir.join("trace.jsonl");
    let w = workload_bin();
    let mut run = Proc::tracer(&[
        "watch",
        "--quiet",
        "-o",
        s(&out),
        "--rotate-size",
        "8K",
        "--rotate-keep",
        "100",
        "--",
        s(&w),
        "storm",
        "100",
    ]);
    run.wait_within(STEP_DEADLINE);
    let rotated = records(&run, &dir.join("trace.jsonl.1"));
    check_end(&run, &rotated, "rotated");
    let newest = records(&run, &out);
    assert_eq!(
        newest.last().map(Rec::ty),
        Some("end"),
        "{}",
        run.describe()
    );
    assert_eq!(newest.last().and_then(|r| r.str("reason")), Some("command"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--quiet` silences event lines, not alerts: they go to stderr as they fire
/// (README's systemd unit runs with it; the journal must get them).
#[test]
fn quiet_still_prints_alerts_on_stderr() {
    let w = workload_bin();
    let (run, _status, recs) = watch_to_end("quiet-alerts", &["--", s(&w), "crash-loop"]);
    assert!(
        recs.iter()
            .any(|r| r.ty() == "alert" && r.str("alert") == Some("crash_loop")),
        "no crash_loop alert recorded\n{}",
        run.describe()
    );
    let stderr = run.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("ALERT") && l.contains("crash loop")),
        "no alert line on stderr\n{}",
        run.describe()
    );
    assert!(!run.stdout().contains("ALERT"), "{}", run.describe());
}
