//! `tracer convert FILE... -o DIR`: recordings (JSON Lines written by `tracer
//! watch -o`) to Parquet, for SQL engines (DuckDB, ClickHouse, Spark).
//!
//! Reads with report's reader ([`crate::report::reader`]: the same bad-line
//! rules and counts as `tracer report`, zstd inputs, `-` for stdin) and writes
//! with the Parquet sink ([`crate::output::parquet`]): one table, one row per
//! record, Hive partitions `DIR/host=H/date=YYYY-MM-DD/`. Each input becomes its
//! own files, named after it (`NAME-FIRSTSEQ.parquet`), so converting into a
//! directory that already has files adds to it and never replaces one.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::output::parquet::{MetaFields, ParquetSink, RowInfo};
use crate::report::progress::Progress;
use crate::report::reader::{self, Records, Source};

/// Everything `tracer convert` is told. (Its `--help` summary is the `convert`
/// subcommand's, in cli.rs.)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON Lines files written by `tracer watch -o`, plain or zstd-compressed
    /// (`-` for stdin). Each is converted on its own.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Directory to write the Parquet files under (created if missing). Files
    /// already there are kept: new ones get new names.
    #[arg(short, long = "output-dir", value_name = "DIR")]
    pub output: PathBuf,
    /// Permissions of the Parquet files, in octal (they hold command lines;
    /// applied exactly, whatever the umask).
    #[arg(long, value_name = "OCTAL", value_parser = crate::parse::parse_mode, default_value = "0600")]
    pub file_mode: u32,
}

/// What one input gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Converted {
    pub rows: u64,
    pub files: Vec<PathBuf>,
    /// Lines skipped as not records (counted as `tracer report` counts them).
    pub bad: u64,
    /// Records of a run none of whose lines had a readable `ts`: no wall-clock
    /// time to put in the `ts` column, so left out.
    pub no_time: u64,
}

/// The files' base name: the input's file name without `.zst`; `stdin` for `-`.
fn base_name(source: &Source) -> String {
    match source {
        Source::Stdin => "stdin".to_string(),
        Source::File(p) => {
            let name = p
                .file_name()
                .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
            name.strip_suffix(".zst")
                .map_or(name.clone(), str::to_string)
        }
    }
}

/// Writes the records read from one input as Parquet files under `dir`.
pub fn convert_records(
    records: &Records,
    dir: &Path,
    base: &str,
    mode: u32,
) -> Result<Converted, crate::output::parquet::ParquetError> {
    let mut sink = ParquetSink::new(dir, base, mode);
    let mut no_time = 0;
    for run in &records.runs {
        for meta in &run.meta {
            let Some(wall_ns) = run.wall_ns(meta.ktime_ns) else {
                no_time += 1;
                continue;
            };
            let info = RowInfo {
                seq: meta.seq,
                wall_ns,
                host: &run.host,
                boot_id: &run.boot_id,
            };
            let fields = MetaFields {
                tracer_version: meta.tracer_version.as_deref(),
                schema_version: meta.schema_version,
                kernel: meta.kernel.as_deref(),
                options: meta.options.as_deref(),
            };
            sink.write_meta(&info, meta.ktime_ns, &fields)?;
        }
    }
    for rec in &records.records {
        let run = &records.runs[rec.run];
        let Some(wall_ns) = run.wall_ns(rec.record.ktime_ns) else {
            no_time += 1;
            continue;
        };
        let info = RowInfo {
            seq: rec.seq,
            wall_ns,
            host: &run.host,
            boot_id: &run.boot_id,
        };
        sink.write(&info, &rec.record)?;
    }
    sink.close()?;
    Ok(Converted {
        rows: sink.rows(),
        files: sink.files().to_vec(),
        bad: records.bad_total(),
        no_time,
    })
}

/// Runs `tracer convert`; the exit code on success.
pub fn run(args: &Args) -> anyhow::Result<u8> {
    let dir = &args.output;
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{}: not a directory; give -o a directory to write the Parquet files under",
            dir.display()
        );
    }
    let sources: Vec<Source> = args.files.iter().map(|f| Source::from_arg(f)).collect();
    if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
        bail!("`-` (stdin) is given more than once; give it once");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut stdin = io::stdin().lock();
    for source in &sources {
        let name = source.name();
        // One input at a time: memory holds one input's records, not all of them.
        let mut progress = Progress::stderr();
        let records =
            reader::read_sources(std::slice::from_ref(source), &mut stdin, &mut progress)?;
        if records.records.is_empty() && records.runs.iter().all(|r| r.meta.is_empty()) {
            match records.first_bad.first() {
                None => bail!("{name}: no records to convert (the input is empty)"),
                Some(first) => bail!(
                    "{name}: none of its lines is a tracer record (first: {first}); \
                     give a JSON Lines file written by `tracer watch -o FILE`"
                ),
            }
        }
        let done = convert_records(&records, dir, &base_name(source), args.file_mode)
            .with_context(|| format!("converting {name}"))?;
        report(&name, &records, &done);
    }
    Ok(0)
}

/// One line per input on stderr, and the skipped lines as `tracer report` shows them.
fn report(name: &str, records: &Records, done: &Converted) {
    let files: Vec<String> = done.files.iter().map(|f| f.display().to_string()).collect();
    eprintln!(
        "{name}: {} rows in {} file{}: {}",
        done.rows,
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        files.join(", ")
    );
    if done.bad > 0 {
        let reasons: Vec<String> = (records.bad.iter())
            .map(|(k, n)| format!("{n} {}", k.describe()))
            .collect();
        eprintln!(
            "{name}: {} line{} skipped: {}",
            done.bad,
            if done.bad == 1 { "" } else { "s" },
            reasons.join(", ")
        );
        for b in &records.first_bad {
            eprintln!("  {b}");
        }
    }
    if done.no_time > 0 {
        eprintln!(
            "{name}: {} records left out: no line of their run has a readable `ts`",
            done.no_time
        );
    }
}

#[cfg(test)]
mod tests;
