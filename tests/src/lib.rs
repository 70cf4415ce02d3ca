//! Support for the kernel tests: run the real `tracer watch` on a `tracer-workload`
//! mode, read back its JSON Lines, check every record against schema v1, and find
//! records by the pids the workload reported.
//!
//! Needs root and a built tracer (`TRACER_BIN`, default `<workspace>/target/debug/tracer`).
//! Neither missing is a skip: the tests fail with a message saying what to do, so a
//! run that could not test anything cannot pass.
//!
//! Failures panic with the records seen for the pids concerned (see [`Trace::fail`]).

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one traced run may take before the test kills it and fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long to wait, after the tracer exited, for the last writers of its stdout and
/// stderr (processes it should have waited for) before reading what is there.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// Record types that describe one process (they carry the process fields).
pub const PROCESS_TYPES: [&str; 7] = [
    "process",
    "fork",
    "fork_failed",
    "exec",
    "exec_failed",
    "exit",
    "reap",
];

/// One JSON Lines record.
#[derive(Clone, Debug, PartialEq)]
pub struct Rec(pub Value);

impl Rec {
    /// The field, or `Null` when absent.
    pub fn get(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).as_u64()
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).as_str()
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).as_bool()
    }
    pub fn is_null(&self, key: &str) -> bool {
        self.get(key).is_null()
    }
    pub fn seq(&self) -> u64 {
        self.u64("seq").expect("checked when parsed")
    }
    pub fn ty(&self) -> &str {
        self.str("type").expect("checked when parsed")
    }
    /// The process (tgid); None for records about no process (`lost`).
    pub fn pid(&self) -> Option<u32> {
        self.u64("pid").map(|p| p as u32)
    }
    pub fn tid(&self) -> Option<u32> {
        self.u64("tid").map(|p| p as u32)
    }
    pub fn ppid(&self) -> Option<u32> {
        self.u64("ppid").map(|p| p as u32)
    }
    pub fn proc_id(&self) -> Option<&str> {
        self.str("proc_id")
    }
    /// `thread` of fork and exit records (false when absent).
    pub fn thread(&self) -> bool {
        self.bool("thread").unwrap_or(false)
    }
    /// `argv` of exec records as strings.
    pub fn argv(&self) -> Vec<&str> {
        match self.get("argv").as_array() {
            Some(a) => a.iter().filter_map(Value::as_str).collect(),
            None => Vec::new(),
        }
    }
}

impl fmt::Display for Rec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What one traced run produced.
#[derive(Debug)]
pub struct Trace {
    /// The records, in file order (checked: `seq` is 1, 2, 3, ...).
    pub records: Vec<Rec>,
    /// The workload's `pids:` line.
    pub facts: Value,
    pub tracer_pid: u32,
    pub status: ExitStatus,
    /// Everything that reached the tracer's stdout (the workload's and its children's).
    pub stdout: String,
    pub stderr: String,
    pub output: PathBuf,
    /// The command line that was run, for messages.
    pub command: String,
    /// The workload arguments (mode first).
    pub args: Vec<String>,
    /// The run's directory (holds `output`).
    dir: PathBuf,
}

/// Runs `tracer watch --format jsonl --quiet -o FILE [extra_tracer_flags] -- tracer-workload ARGS`
/// and returns the checked trace. Panics (the test fails) if not root, if the tracer
/// binary is missing, if the run takes longer than [`DEADLINE`], if the workload did not
/// report its pids, or if any record breaks the schema.
pub fn run_traced(args: &[&str], extra_tracer_flags: &[&str]) -> Trace {
    run_traced_within(args, extra_tracer_flags, DEADLINE)
}

/// [`run_traced`] with a chosen deadline.
pub fn run_traced_within(args: &[&str], extra_tracer_flags: &[&str], deadline: Duration) -> Trace {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "the kernel tests load eBPF programs and need root: run them with `sudo cargo xtask test` \
             (they fail rather than skip, so a run that tested nothing cannot pass)"
        );
    }
    let tracer = tracer_bin();
    let workload = workload_bin();
    let dir = fresh_dir(args.first().copied().unwrap_or("run"));
    let output = dir.join("trace.jsonl");

    let mut cmd = Command::new(&tracer);
    cmd.args(["watch", "--format", "jsonl", "--quiet", "-o"])
        .arg(&output)
        .args(extra_tracer_flags)
        .arg("--")
        .arg(&workload)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a run past its deadline can be killed whole.
        .process_group(0);
    let command = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let tracer_pid = child.id();

    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let out_done = drain(child.stdout.take().expect("piped"), Arc::clone(&stdout));
    let err_done = drain(child.stderr.take().expect("piped"), Arc::clone(&stderr));

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(deadline) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => panic!("waiting for {command}: {e}"),
        Err(_) => {
            kill_group(tracer_pid);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            let seen =
                std::fs::read_to_string(&output).unwrap_or_else(|e| format!("(no output: {e})"));
            panic!(
                "{command} still running after {deadline:?}; killed it.\n--- stdout:\n{}\n--- stderr:\n{}\n--- {} so far:\n{}",
                text(&stdout),
                text(&stderr),
                output.display(),
                tail(&seen, 200)
            );
        }
    };
    let grace = Instant::now() + PIPE_GRACE;
    for done in [out_done, err_done] {
        let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
    }
    // Anything of the run still alive here outlived the tracer; do not leak it.
    kill_group(tracer_pid);

    let stdout = text(&stdout);
    let stderr = text(&stderr);
    let content = std::fs::read_to_string(&output).unwrap_or_else(|e| {
        panic!(
            "{command} exited with {status} and left no readable {}: {e}\n--- stderr:\n{stderr}",
            output.display()
        )
    });
    let records = parse_records(&content).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n--- stderr:\n{stderr}\n--- file:\n{}",
            output.display(),
            tail(&content, 200)
        )
    });
    let facts = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("bad pids line {j:?}: {e}")))
        .unwrap_or_else(|| {
            panic!(
                "the workload printed no `pids:` line ({command} exited with {status})\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}\n--- records:\n{}",
                tail(&content, 200)
            )
        });
    Trace {
        records,
        facts,
        tracer_pid,
        status,
        stdout,
        stderr,
        output,
        command,
        args: args.iter().map(|s| s.to_string()).collect(),
        dir,
    }
}

