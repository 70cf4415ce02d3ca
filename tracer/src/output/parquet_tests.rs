//! The Parquet sink, read back with the parquet crate's own reader: every row
//! holds what the JSON Lines line of the same record holds, column by field.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value, json};

use super::parquet::*;
use crate::event::Comm;
use crate::output::{JsonlWriter, RunInfo};
use crate::record::{
    Alert, AlertExit, AlertKind, AlertProc, Body, ProcId, ReapWindow, Record, Subject,
};

/// 2026-11-18T23:59:59Z at ktime 0: records a second or more in cross midnight.
const OFFSET: i128 = 1_795_046_399_000_000_000;

fn info() -> RunInfo {
    RunInfo {
        host: "web/1".into(),
        boot_id: "0b1c-boot".into(),
        realtime_offset_ns: OFFSET,
    }
}

fn subject(pid: u32) -> Subject {
    Subject {
        pid,
        tid: pid + 1,
        ppid: 1,
        proc_id: ProcId {
            pid,
            start_ticks: 5821,
        },
        comm: Comm::new(b"ba\xffsh"),
        uid: Some(1000),
        cgroup_id: 77,
        cgroup: Some(Arc::from("/system.slice/x.service")),
        unit: Some(Arc::from("x.service")),
        container_id: None,
        pod_uid: Some(Arc::from("5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a")),
    }
}

fn rec(ktime_ns: u64, body: Body) -> Record {
    let subject = (!matches!(body, Body::Lost { .. } | Body::End { .. })).then(|| subject(1240));
    Record {
        ktime_ns,
        subject,
        body,
        uncertain: false,
    }
}

fn alert(end: bool) -> Alert {
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
        figures: vec![("crashes".into(), 5), ("within_ns".into(), 120_000_000)],
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
        errno: None,
        what: "failed 5 times".into(),
        message: None,
    }
}

/// One record of every type, with the strings the kernel can hand us.
fn every_type() -> Vec<Record> {
    let mut uncertain_exit = rec(
        500_000_000,
        Body::Exit {
            exit_code: None,
            signal: Some(9),
            core_dumped: true,
            lifetime_ns: None,
            thread: false,
        },
    );
    uncertain_exit.uncertain = true;
    vec![
        rec(
            100_000_000,
            Body::Process {
                filename: None,
                argv: vec![],
                state: Some('Z'),
                argv_redacted: false,
            },
        ),
        rec(
            200_000_000,
            Body::Fork {
                parent_proc_id: Some(ProcId {
                    pid: 1,
                    start_ticks: 3,
                }),
                thread: false,
                clone_flags: Some(0x1200011),
            },
        ),
        rec(
            300_000_000,
            Body::Exec {
                filename: b"/usr/bin/ls".to_vec(),
                argv: vec![b"ls".to_vec(), b"caf\xe9".to_vec(), b"\\x41".to_vec()],
                argv_truncated: true,
                argv_redacted: true,
                old_tid: Some(1241),
            },
        ),
        rec(
            400_000_000,
            Body::ExecFailed {
                filename: b"nope".to_vec(),
                errno: 2,
            },
        ),
        uncertain_exit,
        rec(
            600_000_000,
            Body::Reap {
                zombie_ns: Some(1000),
                reaper_pid: Some(1),
                reaper_comm: Some(Comm::new(b"systemd")),
                autoreap: false,
                inferred: Some(ReapWindow {
                    after_ns: None,
                    before_ns: 600_000_000,
                }),
            },
        ),
        rec(700_000_000, Body::ForkFailed { errno: 11 }),
        rec(
            800_000_000,
            Body::Lost {
                kind: "exec".into(),
                count: 12,
            },
        ),
        rec(900_000_000, Body::Alert(Box::new(alert(false)))),
        // After midnight (UTC): the next date's partition.
        rec(1_000_000_000, Body::Alert(Box::new(alert(true)))),
        rec(
            1_100_000_000,
            Body::End {
                reason: "signal".into(),
                records: vec![("exec".into(), 1), ("meta".into(), 1)],
                lost: vec![("fork".into(), 0), ("exec".into(), 12)],
                not_written: 3,
            },
        ),
    ]
}

