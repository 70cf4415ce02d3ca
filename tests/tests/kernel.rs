//! Kernel tests: the real tracer, with its eBPF programs, traces `tracer-workload`
//! modes, and each test checks the records about the pids the workload created.
//!
//! Needs root and a built tracer (see `tracer_tests::run_traced`); run with
//! `sudo cargo xtask test`. Every run has its own tracer, so tests may run in parallel.
//! Records are matched by pid and ordered by `seq`; no assertion depends on timing
//! except lower bounds the workload itself guarantees (it waits before acting).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracer_tests::{
    PidsCgroup, Rec, Trace, ancestors_of_self, ensure, ensure_eq, run_traced, run_traced_within,
};

/// comm of the workload and of children that have not exec'd: its file name, which
/// is exactly 15 bytes, so not cut.
const WORKLOAD_COMM: &str = "tracer-workload";

// include/uapi/linux/sched.h
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;

/// `fork` is about `pid`, created by the workload `parent`.
fn check_fork_from(t: &Trace, fork: &Rec, pid: u32, parent: u32) {
    let about = [parent, pid];
    ensure_eq!(
        t,
        about,
        fork.tid(),
        Some(pid),
        "fork tid (a new process's first thread)"
    );
    ensure_eq!(t, about, fork.ppid(), Some(parent), "fork ppid");
    ensure_eq!(
        t,
        about,
        fork.str("parent_proc_id"),
        Some(t.proc_id_of(parent).as_str()),
        "fork parent_proc_id"
    );
    ensure_eq!(t, about, fork.bool("thread"), Some(false), "fork thread");
    if let Some(flags) = fork.u64("clone_flags") {
        ensure!(
            t,
            about,
            flags & CLONE_THREAD == 0,
            "process fork has CLONE_THREAD: {fork}"
        );
    }
}

/// `pid` exited by itself with `code`.
fn check_exited(t: &Trace, pid: u32, code: u64) -> &Rec {
    let exit = t.process_exit(pid);
    let about = [pid];
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
        exit.is_null("signal"),
        "exit of {pid} has a signal: {exit}"
    );
    ensure!(
        t,
        about,
        exit.is_null("signal_name"),
        "exit of {pid} has a signal_name: {exit}"
    );
    ensure_eq!(
        t,
        about,
        exit.bool("core_dumped"),
        Some(false),
        "core_dumped of {pid}"
    );
    ensure!(
        t,
        about,
        exit.u64("lifetime_ns").is_some_and(|n| n > 0),
        "lifetime_ns of {pid} not > 0: {exit}"
    );
    exit
}

/// `pid` was reaped by a wait() in the workload `reaper` after its exit.
fn check_reaped_by(t: &Trace, pid: u32, reaper: u32) -> &Rec {
    let reap = t.reap_of(pid);
    let about = [reaper, pid];
    ensure_eq!(
        t,
        about,
        reap.u64("reaper_pid"),
        Some(u64::from(reaper)),
        "reaper_pid of {pid}"
    );
    ensure_eq!(
        t,
        about,
        reap.str("reaper_comm"),
        Some(WORKLOAD_COMM),
        "reaper_comm of {pid}"
    );
    ensure_eq!(
        t,
        about,
        reap.bool("autoreap"),
        Some(false),
        "autoreap of {pid}"
    );
    ensure!(
        t,
        about,
        reap.u64("zombie_ns").is_some(),
        "zombie_ns of {pid} unknown: {reap}"
    );
    ensure!(
        t,
        about,
        reap.seq() > t.process_exit(pid).seq(),
        "reap of {pid} before its exit"
    );
    reap
}

/// `pid` was orphaned and reaped by whoever adopted it: the tracer or a subreaper
/// above this test (init at the latest), never the processes of the workload.
fn check_reaped_as_orphan<'t>(t: &'t Trace, pid: u32, not_by: &[u32]) -> &'t Rec {
    let reap = t.reap_of(pid);
    let about = [pid];
    let mut allowed = ancestors_of_self();
    allowed.push(t.tracer_pid);
    match reap.u64("reaper_pid") {
        Some(r) => {
            let r = r as u32;
            ensure!(
                t,
                about,
                !not_by.contains(&r),
                "orphan {pid} reaped by {r}, which is one it outlived"
            );
            ensure!(
                t,
                about,
                allowed.contains(&r),
                "orphan {pid} reaped by {r}, not the tracer nor an ancestor {allowed:?}"
            );
        }
        // Only a kernel autoreap (the adopter ignores SIGCHLD) has no reaper.
        None => ensure!(
            t,
            about,
            reap.bool("autoreap") == Some(true),
            "reap of {pid} has no reaper_pid and is no autoreap"
        ),
    }
    ensure!(
        t,
        about,
        reap.seq() > t.process_exit(pid).seq(),
        "reap of {pid} before its exit"
    );
    reap
}

