//! tracer-workload: the processes the kernel tests trace.
//!
//! Each subcommand does one real thing with processes or threads, checks that the
//! kernel did what it should (a wrong wait status exits 2 with a message on
//! stderr, so a broken workload cannot pass as a tracer bug), and prints one line
//! `pids: {json}` on stdout with the pids it created and the other facts the test
//! needs. `self` is always the workload's own pid.
//!
//! Waits are on conditions (a child is a zombie, a parent is gone), each with a
//! deadline, never on a guessed sleep. Forked children only call async-signal-safe
//! functions (`_exit`, `execve`, `write`, `getppid`, `nanosleep`) or plain /proc reads.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any wait-for-a-condition may take before the workload gives up, times
/// `TRACER_TEST_DEADLINE_SCALE` when set (tracer_tests::child::DEADLINE_SCALE_VAR:
/// the VM of `cargo xtask test --kernel` sets it for its slower CPU).
const DEADLINE: Duration = Duration::from_secs(20);

fn deadline() -> Instant {
    let scale = std::env::var("TRACER_TEST_DEADLINE_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    Instant::now() + DEADLINE * scale
}

/// Exit status of a workload whose own checks failed.
const BROKEN: i32 = 2;

const USAGE: &str = "usage: tracer-workload MODE [ARGS]
modes: fork-exit exec-nonascii posix-spawn zombie-orphan reverse-wait sigkill
       threads-exit leader-exits-first thread-exec enoent efault script script-then-exec N
       nonutf8 long-argv
       subreaper autoreap orphan-outlives wnowait storm [N]
       gated storm-gated DIR N fork-fail fork-on-cpus
       fork-storm SECS MAX IDLE_MS  zombies N HOLD_MS  crash-loop  nproc-burst N
       orphan-zombies N [HOLD_MS]  subreaper-null-waitid N  subreaper-null-waitid-serial N
       subreaper-ignores-sigchld N
       fork-bomb SECS cgroup:PROCS_FILE|nproc:N  spin CPU MS NICE  exec-storm SECS
       join-fork PROCS_FILE|-  pids-max-fork PROCS_FILE  cgroup-storm PROCS_FILE PARENTS SECS PACE_MS
       exec-errors DIR  crash DIR  clone-einval";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(BROKEN);
    };
    let code = match mode.as_str() {
        "fork-exit" => fork_exit(),
        "exec-nonascii" => exec_nonascii(),
        "posix-spawn" => posix_spawn(),
        "zombie-orphan" => zombie_orphan(),
        "reverse-wait" => reverse_wait(),
        "sigkill" => sigkill(),
        "threads-exit" => threads_exit(),
        "leader-exits-first" => leader_exits_first(),
        "thread-exec" => thread_exec(),
        "enoent" => enoent(),
        "clone-einval" => clone_einval(),
        "efault" => efault(),
        "script" => script(),
        "script-then-exec" => script_then_exec(num_arg(&args, 1)),
        "nonutf8" => nonutf8(),
        "long-argv" => long_argv(),
        "subreaper" => subreaper(),
        "autoreap" => autoreap(),
        "orphan-outlives" => orphan_outlives(),
        "wnowait" => wnowait(),
        "storm" => {
            let n = match args.get(1).map(|s| s.parse::<usize>()) {
                None => 3000,
                Some(Ok(n)) if n > 0 => n,
                Some(_) => broken(&format!(
                    "storm: N must be a positive integer, got {:?}",
                    args[1]
                )),
            };
            storm(n)
        }
        "gated" => gated(),
        "storm-gated" => {
            let (Some(dir), Some(Ok(n))) = (args.get(1), args.get(2).map(|s| s.parse::<usize>()))
            else {
                broken(&format!("storm-gated needs DIR and N\n{USAGE}"));
            };
            storm_gated(std::path::Path::new(dir), n)
        }
        "fork-fail" => fork_fail(),
        "fork-on-cpus" => fork_on_cpus(),
        "fork-storm" => fork_storm(num_arg(&args, 1), num_arg(&args, 2), num_arg(&args, 3)),
        "zombies" => zombies(num_arg(&args, 1), num_arg(&args, 2)),
        "orphan-zombies" => orphan_zombies(
            num_arg(&args, 1),
            args.get(2).map_or(0, |_| num_arg(&args, 2)),
        ),
        "subreaper-null-waitid" => subreaper_null_waitid(num_arg(&args, 1)),
        "subreaper-null-waitid-serial" => subreaper_null_waitid_serial(num_arg(&args, 1)),
        "subreaper-ignores-sigchld" => subreaper_ignores_sigchld(num_arg(&args, 1)),
        "join-fork" => join_fork(args.get(1).map_or("-", String::as_str)),
        "pids-max-fork" => pids_max_fork(args.get(1).map_or("", String::as_str)),
        "cgroup-storm" => cgroup_storm(
            args.get(1).map_or("", String::as_str),
            num_arg(&args, 2),
            num_arg(&args, 3),
            num_arg(&args, 4),
        ),
        "exec-errors" => exec_errors(&dir_arg(&args)),
        "crash" => crash(&dir_arg(&args)),
        "crash-loop" => crash_loop(),
        "nproc-burst" => nproc_burst(num_arg(&args, 1)),
        "fork-bomb" => fork_bomb(num_arg(&args, 1), args.get(2).map_or("", String::as_str)),
        "spin" => spin(&args),
        "exec-storm" => exec_storm(num_arg(&args, 1)),
        other => broken(&format!("unknown mode {other:?}\n{USAGE}")),
    };
    std::process::exit(code);
}

// ---------------------------------------------------------------------------
// Modes

