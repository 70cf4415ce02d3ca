//! Parquet output (`tracer convert`, `watch --parquet-dir`): one flat table, one
//! row per record, the columns of docs/events.md ("Parquet"), zstd-compressed,
//! in Hive partitions `DIR/host=H/date=YYYY-MM-DD/`.
//!
//! Like the other sinks it formats what it is given and resolves nothing: the
//! caller passes each record with its `seq`, wall-clock time, host and boot id.
//! Memory is bounded by one row group per open partition: rows go to arrow
//! builders, a batch of them to the Parquet writer, which flushes a row group
//! every [`ROW_GROUP_ROWS`] rows.
//!
//! A file is written as `.NAME.PID.tmp` in its partition, synced, and renamed to
//! `NAME.parquet` only when it is complete, without replacing anything
//! (`renameat2(RENAME_NOREPLACE)`): a crash leaves a hidden temporary file, never
//! a half-written file under a `.parquet` name, and no existing file is ever
//! overwritten (a taken name gets a `-N` suffix).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value, json};

use super::escape::json_text;
use super::time::{civil_from_days, day_of};
use crate::alert_text::message;
use crate::names::{errno_name, signal_name};
use crate::record::{Alert, Body, Record};

/// Rows per row group: a few MiB of arrow data at most, the memory one open file
/// holds; large enough for zstd and dictionaries to work well.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows collected in the builders before they go to the Parquet writer.
const BATCH_ROWS: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{path}: {error}")]
    Parquet {
        path: PathBuf,
        error: parquet::errors::ParquetError,
    },
    #[error("{path}: {error}")]
    Arrow {
        path: PathBuf,
        error: arrow_schema::ArrowError,
    },
}

/// What every row of a record shares with the JSON Lines line: its number and
/// the per-run fields.
#[derive(Clone, Copy, Debug)]
pub struct RowInfo<'a> {
    pub seq: u64,
    /// Wall clock of `ktime_ns`, ns since the Unix epoch (the line's `ts`).
    pub wall_ns: i128,
    pub host: &'a str,
    pub boot_id: &'a str,
}

/// The fields of a `meta` record (docs/events.md).
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaFields<'a> {
    pub tracer_version: Option<&'a str>,
    pub schema_version: Option<u64>,
    pub kernel: Option<&'a str>,
    /// The `options` object, as JSON text.
    pub options: Option<&'a str>,
}

/// Column names and types, in file order (docs/events.md, "Parquet").
fn columns() -> Vec<Field> {
    use DataType::{Boolean as B, Int32 as I32, Int64 as I64, Utf8 as S};
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let list = DataType::List(Arc::new(Field::new_list_field(S, true)));
    let f = |name: &str, t: DataType| Field::new(name, t, true);
    vec![
        Field::new("seq", I64, false),
        Field::new("type", S, false),
        Field::new("ts", ts, false),
        Field::new("ktime_ns", I64, false),
        Field::new("host", S, false),
        Field::new("boot_id", S, false),
        // Process fields.
        f("pid", I32),
        f("tid", I32),
        f("ppid", I32),
        f("proc_id", S),
        f("comm", S),
        f("uid", I64),
        f("cgroup", S),
        f("cgroup_id", I64),
        f("unit", S),
        f("container_id", S),
        f("pod_uid", S),
        // Per type; shared where the JSON field is shared.
        f("filename", S),
        f("argv", list),
        f("argv_truncated", B),
        f("argv_redacted", B),
        f("state", S),
        f("parent_proc_id", S),
        f("thread", B),
        f("clone_flags", I64),
        f("old_tid", I32),
        f("errno", I32),
        f("error", S),
        f("exit_code", I32),
        f("signal", I32),
        f("signal_name", S),
        f("core_dumped", B),
        f("lifetime_ns", I64),
        f("zombie_ns", I64),
        f("reaper_pid", I32),
        f("reaper_comm", S),
        f("autoreap", B),
        f("inferred", B),
        f("reaped_after_ns", I64),
        f("reaped_before_ns", I64),
        f("uncertain", B),
        f("kind", S),
        f("count", I64),
        f("alert", S),
        f("scope", S),
        f("since_ktime_ns", I64),
        f("parent_pid", I32),
        f("parent_comm", S),
        f("parent_filename", S),
        f("figures", S),
        f("executables", S),
        f("exits", S),
        f("message", S),
        f("reason", S),
        f("records", S),
        f("lost", S),
        f("records_not_written", I64),
        f("tracer_version", S),
        f("schema_version", I64),
        f("kernel", S),
        f("options", S),
    ]
}

