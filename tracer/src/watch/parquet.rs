//! `watch -o FILE --parquet-dir DIR`: the records of the output file also as
//! Parquet, one file per output file (a rotation or reopening starts a new one,
//! a new UTC day too: files are partitioned by host and date), so a server need
//! not run `tracer convert` later. Rows carry the `seq` of their JSON Lines line,
//! so both hold the same rows.

use std::path::Path;

use crate::output::RunInfo;
use crate::output::parquet::{MetaFields, ParquetError, ParquetSink, RowInfo};
use crate::record::Record;

pub struct ParquetOut {
    /// The directory, as named in messages.
    pub name: String,
    sink: ParquetSink,
    info: RunInfo,
    tracer_version: Option<String>,
    schema_version: Option<u64>,
    kernel: Option<String>,
    options: Option<String>,
}

impl ParquetOut {
    /// Files go under `dir`, named after the output file; `meta` is the `meta`
    /// record's own fields as the output file gets them (`,"name":value...`).
    /// Files get permissions `mode` (`--file-mode`, as the output file).
    pub fn new(dir: &Path, output: &Path, mode: u32, info: RunInfo, meta: &[u8]) -> ParquetOut {
        let mut object = b"{".to_vec();
        object.extend_from_slice(meta.strip_prefix(b",").unwrap_or(meta));
        object.push(b'}');
        let v: serde_json::Value = serde_json::from_slice(&object).unwrap_or_default();
        let text = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
        let base = output
            .file_name()
            .map_or_else(|| "events".into(), |n| n.to_string_lossy().into_owned());
        ParquetOut {
            name: dir.display().to_string(),
            sink: ParquetSink::new(dir, &base, mode),
            tracer_version: text("tracer_version"),
            schema_version: v.get("schema_version").and_then(|n| n.as_u64()),
            kernel: text("kernel"),
            options: v.get("options").map(|o| o.to_string()),
            info,
        }
    }

    /// The record the output file took as line `seq`.
    pub fn write(&mut self, seq: u64, rec: &Record) -> Result<(), ParquetError> {
        let row = RowInfo {
            seq,
            wall_ns: i128::from(rec.ktime_ns) + self.info.realtime_offset_ns,
            host: &self.info.host,
            boot_id: &self.info.boot_id,
        };
        self.sink.write(&row, rec)
    }

    /// The `meta` record the output file took as line `seq`.
    pub fn write_meta(&mut self, seq: u64, ktime_ns: u64) -> Result<(), ParquetError> {
        let meta = MetaFields {
            tracer_version: self.tracer_version.as_deref(),
            schema_version: self.schema_version,
            kernel: self.kernel.as_deref(),
            options: self.options.as_deref(),
        };
        let row = RowInfo {
            seq,
            wall_ns: i128::from(ktime_ns) + self.info.realtime_offset_ns,
            host: &self.info.host,
            boot_id: &self.info.boot_id,
        };
        self.sink.write_meta(&row, ktime_ns, &meta)
    }

    /// The output file was rotated or reopened, or the run ends: the files so far
    /// get their names.
    pub fn roll(&mut self) -> Result<(), ParquetError> {
        self.sink.close()
    }
}