/// A child `_exit(7)`s; the workload reaps it.
fn fork_exit() -> i32 {
    let child = fork_or_die();
    if child == 0 {
        child_exit(7);
    }
    expect_exited(child, wait_pid(child), 7);
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// A child execs /bin/echo with non-ASCII UTF-8 arguments.
fn exec_nonascii() -> i32 {
    let argv = cstrings(&[b"echo", "héllo".as_bytes(), "日本語".as_bytes()]);
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(c"/bin/echo", &argv);
    }
    expect_exited(child, wait_pid(child), 0);
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// posix_spawn(/bin/true): glibc creates the child with clone(CLONE_VM | CLONE_VFORK).
fn posix_spawn() -> i32 {
    let argv = cstrings(&[b"true"]);
    let argv_ptrs = ptr_array(&argv);
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    let mut child: libc::pid_t = 0;
    // SAFETY: the path and argv/envp arrays are NUL-terminated and outlive the call;
    // null file actions and attributes mean defaults.
    let rc = unsafe {
        libc::posix_spawn(
            &mut child,
            c"/bin/true".as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv_ptrs.as_ptr(),
            envp.as_ptr(),
        )
    };
    if rc != 0 {
        broken(&format!(
            "posix_spawn /bin/true: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    expect_exited(child, wait_pid(child), 0);
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// A middle process forks a child that `_exit(3)`s at once, never waits for it,
/// and exits 300 ms after the child became a zombie. The zombie is then
/// reparented (to the nearest subreaper or init) and reaped there.
fn zombie_orphan() -> i32 {
    let (rd, wr) = pipe_or_die();
    let middle = fork_or_die();
    if middle == 0 {
        close(rd);
        let child = fork_or_exit();
        if child == 0 {
            child_exit(3);
        }
        write_u32(wr, child as u32);
        if !wait_state(child, child, 'Z') {
            child_exit(BROKEN);
        }
        sleep_ms(300);
        child_exit(0);
    }
    close(wr);
    let child = read_u32s(rd);
    let [child] = child[..] else {
        broken(&format!(
            "zombie-orphan: expected one pid from the middle process, got {child:?}"
        ));
    };
    expect_exited(middle, wait_pid(middle), 0);
    report(json!({ "self": getpid(), "middle": middle, "child": child }));
    0
}

/// Five children exit with 100..104; once all are zombies the workload reaps them
/// in reverse order.
fn reverse_wait() -> i32 {
    let mut children = Vec::new();
    for i in 0..5 {
        let child = fork_or_die();
        if child == 0 {
            child_exit(100 + i);
        }
        children.push(child);
    }
    for &child in &children {
        if !wait_state(child, child, 'Z') {
            broken(&format!(
                "reverse-wait: child {child} did not become a zombie"
            ));
        }
    }
    for (i, &child) in children.iter().enumerate().rev() {
        expect_exited(child, wait_pid(child), 100 + i as i32);
    }
    report(json!({ "self": getpid(), "children": children }));
    0
}

/// A child waits in pause(); the workload kills it with SIGKILL and reaps it.
fn sigkill() -> i32 {
    let child = fork_or_die();
    if child == 0 {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    // Kill it once it sleeps in pause(), so it is a running process that gets killed.
    if !wait_state(child, child, 'S') {
        broken("sigkill: child never went to sleep in pause()");
    }
    // SAFETY: plain syscall on our own child.
    if unsafe { libc::kill(child, libc::SIGKILL) } != 0 {
        broken(&format!(
            "kill({child}, SIGKILL): {}",
            std::io::Error::last_os_error()
        ));
    }
    let status = wait_pid(child);
    if !libc::WIFSIGNALED(status) || libc::WTERMSIG(status) != libc::SIGKILL {
        broken(&format!(
            "sigkill: child {child} wait status {status:#x}, expected killed by SIGKILL"
        ));
    }
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// Three threads end; once the kernel has released them the process exit(5)s.
fn threads_exit() -> i32 {
    let me = getpid();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                sleep_ms(50);
                gettid()
            })
        })
        .collect();
    let tids: Vec<i32> = handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect();
    // pthread_join returns when the kernel clears the thread's tid (mm_release), which
    // can be before the thread reaches sched_process_exit. Its /proc/PID/task entry goes
    // away only in release_task, after the exit tracepoint, so wait for that.
    for &tid in &tids {
        if !wait_gone(&format!("/proc/{me}/task/{tid}")) {
            broken(&format!("threads-exit: thread {tid} still listed in /proc"));
        }
    }
    report(json!({ "self": me, "threads": tids }));
    5
}

/// The main thread exits alone (SYS_exit, not exit_group); a second thread, once the
/// leader is a zombie, ends the process with exit_group(9).
fn leader_exits_first() -> i32 {
    let me = getpid();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(gettid()).expect("main thread gone");
        // A dead leader stays as a zombie task until the whole group is dead
        // (kernel/exit.c, delay_group_leader).
        if !wait_state(me, me, 'Z') {
            eprintln!("tracer-workload: leader-exits-first: leader thread never exited");
            // SAFETY: ends the process; nothing to clean up.
            unsafe { libc::syscall(libc::SYS_exit_group, BROKEN) };
        }
        // SAFETY: ends the whole process; that is the point.
        unsafe { libc::syscall(libc::SYS_exit_group, 9) };
        unreachable!("exit_group returned");
    });
    let thread = rx.recv().expect("second thread did not start");
    report(json!({ "self": me, "thread": thread }));
    // SAFETY: ends only this thread; the process lives on in the second thread, which
    // touches no data owned by this one's stack.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("SYS_exit returned");
}

/// A non-leader thread execs /bin/true: the kernel makes it the leader (de_thread),
/// so the pid stays and the thread's old tid is gone.
fn thread_exec() -> i32 {
    let me = getpid();
    let argv = cstrings(&[b"true"]);
    let t = std::thread::spawn(move || {
        let tid = gettid();
        report(json!({ "self": me, "thread": tid }));
        exec_or_exit(c"/bin/true", &argv);
    });
    let _ = t.join();
    broken("thread-exec: the exec'ing thread returned");
}

/// execve of a path that does not exist fails with ENOENT; the workload goes on.
fn enoent() -> i32 {
    let err = exec_fails(c"/nonexistent/tracer-test", &cstrings(&[b"tracer-test"]));
    if err != libc::ENOENT {
        broken(&format!(
            "enoent: execve failed with errno {err}, expected ENOENT"
        ));
    }
    report(json!({ "self": getpid(), "filename": "/nonexistent/tracer-test" }));
    0
}

/// clone(CLONE_SIGHAND) without CLONE_VM: kernel/fork.c copy_process refuses it
/// with EINVAL, for root too, so a fork fails without exhausting anything.
fn clone_einval() -> i32 {
    // SAFETY: raw clone that the kernel refuses: no child is created.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_SIGHAND | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if rc != -1 || errno() != libc::EINVAL {
        broken(&format!(
            "clone-einval: clone returned {rc} (errno {}), expected EINVAL",
            errno()
        ));
    }
    report(json!({ "self": getpid() }));
    0
}

/// execve with a file name pointer that points at nothing: the kernel's getname
/// fails with EFAULT (fs/namei.c strncpy_from_user), and so does the tracer's read
/// of the name at the syscall's exit, which `-vv` shows as a kernel diagnostic.
fn efault() -> i32 {
    let argv = cstrings(&[b"tracer-test"]);
    let ptrs = ptr_array(&argv);
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // Address 1 (the alignment of a char), never mapped: below vm.mmap_min_addr.
    let bad = std::ptr::dangling::<libc::c_char>();
    // SAFETY: the kernel checks the bad pointer and fails with EFAULT.
    unsafe {
        libc::execve(
            bad,
            ptrs.as_ptr() as *const *const libc::c_char,
            envp.as_ptr(),
        )
    };
    let err = errno();
    if err != libc::EFAULT {
        broken(&format!(
            "efault: execve failed with errno {err}, expected EFAULT"
        ));
    }
    report(json!({ "self": getpid() }));
    0
}

/// A child execs a `#!/bin/sh` script that exits 4. binfmt_script
/// (fs/binfmt_script.c, load_script) puts the interpreter in argv[0] and the script
/// path after it; the exec'd file name stays the script's.
fn script() -> i32 {
    let me = getpid();
    // Short name so the comm (basename, 15 bytes) is the whole name.
    let path = std::env::temp_dir().join(format!("tws-{me}.sh"));
    std::fs::write(&path, "#!/bin/sh\nexit 4\n")
        .unwrap_or_else(|e| broken(&format!("write {}: {e}", path.display())));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| broken(&format!("chmod {}: {e}", path.display())));
    }
    let cpath = CString::new(path.as_os_str().as_bytes()).expect("temp path has a NUL");
    let argv = vec![cpath.clone()];
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(&cpath, &argv);
    }
    let status = wait_pid(child);
    let _ = std::fs::remove_file(&path);
    expect_exited(child, status, 4);
    report(
        json!({ "self": me, "child": child, "script": path.to_str().expect("temp path is UTF-8") }),
    );
    0
}

/// A shell script that starts `n` helpers (`/bin/false`, one after the other) and
/// then execs `/bin/sleep 0`, as a `run.sh` that prepares and then execs its
/// service does: the forks are the script's, made before it became `sleep`.
fn script_then_exec(n: u64) -> i32 {
    let me = getpid();
    // Short name so the comm (basename, 15 bytes) is the whole name.
    let path = std::env::temp_dir().join(format!("twx-{me}.sh"));
    let text = format!(
        "#!/bin/sh\ni=0\nwhile [ \"$i\" -lt {n} ]; do /bin/false; i=$((i + 1)); done\nexec /bin/sleep 0\n"
    );
    std::fs::write(&path, text)
        .unwrap_or_else(|e| broken(&format!("write {}: {e}", path.display())));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| broken(&format!("chmod {}: {e}", path.display())));
    }
    let cpath = CString::new(path.as_os_str().as_bytes()).expect("temp path has a NUL");
    let argv = vec![cpath.clone()];
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(&cpath, &argv);
    }
    let status = wait_pid(child);
    let _ = std::fs::remove_file(&path);
    expect_exited(child, status, 0);
    report(json!({
        "self": me,
        "script_pid": child,
        "script": path.to_str().expect("temp path is UTF-8"),
        "helpers": n,
    }));
    0
}

