//! Kernel tests of `watch --on-alert CMD`: a real crash loop raises a real alert,
//! and CMD (a shell command line) gets that alert record on its stdin.
//!
//! Needs root and a built tracer, like tests/tests/kernel.rs.

use std::{
    ffi::{CString, OsStr},
    io::Write,
    os::unix::ffi::OsStrExt,
    path::Path,
};

use serde_json::Value;
use tracer_tests::{
    DEADLINE, Proc, complete_records, ensure, ensure_eq, poll_until, run_dir, run_traced,
};

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        p.display()
    );
}

/// Opens a FIFO for writing (waiting for its reader) and writes a line: the
/// reader's `read x < FIFO` goes on.
fn release(p: &Path) {
    let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all(b"go\n").unwrap();
}

/// The lines of `p`, once it holds a whole one.
fn read_lines_when_complete(p: &Path, what: &str) -> Vec<String> {
    let complete = || std::fs::read_to_string(p).is_ok_and(|s| s.ends_with('\n'));
    assert!(
        poll_until(DEADLINE, complete),
        "{what}: {} never got a whole line",
        p.display()
    );
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn on_alert_gets_the_alert_record_and_a_failing_cmd_is_counted() {
    let dir = run_dir("on-alert");
    let (got, env) = (dir.join("got.jsonl"), dir.join("env"));
    // It reads the alert, notes its variables and fails: the failure is counted.
    let cmd = format!(
        "cat >> {}; echo \"$TRACER_ALERT_TYPE $TRACER_ALERT_KIND $TRACER_ALERT_PID\" >> {}; exit 3",
        got.display(),
        env.display()
    );
    let t = run_traced(&["crash-loop"], &["--on-alert", &cmd]);
    t.check_workload(0);
    let children = t.pids("children");
    let last = *children.last().expect("five children");
    let a = t.one_alert("crash_loop", false, &children);
    ensure_eq!(t, children, a.pid(), Some(last), "culprit");

    // CMD got exactly that record, as it is in the recording (same seq too).
    let lines = std::fs::read_to_string(&got).unwrap_or_default();
    let sent: Vec<Value> = lines
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| t.fail(&children, format!("CMD got {l:?}: {e}")))
        })
        .collect();
    ensure_eq!(t, children, sent.len(), 1, "alerts CMD got: {lines}");
    ensure_eq!(t, children, &sent[0], &a.0, "the alert CMD got");
    ensure_eq!(
        t,
        children,
        std::fs::read_to_string(&env).unwrap_or_default(),
        format!("alert crash_loop {last}\n"),
        "CMD's TRACER_ALERT_* variables"
    );
    ensure!(
        t,
        children,
        t.stderr
            .contains("tracer: --on-alert ran 1 time, 1 failed; 0 alerts dropped\n"),
        "the summary counts CMD's failure"
    );
    ensure!(
        t,
        children,
        t.stderr
            .contains("--on-alert for a crash_loop alert failed: it exited with status 3"),
        "the failure is said as it happens"
    );
    // A failing CMD does not change tracer's exit status: COMMAND's.
    ensure_eq!(
        t,
        children,
        t.status.code(),
        Some(0),
        "tracer's exit status"
    );
}

#[test]
fn a_slow_on_alert_cmd_does_not_hold_up_the_recording() {
    let dir = run_dir("on-alert-slow");
    let (got, gate, go, done) = (
        dir.join("got.jsonl"),
        dir.join("gate"),
        dir.join("go"),
        dir.join("done"),
    );
    mkfifo(&gate);
    mkfifo(&go);
    let out = dir.join("trace.jsonl");
    // CMD takes the alert, then blocks until the test opens the gate.
    let cmd = format!(
        "cat > {}; read x < {}; echo released > {}",
        got.display(),
        gate.display(),
        done.display()
    );
    // A crash loop (five `sh -c 'exit 3'` under one shell), then, once the test
    // says so, a marker program.
    let script = format!(
        "for i in 1 2 3 4 5; do /bin/sh -c 'exit 3'; done; read x < {}; exec /bin/echo on-alert-marker",
        go.display()
    );
    let mut tracer = Proc::tracer(&[
        OsStr::new("watch"),
        OsStr::new("--quiet"),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--on-alert"),
        OsStr::new(&cmd),
        // No timeout a busy machine could reach while the test holds CMD.
        OsStr::new("--on-alert-timeout"),
        OsStr::new("1h"),
        OsStr::new("--"),
        OsStr::new("/bin/sh"),
        OsStr::new("-c"),
        OsStr::new(&script),
    ]);
    let alert = read_lines_when_complete(&got, "CMD's stdin");
    let alert: Value = serde_json::from_str(&alert[0]).unwrap();
    assert_eq!(
        alert["alert"],
        "crash_loop",
        "{alert}\n{}",
        tracer.describe()
    );
    // CMD now waits at the gate. Tracing goes on: the marker's exec is recorded.
    release(&go);
    let marker_recorded = || {
        complete_records(&out)
            .iter()
            .any(|r| r.ty() == "exec" && r.argv() == ["/bin/echo", "on-alert-marker"])
    };
    assert!(
        poll_until(DEADLINE, marker_recorded),
        "the marker's exec never reached the recording while CMD waited\n{}",
        tracer.describe()
    );
    assert!(
        !done.exists(),
        "CMD went past its gate before the test opened it"
    );
    // The same alert is in the recording, before the marker.
    let recs = complete_records(&out);
    let in_file = recs
        .iter()
        .find(|r| r.ty() == "alert")
        .expect("the alert recorded");
    assert_eq!(in_file.0, alert);
    release(&gate);
    let status = tracer.wait_within(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", tracer.describe());
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "released\n");
    assert!(
        tracer
            .stderr()
            .contains("tracer: --on-alert ran 1 time, 0 failed; 0 alerts dropped\n"),
        "{}",
        tracer.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