impl Drop for Trace {
    /// A passing test cleans up its directory; a failing one keeps the JSON Lines
    /// file its message names.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Trace {
    /// A pid the workload reported under `key`.
    pub fn pid(&self, key: &str) -> u32 {
        match self.facts.get(key).and_then(Value::as_u64) {
            Some(p) => p as u32,
            None => self.fail(
                &[],
                format!("the workload reported no pid {key:?}: {}", self.facts),
            ),
        }
    }

    /// A list of pids the workload reported under `key`.
    pub fn pids(&self, key: &str) -> Vec<u32> {
        let list = self.facts.get(key).and_then(Value::as_array);
        match list.map(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()) {
            Some(Some(v)) => v.into_iter().map(|p| p as u32).collect(),
            _ => self.fail(
                &[],
                format!("the workload reported no pid list {key:?}: {}", self.facts),
            ),
        }
    }

    /// Another fact from the `pids:` line.
    pub fn fact(&self, key: &str) -> &Value {
        self.facts.get(key).unwrap_or(&Value::Null)
    }

    /// The workload process (the tracer's COMMAND).
    pub fn workload_pid(&self) -> u32 {
        self.pid("self")
    }

    /// The tracer's exit code (None if a signal killed it).
    pub fn tracer_exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Records about process `pid`, in order.
    pub fn records_of(&self, pid: u32) -> Vec<&Rec> {
        self.records
            .iter()
            .filter(|r| r.pid() == Some(pid))
            .collect()
    }

    /// Records of type `ty` for which `pred` holds, in order.
    pub fn find(&self, ty: &str, pred: impl Fn(&Rec) -> bool) -> Vec<&Rec> {
        self.records
            .iter()
            .filter(|r| r.ty() == ty && pred(r))
            .collect()
    }

    /// The one record of type `ty` for which `pred` holds; fails if there are none or
    /// several. `about` names the pids whose records the failure shows; `what` says
    /// what was looked for.
    pub fn one(&self, ty: &str, about: &[u32], what: &str, pred: impl Fn(&Rec) -> bool) -> &Rec {
        let found = self.find(ty, pred);
        match found[..] {
            [r] => r,
            [] => self.fail(about, format!("no {ty} record {what}")),
            _ => self.fail(
                about,
                format!(
                    "{} {ty} records {what}, expected one:\n{}",
                    found.len(),
                    lines(&found)
                ),
            ),
        }
    }

    /// The `proc_id` of process `pid`: the same in all its records, or the test fails.
    pub fn proc_id_of(&self, pid: u32) -> String {
        let ids: BTreeSet<&str> = self
            .records_of(pid)
            .iter()
            .filter_map(|r| r.proc_id())
            .collect();
        match ids.len() {
            1 => ids.into_iter().next().expect("one").to_string(),
            0 => self.fail(&[pid], format!("no records for pid {pid}, so no proc_id")),
            _ => self.fail(
                &[pid],
                format!("pid {pid} has several proc_ids {ids:?} within one short run"),
            ),
        }
    }

    /// The fork record of process `pid` (not of a thread).
    pub fn fork_of(&self, pid: u32) -> &Rec {
        self.one("fork", &[pid], &format!("for process {pid}"), |r| {
            r.pid() == Some(pid) && !r.thread()
        })
    }

    /// The one whole-process exit record of `pid`.
    pub fn process_exit(&self, pid: u32) -> &Rec {
        self.one(
            "exit",
            &[pid],
            &format!("for process {pid} (thread false)"),
            |r| r.pid() == Some(pid) && !r.thread(),
        )
    }

    /// The one reap record of `pid`.
    pub fn reap_of(&self, pid: u32) -> &Rec {
        self.one("reap", &[pid], &format!("for process {pid}"), |r| {
            r.pid() == Some(pid)
        })
    }

    /// Checks what every run must show about the workload itself: an exec of the
    /// workload binary with the test's arguments, exactly one whole-process exit with
    /// `code`, and the tracer exiting with the same code (COMMAND's status).
    pub fn check_workload(&self, code: u8) {
        let me = self.workload_pid();
        let exec = self.one(
            "exec",
            &[me],
            "of the workload with the test's arguments",
            |r| {
                r.pid() == Some(me)
                    && r.argv().get(1..)
                        == Some(&self.args.iter().map(String::as_str).collect::<Vec<_>>()[..])
            },
        );
        ensure!(
            self,
            [me],
            exec.str("filename")
                .is_some_and(|f| f.ends_with("/tracer-workload")),
            "workload exec filename {:?} is not the tracer-workload binary",
            exec.get("filename")
        );
        let exit = self.process_exit(me);
        ensure_eq!(
            self,
            [me],
            exit.u64("exit_code"),
            Some(u64::from(code)),
            "workload exit_code"
        );
        ensure!(
            self,
            [me],
            exit.is_null("signal"),
            "workload exit has a signal: {exit}"
        );
        ensure_eq!(
            self,
            [me],
            self.tracer_exit_code(),
            Some(i32::from(code)),
            "tracer exit status (must be COMMAND's)"
        );
    }