/// The one schema of every file.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(columns())));
    Arc::clone(&SCHEMA)
}

/// Signed columns (Spark has no unsigned types): values above `i64::MAX` /
/// `i32::MAX` cannot come from the kernel (pids are below 2^22, errnos below
/// 4096), and saturate rather than wrap if a hand-made recording has them.
fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One builder per column, in [`columns`] order.
struct Builders {
    seq: Int64Builder,
    ty: StringBuilder,
    ts: TimestampNanosecondBuilder,
    ktime_ns: Int64Builder,
    host: StringBuilder,
    boot_id: StringBuilder,
    pid: Int32Builder,
    tid: Int32Builder,
    ppid: Int32Builder,
    proc_id: StringBuilder,
    comm: StringBuilder,
    uid: Int64Builder,
    cgroup: StringBuilder,
    cgroup_id: Int64Builder,
    unit: StringBuilder,
    container_id: StringBuilder,
    pod_uid: StringBuilder,
    filename: StringBuilder,
    argv: ListBuilder<StringBuilder>,
    argv_truncated: BooleanBuilder,
    argv_redacted: BooleanBuilder,
    state: StringBuilder,
    parent_proc_id: StringBuilder,
    thread: BooleanBuilder,
    clone_flags: Int64Builder,
    old_tid: Int32Builder,
    errno: Int32Builder,
    error: StringBuilder,
    exit_code: Int32Builder,
    signal: Int32Builder,
    signal_name: StringBuilder,
    core_dumped: BooleanBuilder,
    lifetime_ns: Int64Builder,
    zombie_ns: Int64Builder,
    reaper_pid: Int32Builder,
    reaper_comm: StringBuilder,
    autoreap: BooleanBuilder,
    inferred: BooleanBuilder,
    reaped_after_ns: Int64Builder,
    reaped_before_ns: Int64Builder,
    uncertain: BooleanBuilder,
    kind: StringBuilder,
    count: Int64Builder,
    alert: StringBuilder,
    scope: StringBuilder,
    since_ktime_ns: Int64Builder,
    parent_pid: Int32Builder,
    parent_comm: StringBuilder,
    parent_filename: StringBuilder,
    figures: StringBuilder,
    executables: StringBuilder,
    exits: StringBuilder,
    message: StringBuilder,
    reason: StringBuilder,
    records: StringBuilder,
    lost: StringBuilder,
    records_not_written: Int64Builder,
    tracer_version: StringBuilder,
    schema_version: Int64Builder,
    kernel: StringBuilder,
    options: StringBuilder,
}

/// The values of one row that vary by type; `None` is null.
#[derive(Default)]
struct Row {
    filename: Option<String>,
    argv: Option<Vec<String>>,
    argv_truncated: Option<bool>,
    argv_redacted: Option<bool>,
    state: Option<String>,
    parent_proc_id: Option<String>,
    thread: Option<bool>,
    clone_flags: Option<i64>,
    old_tid: Option<i32>,
    errno: Option<i32>,
    error: Option<&'static str>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    signal_name: Option<&'static str>,
    core_dumped: Option<bool>,
    lifetime_ns: Option<i64>,
    zombie_ns: Option<i64>,
    reaper_pid: Option<i32>,
    reaper_comm: Option<String>,
    autoreap: Option<bool>,
    inferred: Option<bool>,
    reaped_after_ns: Option<i64>,
    reaped_before_ns: Option<i64>,
    uncertain: Option<bool>,
    kind: Option<String>,
    count: Option<i64>,
    alert: Option<&'static str>,
    scope: Option<String>,
    since_ktime_ns: Option<i64>,
    parent_pid: Option<i32>,
    parent_comm: Option<String>,
    parent_filename: Option<String>,
    figures: Option<String>,
    executables: Option<String>,
    exits: Option<String>,
    message: Option<String>,
    reason: Option<String>,
    records: Option<String>,
    lost: Option<String>,
    records_not_written: Option<i64>,
    tracer_version: Option<String>,
    schema_version: Option<i64>,
    kernel: Option<String>,
    options: Option<String>,
}

/// `name → count` pairs as a JSON object, in their order.
fn counts_json<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let map: Map<String, Value> = pairs
        .into_iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    Value::Object(map).to_string()
}

