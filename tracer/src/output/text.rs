//! One readable line per event, for `tracer watch` in a terminal (forkstat-like):
//!
//! ```text
//! TIME             EVENT         PID NAME  DETAILS  [2026-11-22, local time CET (UTC+01:00)]
//! 05:13:22.123456  fork         1240 bash  <- 1234 bash
//! 05:13:22.123901  exec         1240 /usr/bin/ls  ppid=1234 uid=1000  ls -la  (after 3 PATH misses)
//! 05:13:22.125100  exit         1240 ls  code=0 lifetime=1.1ms
//! 05:13:22.125200  reap         1240 ls  by 1234 bash after 100.0us
//! 05:13:23.000000  lost           12 exec events (ring buffer full)
//! 05:13:30.000000  ALERT     fork storm: 1234 bash (/usr/bin/bash) forked 2,310/s for 5.00s (...)
//! ```
//!
//! With [`TextWriter::terminal`] the first line names the columns and gives the
//! date and time zone, times are in that zone (local by default), and a line
//! with the new date comes when the day (or the zone's offset) changes. A
//! command found through a `PATH` search (execvp) fails with ENOENT in each
//! directory before it runs: those failures are held back briefly, per process,
//! and folded into the exec that ends them (`(after 3 PATH misses)`); failures
//! no exec of the same name follows are printed as they were, at that process's
//! next record, or after [`PATH_MISS_HOLD_NS`] on the tick. Files keep every one.
//!
//! Strings from the kernel are shown with control characters and invalid UTF-8
//! as `\xNN`, so nothing a process names itself can drive the terminal. For a
//! lossless record use JSON Lines.

use std::io::{self, BufWriter, Write};

use super::RunInfo;
use super::escape::escape_text_into;
use super::time::{Zone, day_of, push_date, push_time_of_day_us, push_utc_offset};
use crate::alert_text::message;
use crate::event::Comm;
use crate::names::{errno_name, signal_name};
use crate::record::{Body, Record};
use crate::units::{push_duration, push_u64};

/// Width of the event column: the longest label, "exec-fail".
const LABEL_WIDTH: usize = 9;
/// Width of the pid column; pids go up to 4194304 (PID_MAX_LIMIT).
const PID_WIDTH: usize = 7;
/// How long an ENOENT exec failure waits for the exec that may end its PATH
/// search. The exec follows within microseconds; this only needs to outlast
/// the ring buffer's delivery (drained every 50 ms tick).
pub const PATH_MISS_HOLD_NS: u64 = 250_000_000;
/// Failures held per process at most (a PATH has a dozen entries, not more).
const HELD_PER_PROCESS: usize = 64;
/// Processes with failures held at most; beyond, the oldest are printed.
const HELD_PROCESSES: usize = 256;
const ENOENT: u32 = 2;

/// The column names, aligned with the lines below them.
const HEADER: &[u8] = b"TIME             EVENT         PID NAME  DETAILS";

pub struct TextWriter<W: Write> {
    out: BufWriter<W>,
    line: Vec<u8>,
    realtime_offset_ns: i128,
    color: bool,
    written: u64,
    zone: Zone,
    /// Lines for a terminal: a header, dates, folded PATH misses.
    terminal: bool,
    /// The (local day, offset) the last date line gave; `None` before the header.
    shown: Option<(i64, i64)>,
    /// The zone at one second since the epoch: (second, offset, name).
    zone_cache: Option<(i64, i64, String)>,
    /// ENOENT exec failures held back per process (pid), oldest first.
    held: Vec<(u32, Vec<Record>)>,
}

impl<W: Write> TextWriter<W> {
    /// `color`: mark the event column with ANSI colours (for a terminal).
    /// Times are UTC, one line per record; see [`TextWriter::terminal`].
    pub fn new(w: W, info: RunInfo, color: bool) -> Self {
        TextWriter {
            out: BufWriter::new(w),
            line: Vec::with_capacity(256),
            realtime_offset_ns: info.realtime_offset_ns,
            color,
            written: 0,
            zone: Zone::Utc,
            terminal: false,
            shown: None,
            zone_cache: None,
            held: Vec::new(),
        }
    }