/// A child execs /bin/true with arguments that are not valid UTF-8, next to one
/// that is valid UTF-8 but looks like an escape.
fn nonutf8() -> i32 {
    let argv = cstrings(&[
        b"true",
        b"\xff\xfe",
        b"a\\xZZ",
        b"ok\xe6\x97",
        "日".as_bytes(),
    ]);
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(c"/bin/true", &argv);
    }
    expect_exited(child, wait_pid(child), 0);
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// Number of 10-byte arguments long-argv passes: 20,000 bytes, well over the 4 KiB kept.
const LONG_ARGS: usize = 2000;

/// A child execs /bin/true with ~20 KiB of arguments.
fn long_argv() -> i32 {
    let mut args: Vec<Vec<u8>> = vec![b"true".to_vec()];
    // 9 characters and the NUL: 10 bytes each.
    args.extend((0..LONG_ARGS).map(|i| format!("a{i:08}").into_bytes()));
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let argv = cstrings(&refs);
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(c"/bin/true", &argv);
    }
    expect_exited(child, wait_pid(child), 0);
    report(json!({ "self": getpid(), "child": child, "args": LONG_ARGS, "first": "a00000000" }));
    0
}

/// The workload is a child subreaper. A middle child forks a grandchild and exits at
/// once; the grandchild is adopted by the workload (kernel/exit.c, find_new_reaper),
/// notices it (getppid), and exits; the workload reaps both.
fn subreaper() -> i32 {
    // SAFETY: plain prctl on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        broken(&format!(
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        ));
    }
    let (rd, wr) = pipe_or_die();
    let middle = fork_or_die();
    if middle == 0 {
        close(rd);
        // In the middle process `middle` is 0: take its own pid before forking.
        // SAFETY: getpid has no preconditions.
        let middle_pid = unsafe { libc::getpid() };
        let grandchild = fork_or_exit();
        if grandchild == 0 {
            close(wr);
            // Exit only once adopted, so the exit is the adopted process's.
            let code = if wait_reparented(middle_pid) {
                0
            } else {
                BROKEN
            };
            child_exit(code);
        }
        write_u32(wr, grandchild as u32);
        child_exit(0);
    }
    close(wr);
    let got = read_u32s(rd);
    let [grandchild] = got[..] else {
        broken(&format!(
            "subreaper: expected one pid from the middle process, got {got:?}"
        ));
    };
    let grandchild = grandchild as i32;
    expect_exited(middle, wait_pid(middle), 0);
    // Succeeds only because the workload adopted it.
    expect_exited(grandchild, wait_pid(grandchild), 0);
    report(json!({ "self": getpid(), "middle": middle, "grandchild": grandchild }));
    0
}

/// With SIGCHLD ignored the kernel releases an exited child by itself
/// (kernel/signal.c, do_notify_parent: autoreap).
fn autoreap() -> i32 {
    // SAFETY: setting a disposition; no handler runs.
    if unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) } == libc::SIG_ERR {
        broken(&format!(
            "signal(SIGCHLD, SIG_IGN): {}",
            std::io::Error::last_os_error()
        ));
    }
    let child = fork_or_die();
    if child == 0 {
        child_exit(0);
    }
    let deadline = deadline();
    // kill(pid, 0) fails with ESRCH once the task is released.
    // SAFETY: signal 0 only checks for existence.
    while unsafe { libc::kill(child, 0) } == 0 {
        if Instant::now() > deadline {
            broken(&format!("autoreap: child {child} was not released"));
        }
        sleep_ms(1);
    }
    // Nothing left to wait for: the kernel reaped it.
    // SAFETY: plain syscall.
    let rc = unsafe { libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) };
    if rc != -1 || errno() != libc::ECHILD {
        broken(&format!(
            "autoreap: waitpid({child}) returned {rc}, expected ECHILD"
        ));
    }
    report(json!({ "self": getpid(), "child": child }));
    0
}

/// The workload exits at once with 0; its child, once orphaned, lives 500 ms more.
fn orphan_outlives() -> i32 {
    let me = getpid();
    let child = fork_or_die();
    if child == 0 {
        if !wait_reparented(me) {
            child_exit(BROKEN);
        }
        sleep_ms(500);
        child_exit(0);
    }
    report(json!({ "self": me, "child": child }));
    0
}

/// A child `_exit(6)`s. The workload first looks at it with waitid(WNOWAIT), which
/// leaves it a zombie, then fails an exec of a marker path (a record with a known
/// place in the stream), then reaps it for real.
fn wnowait() -> i32 {
    let child = fork_or_die();
    if child == 0 {
        child_exit(6);
    }
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid out-pointer.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            child as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled in a SIGCHLD siginfo.
    let (si_pid, si_status) = unsafe { (info.si_pid(), info.si_status()) };
    if rc != 0 || si_pid != child || si_status != 6 {
        broken(&format!(
            "wnowait: waitid returned {rc}, pid {si_pid}, status {si_status}"
        ));
    }
    let marker = c"/nonexistent/tracer-wnowait-marker";
    let err = exec_fails(marker, &cstrings(&[b"marker"]));
    if err != libc::ENOENT {
        broken(&format!(
            "wnowait: marker execve failed with errno {err}, expected ENOENT"
        ));
    }
    expect_exited(child, wait_pid(child), 6);
    report(json!({ "self": getpid(), "child": child, "marker": marker.to_str().expect("ASCII") }));
    0
}

/// Two workers each fork+exec /bin/true and wait for it, `n` times in all.
fn storm(n: usize) -> i32 {
    let argv = cstrings(&[b"true"]);
    let mut workers = Vec::new();
    let mut pipes = Vec::new();
    for w in 0..2 {
        let count = n / 2 + if w == 0 { n % 2 } else { 0 };
        let (rd, wr) = pipe_or_die();
        let worker = fork_or_die();
        if worker == 0 {
            close(rd);
            let mut failed = false;
            for _ in 0..count {
                let child = fork_or_exit();
                if child == 0 {
                    exec_or_exit(c"/bin/true", &argv);
                }
                // 1,500 pids are 6 KB: the pipe holds them all without a reader.
                write_u32(wr, child as u32);
                let status = wait_pid(child);
                failed |= !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0;
            }
            child_exit(if failed { BROKEN } else { 0 });
        }
        close(wr);
        workers.push(worker);
        pipes.push(rd);
    }
    let mut children = Vec::with_capacity(n);
    for (&worker, &rd) in workers.iter().zip(&pipes) {
        children.extend(read_u32s(rd));
        expect_exited(worker, wait_pid(worker), 0);
    }
    if children.len() != n {
        broken(&format!(
            "storm: {} children reported, expected {n}",
            children.len()
        ));
    }
    report(json!({ "self": getpid(), "workers": workers, "children": children }));
    0
}

// ---------------------------------------------------------------------------
// Helpers

/// Prints the `pids:` line and flushes it: the test reads it from the tracer's
/// stdout, which the workload inherits.
fn report(facts: Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "pids: {facts}")
        .and_then(|()| out.flush())
        .expect("stdout");
}