fn alert_row(row: &mut Row, a: &Alert, rec: &Record) {
    row.alert = Some(a.kind.name());
    row.scope = Some(a.scope.to_string());
    row.since_ktime_ns = Some(i64_of(a.since_ns));
    row.filename = a.filename.as_deref().map(json_text);
    row.argv = Some(a.argv.iter().map(|s| json_text(s)).collect());
    if let Some(p) = &a.parent {
        row.parent_pid = Some(i32_of(p.pid));
        row.parent_proc_id = Some(p.proc_id.to_string());
        row.parent_comm = Some(json_text(p.comm.as_bytes()));
        row.parent_filename = p.filename.as_deref().map(json_text);
    }
    row.figures = Some(counts_json(a.figures.iter().map(|(k, n)| (&**k, *n))));
    let executables: Vec<Value> = (a.executables.iter())
        .map(|(f, n)| json!({"filename": f.as_deref().map(json_text), "count": n}))
        .collect();
    row.executables = Some(Value::Array(executables).to_string());
    let exits: Vec<Value> = (a.exits.iter())
        .map(|e| {
            json!({
                "exit_code": e.exit_code,
                "signal": e.signal,
                "signal_name": e.signal.and_then(signal_name),
            })
        })
        .collect();
    row.exits = Some(Value::Array(exits).to_string());
    row.errno = a.errno.map(i32_of);
    row.error = a.errno.and_then(errno_name);
    let text = match &a.message {
        Some(kept) => kept.clone(),
        None => {
            let cgroup = rec.subject.as_ref().and_then(|s| s.cgroup.as_deref());
            message(a, rec.subject.as_ref(), cgroup)
        }
    };
    row.message = Some(json_text(&text));
}

fn body_row(rec: &Record) -> Row {
    let mut row = Row::default();
    match &rec.body {
        Body::Process {
            filename,
            argv,
            state,
            argv_redacted,
        } => {
            row.filename = filename.as_deref().map(json_text);
            row.argv = Some(argv.iter().map(|s| json_text(s)).collect());
            row.argv_redacted = Some(*argv_redacted);
            row.state = state.map(String::from);
            row.uncertain = Some(rec.uncertain);
        }
        Body::Fork {
            parent_proc_id,
            thread,
            clone_flags,
        } => {
            row.parent_proc_id = parent_proc_id.map(|p| p.to_string());
            row.thread = Some(*thread);
            row.clone_flags = clone_flags.map(i64_of);
        }
        Body::Exec {
            filename,
            argv,
            argv_truncated,
            argv_redacted,
            old_tid,
        } => {
            row.filename = Some(json_text(filename));
            row.argv = Some(argv.iter().map(|s| json_text(s)).collect());
            row.argv_truncated = Some(*argv_truncated);
            row.argv_redacted = Some(*argv_redacted);
            row.old_tid = old_tid.map(i32_of);
        }
        Body::ExecFailed { filename, errno } => {
            row.filename = Some(json_text(filename));
            row.errno = Some(i32_of(*errno));
            row.error = errno_name(*errno);
        }
        Body::ForkFailed { errno } => {
            row.errno = Some(i32_of(*errno));
            row.error = errno_name(*errno);
        }
        Body::Exit {
            exit_code,
            signal,
            core_dumped,
            lifetime_ns,
            thread,
        } => {
            row.exit_code = exit_code.map(i32::from);
            row.signal = signal.map(i32::from);
            row.signal_name = signal.and_then(signal_name);
            row.core_dumped = Some(*core_dumped);
            row.lifetime_ns = lifetime_ns.map(i64_of);
            row.thread = Some(*thread);
            row.uncertain = Some(rec.uncertain);
        }
        Body::Reap {
            zombie_ns,
            reaper_pid,
            reaper_comm,
            autoreap,
            inferred,
        } => {
            row.zombie_ns = zombie_ns.map(i64_of);
            row.reaper_pid = reaper_pid.map(i32_of);
            row.reaper_comm = reaper_comm.as_ref().map(|c| json_text(c.as_bytes()));
            row.autoreap = Some(*autoreap);
            row.inferred = Some(inferred.is_some());
            if let Some(w) = inferred {
                row.reaped_after_ns = w.after_ns.map(i64_of);
                row.reaped_before_ns = Some(i64_of(w.before_ns));
            }
            row.uncertain = Some(rec.uncertain);
        }
        Body::Lost { kind, count } => {
            row.kind = Some(kind.to_string());
            row.count = Some(i64_of(*count));
        }
        Body::End {
            reason,
            records,
            lost,
            not_written,
        } => {
            row.reason = Some(reason.to_string());
            row.records = Some(counts_json(records.iter().map(|(k, n)| (&**k, *n))));
            row.lost = Some(counts_json(lost.iter().map(|(k, n)| (&**k, *n))));
            row.records_not_written = Some(i64_of(*not_written));
        }
        Body::Alert(a) => alert_row(&mut row, a, rec),
    }
    row
}