    /// For people watching: times in `zone`, a header line naming the columns
    /// with the date, a date line when the day changes, PATH misses folded.
    pub fn terminal(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self.terminal = true;
        self
    }

    /// Writes one record's line (or holds it back: an ENOENT exec failure, see
    /// the module's doc). Cgroups are shown only in alerts, which name the culprit's.
    pub fn write(&mut self, rec: &Record) -> io::Result<()> {
        self.written += 1;
        let pid = rec.subject.as_ref().map(|s| s.pid);
        if !self.terminal {
            return self.emit(rec, None, 0);
        }
        if let (Some(pid), Body::ExecFailed { errno: ENOENT, .. }) = (pid, &rec.body) {
            return self.hold(pid, rec);
        }
        let mut misses = 0;
        if let Some(i) = pid.and_then(|p| self.held.iter().position(|(h, _)| *h == p)) {
            let (_, failures) = self.held.remove(i);
            let name = match &rec.body {
                Body::Exec { filename, .. } => Some(basename(filename)),
                _ => None,
            };
            for f in &failures {
                match (&f.body, name) {
                    (Body::ExecFailed { filename, .. }, Some(n)) if basename(filename) == n => {
                        misses += 1;
                    }
                    _ => self.emit(f, None, 0)?,
                }
            }
        }
        let cgroup = match (&rec.body, &rec.subject) {
            (Body::Alert(_), Some(s)) => s.cgroup.as_deref(),
            _ => None,
        };
        let cgroup = cgroup.map(str::to_owned);
        self.emit(rec, cgroup.as_deref(), misses)
    }

    fn hold(&mut self, pid: u32, rec: &Record) -> io::Result<()> {
        let i = match self.held.iter().position(|(h, _)| *h == pid) {
            Some(i) => i,
            None => {
                if self.held.len() >= HELD_PROCESSES {
                    let (_, oldest) = self.held.remove(0);
                    for f in &oldest {
                        self.emit(f, None, 0)?;
                    }
                }
                self.held.push((pid, Vec::new()));
                self.held.len() - 1
            }
        };
        if self.held[i].1.len() >= HELD_PER_PROCESS {
            let first = self.held[i].1.remove(0);
            self.emit(&first, None, 0)?;
        }
        self.held[i].1.push(rec.clone());
        Ok(())
    }

    /// Time is `now` (CLOCK_BOOTTIME ns, the records' clock): prints failures
    /// held longer than [`PATH_MISS_HOLD_NS`], as no exec came to fold them into.
    pub fn tick(&mut self, now: u64) -> io::Result<()> {
        let due = |failures: &Vec<Record>| {
            failures
                .first()
                .is_some_and(|f| f.ktime_ns.saturating_add(PATH_MISS_HOLD_NS) <= now)
        };
        while let Some(i) = self.held.iter().position(|(_, f)| due(f)) {
            let (_, failures) = self.held.remove(i);
            for f in &failures {
                self.emit(f, None, 0)?;
            }
        }
        Ok(())
    }

    /// Prints every failure still held (the end of the run).
    pub fn release_held(&mut self) -> io::Result<()> {
        for (_, failures) in std::mem::take(&mut self.held) {
            for f in &failures {
                self.emit(f, None, 0)?;
            }
        }
        Ok(())
    }