    /// Fails the test with `msg`, the records of the pids in `about` (all records if
    /// empty), the workload's facts and the tracer's stderr.
    pub fn fail(&self, about: &[u32], msg: impl fmt::Display) -> ! {
        let shown: Vec<&Rec> = if about.is_empty() {
            self.records.iter().collect()
        } else {
            self.records
                .iter()
                .filter(|r| {
                    let hit = |k: &str| r.u64(k).is_some_and(|p| about.contains(&(p as u32)));
                    hit("pid") || hit("tid") || hit("reaper_pid") || r.ty() == "lost"
                })
                .collect()
        };
        let shown_text = lines(&shown);
        panic!(
            "{msg}\n--- workload facts: {}\n--- tracer: {} exited with {}\n--- all records: {}\n--- records for pids {about:?} ({} of {}):\n{}\n--- tracer stderr:\n{}",
            self.facts,
            self.command,
            self.status,
            self.output.display(),
            shown.len(),
            self.records.len(),
            tail(&shown_text, 300),
            tail(&self.stderr, 40)
        );
    }
}

/// Fails the test through [`Trace::fail`] unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($trace:expr, $about:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            $trace.fail(&$about, format!($($fmt)+));
        }
    };
}

/// Fails the test through [`Trace::fail`] unless `left == right`.
#[macro_export]
macro_rules! ensure_eq {
    ($trace:expr, $about:expr, $left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    $trace.fail(
                        &$about,
                        format!("{}: got {:?}, expected {:?}", format!($($fmt)+), l, r),
                    );
                }
            }
        }
    };
}

/// The tracer under test: `TRACER_BIN` (set by `cargo xtask test`), or
/// target/debug/tracer.
pub fn tracer_bin() -> PathBuf {
    built_tracer("TRACER_BIN", "debug", "cargo xtask build")
}

/// The release tracer: `TRACER_RELEASE_BIN` (set by `cargo xtask test`), or
/// target/release/tracer. For tests that measure what a server would run
/// (memory under a fork bomb), where the debug build's 10-30× slower agent
/// would measure its own backlog instead.
pub fn tracer_release_bin() -> PathBuf {
    built_tracer(
        "TRACER_RELEASE_BIN",
        "release",
        "cargo xtask build --release",
    )
}

fn built_tracer(var: &str, profile: &str, build: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ sits in the workspace")
            .join("target")
            .join(profile)
            .join("tracer"),
    };
    if !path.is_file() {
        panic!(
            "tracer binary not found at {}: build it first (`{build}`) or set {var} \
             (`cargo xtask test` does both)",
            path.display()
        );
    }
    path
}

/// The workload binary: `TRACER_WORKLOAD`, or `tracer-workload` in the directory
/// above the test executable's (cargo puts test executables in `<profile>/deps`
/// and builds the package's binaries into `<profile>` before running them).
pub fn workload_bin() -> PathBuf {
    let path = match std::env::var_os("TRACER_WORKLOAD") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("path of the test executable");
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable in <profile>/deps");
            profile.join("tracer-workload")
        }
    };
    if !path.is_file() {
        panic!(
            "workload binary not found at {}: build it with `cargo build -p tracer-tests` or set TRACER_WORKLOAD",
            path.display()
        );
    }
    path
}

