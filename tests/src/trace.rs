//! [`Trace`]: what one traced run produced, and the assertions tests make on its
//! records. A failed assertion panics with the records of the pids concerned
//! ([`Trace::fail`]).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use serde_json::Value;

use crate::child::{Proc, tail};
use crate::records::{Rec, lines, parse_records};
use crate::{ensure, ensure_eq};

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
            // COMMAND's, or 3 for a successful one when events were lost
            // (README, Exit status).
            Some(match code {
                0 if self.records.iter().any(|r| r.ty() == "lost") => 3,
                c => i32::from(c),
            }),
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

    /// [`Trace::from_run`] on the JSON Lines file `output` the run wrote, which must
    /// be readable and complete: not empty and ending with a newline (its last record
    /// written whole).
    pub fn from_output(run: &Proc, output: &Path, facts: Value, dir: &Path) -> Trace {
        let content = std::fs::read_to_string(output).unwrap_or_else(|e| {
            panic!(
                "no readable output {}: {e}\n{}",
                output.display(),
                run.describe()
            )
        });
        assert!(
            content.ends_with('\n'),
            "{} does not end with a newline (last record cut or not flushed): {:?}\n{}",
            output.display(),
            &content[content.len().saturating_sub(200)..],
            run.describe()
        );
        Trace::from_run(run, &content, output, facts, dir)
    }

    /// The trace of a run the test drove itself (`run` has ended): `content` is the
    /// JSON Lines it wrote to `output` (a file, or its stdout), checked like
    /// [`run_traced`](crate::run_traced)'s (schema v2, `seq` gap-free from 1); `facts` as from a
    /// workload's `pids:` line (`Null` if none). `dir` is removed when the Trace is
    /// dropped in a passing test.
    pub fn from_run(run: &Proc, content: &str, output: &Path, facts: Value, dir: &Path) -> Trace {
        let status = run
            .status()
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