    /// Formats and writes one line, after the header or a date line when due.
    fn emit(&mut self, rec: &Record, cgroup: Option<&str>, misses: u32) -> io::Result<()> {
        let wall = i128::from(rec.ktime_ns) + self.realtime_offset_ns;
        let secs = wall.div_euclid(1_000_000_000) as i64;
        if self.zone_cache.as_ref().is_none_or(|(s, _, _)| *s != secs) {
            let (offset, name) = self.zone.at(secs);
            self.zone_cache = Some((secs, offset, name));
        }
        let (_, offset, name) = self.zone_cache.as_ref().expect("just set");
        let local = wall + i128::from(*offset) * 1_000_000_000;
        self.line.clear();
        if self.terminal {
            let day = day_of(local);
            if self.shown != Some((day, *offset)) {
                if self.shown.is_none() {
                    self.line.extend_from_slice(HEADER);
                    self.line.extend_from_slice(b"  ");
                }
                self.line.push(b'[');
                push_date(&mut self.line, day);
                self.line.extend_from_slice(match self.zone {
                    Zone::Utc => b", ".as_slice(),
                    _ => b", local time ",
                });
                if !matches!(self.zone, Zone::Utc) && !name.is_empty() {
                    escape_text_into(&mut self.line, name.as_bytes());
                    self.line.extend_from_slice(b" (");
                    push_utc_offset(&mut self.line, *offset);
                    self.line.push(b')');
                } else {
                    push_utc_offset(&mut self.line, *offset);
                }
                self.line.extend_from_slice(b"]\n");
                self.shown = Some((day, *offset));
            }
        }
        format_line(
            &mut self.line,
            rec,
            cgroup,
            local - i128::from(rec.ktime_ns),
            self.color,
            self.terminal,
            misses,
        );
        self.out.write_all(&self.line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn records_written(&self) -> u64 {
        self.written
    }

    /// Prints what is held, flushes and gives the sink back.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.release_held()?;
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// The last component of a path: what execvp was searching for.
fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
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

/// `cgroup`: the subject's cgroup path, for alerts. `details`: ppid and uid on
/// exec lines. `misses`: PATH misses folded into an exec line.
fn format_line(
    out: &mut Vec<u8>,
    rec: &Record,
    cgroup: Option<&str>,
    realtime_offset_ns: i128,
    color: bool,
    details: bool,
    misses: u32,
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
            if let (true, Some(s)) = (details, s) {
                // Before argv, which can run off the screen.
                out.extend_from_slice(b"ppid=");
                push_u64(out, u64::from(s.ppid));
                out.extend_from_slice(b" uid=");
                match s.uid {
                    Some(uid) => push_u64(out, u64::from(uid)),
                    None => out.push(b'?'),
                }
                out.extend_from_slice(b"  ");
            }
            push_argv(out, argv);
            if *argv_truncated {
                out.extend_from_slice(b" ...");
            }
            if let Some(t) = old_tid {
                out.extend_from_slice(b"  (exec by thread ");
                push_u64(out, u64::from(*t));
                out.push(b')');
            }
            if misses > 0 {
                out.extend_from_slice(b"  (after ");
                push_u64(out, u64::from(misses));
                out.extend_from_slice(if misses == 1 {
                    b" PATH miss)"
                } else {
                    b" PATH misses)"
                });
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
            unit: None,
            container_id: None,
            pod_uid: None,
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

    fn rec_at(ktime_ns: u64, pid: u32, body: Body) -> Record {
        Record {
            ktime_ns,
            subject: Some(subject(pid, b"sh")),
            body,
            uncertain: false,
        }
    }

    fn miss(dir: &str, name: &str) -> Body {
        Body::ExecFailed {
            filename: format!("{dir}/{name}").into_bytes(),
            errno: 2,
        }
    }

    fn exec(path: &str) -> Body {
        Body::Exec {
            filename: path.as_bytes().to_vec(),
            argv: vec![b"x".to_vec()],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        }
    }

    fn terminal(zone: Zone) -> TextWriter<Vec<u8>> {
        TextWriter::new(Vec::new(), info(), false).terminal(zone)
    }

    fn write_all(w: &mut TextWriter<Vec<u8>>, recs: &[Record]) {
        for r in recs {
            w.write(r).unwrap();
        }
    }

    fn text_of(w: TextWriter<Vec<u8>>) -> String {
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    /// The header names the columns (each word starts where its column does),
    /// with the date and zone; times are in that zone; exec lines carry ppid and uid.
    #[test]
    fn terminal_header_local_time_and_exec_details() {
        let mut w = terminal(Zone::Fixed(3600, "CET".into()));
        let mut s = subject(1240, b"ls");
        s.uid = Some(1000);
        let body = Body::Exec {
            filename: b"/usr/bin/ls".to_vec(),
            argv: vec![b"ls".to_vec(), b"-la".to_vec()],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        };
        let rec = Record {
            ktime_ns: KTIME,
            subject: Some(s),
            body,
            uncertain: false,
        };
        write_all(&mut w, std::slice::from_ref(&rec));
        let text = text_of(w);
        assert_eq!(
            text,
            "TIME             EVENT         PID NAME  DETAILS  [2026-11-22, local time CET (UTC+01:00)]\n\
             05:13:22.123456  exec         1240 /usr/bin/ls  ppid=1234 uid=1000  ls -la\n"
        );
        let (header, line) = text.split_once('\n').unwrap();
        for (word, column) in [("EVENT", "exec"), ("NAME", "/usr/bin/ls")] {
            assert_eq!(header.find(word), line.find(column), "{word}");
        }
        // PID is right-aligned like the pids.
        assert_eq!(
            header.find("PID").unwrap() + 3,
            line.find("1240").unwrap() + 4
        );
    }

    /// A new date line when the run crosses midnight in the zone shown; UTC says so.
    #[test]
    fn date_line_when_the_day_changes() {
        // 04:13:22 UTC is 23:13:22 the day before at UTC-05:00; an hour later is the next day.
        let mut w = terminal(Zone::Fixed(-5 * 3600, "EST".into()));
        let hour = 3_600_000_000_000;
        let fork = || Body::Fork {
            parent_proc_id: None,
            thread: false,
            clone_flags: None,
        };
        write_all(
            &mut w,
            &[
                rec_at(KTIME, 7, fork()),
                rec_at(KTIME + hour, 8, fork()),
                rec_at(KTIME + hour + 1000, 9, fork()),
            ],
        );
        let lines: Vec<String> = text_of(w).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].ends_with("[2026-11-21, local time EST (UTC-05:00)]"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("23:13:22.123456  fork            7 "));
        assert_eq!(lines[2], "[2026-11-22, local time EST (UTC-05:00)]");
        assert!(lines[3].starts_with("00:13:22.123456  fork            8 "));
        assert!(lines[4].starts_with("00:13:22.123457  fork            9 "));
        let mut w = terminal(Zone::Utc);
        write_all(&mut w, &[rec_at(KTIME, 7, fork())]);
        assert!(text_of(w).starts_with(&format!(
            "{}  [2026-11-22, UTC]\n{T}  fork",
            std::str::from_utf8(HEADER).unwrap()
        )));
    }

    /// execvp's ENOENTs end in an exec of the same name: one line says how many.
    #[test]
    fn path_misses_fold_into_the_exec() {
        let mut w = terminal(Zone::Utc);
        let mut recs: Vec<Record> = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin"]
            .iter()
            .enumerate()
            .map(|(i, d)| rec_at(KTIME + i as u64, 50, miss(d, "ls")))
            .collect();
        // Another process's line comes between; it is not held up.
        recs.push(rec_at(KTIME + 5, 60, exec("/bin/true")));
        recs.push(rec_at(KTIME + 10, 50, exec("/usr/bin/ls")));
        write_all(&mut w, &recs);
        assert_eq!(w.records_written(), 5);
        let text = text_of(w);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("    60 /bin/true  ppid=1234 uid=0  x"),
            "{text}"
        );
        assert!(
            lines[1].ends_with("    50 /usr/bin/ls  ppid=1234 uid=0  x  (after 3 PATH misses)"),
            "{text}"
        );
        // One miss is singular.
        let mut w = terminal(Zone::Utc);
        write_all(
            &mut w,
            &[
                rec_at(KTIME, 50, miss("/sbin", "ls")),
                rec_at(KTIME + 1, 50, exec("/bin/ls")),
            ],
        );
        assert!(text_of(w).ends_with("x  (after 1 PATH miss)\n"));
    }

    /// Failures no matching exec answers are shown as before: before the
    /// process's next line, on the tick after the hold time, or at the end.
    #[test]
    fn unanswered_failures_are_shown() {
        // Next record of the process: an exec of another name, then its exit.
        let mut w = terminal(Zone::Utc);
        write_all(
            &mut w,
            &[
                rec_at(KTIME, 50, miss("/usr/bin", "nope")),
                rec_at(KTIME + 1, 50, miss("/usr/sbin", "ls")),
                rec_at(KTIME + 2, 50, exec("/usr/bin/ls")),
            ],
        );
        let text = text_of(w);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("    50 sh  /usr/bin/nope: ENOENT"),
            "{text}"
        );
        assert!(lines[1].ends_with("(after 1 PATH miss)"), "{text}");

        let exit = Body::Exit {
            exit_code: Some(127),
            signal: None,
            core_dumped: false,
            lifetime_ns: None,
            thread: false,
        };
        let mut w = terminal(Zone::Utc);
        write_all(
            &mut w,
            &[
                rec_at(KTIME, 50, miss("/bin", "nope")),
                rec_at(KTIME + 9, 50, exit),
            ],
        );
        let text = text_of(w);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert!(
            lines[0].ends_with("/bin/nope: ENOENT") && lines[1].contains("exit"),
            "{text}"
        );

        // The tick: held until the hold time has passed, then printed.
        let mut w = terminal(Zone::Utc);
        write_all(&mut w, &[rec_at(KTIME, 50, miss("/bin", "nope"))]);
        w.tick(KTIME + PATH_MISS_HOLD_NS - 1).unwrap();
        w.flush().unwrap();
        assert!(w.out.get_ref().is_empty());
        w.tick(KTIME + PATH_MISS_HOLD_NS).unwrap();
        w.flush().unwrap();
        let text = String::from_utf8(w.out.get_ref().clone()).unwrap();
        assert!(text.ends_with("/bin/nope: ENOENT\n"), "{text}");

        // The end of the run prints what is held.
        let mut w = terminal(Zone::Utc);
        write_all(&mut w, &[rec_at(KTIME, 50, miss("/bin", "nope"))]);
        assert!(text_of(w).ends_with("/bin/nope: ENOENT\n"));

        // Other errors are not PATH misses: printed at once.
        let mut w = terminal(Zone::Utc);
        let eacces = Body::ExecFailed {
            filename: b"/tmp/x".to_vec(),
            errno: 13,
        };
        write_all(&mut w, &[rec_at(KTIME, 50, eacces)]);
        w.flush().unwrap();
        assert!(String::from_utf8_lossy(w.out.get_ref()).ends_with("/tmp/x: EACCES\n"));
    }

    /// Held failures are bounded: per process and in processes.
    #[test]
    fn held_failures_are_bounded() {
        let mut w = terminal(Zone::Utc);
        let many: Vec<Record> = (0..HELD_PER_PROCESS as u64 + 3)
            .map(|i| rec_at(KTIME + i, 50, miss(&format!("/d{i}"), "ls")))
            .collect();
        write_all(&mut w, &many);
        assert_eq!(w.held[0].1.len(), HELD_PER_PROCESS);
        let procs: Vec<Record> = (0..HELD_PROCESSES as u32 + 2)
            .map(|p| rec_at(KTIME, 1000 + p, miss("/bin", "x")))
            .collect();
        write_all(&mut w, &procs);
        assert_eq!(w.held.len(), HELD_PROCESSES);
        let text = text_of(w);
        // Nothing is lost: every failure is printed by the end.
        assert_eq!(text.matches(": ENOENT").count(), many.len() + procs.len());
    }
}