impl Builders {
    fn new() -> Self {
        Builders {
            seq: Int64Builder::new(),
            ty: StringBuilder::new(),
            ts: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            ktime_ns: Int64Builder::new(),
            host: StringBuilder::new(),
            boot_id: StringBuilder::new(),
            pid: Int32Builder::new(),
            tid: Int32Builder::new(),
            ppid: Int32Builder::new(),
            proc_id: StringBuilder::new(),
            comm: StringBuilder::new(),
            uid: Int64Builder::new(),
            cgroup: StringBuilder::new(),
            cgroup_id: Int64Builder::new(),
            unit: StringBuilder::new(),
            container_id: StringBuilder::new(),
            pod_uid: StringBuilder::new(),
            filename: StringBuilder::new(),
            argv: ListBuilder::new(StringBuilder::new()),
            argv_truncated: BooleanBuilder::new(),
            argv_redacted: BooleanBuilder::new(),
            state: StringBuilder::new(),
            parent_proc_id: StringBuilder::new(),
            thread: BooleanBuilder::new(),
            clone_flags: Int64Builder::new(),
            old_tid: Int32Builder::new(),
            errno: Int32Builder::new(),
            error: StringBuilder::new(),
            exit_code: Int32Builder::new(),
            signal: Int32Builder::new(),
            signal_name: StringBuilder::new(),
            core_dumped: BooleanBuilder::new(),
            lifetime_ns: Int64Builder::new(),
            zombie_ns: Int64Builder::new(),
            reaper_pid: Int32Builder::new(),
            reaper_comm: StringBuilder::new(),
            autoreap: BooleanBuilder::new(),
            inferred: BooleanBuilder::new(),
            reaped_after_ns: Int64Builder::new(),
            reaped_before_ns: Int64Builder::new(),
            uncertain: BooleanBuilder::new(),
            kind: StringBuilder::new(),
            count: Int64Builder::new(),
            alert: StringBuilder::new(),
            scope: StringBuilder::new(),
            since_ktime_ns: Int64Builder::new(),
            parent_pid: Int32Builder::new(),
            parent_comm: StringBuilder::new(),
            parent_filename: StringBuilder::new(),
            figures: StringBuilder::new(),
            executables: StringBuilder::new(),
            exits: StringBuilder::new(),
            message: StringBuilder::new(),
            reason: StringBuilder::new(),
            records: StringBuilder::new(),
            lost: StringBuilder::new(),
            records_not_written: Int64Builder::new(),
            tracer_version: StringBuilder::new(),
            schema_version: Int64Builder::new(),
            kernel: StringBuilder::new(),
            options: StringBuilder::new(),
        }
    }

    fn len(&self) -> usize {
        self.seq.len()
    }

    fn common(&mut self, info: &RowInfo, ty: &str, ktime_ns: u64) {
        self.seq.append_value(i64_of(info.seq));
        self.ty.append_value(ty);
        // i64 ns since the epoch reach the year 2262.
        self.ts
            .append_value(i64::try_from(info.wall_ns).unwrap_or(i64::MAX));
        self.ktime_ns.append_value(i64_of(ktime_ns));
        self.host.append_value(info.host);
        self.boot_id.append_value(info.boot_id);
    }

    fn subject(&mut self, rec: &Record) {
        match &rec.subject {
            Some(s) => {
                self.pid.append_value(i32_of(s.pid));
                self.tid.append_value(i32_of(s.tid));
                self.ppid.append_value(i32_of(s.ppid));
                self.proc_id.append_value(s.proc_id.to_string());
                self.comm.append_value(json_text(s.comm.as_bytes()));
                self.uid.append_option(s.uid.map(i64::from));
                self.cgroup.append_option(s.cgroup.as_deref());
                self.cgroup_id.append_value(i64_of(s.cgroup_id));
                self.unit.append_option(s.unit.as_deref());
                self.container_id.append_option(s.container_id.as_deref());
                self.pod_uid.append_option(s.pod_uid.as_deref());
            }
            None => self.no_subject(),
        }
    }