/// A new empty directory for one run.
fn fresh_dir(label: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tracer-tests-{}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        label
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
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

fn lines(recs: &[&Rec]) -> String {
    recs.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` lines of `s`, saying how many were left out.
fn tail(s: &str, n: usize) -> String {
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

/// Parses JSON Lines and checks each record against schema v1 and `seq` is 1, 2, 3, ...
pub fn parse_records(content: &str) -> Result<Vec<Rec>, String> {
    let mut records = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let lineno = i + 1;
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {lineno} is not JSON ({e}): {line}"))?;
        check_record(&value).map_err(|e| format!("line {lineno} breaks schema v1: {e}: {line}"))?;
        let rec = Rec(value);
        let want = records.len() as u64 + 1;
        if rec.seq() != want {
            return Err(format!(
                "line {lineno}: seq {} where {want} was due (seq must be gap-free from 1): {line}",
                rec.seq()
            ));
        }
        records.push(rec);
    }
    Ok(records)
}

/// The type a field must have.
#[derive(Clone, Copy)]
enum Ty {
    U64,
    Str,
    Bool,
    StrArray,
    Rfc3339,
}

fn field(v: &Value, key: &str, ty: Ty, nullable: bool) -> Result<(), String> {
    let Some(x) = v.get(key) else {
        return Err(format!("missing field {key:?}"));
    };
    if x.is_null() {
        return if nullable {
            Ok(())
        } else {
            Err(format!("field {key:?} is null"))
        };
    }
    let ok = match ty {
        Ty::U64 => x.is_u64(),
        Ty::Str => x.is_string(),
        Ty::Bool => x.is_boolean(),
        Ty::StrArray => x.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Ty::Rfc3339 => x.as_str().is_some_and(is_rfc3339),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("field {key:?} has the wrong type: {x}"))
    }
}

/// Checks one record against schema v1.
pub fn check_record(v: &Value) -> Result<(), String> {
    use Ty::*;
    if !v.is_object() {
        return Err("not an object".into());
    }
    field(v, "seq", U64, false)?;
    field(v, "type", Str, false)?;
    field(v, "ts", Rfc3339, false)?;
    field(v, "ktime_ns", U64, false)?;
    field(v, "host", Str, false)?;
    field(v, "boot_id", Str, false)?;
    let ty = v["type"].as_str().expect("checked");
    // Optional, on the records that sum a life up: present only when true.
    if let Some(u) = v.get("uncertain")
        && (u != &Value::Bool(true) || !["exit", "reap", "process"].contains(&ty))
    {
        return Err(format!(
            "uncertain {u} on a {ty} record (only true, on exit/reap/process)"
        ));
    }
    if PROCESS_TYPES.contains(&ty) || MORE_PROCESS_TYPES.contains(&ty) {
        for k in ["pid", "tid", "ppid"] {
            field(v, k, U64, false)?;
        }
        field(v, "proc_id", Str, false)?;
        if v["proc_id"].as_str() == Some("") {
            return Err("empty proc_id".into());
        }
        field(v, "comm", Str, false)?;
        field(v, "uid", U64, true)?;
        field(v, "cgroup", Str, true)?;
    }
    match ty {
        "process" => {
            field(v, "argv", StrArray, false)?;
            field(v, "argv_redacted", Bool, false)?;
        }
        "fork" => {
            field(v, "parent_proc_id", Str, true)?;
            field(v, "thread", Bool, false)?;
            field(v, "clone_flags", U64, true)?;
        }
        "fork_failed" => {
            field(v, "errno", U64, false)?;
            field(v, "error", Str, true)?;
            if v["errno"].as_u64() == Some(0) {
                return Err("errno 0 (must be positive)".into());
            }
        }
        "exec" => {
            field(v, "filename", Str, false)?;
            field(v, "argv", StrArray, false)?;
            field(v, "argv_truncated", Bool, false)?;
            field(v, "argv_redacted", Bool, false)?;
            field(v, "old_tid", U64, true)?;
        }
        "exec_failed" => {
            field(v, "filename", Str, false)?;
            field(v, "errno", U64, false)?;
            field(v, "error", Str, false)?;
            if v["errno"].as_u64() == Some(0) {
                return Err("errno 0 (must be positive)".into());
            }
        }
        "exit" => {
            field(v, "exit_code", U64, true)?;
            field(v, "signal", U64, true)?;
            field(v, "signal_name", Str, true)?;
            field(v, "core_dumped", Bool, false)?;
            field(v, "lifetime_ns", U64, true)?;
            field(v, "thread", Bool, false)?;
            if v["exit_code"].as_u64().is_some_and(|c| c > 255) {
                return Err("exit_code above 255".into());
            }
            // A process either exited with a code or was killed by a signal.
            if v["exit_code"].is_null() == v["signal"].is_null() {
                return Err("exactly one of exit_code and signal must be set".into());
            }
            if v["signal"].is_null() != v["signal_name"].is_null() {
                return Err("signal_name must be set exactly when signal is".into());
            }
        }
        "reap" => {
            field(v, "zombie_ns", U64, true)?;
            field(v, "reaper_pid", U64, true)?;
            field(v, "reaper_comm", Str, true)?;
            field(v, "autoreap", Bool, false)?;
            // Only on an inferred reap: `"inferred": true` and its window.
            if let Some(i) = v.get("inferred") {
                if i != &Value::Bool(true) {
                    return Err(format!("inferred {i} on a reap (only true)"));
                }
                field(v, "reaped_after_ns", U64, true)?;
                field(v, "reaped_before_ns", U64, false)?;
            } else if v.get("reaped_before_ns").is_some() {
                return Err("reaped_before_ns on a reap not inferred".into());
            }
        }
        "lost" => {
            field(v, "count", U64, false)?;
            field(v, "kind", Str, false)?;
        }
        "alert" | "alert_end" => check_alert(v)?,
        "meta" => {
            field(v, "tracer_version", Str, false)?;
            field(v, "schema_version", U64, false)?;
            field(v, "kernel", Str, true)?;
            if !v.get("options").is_some_and(Value::is_object) {
                return Err("field \"options\" is not an object".into());
            }
            if v["schema_version"].as_u64() != Some(1) {
                return Err("schema_version is not 1".into());
            }
        }
        other => return Err(format!("unknown type {other:?}")),
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` (RFC 3339 section 5.6).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// The pids from this test process up to init: the processes an orphan of the run can
/// be reparented to (besides the tracer), whichever of them is a subreaper.
pub fn ancestors_of_self() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    while pid != 0 && !out.contains(&pid) {
        out.push(pid);
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            break;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            break;
        };
        // After the comm: state, then ppid.
        pid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    out
}

// ---------------------------------------------------------------------------
// Runs the test drives step by step (tests/watch_cli.rs): signals, `-p`, stalls.

/// How long a tracer may take to end once told to (a signal, `--duration`, its
/// followed processes gone), and how long any wait for a condition may take,
/// before the test kills what it started and fails.
pub const STEP_DEADLINE: Duration = Duration::from_secs(60);

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
        cmd.stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
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

    /// `tracer ARGS` (see [`tracer_bin`]).
    pub fn tracer<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Proc {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!(
                "the kernel tests load eBPF programs and need root: run them with `sudo cargo xtask test`"
            );
        }
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
        if !poll_until(deadline, || self.try_status().is_some()) {
            kill_group(self.pid());
            panic!(
                "still running after {deadline:?}; killed it.\n{}",
                self.describe()
            );
        }
        self.status.expect("polled above")
    }

    /// Waits until it ends ([`Proc::wait_exit_within`]), then until its stdout and
    /// stderr are closed (or [`PIPE_GRACE`] passed: a process it left behind may
    /// hold them).
    pub fn wait_within(&mut self, deadline: Duration) -> ExitStatus {
        self.wait_exit_within(deadline);
        let grace = Instant::now() + PIPE_GRACE;
        for done in &self.done {
            let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
        }
        self.status.expect("polled above")
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

/// Polls `cond` (every 10 ms) until it holds; false if it did not within `timeout`.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
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

/// A new empty directory for one run (a [`Trace`] made from it removes it if the
/// test passes).
pub fn run_dir(label: &str) -> PathBuf {
    fresh_dir(label)
}

/// The complete lines (ending in `\n`) of a JSON Lines file being written, as far
/// as they parse; an absent file has none. For polling: the final check is
/// [`parse_records`].
pub fn complete_records(path: &Path) -> Vec<Rec> {
    let Ok(content) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match content.rfind('\n') {
        Some(i) => &content[..i],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .map(Rec)
        .collect()
}

/// The JSON of a workload's `pids: {...}` line in `stdout`.
pub fn facts_in(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .and_then(|j| serde_json::from_str(j).ok())
}

impl Trace {
    /// The trace of a run the test drove itself (`run` has ended): `content` is the
    /// JSON Lines it wrote to `output` (a file, or its stdout), checked like
    /// [`run_traced`]'s (schema v1, `seq` gap-free from 1); `facts` as from a
    /// workload's `pids:` line (`Null` if none). `dir` is removed when the Trace is
    /// dropped in a passing test.
    pub fn from_run(run: &Proc, content: &str, output: &Path, facts: Value, dir: &Path) -> Trace {
        let status = run
            .status
            .unwrap_or_else(|| panic!("Trace::from_run on a running tracer\n{}", run.describe()));
        let records = parse_records(content).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\n{}\n--- JSON Lines:\n{}",
                output.display(),
                run.describe(),
                tail(content, 200)
            )
        });
        Trace {
            records,
            facts,
            tracer_pid: run.pid(),
            status,
            stdout: run.stdout(),
            stderr: run.stderr(),
            output: output.to_path_buf(),
            command: run.command.clone(),
            args: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }
}

