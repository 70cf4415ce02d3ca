//! tracer-storm: a process (or thread) storm for `cargo xtask bench`.
//!
//! `tracer-storm MODE [--count N] [--workers W] [--batch B] [--exec PATH]` forks W worker
//! processes, starts them together, and has them do N operations in all (split evenly):
//!
//! - `fork-exit`: fork; the child `_exit(0)`s; the worker waits for it.
//! - `fork-exec`: fork; the child execs PATH (`/bin/true`); the worker waits for it.
//! - `posix-spawn`: `posix_spawn(PATH)` (glibc: clone(CLONE_VM | CLONE_VFORK)) and wait.
//! - `threads`: create a thread that returns at once, and join it.
//! - `zombie`: fork B children that `_exit(0)` at once, then reap the batch, so each
//!   child spends a while as a zombie before its reaping.
//!
//! Every child's wait status is checked: a child that did not exit with 0 makes the
//! storm exit 2 with a message, so a broken storm cannot pass for a slow or lossy tracer.
//! At the end it prints one JSON line on stdout: the operations done, the time they took
//! (from the moment all workers were released to the last one reaped) and the pids of
//! the workers, which the bench uses to pick the storm's events out of everything the
//! machine did meanwhile (every child's parent, and every thread's process, is a worker).

use std::ffi::CString;
use std::io::Write;
use std::time::Instant;

use serde_json::json;

/// Exit status of a storm whose own checks failed.
const BROKEN: i32 = 2;

const USAGE: &str = "usage: tracer-storm MODE [--count N] [--workers W] [--batch B] [--exec PATH]
modes: fork-exit fork-exec posix-spawn threads zombie
  --count N    operations in all, split over the workers (default 10000)
  --workers W  worker processes running at the same time (default 2)
  --batch B    zombie mode: children forked before the batch is reaped (default 32)
  --exec PATH  fork-exec and posix-spawn: the program the children run (default /bin/true)";

/// Stack of the threads of the `threads` mode: they return at once, and a small stack
/// keeps the cost to what creating a thread costs, not to mapping 2 MiB.
const THREAD_STACK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    ForkExit,
    ForkExec,
    PosixSpawn,
    Threads,
    Zombie,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "fork-exit" => Mode::ForkExit,
            "fork-exec" => Mode::ForkExec,
            "posix-spawn" => Mode::PosixSpawn,
            "threads" => Mode::Threads,
            "zombie" => Mode::Zombie,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::ForkExit => "fork-exit",
            Mode::ForkExec => "fork-exec",
            Mode::PosixSpawn => "posix-spawn",
            Mode::Threads => "threads",
            Mode::Zombie => "zombie",
        }
    }
}

#[derive(Debug)]
struct Options {
    mode: Mode,
    count: u64,
    workers: u64,
    batch: u64,
    exec: String,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let mode = it.next().ok_or("no MODE given")?;
    let mode = Mode::parse(mode).ok_or_else(|| format!("unknown mode {mode:?}"))?;
    let mut opts = Options {
        mode,
        count: 10_000,
        workers: 2,
        batch: 32,
        exec: "/bin/true".to_string(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || -> Result<u64, String> {
            match value.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} must be a positive integer, got {value:?}")),
            }
        };
        match flag.as_str() {
            "--count" => opts.count = number()?,
            "--workers" => opts.workers = number()?,
            "--batch" => opts.batch = number()?,
            "--exec" => opts.exec = value.clone(),
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    if opts.workers > 256 {
        return Err(format!("--workers {} is more than 256", opts.workers));
    }
    Ok(opts)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => opts,
        Err(msg) => broken(&format!("{msg}\n{USAGE}")),
    };
    let exec = CString::new(opts.exec.clone())
        .unwrap_or_else(|_| broken("--exec PATH must not contain a NUL byte"));

    // Workers block on this pipe until the parent closes its write end: all start together
    // and the clock does not count the forking of the workers.
    let (start_rd, start_wr) = pipe_or_die();
    let mut workers = Vec::new();
    for i in 0..opts.workers {
        let share = opts.count / opts.workers + u64::from(i < opts.count % opts.workers);
        let pid = fork_or_die();
        if pid == 0 {
            close(start_wr);
            wait_for_start(start_rd);
            let code = match work(&opts, &exec, share) {
                Ok(()) => 0,
                Err(msg) => {
                    eprintln!("tracer-storm: worker {}: {msg}", getpid());
                    BROKEN
                }
            };
            // SAFETY: _exit never returns; a worker must not run the parent's exit path.
            unsafe { libc::_exit(code) };
        }
        workers.push(pid);
    }
    close(start_rd);
    let started = Instant::now();
    close(start_wr);
    let mut failed = Vec::new();
    for &pid in &workers {
        let status = wait_pid(pid);
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failed.push(format!("worker {pid}: {}", describe(status)));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if !failed.is_empty() {
        broken(&failed.join("; "));
    }
    let line = json!({
        "mode": opts.mode.name(),
        "count": opts.count,
        "workers": opts.workers,
        "batch": opts.batch,
        "exec": opts.exec,
        "ops": opts.count,
        "elapsed_s": elapsed,
        "ops_per_s": opts.count as f64 / elapsed,
        "pid": getpid(),
        "worker_pids": workers,
    });
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(BROKEN);
    }
}