fn broken(msg: &str) -> ! {
    eprintln!("tracer-workload: {msg}");
    let _ = std::io::stderr().flush();
    std::process::exit(BROKEN);
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Ends a forked child without running the parent's atexit handlers or flushing
/// stdio buffers it inherited.
fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

fn fork_raw() -> libc::pid_t {
    // SAFETY: the workload is single-threaded whenever it forks, and children only
    // use async-signal-safe calls or plain reads.
    unsafe { libc::fork() }
}

fn fork_or_die() -> libc::pid_t {
    let pid = fork_raw();
    if pid < 0 {
        broken(&format!("fork: {}", std::io::Error::last_os_error()));
    }
    pid
}

/// fork in a child process, which must not run the parent's exit path.
fn fork_or_exit() -> libc::pid_t {
    let pid = fork_raw();
    if pid < 0 {
        child_exit(BROKEN);
    }
    pid
}

fn cstrings(args: &[&[u8]]) -> Vec<CString> {
    args.iter()
        .map(|a| CString::new(*a).expect("argument has a NUL"))
        .collect()
}

fn ptr_array(args: &[CString]) -> Vec<*mut libc::c_char> {
    args.iter()
        .map(|a| a.as_ptr() as *mut libc::c_char)
        .chain([std::ptr::null_mut()])
        .collect()
}

/// execve with an empty environment; returns the errno it failed with.
fn exec_fails(path: &CStr, argv: &[CString]) -> i32 {
    let ptrs = ptr_array(argv);
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated path, argv and envp arrays that outlive the call.
    unsafe {
        libc::execve(
            path.as_ptr(),
            ptrs.as_ptr() as *const *const libc::c_char,
            envp.as_ptr(),
        )
    };
    errno()
}

/// execve in a forked child; exits 127 (as shells do) when it fails.
fn exec_or_exit(path: &CStr, argv: &[CString]) -> ! {
    exec_fails(path, argv);
    child_exit(127)
}

/// waitpid for one child, retrying on EINTR; returns the wait status.
fn wait_pid(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        if rc < 0 && errno() == libc::EINTR {
            continue;
        }
        broken(&format!(
            "waitpid({pid}): returned {rc}: {}",
            std::io::Error::last_os_error()
        ));
    }
}

fn expect_exited(pid: libc::pid_t, status: i32, code: i32) {
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != code {
        broken(&format!(
            "process {pid}: wait status {status:#x}, expected exit code {code}"
        ));
    }
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Polls until `cond` holds; false if it did not before the deadline.
fn poll(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = deadline();
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        sleep_ms(1);
    }
    true
}

/// The state letter of a task from /proc/PID/task/TID/stat (the field after the
/// parenthesised comm), or None if it is gone.
fn task_state(pid: libc::pid_t, tid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Waits until the task is in `state`.
fn wait_state(pid: libc::pid_t, tid: libc::pid_t, state: char) -> bool {
    poll(|| task_state(pid, tid) == Some(state))
}

fn wait_gone(path: &str) -> bool {
    poll(|| !std::path::Path::new(path).exists())
}

/// Waits until this process's parent is no longer `old_parent`.
fn wait_reparented(old_parent: libc::pid_t) -> bool {
    // SAFETY: no preconditions.
    poll(|| unsafe { libc::getppid() } != old_parent)
}

fn pipe_or_die() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        broken(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    (fds[0], fds[1])
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

/// Writes one pid to a pipe (usable in a forked child: a single write syscall).
fn write_u32(fd: i32, v: u32) {
    let bytes = v.to_ne_bytes();
    // SAFETY: bytes is valid for its length. Writes of 4 bytes to a pipe are atomic.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n != bytes.len() as isize {
        child_exit(BROKEN);
    }
}

/// Reads native-endian u32s from a pipe until every writer has closed it.
fn read_u32s(fd: i32) -> Vec<u32> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: chunk is valid for its length.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => break,
            n if n > 0 => buf.extend_from_slice(&chunk[..n as usize]),
            _ if errno() == libc::EINTR => {}
            _ => broken(&format!("read pipe: {}", std::io::Error::last_os_error())),
        }
    }
    close(fd);
    if buf.len() % 4 != 0 {
        broken(&format!("pipe carried {} bytes, not whole pids", buf.len()));
    }
    buf.chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

// ---------------------------------------------------------------------------
// Modes the CLI tests (tests/watch_cli.rs) drive step by step

/// For `watch -p`: started by the test, not by the tracer. Waits for a line on
/// stdin (the test sends it once the tracer follows this process), then:
/// a child execs /bin/true; a middle child forks a grandchild that `_exit(3)`s and
/// exits 4 once it reaped it; an orphan child waits until it is reparented (to the
/// test, a subreaper) and exits 0 when stdin reaches end of file. Reports after
/// reaping the first two, and exits 0 while the orphan still runs.
fn gated() -> i32 {
    let me = getpid();
    if !read_line_fd0() {
        broken("gated: stdin closed before the go line");
    }
    let exec_child = fork_or_die();
    if exec_child == 0 {
        exec_or_exit(c"/bin/true", &cstrings(&[b"true"]));
    }
    let (rd, wr) = pipe_or_die();
    let middle = fork_or_die();
    if middle == 0 {
        close(rd);
        let grandchild = fork_or_exit();
        if grandchild == 0 {
            child_exit(3);
        }
        write_u32(wr, grandchild as u32);
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(grandchild, &mut status, 0) };
        let ok = rc == grandchild && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3;
        child_exit(if ok { 4 } else { BROKEN });
    }
    close(wr);
    let got = read_u32s(rd);
    let [grandchild] = got[..] else {
        broken(&format!(
            "gated: expected one pid from the middle process, got {got:?}"
        ));
    };
    let orphan = fork_or_die();
    if orphan == 0 {
        if !wait_reparented(me) {
            child_exit(BROKEN);
        }
        // Ends when the test closes the pipe (the test holds its only other writer).
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 || (n < 0 && errno() != libc::EINTR) {
                break;
            }
        }
        child_exit(0);
    }
    expect_exited(exec_child, wait_pid(exec_child), 0);
    expect_exited(middle, wait_pid(middle), 4);
    report(json!({
        "self": me,
        "exec_child": exec_child,
        "middle": middle,
        "grandchild": grandchild,
        "orphan": orphan,
    }));
    0
}

/// Reads fd 0 a byte at a time up to and including a newline, so nothing after
/// the line is taken from a pipe the forked children share. False at end of file.
fn read_line_fd0() -> bool {
    let mut b = 0u8;
    loop {
        // SAFETY: b is a valid one-byte buffer.
        let n = unsafe { libc::read(0, (&raw mut b).cast(), 1) };
        match n {
            1 if b == b'\n' => return true,
            1 => {}
            n if n < 0 && errno() == libc::EINTR => {}
            _ => return false,
        }
    }
}

/// For a stalled consumer: writes DIR/ready, waits until DIR/go exists (the test
/// stops the tracer in between), runs `storm N`, then writes DIR/done.
fn storm_gated(dir: &std::path::Path, n: usize) -> i32 {
    let ready = dir.join("ready");
    std::fs::write(&ready, getpid().to_string())
        .unwrap_or_else(|e| broken(&format!("write {}: {e}", ready.display())));
    let go = dir.join("go");
    if !poll(|| go.exists()) {
        broken(&format!("storm-gated: {} never appeared", go.display()));
    }
    let code = storm(n);
    let done = dir.join("done");
    std::fs::write(&done, "").unwrap_or_else(|e| broken(&format!("write {}: {e}", done.display())));
    code
}

/// Most forks fork-fail tries before it calls the limit broken.
const FORK_FAIL_TRIES: usize = 200;

