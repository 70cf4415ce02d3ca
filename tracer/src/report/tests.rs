//! Tests of `tracer report` on hand-written JSON Lines streams: every bad-input
//! case, the history, every figure of the report, the text, the JSON and the tree.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::history::{Ending, History, Origin};
use super::reader::{self, BadKind, Records, Source};
use super::stats::{self, Options, Report};
use super::{check_not_empty, text, tree};

const MS: u64 = 1_000_000;
/// ktime of `t = 0` in the streams: 1000 s after boot.
const BASE: u64 = 1_000_000_000_000;
/// Wall clock at ktime 0: 2026-11-18T11:06:40Z.
const WALL0: u64 = 1_795_000_000_000_000_000;

/// Writes JSON Lines as `tracer watch` does; times are ms after [`BASE`].
struct W {
    host: String,
    boot: String,
    seq: u64,
    lines: Vec<String>,
    /// Start ticks of each pid's current process.
    starts: HashMap<u32, u64>,
    cgroup: Option<String>,
}

fn ts(ktime: u64) -> String {
    super::walltime::rfc3339(i128::from(WALL0) + i128::from(ktime))
}

impl W {
    fn new() -> W {
        W::on("web-1", "boot-a")
    }

    fn on(host: &str, boot: &str) -> W {
        W {
            host: host.into(),
            boot: boot.into(),
            seq: 0,
            lines: Vec::new(),
            starts: HashMap::new(),
            cgroup: Some("/system.slice/storm.service".into()),
        }
    }

    fn id(&self, pid: u32) -> String {
        format!("{pid}-{}", self.starts.get(&pid).copied().unwrap_or(1))
    }

    fn push(&mut self, ty: &str, t_ms: u64, fields: Value) -> &mut Self {
        self.seq += 1;
        let k = BASE + t_ms * MS;
        let mut v = json!({
            "seq": self.seq, "type": ty, "ts": ts(k), "ktime_ns": k,
            "host": self.host, "boot_id": self.boot,
        });
        for (key, val) in fields.as_object().expect("object").clone() {
            v[key] = val;
        }
        self.lines.push(v.to_string());
        self
    }

    fn subject(&self, pid: u32, ppid: u32, comm: &str) -> Value {
        json!({
            "pid": pid, "tid": pid, "ppid": ppid, "proc_id": self.id(pid), "comm": comm,
            "uid": 0, "cgroup": self.cgroup, "cgroup_id": 7,
        })
    }

    fn with(&self, pid: u32, ppid: u32, comm: &str, extra: Value) -> Value {
        let mut v = self.subject(pid, ppid, comm);
        for (key, val) in extra.as_object().expect("object").clone() {
            v[key] = val;
        }
        v
    }

    fn process(
        &mut self,
        t: u64,
        pid: u32,
        ppid: u32,
        comm: &str,
        exe: Option<&str>,
        state: &str,
    ) -> &mut Self {
        self.starts.entry(pid).or_insert(1);
        let v = self.with(
            pid,
            ppid,
            comm,
            json!({"filename": exe, "argv": [comm], "state": state}),
        );
        self.push("process", t, v)
    }

    fn fork(&mut self, t: u64, pid: u32, ppid: u32, comm: &str) -> &mut Self {
        let parent = self.id(ppid);
        self.starts.insert(pid, (BASE + t * MS) / 10_000_000);
        let v = self.with(
            pid,
            ppid,
            comm,
            json!({"parent_proc_id": parent, "thread": false, "clone_flags": 17}),
        );
        self.push("fork", t, v)
    }

    fn exec(&mut self, t: u64, pid: u32, ppid: u32, file: &str) -> &mut Self {
        let comm = String::from_utf8_lossy(super::fmt::basename(file.as_bytes())).into_owned();
        let v = self.with(
            pid,
            ppid,
            &comm,
            json!({"filename": file, "argv": [comm], "argv_truncated": false, "old_tid": null}),
        );
        self.push("exec", t, v)
    }

    fn exit(
        &mut self,
        t: u64,
        pid: u32,
        ppid: u32,
        comm: &str,
        code: Option<u8>,
        signal: Option<u8>,
    ) -> &mut Self {
        let v = self.with(
            pid,
            ppid,
            comm,
            json!({
                "exit_code": code, "signal": signal, "signal_name": null, "core_dumped": false,
                "lifetime_ns": null, "thread": false,
            }),
        );
        self.push("exit", t, v)
    }

    fn reap(
        &mut self,
        t: u64,
        pid: u32,
        ppid: u32,
        comm: &str,
        zombie_ns: Option<u64>,
        reaper: Option<(u32, &str)>,
    ) -> &mut Self {
        let v = self.with(
            pid,
            ppid,
            comm,
            json!({
                "zombie_ns": zombie_ns, "reaper_pid": reaper.map(|r| r.0),
                "reaper_comm": reaper.map(|r| r.1), "autoreap": false,
            }),
        );
        self.push("reap", t, v)
    }

    /// fork, exec FILE, exit CODE, reaped by the parent: a whole short life.
    #[expect(
        clippy::too_many_arguments,
        reason = "a test helper that reads like a table row"
    )]
    fn life(
        &mut self,
        t: u64,
        pid: u32,
        ppid: u32,
        pcomm: &str,
        file: &str,
        code: u8,
        lived_ms: u64,
    ) -> &mut Self {
        let comm = String::from_utf8_lossy(super::fmt::basename(file.as_bytes())).into_owned();
        self.fork(t, pid, ppid, pcomm)
            .exec(t, pid, ppid, file)
            .exit(t + lived_ms, pid, ppid, &comm, Some(code), None)
            .reap(
                t + lived_ms,
                pid,
                ppid,
                &comm,
                Some(10_000),
                Some((ppid, pcomm)),
            )
    }

    fn lost(&mut self, t: u64, kind: &str, count: u64) -> &mut Self {
        self.push("lost", t, json!({"count": count, "kind": kind}))
    }

    fn fork_failed(&mut self, t: u64, pid: u32, ppid: u32, comm: &str, errno: u32) -> &mut Self {
        let v = self.with(pid, ppid, comm, json!({"errno": errno, "error": null}));
        self.push("fork_failed", t, v)
    }

    fn raw(&mut self, line: &str) -> &mut Self {
        self.lines.push(line.to_string());
        self
    }

    fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

fn read(inputs: &[(&str, &str)]) -> Records {
    let bytes: Vec<(&str, &[u8])> = inputs.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    reader::read_bytes(&bytes).expect("readable")
}

fn load(text: &str) -> (Records, History) {
    let r = read(&[("events.jsonl", text)]);
    let h = History::build(&r);
    (r, h)
}

fn report(text: &str) -> Report {
    let (r, h) = load(text);
    stats::compute(&r, &h, Options::default())
}

fn proc_by_pid(h: &History, pid: u32) -> &super::history::Proc {
    let found: Vec<_> = h.procs.iter().filter(|p| p.pid() == pid).collect();
    assert_eq!(found.len(), 1, "processes with pid {pid}: {found:?}");
    found[0]
}

/// A parent bash (100) in storm.service forking `n` children that run /bin/true,
/// one every `gap_ms`, under init (1); plus a quiet parent (200) with 3 children.
fn storm(n: u32, gap_ms: u64) -> W {
    let mut w = W::new();
    w.process(0, 1, 0, "systemd", Some("/usr/lib/systemd/systemd"), "S")
        .process(0, 100, 1, "bash", Some("/usr/bin/bash"), "S");
    w.cgroup = Some("/system.slice/cron.service".into());
    w.process(0, 200, 1, "cron", Some("/usr/sbin/cron"), "S");
    w.cgroup = Some("/system.slice/storm.service".into());
    for i in 0..n {
        w.life(
            10 + u64::from(i) * gap_ms,
            1000 + i,
            100,
            "bash",
            "/bin/true",
            0,
            1,
        );
    }
    w.cgroup = Some("/system.slice/cron.service".into());
    for i in 0..3 {
        w.life(20 + i * 100, 5000 + i as u32, 200, "cron", "/bin/sh", 0, 5);
    }
    w
}

// ---------------------------------------------------------------------------
// Reading