/// What the end-of-run summary line on stderr says:
/// `tracer: 1.40s, 92 records (exec 2, fork 2, process 84, ...), 0 events lost ...`
/// (`1 record`, `1 event lost` in the singular).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Records per type, as listed in parentheses.
    pub per_type: std::collections::BTreeMap<String, u64>,
    pub lost: u64,
    /// The whole line.
    pub line: String,
}

/// The summary line of a tracer's stderr, if there is one that parses.
pub fn summary_in(stderr: &str) -> Option<Summary> {
    let line = stderr.lines().find(|l| {
        l.starts_with("tracer: ")
            && l.contains(" record")
            && (l.contains(" events lost") || l.contains(" event lost"))
    })?;
    // After "tracer: <duration>, ".
    let rest = line.strip_prefix("tracer: ")?.split_once(", ")?.1;
    let (records, rest) = rest.split_once(" record")?;
    let rest = rest.strip_prefix('s').unwrap_or(rest);
    // Totals are written with thousands separators (`26,008 records`).
    let records = records.replace(',', "").parse().ok()?;
    let mut per_type = std::collections::BTreeMap::new();
    let rest = match rest.strip_prefix(" (") {
        Some(r) => {
            let (list, after) = r.split_once(')')?;
            for item in list.split(", ") {
                let (ty, n) = item.rsplit_once(' ')?;
                per_type.insert(ty.to_string(), n.parse().ok()?);
            }
            after
        }
        None => rest,
    };
    let lost = rest
        .strip_prefix(", ")?
        .split_once(" event")?
        .0
        .replace(',', "")
        .parse()
        .ok()?;
    Some(Summary {
        records,
        per_type,
        lost,
        line: line.to_string(),
    })
}

/// Record types besides [`PROCESS_TYPES`] that carry the process fields.
pub const MORE_PROCESS_TYPES: [&str; 2] = ["alert", "alert_end"];

/// The kinds an `alert` record can have (docs/events.md).
pub const ALERT_KINDS: [&str; 4] = [
    "fork_storm",
    "zombie_buildup",
    "crash_loop",
    "fork_failures",
];