/// Run as a non-root user (root ignores RLIMIT_NPROC): sets RLIMIT_NPROC to the
/// user's current task count + 2 and forks children that exit at once, reaping none
/// (a zombie still counts until released), until fork fails with EAGAIN
/// (kernel/fork.c, copy_process: is_rlimit_overlimit(UCOUNT_RLIMIT_NPROC)). Then
/// reaps them all.
fn fork_fail() -> i32 {
    // SAFETY: no preconditions.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        broken("fork-fail: run it as a non-root user (root ignores RLIMIT_NPROC)");
    }
    let tasks = user_tasks(uid);
    let limit = tasks + 2;
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: rl is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &rl) } != 0 {
        broken(&format!(
            "setrlimit(RLIMIT_NPROC, {limit}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut children = Vec::new();
    let mut err = None;
    for _ in 0..FORK_FAIL_TRIES {
        let pid = fork_raw();
        if pid == 0 {
            child_exit(0);
        }
        if pid < 0 {
            err = Some(errno());
            break;
        }
        children.push(pid);
    }
    for &c in &children {
        expect_exited(c, wait_pid(c), 0);
    }
    match err {
        Some(libc::EAGAIN) => {}
        Some(e) => broken(&format!(
            "fork-fail: fork failed with errno {e}, expected EAGAIN"
        )),
        None => broken(&format!(
            "fork-fail: {FORK_FAIL_TRIES} forks succeeded under RLIMIT_NPROC {limit}"
        )),
    }
    report(json!({
        "self": getpid(),
        "children": children,
        "errno": libc::EAGAIN,
        "limit": limit,
    }));
    0
}

/// Tasks (threads included: each holds an RLIMIT_NPROC count) of processes whose
/// real uid is `uid`, from /proc/PID/status.
fn user_tasks(uid: libc::uid_t) -> u64 {
    let dir = std::fs::read_dir("/proc").unwrap_or_else(|e| broken(&format!("read /proc: {e}")));
    let mut total = 0;
    for entry in dir.flatten() {
        if !entry.file_name().as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            total += field("Threads:").unwrap_or(1);
        }
    }
    total
}

/// Forks one child (which `_exit(0)`s) on each CPU it may run on, highest CPU
/// first, pinning itself to that CPU before each fork: the per-CPU counters of the
/// kernel programs then hold this process on several CPUs, the first one counted
/// last.
fn fork_on_cpus() -> i32 {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: allowed is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) } != 0 {
        broken(&format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) })
        .collect();
    let mut children = Vec::new();
    for &cpu in cpus.iter().rev() {
        // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: cpu is below CPU_SETSIZE; the set is valid.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: one is a valid cpu_set_t of the size passed.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one) } != 0 {
            broken(&format!(
                "sched_setaffinity(CPU {cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
        let child = fork_or_die();
        if child == 0 {
            child_exit(0);
        }
        expect_exited(child, wait_pid(child), 0);
        children.push(child);
    }
    report(json!({ "self": getpid(), "children": children, "cpus": cpus }));
    0
}

// ---------------------------------------------------------------------------
// Modes for the alert tests (tests/tests/alerts.rs)

/// Argument `i` as a positive number.
fn num_arg<T: std::str::FromStr + Default + PartialOrd>(args: &[String], i: usize) -> T {
    match args.get(i).map(|s| s.parse::<T>()) {
        Some(Ok(n)) if n > T::default() => n,
        _ => broken(&format!(
            "{}: argument {i} must be a positive number, got {:?}\n{USAGE}",
            args[0],
            args.get(i)
        )),
    }
}

/// The workload forks children that `_exit(0)` at once, reaping each, as fast as
/// it can for `secs` seconds or `max` children, whichever comes first; then it
/// idles `idle_ms` (so an alert's quiet period can pass).
fn fork_storm(secs: u64, max: usize, idle_ms: u64) -> i32 {
    let start = Instant::now();
    let mut n = 0usize;
    while n < max && start.elapsed() < Duration::from_secs(secs) {
        let child = fork_or_die();
        if child == 0 {
            child_exit(0);
        }
        expect_exited(child, wait_pid(child), 0);
        n += 1;
    }
    let storm_ms = start.elapsed().as_millis() as u64;
    sleep_ms(idle_ms);
    report(json!({ "self": getpid(), "children": n, "storm_ms": storm_ms }));
    0
}

/// The workload forks `n` children that `_exit(0)` at once, leaves them zombies
/// for `hold_ms` once all are, then reaps them.
fn zombies(n: usize, hold_ms: u64) -> i32 {
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let child = fork_or_die();
        if child == 0 {
            child_exit(0);
        }
        children.push(child);
    }
    for &c in &children {
        if !wait_state(c, c, 'Z') {
            broken(&format!("zombies: child {c} did not become a zombie"));
        }
    }
    sleep_ms(hold_ms);
    for &c in &children {
        expect_exited(c, wait_pid(c), 0);
    }
    report(json!({ "self": getpid(), "children": children }));
    0
}

/// The workload restarts `/bin/sh -c CMD` five times, 50 ms apart, and every run
/// fails: exit 3, exit 4, killed by SIGKILL, exit 5, exit 6.
fn crash_loop() -> i32 {
    let runs: [(&str, i32, i32); 5] = [
        ("exit 3", 3, 0),
        ("exit 4", 4, 0),
        ("kill -KILL $$", 0, libc::SIGKILL),
        ("exit 5", 5, 0),
        ("exit 6", 6, 0),
    ];
    let mut children = Vec::new();
    for (cmd, code, sig) in runs {
        let argv = cstrings(&[b"sh", b"-c", cmd.as_bytes()]);
        let child = fork_or_die();
        if child == 0 {
            exec_or_exit(c"/bin/sh", &argv);
        }
        let status = wait_pid(child);
        let ok = if sig != 0 {
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == sig
        } else {
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == code
        };
        if !ok {
            broken(&format!(
                "crash-loop: `sh -c {cmd:?}` ended with wait status {status:#x}"
            ));
        }
        children.push(child);
        sleep_ms(50);
    }
    report(json!({ "self": getpid(), "children": children }));
    0
}

/// uid and gid of `nobody`.
const NOBODY: u32 = 65534;
/// RLIMIT_NPROC of the limited process: itself and a few children.
const NPROC_LIMIT: u64 = 4;

/// A child of the workload ("limited") sets RLIMIT_NPROC to 4, becomes uid/gid
/// 65534 (root is exempt from the limit: kernel/fork.c copy_process lets
/// CAP_SYS_RESOURCE/CAP_SYS_ADMIN and the root user past it), forks children that
/// wait for it until fork fails with EAGAIN, and goes on until `n` forks have
/// failed. Then it lets its children go and reaps them.
fn nproc_burst(n: usize) -> i32 {
    let (rd, wr) = pipe_or_die();
    let limited = fork_or_die();
    if limited == 0 {
        close(rd);
        let lim = libc::rlimit {
            rlim_cur: NPROC_LIMIT,
            rlim_max: NPROC_LIMIT,
        };
        // SAFETY: plain syscalls with valid arguments, in a single-threaded child.
        let dropped = unsafe {
            libc::setrlimit(libc::RLIMIT_NPROC, &lim) == 0
                && libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
                && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0
        };
        if !dropped {
            child_exit(BROKEN);
        }
        // Children block reading this pipe until the limited process closes it.
        let (hold_rd, hold_wr) = pipe_or_die();
        let mut held = Vec::new();
        let mut failures = 0usize;
        let mut attempts = 0usize;
        // Other processes of uid 65534 come and go; allow for a few forks that succeed.
        while failures < n && attempts < 10 * n + 100 {
            attempts += 1;
            let child = fork_raw();
            if child == 0 {
                close(hold_wr);
                let mut b = [0u8; 1];
                // SAFETY: b is valid for one byte; returns at EOF.
                while unsafe { libc::read(hold_rd, b.as_mut_ptr().cast(), 1) } != 0 {}
                child_exit(0);
            }
            if child < 0 {
                if errno() != libc::EAGAIN {
                    child_exit(BROKEN);
                }
                failures += 1;
            } else {
                held.push(child);
            }
        }
        close(hold_wr);
        close(hold_rd);
        for c in held {
            wait_pid(c);
        }
        write_u32(wr, failures as u32);
        child_exit(if failures == n { 0 } else { BROKEN });
    }
    close(wr);
    let got = read_u32s(rd);
    expect_exited(limited, wait_pid(limited), 0);
    let [failures] = got[..] else {
        broken(&format!(
            "nproc-burst: expected one count from the limited process, got {got:?}"
        ));
    };
    report(json!({ "self": getpid(), "limited": limited, "failures": failures, "uid": NOBODY }));
    0
}

