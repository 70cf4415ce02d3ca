//! One readable line per event, for `tracer watch` in a terminal (forkstat-like):
//!
//! ```text
//! 04:13:22.123456  fork         1240 bash  <- 1234 bash
//! 04:13:22.123901  exec         1240 /usr/bin/ls  ls -la
//! 04:13:22.125100  exit         1240 ls  code=0 lifetime=1.1ms
//! 04:13:22.125200  reap         1240 ls  by 1234 bash after 100.0us
//! 04:13:23.000000  lost           12 exec events (ring buffer full)
//! 04:13:30.000000  ALERT     fork storm: 1234 bash (/usr/bin/bash) forked 2,310/s for 5.0 s (...)
//! ```
//!
//! Times are UTC. Strings from the kernel are shown with control characters and
//! invalid UTF-8 as `\xNN`, so nothing a process names itself can drive the
//! terminal. For a lossless record use JSON Lines.

use std::io::{self, BufWriter, Write};

use super::RunInfo;
use super::escape::escape_text_into;
use super::time::push_time_of_day_us;
use crate::alert_text::message;
use crate::event::Comm;
use crate::names::{errno_name, signal_name};
use crate::record::{Body, Record};
use crate::units::{push_duration, push_u64};

/// Width of the event column: the longest label, "exec-fail".
const LABEL_WIDTH: usize = 9;
/// Width of the pid column; pids go up to 4194304 (PID_MAX_LIMIT).
const PID_WIDTH: usize = 7;

pub struct TextWriter<W: Write> {
    out: BufWriter<W>,
    line: Vec<u8>,
    realtime_offset_ns: i128,
    color: bool,
    written: u64,
}

impl<W: Write> TextWriter<W> {
    /// `color`: mark the event column with ANSI colours (for a terminal).
    pub fn new(w: W, info: RunInfo, color: bool) -> Self {
        TextWriter {
            out: BufWriter::new(w),
            line: Vec::with_capacity(256),
            realtime_offset_ns: info.realtime_offset_ns,
            color,
            written: 0,
        }
    }