#[test]
fn reads_every_record_type_and_undoes_byte_escapes() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .fork(1, 10, 1, "init");
    let id10 = w.id(10);
    w.raw(&format!(
            r#"{{"seq":3,"type":"exec","ts":"{}","ktime_ns":{},"host":"web-1","boot_id":"boot-a","pid":10,"tid":10,"ppid":1,"proc_id":"{}","comm":"ls","uid":null,"cgroup":null,"cgroup_id":0,"filename":"/bin/caf\\xe9","argv":["ls","\\x5cx41","caf\\xe9"],"argv_truncated":false,"old_tid":null,"future_field":{{"a":1}}}}"#,
            ts(BASE + 2 * MS),
            BASE + 2 * MS,
            id10
        ));
    w.seq = 3;
    w.fork_failed(3, 1, 0, "init", 11)
        .exit(4, 10, 1, "ls", None, Some(9))
        .reap(5, 10, 1, "ls", None, Some((1, "init")))
        .lost(6, "exec", 12)
        .push("exec_failed", 7, json!({"pid": 1, "tid": 1, "ppid": 0, "proc_id": "1-1", "comm": "init", "uid": 0, "cgroup": "/", "cgroup_id": 1, "filename": "/nope", "errno": 2, "error": "ENOENT"}));
    let (r, h) = load(&w.text());
    assert_eq!(r.bad_total(), 0, "{:?}", r.first_bad);
    assert_eq!(r.records.len(), 8);
    let types: Vec<&str> = r
        .records
        .iter()
        .map(|x| x.record.body.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "process",
            "fork",
            "exec",
            "fork_failed",
            "exit",
            "reap",
            "lost",
            "exec_failed"
        ]
    );
    let ls = proc_by_pid(&h, 10);
    assert_eq!(&*ls.execs[0].filename, b"/bin/caf\xe9");
    assert_eq!(
        ls.execs[0].argv,
        vec![b"ls".to_vec(), b"\\x41".to_vec(), b"caf\xe9".to_vec()]
    );
    assert_eq!(ls.chain(), vec![b"caf\xe9".to_vec()]);
    assert_eq!(
        ls.ending(),
        Ending::Killed {
            signal: 9,
            core_dumped: false
        }
    );
    // Zombie time from exit and reap when the record has none.
    assert_eq!(ls.zombie_ns(), Some(MS));
    assert_eq!(h.lost.len(), 1);
    assert_eq!(h.fork_failures.len(), 1);
    assert_eq!(proc_by_pid(&h, 1).fork_failed.get(&11), Some(&1));
    assert_eq!(h.exec_failures[0].filename, b"/nope");
    let run = &r.runs[0];
    assert_eq!(run.wall_ns(BASE), Some(i128::from(WALL0 + BASE)));
}