/// Checks the fields of an `alert` or `alert_end` record.
fn check_alert(v: &Value) -> Result<(), String> {
    use Ty::*;
    field(v, "alert", Str, false)?;
    if !ALERT_KINDS.contains(&v["alert"].as_str().expect("checked")) {
        return Err(format!("unknown alert kind {}", v["alert"]));
    }
    field(v, "scope", Str, false)?;
    field(v, "since_ktime_ns", U64, false)?;
    field(v, "filename", Str, true)?;
    field(v, "argv", StrArray, false)?;
    match v.get("parent") {
        Some(Value::Null) => {}
        Some(p @ Value::Object(_)) => {
            field(p, "pid", U64, false)?;
            field(p, "proc_id", Str, false)?;
            field(p, "comm", Str, false)?;
            field(p, "filename", Str, true)?;
        }
        other => return Err(format!("parent must be an object or null: {other:?}")),
    }
    match v.get("figures").and_then(Value::as_object) {
        Some(f) if f.values().all(Value::is_u64) => {}
        _ => {
            return Err(format!(
                "figures must map names to numbers: {}",
                v["figures"]
            ));
        }
    }
    for e in v
        .get("executables")
        .and_then(Value::as_array)
        .ok_or("executables must be an array")?
    {
        field(e, "filename", Str, true)?;
        field(e, "count", U64, false)?;
    }
    for e in v
        .get("exits")
        .and_then(Value::as_array)
        .ok_or("exits must be an array")?
    {
        field(e, "exit_code", U64, true)?;
        field(e, "signal", U64, true)?;
        field(e, "signal_name", Str, true)?;
    }
    field(v, "errno", U64, true)?;
    field(v, "error", Str, true)?;
    field(v, "message", Str, false)?;
    Ok(())
}

impl Rec {
    /// A number from an alert's `figures`.
    pub fn figure(&self, name: &str) -> Option<u64> {
        self.get("figures").get(name).and_then(Value::as_u64)
    }
}

impl Trace {
    /// The `alert` records (`alert_end` when `end`), in order.
    pub fn alerts(&self, end: bool) -> Vec<&Rec> {
        self.find(if end { "alert_end" } else { "alert" }, |_| true)
    }

