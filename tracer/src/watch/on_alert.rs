//! `watch --on-alert CMD`: each alert record, as one JSON line on its stdin, to a
//! command of the user's (a pager, a webhook through curl).
//!
//! Tracing never waits for it: records go into a bounded queue, and one worker
//! thread runs CMD for them one at a time. A full queue drops the alert (counted);
//! a CMD that exits non-zero, cannot be started or outlives its timeout (then its
//! process group is killed) is counted as failed. The counts go to the summary.
//!
//! CMD is started with `clone` and an exit signal of 0 rather than as an ordinary
//! child: with `-- COMMAND`, tracer reaps everything with `waitpid(-1)` and takes
//! ECHILD as the sign that COMMAND's tree is gone, and such "clone children" are
//! invisible to a `waitpid` without `__WALL`/`__WCLONE` (kernel/exit.c
//! eligible_child), so the two never take each other's children.

use std::{
    collections::VecDeque,
    ffi::{CString, OsStr, OsString},
    io,
    os::{fd::AsRawFd, fd::FromRawFd, fd::OwnedFd, unix::ffi::OsStrExt},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// Alerts waiting for CMD at most; more are dropped (and counted). An alert is
/// raised once per episode, so this many waiting means CMD is far behind.
pub const QUEUE_CAP: usize = 64;

/// What CMD is given for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The alert record as one JSON Lines line, `\n` included.
    pub line: Vec<u8>,
    /// `TRACER_ALERT_*` variables for CMD's environment.
    pub env: Vec<(&'static str, Vec<u8>)>,
}

/// A bounded first-in first-out queue that drops what does not fit.
#[derive(Debug)]
pub struct Queue<T> {
    items: VecDeque<T>,
    cap: usize,
    dropped: u64,
}

impl<T> Queue<T> {
    pub fn new(cap: usize) -> Self {
        Queue {
            items: VecDeque::with_capacity(cap),
            cap,
            dropped: 0,
        }
    }

    /// Adds `item` at the back; false (and counted as dropped) when full.
    pub fn push(&mut self, item: T) -> bool {
        if self.items.len() >= self.cap {
            self.dropped += 1;
            return false;
        }
        self.items.push_back(item);
        true
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops everything still waiting, counted.
    pub fn drop_all(&mut self) {
        self.dropped += self.items.len() as u64;
        self.items.clear();
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// What became of the alerts handed over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// CMD runs (each for one alert), failed ones included.
    pub run: u64,
    /// Runs that exited non-zero, were killed, timed out or could not be started.
    pub failed: u64,
    /// Alerts never given to CMD: the queue was full, or tracer ended first.
    pub dropped: u64,
}

struct State {
    queue: Queue<Job>,
    /// No more jobs come; the worker runs what is queued, starting none after
    /// `stop_by`.
    closed: bool,
    stop_by: Option<Instant>,
    /// A job is being run now.
    busy: bool,
    run: u64,
    failed: u64,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking worker leaves plain counters behind: still good to read.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs CMD for each alert, one at a time, on a thread of its own.
pub struct OnAlert {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl OnAlert {
    /// Starts the worker for `cmd` (run as `/bin/sh -c CMD`), each run killed
    /// after `timeout`.
    pub fn start(cmd: &OsStr, timeout: Duration) -> io::Result<OnAlert> {
        Self::with_capacity(cmd, timeout, QUEUE_CAP)
    }

    fn with_capacity(cmd: &OsStr, timeout: Duration, cap: usize) -> io::Result<OnAlert> {
        let cmd = CString::new(cmd.as_bytes()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "--on-alert holds a NUL byte")
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Queue::new(cap),
                closed: false,
                stop_by: None,
                busy: false,
                run: 0,
                failed: 0,
            }),
            cv: Condvar::new(),
        });
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("on-alert".into())
                .spawn(move || work(&shared, &cmd, timeout))?
        };
        Ok(OnAlert {
            shared,
            worker: Some(worker),
            timeout,
        })
    }

    /// Hands an alert over; never waits for CMD. False when it was dropped
    /// (the queue is full).
    pub fn send(&self, job: Job) -> bool {
        let mut st = self.shared.lock();
        if st.closed {
            st.queue.dropped += 1;
            return false;
        }
        let queued = st.queue.push(job);
        drop(st);
        self.shared.cv.notify_one();
        queued
    }

    /// Alerts not yet delivered: queued, plus the one CMD is running for.
    pub fn pending(&self) -> usize {
        let st = self.shared.lock();
        st.queue.len() + usize::from(st.busy)
    }

    /// The timeout of one run: also how long [`OnAlert::finish`] waits at most.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let st = self.shared.lock();
        Counts {
            run: st.run,
            failed: st.failed,
            dropped: st.queue.dropped(),
        }
    }

    /// Takes no more alerts; delivers those queued, starting none later than the
    /// timeout from now (what is left is dropped), waits for the last run (itself
    /// bounded by the timeout) and gives the counts.
    pub fn finish(mut self) -> Counts {
        {
            let mut st = self.shared.lock();
            st.closed = true;
            st.stop_by = Some(Instant::now() + self.timeout);
        }
        self.shared.cv.notify_all();
        if let Some(w) = self.worker.take() {
            // A panic in the worker has been printed; the counts stand as they are.
            let _ = w.join();
        }
        self.counts()
    }
}