/// Every row of every file, as column name → JSON value (null columns left out).
fn read_rows(files: &[PathBuf]) -> Vec<Map<String, Value>> {
    let mut rows = Vec::new();
    for path in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch: RecordBatch = batch.unwrap();
            assert_eq!(batch.schema(), schema());
            for i in 0..batch.num_rows() {
                rows.push(row_values(&batch, i));
            }
        }
    }
    rows.sort_by_key(|r| r["seq"].as_u64());
    rows
}

fn row_values(batch: &RecordBatch, i: usize) -> Map<String, Value> {
    let mut m = Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        if col.is_null(i) {
            continue;
        }
        let v = match field.data_type() {
            DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(i)),
            DataType::Int32 => json!(col.as_primitive::<Int32Type>().value(i)),
            DataType::Boolean => json!(col.as_boolean().value(i)),
            DataType::Utf8 => json!(col.as_string::<i32>().value(i)),
            DataType::Timestamp(..) => {
                json!(col.as_primitive::<TimestampNanosecondType>().value(i))
            }
            DataType::List(_) => {
                let list = col.as_list::<i32>().value(i);
                let s = list.as_string::<i32>();
                json!((0..s.len()).map(|j| s.value(j)).collect::<Vec<_>>())
            }
            t => panic!("column {} has type {t}", field.name()),
        };
        m.insert(field.name().clone(), v);
    }
    m
}

/// Writes the records (after a `meta` row) to a sink in `dir`, closed.
fn write(dir: &Path, recs: &[Record]) -> ParquetSink {
    let info = info();
    let mut sink = ParquetSink::new(dir, "events.jsonl", 0o640);
    let row = |seq, ktime_ns: u64| RowInfo {
        seq,
        wall_ns: i128::from(ktime_ns) + OFFSET,
        host: &info.host,
        boot_id: &info.boot_id,
    };
    let meta = MetaFields {
        tracer_version: Some("0.1.0"),
        schema_version: Some(2),
        kernel: None,
        options: Some(r#"{"quiet":true}"#),
    };
    sink.write_meta(&row(1, 50), 50, &meta).unwrap();
    for (i, r) in recs.iter().enumerate() {
        sink.write(&row(i as u64 + 2, r.ktime_ns), r).unwrap();
    }
    sink.close().unwrap();
    sink
}

/// The JSON Lines lines of the records, numbered from 2 (after the `meta`).
fn json_lines(recs: &[Record]) -> Vec<Map<String, Value>> {
    let mut w = JsonlWriter::new(Vec::new(), info());
    w.write_meta(50, b"").unwrap();
    for r in recs {
        w.write(r).unwrap();
    }
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    text.lines()
        .skip(1)
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            v => panic!("{v}"),
        })
        .collect()
}

