//! The eBPF programs' own diagnostics (`-vv`): shown when a read in the kernel
//! really fails, and absent (compiled out by the verifier) without `-vv`.
//!
//! Needs root and a built tracer; run with `sudo cargo xtask test`.

use tracer_tests::{ensure, ensure_eq, run_traced};

/// The line sys_exit_execve's program logs for the workload's execve((char *)1).
fn diagnostic_of(stderr: &str, pid: u32) -> Vec<&str> {
    let prefix = format!(
        "tracer: kernel warn: failed exec of pid {pid} (errno 14): reading the file name at 1 failed (error -14)"
    );
    stderr.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[test]
fn vv_shows_the_failed_read_of_an_exec_file_name() {
    let t = run_traced(&["efault"], &["-vv"]);
    t.check_workload(0);
    let me = t.workload_pid();
    let about = [me];
    let failed = t.one("exec_failed", &about, "of the workload", |r| {
        r.pid() == Some(me)
    });
    ensure_eq!(t, about, failed.u64("errno"), Some(14), "errno");
    ensure_eq!(t, about, failed.str("error"), Some("EFAULT"), "error");
    let lines = diagnostic_of(&t.stderr, me);
    ensure!(
        t,
        about,
        lines.len() == 1,
        "one kernel diagnostic for the unreadable file name, got {lines:?} in stderr:\n{}",
        t.stderr
    );
}

#[test]
fn without_vv_the_kernel_logs_nothing() {
    let t = run_traced(&["efault"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let about = [me];
    // The same failure happened and was recorded ...
    let failed = t.one("exec_failed", &about, "of the workload", |r| {
        r.pid() == Some(me)
    });
    ensure_eq!(t, about, failed.u64("errno"), Some(14), "errno");
    // ... but no program logged it.
    ensure!(
        t,
        about,
        !t.stderr.contains("tracer: kernel "),
        "no kernel diagnostics without -vv, stderr:\n{}",
        t.stderr
    );
}