// ---------------------------------------------------------------------------
// Modes for the fault tests (tests/tests/faults.rs)

/// How a fork bomb is bounded.
enum Bound {
    /// Join the cgroup whose `cgroup.procs` is this file (its `pids.max` bounds it:
    /// kernel/cgroup/pids.c, pids_can_fork, fails the fork with EAGAIN).
    Cgroup(std::path::PathBuf),
    /// Become uid/gid 65534 with RLIMIT_NPROC N (root is exempt from the limit).
    Nproc(u64),
}

/// A bounded fork bomb for `secs` seconds. The workload (the "root") makes itself a
/// child subreaper, so every bomber orphaned by its parent's exit is reaped here,
/// then keeps starting bombers. A bomber forks twice (each child is a new bomber)
/// and exits, so the processes turn over as fast as the machine forks, and the
/// bound makes forks fail with EAGAIN all along. At the end the bombers stop
/// forking and the root reaps them all.
fn fork_bomb(secs: u64, bound: &str) -> i32 {
    let bound = if let Some(path) = bound.strip_prefix("cgroup:") {
        Bound::Cgroup(path.into())
    } else if let Some(Ok(n)) = bound.strip_prefix("nproc:").map(str::parse::<u64>) {
        Bound::Nproc(n)
    } else {
        broken(&format!(
            "fork-bomb: bound must be cgroup:PROCS_FILE or nproc:N, got {bound:?}\n{USAGE}"
        ));
    };
    match &bound {
        Bound::Cgroup(procs) => std::fs::write(procs, getpid().to_string())
            .unwrap_or_else(|e| broken(&format!("fork-bomb: join {}: {e}", procs.display()))),
        Bound::Nproc(n) => {
            let lim = libc::rlimit {
                rlim_cur: *n,
                rlim_max: *n,
            };
            // SAFETY: plain syscalls with valid arguments, single-threaded.
            let dropped = unsafe {
                libc::setrlimit(libc::RLIMIT_NPROC, &lim) == 0
                    && libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
                    && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0
            };
            if !dropped {
                broken(&format!(
                    "fork-bomb: cannot become uid {NOBODY} with RLIMIT_NPROC {n}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    // SAFETY: plain prctl on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        broken(&format!(
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        ));
    }
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut started, mut eagain, mut reaped) = (0u64, 0u64, 0u64);
    let mut reap = |flags: i32| -> bool {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid > 0 {
            reaped += 1;
        }
        pid > 0
    };
    while Instant::now() < end {
        let pid = fork_raw();
        if pid == 0 {
            bomber(end);
        }
        if pid > 0 {
            started += 1;
        } else if errno() == libc::EAGAIN {
            eagain += 1;
            // At the bound: wait for one to end rather than spin on EAGAIN.
            reap(0);
        } else {
            broken(&format!(
                "fork-bomb: fork: {}",
                std::io::Error::last_os_error()
            ));
        }
        while reap(libc::WNOHANG) {}
    }
    // Bombers stop forking at `end`; wait until none is left (ECHILD).
    while reap(0) || errno() == libc::EINTR {}
    if errno() != libc::ECHILD {
        broken(&format!(
            "fork-bomb: waitpid: {}",
            std::io::Error::last_os_error()
        ));
    }
    report(json!({
        "self": getpid(),
        "started": started,
        "eagain": eagain,
        "reaped": reaped,
        "secs": secs,
    }));
    0
}

/// One process of the bomb: forks twice, each child becoming a bomber itself, then
/// exits. Forked from a single-threaded process, it only calls fork, _exit and
/// clock_gettime (Instant::now), all async-signal-safe.
fn bomber(end: Instant) -> ! {
    let mut forks = 0;
    loop {
        if forks == 2 || Instant::now() >= end {
            child_exit(0);
        }
        forks += 1;
        if fork_raw() == 0 {
            forks = 0;
        }
    }
}

/// `spin CPU MS NICE`: pins itself to CPU, sets its nice value, and keeps that CPU
/// busy for MS milliseconds.
fn spin(args: &[String]) -> i32 {
    let arg = |i: usize| -> i64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| broken(&format!("spin needs CPU MS NICE (numbers)\n{USAGE}")))
    };
    let (cpu, ms, nice) = (arg(1) as usize, arg(2) as u64, arg(3) as i32);
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        broken(&format!("spin: no CPU {cpu}"));
    }
    // SAFETY: the set is valid and cpu is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut one) };
    // SAFETY: one is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one) } != 0 {
        broken(&format!(
            "sched_setaffinity(CPU {cpu}): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: plain syscall on ourselves.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        broken(&format!(
            "setpriority({nice}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let end = Instant::now() + Duration::from_millis(ms);
    let mut spins = 0u64;
    while Instant::now() < end {
        spins = std::hint::black_box(spins + 1);
    }
    report(json!({ "self": getpid(), "cpu": cpu, "spins": spins }));
    0
}

/// For filling the ring buffer with few processes: for `secs` seconds, a child
/// execs /bin/true with about 4 KiB of arguments (what the kernel programs keep of
/// argv, so each exec event is about 4 KiB) and is reaped, one after another.
fn exec_storm(secs: u64) -> i32 {
    let mut args: Vec<Vec<u8>> = vec![b"true".to_vec()];
    // 9 characters and the NUL: 10 bytes each.
    args.extend((0..410).map(|i| format!("x{i:08}").into_bytes()));
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let argv = cstrings(&refs);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut children = 0u64;
    while Instant::now() < end {
        let child = fork_or_die();
        if child == 0 {
            exec_or_exit(c"/bin/true", &argv);
        }
        expect_exited(child, wait_pid(child), 0);
        children += 1;
    }
    report(json!({ "self": getpid(), "children": children }));
    0
}

/// CLOCK_BOOTTIME ns: the clock of the tracer's `ktime_ns`.
fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A middle process forks `n` children that exit at once, waits until all are
/// zombies, sends their pids, then (unless `exit_after`) waits to be killed.
/// Returns (middle, children); `reset_sigchld` gives the middle process SIGCHLD's
/// default back (a disposition of SIG_IGN is inherited and would autoreap them).
fn middle_with_zombies(n: usize, exit_after: bool, reset_sigchld: bool) -> (i32, Vec<i32>) {
    let (rd, wr) = pipe_or_die();
    let middle = fork_or_die();
    if middle == 0 {
        close(rd);
        if reset_sigchld {
            // SAFETY: setting a disposition.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
        }
        let mut kids = Vec::with_capacity(n);
        for _ in 0..n {
            let kid = fork_or_exit();
            if kid == 0 {
                child_exit(0);
            }
            kids.push(kid);
        }
        for &k in &kids {
            if !wait_state(k, k, 'Z') {
                child_exit(BROKEN);
            }
            write_u32(wr, k as u32);
        }
        close(wr);
        if exit_after {
            child_exit(0);
        }
        loop {
            // SAFETY: waits for the SIGKILL.
            unsafe { libc::pause() };
        }
    }
    close(wr);
    let kids: Vec<i32> = read_u32s(rd).into_iter().map(|k| k as i32).collect();
    close(rd);
    if kids.len() != n {
        broken(&format!(
            "expected {n} zombie pids from the middle process, got {}",
            kids.len()
        ));
    }
    (middle, kids)
}

/// Polls until every pid's /proc entry is gone; returns, per pid, the boottime at
/// which it was first seen gone (the truth's upper bound).
fn gone_times(pids: &[i32]) -> Vec<u64> {
    let mut gone = vec![0u64; pids.len()];
    let ok = poll(|| {
        let mut left = false;
        for (i, &p) in pids.iter().enumerate() {
            if gone[i] == 0 {
                if std::path::Path::new(&format!("/proc/{p}")).exists() {
                    left = true;
                } else {
                    gone[i] = boottime_ns();
                }
            }
        }
        !left
    });
    if !ok {
        broken("zombies were not released before the deadline");
    }
    gone
}

/// `n` zombies under a middle process that holds them `hold_ms` and is then
/// killed: init adopts and reaps them (kernel/exit.c forget_original_parent), with
/// no wait the probes see.
fn orphan_zombies(n: usize, hold_ms: u64) -> i32 {
    let (middle, kids) = middle_with_zombies(n, false, false);
    sleep_ms(hold_ms);
    let killed_ns = boottime_ns();
    // SAFETY: kill of our own child.
    unsafe { libc::kill(middle, libc::SIGKILL) };
    let st = wait_pid(middle);
    if !libc::WIFSIGNALED(st) {
        broken(&format!(
            "middle {middle}: status {st:#x}, expected SIGKILL"
        ));
    }
    let gone = gone_times(&kids);
    report(json!({
        "self": getpid(), "middle": middle, "zombies": kids,
        "orphaned_ns": killed_ns, "gone_ns": gone,
    }));
    0
}

/// A child subreaper adopts `n` zombies when their parent exits and reaps them
/// with waitid(P_ALL, NULL infop): the kernel tells nobody whom it reaped.
fn subreaper_null_waitid(n: usize) -> i32 {
    // SAFETY: plain prctl on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        broken("PR_SET_CHILD_SUBREAPER failed");
    }
    let (middle, kids) = middle_with_zombies(n, true, false);
    expect_exited(middle, wait_pid(middle), 0);
    let orphaned_ns = boottime_ns();
    let mut reaped_ns = Vec::with_capacity(n);
    for _ in 0..n {
        // SAFETY: a NULL infop is allowed (kernel/exit.c SYSCALL_DEFINE5(waitid)).
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, std::ptr::null_mut(), libc::WEXITED) };
        if rc != 0 {
            broken(&format!("waitid: {}", std::io::Error::last_os_error()));
        }
        reaped_ns.push(boottime_ns());
    }
    report(json!({
        "self": getpid(), "middle": middle, "zombies": kids,
        "orphaned_ns": orphaned_ns, "gone_ns": vec![*reaped_ns.last().unwrap_or(&orphaned_ns); n],
    }));
    0
}