    /// The one `alert` (or `alert_end`) of `kind`; fails if there is none or
    /// there are several, or if any alert of another kind was raised.
    pub fn one_alert(&self, kind: &str, end: bool, about: &[u32]) -> &Rec {
        for r in self.alerts(false).into_iter().chain(self.alerts(true)) {
            if r.str("alert") != Some(kind) {
                self.fail(about, format!("an alert other than {kind} was raised: {r}"));
            }
        }
        let ty = if end { "alert_end" } else { "alert" };
        self.one(ty, about, &format!("of kind {kind}"), |r| {
            r.str("alert") == Some(kind)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2024-05-01T12:34:56Z"));
        assert!(is_rfc3339("2024-05-01T12:34:56.123456789Z"));
        assert!(is_rfc3339("2024-05-01T12:34:56.1+02:00"));
        assert!(!is_rfc3339("2024-05-01 12:34:56"));
        assert!(!is_rfc3339("2024-05-01T12:34:56."));
        assert!(!is_rfc3339("2024-05-01T12:34:56+0200"));
        assert!(!is_rfc3339("1714566896"));
    }

    fn exit_line(seq: u64, extra: &str) -> String {
        format!(
            r#"{{"seq":{seq},"type":"exit","ts":"2024-05-01T12:34:56.5Z","ktime_ns":1,"host":"h","boot_id":"b","pid":5,"tid":5,"ppid":1,"proc_id":"5-7","comm":"x","uid":0,"cgroup":null,"core_dumped":false,"lifetime_ns":3,"thread":false{extra}}}"#
        )
    }

    #[test]
    fn schema_accepts_and_rejects() {
        let good = exit_line(1, r#","exit_code":7,"signal":null,"signal_name":null"#);
        let recs = parse_records(&good).expect("valid record");
        assert_eq!(recs[0].u64("exit_code"), Some(7));

        let both = exit_line(1, r#","exit_code":7,"signal":9,"signal_name":"SIGKILL""#);
        assert!(
            parse_records(&both)
                .unwrap_err()
                .contains("exactly one of exit_code")
        );

        let no_name = exit_line(1, r#","exit_code":null,"signal":9,"signal_name":null"#);
        assert!(parse_records(&no_name).unwrap_err().contains("signal_name"));

        let gap = format!(
            "{good}\n{}",
            exit_line(3, r#","exit_code":0,"signal":null,"signal_name":null"#)
        );
        assert!(parse_records(&gap).unwrap_err().contains("seq 3 where 2"));

        let missing = good.replace(r#""proc_id":"5-7","#, "");
        assert!(parse_records(&missing).unwrap_err().contains("proc_id"));

        let lost = r#"{"seq":1,"type":"lost","ts":"2024-05-01T12:34:56Z","ktime_ns":1,"host":"h","boot_id":"b","count":3,"kind":"exec"}"#;
        assert_eq!(parse_records(lost).expect("lost is valid")[0].pid(), None);
    }

    #[test]
    fn ancestors_end_at_init() {
        let a = ancestors_of_self();
        assert_eq!(a.first(), Some(&std::process::id()));
        assert_eq!(a.last(), Some(&1), "{a:?}");
    }

    #[test]
    fn summary_lines() {
        let s = summary_in(
            "tracer: skipped\ntracer: 1.40s, 92 records (exec 2, fork_failed 1, process 89), 4 events lost (exec 4; a larger --ring-size rides out bigger bursts)\ntracer: top forkers: 1 x (2)\n",
        )
        .expect("parses");
        assert_eq!((s.records, s.lost), (92, 4));
        assert_eq!(s.per_type.get("fork_failed"), Some(&1));
        assert_eq!(s.per_type.values().sum::<u64>(), 92);
        let empty = summary_in("tracer: 100.0ms, 0 records, 0 events lost\n").expect("parses");
        assert_eq!((empty.records, empty.lost, empty.per_type.len()), (0, 0, 0));
        let big = summary_in("tracer: 15.0s, 26,008 records (exec 26008), 1,200 events lost\n")
            .expect("parses");
        assert_eq!((big.records, big.lost), (26_008, 1_200));
        let one = summary_in("tracer: 1m05s, 1 record (meta 1), 1 event lost (exec 1)\n")
            .expect("parses");
        assert_eq!((one.records, one.lost, one.per_type.len()), (1, 1, 1));
        assert_eq!(summary_in("tracer: no process with pid 4\n"), None);
    }
}

/// What a run of `tracer` (other than `watch`) printed.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Ran {
    /// Fails the test unless the command exited with 0.
    pub fn ok(self) -> Ran {
        if !self.status.success() {
            panic!(
                "{} exited with {}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.command,
                self.status,
                tail(&self.stdout, 100),
                self.stderr
            );
        }
        self
    }
}

/// Runs `tracer ARGS` (e.g. `report FILE`) to its end, with stdin read from the file
/// `stdin` (empty when `None`). Panics if it cannot start or takes longer than
/// [`DEADLINE`].
pub fn run_tracer(args: &[&std::ffi::OsStr], stdin: Option<&Path>) -> Ran {
    let mut cmd = Command::new(tracer_bin());
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match stdin {
        Some(p) => {
            let f = std::fs::File::open(p)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()));
            cmd.stdin(f);
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let command = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let pid = child.id();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let out_done = drain(child.stdout.take().expect("piped"), Arc::clone(&stdout));
    let err_done = drain(child.stderr.take().expect("piped"), Arc::clone(&stderr));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(DEADLINE) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => panic!("waiting for {command}: {e}"),
        Err(_) => {
            kill_group(pid);
            panic!("{command} still running after {DEADLINE:?}; killed it");
        }
    };
    let grace = Instant::now() + PIPE_GRACE;
    for done in [out_done, err_done] {
        let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
    }
    Ran {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
        command,
    }
}

// ---------------------------------------------------------------------------
// Fault tests (tests/faults.rs): outputs too big to hold, pids-limited cgroups,
// scheduling, what a process holds in the kernel.

/// What [`scan_records`] found in a JSON Lines file read line by line (a fork
/// bomb's recording is hundreds of MB: too big to hold as [`Rec`]s).
#[derive(Debug, Default)]
pub struct Scan {
    pub records: u64,
    pub bytes: u64,
    pub per_type: std::collections::BTreeMap<String, u64>,
    /// The sum of the `count` of the `lost` records.
    pub lost: u64,
    /// The lost counts per `kind`.
    pub lost_by_kind: std::collections::BTreeMap<String, u64>,
    /// The records `keep` chose, in order.
    pub kept: Vec<Rec>,
    /// Processes (proc_ids) with records that contradict each other: two
    /// whole-process exits, two reaps, an exit after the reap, a fork after the
    /// exit. At most the first 20.
    pub inconsistent: Vec<String>,
}

/// Reads a JSON Lines output as it is streamed: each line checked against schema
/// v1 ([`check_record`]), `seq` gap-free from 1, the file ending with a newline;
/// counts the records per type and the lost events, keeps the records for which
/// `keep` holds, and checks that no process's records contradict each other.
pub fn scan_records(path: &Path, keep: impl Fn(&Rec) -> bool) -> Result<Scan, String> {
    use std::collections::HashMap;
    use std::io::BufRead;
    /// What was seen of one process: seq of its fork, exit, reap (0: none).
    #[derive(Default)]
    struct Seen {
        fork: u64,
        exit: u64,
        reap: u64,
    }
    let file = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan::default();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut line = String::new();
    let mut lineno = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("{}: line {}: {e}", path.display(), lineno + 1))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        scan.bytes += n as u64;
        let Some(text) = line.strip_suffix('\n') else {
            return Err(format!(
                "line {lineno} has no newline: the last record was cut or not flushed: {line:?}"
            ));
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("line {lineno} is not JSON ({e}): {text}"))?;
        check_record(&value).map_err(|e| format!("line {lineno} breaks schema v1: {e}: {text}"))?;
        let rec = Rec(value);
        let seq = rec.seq();
        if seq != scan.records + 1 {
            return Err(format!(
                "line {lineno}: seq {seq} where {} was due (seq must be gap-free from 1)",
                scan.records + 1
            ));
        }
        scan.records += 1;
        *scan.per_type.entry(rec.ty().to_string()).or_default() += 1;
        if rec.ty() == "lost" {
            let count = rec.u64("count").expect("checked");
            scan.lost += count;
            *scan
                .lost_by_kind
                .entry(rec.str("kind").expect("checked").to_string())
                .or_default() += count;
        }
        if let (Some(id), false) = (rec.proc_id(), rec.thread()) {
            let s = seen.entry(id.to_string()).or_default();
            let bad = match rec.ty() {
                "fork" if s.fork != 0 || s.exit != 0 => Some("a fork after its fork or exit"),
                "fork" => {
                    s.fork = seq;
                    None
                }
                "exit" if s.exit != 0 => Some("a second exit"),
                "exit" if s.reap != 0 => Some("an exit after its reap"),
                "exit" => {
                    s.exit = seq;
                    None
                }
                "reap" if s.reap != 0 => Some("a second reap"),
                "reap" => {
                    s.reap = seq;
                    None
                }
                _ => None,
            };
            if let Some(what) = bad
                && scan.inconsistent.len() < 20
            {
                scan.inconsistent
                    .push(format!("{id}: {what} (seq {seq}): {rec}"));
            }
        }
        if keep(&rec) {
            scan.kept.push(rec);
        }
    }
    Ok(scan)
}

/// A cgroup whose `pids.max` bounds the processes in it, in the cgroup v2
/// hierarchy if its pids controller is there, else in the v1 pids hierarchy.
/// Dropping it kills whatever is in it and removes it.
#[derive(Debug)]
pub struct PidsCgroup {
    pub dir: PathBuf,
    pub v2: bool,
    removed: bool,
}

/// Mount points of the cgroup v2 hierarchy and of the v1 hierarchy holding the
/// pids controller, from /proc/self/mountinfo.
fn cgroup_mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mut v2, mut v1) = (None, None);
    for line in info.lines() {
        // `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS... - FSTYPE SOURCE SUPER_OPTIONS`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let fstype = right.next();
        let super_opts = right.nth(1).unwrap_or("");
        match fstype {
            Some("cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(point)),
            Some("cgroup") if v1.is_none() && super_opts.split(',').any(|o| o == "pids") => {
                v1 = Some(PathBuf::from(point))
            }
            _ => {}
        }
    }
    (v2, v1)
}

impl PidsCgroup {
    /// Creates cgroup `name` with `pids.max` = `max`: in cgroup v2 if its pids
    /// controller is available there (enabling it for the root's children), else
    /// in the v1 pids hierarchy; None if neither is there.
    pub fn create(name: &str, max: u64) -> Result<Option<PidsCgroup>, String> {
        let (v2, v1) = cgroup_mounts();
        let v2_pids = v2.filter(|m| {
            std::fs::read_to_string(m.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        });
        let (root, is_v2) = match (v2_pids, v1) {
            (Some(m), _) => {
                std::fs::write(m.join("cgroup.subtree_control"), "+pids").map_err(|e| {
                    format!("enable pids in {}/cgroup.subtree_control: {e}", m.display())
                })?;
                (m, true)
            }
            (None, Some(m)) => (m, false),
            (None, None) => return Ok(None),
        };
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cg = PidsCgroup {
            dir,
            v2: is_v2,
            removed: false,
        };
        cg.write("pids.max", &max.to_string())?;
        Ok(Some(cg))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .map_err(|e| format!("write {value:?} to {}: {e}", path.display()))
    }

    /// The file a process writes its pid to, to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The processes in it.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many forks its `pids.max` refused (`max` in `pids.events`).
    pub fn refused_forks(&self) -> Option<u64> {
        let events = std::fs::read_to_string(self.dir.join("pids.events")).ok()?;
        events
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Kills everything in it (after stopping all forks: `pids.max` 0) and removes
    /// it, waiting up to [`STEP_DEADLINE`].
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        // No new process while the others are killed (pids.max only limits forks).
        self.write("pids.max", "0")?;
        if self.v2 {
            // Linux 5.14+; older kernels go on with the loop below.
            let _ = self.write("cgroup.kill", "1");
        }
        let emptied = poll_until(STEP_DEADLINE, || {
            let pids = self.pids();
            for &pid in &pids {
                // SAFETY: signals processes in the cgroup this test created.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            pids.is_empty()
        });
        if !emptied {
            return Err(format!(
                "{} still holds {:?} after SIGKILL",
                self.dir.display(),
                self.pids()
            ));
        }
        let mut last = None;
        // rmdir fails with EBUSY until the killed tasks are released.
        let gone = poll_until(STEP_DEADLINE, || match std::fs::remove_dir(&self.dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                last = Some(e);
                false
            }
        });
        if !gone {
            return Err(format!("rmdir {}: {last:?}", self.dir.display()));
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleaning up the test cgroup: {e}");
        }
    }
}

/// Makes `cmd` run on CPU `cpu` only and/or with nice value `nice` (set between
/// fork and exec, so the command is started that way).
pub fn schedule(cmd: &mut Command, cpu: Option<usize>, nice: Option<i32>) {
    // SAFETY: the closure only makes two syscalls (async-signal-safe) on itself.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(nice) = nice
                && libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// Sets every thread of running process `pid` to run on `cpus` with nice value
/// `nice` (both are per thread in Linux). Fails the test if the process is gone.
pub fn reschedule(pid: u32, cpus: &[usize], nice: i32) {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: the set is valid; allowed_cpus gives CPUs below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("threads of {pid}: {e}"));
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: plain syscalls on a thread of a process this test started; a
        // thread that ended meanwhile gives ESRCH, which is fine.
        unsafe {
            libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
        }
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        panic!("sched_getaffinity: {}", std::io::Error::last_os_error());
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The BPF objects a process holds open, by kernel id, from the `prog_id:`,
/// `map_id:` and `link_id:` lines of /proc/PID/fdinfo/* (kernel/bpf/syscall.c,
/// bpf_prog_show_fdinfo and friends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BpfIds {
    pub progs: BTreeSet<u32>,
    pub maps: BTreeSet<u32>,
    pub links: BTreeSet<u32>,
}

impl BpfIds {
    pub fn of(pid: u32) -> BpfIds {
        let mut ids = BpfIds::default();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return ids;
        };
        for entry in dir.flatten() {
            let Ok(info) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in info.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let Ok(id) = value.trim().parse::<u32>() else {
                    continue;
                };
                match key {
                    "prog_id" => ids.progs.insert(id),
                    "map_id" => ids.maps.insert(id),
                    "link_id" => ids.links.insert(id),
                    _ => false,
                };
            }
        }
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.maps.is_empty() && self.links.is_empty()
    }
}
