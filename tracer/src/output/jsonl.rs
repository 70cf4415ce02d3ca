//! JSON Lines, schema v2 (docs/events.md): one object per record, one line each.
//!
//! This runs for every event (thousands per second), so a line is built by hand
//! in a buffer kept across records: no serde, no allocation once warm. Each line
//! goes to the `BufWriter` in one `write_all`, so a crash leaves at most one
//! partial line at the end of the file.

use std::io::{self, BufWriter, Write};

use super::RunInfo;
use super::escape::escape_bytes_into;
use super::time::Rfc3339Cache;
use crate::alert_text::message;
use crate::names::{errno_name, signal_name};
use crate::record::{Alert, Body, ProcId, Record};
use crate::units::push_u64;

pub struct JsonlWriter<W: Write> {
    out: BufWriter<W>,
    /// The line being built, reused.
    line: Vec<u8>,
    /// `,"host":...,"boot_id":...`, rendered once.
    run_fields: Vec<u8>,
    realtime_offset_ns: i128,
    /// The `ts` of the last second written.
    ts: Rfc3339Cache,
    /// Lines written so far; the next line's `seq` is one more.
    written: u64,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(w: W, info: RunInfo) -> Self {
        Self::with_capacity(w, info, 64 * 1024)
    }

    fn with_capacity(w: W, info: RunInfo, capacity: usize) -> Self {
        let mut run_fields = Vec::new();
        run_fields.extend_from_slice(b",\"host\":");
        escape_bytes_into(&mut run_fields, info.host.as_bytes());
        run_fields.extend_from_slice(b",\"boot_id\":");
        escape_bytes_into(&mut run_fields, info.boot_id.as_bytes());
        JsonlWriter {
            out: BufWriter::with_capacity(capacity, w),
            line: Vec::with_capacity(1024),
            run_fields,
            realtime_offset_ns: info.realtime_offset_ns,
            ts: Rfc3339Cache::default(),
            written: 0,
        }
    }

    /// A writer without its own buffer, for a sink that buffers whole lines
    /// itself (the output file): each line reaches `w` in one `write_all`.
    pub fn unbuffered(w: W, info: RunInfo) -> Self {
        Self::with_capacity(w, info, 0)
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        self.out.get_ref()
    }

    /// The sink, to rotate or reopen it. Nothing is buffered in between with
    /// [`JsonlWriter::unbuffered`].
    pub fn get_mut(&mut self) -> &mut W {
        self.out.get_mut()
    }

    /// Writes a `meta` record (docs/events.md): the common fields, then `fields`,
    /// which are already JSON (`,"name":value...`).
    pub fn write_meta(&mut self, ktime_ns: u64, fields: &[u8]) -> io::Result<()> {
        let seq = self.written + 1;
        self.line.clear();
        common(
            &mut self.line,
            seq,
            "meta",
            ktime_ns,
            &self.run_fields,
            self.realtime_offset_ns,
            &mut self.ts,
        );
        self.line.extend_from_slice(fields);
        self.line.extend_from_slice(b"}\n");
        self.out.write_all(&self.line)?;
        self.written = seq;
        Ok(())
    }

    /// Writes one record as one line. `seq` only advances when the line was
    /// handed to the buffer, so the numbers in the output have no gaps.
    pub fn write(&mut self, rec: &Record) -> io::Result<()> {
        let seq = self.written + 1;
        self.render(seq, rec);
        self.out.write_all(&self.line)?;
        self.written = seq;
        Ok(())
    }

