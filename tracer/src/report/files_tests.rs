//! Tests of `tracer report` on what the output file machinery writes: `meta`
//! headers, rotated files that each start with a `process` snapshot, zstd
//! compressed inputs.

use std::io::Write;

use serde_json::{Value, json};

use super::history::{Ending, History, Origin};
use super::reader::{self, BadKind, ReadError, Records};
use super::stats::{self, Options};

const MS: u64 = 1_000_000;
const BASE: u64 = 5_000_000_000_000;
/// Wall clock at ktime 0.
const WALL0: i128 = 1_795_000_000_000_000_000;

/// Lines of one tracer run: `seq` continues from file to file, as the writer does.
struct Run {
    seq: u64,
}

impl Run {
    fn line(&mut self, ty: &str, t_ms: u64, fields: Value) -> String {
        self.seq += 1;
        let k = BASE + t_ms * MS;
        let mut v = json!({
            "seq": self.seq, "type": ty, "ts": super::walltime::rfc3339(WALL0 + i128::from(k)),
            "ktime_ns": k,
            "host": "web-1", "boot_id": "boot-a",
        });
        for (key, val) in fields.as_object().expect("object") {
            v[key] = val.clone();
        }
        v.to_string() + "\n"
    }

    fn meta(&mut self, t_ms: u64) -> String {
        self.line(
            "meta",
            t_ms,
            json!({"tracer_version": "0.1.0", "schema_version": 1, "kernel": "6.1.0-test",
                   "options": {"output": "/var/log/t.jsonl", "rotate_size": 1048576}}),
        )
    }
}

fn subject(pid: u32, ppid: u32, start: u64, comm: &str) -> Value {
    json!({"pid": pid, "tid": pid, "ppid": ppid, "proc_id": format!("{pid}-{start}"),
           "comm": comm, "uid": 0, "cgroup": "/", "cgroup_id": 1})
}

fn with(mut v: Value, extra: Value) -> Value {
    for (key, val) in extra.as_object().expect("object") {
        v[key] = val.clone();
    }
    v
}

fn process(pid: u32, ppid: u32, start: u64, comm: &str, exe: &str, state: &str) -> Value {
    with(
        subject(pid, ppid, start, comm),
        json!({"filename": exe, "argv": [comm], "state": state}),
    )
}

/// Two files of one run, as rotation leaves them: the second starts with its
/// `meta` and a snapshot naming processes the first already showed.
fn rotated() -> (String, String) {
    let mut r = Run { seq: 0 };
    let mut a = r.meta(0);
    a += &r.line("process", 0, process(1, 0, 1, "systemd", "/sbin/init", "S"));
    a += &r.line(
        "process",
        0,
        process(100, 1, 50, "bash", "/usr/bin/bash", "S"),
    );
    a += &r.line(
        "fork",
        10,
        with(
            subject(1000, 100, 500, "bash"),
            json!({"parent_proc_id": "100-50", "thread": false, "clone_flags": 17}),
        ),
    );
    a += &r.line(
        "exec",
        11,
        with(
            subject(1000, 100, 500, "sleep"),
            json!({"filename": "/bin/sleep", "argv": ["sleep", "5"], "argv_truncated": false,
                   "old_tid": null}),
        ),
    );
    let mut b = r.meta(30);
    b += &r.line(
        "process",
        30,
        process(1, 0, 1, "systemd", "/sbin/init", "S"),
    );
    b += &r.line(
        "process",
        30,
        process(100, 1, 50, "bash", "/usr/bin/bash", "S"),
    );
    b += &r.line(
        "process",
        30,
        process(1000, 100, 500, "sleep", "/bin/sleep", "S"),
    );
    b += &r.line(
        "exit",
        40,
        with(
            subject(1000, 100, 500, "sleep"),
            json!({"exit_code": 0, "signal": null, "signal_name": null, "core_dumped": false,
                   "lifetime_ns": 30 * MS, "thread": false}),
        ),
    );
    b += &r.line(
        "reap",
        41,
        with(
            subject(1000, 100, 500, "sleep"),
            json!({"zombie_ns": MS, "reaper_pid": 100, "reaper_comm": "bash", "autoreap": false}),
        ),
    );
    (a, b)
}

