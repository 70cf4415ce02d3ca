//! `--format json`: the report (or, with `--tree`, the tree) as one JSON document,
//! pretty-printed, structure in docs/report.md.

use std::io::{self, Write};

use serde::Serialize;

/// Writes `doc` as indented JSON and a final newline.
pub fn write<W: Write, T: Serialize>(mut w: W, doc: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut w, doc).map_err(io::Error::from)?;
    w.write_all(b"\n")
}