    /// Writes one line. Cgroups are shown only in alerts, which name the culprit's
    /// (the path the host stage put in the record).
    pub fn write(&mut self, rec: &Record) -> io::Result<()> {
        self.line.clear();
        let cgroup = match (&rec.body, &rec.subject) {
            (Body::Alert(_), Some(s)) => s.cgroup.as_deref(),
            _ => None,
        };
        format_line(
            &mut self.line,
            rec,
            cgroup,
            self.realtime_offset_ns,
            self.color,
        );
        self.out.write_all(&self.line)?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn records_written(&self) -> u64 {
        self.written
    }

    /// Flushes and gives the sink back.
    pub fn into_inner(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

fn label_and_color(rec: &Record) -> (&'static str, &'static str) {
    match &rec.body {
        Body::Process { .. } => ("process", "2"),
        Body::Fork { .. } => ("fork", "32"),
        Body::Exec { .. } => ("exec", "36"),
        Body::ExecFailed { .. } => ("exec-fail", "31"),
        Body::ForkFailed { .. } => ("fork-fail", "1;31"),
        Body::Exit {
            signal: Some(_), ..
        } => ("exit", "1;33"),
        Body::Exit { .. } => ("exit", "33"),
        Body::Reap { .. } => ("reap", "35"),
        Body::Lost { .. } => ("lost", "1;31"),
        Body::End { .. } => ("end", "2"),
        Body::Alert(a) if a.end => ("alert-end", "1;33"),
        Body::Alert(_) => ("ALERT", "1;31"),
    }
}

fn pad_left(out: &mut Vec<u8>, n: u64, width: usize) {
    let digits = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    out.resize(out.len() + width.saturating_sub(digits), b' ');
    push_u64(out, n);
}

fn comm(out: &mut Vec<u8>, c: &Comm) {
    escape_text_into(out, c.as_bytes());
}

/// An argument as a shell would need it to read it back as one word: quoted
/// (single quotes) when empty or containing blanks or quotes.
fn push_arg(out: &mut Vec<u8>, arg: &[u8]) {
    let needs_quotes =
        arg.is_empty() || arg.iter().any(|b| matches!(b, b' ' | b'\t' | b'\'' | b'"'));
    if !needs_quotes {
        escape_text_into(out, arg);
        return;
    }
    out.push(b'\'');
    for piece in arg.split_inclusive(|&b| b == b'\'') {
        match piece.strip_suffix(b"'") {
            Some(head) => {
                escape_text_into(out, head);
                out.extend_from_slice(b"'\\''");
            }
            None => escape_text_into(out, piece),
        }
    }
    out.push(b'\'');
}

fn push_argv(out: &mut Vec<u8>, argv: &[Vec<u8>]) {
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push_arg(out, a);
    }
}

/// `cgroup`: the subject's cgroup path, for alerts.
fn format_line(
    out: &mut Vec<u8>,
    rec: &Record,
    cgroup: Option<&str>,
    realtime_offset_ns: i128,
    color: bool,
) {
    push_time_of_day_us(out, i128::from(rec.ktime_ns) + realtime_offset_ns);
    out.extend_from_slice(b"  ");
    let (label, code) = label_and_color(rec);
    if color {
        out.extend_from_slice(b"\x1b[");
        out.extend_from_slice(code.as_bytes());
        out.push(b'm');
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"\x1b[0m");
    } else {
        out.extend_from_slice(label.as_bytes());
    }
    out.resize(out.len() + LABEL_WIDTH - label.len() + 1, b' ');

    let s = rec.subject.as_ref();
    // "  1240 bash": the pid column and the command name.
    let pid_comm = |out: &mut Vec<u8>| {
        if let Some(s) = s {
            pad_left(out, u64::from(s.pid), PID_WIDTH);
            out.push(b' ');
            comm(out, &s.comm);
        } else {
            out.resize(out.len() + PID_WIDTH, b' ');
            out.extend_from_slice(b" ?");
        }
    };

    match &rec.body {
        Body::Process {
            filename,
            argv,
            state,
            ..
        } => {
            pid_comm(out);
            out.extend_from_slice(b"  ");
            let mut buf = [0u8; 4];
            out.extend_from_slice(state.map_or("-", |c| &*c.encode_utf8(&mut buf)).as_bytes());
            out.extend_from_slice(b"  ");
            match filename {
                Some(f) => escape_text_into(out, f),
                None => out.push(b'-'),
            }
            out.extend_from_slice(b"  ");
            if argv.is_empty() {
                // As ps shows processes without arguments (kernel threads, zombies).
                out.push(b'[');
                if let Some(s) = s {
                    comm(out, &s.comm);
                }
                out.push(b']');
            } else {
                push_argv(out, argv);
            }
        }
        Body::Fork { thread: true, .. } => {
            pid_comm(out);
            out.extend_from_slice(b"  thread ");
            push_u64(out, s.map_or(0, |s| u64::from(s.tid)));
        }
        Body::Fork { .. } => {
            pid_comm(out);
            out.extend_from_slice(b"  <- ");
            if let Some(s) = s {
                push_u64(out, u64::from(s.ppid));
                out.push(b' ');
                // The child's name is the parent's at fork time (copied in copy_process).
                comm(out, &s.comm);
            }
        }
        Body::Exec {
            filename,
            argv,
            argv_truncated,
            old_tid,
            ..
        } => {
            pad_left(out, s.map_or(0, |s| u64::from(s.pid)), PID_WIDTH);
            out.push(b' ');
            escape_text_into(out, filename);
            out.extend_from_slice(b"  ");
            push_argv(out, argv);
            if *argv_truncated {
                out.extend_from_slice(b" ...");
            }
            if let Some(t) = old_tid {
                out.extend_from_slice(b"  (exec by thread ");
                push_u64(out, u64::from(*t));
                out.push(b')');
            }
        }
        Body::ForkFailed { errno } => {
            pid_comm(out);
            out.extend_from_slice(b"  fork failed: ");
            match errno_name(*errno) {
                Some(name) => out.extend_from_slice(name.as_bytes()),
                None => {
                    out.extend_from_slice(b"errno ");
                    push_u64(out, u64::from(*errno));
                }
            }
        }
        Body::ExecFailed { filename, errno } => {
            pid_comm(out);
            out.extend_from_slice(b"  ");
            escape_text_into(out, filename);
            out.extend_from_slice(b": ");
            match errno_name(*errno) {
                Some(name) => out.extend_from_slice(name.as_bytes()),
                None => {
                    out.extend_from_slice(b"errno ");
                    push_u64(out, u64::from(*errno));
                }
            }
        }
        Body::Exit {
            exit_code,
            signal,
            core_dumped,
            lifetime_ns,
            thread,
        } => {
            pid_comm(out);
            out.extend_from_slice(b"  ");
            if *thread {
                out.extend_from_slice(b"thread ");
                push_u64(out, s.map_or(0, |s| u64::from(s.tid)));
                out.push(b' ');
            }
            match (exit_code, signal) {
                (_, Some(sig)) => {
                    out.extend_from_slice(b"killed by ");
                    match signal_name(*sig) {
                        Some(name) => out.extend_from_slice(name.as_bytes()),
                        None => {
                            out.extend_from_slice(b"signal ");
                            push_u64(out, u64::from(*sig));
                        }
                    }
                    if *core_dumped {
                        out.extend_from_slice(b" (core dumped)");
                    }
                }
                (Some(code), None) => {
                    out.extend_from_slice(b"code=");
                    push_u64(out, u64::from(*code));
                }
                (None, None) => out.extend_from_slice(b"status unknown"),
            }
            if let Some(ns) = lifetime_ns {
                out.extend_from_slice(b" lifetime=");
                push_duration(out, *ns);
            }
        }
        Body::Reap {
            zombie_ns,
            reaper_pid,
            reaper_comm,
            autoreap,
            inferred,
        } => {
            pid_comm(out);
            out.extend_from_slice(b"  ");
            match (autoreap, reaper_pid) {
                (true, _) => out.extend_from_slice(b"auto-reaped"),
                (false, Some(pid)) => {
                    out.extend_from_slice(b"by ");
                    push_u64(out, u64::from(*pid));
                    if let Some(c) = reaper_comm {
                        out.push(b' ');
                        comm(out, c);
                    }
                }
                // Found gone after lost events (docs/events.md, `uncertain`).
                (false, None) if rec.uncertain => out.extend_from_slice(b"gone, end not seen"),
                (false, None) => out.extend_from_slice(b"reaped"),
            }
            if let Some(ns) = zombie_ns {
                out.extend_from_slice(if inferred.is_some() {
                    b" within "
                } else {
                    b" after "
                });
                push_duration(out, *ns);
            }
            if inferred.is_some() {
                out.extend_from_slice(b" (inferred: gone from /proc)");
            }
        }
        Body::Lost { kind, count } => {
            pad_left(out, *count, PID_WIDTH);
            out.push(b' ');
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b" events (ring buffer full)");
        }
        Body::End { reason, .. } => {
            out.extend_from_slice(b"recording ended: ");
            out.extend_from_slice(reason.as_bytes());
        }
        Body::Alert(a) => {
            // The whole message stands out, not only the label: it is what the
            // person watching needs to see.
            let highlight = color && !a.end;
            if highlight {
                out.extend_from_slice(b"\x1b[1;31m");
            }
            escape_text_into(out, &message(a, s, cgroup));
            if highlight {
                out.extend_from_slice(b"\x1b[0m");
            }
        }
    }
    if rec.uncertain {
        out.extend_from_slice(b" (uncertain: events were lost)");
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ProcId, Subject};