/// A child subreaper adopts `n` live children when their parent exits; then one
/// at a time each exits (end of file on its own pipe) and the subreaper reaps it
/// with waitid(P_ALL, NULL infop) before the next one exits: each wait has just
/// one child it can collect. `gone_ns` is when each wait returned.
fn subreaper_null_waitid_serial(n: usize) -> i32 {
    // SAFETY: plain prctl on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        broken("PR_SET_CHILD_SUBREAPER failed");
    }
    let turns: Vec<(i32, i32)> = (0..n).map(|_| pipe_or_die()).collect();
    let (rd, wr) = pipe_or_die();
    let middle = fork_or_die();
    if middle == 0 {
        close(rd);
        for &(turn, _) in &turns {
            let kid = fork_or_exit();
            if kid == 0 {
                // Only the workload's copy of the write ends may stay open, so
                // that closing it is this child's end of file; and the pid pipe's
                // end of file must come when the middle process exits.
                close(wr);
                for &(_, w) in &turns {
                    close(w);
                }
                let mut b = [0u8; 1];
                // SAFETY: reading into a local buffer; 0 is end of file.
                while unsafe { libc::read(turn, b.as_mut_ptr().cast(), 1) } < 0
                    && errno() == libc::EINTR
                {}
                child_exit(0);
            }
            write_u32(wr, kid as u32);
        }
        close(wr);
        child_exit(0);
    }
    close(wr);
    let kids: Vec<i32> = read_u32s(rd).into_iter().map(|k| k as i32).collect();
    close(rd);
    if kids.len() != n {
        broken(&format!(
            "expected {n} pids from the middle process, got {}",
            kids.len()
        ));
    }
    expect_exited(middle, wait_pid(middle), 0);
    let orphaned_ns = boottime_ns();
    let mut reaped_ns = Vec::with_capacity(n);
    for &(turn_rd, turn_wr) in &turns {
        close(turn_rd);
        close(turn_wr);
        // SAFETY: a NULL infop is allowed (kernel/exit.c SYSCALL_DEFINE5(waitid)).
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, std::ptr::null_mut(), libc::WEXITED) };
        if rc != 0 {
            broken(&format!("waitid: {}", std::io::Error::last_os_error()));
        }
        reaped_ns.push(boottime_ns());
    }
    report(json!({
        "self": getpid(), "middle": middle, "zombies": kids,
        "orphaned_ns": orphaned_ns, "gone_ns": reaped_ns,
    }));
    0
}

/// A child subreaper that ignores SIGCHLD adopts `n` zombies when their parent
/// exits: the kernel releases them right there (kernel/exit.c reparent_leader),
/// with no wait at all.
fn subreaper_ignores_sigchld(n: usize) -> i32 {
    // SAFETY: plain prctl and a disposition on ourselves.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0
        || unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) } == libc::SIG_ERR
    {
        broken("PR_SET_CHILD_SUBREAPER or signal(SIGCHLD, SIG_IGN) failed");
    }
    let orphaned_ns = boottime_ns();
    let (middle, kids) = middle_with_zombies(n, true, true);
    let mut all = kids.clone();
    all.push(middle);
    let gone = gone_times(&all);
    report(json!({
        "self": getpid(), "middle": middle, "zombies": kids,
        "orphaned_ns": orphaned_ns, "gone_ns": &gone[..kids.len()],
    }));
    0
}

// ---------------------------------------------------------------------------
// Modes for tests/tests/promises.rs (what README and docs/events.md promise)

/// Argument 1 as an existing directory.
fn dir_arg(args: &[String]) -> std::path::PathBuf {
    match args.get(1).map(std::path::PathBuf::from) {
        Some(d) if d.is_dir() => d,
        other => broken(&format!(
            "{}: argument 1 must be a directory, got {other:?}\n{USAGE}",
            args[0]
        )),
    }
}

/// Wall-clock time (CLOCK_REALTIME) in ns since the epoch.
fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Moves itself into the cgroup whose `cgroup.procs` is `procs` (none for `-`),
/// then a child execs /bin/true. Reports the wall clock just before the fork and
/// just after the reap.
fn join_fork(procs: &str) -> i32 {
    if procs != "-" {
        std::fs::write(procs, getpid().to_string())
            .unwrap_or_else(|e| broken(&format!("join-fork: join {procs}: {e}")));
    }
    let argv = cstrings(&[b"true"]);
    let before_ns = realtime_ns();
    let child = fork_or_die();
    if child == 0 {
        exec_or_exit(c"/bin/true", &argv);
    }
    expect_exited(child, wait_pid(child), 0);
    let after_ns = realtime_ns();
    report(
        json!({ "self": getpid(), "child": child, "before_ns": before_ns, "after_ns": after_ns }),
    );
    0
}