fn read(inputs: &[(&str, &[u8])]) -> Records {
    reader::read_bytes(inputs).expect("readable")
}

fn figures(r: &Records) -> Value {
    let h = History::build(r);
    let report = stats::compute(r, &h, Options::default());
    let mut v = serde_json::to_value(&report).unwrap();
    // What differs between a file and its compressed copy: its name and size.
    v.as_object_mut().unwrap().remove("inputs");
    v
}

#[test]
fn meta_records_are_run_information_not_bad_lines() {
    let (a, b) = rotated();
    let r = read(&[("t.jsonl.1", a.as_bytes()), ("t.jsonl", b.as_bytes())]);
    assert_eq!(r.bad_total(), 0, "{:?}", r.first_bad);
    assert_eq!(r.inputs.iter().map(|i| i.missing).sum::<u64>(), 0);
    assert_eq!(r.inputs.iter().map(|i| i.seq_restarts).sum::<u64>(), 0);
    assert_eq!(r.inputs[0].records, 5);
    assert_eq!(r.inputs[1].records, 6);
    assert_eq!(r.runs.len(), 1);
    let run = &r.runs[0];
    assert_eq!(run.meta.len(), 2);
    assert_eq!(run.meta[0].kernel.as_deref(), Some("6.1.0-test"));
    assert_eq!(run.meta[0].tracer_version.as_deref(), Some("0.1.0"));
    assert_eq!(run.meta[0].schema_version, Some(1));
    let options: Value = serde_json::from_str(run.meta[1].options.as_deref().unwrap()).unwrap();
    assert_eq!(options["rotate_size"], json!(1048576));
    assert_eq!(run.records.get("meta"), Some(&2));
    // A meta is not an event: none of them is among the records.
    assert!(
        r.records
            .iter()
            .all(|rec| rec.record.body.type_name() != "meta")
    );
}

#[test]
fn rotated_files_together_have_no_duplicate_processes() {
    let (a, b) = rotated();
    let r = read(&[("t.jsonl.1", a.as_bytes()), ("t.jsonl", b.as_bytes())]);
    let h = History::build(&r);
    assert_eq!(h.procs.len(), 3, "{:#?}", h.procs);
    let sleep = h.procs.iter().find(|p| p.pid() == 1000).unwrap();
    assert_eq!(sleep.origin, Origin::Fork);
    assert_eq!(sleep.ending(), Ending::Exited(0));
    assert!(sleep.argv.is_empty(), "the snapshot's argv is not taken");
    assert_eq!(sleep.state, None, "nor its state");
    // It ran bash's image until its exec: the snapshot's /bin/sleep is not its start.
    assert_eq!(
        sleep.chain(),
        vec![b"sleep".to_vec()],
        "what it ran: its exec only"
    );
    let report = stats::compute(&r, &h, Options::default());
    assert_eq!(report.totals.processes, 3);
    assert_eq!(report.totals.forked, 1);
    assert_eq!(report.totals.in_snapshot, 2);
    assert_eq!(report.input_problems.missing_lines, 0);
    // The order the files are given in does not matter.
    let swapped = read(&[("t.jsonl", b.as_bytes()), ("t.jsonl.1", a.as_bytes())]);
    assert_eq!(figures(&swapped), figures(&r));
}

#[test]
fn a_rotated_file_alone_is_whole() {
    let (_, b) = rotated();
    let r = read(&[("t.jsonl", b.as_bytes())]);
    let h = History::build(&r);
    assert_eq!(h.procs.len(), 3);
    let sleep = h.procs.iter().find(|p| p.pid() == 1000).unwrap();
    assert_eq!(sleep.origin, Origin::Snapshot);
    assert_eq!(sleep.ending(), Ending::Exited(0));
    assert_eq!(
        sleep.parent.map(|i| h.procs[i].pid()),
        Some(100),
        "parent from the snapshot"
    );
    assert_eq!(r.bad_total(), 0);
    assert_eq!(
        r.inputs[0].missing, 0,
        "seq starts where the last file ended"
    );
}