    fn no_subject(&mut self) {
        self.pid.append_null();
        self.tid.append_null();
        self.ppid.append_null();
        self.proc_id.append_null();
        self.comm.append_null();
        self.uid.append_null();
        self.cgroup.append_null();
        self.cgroup_id.append_null();
        self.unit.append_null();
        self.container_id.append_null();
        self.pod_uid.append_null();
    }

    fn row(&mut self, r: Row) {
        self.filename.append_option(r.filename);
        match r.argv {
            Some(args) => {
                for a in args {
                    self.argv.values().append_value(a);
                }
                self.argv.append(true);
            }
            None => self.argv.append(false),
        }
        self.argv_truncated.append_option(r.argv_truncated);
        self.argv_redacted.append_option(r.argv_redacted);
        self.state.append_option(r.state);
        self.parent_proc_id.append_option(r.parent_proc_id);
        self.thread.append_option(r.thread);
        self.clone_flags.append_option(r.clone_flags);
        self.old_tid.append_option(r.old_tid);
        self.errno.append_option(r.errno);
        self.error.append_option(r.error);
        self.exit_code.append_option(r.exit_code);
        self.signal.append_option(r.signal);
        self.signal_name.append_option(r.signal_name);
        self.core_dumped.append_option(r.core_dumped);
        self.lifetime_ns.append_option(r.lifetime_ns);
        self.zombie_ns.append_option(r.zombie_ns);
        self.reaper_pid.append_option(r.reaper_pid);
        self.reaper_comm.append_option(r.reaper_comm);
        self.autoreap.append_option(r.autoreap);
        self.inferred.append_option(r.inferred);
        self.reaped_after_ns.append_option(r.reaped_after_ns);
        self.reaped_before_ns.append_option(r.reaped_before_ns);
        self.uncertain.append_option(r.uncertain);
        self.kind.append_option(r.kind);
        self.count.append_option(r.count);
        self.alert.append_option(r.alert);
        self.scope.append_option(r.scope);
        self.since_ktime_ns.append_option(r.since_ktime_ns);
        self.parent_pid.append_option(r.parent_pid);
        self.parent_comm.append_option(r.parent_comm);
        self.parent_filename.append_option(r.parent_filename);
        self.figures.append_option(r.figures);
        self.executables.append_option(r.executables);
        self.exits.append_option(r.exits);
        self.message.append_option(r.message);
        self.reason.append_option(r.reason);
        self.records.append_option(r.records);
        self.lost.append_option(r.lost);
        self.records_not_written
            .append_option(r.records_not_written);
        self.tracer_version.append_option(r.tracer_version);
        self.schema_version.append_option(r.schema_version);
        self.kernel.append_option(r.kernel);
        self.options.append_option(r.options);
    }

    /// The rows so far as one batch; the builders start again empty.
    fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.ty.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.ktime_ns.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.boot_id.finish()),
            Arc::new(self.pid.finish()),
            Arc::new(self.tid.finish()),
            Arc::new(self.ppid.finish()),
            Arc::new(self.proc_id.finish()),
            Arc::new(self.comm.finish()),
            Arc::new(self.uid.finish()),
            Arc::new(self.cgroup.finish()),
            Arc::new(self.cgroup_id.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.container_id.finish()),
            Arc::new(self.pod_uid.finish()),
            Arc::new(self.filename.finish()),
            Arc::new(self.argv.finish()),
            Arc::new(self.argv_truncated.finish()),
            Arc::new(self.argv_redacted.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.parent_proc_id.finish()),
            Arc::new(self.thread.finish()),
            Arc::new(self.clone_flags.finish()),
            Arc::new(self.old_tid.finish()),
            Arc::new(self.errno.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.exit_code.finish()),
            Arc::new(self.signal.finish()),
            Arc::new(self.signal_name.finish()),
            Arc::new(self.core_dumped.finish()),
            Arc::new(self.lifetime_ns.finish()),
            Arc::new(self.zombie_ns.finish()),
            Arc::new(self.reaper_pid.finish()),
            Arc::new(self.reaper_comm.finish()),
            Arc::new(self.autoreap.finish()),
            Arc::new(self.inferred.finish()),
            Arc::new(self.reaped_after_ns.finish()),
            Arc::new(self.reaped_before_ns.finish()),
            Arc::new(self.uncertain.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.alert.finish()),
            Arc::new(self.scope.finish()),
            Arc::new(self.since_ktime_ns.finish()),
            Arc::new(self.parent_pid.finish()),
            Arc::new(self.parent_comm.finish()),
            Arc::new(self.parent_filename.finish()),
            Arc::new(self.figures.finish()),
            Arc::new(self.executables.finish()),
            Arc::new(self.exits.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.records.finish()),
            Arc::new(self.lost.finish()),
            Arc::new(self.records_not_written.finish()),
            Arc::new(self.tracer_version.finish()),
            Arc::new(self.schema_version.finish()),
            Arc::new(self.kernel.finish()),
            Arc::new(self.options.finish()),
        ];
        RecordBatch::try_new(schema(), columns)
    }
}