/// One worker's share of operations; an error names the first thing that went wrong.
fn work(opts: &Options, exec: &CString, ops: u64) -> Result<(), String> {
    let argv0 = CString::new(
        opts.exec
            .rsplit('/')
            .next()
            .unwrap_or(opts.exec.as_str())
            .as_bytes(),
    )
    .expect("a part of a NUL-free string has no NUL");
    let argv: [*const libc::c_char; 2] = [argv0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    match opts.mode {
        Mode::ForkExit => {
            for _ in 0..ops {
                let child = fork()?;
                if child == 0 {
                    // SAFETY: _exit is async-signal-safe.
                    unsafe { libc::_exit(0) };
                }
                expect_success(child, wait_pid(child))?;
            }
        }
        Mode::ForkExec => {
            for _ in 0..ops {
                let child = fork()?;
                if child == 0 {
                    // SAFETY: execve and _exit are async-signal-safe; the arrays are
                    // NUL-terminated and were built before the fork.
                    unsafe {
                        libc::execve(exec.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                }
                expect_success(child, wait_pid(child))?;
            }
        }
        Mode::PosixSpawn => {
            for _ in 0..ops {
                let mut child: libc::pid_t = 0;
                // SAFETY: path, argv and envp are NUL-terminated and outlive the call;
                // null file actions and attributes mean the defaults.
                let rc = unsafe {
                    libc::posix_spawn(
                        &mut child,
                        exec.as_ptr(),
                        std::ptr::null(),
                        std::ptr::null(),
                        argv.as_ptr().cast(),
                        envp.as_ptr().cast(),
                    )
                };
                if rc != 0 {
                    return Err(format!(
                        "posix_spawn {}: {}",
                        opts.exec,
                        std::io::Error::from_raw_os_error(rc)
                    ));
                }
                expect_success(child, wait_pid(child))?;
            }
        }
        Mode::Threads => {
            let builder = || std::thread::Builder::new().stack_size(THREAD_STACK);
            for _ in 0..ops {
                let handle = builder()
                    .spawn(|| {})
                    .map_err(|e| format!("creating a thread: {e}"))?;
                handle
                    .join()
                    .map_err(|_| "a storm thread panicked".to_string())?;
            }
        }
        Mode::Zombie => {
            let mut left = ops;
            let mut batch = Vec::with_capacity(opts.batch as usize);
            while left > 0 {
                let n = left.min(opts.batch);
                for _ in 0..n {
                    let child = fork()?;
                    if child == 0 {
                        // SAFETY: _exit is async-signal-safe.
                        unsafe { libc::_exit(0) };
                    }
                    batch.push(child);
                }
                // Reaped only now: the children forked first have been zombies the longest.
                for child in batch.drain(..) {
                    expect_success(child, wait_pid(child))?;
                }
                left -= n;
            }
        }
    }
    Ok(())
}

fn expect_success(pid: libc::pid_t, status: i32) -> Result<(), String> {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("child {pid}: {}", describe(status)))
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

fn broken(msg: &str) -> ! {
    eprintln!("tracer-storm: {msg}");
    let _ = std::io::stderr().flush();
    std::process::exit(BROKEN);
}

fn getpid() -> libc::pid_t {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: the storm's processes are single-threaded when they fork (the threads
    // mode never forks), and children only call async-signal-safe functions.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    Ok(pid)
}

fn fork_or_die() -> libc::pid_t {
    fork().unwrap_or_else(|msg| broken(&msg))
}

fn pipe_or_die() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        broken(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    (fds[0], fds[1])
}

fn close(fd: i32) {
    // SAFETY: closing an fd this process owns.
    unsafe { libc::close(fd) };
}

/// Blocks until the parent closes the write end of the start pipe (read returns 0).
fn wait_for_start(fd: i32) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a valid buffer.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    close(fd);
}

fn wait_pid(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        broken(&format!(
            "waitpid({pid}) returned {rc}: {}",
            std::io::Error::last_os_error()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_mode_and_options() {
        let o = parse_args(&args(&[
            "zombie",
            "--count",
            "500",
            "--workers",
            "3",
            "--batch",
            "8",
        ]))
        .unwrap();
        assert_eq!(o.mode, Mode::Zombie);
        assert_eq!((o.count, o.workers, o.batch), (500, 3, 8));
        let o = parse_args(&args(&["fork-exec", "--exec", "/usr/bin/true"])).unwrap();
        assert_eq!(o.exec, "/usr/bin/true");
        assert_eq!((o.count, o.workers), (10_000, 2));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(parse_args(&args(&[])).unwrap_err().contains("MODE"));
        assert!(
            parse_args(&args(&["spin"]))
                .unwrap_err()
                .contains("unknown mode")
        );
        assert!(
            parse_args(&args(&["threads", "--count", "0"]))
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            parse_args(&args(&["threads", "--count"]))
                .unwrap_err()
                .contains("value")
        );
        assert!(
            parse_args(&args(&["threads", "--speed", "1"]))
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
