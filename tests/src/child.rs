//! Children the tests start (tracers, workloads): each in its own process group,
//! stdout and stderr drained as they come, waited for with a deadline past which
//! the whole group is killed and the test fails.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::tracer_run::tracer_bin;

/// How long one traced run may take before the test kills it and fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long to wait, after the tracer exited, for the last writers of its stdout and
/// stderr (processes it should have waited for) before reading what is there.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// How long a tracer may take to end once told to (a signal, `--duration`, its
/// followed processes gone), and how long any wait for a condition may take,
/// before the test kills what it started and fails.
pub const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// The variable that stretches every deadline of the tests (and of tracer-workload)
/// by a whole factor: `cargo xtask test --kernel` sets it in its VM, whose emulated
/// CPU (TCG) makes a fork or an exec ten times slower than on the host, so that a
/// step that takes 10 s there is not failed by a deadline made for the host. It
/// changes no threshold a test asserts: deadlines only bound how long a wait may go.
pub const DEADLINE_SCALE_VAR: &str = "TRACER_TEST_DEADLINE_SCALE";

/// `deadline` stretched by [`DEADLINE_SCALE_VAR`] (unset: 1). A value that is not
/// a whole number from 1 up fails the test, naming it.
pub fn scaled(deadline: Duration) -> Duration {
    match std::env::var(DEADLINE_SCALE_VAR) {
        Err(_) => deadline,
        Ok(v) => match v.parse::<u32>() {
            Ok(n) if n >= 1 => deadline * n,
            _ => panic!("{DEADLINE_SCALE_VAR}={v:?}: expected a whole number from 1 up"),
        },
    }
}

/// A process the test started (a tracer, or a workload it follows), in its own
/// process group, its stdout and stderr captured as they come. Dropping it kills
/// the group, so nothing outlives a failed test.
pub struct Proc {
    child: std::process::Child,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    done: Vec<mpsc::Receiver<()>>,
    /// The command line, for messages.
    pub command: String,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr captured, stdin from /dev/null, or from a
    /// pipe the test writes to ([`Proc::stdin`]) if `piped_stdin`.
    pub fn spawn(cmd: &mut Command, piped_stdin: bool) -> Proc {
        Proc::start(
            cmd,
            if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            },
        )
    }

    /// Starts `cmd` in its own process group (so it can be killed whole) with
    /// `stdin`, and stdout and stderr drained into buffers on threads.
    pub fn start(cmd: &mut Command, stdin: Stdio) -> Proc {
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let command = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let done = vec![
            drain(child.stdout.take().expect("piped"), Arc::clone(&stdout)),
            drain(child.stderr.take().expect("piped"), Arc::clone(&stderr)),
        ];
        Proc {
            child,
            status: None,
            stdout,
            stderr,
            done,
            command,
        }
    }

    /// `tracer ARGS` (see [`tracer_bin`]), as root.
    pub fn tracer<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Proc {
        require_root();
        Proc::spawn(Command::new(tracer_bin()).args(args), false)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The write end of its stdin, if piped and not taken yet.
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// What reached its stdout so far.
    pub fn stdout(&self) -> String {
        text(&self.stdout)
    }

    /// What reached its stderr so far.
    pub fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// Sends `sig` to the process (not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: signals our own child, which is not reaped yet (we hold its Child).
        if unsafe { libc::kill(self.pid() as libc::pid_t, sig) } != 0 {
            panic!(
                "kill({}, {sig}): {}",
                self.pid(),
                std::io::Error::last_os_error()
            );
        }
    }

    /// Its exit status if a wait saw it end, without waiting.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Sends `sig` to its whole process group, as a terminal does on Ctrl-C: what
    /// it started (a `-- COMMAND`) gets it too.
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: signals the process group this test created (the process leads it).
        if unsafe { libc::kill(-(self.pid() as libc::pid_t), sig) } != 0 {
            panic!(
                "kill(-{}, {sig}): {}",
                self.pid(),
                std::io::Error::last_os_error()
            );
        }
    }

    /// Its exit status if it has ended (reaping it), None while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.command));
        }
        self.status
    }

    /// Waits until it ends. Past `deadline` it kills the group and fails the test.
    pub fn wait_exit_within(&mut self, deadline: Duration) -> ExitStatus {
        self.wait_exit_or_fail(deadline, String::new)
    }

    /// [`Proc::wait_exit_within`], adding `more()` (what else the run left, e.g.
    /// the records it wrote so far) to the failure message.
    fn wait_exit_or_fail(
        &mut self,
        deadline: Duration,
        more: impl FnOnce() -> String,
    ) -> ExitStatus {
        if !poll_until(deadline, || self.try_status().is_some()) {
            kill_group(self.pid());
            panic!(
                "still running after {:?}; killed it.\n{}\n{}",
                scaled(deadline),
                self.describe(),
                more()
            );
        }
        self.status.expect("polled above")
    }

    /// Waits until it ends ([`Proc::wait_exit_within`]), then until its stdout and
    /// stderr are closed (or [`PIPE_GRACE`] passed: a process it left behind may
    /// hold them).
    pub fn wait_within(&mut self, deadline: Duration) -> ExitStatus {
        let status = self.wait_exit_within(deadline);
        self.wait_pipes_closed();
        status
    }

    /// Waits until its stdout and stderr are closed, or [`PIPE_GRACE`] passed.
    fn wait_pipes_closed(&self) {
        let grace = Instant::now() + scaled(PIPE_GRACE);
        for done in &self.done {
            let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
        }
    }

    /// The command, its status and its output so far, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "--- {}: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.command,
            self.status
                .map_or_else(|| "running".to_string(), |s| s.to_string()),
            tail(&self.stdout(), 100),
            tail(&self.stderr(), 40)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_group(self.pid());
        let _ = self.child.try_wait();
    }
}

/// Runs `cmd` to its end as a [`Proc`] ([`Proc::start`] with `stdin`, then
/// [`Proc::wait_within`]): past `deadline` the test kills the group and fails,
/// showing what the run printed and `more()`. The returned `Proc` has ended and its
/// pipes are drained; dropping it kills whatever of its group outlived it.
pub fn spawn_with_deadline(
    cmd: &mut Command,
    stdin: Stdio,
    deadline: Duration,
    more: impl FnOnce() -> String,
) -> Proc {
    let mut run = Proc::start(cmd, stdin);
    run.wait_exit_or_fail(deadline, more);
    run.wait_pipes_closed();
    run
}

/// Fails the test unless it runs as root: the tracer loads eBPF programs.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "the kernel tests load eBPF programs and need root: run them with `sudo cargo xtask test` \
             (they fail rather than skip, so a run that tested nothing cannot pass)"
        );
    }
}

/// Polls `cond` (every 10 ms) until it holds; false if it did not within `timeout`
/// ([`scaled`]).
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + scaled(timeout);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Copies a pipe into `buf` on a thread; the receiver gets a message at EOF.
fn drain(mut pipe: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf
                    .lock()
                    .expect("pipe buffer")
                    .extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tx.send(());
    });
    rx
}

fn kill_group(pgid: u32) {
    // SAFETY: signals the process group this test created (the tracer leads it).
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("pipe buffer")).into_owned()
}

/// The last `n` lines of `s`, saying how many were left out.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    if all.len() <= n {
        return s.to_string();
    }
    format!(
        "({} earlier lines left out)\n{}",
        all.len() - n,
        all[all.len() - n..].join("\n")
    )
}
