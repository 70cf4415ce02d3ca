//! `convert` end to end on in-memory input: JSON Lines as `tracer watch` writes
//! them, with a bad line, to Parquet read back with the parquet crate's reader.

use std::fs::File;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::event::Comm;
use crate::output::{JsonlWriter, RunInfo};
use crate::record::{Body, ProcId, Record, Subject};

fn recording() -> Vec<u8> {
    let info = RunInfo {
        host: "h1".into(),
        boot_id: "b1".into(),
        realtime_offset_ns: 1_795_000_000_000_000_000,
    };
    let mut w = JsonlWriter::new(Vec::new(), info);
    w.write_meta(
        10,
        br#","tracer_version":"0.1.0","schema_version":2,"kernel":"6.1","options":{"quiet":true}"#,
    )
    .unwrap();
    for (i, pid) in [100u32, 101, 102].into_iter().enumerate() {
        let rec = Record {
            ktime_ns: 20 + i as u64,
            subject: Some(Subject {
                pid,
                tid: pid,
                ppid: 1,
                proc_id: ProcId::from_start_ns(pid, 0),
                comm: Comm::new(b"sh"),
                uid: Some(0),
                cgroup_id: 0,
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            }),
            body: Body::Exec {
                filename: b"/bin/sh".to_vec(),
                argv: vec![b"sh".to_vec(), b"-c".to_vec()],
                argv_truncated: false,
                argv_redacted: false,
                old_tid: None,
            },
            uncertain: false,
        };
        w.write(&rec).unwrap();
    }
    let mut bytes = w.into_inner().unwrap();
    bytes.extend_from_slice(b"not json\n");
    bytes
}

#[test]
fn a_recording_becomes_one_row_per_record_and_bad_lines_are_counted() {
    let dir = std::env::temp_dir().join(format!("tracer-convert-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = recording();
    let records = reader::read_bytes(&[("rec.jsonl", &bytes)]).unwrap();
    let done = convert_records(&records, &dir, "rec.jsonl", 0o600).unwrap();
    assert_eq!(done.rows, 4);
    assert_eq!(done.bad, 1);
    assert_eq!(done.no_time, 0);
    assert_eq!(done.files.len(), 1);
    let path = &done.files[0];
    assert!(
        path.ends_with("host=h1/date=2026-11-18/rec.jsonl-1.parquet"),
        "{}",
        path.display()
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let seq = batch
            .column_by_name("seq")
            .unwrap()
            .as_primitive::<Int64Type>();
        let ty = batch.column_by_name("type").unwrap().as_string::<i32>();
        let kernel = batch.column_by_name("kernel").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            let k = (!kernel.is_null(i)).then(|| kernel.value(i).to_string());
            seen.push((seq.value(i), ty.value(i).to_string(), k));
        }
    }
    assert_eq!(
        seen,
        [
            (1, "meta".to_string(), Some("6.1".to_string())),
            (2, "exec".to_string(), None),
            (3, "exec".to_string(), None),
            (4, "exec".to_string(), None),
        ]
    );
    // Converted again into the same directory: a new file, the first one kept.
    let again = convert_records(&records, &dir, "rec.jsonl", 0o600).unwrap();
    assert!(again.files[0].ends_with("rec.jsonl-1-1.parquet"));
    assert!(path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_come_from_the_input() {
    assert_eq!(base_name(&Source::Stdin), "stdin");
    assert_eq!(
        base_name(&Source::File("/var/log/t/events.jsonl.2.zst".into())),
        "events.jsonl.2"
    );
}