    /// ktime 0 is 2026-11-22T04:13:22.000000000Z (`date -u -d @1795320802`).
    const OFFSET: i128 = 1_795_320_802_000_000_000;
    /// 123456789 ns after that.
    const KTIME: u64 = 123_456_789;

    fn info() -> RunInfo {
        RunInfo {
            host: "h".into(),
            boot_id: "b".into(),
            realtime_offset_ns: OFFSET,
        }
    }

    fn subject(pid: u32, comm: &[u8]) -> Subject {
        Subject {
            pid,
            tid: pid,
            ppid: 1234,
            proc_id: ProcId {
                pid,
                start_ticks: 1,
            },
            comm: Comm::new(comm),
            uid: Some(0),
            cgroup_id: 0,
            cgroup: None,
        }
    }

    fn line_with(rec: &Record, color: bool) -> String {
        let mut w = TextWriter::new(Vec::new(), info(), color);
        w.write(rec).unwrap();
        assert_eq!(w.records_written(), 1);
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    fn line(subject: Option<Subject>, body: Body) -> String {
        line_with(
            &Record {
                ktime_ns: KTIME,
                subject,
                body,
                uncertain: false,
            },
            false,
        )
    }

    const T: &str = "04:13:22.123456";

    #[test]
    fn fork_lines() {
        let body = Body::Fork {
            parent_proc_id: None,
            thread: false,
            clone_flags: None,
        };
        assert_eq!(
            line(Some(subject(1240, b"bash")), body),
            format!("{T}  fork         1240 bash  <- 1234 bash\n")
        );
        let mut s = subject(1240, b"java");
        s.tid = 1251;
        let body = Body::Fork {
            parent_proc_id: None,
            thread: true,
            clone_flags: Some(0x3d0f00),
        };
        assert_eq!(
            line(Some(s), body),
            format!("{T}  fork         1240 java  thread 1251\n")
        );
    }

    #[test]
    fn exec_lines() {
        let body = Body::Exec {
            filename: b"/usr/bin/ls".to_vec(),
            argv: vec![b"ls".to_vec(), b"-la".to_vec()],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        };
        assert_eq!(
            line(Some(subject(1240, b"ls")), body),
            format!("{T}  exec         1240 /usr/bin/ls  ls -la\n")
        );
        let body = Body::Exec {
            filename: b"/bin/echo".to_vec(),
            argv: vec![
                b"echo".to_vec(),
                b"two words".to_vec(),
                b"".to_vec(),
                b"it's".to_vec(),
                b"\xff\n".to_vec(),
            ],
            argv_truncated: true,
            old_tid: Some(1300),
            argv_redacted: false,
        };
        assert_eq!(
            line(Some(subject(1240, b"echo")), body),
            format!(
                "{T}  exec         1240 /bin/echo  echo 'two words' '' 'it'\\''s' \\xff\\x0a ...  (exec by thread 1300)\n"
            )
        );
    }

    #[test]
    fn exec_failed_lines() {
        let body = Body::ExecFailed {
            filename: b"/nope".to_vec(),
            errno: 2,
        };
        assert_eq!(
            line(Some(subject(1240, b"bash")), body),
            format!("{T}  exec-fail    1240 bash  /nope: ENOENT\n")
        );
        let body = Body::ExecFailed {
            filename: b"/x".to_vec(),
            errno: 999,
        };
        assert_eq!(
            line(Some(subject(7, b"sh")), body),
            format!("{T}  exec-fail       7 sh  /x: errno 999\n")
        );
    }

    #[test]
    fn exit_lines() {
        let body = Body::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            lifetime_ns: Some(1_234_567),
            thread: false,
        };
        assert_eq!(
            line(Some(subject(1240, b"ls")), body),
            format!("{T}  exit         1240 ls  code=0 lifetime=1.2ms\n")
        );
        let body = Body::Exit {
            exit_code: None,
            signal: Some(9),
            core_dumped: true,
            lifetime_ns: None,
            thread: false,
        };
        assert_eq!(
            line(Some(subject(1240, b"sleep")), body),
            format!("{T}  exit         1240 sleep  killed by SIGKILL (core dumped)\n")
        );
        let mut s = subject(1240, b"java");
        s.tid = 1251;
        let body = Body::Exit {
            exit_code: Some(1),
            signal: None,
            core_dumped: false,
            lifetime_ns: Some(61_000_000_000),
            thread: true,
        };
        assert_eq!(
            line(Some(s), body),
            format!("{T}  exit         1240 java  thread 1251 code=1 lifetime=1m01s\n")
        );
    }