fn zstd(data: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn zstd_inputs_are_read_directly_whatever_their_name() {
    let (a, b) = rotated();
    let plain = read(&[("t.jsonl.1", a.as_bytes()), ("t.jsonl", b.as_bytes())]);
    let za = zstd(a.as_bytes());
    // Two frames back to back (`cat x.zst y.zst`) are one stream.
    let mut zb = zstd(&b.as_bytes()[..100]);
    zb.extend(zstd(&b.as_bytes()[100..]));
    let packed = read(&[("t.jsonl.1.zst", &za), ("renamed", &zb)]);
    assert_eq!(figures(&packed), figures(&plain));
    assert_eq!(packed.bad_total(), 0);
    assert_eq!(
        packed.inputs[0].bytes,
        za.len() as u64,
        "the compressed size"
    );
    assert_eq!(packed.inputs[0].lines, plain.inputs[0].lines);
}

#[test]
fn zstd_cut_short_keeps_the_lines_before_and_counts_the_cut() {
    // Lines that do not compress to nothing, enough for several zstd blocks
    // (128 KiB each), so the decoder gives some out before the cut.
    let mut r = Run { seq: 0 };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut big = String::new();
    for i in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let comm = format!("c{x:016x}");
        big += &r.line(
            "process",
            i,
            process(1000 + i as u32, 1, i, &comm, "/bin/x", "S"),
        );
    }
    let z = zstd(big.as_bytes());
    let cut = &z[..z.len() * 3 / 4];
    let r = read(&[("t.jsonl.1.zst", cut)]);
    assert!(!r.records.is_empty(), "{:?} {:?}", r.inputs, r.first_bad);
    assert_eq!(
        r.bad.get(&BadKind::Truncated),
        Some(&1),
        "{:?}",
        r.first_bad
    );
    assert!(r.first_bad[0].detail.contains("zstd"), "{:?}", r.first_bad);
}

#[test]
fn gzip_is_still_refused_with_what_to_do() {
    let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
    match reader::read_bytes(&[("old.jsonl.gz", &gz)]) {
        Err(e @ ReadError::Compressed { .. }) => assert!(e.to_string().contains("zcat")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn files_read_in_parallel_give_what_reading_them_in_turn_gives() {
    // Rotated files of one run (one compressed), a second host, a bad line: read
    // from disk by the thread pool, and from memory one after the other.
    let (a, b) = rotated();
    let other = a.replace("\"web-1\"", "\"web-2\"") + "not json\n";
    let bz = zstd(b.as_bytes());
    let inputs: [(&str, &[u8]); 4] = [
        ("a.jsonl", a.as_bytes()),
        ("b.jsonl.zst", &bz),
        ("other.jsonl", other.as_bytes()),
        ("a-again.jsonl", a.as_bytes()),
    ];
    let dir = std::env::temp_dir().join(format!("tracer-report-par-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sources = Vec::new();
    for (name, data) in &inputs {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        sources.push(reader::Source::File(path));
    }
    let mut from_disk =
        reader::read_all(&sources, &mut super::progress::Progress::quiet()).expect("readable");
    std::fs::remove_dir_all(&dir).unwrap();
    // Named by path from disk: compare by file name.
    for b in &mut from_disk.first_bad {
        b.input = b.input.rsplit('/').next().unwrap().to_string();
    }
    let in_turn = read(&inputs);
    assert_eq!(from_disk.records, in_turn.records);
    assert_eq!(from_disk.runs, in_turn.runs);
    assert_eq!(from_disk.bad, in_turn.bad);
    assert_eq!(from_disk.duplicates, in_turn.duplicates);
    assert!(from_disk.duplicates > 0);
    let names = |r: &Records| -> Vec<String> {
        r.inputs
            .iter()
            .map(|i| i.name.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&from_disk),
        ["a.jsonl", "b.jsonl.zst", "other.jsonl", "a-again.jsonl"]
    );
    assert_eq!(names(&from_disk), names(&in_turn));
    assert_eq!(from_disk.first_bad.len(), 1);
    assert_eq!(from_disk.first_bad, in_turn.first_bad);
    assert_eq!(figures(&from_disk), figures(&in_turn));
}