#[test]
fn every_row_holds_what_its_json_line_holds() {
    let dir = tempdir();
    let recs = every_type();
    let sink = write(dir.path(), &recs);
    let rows = read_rows(sink.files());
    assert_eq!(sink.rows(), recs.len() as u64 + 1);
    assert_eq!(rows.len(), recs.len() + 1);

    let meta = &rows[0];
    assert_eq!(meta["type"], json!("meta"));
    assert_eq!(meta["tracer_version"], json!("0.1.0"));
    assert_eq!(meta["schema_version"], json!(2));
    assert_eq!(meta["options"], json!(r#"{"quiet":true}"#));
    assert!(!meta.contains_key("kernel") && !meta.contains_key("pid"));

    for (line, row) in json_lines(&recs).into_iter().zip(&rows[1..]) {
        let mut row = row.clone();
        let ktime = line["ktime_ns"].as_u64().unwrap();
        for (k, v) in line {
            let got = match k.as_str() {
                "ts" => {
                    let ns = row.remove("ts").unwrap().as_i64().unwrap();
                    assert_eq!(i128::from(ns), i128::from(ktime) + OFFSET);
                    continue;
                }
                "parent" => {
                    let p = json!({
                        "pid": row.remove("parent_pid"),
                        "proc_id": row.remove("parent_proc_id"),
                        "comm": row.remove("parent_comm"),
                        "filename": row.remove("parent_filename").unwrap_or(Value::Null),
                    });
                    assert_eq!(p, v);
                    continue;
                }
                // Objects and arrays of objects are JSON text in one column.
                "figures" | "executables" | "exits" | "records" | "lost"
                    if !v.is_number() && !v.is_string() =>
                {
                    let text = row.remove(&k).unwrap();
                    serde_json::from_str(text.as_str().unwrap()).unwrap()
                }
                _ => row.remove(&k).unwrap_or(Value::Null),
            };
            assert_eq!(got, v, "{k} of {}", v);
        }
        // What the line leaves out is false or null in the row: `uncertain`
        // and `inferred` are absent from JSON unless true.
        for (k, v) in row {
            assert!(
                ["uncertain", "inferred"].contains(&k.as_str()) && v == json!(false),
                "column {k} = {v} is not in the line"
            );
        }
    }
}

#[test]
fn rows_go_to_their_host_and_utc_date_partition() {
    let dir = tempdir();
    let sink = write(dir.path(), &every_type());
    let names: Vec<String> = sink
        .files()
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "host=web%2F1/date=2026-11-18/events.jsonl-1.parquet",
            "host=web%2F1/date=2026-11-19/events.jsonl-11.parquet",
        ]
    );
    for (file, date) in sink.files().iter().zip(["2026-11-18", "2026-11-19"]) {
        for row in read_rows(std::slice::from_ref(file)) {
            let ns = row["ts"].as_i64().unwrap();
            assert_eq!(utc_date(i128::from(ns)), date);
            assert_eq!(row["host"], json!("web/1"));
        }
    }
    for f in sink.files() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640, "{}", f.display());
    }
    // Only the finished files: no temporary name is left.
    let mut all = Vec::new();
    walk(dir.path(), &mut all);
    all.sort();
    let mut files = sink.files().to_vec();
    files.sort();
    assert_eq!(all, files);
}

#[test]
fn a_taken_name_is_never_replaced() {
    let dir = tempdir();
    let recs = every_type();
    let first = write(dir.path(), &recs[..1]);
    let before = std::fs::read(&first.files()[0]).unwrap();
    let second = write(dir.path(), &recs[..2]);
    assert_eq!(
        second.files()[0].file_name().unwrap(),
        "events.jsonl-1-1.parquet"
    );
    assert_eq!(std::fs::read(&first.files()[0]).unwrap(), before);
    assert_eq!(read_rows(second.files()).len(), 3);
}

#[test]
fn a_sink_dropped_before_close_leaves_no_file() {
    let dir = tempdir();
    let mut sink = ParquetSink::new(dir.path(), "x", 0o600);
    let r = &every_type()[0];
    let info = info();
    let row = RowInfo {
        seq: 1,
        wall_ns: OFFSET,
        host: &info.host,
        boot_id: &info.boot_id,
    };
    sink.write(&row, r).unwrap();
    drop(sink);
    let mut all = Vec::new();
    walk(dir.path(), &mut all);
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn many_rows_make_several_row_groups() {
    let dir = tempdir();
    let info = info();
    let mut sink = ParquetSink::new(dir.path(), "big", 0o600);
    let r = &every_type()[2];
    let n = ROW_GROUP_ROWS as u64 * 2 + 5;
    for seq in 1..=n {
        let row = RowInfo {
            seq,
            wall_ns: OFFSET - 10_000_000_000,
            host: &info.host,
            boot_id: &info.boot_id,
        };
        sink.write(&row, r).unwrap();
    }
    sink.close().unwrap();
    let file = File::open(&sink.files()[0]).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 3);
    assert_eq!(builder.metadata().file_metadata().num_rows(), n as i64);
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A fresh directory under the system's temporary one, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "tracer-parquet-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}