/// `YYYY-MM-DD` (UTC) of a wall-clock time: the `date=` partition.
pub fn utc_date(wall_ns: i128) -> String {
    let (y, m, d) = civil_from_days(day_of(wall_ns));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A partition value as Hive escapes it: `%XX` for anything but letters,
/// digits, `.`, `_` and `-`, so a host name cannot make a path of its own.
pub fn partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One Parquet file being written, under its temporary name.
struct OpenFile {
    dir: PathBuf,
    tmp: PathBuf,
    /// The name it gets when done, without `.parquet`.
    stem: String,
    /// A second handle on the file, to sync it once the writer has closed it.
    sync: File,
    writer: ArrowWriter<File>,
    builders: Builders,
    rows: u64,
}

impl OpenFile {
    fn flush_batch(&mut self) -> Result<(), ParquetError> {
        if self.builders.len() == 0 {
            return Ok(());
        }
        let batch = self
            .builders
            .finish()
            .map_err(|error| ParquetError::Arrow {
                path: self.tmp.clone(),
                error,
            })?;
        self.writer
            .write(&batch)
            .map_err(|error| ParquetError::Parquet {
                path: self.tmp.clone(),
                error,
            })
    }

    /// Finishes the file and gives it its name; returns that path.
    fn close(mut self) -> Result<PathBuf, ParquetError> {
        self.flush_batch()?;
        let tmp = self.tmp.clone();
        let perr = |error| ParquetError::Parquet {
            path: tmp.clone(),
            error,
        };
        let ioerr = |path: &Path, error| ParquetError::Io {
            path: path.to_path_buf(),
            error,
        };
        self.writer.finish().map_err(perr)?;
        drop(self.writer);
        self.sync.sync_all().map_err(|e| ioerr(&tmp, e))?;
        let final_path = rename_noreplace(&tmp, &self.dir, &self.stem)?;
        // The rename is durable once the directory is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ioerr(&self.dir, e))?;
        Ok(final_path)
    }

    /// Gives up the file: its temporary name is removed.
    fn abandon(self) {
        drop(self.writer);
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Renames `tmp` to `dir/STEM.parquet`, or `STEM-1.parquet`, ... if that is
/// taken: never replaces a file.
fn rename_noreplace(tmp: &Path, dir: &Path, stem: &str) -> Result<PathBuf, ParquetError> {
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL");
    let from = cstr(tmp);
    for n in 0u32.. {
        let name = if n == 0 {
            format!("{stem}.parquet")
        } else {
            format!("{stem}-{n}.parquet")
        };
        let to_path = dir.join(name);
        let to = cstr(&to_path);
        // The raw system call, not libc's wrapper: musl (the static build) has no
        // renameat2 function. SAFETY: both are valid NUL-terminated paths for the
        // duration of the call; the flags are renameat2's (fs/namei.c).
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(to_path);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(ParquetError::Io {
                path: to_path,
                error: e,
            });
        }
    }
    unreachable!("u32 names run out")
}

/// Writes records as Parquet files under `DIR/host=H/date=D/`, one file per
/// partition between two [`ParquetSink::close`] calls, named `BASE-FIRSTSEQ.parquet`.
pub struct ParquetSink {
    dir: PathBuf,
    base: String,
    /// Permissions of the files (argv can hold secrets).
    mode: u32,
    open: HashMap<(String, String), OpenFile>,
    /// Files finished so far.
    done: Vec<PathBuf>,
    rows: u64,
}

impl ParquetSink {
    /// Files go under `dir`, named after `base` (the recording's file name),
    /// with permissions `mode` whatever the umask.
    pub fn new(dir: &Path, base: &str, mode: u32) -> ParquetSink {
        ParquetSink {
            dir: dir.to_path_buf(),
            base: partition_value(base),
            mode,
            open: HashMap::new(),
            done: Vec::new(),
            rows: 0,
        }
    }

    /// Rows written so far, in all files.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The files finished so far.
    pub fn files(&self) -> &[PathBuf] {
        &self.done
    }

    fn file_for(&mut self, info: &RowInfo) -> Result<&mut OpenFile, ParquetError> {
        let key = (info.host.to_string(), utc_date(info.wall_ns));
        if !self.open.contains_key(&key) {
            let dir = self
                .dir
                .join(format!("host={}", partition_value(&key.0)))
                .join(format!("date={}", key.1));
            let ioerr = |path: &Path, error| ParquetError::Io {
                path: path.to_path_buf(),
                error,
            };
            fs::create_dir_all(&dir).map_err(|e| ioerr(&dir, e))?;
            let stem = format!("{}-{}", self.base, info.seq);
            let tmp = dir.join(format!(".{stem}.{}.tmp", std::process::id()));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.mode)
                .open(&tmp)
                .and_then(|f| {
                    // Exactly `mode`: the umask took bits off at creation.
                    f.set_permissions(fs::Permissions::from_mode(self.mode))?;
                    Ok(f)
                })
                .map_err(|e| ioerr(&tmp, e))?;
            let sync = file.try_clone().map_err(|e| ioerr(&tmp, e))?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(3).expect("3 is a zstd level"),
                ))
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .build();
            let writer = match ArrowWriter::try_new(file, schema(), Some(props)) {
                Ok(w) => w,
                Err(error) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(ParquetError::Parquet { path: tmp, error });
                }
            };
            self.open.insert(
                key.clone(),
                OpenFile {
                    dir,
                    tmp,
                    stem,
                    sync,
                    writer,
                    builders: Builders::new(),
                    rows: 0,
                },
            );
        }
        Ok(self.open.get_mut(&key).expect("inserted above"))
    }

    fn after_row(&mut self, key_host: &str, wall_ns: i128) -> Result<(), ParquetError> {
        self.rows += 1;
        let key = (key_host.to_string(), utc_date(wall_ns));
        let f = self.open.get_mut(&key).expect("row just written");
        f.rows += 1;
        if f.builders.len() >= BATCH_ROWS {
            f.flush_batch()?;
        }
        Ok(())
    }

    /// Writes one record as one row.
    pub fn write(&mut self, info: &RowInfo, rec: &Record) -> Result<(), ParquetError> {
        let row = body_row(rec);
        let f = self.file_for(info)?;
        let b = &mut f.builders;
        b.common(info, rec.body.type_name(), rec.ktime_ns);
        b.subject(rec);
        b.row(row);
        self.after_row(info.host, info.wall_ns)
    }

    /// Writes a `meta` record as one row (`ktime_ns` is when its file began).
    pub fn write_meta(
        &mut self,
        info: &RowInfo,
        ktime_ns: u64,
        meta: &MetaFields,
    ) -> Result<(), ParquetError> {
        let row = Row {
            tracer_version: meta.tracer_version.map(str::to_string),
            schema_version: meta.schema_version.map(i64_of),
            kernel: meta.kernel.map(str::to_string),
            options: meta.options.map(str::to_string),
            ..Row::default()
        };
        let f = self.file_for(info)?;
        let b = &mut f.builders;
        b.common(info, "meta", ktime_ns);
        b.no_subject();
        b.row(row);
        self.after_row(info.host, info.wall_ns)
    }

    /// Finishes every open file: each gets its final name. The next row starts
    /// new files (a rotation). On an error the files not yet finished are
    /// abandoned (their temporary names removed).
    pub fn close(&mut self) -> Result<(), ParquetError> {
        let mut open: Vec<_> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        let mut open = open.into_iter();
        for (_, f) in open.by_ref() {
            match f.close() {
                Ok(path) => self.done.push(path),
                Err(e) => {
                    for (_, f) in open {
                        f.abandon();
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

impl Drop for ParquetSink {
    /// Files never closed stay incomplete: their temporary names go.
    fn drop(&mut self) {
        for (_, f) in self.open.drain() {
            f.abandon();
        }
    }
}