impl Drop for OnAlert {
    fn drop(&mut self) {
        // Not finished (an error ends watch early): let the worker end after the
        // run it is in, and run nothing more.
        let mut st = self.shared.lock();
        st.closed = true;
        st.stop_by = Some(Instant::now());
        drop(st);
        self.shared.cv.notify_all();
    }
}

fn work(shared: &Shared, cmd: &CString, timeout: Duration) {
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.closed && st.stop_by.is_some_and(|t| Instant::now() >= t) {
                    st.queue.drop_all();
                }
                if let Some(job) = st.queue.pop() {
                    st.busy = true;
                    break job;
                }
                if st.closed {
                    return;
                }
                st = shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = run(cmd, &job, timeout);
        if let Err(why) = &result {
            let kind = job
                .env
                .iter()
                .find(|(k, _)| *k == "TRACER_ALERT_KIND")
                .map_or(String::new(), |(_, v)| {
                    String::from_utf8_lossy(v).into_owned()
                });
            eprintln!(
                "tracer: --on-alert for a {kind} alert failed: {why}; counted in the summary"
            );
        }
        let mut st = shared.lock();
        st.busy = false;
        st.run += 1;
        st.failed += u64::from(result.is_err());
    }
}

/// Why one run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("/bin/sh could not be started: {0}")]
    Spawn(#[source] io::Error),
    #[error("it exited with status {0}")]
    Status(i32),
    #[error("it was killed by signal {0}")]
    Signal(i32),
    #[error("it took longer than {0:?} and was killed")]
    Timeout(Duration),
    #[error("waiting for it failed: {0}")]
    Wait(#[source] io::Error),
}

/// Runs `/bin/sh -c CMD` once with the job's line on stdin and its variables in
/// the environment; CMD's stdout and stderr are tracer's stderr (stdout may carry
/// records: `-o -`), its working directory tracer's. Its own process group, so a
/// timeout kills what it started too and Ctrl-C on tracer's terminal does not
/// reach it (tracer decides when it ends).
pub fn run(cmd: &CString, job: &Job, timeout: Duration) -> Result<(), RunError> {
    let deadline = Instant::now() + timeout;
    // Everything the child needs is built before clone: after it, the child of
    // this multi-threaded process may only make async-signal-safe calls.
    let sh = c"/bin/sh";
    let argv = [
        c"sh".as_ptr(),
        c"-c".as_ptr(),
        cmd.as_ptr(),
        std::ptr::null(),
    ];
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !job.env.iter().any(|(name, _)| OsStr::new(name) == k))
        .filter_map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.as_bytes()).ok()
        })
        .collect();
    for (k, v) in &job.env {
        let mut kv = format!("{k}=").into_bytes();
        kv.extend(v.iter().copied().filter(|&b| b != 0));
        env.push(CString::new(kv).expect("NULs removed"));
    }
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let mut fds = [0; 2];
    // SAFETY: valid out array of two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(RunError::Spawn(io::Error::last_os_error()));
    }
    // SAFETY: both fds were just created and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The write end does not block: a CMD that never reads must not hold the worker
    // past the timeout.
    // SAFETY: fcntl on an fd we own.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };

    let mut pidfd: libc::c_int = -1;
    let rd_raw = rd.as_raw_fd();
    // SAFETY: clone without CLONE_VM or a new stack is fork: the child gets a copy
    // of this thread's stack and returns here with 0. Exit signal 0 (the low byte
    // of the flags) makes it a clone child (see the module comment); CLONE_PIDFD
    // puts a pidfd for it at the third argument (kernel/fork.c, clone).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PIDFD as libc::c_ulong,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(RunError::Spawn(io::Error::last_os_error()));
    }
    if pid == 0 {
        // The child: async-signal-safe calls only, then exec.
        // SAFETY: plain syscalls on fds and pointers valid in this copy of the process.
        unsafe {
            libc::setpgid(0, 0);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // Rust ignores SIGPIPE; an ignored signal stays ignored across exec.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if libc::dup2(rd_raw, 0) < 0 || libc::dup2(2, 1) < 0 {
                libc::_exit(127);
            }
            // Nothing of tracer's (the ring buffer, the output file) goes with it.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    drop(rd);
    // SAFETY: the kernel gave us this pidfd; it is ours to close.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = pid as libc::pid_t;

    let mut line = &job.line[..];
    let mut wr = Some(wr);
    let exited = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let mut pfd = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wr.as_ref().map_or(-1, |w| w.as_raw_fd()),
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: two valid pollfds (a negative fd is ignored by poll).
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), 2, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            kill_group(pid);
            let _ = reap(pid);
            return Err(RunError::Wait(e));
        }
        if pfd[0].revents != 0 {
            break true;
        }
        if pfd[1].revents != 0
            && let Some(w) = &wr
        {
            // SAFETY: writing from a live slice to an fd we own.
            let k = unsafe { libc::write(w.as_raw_fd(), line.as_ptr().cast(), line.len()) };
            if k > 0 {
                line = &line[k as usize..];
            }
            // All written (EOF follows), or CMD closed its stdin (EPIPE), which is
            // its business: close our end either way.
            let e = (k < 0).then(io::Error::last_os_error);
            if line.is_empty() || e.is_some_and(|e| e.kind() != io::ErrorKind::WouldBlock) {
                wr = None;
            }
        }
    };
    drop(wr);
    if !exited {
        kill_group(pid);
        // Killed by us: its status says nothing more than the timeout.
        let _ = reap(pid);
        return Err(RunError::Timeout(timeout));
    }
    let status = reap(pid).map_err(RunError::Wait)?;
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            n => Err(RunError::Status(n)),
        }
    } else {
        Err(RunError::Signal(libc::WTERMSIG(status)))
    }
}