    #[test]
    fn reap_lines() {
        let body = Body::Reap {
            zombie_ns: Some(100_000),
            reaper_pid: Some(1234),
            reaper_comm: Some(Comm::new(b"bash")),
            autoreap: false,
            inferred: None,
        };
        assert_eq!(
            line(Some(subject(1240, b"ls")), body),
            format!("{T}  reap         1240 ls  by 1234 bash after 100.0us\n")
        );
        let body = Body::Reap {
            zombie_ns: None,
            reaper_pid: None,
            reaper_comm: None,
            autoreap: true,
            inferred: None,
        };
        assert_eq!(
            line(Some(subject(1240, b"ls")), body),
            format!("{T}  reap         1240 ls  auto-reaped\n")
        );
    }

    #[test]
    fn process_and_lost_lines() {
        let body = Body::Process {
            filename: Some(b"/usr/bin/bash".to_vec()),
            argv: vec![b"-bash".to_vec()],
            state: Some('S'),
            argv_redacted: false,
        };
        assert_eq!(
            line(Some(subject(900, b"bash")), body),
            format!("{T}  process       900 bash  S  /usr/bin/bash  -bash\n")
        );
        let body = Body::Process {
            filename: None,
            argv: vec![],
            state: Some('I'),
            argv_redacted: false,
        };
        assert_eq!(
            line(Some(subject(2, b"kthreadd")), body),
            format!("{T}  process         2 kthreadd  I  -  [kthreadd]\n")
        );
        let body = Body::Lost {
            kind: "exec".into(),
            count: 12,
        };
        assert_eq!(
            line(None, body),
            format!("{T}  lost           12 exec events (ring buffer full)\n")
        );
    }