    /// The line [`JsonlWriter::write`] would write for `rec` as record number
    /// `seq`, `\n` included, without writing it or counting it (for a copy of
    /// a record sent elsewhere, e.g. `watch --on-alert`).
    pub fn render(&mut self, seq: u64, rec: &Record) -> &[u8] {
        self.line.clear();
        encode(
            &mut self.line,
            seq,
            &self.run_fields,
            self.realtime_offset_ns,
            &mut self.ts,
            rec,
        );
        &self.line
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

fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn num(out: &mut Vec<u8>, name: &str, n: u64) {
    key(out, name);
    push_u64(out, n);
}

fn opt_num(out: &mut Vec<u8>, name: &str, n: Option<u64>) {
    key(out, name);
    match n {
        Some(n) => push_u64(out, n),
        None => null(out),
    }
}

fn boolean(out: &mut Vec<u8>, name: &str, b: bool) {
    key(out, name);
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn string(out: &mut Vec<u8>, name: &str, s: &[u8]) {
    key(out, name);
    escape_bytes_into(out, s);
}

fn opt_string(out: &mut Vec<u8>, name: &str, s: Option<&[u8]>) {
    key(out, name);
    match s {
        Some(s) => escape_bytes_into(out, s),
        None => null(out),
    }
}

/// `"<pid>-<start ticks>"`, the same text as `ProcId`'s Display.
fn proc_id_value(out: &mut Vec<u8>, id: ProcId) {
    out.push(b'"');
    push_u64(out, u64::from(id.pid));
    out.push(b'-');
    push_u64(out, id.start_ticks);
    out.push(b'"');
}

fn argv(out: &mut Vec<u8>, args: &[Vec<u8>]) {
    key(out, "argv");
    out.push(b'[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_bytes_into(out, a);
    }
    out.push(b']');
}

/// The fields every record starts with: `seq`, `type`, `ts`, `ktime_ns`, `host`,
/// `boot_id`.
fn common(
    out: &mut Vec<u8>,
    seq: u64,
    type_name: &str,
    ktime_ns: u64,
    run_fields: &[u8],
    realtime_offset_ns: i128,
    ts: &mut Rfc3339Cache,
) {
    out.extend_from_slice(b"{\"seq\":");
    push_u64(out, seq);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(type_name.as_bytes());
    out.extend_from_slice(b"\",\"ts\":\"");
    ts.push(out, i128::from(ktime_ns) + realtime_offset_ns);
    out.push(b'"');
    num(out, "ktime_ns", ktime_ns);
    out.extend_from_slice(run_fields);
}

fn encode(
    out: &mut Vec<u8>,
    seq: u64,
    run_fields: &[u8],
    realtime_offset_ns: i128,
    ts: &mut Rfc3339Cache,
    rec: &Record,
) {
    common(
        out,
        seq,
        rec.body.type_name(),
        rec.ktime_ns,
        run_fields,
        realtime_offset_ns,
        ts,
    );

    if let Some(s) = &rec.subject {
        num(out, "pid", u64::from(s.pid));
        num(out, "tid", u64::from(s.tid));
        num(out, "ppid", u64::from(s.ppid));
        key(out, "proc_id");
        proc_id_value(out, s.proc_id);
        string(out, "comm", s.comm.as_bytes());
        opt_num(out, "uid", s.uid.map(u64::from));
        opt_string(out, "cgroup", s.cgroup.as_deref().map(str::as_bytes));
        num(out, "cgroup_id", s.cgroup_id);
        opt_string(out, "unit", s.unit.as_deref().map(str::as_bytes));
        opt_string(
            out,
            "container_id",
            s.container_id.as_deref().map(str::as_bytes),
        );
        opt_string(out, "pod_uid", s.pod_uid.as_deref().map(str::as_bytes));
    }

    match &rec.body {
        Body::Process {
            filename,
            argv: args,
            state,
            argv_redacted,
        } => {
            opt_string(out, "filename", filename.as_deref());
            argv(out, args);
            boolean(out, "argv_redacted", *argv_redacted);
            let mut buf = [0u8; 4];
            opt_string(
                out,
                "state",
                state.map(|c| &*c.encode_utf8(&mut buf)).map(str::as_bytes),
            );
        }
        Body::Fork {
            parent_proc_id,
            thread,
            clone_flags,
        } => {
            key(out, "parent_proc_id");
            match parent_proc_id {
                Some(id) => proc_id_value(out, *id),
                None => null(out),
            }
            boolean(out, "thread", *thread);
            opt_num(out, "clone_flags", *clone_flags);
        }
        Body::Exec {
            filename,
            argv: args,
            argv_truncated,
            argv_redacted,
            old_tid,
        } => {
            string(out, "filename", filename);
            argv(out, args);
            boolean(out, "argv_truncated", *argv_truncated);
            boolean(out, "argv_redacted", *argv_redacted);
            opt_num(out, "old_tid", old_tid.map(u64::from));
        }
        Body::ForkFailed { errno } => {
            num(out, "errno", u64::from(*errno));
            opt_string(out, "error", errno_name(*errno).map(str::as_bytes));
        }
        Body::ExecFailed { filename, errno } => {
            string(out, "filename", filename);
            num(out, "errno", u64::from(*errno));
            opt_string(out, "error", errno_name(*errno).map(str::as_bytes));
        }
        Body::Exit {
            exit_code,
            signal,
            core_dumped,
            lifetime_ns,
            thread,
        } => {
            opt_num(out, "exit_code", exit_code.map(u64::from));
            opt_num(out, "signal", signal.map(u64::from));
            opt_string(
                out,
                "signal_name",
                signal.and_then(signal_name).map(str::as_bytes),
            );
            boolean(out, "core_dumped", *core_dumped);
            opt_num(out, "lifetime_ns", *lifetime_ns);
            boolean(out, "thread", *thread);
        }
        Body::Reap {
            zombie_ns,
            reaper_pid,
            reaper_comm,
            autoreap,
            inferred,
        } => {
            opt_num(out, "zombie_ns", *zombie_ns);
            opt_num(out, "reaper_pid", reaper_pid.map(u64::from));
            opt_string(
                out,
                "reaper_comm",
                reaper_comm.as_ref().map(|c| c.as_bytes()),
            );
            boolean(out, "autoreap", *autoreap);
            // Absent for a reap an event showed, like `uncertain`.
            if let Some(w) = inferred {
                boolean(out, "inferred", true);
                opt_num(out, "reaped_after_ns", w.after_ns);
                num(out, "reaped_before_ns", w.before_ns);
            }
        }
        Body::Lost { kind, count } => {
            num(out, "count", *count);
            string(out, "kind", kind.as_bytes());
        }
        Body::End {
            reason,
            records,
            lost,
            not_written,
        } => {
            string(out, "reason", reason.as_bytes());
            for (name, counts) in [("records", records), ("lost", lost)] {
                key(out, name);
                out.push(b'{');
                for (i, (k, n)) in counts.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    escape_bytes_into(out, k.as_bytes());
                    out.push(b':');
                    push_u64(out, *n);
                }
                out.push(b'}');
            }
            num(out, "records_not_written", *not_written);
        }
        Body::Alert(a) => match &a.message {
            Some(kept) => alert(out, a, kept),
            None => {
                let cgroup = rec.subject.as_ref().and_then(|s| s.cgroup.as_deref());
                let msg = message(a, rec.subject.as_ref(), cgroup);
                alert(out, a, &msg);
            }
        },
    }
    // Optional: absent unless events were lost, so output without losses is as
    // before.
    if rec.uncertain {
        boolean(out, "uncertain", true);
    }
    out.extend_from_slice(b"}\n");
}

/// The fields of `alert` and `alert_end` records (docs/events.md).
fn alert(out: &mut Vec<u8>, a: &Alert, message: &[u8]) {
    string(out, "alert", a.kind.name().as_bytes());
    string(out, "scope", a.scope.as_bytes());
    num(out, "since_ktime_ns", a.since_ns);
    opt_string(out, "filename", a.filename.as_deref());
    argv(out, &a.argv);
    key(out, "parent");
    match &a.parent {
        Some(p) => {
            out.extend_from_slice(b"{\"pid\":");
            push_u64(out, u64::from(p.pid));
            out.extend_from_slice(b",\"proc_id\":");
            proc_id_value(out, p.proc_id);
            string(out, "comm", p.comm.as_bytes());
            opt_string(out, "filename", p.filename.as_deref());
            out.push(b'}');
        }
        None => null(out),
    }
    key(out, "figures");
    out.push(b'{');
    for (i, (name, n)) in a.figures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_bytes_into(out, name.as_bytes());
        out.push(b':');
        push_u64(out, *n);
    }
    out.push(b'}');
    key(out, "executables");
    out.push(b'[');
    for (i, (filename, count)) in a.executables.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"filename\":");
        match filename {
            Some(f) => escape_bytes_into(out, f),
            None => null(out),
        }
        num(out, "count", *count);
        out.push(b'}');
    }
    out.push(b']');
    key(out, "exits");
    out.push(b'[');
    for (i, e) in a.exits.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"exit_code\":");
        match e.exit_code {
            Some(c) => push_u64(out, u64::from(c)),
            None => null(out),
        }
        opt_num(out, "signal", e.signal.map(u64::from));
        opt_string(
            out,
            "signal_name",
            e.signal.and_then(signal_name).map(str::as_bytes),
        );
        out.push(b'}');
    }
    out.push(b']');
    opt_num(out, "errno", a.errno.map(u64::from));
    opt_string(
        out,
        "error",
        a.errno.and_then(errno_name).map(str::as_bytes),
    );
    string(out, "message", message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Comm;
    use crate::output::escape::unescape;
    use crate::record::{AlertExit, AlertKind, AlertProc, Subject};
    use serde_json::{Value, json};

    const OFFSET: i128 = 1_795_000_000_000_000_000; // 2026-11-18T11:06:40Z at ktime 0

    fn info() -> RunInfo {
        RunInfo {
            host: "web-1".into(),
            boot_id: "0b1c-boot".into(),
            realtime_offset_ns: OFFSET,
        }
    }

    fn subject() -> Subject {
        Subject {
            pid: 1240,
            tid: 1241,
            ppid: 1234,
            proc_id: ProcId {
                pid: 1240,
                start_ticks: 5821,
            },
            comm: Comm::new(b"bash"),
            uid: Some(1000),
            cgroup_id: 0,
            cgroup: None,
            unit: None,
            container_id: None,
            pod_uid: None,
        }
    }

    fn rec(body: Body) -> Record {
        let subject = if matches!(body, Body::Lost { .. } | Body::End { .. }) {
            None
        } else {
            Some(subject())
        };
        Record {
            ktime_ns: 2_000_000_123,
            subject,
            body,
            uncertain: false,
        }
    }

    /// Writes the records and parses every line back.
    fn roundtrip(recs: &[Record]) -> Vec<serde_json::Map<String, Value>> {
        let mut w = JsonlWriter::new(Vec::new(), info());
        for r in recs {
            w.write(r).unwrap();
        }
        assert_eq!(w.records_written(), recs.len() as u64);
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<_> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), recs.len());
        lines
            .iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => m,
                other => panic!("line {l} parsed as {other:?}"),
            })
            .collect()
    }

    fn one(body: Body) -> serde_json::Map<String, Value> {
        roundtrip(&[rec(body)]).remove(0)
    }

    /// Checks the common and process fields, then returns the per-type rest.
    fn per_type(mut m: serde_json::Map<String, Value>, ty: &str) -> Value {
        let common = [
            ("seq", json!(1)),
            ("type", json!(ty)),
            ("ts", json!("2026-11-18T11:06:42.000000123Z")),
            ("ktime_ns", json!(2_000_000_123u64)),
            ("host", json!("web-1")),
            ("boot_id", json!("0b1c-boot")),
        ];
        for (k, v) in common {
            assert_eq!(m.remove(k), Some(v), "field {k}");
        }
        if ty != "lost" && ty != "end" {
            let process = [
                ("pid", json!(1240)),
                ("tid", json!(1241)),
                ("ppid", json!(1234)),
                ("proc_id", json!("1240-5821")),
                ("comm", json!("bash")),
                ("uid", json!(1000)),
                ("cgroup", Value::Null),
                ("cgroup_id", json!(0)),
                ("unit", Value::Null),
                ("container_id", Value::Null),
                ("pod_uid", Value::Null),
            ];
            for (k, v) in process {
                assert_eq!(m.remove(k), Some(v), "field {k}");
            }
        }
        Value::Object(m)
    }

    #[test]
    fn process_record() {
        let m = one(Body::Process {
            filename: Some(b"/usr/bin/bash".to_vec()),
            argv: vec![b"-bash".to_vec(), b"".to_vec()],
            state: Some('S'),
            argv_redacted: false,
        });
        assert_eq!(
            per_type(m, "process"),
            json!({"filename": "/usr/bin/bash", "argv": ["-bash", ""], "argv_redacted": false,
                   "state": "S"})
        );
        let m = one(Body::Process {
            filename: None,
            argv: vec![],
            state: Some('Z'),
            argv_redacted: true,
        });
        assert_eq!(
            per_type(m, "process"),
            json!({"filename": null, "argv": [], "argv_redacted": true, "state": "Z"})
        );
    }

    #[test]
    fn fork_record() {
        let m = one(Body::Fork {
            parent_proc_id: Some(ProcId {
                pid: 1234,
                start_ticks: 77,
            }),
            thread: false,
            clone_flags: Some(0x1200011),
        });
        assert_eq!(
            per_type(m, "fork"),
            json!({"parent_proc_id": "1234-77", "thread": false, "clone_flags": 0x1200011})
        );
        let m = one(Body::Fork {
            parent_proc_id: None,
            thread: true,
            clone_flags: None,
        });
        assert_eq!(
            per_type(m, "fork"),
            json!({"parent_proc_id": null, "thread": true, "clone_flags": null})
        );
    }

    #[test]
    fn exec_record() {
        let m = one(Body::Exec {
            filename: b"/usr/bin/ls".to_vec(),
            argv: vec![b"ls".to_vec(), b"-la".to_vec(), b"a \"b\"".to_vec()],
            argv_truncated: true,
            old_tid: Some(1250),
            argv_redacted: true,
        });
        assert_eq!(
            per_type(m, "exec"),
            json!({"filename": "/usr/bin/ls", "argv": ["ls", "-la", "a \"b\""],
                   "argv_truncated": true, "argv_redacted": true, "old_tid": 1250})
        );
        let m = one(Body::Exec {
            filename: b"/bin/true".to_vec(),
            argv: vec![],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        });
        assert_eq!(
            per_type(m, "exec"),
            json!({"filename": "/bin/true", "argv": [], "argv_truncated": false,
                   "argv_redacted": false, "old_tid": null})
        );
    }

    #[test]
    fn exec_failed_record() {
        let m = one(Body::ExecFailed {
            filename: b"/nope".to_vec(),
            errno: 2,
        });
        assert_eq!(
            per_type(m, "exec_failed"),
            json!({"filename": "/nope", "errno": 2, "error": "ENOENT"})
        );
        let m = one(Body::ExecFailed {
            filename: b"/x".to_vec(),
            errno: 4000,
        });
        assert_eq!(
            per_type(m, "exec_failed"),
            json!({"filename": "/x", "errno": 4000, "error": null})
        );
    }

    #[test]
    fn exit_record() {
        let m = one(Body::Exit {
            exit_code: Some(3),
            signal: None,
            core_dumped: false,
            lifetime_ns: Some(1_200_000),
            thread: false,
        });
        assert_eq!(
            per_type(m, "exit"),
            json!({"exit_code": 3, "signal": null, "signal_name": null, "core_dumped": false,
                   "lifetime_ns": 1_200_000, "thread": false})
        );
        let m = one(Body::Exit {
            exit_code: None,
            signal: Some(11),
            core_dumped: true,
            lifetime_ns: None,
            thread: true,
        });
        assert_eq!(
            per_type(m, "exit"),
            json!({"exit_code": null, "signal": 11, "signal_name": "SIGSEGV", "core_dumped": true,
                   "lifetime_ns": null, "thread": true})
        );
    }

    #[test]
    fn reap_record() {
        let m = one(Body::Reap {
            zombie_ns: Some(100_000),
            reaper_pid: Some(1234),
            reaper_comm: Some(Comm::new(b"bash")),
            autoreap: false,
            inferred: None,
        });
        assert_eq!(
            per_type(m, "reap"),
            json!({"zombie_ns": 100_000, "reaper_pid": 1234, "reaper_comm": "bash",
                   "autoreap": false})
        );
        let m = one(Body::Reap {
            zombie_ns: None,
            reaper_pid: None,
            reaper_comm: None,
            autoreap: true,
            inferred: None,
        });
        assert_eq!(
            per_type(m, "reap"),
            json!({"zombie_ns": null, "reaper_pid": null, "reaper_comm": null, "autoreap": true})
        );
    }

    #[test]
    fn uncertain_is_written_only_when_set() {
        let body = Body::Reap {
            zombie_ns: None,
            reaper_pid: None,
            reaper_comm: None,
            autoreap: false,
            inferred: None,
        };
        let mut marked = rec(body.clone());
        marked.uncertain = true;
        let got = roundtrip(&[rec(body), marked]);
        assert!(!got[0].contains_key("uncertain"));
        assert_eq!(got[1]["uncertain"], json!(true));
    }

    #[test]
    fn lost_record_has_no_process_fields() {
        let m = one(Body::Lost {
            kind: "exec".into(),
            count: 12,
        });
        assert_eq!(per_type(m, "lost"), json!({"count": 12, "kind": "exec"}));
    }

    #[test]
    fn end_record_has_reason_and_totals_and_no_process_fields() {
        let m = one(Body::End {
            reason: "stdout-closed".into(),
            records: vec![("exec".into(), 3), ("meta".into(), 1)],
            lost: vec![("fork".into(), 0), ("exec".into(), 2)],
            not_written: 7,
        });
        assert_eq!(
            per_type(m, "end"),
            json!({"reason": "stdout-closed", "records": {"exec": 3, "meta": 1},
                   "lost": {"fork": 0, "exec": 2}, "records_not_written": 7})
        );
    }

    #[test]
    fn seq_is_gap_free_from_one() {
        let bodies = (0..1000).map(|i| Body::Lost {
            kind: "fork".into(),
            count: i,
        });
        let recs: Vec<_> = bodies.map(rec).collect();
        for (i, m) in roundtrip(&recs).iter().enumerate() {
            assert_eq!(m["seq"], json!(i + 1));
            assert_eq!(m["count"], json!(i));
        }
    }

    #[test]
    fn non_utf8_strings_round_trip() {
        let filename = b"/tmp/\xff\xfe weird\\x41\n".to_vec();
        let args = vec![
            b"a\xc3".to_vec(),
            b"\\xzz".to_vec(),
            "日本".as_bytes().to_vec(),
        ];
        let mut r = rec(Body::Exec {
            filename: filename.clone(),
            argv: args.clone(),
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        });
        r.subject.as_mut().unwrap().comm = Comm::new(b"c\x80mm");
        let m = roundtrip(&[r]).remove(0);
        assert_eq!(unescape(m["filename"].as_str().unwrap()), filename);
        let got: Vec<Vec<u8>> = m["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| unescape(a.as_str().unwrap()))
            .collect();
        assert_eq!(got, args);
        assert_eq!(m["comm"], json!("c\\x80mm"));
        assert_eq!(unescape(m["comm"].as_str().unwrap()), b"c\x80mm");
    }

    /// The writer writes the path the record carries; it resolves nothing.
    #[test]
    fn cgroup_path_comes_from_the_record() {
        const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
        let mut r = rec(Body::Process {
            filename: None,
            argv: vec![],
            state: Some('R'),
            argv_redacted: false,
        });
        r.subject = Some(Subject {
            cgroup_id: 4242,
            cgroup: Some("/system.slice/x.service".into()),
            unit: Some("x.service".into()),
            container_id: Some(ID.into()),
            pod_uid: Some("5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a".into()),
            ..subject()
        });
        let m = roundtrip(std::slice::from_ref(&r)).remove(0);
        assert_eq!(m["cgroup"], json!("/system.slice/x.service"));
        assert_eq!(m["cgroup_id"], json!(4242));
        assert_eq!(m["unit"], json!("x.service"));
        assert_eq!(m["container_id"], json!(ID));
        assert_eq!(m["pod_uid"], json!("5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"));
        // Written in this order, after `cgroup_id`, so a reader of the text sees
        // who the process is next to where it is.
        let mut w = JsonlWriter::new(Vec::new(), info());
        let line = String::from_utf8(w.render(1, &r).to_vec()).unwrap();
        let at = |k: &str| line.find(&format!("\"{k}\":")).unwrap();
        assert!(at("cgroup_id") < at("unit") && at("unit") < at("container_id"));
        assert!(at("container_id") < at("pod_uid"));
    }

    fn sample_alert(end: bool) -> Alert {
        Alert {
            kind: AlertKind::CrashLoop,
            end,
            scope: "parent_executable".into(),
            since_ns: 1_500_000_000,
            filename: Some(b"/usr/sbin/w\xff".to_vec()),
            argv: vec![b"w".to_vec(), b"-d".to_vec()],
            parent: Some(AlertProc {
                pid: 1,
                proc_id: ProcId {
                    pid: 1,
                    start_ticks: 3,
                },
                comm: Comm::new(b"systemd"),
                filename: None,
            }),
            figures: vec![
                ("crashes".into(), 5),
                ("median_lifetime_ns".into(), 120_000_000),
            ],
            executables: vec![(Some(b"/bin/true".to_vec()), 7), (None, 2)],
            exits: vec![
                AlertExit {
                    exit_code: Some(1),
                    signal: None,
                },
                AlertExit {
                    exit_code: None,
                    signal: Some(11),
                },
            ],
            errno: Some(11),
            what: "failed 5 times".into(),
            message: None,
        }
    }

    #[test]
    fn alert_record() {
        let m = one(Body::Alert(Box::new(sample_alert(false))));
        assert_eq!(
            per_type(m, "alert"),
            json!({
                "alert": "crash_loop",
                "scope": "parent_executable",
                "since_ktime_ns": 1_500_000_000u64,
                "filename": "/usr/sbin/w\\xff",
                "argv": ["w", "-d"],
                "parent": {"pid": 1, "proc_id": "1-3", "comm": "systemd", "filename": null},
                "figures": {"crashes": 5, "median_lifetime_ns": 120_000_000},
                "executables": [{"filename": "/bin/true", "count": 7}, {"filename": null, "count": 2}],
                "exits": [
                    {"exit_code": 1, "signal": null, "signal_name": null},
                    {"exit_code": null, "signal": 11, "signal_name": "SIGSEGV"}
                ],
                "errno": 11,
                "error": "EAGAIN",
                "message": "crash loop: 1240 bash (/usr/sbin/w\\xff) failed 5 times"
            })
        );
        let mut a = sample_alert(true);
        a.parent = None;
        a.figures.clear();
        a.executables.clear();
        a.exits.clear();
        a.errno = None;
        a.filename = None;
        let m = one(Body::Alert(Box::new(a)));
        let v = per_type(m, "alert_end");
        assert_eq!(v["parent"], Value::Null);
        assert_eq!(v["figures"], json!({}));
        assert_eq!(v["executables"], json!([]));
        assert_eq!(v["exits"], json!([]));
        assert_eq!((&v["errno"], &v["error"]), (&Value::Null, &Value::Null));
        assert_eq!(
            v["message"],
            json!("crash loop over: 1240 bash failed 5 times")
        );
    }

    /// The examples in docs/events.md have exactly the fields the writer writes
    /// (compared as sets), so the document cannot drift from the code.
    #[test]
    fn documented_examples_match_the_writer() {
        let doc = include_str!("../../../docs/events.md");
        let block = doc
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let samples = [
            Body::Process {
                filename: None,
                argv: vec![],
                state: Some('S'),
                argv_redacted: false,
            },
            Body::Fork {
                parent_proc_id: None,
                thread: false,
                clone_flags: None,
            },
            Body::Exec {
                filename: vec![],
                argv: vec![],
                argv_truncated: false,
                old_tid: None,
                argv_redacted: false,
            },
            Body::ExecFailed {
                filename: vec![],
                errno: 2,
            },
            Body::Exit {
                exit_code: None,
                signal: None,
                core_dumped: false,
                lifetime_ns: None,
                thread: false,
            },
            Body::Reap {
                zombie_ns: None,
                reaper_pid: None,
                reaper_comm: None,
                autoreap: false,
                inferred: None,
            },
            Body::Lost {
                kind: "exec".into(),
                count: 1,
            },
            Body::ForkFailed { errno: 11 },
            Body::Alert(Box::new(sample_alert(false))),
            Body::Alert(Box::new(sample_alert(true))),
            Body::End {
                reason: "signal".into(),
                records: vec![],
                lost: vec![],
                not_written: 0,
            },
        ];
        let n_types = samples.len();
        let written = roundtrip(&samples.map(rec));
        let mut seen = std::collections::HashSet::new();
        for line in block.lines() {
            let doc_rec: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
            let ty = doc_rec["type"].as_str().unwrap();
            if ty == "meta" {
                // Its own fields come from watch/header.rs, which checks them.
                continue;
            }
            let ours = written.iter().find(|m| m["type"] == ty).unwrap();
            let doc_keys: Vec<_> = doc_rec.keys().collect();
            let our_keys: Vec<_> = ours.keys().collect();
            assert_eq!(doc_keys, our_keys, "fields of the documented {ty} example");
            seen.insert(ty.to_owned());
        }
        assert_eq!(seen.len(), n_types, "one documented example per type");
    }

    #[test]
    fn meta_record_has_the_common_fields_then_its_own() {
        let mut w = JsonlWriter::unbuffered(Vec::new(), info());
        w.write(&rec(Body::Lost {
            kind: "exec".into(),
            count: 1,
        }))
        .unwrap();
        w.write_meta(2_000_000_123, br#","kernel":"6.1""#).unwrap();
        assert_eq!(w.records_written(), 2);
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let meta: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            meta,
            json!({"seq": 2, "type": "meta", "ts": "2026-11-18T11:06:42.000000123Z",
                   "ktime_ns": 2_000_000_123u64, "host": "web-1", "boot_id": "0b1c-boot",
                   "kernel": "6.1"})
        );
    }

    #[test]
    fn one_line_per_record() {
        let mut w = JsonlWriter::new(Vec::new(), info());
        let r = rec(Body::Exec {
            filename: b"a\nb".to_vec(),
            argv: vec![b"x\ny\r".to_vec()],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        });
        w.write(&r).unwrap();
        w.write(&r).unwrap();
        let out = w.into_inner().unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 2);
    }
}