/// The one exec record of `pid` with `filename`.
fn exec_of<'t>(t: &'t Trace, pid: u32, filename: &str) -> &'t Rec {
    t.one("exec", &[pid], &format!("of {filename} by {pid}"), |r| {
        r.pid() == Some(pid) && r.str("filename") == Some(filename)
    })
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn fork_exit() {
    let t = run_traced(&["fork-exit"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];

    ensure!(
        t,
        about,
        t.proc_id_of(me) != t.proc_id_of(child),
        "parent and child share a proc_id"
    );
    let fork = t.fork_of(child);
    check_fork_from(&t, fork, child, me);
    ensure_eq!(
        t,
        about,
        fork.str("comm"),
        Some(WORKLOAD_COMM),
        "child comm (inherited until exec)"
    );
    ensure_eq!(
        t,
        about,
        fork.u64("uid"),
        Some(0),
        "child uid (the tests run as root)"
    );

    let exit = check_exited(&t, child, 7);
    ensure_eq!(t, about, exit.ppid(), Some(me), "exit ppid");
    ensure_eq!(t, about, exit.tid(), Some(child), "exit tid");
    ensure_eq!(t, about, exit.bool("thread"), Some(false), "exit thread");
    ensure!(
        t,
        about,
        t.find("exec", |r| r.pid() == Some(child)).is_empty(),
        "the child never exec'd"
    );
    let reap = check_reaped_by(&t, child, me);
    ensure!(
        t,
        about,
        fork.seq() < exit.seq() && exit.seq() < reap.seq(),
        "fork, exit, reap out of order"
    );

    // The tracer reaps its COMMAND itself.
    ensure_eq!(
        t,
        about,
        t.reap_of(me).u64("reaper_pid"),
        Some(u64::from(t.tracer_pid)),
        "reaper of the workload"
    );

    // Per-run fields say where the records come from.
    let host = read_trimmed("/proc/sys/kernel/hostname");
    let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id");
    let norm = |s: &str| s.replace('-', "").to_ascii_lowercase();
    for r in &t.records {
        ensure_eq!(
            t,
            [],
            r.str("host"),
            Some(host.as_str()),
            "host of record {}",
            r.seq()
        );
        ensure_eq!(
            t,
            [],
            r.str("boot_id").map(norm),
            Some(norm(&boot_id)),
            "boot_id of record {}",
            r.seq()
        );
    }
}

#[test]
fn exec_nonascii() {
    let t = run_traced(&["exec-nonascii"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let fork = t.fork_of(child);
    check_fork_from(&t, fork, child, me);
    let exec = exec_of(&t, child, "/bin/echo");
    ensure_eq!(
        t,
        about,
        exec.argv(),
        vec!["echo", "héllo", "日本語"],
        "argv"
    );
    ensure_eq!(
        t,
        about,
        exec.bool("argv_truncated"),
        Some(false),
        "argv_truncated"
    );
    ensure!(
        t,
        about,
        exec.is_null("old_tid"),
        "old_tid set for a leader's exec: {exec}"
    );
    ensure_eq!(t, about, exec.tid(), Some(child), "exec tid");
    ensure_eq!(t, about, exec.str("comm"), Some("echo"), "comm after exec");
    ensure_eq!(
        t,
        about,
        exec.str("proc_id"),
        Some(t.proc_id_of(child).as_str()),
        "proc_id kept across exec"
    );
    let exit = check_exited(&t, child, 0);
    ensure!(
        t,
        about,
        fork.seq() < exec.seq() && exec.seq() < exit.seq(),
        "fork, exec, exit out of order"
    );
    check_reaped_by(&t, child, me);
    // The tracer passes its COMMAND's stdout through.
    ensure!(
        t,
        about,
        t.stdout.contains("héllo 日本語"),
        "echo's output missing from stdout: {:?}",
        t.stdout
    );
}

#[test]
fn posix_spawn() {
    let t = run_traced(&["posix-spawn"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let fork = t.fork_of(child);
    check_fork_from(&t, fork, child, me);
    // glibc's posix_spawn: clone(CLONE_VM | CLONE_VFORK) (sysdeps/unix/sysv/linux/spawni.c).
    if let Some(flags) = fork.u64("clone_flags") {
        ensure!(
            t,
            about,
            flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM | CLONE_VFORK,
            "clone_flags {flags:#x} lack CLONE_VM|CLONE_VFORK"
        );
    }
    let exec = exec_of(&t, child, "/bin/true");
    ensure_eq!(t, about, exec.argv(), vec!["true"], "argv");
    ensure!(t, about, fork.seq() < exec.seq(), "exec before fork");
    check_exited(&t, child, 0);
    check_reaped_by(&t, child, me);
}

#[test]
fn zombie_orphan() {
    let t = run_traced(&["zombie-orphan"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let middle = t.pid("middle");
    let child = t.pid("child");
    let about = [me, middle, child];
    check_fork_from(&t, t.fork_of(middle), middle, me);
    check_fork_from(&t, t.fork_of(child), child, middle);
    let child_exit = check_exited(&t, child, 3);
    let middle_exit = check_exited(&t, middle, 0);
    ensure!(
        t,
        about,
        child_exit.seq() < middle_exit.seq(),
        "the child exits first (the middle waits for its zombie)"
    );
    check_reaped_by(&t, middle, me);
    let reap = check_reaped_as_orphan(&t, child, &[me, middle, child]);
    ensure!(
        t,
        about,
        reap.seq() > middle_exit.seq(),
        "orphan reaped before its parent died"
    );
    // The middle kept the child a zombie for 300 ms after seeing it dead.
    ensure!(
        t,
        about,
        reap.u64("zombie_ns").is_some_and(|z| z >= 250_000_000),
        "zombie_ns below the 300 ms the middle kept it: {reap}"
    );
}

#[test]
fn reverse_wait() {
    let t = run_traced(&["reverse-wait"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let children = t.pids("children");
    let mut about = children.clone();
    about.push(me);
    ensure_eq!(t, about, children.len(), 5, "children reported");
    let mut last_exit = 0;
    for (i, &c) in children.iter().enumerate() {
        check_fork_from(&t, t.fork_of(c), c, me);
        last_exit = last_exit.max(check_exited(&t, c, 100 + i as u64).seq());
        let reap = check_reaped_by(&t, c, me);
        ensure!(
            t,
            about,
            reap.u64("zombie_ns").is_some_and(|z| z > 0),
            "zombie_ns of {c} not > 0: {reap}"
        );
    }
    let reaps = t.find("reap", |r| r.pid().is_some_and(|p| children.contains(&p)));
    let order: Vec<u32> = reaps.iter().filter_map(|r| r.pid()).collect();
    let reversed: Vec<u32> = children.iter().rev().copied().collect();
    ensure_eq!(t, about, order, reversed, "reap order (by seq)");
    ensure!(
        t,
        about,
        reaps[0].seq() > last_exit,
        "a reap came before all children were zombies"
    );
}

#[test]
fn sigkill() {
    let t = run_traced(&["sigkill"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    check_fork_from(&t, t.fork_of(child), child, me);
    let exit = t.process_exit(child);
    ensure!(
        t,
        about,
        exit.is_null("exit_code"),
        "exit_code of a killed process: {exit}"
    );
    ensure_eq!(t, about, exit.u64("signal"), Some(9), "signal");
    ensure_eq!(
        t,
        about,
        exit.str("signal_name"),
        Some("SIGKILL"),
        "signal_name"
    );
    ensure_eq!(
        t,
        about,
        exit.bool("core_dumped"),
        Some(false),
        "core_dumped"
    );
    ensure!(
        t,
        about,
        exit.u64("lifetime_ns").is_some_and(|n| n > 0),
        "lifetime_ns not > 0: {exit}"
    );
    check_reaped_by(&t, child, me);
}

#[test]
fn threads_exit() {
    let t = run_traced(&["threads-exit"], &[]);
    t.check_workload(5);
    let me = t.workload_pid();
    let tids = t.pids("threads");
    let mut about = tids.clone();
    about.push(me);
    let thread_recs: Vec<&Rec> = t.records.iter().filter(|r| r.thread()).collect();
    ensure!(
        t,
        about,
        thread_recs.is_empty(),
        "thread records without --threads: {thread_recs:?}"
    );
    let by_tid = t
        .records
        .iter()
        .filter(|r| r.tid().is_some_and(|x| tids.contains(&x)))
        .count();
    ensure_eq!(
        t,
        about,
        by_tid,
        0,
        "records about the threads without --threads"
    );
    ensure_eq!(
        t,
        about,
        t.find("exit", |r| r.pid() == Some(me)).len(),
        1,
        "exit records of the workload"
    );
    t.proc_id_of(me);
}

#[test]
fn threads_exit_with_threads() {
    let t = run_traced(&["threads-exit"], &["--threads"]);
    t.check_workload(5);
    let me = t.workload_pid();
    let tids = t.pids("threads");
    let mut about = tids.clone();
    about.push(me);
    let want: BTreeSet<u32> = tids.iter().copied().collect();
    ensure_eq!(t, about, want.len(), 3, "distinct thread ids reported");

    let forks = t.find("fork", |r| r.pid() == Some(me) && r.thread());
    let fork_tids: Vec<u32> = forks.iter().filter_map(|r| r.tid()).collect();
    ensure_eq!(
        t,
        about,
        fork_tids.iter().copied().collect::<BTreeSet<_>>(),
        want,
        "thread fork tids"
    );
    ensure_eq!(t, about, forks.len(), 3, "thread fork records");
    for f in &forks {
        if let Some(flags) = f.u64("clone_flags") {
            ensure!(
                t,
                about,
                flags & CLONE_THREAD != 0,
                "thread fork without CLONE_THREAD: {f}"
            );
        }
    }

    let process_exit = t.process_exit(me);
    let exits = t.find("exit", |r| r.pid() == Some(me) && r.thread());
    let exit_tids: Vec<u32> = exits.iter().filter_map(|r| r.tid()).collect();
    ensure_eq!(
        t,
        about,
        exit_tids.iter().copied().collect::<BTreeSet<_>>(),
        want,
        "thread exit tids"
    );
    ensure_eq!(t, about, exits.len(), 3, "thread exit records");
    for e in &exits {
        // The workload waits until each thread is released before it exits.
        ensure!(
            t,
            about,
            e.seq() < process_exit.seq(),
            "thread exit after the process exit: {e}"
        );
    }
    for f in &forks {
        let exit = exits
            .iter()
            .find(|e| e.tid() == f.tid())
            .expect("matched above");
        ensure!(
            t,
            about,
            f.seq() < exit.seq(),
            "thread {:?} exits before its fork",
            f.tid()
        );
    }
    ensure!(
        t,
        about,
        t.find("reap", |r| r.tid().is_some_and(|x| want.contains(&x)))
            .is_empty(),
        "threads are not reaped"
    );
    // Thread records belong to the process: proc_id_of fails if they differ.
    t.proc_id_of(me);
}

#[test]
fn leader_exits_first() {
    let t = run_traced(&["leader-exits-first"], &[]);
    t.check_workload(9);
    let me = t.workload_pid();
    let thread = t.pid("thread");
    let about = [me, thread];
    ensure_eq!(
        t,
        about,
        t.find("exit", |r| r.pid() == Some(me)).len(),
        1,
        "exit records of the workload"
    );
    let thread_recs: Vec<&Rec> = t.records.iter().filter(|r| r.thread()).collect();
    ensure!(
        t,
        about,
        thread_recs.is_empty(),
        "thread records without --threads: {thread_recs:?}"
    );
}

#[test]
fn leader_exits_first_with_threads() {
    let t = run_traced(&["leader-exits-first"], &["--threads"]);
    t.check_workload(9);
    let me = t.workload_pid();
    let thread = t.pid("thread");
    let about = [me, thread];
    let fork = t.one("fork", &about, "of the second thread", |r| {
        r.tid() == Some(thread)
    });
    ensure_eq!(t, about, fork.pid(), Some(me), "thread fork pid");
    ensure_eq!(
        t,
        about,
        fork.bool("thread"),
        Some(true),
        "thread fork thread"
    );
    // The leader's exit leaves a live process: a thread exit. The second thread's
    // exit_group ends the process: the process exit.
    let leader = t.one("exit", &about, "of the leader thread", |r| {
        r.pid() == Some(me) && r.tid() == Some(me)
    });
    ensure_eq!(
        t,
        about,
        leader.bool("thread"),
        Some(true),
        "the leader's exit is a thread's"
    );
    let process_exit = t.process_exit(me);
    ensure!(
        t,
        about,
        leader.seq() < process_exit.seq(),
        "leader exit after the process exit"
    );
    ensure_eq!(
        t,
        about,
        t.find("exit", |r| r.pid() == Some(me)).len(),
        2,
        "exit records of the workload"
    );
}

#[test]
fn thread_exec() {
    let t = run_traced(&["thread-exec"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let thread = t.pid("thread");
    let about = [me, thread];
    ensure!(
        t,
        about,
        thread != me,
        "the exec'ing thread is not the leader"
    );
    let exec = exec_of(&t, me, "/bin/true");
    ensure_eq!(
        t,
        about,
        exec.u64("old_tid"),
        Some(u64::from(thread)),
        "old_tid"
    );
    ensure_eq!(
        t,
        about,
        exec.tid(),
        Some(me),
        "tid after exec (de_thread makes it the leader)"
    );
    ensure_eq!(t, about, exec.argv(), vec!["true"], "argv");
    ensure_eq!(t, about, exec.str("comm"), Some("true"), "comm after exec");
    let exit = t.process_exit(me);
    ensure_eq!(t, about, exit.str("comm"), Some("true"), "comm at exit");
    ensure!(t, about, exec.seq() < exit.seq(), "exit before exec");
    // The pid did not change: no new process appeared.
    let forks = t.find("fork", |r| r.ppid() == Some(me) || r.tid() == Some(thread));
    ensure!(
        t,
        about,
        forks.is_empty(),
        "fork records without --threads: {forks:?}"
    );
    t.proc_id_of(me);
}

#[test]
fn enoent() {
    let t = run_traced(&["enoent"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let about = [me];
    let failed = t.one("exec_failed", &about, "of the workload", |r| {
        r.pid() == Some(me)
    });
    ensure_eq!(
        t,
        about,
        failed.str("filename"),
        Some("/nonexistent/tracer-test"),
        "filename"
    );
    ensure_eq!(t, about, failed.u64("errno"), Some(2), "errno");
    ensure_eq!(t, about, failed.str("error"), Some("ENOENT"), "error");
    ensure_eq!(t, about, failed.tid(), Some(me), "tid");
    ensure_eq!(
        t,
        about,
        failed.str("comm"),
        Some(WORKLOAD_COMM),
        "comm (the image did not change)"
    );
    let execs = t.find("exec", |r| {
        r.str("filename") == Some("/nonexistent/tracer-test")
    });
    ensure!(
        t,
        about,
        execs.is_empty(),
        "a failed exec reported as an exec: {execs:?}"
    );
    ensure!(
        t,
        about,
        failed.seq() < t.process_exit(me).seq(),
        "exec_failed after the exit"
    );
}

#[test]
fn script() {
    let t = run_traced(&["script"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let path = t
        .fact("script")
        .as_str()
        .expect("script path reported")
        .to_string();
    check_fork_from(&t, t.fork_of(child), child, me);
    let exec = exec_of(&t, child, &path);
    // fs/binfmt_script.c, load_script: argv[0] is replaced by the interpreter and the
    // script path; bprm->filename stays the script.
    ensure_eq!(
        t,
        about,
        exec.argv(),
        vec!["/bin/sh", path.as_str()],
        "argv"
    );
    // fs/exec.c, begin_new_exec: comm is the basename of bprm->filename.
    let base = path.rsplit('/').next().expect("basename");
    ensure_eq!(
        t,
        about,
        exec.str("comm"),
        Some(&base[..base.len().min(15)]),
        "comm after exec"
    );
    check_exited(&t, child, 4);
    check_reaped_by(&t, child, me);
}

#[test]
fn nonutf8() {
    let t = run_traced(&["nonutf8"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let exec = exec_of(&t, child, "/bin/true");
    // Invalid bytes become the four characters \xNN; valid UTF-8 (including a
    // literal backslash-x) stays as it is.
    ensure_eq!(
        t,
        about,
        exec.argv(),
        vec!["true", "\\xff\\xfe", "a\\xZZ", "ok\\xe6\\x97", "日"],
        "argv"
    );
    ensure_eq!(
        t,
        about,
        exec.bool("argv_truncated"),
        Some(false),
        "argv_truncated"
    );
    check_exited(&t, child, 0);
}

#[test]
fn long_argv() {
    let t = run_traced(&["long-argv"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let total = t.fact("args").as_u64().expect("args count reported") as usize;
    let exec = exec_of(&t, child, "/bin/true");
    let argv = exec.argv();
    ensure_eq!(
        t,
        about,
        exec.bool("argv_truncated"),
        Some(true),
        "argv_truncated (20 KB of arguments)"
    );
    ensure_eq!(t, about, argv.first().copied(), Some("true"), "argv[0]");
    ensure_eq!(
        t,
        about,
        argv.get(1).copied(),
        t.fact("first").as_str(),
        "argv[1]"
    );
    ensure!(
        t,
        about,
        argv.len() < total + 1,
        "all {} arguments kept, yet argv_truncated",
        argv.len()
    );
    // At 10 bytes an argument, a 4 KiB area holds about 400 of them.
    ensure!(
        t,
        about,
        argv.len() >= 300,
        "only {} arguments kept",
        argv.len()
    );
    let kept: usize = argv.iter().map(|a| a.len() + 1).sum();
    ensure!(
        t,
        about,
        kept <= 4096 + 1,
        "{kept} bytes of arguments kept, more than the 4 KiB area"
    );
    let last = argv.len() - 1;
    for (i, a) in argv.iter().enumerate().skip(1) {
        let want = format!("a{:08}", i - 1);
        // Only the last one may have been cut.
        let ok = if i == last {
            want.starts_with(a)
        } else {
            *a == want
        };
        ensure!(t, about, ok, "argv[{i}] is {a:?}, expected {want:?}");
    }
    check_exited(&t, child, 0);
}

#[test]
fn subreaper() {
    let t = run_traced(&["subreaper"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let middle = t.pid("middle");
    let grandchild = t.pid("grandchild");
    let about = [me, middle, grandchild];
    check_fork_from(&t, t.fork_of(middle), middle, me);
    check_fork_from(&t, t.fork_of(grandchild), grandchild, middle);
    let middle_exit = check_exited(&t, middle, 0);
    let gc_exit = check_exited(&t, grandchild, 0);
    ensure!(
        t,
        about,
        middle_exit.seq() < gc_exit.seq(),
        "the grandchild exits only once adopted"
    );
    ensure_eq!(
        t,
        about,
        gc_exit.ppid(),
        Some(me),
        "grandchild's parent at exit (adopted by the subreaper)"
    );
    check_reaped_by(&t, middle, me);
    check_reaped_by(&t, grandchild, me);
}

#[test]
fn autoreap() {
    let t = run_traced(&["autoreap"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    check_fork_from(&t, t.fork_of(child), child, me);
    let exit = check_exited(&t, child, 0);
    let reap = t.reap_of(child);
    ensure_eq!(
        t,
        about,
        reap.bool("autoreap"),
        Some(true),
        "autoreap (SIGCHLD is ignored)"
    );
    ensure!(t, about, reap.seq() > exit.seq(), "reap before exit");
}

#[test]
fn orphan_outlives() {
    let t = run_traced(&["orphan-outlives"], &[]);
    // The tracer exits 0 (COMMAND's status) but only after the orphan is gone.
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    check_fork_from(&t, t.fork_of(child), child, me);
    let exit = check_exited(&t, child, 0);
    ensure!(
        t,
        about,
        exit.seq() > t.process_exit(me).seq(),
        "the orphan exits after the workload"
    );
    ensure!(
        t,
        about,
        exit.ppid() != Some(me),
        "the orphan's parent at exit is still the dead workload: {exit}"
    );
    check_reaped_as_orphan(&t, child, &[me, child]);
}

#[test]
fn wnowait() {
    let t = run_traced(&["wnowait"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    let marker = t
        .fact("marker")
        .as_str()
        .expect("marker reported")
        .to_string();
    check_exited(&t, child, 6);
    let marker_rec = t.one("exec_failed", &about, "of the marker", |r| {
        r.str("filename") == Some(marker.as_str())
    });
    // waitid(WNOWAIT) before the marker left the child a zombie; the reap is the
    // waitpid after it.
    let reap = check_reaped_by(&t, child, me);
    ensure!(
        t,
        about,
        reap.seq() > marker_rec.seq(),
        "WNOWAIT taken for a reap: reap before the marker"
    );
}

/// A fork the kernel refuses: the workload joins a cgroup whose `pids.max` (2) leaves
/// room for one child, so its second fork fails with EAGAIN in copy_process
/// (cgroup_can_fork -> pids_can_fork), as root, where RLIMIT_NPROC would not apply.
/// The failure is one `fork_failed` record of the caller; the fork before it is a
/// normal fork, exit and reap.
#[test]
fn fork_fails_at_pids_max() {
    let name = format!("tracer-kernel-pids-max-{}", std::process::id());
    let mut cgroup = PidsCgroup::create(&name, 2)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| {
            panic!("no cgroup pids controller (cgroup2 or v1 pids) is mounted: the test needs one")
        });
    let procs = cgroup.procs_file();
    let t = run_traced(&["pids-max-fork", procs.to_str().expect("UTF-8")], &[]);
    let refused = cgroup.refused_forks();
    cgroup.remove().unwrap_or_else(|e| panic!("{e}"));
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    ensure_eq!(
        t,
        about,
        t.fact("errno").as_u64(),
        Some(11),
        "errno the workload saw"
    );
    ensure_eq!(
        t,
        about,
        refused,
        Some(1),
        "forks pids.events counted as refused"
    );

    let fork = t.fork_of(child);
    check_fork_from(&t, fork, child, me);
    check_exited(&t, child, 0);
    check_reaped_by(&t, child, me);

    let failed = t.one("fork_failed", &about, "of the workload", |r| {
        r.pid() == Some(me)
    });
    ensure_eq!(t, about, failed.u64("errno"), Some(11), "errno of {failed}");
    ensure_eq!(
        t,
        about,
        failed.str("error"),
        Some("EAGAIN"),
        "error of {failed}"
    );
    ensure_eq!(t, about, failed.tid(), Some(me), "tid of {failed}");
    ensure_eq!(t, about, failed.u64("uid"), Some(0), "uid of {failed}");
    ensure_eq!(
        t,
        about,
        failed.str("comm"),
        Some(WORKLOAD_COMM),
        "comm of {failed}"
    );
    ensure_eq!(
        t,
        about,
        failed.str("proc_id"),
        Some(t.proc_id_of(me).as_str()),
        "proc_id of {failed}"
    );
    ensure!(
        t,
        about,
        fork.seq() < failed.seq(),
        "fork_failed before the fork of the child that filled the cgroup"
    );
}

#[test]
fn storm() {
    const N: usize = 3000;
    let t = run_traced_within(&["storm", &N.to_string()], &[], Duration::from_secs(300));
    t.check_workload(0);
    let me = t.workload_pid();
    let workers = t.pids("workers");
    let children = t.pids("children");
    ensure_eq!(t, workers, children.len(), N, "children reported");
    let lost = t.find("lost", |_| true);
    ensure!(
        t,
        [me],
        lost.is_empty(),
        "{} lost records: {lost:?}",
        lost.len()
    );
    for &w in &workers {
        check_fork_from(&t, t.fork_of(w), w, me);
        check_exited(&t, w, 0);
        check_reaped_by(&t, w, me);
    }

    // Pids may be reused within a storm, so processes are told apart by proc_id.
    let mut by_proc: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in &t.records {
        if let Some(id) = r.proc_id() {
            by_proc.entry(id).or_default().push(r);
        }
    }
    let forks = t.find("fork", |r| {
        !r.thread() && r.ppid().is_some_and(|p| workers.contains(&p))
    });
    ensure_eq!(t, workers, forks.len(), N, "fork records from the workers");
    let mut forked: Vec<u32> = forks.iter().filter_map(|r| r.pid()).collect();
    let mut reported = children.clone();
    forked.sort_unstable();
    reported.sort_unstable();
    ensure!(
        t,
        workers,
        forked == reported,
        "forked pids differ from the pids the workers reported"
    );

    for fork in &forks {
        let pid = fork.pid().expect("schema");
        let worker = fork.ppid().expect("schema");
        let id = fork.proc_id().expect("schema");
        let recs = &by_proc[id];
        let of = |ty: &str| {
            recs.iter()
                .filter(|r| r.ty() == ty)
                .copied()
                .collect::<Vec<_>>()
        };
        let (execs, exits, reaps) = (of("exec"), of("exit"), of("reap"));
        let counts = (of("fork").len(), execs.len(), exits.len(), reaps.len());
        ensure_eq!(
            t,
            [pid],
            counts,
            (1, 1, 1, 1),
            "fork/exec/exit/reap records of {id}"
        );
        let (exec, exit, reap) = (execs[0], exits[0], reaps[0]);
        ensure_eq!(
            t,
            [pid],
            exec.str("filename"),
            Some("/bin/true"),
            "exec filename of {id}"
        );
        ensure_eq!(t, [pid], exec.argv(), vec!["true"], "argv of {id}");
        ensure_eq!(
            t,
            [pid],
            exit.u64("exit_code"),
            Some(0),
            "exit_code of {id}"
        );
        ensure_eq!(
            t,
            [pid],
            reap.u64("reaper_pid"),
            Some(u64::from(worker)),
            "reaper of {id}"
        );
        let seqs = [fork.seq(), exec.seq(), exit.seq(), reap.seq()];
        ensure!(
            t,
            [pid],
            seqs.is_sorted(),
            "fork, exec, exit, reap of {id} out of order: {seqs:?}"
        );
    }
    let count = |ty: &str| {
        t.find(ty, |r| r.ppid().is_some_and(|p| workers.contains(&p)))
            .len()
    };
    // A reap's subject is the child; its ppid is the worker until the worker dies.
    ensure_eq!(
        t,
        workers,
        (count("exec"), count("exit")),
        (N, N),
        "exec and exit records of the workers' children"
    );
}

/// Which programs reported reaps, failed execs and failed forks (`meta.hooks`),
/// and what the fexit path adds: 20 zombies adopted at once by a subreaper that
/// collects them with waitid(P_ALL, NULL infop). Through fexit on kernel_waitid
/// each wait names its child, so every reap is exact, by the subreaper; through
/// the syscall tracepoints the waits do not say which child went (the zombies
/// test covers that path's inference), and `meta` says why fexit was not used.
/// `TRACER_TEST_HOOKS` (set by `cargo xtask test --kernel`) names the path the
/// kernel under test must take.
#[test]
fn hooks_null_infop_waitid() {
    let t = run_traced(&["subreaper-null-waitid", "20"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let meta = t.find("meta", |_| true);
    let hooks = meta[0].get("hooks");
    let path = hooks["path"].as_str().unwrap_or_default().to_string();
    if let Ok(want) = std::env::var("TRACER_TEST_HOOKS") {
        ensure_eq!(t, [me], path.as_str(), want.as_str(), "meta.hooks.path");
    }
    match path.as_str() {
        "fexit" => {
            ensure!(t, [me], hooks["fexit_refused"].is_null(), "{hooks}");
            for kid in t.pids("zombies") {
                let reap = check_reaped_by(&t, kid, me);
                ensure!(
                    t,
                    [me, kid],
                    reap.get("inferred").is_null(),
                    "reap of {kid} by a NULL-infop waitid inferred on the fexit path: {reap}"
                );
            }
        }
        "syscall_tracepoints" => {
            let why = hooks["fexit_refused"].as_str().unwrap_or_default();
            ensure!(
                t,
                [me],
                !why.is_empty(),
                "no reason for the fallback: {hooks}"
            );
        }
        other => t.fail(&[me], format!("meta.hooks.path {other:?}: {hooks}")),
    }
}

/// A clone the kernel refuses (EINVAL from copy_process) is a `fork_failed` of the
/// caller, on either path (sys_exit_clone, or fexit on kernel_clone).
#[test]
fn clone_einval() {
    let t = run_traced(&["clone-einval"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let about = [me];
    let failed = t.one("fork_failed", &about, "of the workload", |r| {
        r.pid() == Some(me)
    });
    ensure_eq!(t, about, failed.u64("errno"), Some(22), "errno");
    ensure_eq!(t, about, failed.str("error"), Some("EINVAL"), "error");
    ensure_eq!(t, about, failed.tid(), Some(me), "tid");
    ensure_eq!(t, about, failed.str("comm"), Some(WORKLOAD_COMM), "comm");
}