    fn storm_alert(end: bool) -> Body {
        Body::Alert(Box::new(crate::record::Alert {
            kind: crate::record::AlertKind::ForkStorm,
            end,
            scope: "process".into(),
            since_ns: 0,
            filename: Some(b"/usr/bin/bash".to_vec()),
            argv: vec![b"bash".to_vec()],
            parent: None,
            figures: vec![("rate_per_s".into(), 2310)],
            executables: vec![],
            exits: vec![],
            errno: None,
            what: if end {
                "after 15 s: 33,020 children, peak 2,402/s".into()
            } else {
                "forked 2,310/s for 5.0 s".into()
            },
            message: None,
        }))
    }

    #[test]
    fn alert_lines_stand_out() {
        let rec = |body| Record {
            ktime_ns: KTIME,
            subject: Some(subject(1234, b"bash")),
            body,
            uncertain: false,
        };
        assert_eq!(
            line_with(&rec(storm_alert(false)), false),
            format!(
                "{T}  ALERT     fork storm: 1234 bash (/usr/bin/bash) forked 2,310/s for 5.0 s\n"
            )
        );
        // In colour the whole message is bold red, not only the label.
        assert_eq!(
            line_with(&rec(storm_alert(false)), true),
            format!(
                "{T}  \x1b[1;31mALERT\x1b[0m     \x1b[1;31mfork storm: 1234 bash (/usr/bin/bash) forked 2,310/s for 5.0 s\x1b[0m\n"
            )
        );
        assert_eq!(
            line_with(&rec(storm_alert(true)), false),
            format!(
                "{T}  alert-end fork storm over: 1234 bash (/usr/bin/bash) after 15 s: 33,020 children, peak 2,402/s\n"
            )
        );
        // A culprit's name cannot drive the terminal.
        let mut r = rec(storm_alert(false));
        r.subject.as_mut().unwrap().comm = Comm::new(b"\x1b[2J");
        assert!(line_with(&r, false).contains("fork storm: 1234 \\x1b[2J (/usr/bin/bash)"));
    }

    #[test]
    fn hostile_comm_is_escaped() {
        let body = Body::Fork {
            parent_proc_id: None,
            thread: false,
            clone_flags: None,
        };
        assert_eq!(
            line(Some(subject(5, b"\x1b[2J\xff")), body),
            format!("{T}  fork            5 \\x1b[2J\\xff  <- 1234 \\x1b[2J\\xff\n")
        );
    }

    #[test]
    fn color_marks_the_event_column() {
        let rec = Record {
            ktime_ns: KTIME,
            subject: Some(subject(1240, b"bash")),
            body: Body::Fork {
                parent_proc_id: None,
                thread: false,
                clone_flags: None,
            },
            uncertain: false,
        };
        assert_eq!(
            line_with(&rec, true),
            format!("{T}  \x1b[32mfork\x1b[0m         1240 bash  <- 1234 bash\n")
        );
    }
}