#[test]
fn truncated_last_line_is_skipped_and_named() {
    let mut text = storm(3, 10).text();
    let full_lines = text.lines().count() as u64;
    text.push_str(r#"{"seq":99,"type":"fork","ts":"2026-11-2"#);
    let r = read(&[("cut.jsonl", &text)]);
    assert_eq!(r.bad.get(&BadKind::Truncated), Some(&1));
    assert_eq!(r.bad_total(), 1);
    assert_eq!(r.first_bad[0].line, full_lines + 1);
    assert_eq!(r.first_bad[0].input, "cut.jsonl");
    assert_eq!(r.records.len() as u64, full_lines);
    // A whole record that only lacks its newline is kept.
    let mut w = storm(1, 10);
    let whole = w.text();
    let r = read(&[("x", whole.trim_end())]);
    assert_eq!(r.bad_total(), 0);
    assert_eq!(r.records.len(), w.lines.len());
    w.raw("");
}

#[test]
fn invalid_utf8_bytes_make_a_line_bad_not_the_file() {
    let w = storm(2, 10);
    let mut bytes = w.text().into_bytes();
    let good = w.lines.len();
    bytes.extend_from_slice(b"{\"seq\":1,\"type\":\"fork\",\"comm\":\"caf\xe9\"}\n");
    bytes.extend_from_slice(b"\xff\xfe garbage\n");
    let r = reader::read_bytes(&[("bin.jsonl", &bytes)]).unwrap();
    assert_eq!(r.records.len(), good);
    assert_eq!(r.bad.get(&BadKind::NotJson), Some(&2), "{:?}", r.first_bad);
    assert_eq!(r.first_bad[0].line as usize, good + 1);
    assert_eq!(r.first_bad[1].line as usize, good + 2);
}

#[test]
fn huge_lines_are_skipped_with_a_count() {
    let mut w = storm(2, 10);
    let huge = format!(
        r#"{{"seq":1,"type":"process","comm":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    w.raw(&huge);
    w.raw(&"y".repeat(3 << 20));
    let text = w.text();
    let r = read(&[("big", &text)]);
    assert_eq!(r.bad.get(&BadKind::TooLong), Some(&2));
    assert_eq!(r.records.len(), w.lines.len() - 2);
    assert!(r.first_bad[0].detail.contains("bytes"), "{:?}", r.first_bad);
}

#[test]
fn unknown_types_missing_and_wrong_fields_are_counted_by_reason() {
    let mut w = storm(1, 10);
    let good = w.lines.len();
    let base = json!({"seq": 50, "ts": ts(BASE), "ktime_ns": BASE, "host": "web-1", "boot_id": "boot-a",
        "pid": 7, "tid": 7, "ppid": 1, "proc_id": "7-1", "comm": "x"});
    let with = |patch: Value| {
        let mut v = base.clone();
        for (k, val) in patch.as_object().unwrap().clone() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(&k);
            } else {
                v[k] = val;
            }
        }
        v.to_string()
    };
    w.raw(&with(json!({"type": "anomaly", "what": "fork storm"}))) // unknown (future) type
        .raw(&with(json!({"type": "exec"}))) // exec without filename
        .raw(&with(json!({"type": "fork", "pid": null}))) // no pid
        .raw(&with(json!({"type": "fork", "ktime_ns": null}))) // no ktime
        .raw(&with(json!({"type": "exit", "exit_code": 300}))) // out of range
        .raw(&with(json!({"type": "fork", "pid": "seven"}))) // wrong type
        .raw(&with(json!({"type": "fork", "proc_id": "7"}))) // bad proc_id
        .raw(&with(json!({"type": "fork", "proc_id": "8-1"}))) // proc_id of another pid
        .raw(&with(json!({"type": "exit", "exit_code": 1, "signal": 9}))) // both
        .raw(r#"[1,2,3]"#)
        .raw(r#""just a string""#)
        .raw(r#"{"no_type": true}"#)
        .raw("   ")
        .raw("");
    let r = read(&[("mixed", &w.text())]);
    assert_eq!(r.records.len(), good, "{:?}", r.first_bad);
    let count = |k| r.bad.get(&k).copied().unwrap_or(0);
    assert_eq!(count(BadKind::UnknownType), 1);
    assert_eq!(count(BadKind::MissingField), 3);
    assert_eq!(count(BadKind::BadValue), 5);
    assert_eq!(count(BadKind::NotARecord), 3);
    // Blank lines are not records and not problems.
    assert_eq!(r.bad_total(), 12);
    assert_eq!(r.first_bad.len(), reader::KEEP_BAD);
    assert!(r.first_bad[0].detail.contains("anomaly"));
    assert!(r.first_bad[1].detail.contains("filename"));
}

#[test]
fn empty_and_all_bad_inputs_are_errors_that_say_what_to_do() {
    let r = read(&[("empty.jsonl", "")]);
    assert!(r.records.is_empty() && r.bad_total() == 0);
    let e = check_not_empty(&r).unwrap_err().to_string();
    assert!(e.contains("empty.jsonl") && e.contains("empty"), "{e}");

    let r = read(&[("notes.txt", "hello\nworld\n")]);
    let e = check_not_empty(&r).unwrap_err().to_string();
    assert!(e.contains("none of the 2 lines"), "{e}");
    assert!(e.contains("notes.txt:1: not JSON"), "{e}");
    assert!(e.contains("tracer watch -o"), "{e}");
}

#[test]
fn stdin_is_dash_and_may_be_given_once() {
    assert_eq!(Source::from_arg(std::path::Path::new("-")), Source::Stdin);
    assert_eq!(Source::Stdin.name(), "<stdin>");
    let err = reader::read_all(
        &[Source::Stdin, Source::Stdin],
        &mut super::progress::Progress::quiet(),
    )
    .unwrap_err();
    assert!(matches!(err, reader::ReadError::StdinTwice));
    // `-` among files: read from stdin, in the given place, named `<stdin>`.
    let dir = std::env::temp_dir().join(format!("tracer-report-stdin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("b.jsonl");
    std::fs::write(&f, W::on("web-2", "boot-b").fork(1, 5, 1, "x").text()).unwrap();
    let text = storm(2, 10).text();
    let r = reader::read_sources(
        &[Source::from_arg(std::path::Path::new("-")), Source::File(f)],
        &mut text.as_bytes(),
        &mut super::progress::Progress::quiet(),
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.inputs[0].name, "<stdin>");
    assert_eq!(r.inputs[0].records as usize, storm(2, 10).lines.len());
    assert_eq!(r.inputs[1].records, 1);
    assert_eq!(r.runs.len(), 2);
}

#[test]
fn files_read_from_disk_and_missing_files_and_gzip() {
    let dir = std::env::temp_dir().join(format!("tracer-report-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("a.jsonl");
    std::fs::write(&f, storm(2, 10).text()).unwrap();
    let gz = dir.join("a.jsonl.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, b'\n']).unwrap();
    let mut quiet = super::progress::Progress::quiet();
    let r = reader::read_all(&[Source::File(f.clone())], &mut quiet).unwrap();
    assert_eq!(r.records.len(), storm(2, 10).lines.len());
    assert_eq!(r.inputs[0].bytes, std::fs::metadata(&f).unwrap().len());
    let e = reader::read_all(&[Source::File(dir.join("nope"))], &mut quiet).unwrap_err();
    assert!(e.to_string().starts_with("cannot open "), "{e}");
    let e = reader::read_all(&[Source::File(gz.clone())], &mut quiet).unwrap_err();
    assert!(e.to_string().contains("zcat"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn several_inputs_merge_in_time_order_and_duplicates_count_once() {
    let all = storm(4, 10);
    let (first, second) = all.lines.split_at(all.lines.len() / 2);
    let (a, b) = (first.join("\n"), second.join("\n"));
    // Given in the wrong order: the records still come out in time order.
    let r = read(&[("part2", &b), ("part1", &a)]);
    let times: Vec<u64> = r.records.iter().map(|x| x.record.ktime_ns).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(r.records.len(), all.lines.len());
    // The same file twice: each record once.
    let text = all.text();
    let r = read(&[("x", &text), ("x again", &text)]);
    assert_eq!(r.records.len(), all.lines.len());
    assert_eq!(r.duplicates, all.lines.len() as u64);
    assert_eq!(
        History::build(&r).procs.len(),
        History::build(&read(&[("x", &text)])).procs.len()
    );
}

#[test]
fn several_hosts_are_separate_runs() {
    let mut a = W::on("web-2", "boot-b");
    a.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    a.life(5, 50, 1, "init", "/bin/true", 0, 1);
    let mut b = W::on("web-1", "boot-a");
    b.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    b.life(5, 50, 1, "init", "/bin/false", 1, 1);
    let r = read(&[("a", &a.text()), ("b", &b.text())]);
    assert_eq!(r.runs.len(), 2);
    assert_eq!(r.runs[0].host, "web-1");
    assert_eq!(r.runs[1].host, "web-2");
    let h = History::build(&r);
    // Same pids and proc_ids on two hosts: four processes, each with its own parent.
    assert_eq!(h.procs.len(), 4);
    for p in h.procs.iter().filter(|p| p.pid() == 50) {
        assert_eq!(h.procs[p.parent.unwrap()].run, p.run);
    }
    let rep = stats::compute(&r, &h, Options::default());
    assert_eq!(rep.timeline.len(), 2);
    assert!(text::render(&rep).contains("host web-2"));
}

#[test]
fn seq_gaps_and_restarts_are_counted() {
    let mut w = storm(3, 10);
    let n = w.lines.len();
    w.lines.remove(5);
    w.lines.remove(5);
    let r = read(&[("gappy", &w.text())]);
    assert_eq!(r.inputs[0].missing, 2);
    assert_eq!(r.inputs[0].seq_restarts, 0);
    assert_eq!(r.records.len(), n - 2);
    // A bad line in place of a record is not also "missing".
    let mut w = storm(3, 10);
    w.lines[5] = "garbage".into();
    let r = read(&[("bad", &w.text())]);
    assert_eq!(r.inputs[0].missing, 0);
    // Two runs appended to one file.
    let text = format!(
        "{}{}",
        storm(1, 10).text(),
        W::on("web-1", "boot-b").fork(1, 5, 1, "x").text()
    );
    let r = read(&[("two", &text)]);
    assert_eq!(r.inputs[0].seq_restarts, 1);
}

/// Deterministic pseudo-random bytes (xorshift), so the test is reproducible.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn no_input_makes_it_panic() {
    let good = storm(5, 3).text();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..200 {
        let mut bytes = good.clone().into_bytes();
        // Flip, delete and duplicate bytes at random places.
        for _ in 0..(round % 20 + 1) {
            let at = (xorshift(&mut seed) % bytes.len() as u64) as usize;
            match xorshift(&mut seed) % 4 {
                0 => bytes[at] = (xorshift(&mut seed) & 0xff) as u8,
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, b"{}[]\",:0-9\\n"[(xorshift(&mut seed) % 12) as usize]),
                _ => {
                    let end = (at + 40).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
        }
        let r = reader::read_bytes(&[("fuzz", &bytes)]).unwrap();
        let h = History::build(&r);
        let rep = stats::compute(&r, &h, Options { top: 3 });
        let _ = text::render(&rep);
        let _ = serde_json::to_string(&rep).unwrap();
        let _ = tree::render(&h, &tree::Select::default());
        let _ = tree::doc(
            &h,
            &tree::Select {
                pids: vec![100],
                procs: tree::Select::by_comm("^true$").procs,
            },
        );
    }
}

#[test]
fn analyse_bytes_runs_every_stage_and_refuses_only_gzip() {
    // What the fuzz target drives (fuzz/fuzz_targets/report_reader.rs).
    let text = super::analyse_bytes(storm(300, 2).text().as_bytes()).expect("plain JSON Lines");
    assert!(text.contains("busiest forker: pid 100 bash"), "{text}");
    // Nothing usable is still a report (of nothing), not an error or a panic.
    for junk in [
        &b""[..],
        b"\n\n",
        b"\xff\xfe{",
        b"{\"type\":\"fork\"}\n[1]\n",
    ] {
        super::analyse_bytes(junk).expect("not gzip");
    }
    let e = super::analyse_bytes(&[0x1f, 0x8b, 8, 0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("gzip"), "{e}");
}

// ---------------------------------------------------------------------------
// History

#[test]
fn parents_from_fork_records_and_from_pids_in_the_snapshot() {
    let mut w = W::new();
    // The snapshot lists a child before its parent.
    w.process(0, 300, 200, "worker", Some("/usr/bin/worker"), "S")
        .process(0, 200, 1, "master", Some("/usr/bin/master"), "S")
        .process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .fork(5, 400, 300, "worker")
        .exec(6, 400, 300, "/bin/sh")
        .exec(7, 400, 300, "/usr/bin/make");
    let (_, h) = load(&w.text());
    let parent_pid = |pid| proc_by_pid(&h, pid).parent.map(|p| h.procs[p].pid());
    assert_eq!(parent_pid(300), Some(200));
    assert_eq!(parent_pid(200), Some(1));
    assert_eq!(parent_pid(1), None);
    assert_eq!(parent_pid(400), Some(300));
    let p = proc_by_pid(&h, 400);
    assert_eq!(p.origin, Origin::Fork);
    assert_eq!(p.chain(), vec![b"sh".to_vec(), b"make".to_vec()]);
    // Before its exec it ran its parent's program.
    assert_eq!(p.image.as_deref(), Some(&b"/usr/bin/worker"[..]));
    assert_eq!(
        p.image_at(BASE + 6 * MS + 1).map(|x| &**x),
        Some(&b"/bin/sh"[..])
    );
    assert_eq!(proc_by_pid(&h, 300).chain(), vec![b"worker".to_vec()]);
    assert!(p.alive_at_end());
    assert_eq!(h.roots().len(), 1);
    assert_eq!(proc_by_pid(&h, 300).children.len(), 1);
}

#[test]
fn a_reused_pid_is_a_new_process_and_children_find_the_right_one() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .life(100, 50, 1, "init", "/bin/old", 0, 10);
    // pid 50 again, later: a different process.
    w.fork(500, 50, 1, "init").exec(500, 50, 1, "/bin/new");
    // A child of the new 50 whose fork did not name its parent.
    let v = w.with(
        60,
        50,
        "new",
        json!({"parent_proc_id": null, "thread": false, "clone_flags": null}),
    );
    w.starts.insert(60, (BASE + 600 * MS) / 10_000_000);
    w.push("fork", 600, v);
    let (_, h) = load(&w.text());
    let fifties: Vec<_> = h.procs.iter().filter(|p| p.pid() == 50).collect();
    assert_eq!(fifties.len(), 2);
    let child = proc_by_pid(&h, 60);
    let parent = &h.procs[child.parent.unwrap()];
    assert_eq!(parent.chain(), vec![b"new".to_vec()]);
}

#[test]
fn threads_are_counted_on_their_process() {
    let mut w = W::new();
    w.process(0, 10, 1, "server", Some("/usr/bin/server"), "S");
    for tid in 11..14 {
        let v = json!({"pid": 10, "tid": tid, "ppid": 1, "proc_id": w.id(10), "comm": "server",
            "uid": 0, "cgroup": "/", "cgroup_id": 1, "parent_proc_id": w.id(10), "thread": true, "clone_flags": 0x10000});
        w.push("fork", 1, v);
    }
    let v = json!({"pid": 10, "tid": 11, "ppid": 1, "proc_id": w.id(10), "comm": "worker-thread",
        "uid": 0, "cgroup": "/", "cgroup_id": 1, "exit_code": 0, "signal": null, "signal_name": null,
        "core_dumped": false, "lifetime_ns": null, "thread": true});
    w.push("exit", 2, v);
    let (_, h) = load(&w.text());
    assert_eq!(h.procs.len(), 1);
    let p = &h.procs[0];
    assert_eq!((p.threads_created, p.threads_exited), (3, 1));
    assert!(p.alive_at_end());
    // A thread's comm is not the process's.
    assert_eq!(p.comm.as_bytes(), b"server");
}

#[test]
fn circular_parents_from_bad_input_are_cut() {
    let mut w = W::new();
    w.starts.insert(10, 1);
    w.starts.insert(20, 1);
    let a = w.with(
        10,
        20,
        "a",
        json!({"parent_proc_id": "20-1", "thread": false}),
    );
    let b = w.with(
        20,
        10,
        "b",
        json!({"parent_proc_id": "10-1", "thread": false}),
    );
    w.push("fork", 1, a).push("fork", 2, b);
    let (_, h) = load(&w.text());
    assert_eq!(h.cycles_broken, 1);
    assert_eq!(h.roots().len(), 1);
    let t = tree::render(&h, &tree::Select::default());
    assert_eq!(t.lines().count(), 2, "{t}");
}

// ---------------------------------------------------------------------------
// Figures

#[test]
fn peak_and_mean_rates() {
    let s = |v: &[u64]| v.iter().map(|x| x * MS).collect::<Vec<_>>();
    assert_eq!(stats::peak_per_sec(&[]), 0);
    assert_eq!(
        stats::peak_per_sec(&s(&[0, 999, 1000, 1500, 1998, 2998])),
        4
    );
    assert_eq!(
        stats::peak_per_sec(&s(&[0, 999, 1000, 1500, 1999, 2998])),
        3
    );
    assert_eq!(
        stats::mean_per_sec(&s(&[0, 100, 200])),
        3.0,
        "span under 1 s counts as 1 s"
    );
    assert_eq!(stats::mean_per_sec(&s(&[0, 1000, 2000, 4000])), 1.0);
    assert_eq!(stats::percentile(&[1, 2, 3, 4, 5], 0.5), Some(3));
    assert_eq!(stats::percentile(&[1, 2, 3, 4, 5], 0.95), Some(5));
    assert_eq!(stats::percentile(&[7], 0.5), Some(7));
    assert_eq!(stats::percentile(&[], 0.5), None);
}

#[test]
fn top_forkers_name_the_parent_executable_and_cgroup() {
    let rep = report(&storm(100, 5).text());
    let p = &rep.top_forkers.by_parent[0];
    assert_eq!(p.process.pid, 100);
    assert_eq!(p.process.comm, "bash");
    assert_eq!(p.process.exe.as_deref(), Some("/usr/bin/bash"));
    assert_eq!(p.process.unit.as_deref(), Some("storm.service"));
    assert_eq!(p.children, 100);
    // 100 forks 5 ms apart: 495 ms, all within one second.
    assert_eq!(p.peak_per_sec, 100);
    assert_eq!(p.mean_per_sec, 100.0);
    assert_eq!(p.children_ran[0].name, "/bin/true");
    assert_eq!(p.children_ran[0].count, 100);
    let second = &rep.top_forkers.by_parent[1];
    assert_eq!((second.process.pid, second.children), (200, 3));

    let e = &rep.top_forkers.by_executable[0];
    assert_eq!(
        (e.key.as_deref(), e.forks, e.parents),
        (Some("/usr/bin/bash"), 100, 1)
    );
    let c = &rep.top_forkers.by_cgroup[0];
    assert_eq!(c.key.as_deref(), Some("/system.slice/storm.service"));
    assert_eq!((c.unit.as_deref(), c.forks), (Some("storm.service"), 100));
    assert_eq!(rep.top_forkers.by_cgroup[1].forks, 3);
    assert_eq!(rep.top_executed[0].filename, "/bin/true");
    assert_eq!(rep.top_executed[0].execs, 100);

    assert!(
        rep.headline[0].starts_with(
            "busiest forker: pid 100 bash (/usr/bin/bash) in storm.service: 100 children, peak 100/s"
        ),
        "{}",
        rep.headline[0]
    );
    assert!(rep.headline[1].contains("busiest executable: /usr/bin/bash: 100 forks"));
    assert!(
        rep.headline[2]
            .contains("busiest cgroup: storm.service (/system.slice/storm.service): 100 forks")
    );
}

#[test]
fn slow_storm_rates_over_seconds() {
    // 30 forks 100 ms apart: 3 s, peak 10 in any second, mean 30 / 2.9 s.
    let rep = report(&storm(30, 100).text());
    let p = &rep.top_forkers.by_parent[0];
    assert_eq!(p.peak_per_sec, 10);
    assert!(
        (p.mean_per_sec - 30.0 / 2.9).abs() < 1e-9,
        "{}",
        p.mean_per_sec
    );
    assert_eq!(p.last_fork_ktime_ns - p.first_fork_ktime_ns, 2900 * MS);
}

#[test]
fn timeline_counts_forks_per_second() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    for (i, t) in [10u64, 500, 1200, 3100, 3200, 3300].into_iter().enumerate() {
        w.life(t, 10 + i as u32, 1, "init", "/bin/true", 0, 1);
    }
    let rep = report(&w.text());
    let t = &rep.timeline[0];
    assert_eq!(t.bucket_ns, 1_000_000_000);
    assert_eq!(t.forks, vec![2, 1, 0, 3]);
    assert_eq!(t.peak_per_sec, 3);
    assert_eq!(t.peak_ktime_ns, Some(BASE + 3100 * MS));
    assert_eq!(t.start_ktime_ns, BASE);
    assert!(t.peak_at.as_deref().unwrap().ends_with("Z"));
    // The terminal columns: 3.3 s in 50 ms columns.
    assert_eq!(t.column_ns, 50 * MS);
    assert_eq!(t.columns.len(), 67);
    assert_eq!(t.columns.iter().filter(|&&c| c > 0.0).count(), 6);
    assert_eq!(t.columns[62], 20.0, "one fork in 50 ms is 20/s");
}

#[test]
fn column_widths_are_round_and_fit() {
    assert_eq!(stats::column_width(0), 10 * MS);
    assert_eq!(stats::column_width(700 * MS), 10 * MS);
    assert_eq!(
        stats::column_width(3600 * 1_000_000_000),
        60 * 1_000_000_000
    );
    let week = 7 * 86_400 * 1_000_000_000u64;
    let w = stats::column_width(week);
    assert!(week / w < stats::SPARK_COLUMNS && w.is_multiple_of(3600 * 1_000_000_000));
}

#[test]
fn sparkline_scales_to_the_maximum() {
    assert_eq!(text::sparkline(&[0.0, 1.0, 4.0, 8.0], 8.0), " ▁▄█");
    assert_eq!(text::sparkline(&[0.01, 100.0], 100.0), "▁█");
    assert_eq!(text::sparkline(&[0.0, 0.0], 0.0), "  ");
}

/// Five children exit 1..5 ms after each other and are reaped 1..5 ms later; one
/// more is never reaped; an orphan is reaped by init.
fn zombie_stream() -> W {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .process(0, 100, 1, "lazy", Some("/usr/bin/lazy"), "S")
        .process(0, 200, 1, "leaky", Some("/usr/bin/leaky"), "S");
    for i in 0..5u64 {
        let pid = 1000 + i as u32;
        w.fork(10, pid, 100, "lazy")
            .exit(20 + i, pid, 100, "lazy", Some(0), None)
            .reap(
                20 + 2 * i + 1,
                pid,
                100,
                "lazy",
                Some((i + 1) * MS),
                Some((100, "lazy")),
            );
    }
    // lazy reaps one child after 300 ms.
    w.fork(30, 1100, 100, "lazy")
        .exit(40, 1100, 100, "lazy", Some(0), None)
        .reap(340, 1100, 100, "lazy", Some(300 * MS), Some((100, "lazy")));
    // leaky never reaps.
    w.fork(50, 2000, 200, "leaky")
        .exit(60, 2000, 200, "leaky", Some(0), None);
    // An orphan: its parent 300 exits first, init reaps it.
    w.fork(70, 300, 200, "leaky")
        .fork(71, 301, 300, "leaky")
        .exit(72, 300, 200, "leaky", Some(0), None)
        .reap(73, 300, 200, "leaky", Some(MS), Some((200, "leaky")))
        .exit(80, 301, 1, "leaky", Some(0), None)
        .reap(81, 301, 1, "leaky", Some(MS), Some((1, "init")));
    // The recording ends at 1060 ms: leaky's zombie is 1 s old.
    w.process(1060, 1, 0, "init", Some("/sbin/init"), "S");
    w
}

#[test]
fn zombie_figures() {
    let rep = report(&zombie_stream().text());
    let z = &rep.zombies;
    // 5 + 1 (lazy) + 300 + 301 (orphan pair): 8 with known zombie time.
    assert_eq!(z.count, 8);
    // Sorted: 1,1,1,2,3,4,5,300 ms.
    assert_eq!(z.p50_ns, Some(2 * MS));
    assert_eq!(z.p95_ns, Some(300 * MS));
    assert_eq!(z.max_ns, Some(300 * MS));
    assert_eq!(z.longest.as_ref().map(|p| p.pid), Some(1100));
    assert_eq!(z.unreaped_at_end, 1);
    assert_eq!(rep.totals.zombies_at_end, 1);
    // leaky first (an unreaped zombie), then lazy (300 ms).
    assert_eq!(z.slow_reapers.len(), 2, "{:?}", z.slow_reapers);
    let leaky = &z.slow_reapers[0];
    assert_eq!(leaky.parent.as_ref().map(|p| p.pid), Some(200));
    assert_eq!(leaky.unreaped_at_end, 1);
    assert_eq!(leaky.oldest_unreaped_ns, Some(1000 * MS));
    let lazy = &z.slow_reapers[1];
    assert_eq!(lazy.parent.as_ref().map(|p| p.pid), Some(100));
    assert_eq!(
        (lazy.zombies, lazy.max_ns, lazy.unreaped_at_end),
        (6, Some(300 * MS), 0)
    );
    assert_eq!(lazy.p50_ns, Some(3 * MS));
    assert_eq!(z.orphan_reapers.len(), 1);
    let o = &z.orphan_reapers[0];
    assert_eq!(
        (o.reaper_pid, o.reaper_comm.as_deref(), o.orphans),
        (Some(1), Some("init"), 1)
    );
    assert!(
        rep.headline
            .iter()
            .any(|h| h == "1 process was still zombies at the end of the recording"),
        "{:?}",
        rep.headline
    );
}

#[test]
fn exit_breakdown_and_crash_loops() {
    let mut w = W::new();
    w.process(0, 1, 0, "systemd", Some("/usr/lib/systemd/systemd"), "S");
    // A service crashing 4 times under systemd: 3 exit 1, one SIGSEGV with core.
    for i in 0..3u32 {
        w.life(
            u64::from(i) * 1000,
            100 + i,
            1,
            "systemd",
            "/usr/bin/flaky",
            1,
            20,
        );
    }
    w.fork(3000, 103, 1, "systemd")
        .exec(3000, 103, 1, "/usr/bin/flaky");
    let v = w.with(
        103,
        1,
        "flaky",
        json!({"exit_code": null, "signal": 11, "signal_name": "SIGSEGV",
        "core_dumped": true, "lifetime_ns": 30 * MS, "thread": false}),
    );
    w.push("exit", 3030, v);
    w.reap(3031, 103, 1, "flaky", Some(MS), Some((1, "systemd")));
    // Two failures of another program: not a loop.
    w.life(4000, 200, 1, "systemd", "/usr/bin/once", 2, 5)
        .life(4100, 201, 1, "systemd", "/usr/bin/once", 2, 5)
        .life(4200, 202, 1, "systemd", "/usr/bin/fine", 0, 5);
    let rep = report(&w.text());
    let flaky = &rep.exits[0];
    assert_eq!(flaky.exe.as_deref(), Some("/usr/bin/flaky"));
    assert_eq!(
        (flaky.exits, flaky.success, flaky.failures, flaky.core_dumps),
        (4, 0, 4, 1)
    );
    assert_eq!(flaky.codes.get(&1), Some(&3));
    assert_eq!(flaky.signals.get("SIGSEGV"), Some(&1));
    assert_eq!(flaky.lifetime_p50_ns, Some(20 * MS));
    let once = &rep.exits[1];
    assert_eq!(
        (once.exe.as_deref(), once.failures),
        (Some("/usr/bin/once"), 2)
    );
    let fine = rep
        .exits
        .iter()
        .find(|e| e.exe.as_deref() == Some("/usr/bin/fine"))
        .unwrap();
    assert_eq!((fine.exits, fine.success, fine.failures), (1, 1, 0));

    assert_eq!(rep.crash_loops.len(), 1);
    let l = &rep.crash_loops[0];
    assert_eq!(l.exe.as_deref(), Some("/usr/bin/flaky"));
    assert_eq!(l.parent.as_ref().map(|p| p.pid), Some(1));
    assert_eq!((l.failures, l.exits), (4, 4));
    assert_eq!(
        l.last_endings,
        vec!["exit 1", "exit 1", "exit 1", "SIGSEGV (core)"]
    );
    assert_eq!(l.last_ktime_ns - l.first_ktime_ns, 3010 * MS);
    assert!(rep.headline.iter().any(|h| h.starts_with("crash loop: /usr/bin/flaky failed 4 times under pid 1 systemd")), "{:?}", rep.headline);
}

#[test]
fn longest_and_shortest_lived() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    for (i, lived) in [5u64, 1, 300, 42, 7, 2, 100].into_iter().enumerate() {
        w.life(10, 10 + i as u32, 1, "init", "/bin/x", 0, lived);
    }
    let (r, h) = load(&w.text());
    let rep = stats::compute(&r, &h, Options { top: 3 });
    let ms = |v: &[stats::Life]| v.iter().map(|l| l.lifetime_ns / MS).collect::<Vec<_>>();
    assert_eq!(ms(&rep.longest_lived), vec![300, 100, 42]);
    assert_eq!(ms(&rep.shortest_lived), vec![1, 2, 5]);
    assert_eq!(rep.longest_lived[0].process.pid, 12);
    assert_eq!(rep.longest_lived[0].ending, "exit 0");
}

#[test]
fn fork_and_exec_failures() {
    let mut w = storm(2, 10);
    for i in 0..5 {
        w.fork_failed(100 + i, 100, 1, "bash", 11);
    }
    w.fork_failed(200, 200, 1, "cron", 12);
    for _ in 0..3 {
        w.push("exec_failed", 300, json!({"pid": 100, "tid": 100, "ppid": 1, "proc_id": w.id(100), "comm": "bash",
            "uid": 0, "cgroup": "/", "cgroup_id": 1, "filename": "/usr/local/bin/nope", "errno": 2, "error": "ENOENT"}));
    }
    let rep = report(&w.text());
    let f = &rep.fork_failures;
    assert_eq!(f.total, 6);
    assert_eq!(
        (f.by_errno[0].error, f.by_errno[0].count),
        (Some("EAGAIN"), 5)
    );
    assert_eq!(
        (f.by_errno[1].error, f.by_errno[1].count),
        (Some("ENOMEM"), 1)
    );
    assert_eq!(
        (f.by_process[0].process.pid, f.by_process[0].count),
        (100, 5)
    );
    assert_eq!(rep.totals.fork_failures, 6);
    assert!(
        rep.headline
            .iter()
            .any(|h| h == "6 forks failed: EAGAIN 5, ENOMEM 1"),
        "{:?}",
        rep.headline
    );
    let e = &rep.exec_failures;
    assert_eq!(e.total, 3);
    assert_eq!(
        (e.top[0].filename.as_str(), e.top[0].error, e.top[0].count),
        ("/usr/local/bin/nope", Some("ENOENT"), 3)
    );
    let t = text::render(&rep);
    assert!(t.contains("FORK FAILURES: 6 (EAGAIN 5, ENOMEM 1)"), "{t}");
    assert!(t.contains("FAILED EXECS: 3"), "{t}");
}

#[test]
fn lost_events_say_what_is_uncertain() {
    let mut w = storm(3, 10);
    w.lost(50, "fork", 100)
        .lost(60, "exit", 7)
        .lost(90, "fork", 20);
    let rep = report(&w.text());
    assert_eq!(rep.lost.total, 127);
    assert_eq!(rep.totals.lost_events, 127);
    let fork = &rep.lost.by_kind[0];
    assert_eq!(
        (fork.kind.as_str(), fork.count, fork.first_noticed_ktime_ns),
        ("fork", 120, BASE + 50 * MS)
    );
    assert!(fork.uncertain.contains("lower bounds"));
    assert_eq!(rep.lost.by_kind[1].kind, "exit");
    assert!(
        rep.headline
            .iter()
            .any(|h| h.starts_with("127 events were lost (fork 120, exit 7)"))
    );
    let t = text::render(&rep);
    assert!(t.contains("LOST EVENTS: 127"), "{t}");
    assert!(t.contains("fork 120 (first noticed"), "{t}");
}

#[test]
fn alerts_raised_live_are_listed_not_counted_as_bad_lines() {
    let mut w = storm(3, 10);
    let culprit = w.with(
        100,
        1,
        "bash",
        json!({"alert": "fork_storm", "message": "fork storm: 100 bash"}),
    );
    w.push("alert", 40, culprit.clone());
    w.push("alert_end", 80, culprit);
    let zombie = w.with(
        100,
        1,
        "bash",
        json!({"alert": "zombie_buildup", "message": "zombies: 100 bash holds 60"}),
    );
    w.push("alert", 90, zombie);
    let rep = report(&w.text());
    assert_eq!(rep.input_problems.bad_lines, 0, "alert records are records");
    let got: Vec<(&str, bool)> = rep
        .alerts
        .iter()
        .map(|a| (a.alert.as_str(), a.ended))
        .collect();
    assert_eq!(got, [("fork_storm", true), ("zombie_buildup", false)]);
    assert_eq!(rep.alerts[0].ktime_ns, BASE + 40 * MS);
    let t = text::render(&rep);
    assert!(t.contains("ALERTS raised live by `tracer watch`: 2"), "{t}");
    assert!(t.contains("fork storm: 100 bash"), "{t}");
    assert!(
        t.contains("zombies: 100 bash holds 60 (still on when the recording ended)"),
        "{t}"
    );
}

#[test]
fn text_report_puts_the_culprit_on_the_first_screen() {
    let mut w = storm(300, 2);
    w.raw("not json at all");
    let rep = report(&w.text());
    let t = text::render(&rep);
    let first: Vec<&str> = t.lines().take(15).collect();
    let first = first.join("\n");
    assert!(
        first.contains("busiest forker: pid 100 bash (/usr/bin/bash) in storm.service: 300"),
        "{t}"
    );
    assert!(first.contains("busiest executable: /usr/bin/bash"), "{t}");
    assert!(first.contains("busiest cgroup: storm.service"), "{t}");
    assert!(first.contains("1 line of the input skipped"), "{t}");
    assert!(t.contains("FORK RATE"), "{t}");
    assert!(t.contains("INPUT PROBLEMS"), "{t}");
    assert!(
        t.contains(&format!("events.jsonl:{}: not json", w.lines.len())),
        "{t}"
    );
    for line in t.lines() {
        assert!(line.chars().count() <= 84, "line too wide: {line:?}");
    }
}

#[test]
fn text_report_of_a_quiet_recording() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    let rep = report(&w.text());
    assert_eq!(
        rep.headline,
        vec!["no process was created during the recording (1 records)"]
    );
    let t = text::render(&rep);
    assert!(
        !t.contains("FORK RATE") && !t.contains("TOP FORKERS"),
        "{t}"
    );
}

#[test]
fn json_report_has_the_documented_keys() {
    let rep = report(&zombie_stream().text());
    let v: Value = serde_json::from_str(&serde_json::to_string(&rep).unwrap()).unwrap();
    for key in [
        "report_version",
        "headline",
        "inputs",
        "input_problems",
        "runs",
        "totals",
        "lost",
        "top_forkers",
        "top_executed",
        "timeline",
        "zombies",
        "exits",
        "crash_loops",
        "longest_lived",
        "shortest_lived",
        "fork_failures",
        "exec_failures",
    ] {
        assert!(v.get(key).is_some(), "no {key}");
    }
    assert_eq!(v["report_version"], 1);
    assert_eq!(v["zombies"]["p50_ns"], 2 * MS);
    assert_eq!(v["top_forkers"]["by_parent"][0]["process"]["pid"], 100);
    assert!(
        v["timeline"][0].get("columns").is_none(),
        "terminal-only data stays out"
    );
    assert_eq!(v["runs"][0]["start"], ts(BASE));
    // The documentation lists every top-level key.
    let doc = include_str!("../../../docs/report.md");
    for key in v.as_object().unwrap().keys() {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/report.md does not describe {key}"
        );
    }
}

// ---------------------------------------------------------------------------
// Tree

fn tree_stream() -> W {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .fork(1, 10, 1, "init")
        .exec(2, 10, 1, "/bin/bash")
        .exec(3, 10, 1, "/usr/bin/make");
    for i in 0..4 {
        w.life(10 + i, 100 + i as u32, 10, "make", "/bin/true", 0, 2);
    }
    w.life(20, 110, 10, "make", "/bin/true", 1, 2);
    // A cc with a child of its own: not folded.
    w.fork(30, 120, 10, "make").exec(30, 120, 10, "/usr/bin/cc");
    w.life(31, 121, 120, "cc", "/usr/bin/as", 0, 3);
    w.exit(40, 120, 10, "cc", None, Some(9))
        .reap(41, 120, 10, "cc", Some(MS), Some((10, "make")));
    // Still running at the end, and a zombie at the end.
    w.fork(50, 130, 10, "make")
        .exec(50, 130, 10, "/usr/bin/sleep");
    w.fork(51, 131, 10, "make")
        .exec(51, 131, 10, "/bin/zz")
        .exit(52, 131, 10, "zz", Some(0), None);
    w.process(100, 1, 0, "init", Some("/sbin/init"), "S");
    w
}

#[test]
fn tree_folds_identical_leaves_and_marks_the_end() {
    let (_, h) = load(&tree_stream().text());
    let t = tree::render(&h, &tree::Select::default());
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("1 init  [alive at end"), "{t}");
    assert!(
        lines[1].starts_with("└─ 10 bash → make  [alive at end, ≥ 99.0ms]"),
        "{t}"
    );
    assert!(
        t.contains("├─ 4*[true]  [exit 0, lived 2.0ms, zombie 10.0us]"),
        "{t}"
    );
    assert!(
        t.contains("├─ 110 true  [2.0ms, exit 1, zombie 10.0us]"),
        "{t}"
    );
    assert!(
        t.contains("├─ 120 cc  [10.0ms, SIGKILL, zombie 1.0ms]"),
        "{t}"
    );
    assert!(
        t.contains("│  └─ 121 as  [3.0ms, exit 0, zombie 10.0us]"),
        "{t}"
    );
    assert!(t.contains("├─ 130 sleep  [alive at end, ≥ 50.0ms]"), "{t}");
    assert!(
        t.contains("└─ 131 zz  [1.0ms, exit 0, zombie at end (unreaped 48.0ms)]"),
        "{t}"
    );
    assert_eq!(lines.len(), 8, "{t}");
    // Exec chains: a process in the snapshot that exec'd shows where it started.
    let mut w = W::new();
    w.process(0, 5, 1, "sh", Some("/bin/sh"), "S")
        .exec(1, 5, 1, "/usr/bin/make")
        .exec(2, 5, 1, "/usr/bin/cc");
    let (_, h) = load(&w.text());
    assert!(tree::render(&h, &tree::Select::default()).starts_with("5 sh → make → cc  ["));
}

#[test]
fn uncertain_processes_are_counted_and_marked_in_the_tree() {
    // Marks the last line `uncertain`, as `tracer watch` does after losses.
    fn uncertain(w: &mut W) -> &mut W {
        let last = w.lines.pop().expect("a line");
        let mut v: Value = serde_json::from_str(&last).expect("json");
        v["uncertain"] = json!(true);
        w.lines.push(v.to_string());
        w
    }
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .fork(1, 10, 1, "init")
        .exec(2, 10, 1, "/usr/bin/make");
    // Two like children before the loss, one after: they do not fold together.
    for pid in [100, 101, 102] {
        w.fork(10, pid, 10, "make").exec(10, pid, 10, "/bin/true");
    }
    w.lost(20, "exit", 5);
    for pid in [100, 101] {
        w.exit(30, pid, 10, "true", Some(0), None);
        uncertain(&mut w);
        w.reap(30, pid, 10, "true", None, Some((10, "make")));
        uncertain(&mut w);
    }
    w.exit(30, 102, 10, "true", Some(0), None)
        .reap(30, 102, 10, "true", None, Some((10, "make")));
    // Found gone: a reap with no reaper and no exit.
    w.fork(11, 103, 10, "make").exec(11, 103, 10, "/bin/sleep");
    w.reap(40, 103, 10, "sleep", None, None);
    uncertain(&mut w);
    let text = w.text();
    let rep = report(&text);
    assert_eq!(
        (rep.lost.uncertain_processes, rep.lost.ended_unseen),
        (3, 1)
    );
    assert!(
        rep.headline
            .iter()
            .any(|h| h.ends_with("; 3 processes lived through the losses")),
        "{:?}",
        rep.headline
    );
    let t = text::render(&rep);
    assert!(
        t.contains("uncertain: 3 processes lived through the losses"),
        "{t}"
    );

    let (_, h) = load(&text);
    let t = tree::render(&h, &tree::Select::default());
    assert!(
        t.contains("├─ 2*[true]  [exit 0, lived 20.0ms, zombie 0ns] ?"),
        "{t}"
    );
    assert!(
        t.contains("├─ 102 true  [20.0ms, exit 0, zombie 0ns]\n"),
        "{t}"
    );
    assert!(t.contains("└─ 103 sleep  [ended (exit not seen)] ?"), "{t}");
    assert!(t.lines().next().is_some_and(|l| !l.ends_with('?')), "{t}");
    let doc = tree::doc(&h, &tree::Select::default());
    let marked: Vec<u32> = doc
        .processes
        .iter()
        .filter(|n| n.uncertain)
        .map(|n| n.pid)
        .collect();
    assert_eq!(marked, [100, 101, 103]);
}

#[test]
fn tree_roots_at_pid_or_comm() {
    let (_, h) = load(&tree_stream().text());
    let by_pid = tree::render(
        &h,
        &tree::Select {
            pids: vec![120],
            ..Default::default()
        },
    );
    assert_eq!(by_pid.lines().count(), 2, "{by_pid}");
    assert!(by_pid.starts_with("120 cc  ["), "{by_pid}");
    assert!(by_pid.contains("└─ 121 as"), "{by_pid}");
    // By name, topmost matches only: `as` (121) inside cc is not a second root.
    let by_comm = tree::render(
        &h,
        &tree::Select {
            pids: vec![],
            ..tree::Select::by_comm("^cc$")
        },
    );
    assert_eq!(by_comm, by_pid);
    // make is an exec'd name of pid 10, not its comm at fork.
    let make = tree::roots(
        &h,
        &tree::Select {
            pids: vec![],
            ..tree::Select::by_comm("^make$")
        },
    );
    assert_eq!(make.len(), 1);
    assert_eq!(h.procs[make[0]].pid(), 10);
    assert!(
        tree::roots(
            &h,
            &tree::Select {
                pids: vec![99999],
                ..Default::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn tree_json_is_unfolded_with_consistent_links() {
    let (_, h) = load(&tree_stream().text());
    let doc = tree::doc(&h, &tree::Select::default());
    assert_eq!(doc.roots, vec![0]);
    assert_eq!(doc.processes.len(), h.procs.len());
    for n in &doc.processes {
        for &c in &n.children {
            assert_eq!(doc.processes[c].parent, Some(n.id));
        }
        if let Some(p) = n.parent {
            assert!(p < n.id, "parents come first");
        }
    }
    let cc = doc.processes.iter().find(|n| n.pid == 120).unwrap();
    assert_eq!(
        (cc.signal, cc.ending.as_str(), cc.chain.clone()),
        (Some(9), "SIGKILL", vec!["cc".to_string()])
    );
    let zz = doc.processes.iter().find(|n| n.pid == 131).unwrap();
    assert!(zz.zombie_at_end && !zz.alive_at_end);
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(v["processes"][0]["origin"], "snapshot");
}

#[test]
fn deep_trees_do_not_indent_forever() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    for i in 0..2000u32 {
        let parent = if i == 0 { 1 } else { 1000 + i - 1 };
        w.fork(u64::from(i), 1000 + i, parent, "bomb");
    }
    let (_, h) = load(&w.text());
    let t = tree::render(&h, &tree::Select::default());
    assert_eq!(t.lines().count(), 2001);
    let widest = t.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 200, "{widest}");
    assert!(
        t.contains("(2000) 2999 bomb"),
        "{}",
        t.lines().last().unwrap()
    );
}

#[test]
fn taking_the_records_builds_the_same_history() {
    let mut r = read(&[("z", &zombie_stream().text())]);
    let built = History::build(&r);
    let n = r.records.len() as u64;
    let taken = History::take(&mut r);
    assert!(r.records.is_empty());
    assert_eq!(built.procs, taken.procs);
    assert_eq!(built.lost, taken.lost);
    // The counts stay with the records.
    let rep = stats::compute(&r, &taken, Options::default());
    assert_eq!(rep.totals.records, n);
    assert_eq!(rep.inputs[0].records, n);
}

// ---------------------------------------------------------------------------
// Who forked: the program the parent ran at the fork, not the one it ran last

/// A `run.sh` (pid 300, started by systemd) that starts 50 helpers, which all exit
/// 1, and then execs its service binary: the forks are run.sh's, not server's.
fn script_then_service() -> W {
    let mut w = W::new();
    w.process(0, 1, 0, "systemd", Some("/usr/lib/systemd/systemd"), "S")
        .fork(1, 300, 1, "systemd")
        .exec(2, 300, 1, "/opt/app/run.sh");
    for i in 0..50 {
        w.life(
            10 + i * 2,
            3000 + i as u32,
            300,
            "run.sh",
            "/opt/app/helper",
            1,
            1,
        );
    }
    w.exec(200, 300, 1, "/opt/app/server");
    w
}

#[test]
fn a_forker_that_execs_later_is_named_by_the_program_that_forked() {
    let text_in = script_then_service().text();
    let rep = report(&text_in);
    let p = &rep.top_forkers.by_parent[0];
    assert_eq!((p.process.pid, p.children), (300, 50));
    assert_eq!(p.process.chain, ["run.sh", "server"]);
    assert_eq!(p.process.exe.as_deref(), Some("/opt/app/server"));
    assert_eq!(p.process.forked_as.as_deref(), Some("/opt/app/run.sh"));
    let as_: Vec<(&str, u64)> = (p.forked_as.iter())
        .map(|c| (c.name.as_str(), c.count))
        .collect();
    assert_eq!(as_, [("/opt/app/run.sh", 50)]);
    assert!(
        rep.headline[0].starts_with(
            "busiest forker: pid 300 run.sh → server (forked as /opt/app/run.sh) in storm.service: \
             50 children"
        ),
        "{:?}",
        rep.headline
    );
    // The crash loop is of helpers started by run.sh.
    let l = &rep.crash_loops[0];
    assert_eq!(
        (l.exe.as_deref(), l.failures),
        (Some("/opt/app/helper"), 50)
    );
    let parent = l.parent.as_ref().expect("parent known");
    assert_eq!(parent.forked_as.as_deref(), Some("/opt/app/run.sh"));
    assert!(
        rep.headline.iter().any(|s| s
            == "crash loop: /opt/app/helper failed 50 times under pid 300 run.sh → server \
                (forked as /opt/app/run.sh)"),
        "{:?}",
        rep.headline
    );
    let t = text::render(&rep);
    assert!(
        t.contains("run.sh → server (forked as /opt/app/run.sh)"),
        "{t}"
    );
    assert!(!t.contains("pid 300 server"), "{t}");

    // Flame graph: the helpers sit under run.sh, the service is run.sh's successor.
    let (_, h) = load(&text_in);
    let f = super::flamegraph::folded(&h, &h.roots());
    assert_eq!(
        f.lines,
        ["systemd;run.sh;helper 50", "systemd;run.sh;server 1"],
        "{f:?}"
    );

    // Tree: the parent shows its chain, the children which program forked them.
    let tr = tree::render(&h, &tree::Select::default());
    assert!(tr.contains("└─ 300 run.sh → server  [alive at end"), "{tr}");
    assert!(
        tr.contains("   └─ 50*[helper (forked by run.sh)]  [exit 1, lived 1.0ms"),
        "{tr}"
    );
    let doc = tree::doc(&h, &tree::Select::default());
    let helper = doc
        .processes
        .iter()
        .find(|n| n.pid == 3000)
        .expect("helper");
    assert_eq!(helper.forked_by.as_deref(), Some("run.sh"));
    let service = doc.processes.iter().find(|n| n.pid == 300).expect("run.sh");
    assert_eq!(
        service.forked_by, None,
        "systemd never exec'd after forking it"
    );
}

#[test]
fn a_parent_that_forks_under_two_programs_is_named_by_the_busier() {
    let mut w = script_then_service();
    for i in 0..60 {
        w.life(
            300 + i * 2,
            4000 + i as u32,
            300,
            "server",
            "/opt/app/worker",
            0,
            1,
        );
    }
    let rep = report(&w.text());
    let p = &rep.top_forkers.by_parent[0];
    assert_eq!(p.children, 110);
    let as_: Vec<(&str, u64)> = (p.forked_as.iter())
        .map(|c| (c.name.as_str(), c.count))
        .collect();
    assert_eq!(as_, [("/opt/app/run.sh", 50), ("/opt/app/server", 60)]);
    assert_eq!(p.process.forked_as.as_deref(), Some("/opt/app/server"));
    // Forks by the executable that called fork; the children's programs apart.
    let by: Vec<(Option<&str>, u64, &str)> = (rep.top_forkers.by_executable.iter())
        .take(2)
        .map(|g| (g.key.as_deref(), g.forks, g.children_ran[0].name.as_str()))
        .collect();
    assert_eq!(
        by,
        [
            (Some("/opt/app/server"), 60, "/opt/app/worker"),
            (Some("/opt/app/run.sh"), 50, "/opt/app/helper"),
        ]
    );
    let t = text::render(&rep);
    assert!(
        t.contains("forked as /opt/app/run.sh 50, then /opt/app/server 60"),
        "{t}"
    );
    assert!(t.contains("by executable that forked"), "{t}");
    assert!(t.contains("its children ran /opt/app/worker 60"), "{t}");
    // The crash loop (helpers) names the program that started them, the busier
    // one overall notwithstanding.
    let l = &rep.crash_loops[0];
    assert_eq!(
        l.parent.as_ref().and_then(|p| p.forked_as.as_deref()),
        Some("/opt/app/run.sh")
    );
}

#[test]
fn tree_folds_identical_subtrees_as_pstree_does() {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S")
        .fork(1, 10, 1, "init")
        .exec(1, 10, 1, "/usr/bin/bash");
    // 200 subshells, each running one sleep.
    for i in 0..200u32 {
        let (sub, kid) = (1000 + 2 * i, 1001 + 2 * i);
        let t = 10 + u64::from(i);
        w.fork(t, sub, 10, "bash");
        w.life(t, kid, sub, "bash", "/bin/sleep", 0, 1);
        w.exit(t + 2, sub, 10, "bash", Some(0), None).reap(
            t + 2,
            sub,
            10,
            "bash",
            Some(10_000),
            Some((10, "bash")),
        );
    }
    // 3 subshells each running a sleep and a true: folded, drawn once below.
    for i in 0..3u32 {
        let (sub, a, b) = (5000 + 3 * i, 5001 + 3 * i, 5002 + 3 * i);
        let t = 300 + u64::from(i) * 5;
        w.fork(t, sub, 10, "bash");
        w.life(t, a, sub, "bash", "/bin/sleep", 0, 1).life(
            t + 1,
            b,
            sub,
            "bash",
            "/bin/true",
            0,
            1,
        );
        w.exit(t + 3, sub, 10, "bash", Some(0), None).reap(
            t + 3,
            sub,
            10,
            "bash",
            Some(10_000),
            Some((10, "bash")),
        );
    }
    // One whose sleep failed: a different subtree.
    w.fork(400, 6000, 10, "bash")
        .life(400, 6001, 6000, "bash", "/bin/sleep", 1, 1);
    w.exit(402, 6000, 10, "bash", Some(0), None);
    let (_, h) = load(&w.text());
    let t = tree::render(&h, &tree::Select::default());
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[1].starts_with("└─ 10 bash  [alive at end"), "{t}");
    assert!(
        lines[2].starts_with("   ├─ 200*[bash───sleep]  [exit 0, lived 2.0ms, zombie 10.0us]"),
        "{t}"
    );
    assert!(
        lines[3].starts_with(
            "   ├─ 3*[bash]  [exit 0, lived 3.0ms, zombie 10.0us; each with the subtree below]"
        ),
        "{t}"
    );
    assert!(
        lines[4].starts_with("   │  ├─ 5001 sleep  [1.0ms, exit 0"),
        "{t}"
    );
    assert!(
        lines[5].starts_with("   │  └─ 5002 true  [1.0ms, exit 0"),
        "{t}"
    );
    assert!(
        lines[6].starts_with("   └─ 6000 bash  [2.0ms, exit 0"),
        "{t}"
    );
    assert!(
        lines[7].starts_with("      └─ 6001 sleep  [1.0ms, exit 1"),
        "{t}"
    );
    assert_eq!(lines.len(), 8, "{t}");
}

// ---------------------------------------------------------------------------
// The `end` record

#[test]
fn end_record_is_the_end_of_the_run_and_a_file_without_one_is_named() {
    let mut w = storm(3, 100);
    let last_event = w.lines.len();
    w.push(
        "end",
        4000,
        json!({"reason": "duration", "records": {"fork": 6}, "lost": {"fork": 0}, "records_not_written": 0}),
    );
    let ended = w.text();
    let cut: String = w.lines[..last_event]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();

    let r = read(&[("ended.jsonl", &ended)]);
    assert_eq!(r.bad_total(), 0, "{:?}", r.first_bad);
    assert_eq!(r.inputs[0].end.as_deref(), Some("duration"));
    let h = History::build(&r);
    let rep = stats::compute(&r, &h, Options::default());
    // The run lasts until the end record, not until its last event (t = 310 ms).
    assert_eq!(rep.runs[0].duration_ns, 4000 * MS);
    let out = text::render(&rep);
    assert!(!out.contains("without an end record"), "{out}");

    let r = read(&[("cut.jsonl", &cut)]);
    assert_eq!(r.inputs[0].end, None);
    let h = History::build(&r);
    let out = text::render(&stats::compute(&r, &h, Options::default()));
    assert!(
        out.contains(
            "cut.jsonl: ended without an end record: tracer was killed or is still running"
        ),
        "{out}"
    );
    // An end without its reason is a bad line, not a silent end.
    let bad = ended.replace(r#""reason":"duration","#, "");
    let r = read(&[("bad.jsonl", &bad)]);
    assert_eq!(r.bad.get(&BadKind::MissingField), Some(&1));
}

// ---------------------------------------------------------------------------
// --since/--until and --uid/--comm/--cgroup

fn windowed_stream() -> W {
    let mut w = W::new();
    w.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    w.life(100, 10, 1, "init", "/bin/sleep", 0, 50);
    w.cgroup = Some("/user.slice/user-1000.slice".into());
    w.life(5000, 20, 1, "init", "/bin/echo", 0, 50);
    w.lost(6000, "exec", 3);
    w
}

fn cut_report(since: Option<super::window::When>, until: Option<super::window::When>) -> Report {
    let mut r = read(&[("events.jsonl", &windowed_stream().text())]);
    super::window::cut(&mut r, since, until).expect("records in the window");
    let h = History::take(&mut r);
    stats::compute(&r, &h, Options::default())
}

fn executed(rep: &Report) -> Vec<&str> {
    rep.top_executed
        .iter()
        .map(|e| e.filename.as_str())
        .collect()
}

#[test]
fn since_and_until_cut_the_recording() {
    use super::window::When;
    use std::time::Duration;
    let at = |ms: u64| When::At(i128::from(WALL0) + i128::from(BASE + ms * MS));
    let late = cut_report(Some(at(2000)), None);
    assert_eq!(executed(&late), ["/bin/echo"]);
    assert_eq!(
        late.runs[0].start.as_deref(),
        Some(ts(BASE + 2000 * MS).as_str())
    );
    assert_eq!(
        late.runs[0].end.as_deref(),
        Some(ts(BASE + 6000 * MS).as_str())
    );
    assert_eq!(late.lost.total, 3, "losses in the window stay");
    // The same window, counted back from the last record (6 s).
    let rel = cut_report(Some(When::BeforeEnd(Duration::from_secs(4))), None);
    assert_eq!(executed(&rel), ["/bin/echo"]);
    assert_eq!(rel.runs[0].start, late.runs[0].start);
    // Up to 1 s after the first record: the sleep only, the loss is after.
    let early = cut_report(None, Some(When::AfterStart(Duration::from_secs(1))));
    assert_eq!(executed(&early), ["/bin/sleep"]);
    assert_eq!(early.lost.total, 0);
    assert_eq!(
        early.runs[0].end.as_deref(),
        Some(ts(BASE + 1000 * MS).as_str())
    );
    // A window with nothing in it, and one backwards: one line each.
    let mut r = read(&[("events.jsonl", &windowed_stream().text())]);
    let e = super::window::cut(&mut r, Some(at(2000)), Some(at(3000))).unwrap_err();
    assert!(
        e.starts_with("no records between") && !e.contains('\n'),
        "{e}"
    );
    let e = super::window::cut(&mut r, Some(at(3000)), Some(at(2000))).unwrap_err();
    assert!(e.contains("is after --until"), "{e}");
}

#[test]
fn process_filters_choose_what_is_counted() {
    use crate::filter::{ProcFilter, parse_cgroup_prefix, parse_comm_regex};
    let count = |f: ProcFilter| {
        let (r, mut h) = load(&windowed_stream().text());
        h.retain(|p| super::window::proc_matches(&f, p));
        let rep = stats::compute(&r, &h, Options::default());
        (
            rep.totals.processes,
            executed(&rep).join(","),
            rep.lost.total,
        )
    };
    let comm = |re: &str| ProcFilter {
        comm: Some(parse_comm_regex(re).unwrap()),
        ..Default::default()
    };
    // By a program it ran (its comm at fork was init's).
    assert_eq!(count(comm("^sleep$")), (1, "/bin/sleep".into(), 3));
    assert_eq!(count(comm("^(sleep|echo)$")).0, 2);
    assert_eq!(count(comm("^init$")), (1, String::new(), 3));
    let cg = ProcFilter {
        cgroup: Some(parse_cgroup_prefix("/user.slice").unwrap()),
        ..Default::default()
    };
    assert_eq!(count(cg), (1, "/bin/echo".into(), 3));
    let uid = |u: u32| ProcFilter {
        uids: vec![u],
        ..Default::default()
    };
    assert_eq!(count(uid(0)).0, 3);
    assert_eq!(count(uid(1000)).0, 0);
    // Parents and children stay consistent after the others are gone.
    let (_, mut h) = load(&windowed_stream().text());
    h.retain(|p| p.pid() != 1);
    for (i, p) in h.procs.iter().enumerate() {
        assert_eq!(p.parent, None, "{i}: its parent was not kept");
        assert_eq!(h.find(p.run, p.id), Some(i));
    }
}

/// Forks are ranked by the unit and container the records name, over all hosts;
/// container ids stay whole in the JSON and the text.
#[test]
fn top_forkers_by_unit_and_container() {
    const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const POD: &str = "5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a";
    let scope = format!("cri-containerd-{ID}.scope");
    let mut w = W::new();
    w.process(0, 1, 0, "systemd", Some("/usr/lib/systemd/systemd"), "S");
    let mut fork = |t: u64, pid: u32, unit: Option<&str>, cid: Option<&str>, pod: Option<&str>| {
        let parent = w.id(1);
        w.starts.insert(pid, (BASE + t * MS) / 10_000_000);
        let v = w.with(
            pid,
            1,
            "sh",
            json!({"parent_proc_id": parent, "thread": false, "clone_flags": 17,
                   "unit": unit, "container_id": cid, "pod_uid": pod}),
        );
        w.push("fork", t, v);
    };
    for i in 0..4 {
        fork(10 + i, 300 + i as u32, Some("nginx.service"), None, None);
    }
    for i in 0..2 {
        fork(20 + i, 400 + i as u32, Some(&scope), Some(ID), Some(POD));
    }
    fork(30, 500, None, None, None);
    let rep = report(&w.text());
    let s = &rep.top_forkers.by_service;
    assert_eq!(s.forks, 7);
    let units: Vec<(Option<&str>, u64)> = (s.by_unit.iter())
        .map(|u| (u.unit.as_deref(), u.forks))
        .collect();
    assert_eq!(
        units,
        [(Some("nginx.service"), 4), (Some(&*scope), 2), (None, 1)]
    );
    assert_eq!(s.container_forks, 2);
    let c = &s.by_container[0];
    assert_eq!(
        (c.container_id.as_str(), c.pod_uid.as_deref(), c.forks),
        (ID, Some(POD), 2)
    );

    let v = serde_json::to_value(&rep).unwrap();
    let by = &v["top_forkers"]["by_service"];
    assert_eq!(
        by["by_unit"][0],
        json!({"unit": "nginx.service", "forks": 4})
    );
    assert_eq!(by["by_container"][0]["container_id"], json!(ID));
    assert_eq!(by["forks_over_cap"], json!(0));

    let t = text::render(&rep);
    let at = t.find("by unit (all hosts)").expect(&t);
    let table: Vec<&str> = t[at..].lines().take(7).collect();
    assert!(
        table[1].contains("nginx.service") && table[1].ends_with(" 4"),
        "{t}"
    );
    assert!(
        table[2].starts_with("    cri-containerd-3f2a") && table[2].ends_with(" 2"),
        "{t}"
    );
    assert!(
        table[3].contains("(no unit)") && table[3].ends_with(" 1"),
        "{t}"
    );
    assert!(table[4].starts_with("  by container"), "{t}");
    assert_eq!(table[5], format!("    {ID}        2"));
    assert_eq!(table[6], format!("      in pod {POD}"));
}