/// Joins the cgroup of `procs`, whose `pids.max` the test set to 2: one child fits
/// beside the workload, so the first fork succeeds and the second, while that child
/// lives, fails with EAGAIN (kernel/cgroup/pids.c, pids_can_fork, called by
/// copy_process through cgroup_can_fork) even for root, unlike RLIMIT_NPROC. Joining
/// is never refused by the limit (pids_can_attach charges without checking it).
fn pids_max_fork(procs: &str) -> i32 {
    if procs.is_empty() {
        broken("pids-max-fork: give the cgroup.procs file of a cgroup with pids.max 2");
    }
    std::fs::write(procs, getpid().to_string())
        .unwrap_or_else(|e| broken(&format!("pids-max-fork: join {procs}: {e}")));
    let (rd, wr) = pipe_or_die();
    let child = fork_or_die();
    if child == 0 {
        // Lives until the parent closes the pipe's write end: read returns 0 then.
        close(wr);
        let mut byte = 0u8;
        // SAFETY: byte is a valid one-byte buffer; read is async-signal-safe.
        unsafe { libc::read(rd, (&raw mut byte).cast(), 1) };
        child_exit(0);
    }
    close(rd);
    let failed = fork_raw();
    if failed == 0 {
        child_exit(0);
    }
    let err = errno();
    close(wr);
    expect_exited(child, wait_pid(child), 0);
    if failed > 0 {
        expect_exited(failed, wait_pid(failed), 0);
        broken(&format!(
            "pids-max-fork: a second fork succeeded in {procs} (is pids.max 2?)"
        ));
    }
    if err != libc::EAGAIN {
        broken(&format!(
            "pids-max-fork: fork failed with errno {err}, expected EAGAIN"
        ));
    }
    report(json!({ "self": getpid(), "child": child, "errno": err }));
    0
}

/// Joins the cgroup of `procs`, then starts `parents` processes that each fork a
/// child (which `_exit(0)`s), reap it and sleep `pace_ms`, for `secs` seconds: a
/// storm of the whole cgroup in which no parent forks faster than 1000/`pace_ms`
/// per second.
fn cgroup_storm(procs: &str, parents: usize, secs: u64, pace_ms: u64) -> i32 {
    std::fs::write(procs, getpid().to_string())
        .unwrap_or_else(|e| broken(&format!("cgroup-storm: join {procs:?}: {e}")));
    let end = Instant::now() + Duration::from_secs(secs);
    let (rd, wr) = pipe_or_die();
    let mut pids = Vec::with_capacity(parents);
    for _ in 0..parents {
        let parent = fork_or_die();
        if parent == 0 {
            close(rd);
            let mut n = 0u32;
            // Instant::now is clock_gettime, nanosleep and fork/wait are syscalls:
            // all async-signal-safe.
            while Instant::now() < end {
                let child = fork_or_exit();
                if child == 0 {
                    child_exit(0);
                }
                let mut status = 0;
                // SAFETY: status is a valid out-pointer.
                if unsafe { libc::waitpid(child, &mut status, 0) } != child {
                    child_exit(BROKEN);
                }
                n += 1;
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: (pace_ms * 1_000_000) as libc::c_long,
                };
                // SAFETY: valid timespec; no remainder wanted.
                unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
            }
            write_u32(wr, n);
            child_exit(0);
        }
        pids.push(parent);
    }
    close(wr);
    let counts = read_u32s(rd);
    for &p in &pids {
        expect_exited(p, wait_pid(p), 0);
    }
    if counts.len() != parents {
        broken(&format!(
            "cgroup-storm: {} of {parents} parents reported",
            counts.len()
        ));
    }
    let children: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    report(json!({ "self": getpid(), "parents": pids, "children": children, "secs": secs }));
    0
}

/// Writes `content` to `dir/name` with `mode`; returns the path.
fn write_file(dir: &std::path::Path, name: &str, content: &[u8], mode: u32) -> CString {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
        .unwrap_or_else(|e| broken(&format!("write {}: {e}", path.display())));
    CString::new(path.as_os_str().as_bytes()).expect("path has a NUL")
}

/// Failed and unusual execs: execve of a file without execute permission
/// (EACCES), of an executable file that is no known format and has no `#!`
/// (ENOEXEC), an execveat of a name relative to a directory descriptor that fails
/// (ENOENT) and one that works, and an fexecve.
fn exec_errors(dir: &std::path::Path) -> i32 {
    let me = getpid();
    let argv = cstrings(&[b"true"]);
    let noexec = write_file(dir, "tw-noexec", b"#!/bin/sh\nexit 0\n", 0o644);
    let eacces = exec_fails(&noexec, &argv);
    // Not ELF, no `#!`, too short for any other binfmt handler: fs/exec.c
    // search_binary_handler returns ENOEXEC.
    let garbage = write_file(dir, "tw-garbage", b"\x01\x02\x03 not a program\n", 0o755);
    let enoexec = exec_fails(&garbage, &argv);
    if (eacces, enoexec) != (libc::EACCES, libc::ENOEXEC) {
        broken(&format!(
            "exec-errors: errno {eacces} and {enoexec}, expected EACCES and ENOEXEC"
        ));
    }
    let bin = std::fs::File::open("/bin")
        .unwrap_or_else(|e| broken(&format!("exec-errors: open /bin: {e}")));
    let true_file = std::fs::File::open("/bin/true")
        .unwrap_or_else(|e| broken(&format!("exec-errors: open /bin/true: {e}")));
    use std::os::fd::AsRawFd;
    let (dirfd, filefd) = (bin.as_raw_fd(), true_file.as_raw_fd());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let ptrs = ptr_array(&argv);
    let execveat = |fd: i32, name: &CStr, flags: i32| -> i32 {
        // SAFETY: NUL-terminated name, argv and envp that outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                name.as_ptr(),
                ptrs.as_ptr(),
                envp.as_ptr(),
                flags,
            )
        };
        errno()
    };
    let missing = execveat(dirfd, c"tw-no-such-program", 0);
    if missing != libc::ENOENT {
        broken(&format!(
            "exec-errors: execveat of a missing name: errno {missing}, expected ENOENT"
        ));
    }
    let execveat_child = fork_or_die();
    if execveat_child == 0 {
        execveat(dirfd, c"true", 0);
        child_exit(127);
    }
    expect_exited(execveat_child, wait_pid(execveat_child), 0);
    let fexecve_child = fork_or_die();
    if fexecve_child == 0 {
        // SAFETY: an open descriptor, NUL-terminated argv and envp.
        unsafe { libc::fexecve(filefd, ptrs.as_ptr().cast(), envp.as_ptr()) };
        child_exit(127);
    }
    expect_exited(fexecve_child, wait_pid(fexecve_child), 0);
    report(json!({
        "self": me,
        "noexec": noexec.to_str().expect("UTF-8 temp path"),
        "garbage": garbage.to_str().expect("UTF-8 temp path"),
        "dirfd": dirfd,
        "execveat_child": execveat_child,
        "filefd": filefd,
        "fexecve_child": fexecve_child,
    }));
    0
}

/// A child in `dir` with an unlimited RLIMIT_CORE is killed by SIGSEGV and dumps
/// core (where is up to /proc/sys/kernel/core_pattern, which the test checks).
fn crash(dir: &std::path::Path) -> i32 {
    let cdir = CString::new(dir.as_os_str().as_bytes()).expect("path has a NUL");
    let child = fork_or_die();
    if child == 0 {
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: plain syscalls on itself; SIG_DFL undoes the handler Rust's
        // runtime installed for stack overflows, so the signal kills.
        unsafe {
            if libc::chdir(cdir.as_ptr()) != 0
                || libc::setrlimit(libc::RLIMIT_CORE, &unlimited) != 0
            {
                libc::_exit(BROKEN);
            }
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::kill(libc::getpid(), libc::SIGSEGV);
        }
        child_exit(BROKEN);
    }
    let status = wait_pid(child);
    if !libc::WIFSIGNALED(status) || libc::WTERMSIG(status) != libc::SIGSEGV {
        broken(&format!(
            "crash: child {child}: wait status {status:#x}, expected SIGSEGV"
        ));
    }
    report(json!({ "self": getpid(), "child": child, "core_dumped": libc::WCOREDUMP(status) }));
    0
}
