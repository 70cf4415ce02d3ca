//! Kernel tests of Parquet output: a real workload recorded with `tracer watch -o
//! FILE --parquet-dir DIR` (rotated, so several files), then the JSON Lines files
//! converted with `tracer convert`: both Parquet outputs hold the same rows, one
//! per JSON Lines line, in the same host/date partitions. Read back with the
//! parquet crate's reader.
//!
//! Needs root and a built tracer, like the other kernel tests (`sudo cargo xtask test`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use tracer_tests::{
    Proc, STEP_DEADLINE, complete_records, poll_until, run_dir, run_tracer, workload_bin,
};

/// Every `*.parquet` file under `dir`, as paths relative to it; fails on any
/// other file (a temporary one left behind).
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                assert!(
                    p.extension() == Some(OsStr::new("parquet")),
                    "not a finished Parquet file: {}",
                    p.display()
                );
                out.push(p.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// One row as column → value (nulls left out), as text to compare.
fn row(batch: &RecordBatch, i: usize) -> String {
    let mut m = serde_json::Map::new();
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
    Value::Object(m).to_string()
}

/// Every row under `dir`, with the partition (`host=…/date=…`) of its file.
fn rows(dir: &Path) -> BTreeMap<String, String> {
    rows_in(dir, &parquet_files(dir))
}

/// The rows of these files (relative to `dir`), each with its file's partition.
fn rows_in(dir: &Path, files: &[PathBuf]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rel in files {
        let partition = rel.parent().expect("in a partition").display().to_string();
        let file = File::open(dir.join(rel)).expect("open");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()))
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            for i in 0..batch.num_rows() {
                let r = row(&batch, i);
                assert!(
                    out.insert(r.clone(), partition.clone()).is_none(),
                    "row twice: {r}"
                );
            }
        }
    }
    out
}

#[test]
fn watch_parquet_dir_and_convert_hold_the_same_rows() {
    let dir = run_dir("parquet");
    let out = dir.join("t.jsonl");
    let (direct, converted) = (dir.join("direct"), dir.join("converted"));
    let workload = workload_bin();
    let mut run = Proc::tracer(&[
        OsStr::new("watch"),
        OsStr::new("--quiet"),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--rotate-size"),
        OsStr::new("64K"),
        OsStr::new("--rotate-keep"),
        OsStr::new("1000"),
        OsStr::new("--parquet-dir"),
        direct.as_os_str(),
        OsStr::new("--"),
        workload.as_os_str(),
        OsStr::new("storm"),
        OsStr::new("400"),
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(
        status.success(),
        "tracer exited with {status}\n{}",
        run.describe()
    );
    assert!(!run.stderr().contains(" failed: "), "{}", run.describe());

    // The JSON Lines files, oldest first: t.jsonl.N ... t.jsonl.1, t.jsonl.
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "no rotation: {inputs:?}");
    let mut lines = 0;
    let mut types = BTreeSet::new();
    for p in &inputs {
        for r in complete_records(p) {
            lines += 1;
            types.insert(r.ty().to_string());
        }
    }

    let mut args: Vec<&OsStr> = vec![OsStr::new("convert")];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend([OsStr::new("-o"), converted.as_os_str()]);
    let ran = run_tracer(&args, None).ok();
    assert!(!ran.stderr.contains("skipped"), "{}", ran.stderr);

    let (a, b) = (rows(&direct), rows(&converted));
    assert_eq!(a.len(), lines, "direct: one row per line");
    assert_eq!(b.len(), lines, "converted: one row per line");
    // The same rows, each in the same partition.
    let only_direct: Vec<_> = a
        .iter()
        .filter(|(r, _)| !b.contains_key(*r))
        .take(3)
        .collect();
    let only_converted: Vec<_> = b
        .iter()
        .filter(|(r, _)| !a.contains_key(*r))
        .take(3)
        .collect();
    assert!(
        only_direct.is_empty() && only_converted.is_empty(),
        "rows differ:\nonly from watch: {only_direct:#?}\nonly from convert: {only_converted:#?}"
    );
    assert_eq!(a, b);
    // One Parquet file per JSON Lines file (the storm takes well under a day; a
    // run across midnight UTC would split one more).
    let files = parquet_files(&direct);
    let days: BTreeSet<_> = a.values().collect();
    assert_eq!(files.len(), inputs.len() + days.len() - 1, "{files:?}");
    for t in ["meta", "process", "fork", "exec", "exit", "reap", "end"] {
        assert!(types.contains(t), "no {t} record in {types:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir`, relative to it.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// A tracer killed with SIGKILL mid-file leaves its unfinished Parquet file under
/// its hidden temporary name only: every `*.parquet` file is whole (the reader
/// finds its footer and all its rows), and they hold the rotated files' rows.
#[test]
fn a_killed_tracer_leaves_only_whole_parquet_files() {
    let dir = run_dir("parquet-kill");
    let out = dir.join("t.jsonl");
    let pq = dir.join("pq");
    let workload = workload_bin();
    let mut run = Proc::tracer(&[
        OsStr::new("watch"),
        OsStr::new("--quiet"),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--rotate-size"),
        OsStr::new("64K"),
        OsStr::new("--rotate-keep"),
        OsStr::new("1000"),
        OsStr::new("--parquet-dir"),
        pq.as_os_str(),
        OsStr::new("--"),
        workload.as_os_str(),
        OsStr::new("storm"),
        OsStr::new("20000"),
    ]);
    // Two finished files, and rows in the builders of the next one.
    let enough = || {
        let files = all_files(&pq);
        files
            .iter()
            .filter(|f| f.extension() == Some(OsStr::new("parquet")))
            .count()
            >= 2
            && files
                .iter()
                .any(|f| f.extension() == Some(OsStr::new("tmp")))
    };
    assert!(poll_until(STEP_DEADLINE, enough), "{}", run.describe());
    run.signal(libc::SIGKILL);
    run.wait_exit_within(STEP_DEADLINE);
    drop(run);

    let files = all_files(&pq);
    let (finished, other): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|f| f.extension() == Some(OsStr::new("parquet")));
    for f in &other {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with('.') && name.ends_with(".tmp"),
            "not a hidden temporary file: {}",
            f.display()
        );
    }
    // The finished files are whole (the reader finds each footer and all the
    // rows) and are whole output files: together, `seq` 1..n without a gap, one
    // `meta` and one `end` each, the last row an `end`.
    assert!(finished.len() >= 2, "{files:?}");
    let finished: Vec<PathBuf> = finished.into_iter().cloned().collect();
    let rows = rows_in(&pq, &finished);
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    for r in rows.keys() {
        let v: Value = serde_json::from_str(r).expect("row");
        let seq = v["seq"].as_u64().expect("seq");
        let ty = v["type"].as_str().expect("type").to_string();
        assert!(by_seq.insert(seq, ty).is_none(), "seq {seq} twice");
    }
    let n = by_seq.len() as u64;
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    assert_eq!(by_seq.values().last().map(String::as_str), Some("end"));
    let count = |t: &str| by_seq.values().filter(|v| *v == t).count();
    assert_eq!(count("meta"), count("end"));
    // Every rotated JSON Lines file was finished before the next began.
    let mut rotated_lines = 0;
    for n in 1.. {
        let p = PathBuf::from(format!("{}.{n}", out.display()));
        if !p.exists() {
            break;
        }
        rotated_lines += complete_records(&p).len() as u64;
    }
    assert!(
        n >= rotated_lines,
        "{n} rows for {rotated_lines} rotated lines"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
