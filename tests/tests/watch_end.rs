//! Kernel tests of how a `tracer watch` run ends: Ctrl-C with a command, the
//! `end` record, a closed stdout, lost records in the exit status, and the exit
//! statuses README promises.
//!
//! Like tests/watch_cli.rs these run the real tracer (`TRACER_BIN`) on real
//! workloads and need root. Every wait is for a record or an exit, with a deadline.

use std::path::Path;

use tracer_tests::{Proc, Rec, STEP_DEADLINE, complete_records, poll_until, run_dir};

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
    tracer_tests::parse_records(&content)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", out.display(), run.describe()))
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