/// SIGKILL to CMD's process group (its shell and what that started).
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill with our unreaped child's pid, which is its process group's id
    // (setpgid(0, 0) in the child); the group exists while the child is unreaped.
    // The child may not have run setpgid yet: then kill it alone.
    unsafe {
        if libc::kill(-pid, libc::SIGKILL) != 0 {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Waits for CMD's shell; `__WALL` because it is a clone child.
fn reap(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: plain syscall with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_first_in_first_out_and_drops_what_does_not_fit() {
        let mut q = Queue::new(2);
        assert!(q.push(1) && q.push(2));
        assert!(!q.push(3));
        assert_eq!((q.len(), q.dropped()), (2, 1));
        assert_eq!(q.pop(), Some(1));
        assert!(q.push(4));
        assert!(!q.push(5));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
        q.push(6);
        q.drop_all();
        assert_eq!((q.len(), q.dropped()), (0, 3));
    }

    fn job(line: &str) -> Job {
        Job {
            line: line.as_bytes().to_vec(),
            env: vec![
                ("TRACER_ALERT_KIND", b"crash_loop".to_vec()),
                ("TRACER_ALERT_PID", b"42".to_vec()),
            ],
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tracer-on-alert-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sh(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn cmd_gets_the_line_on_stdin_and_the_variables() {
        let d = scratch("stdin");
        let out = d.join("out");
        let cmd = sh(&format!(
            "cat > {0}; echo \"$TRACER_ALERT_KIND $TRACER_ALERT_PID\" >> {0}",
            out.display()
        ));
        run(
            &cmd,
            &job("{\"type\":\"alert\"}\n"),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"type\":\"alert\"}\ncrash_loop 42\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failures_say_why() {
        let t = Duration::from_secs(30);
        let e = run(&sh("exit 7"), &job("x\n"), t).unwrap_err();
        assert!(matches!(e, RunError::Status(7)), "{e}");
        let e = run(&sh("kill -TERM $$"), &job("x\n"), t).unwrap_err();
        assert!(matches!(e, RunError::Signal(libc::SIGTERM)), "{e}");
        // Not reading stdin is no failure, even with more than a pipe holds.
        let big = "y".repeat(1 << 20) + "\n";
        run(&sh("true"), &job(&big), t).unwrap();
        let e = run(&sh("no-such-command-for-tracer"), &job("x\n"), t).unwrap_err();
        assert!(matches!(e, RunError::Status(127)), "{e}");
    }

    #[test]
    fn a_run_past_its_timeout_is_killed_with_what_it_started() {
        let d = scratch("timeout");
        let pidfile = d.join("pid");
        // A grandchild in the background that would outlive the shell.
        let cmd = sh(&format!(
            "sleep 1000 & echo $! > {}; wait",
            pidfile.display()
        ));
        let e = run(&cmd, &job("x\n"), Duration::from_millis(500)).unwrap_err();
        assert!(matches!(e, RunError::Timeout(_)), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with its group: its pidfd turns readable once it has exited (it
        // may wait as a zombie for its new reaper). SIGKILL is delivered
        // asynchronously, so wait for that, with a deadline only for failure.
        // SAFETY: pidfd_open with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
        if fd >= 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
            // SAFETY: closing the fd opened above.
            unsafe { libc::close(fd) };
            assert_eq!(n, 1, "sleep {pid} (started by the shell) still runs");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn runs_one_at_a_time_in_order_and_counts() {
        let d = scratch("queue");
        let out = d.join("out");
        // Each run appends its line in two writes with a pause between: runs at
        // the same time would interleave them.
        let cmd = format!(
            "read l; printf '%s' \"$l\" >> {0}; sleep 0.05; echo . >> {0}; case $l in *fail*) exit 3;; esac",
            out.display()
        );
        let q = OnAlert::start(OsStr::new(&cmd), Duration::from_secs(30)).unwrap();
        for i in 0..5 {
            let line = if i == 2 {
                "fail2\n".to_string()
            } else {
                format!("a{i}\n")
            };
            assert!(q.send(job(&line)));
        }
        let c = q.finish();
        assert_eq!(
            c,
            Counts {
                run: 5,
                failed: 1,
                dropped: 0
            }
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "a0.\na1.\nfail2.\na3.\na4.\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_closed_runner_drops_and_finish_stops_starting_runs() {
        // One slot; a run that takes its whole timeout. What finish cannot start
        // within the timeout is dropped.
        let q = OnAlert::with_capacity(OsStr::new("sleep 1000"), Duration::from_millis(300), 1)
            .unwrap();
        let mut queued = 0;
        for _ in 0..4 {
            queued += u64::from(q.send(job("x\n")));
        }
        let c = q.finish();
        assert_eq!(c.run + c.dropped, 4, "{c:?}");
        assert_eq!(c.failed, c.run, "{c:?}");
        assert!(queued <= 2 && c.dropped >= 2, "{c:?}");
    }
}
