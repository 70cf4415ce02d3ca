//! `tracer report FILE...`: what a recording says, after the fact.
//!
//! Reads JSON Lines written by `tracer watch -o` (several files or hosts merged,
//! `-` for stdin), rebuilds every process's life ([`history::History`]), and prints
//! a report for a terminal ([`text`]), the same as JSON ([`json`], described in
//! docs/report.md), or the process tree ([`tree`]); and on request a timeline for
//! Perfetto ([`perfetto`]) and an ancestry flame graph ([`flamegraph`]) in files.
//!
//! [`load`] gives the parsed records and history, the starting point for any other
//! output.

mod args;
pub mod flamegraph;
pub mod fmt;
pub mod history;
pub mod json;
pub mod lines;
pub mod outfile;
pub mod perfetto;
pub mod progress;
pub mod reader;
pub mod services;
pub mod stats;
pub mod text;
pub mod tree;
pub mod unit;
pub mod walltime;
pub mod window;

#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod views_tests;

use std::io::{self, Write};

use anyhow::{Context, bail};

pub use args::{Args, ReportFormat};
use history::History;
use progress::Progress;
use reader::{Records, Source};

/// A recording, read and rebuilt.
pub struct Loaded {
    /// What reading found: runs, inputs, bad lines. `records.records` is empty: the
    /// records went into `history`.
    pub records: Records,
    pub history: History,
}

/// Reads the sources and rebuilds the history. Fails (with a message saying what to
/// do) when an input cannot be read or holds no record at all; bad lines are only
/// counted.
pub fn load(sources: &[Source], progress: &mut Progress) -> anyhow::Result<Loaded> {
    let mut records = reader::read_all(sources, progress)?;
    check_not_empty(&records)?;
    // The history keeps what the records say; `records` keeps the counts.
    let history = History::take(&mut records);
    Ok(Loaded { records, history })
}

/// Every stage of `tracer report` on one input held in memory: read, rebuild the
/// history, then render the text and JSON reports and the tree (whole, and rooted at
/// the first process's pid). Returns the text report. It is what the fuzz target
/// (fuzz/fuzz_targets/report_reader.rs) drives: no bytes may make it panic. The
/// only error is an input that is not JSON Lines at all (gzip).
pub fn analyse_bytes(bytes: &[u8]) -> Result<String, reader::ReadError> {
    let mut records = reader::read_bytes(&[("input", bytes)])?;
    let history = History::take(&mut records);
    let report = stats::compute(&records, &history, stats::Options { top: 5 });
    let mut json = Vec::new();
    json::write(&mut json, &report).expect("the report serializes to JSON");
    for sel in [
        tree::Select::default(),
        tree::Select {
            pids: history.procs.first().map(|p| p.pid()).into_iter().collect(),
            ..Default::default()
        },
    ] {
        let _ = tree::render(&history, &sel);
        json::write(&mut json, &tree::doc(&history, &sel)).expect("the tree serializes to JSON");
    }
    Ok(text::render(&report))
}

fn check_not_empty(records: &Records) -> anyhow::Result<()> {
    if !records.records.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = records.inputs.iter().map(|i| i.name.as_str()).collect();
    let names = names.join(", ");
    let lines: u64 = records.inputs.iter().map(|i| i.lines).sum();
    match records.first_bad.first() {
        None => bail!(
            "{names}: no records to report (the input is empty); record some with `tracer watch -o FILE`"
        ),
        Some(first) => bail!(
            "{names}: none of the {lines} lines is a tracer record (first: {first}); \
             give a JSON Lines file written by `tracer watch -o FILE`"
        ),
    }
}

/// Runs `tracer report`; the exit code on success.
pub fn run(args: &Args) -> anyhow::Result<u8> {
    let outputs: Vec<outfile::Output> = [
        ("--perfetto", &args.perfetto),
        ("--flamegraph", &args.flamegraph),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_deref().map(|path| outfile::Output { flag, path }))
    .collect();
    // Before anything is read: an output must not destroy an input.
    outfile::check(&outputs, &args.files)?;
    let output = |flag: &str| outputs.iter().find(|o| o.flag == flag);
    let sources: Vec<Source> = args.files.iter().map(|f| Source::from_arg(f)).collect();
    let mut progress = Progress::stderr();
    let mut records = reader::read_all(&sources, &mut progress)?;
    check_not_empty(&records)?;
    window::cut(&mut records, args.since, args.until).map_err(anyhow::Error::msg)?;
    let history = History::take(&mut records);
    let mut loaded = Loaded { records, history };
    let procs = args.procs();
    let sel = tree::Select {
        pids: args.pids.clone(),
        procs: procs.clone(),
    };
    let want_tree = args.tree || !args.pids.is_empty();
    let roots = tree::roots(&loaded.history, &sel);
    if (!sel.pids.is_empty() || !procs.is_empty()) && roots.is_empty() {
        let mut given: Vec<String> = args.pids.iter().map(|p| format!("--pid {p}")).collect();
        given.extend(
            args.selection()
                .into_iter()
                .filter(|s| !s.starts_with("--since") && !s.starts_with("--until")),
        );
        bail!(
            "no process in the recording matches {}; `tracer report --tree FILE` shows them all",
            given.join(" ")
        );
    }
    // The files first: a file that cannot be written fails the command before
    // the report is printed.
    if let Some(o) = output("--perfetto") {
        let path = o.path;
        let events = outfile::write(o, "Perfetto trace", args.file_mode, |w| {
            perfetto::write(w, &loaded.history, &roots)
        })?;
        eprintln!(
            "wrote {} ({} events)",
            path.display(),
            fmt::thousands(events)
        );
    }
    if let Some(o) = output("--flamegraph") {
        let path = o.path;
        let folded = flamegraph::folded(&loaded.history, &roots);
        if folded.processes == 0 {
            bail!(
                "{}: no flame graph written: the recording has no process whose fork was recorded",
                path.display()
            );
        }
        outfile::write(o, "flame graph", args.file_mode, |w| {
            flamegraph::write(w, &folded)
        })?;
        eprintln!(
            "wrote {} ({} processes in {} stacks)",
            path.display(),
            fmt::thousands(folded.processes),
            fmt::thousands(folded.lines.len() as u64)
        );
    }
    if outputs.iter().any(outfile::Output::is_stdout) {
        // stdout carries that file; the report would corrupt it.
        return Ok(0);
    }
    if !want_tree && !procs.is_empty() {
        // The report counts the selected processes only; the files above (and
        // the tree) show them with their descendants.
        loaded.history.retain(|p| window::proc_matches(&procs, p));
    }
    let stdout = io::stdout().lock();
    let result = write_output(stdout, args, &loaded, want_tree, &sel);
    match result {
        Ok(()) => Ok(0),
        // `tracer report f | head`: the reader has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e).context("cannot write the report to stdout"),
    }
}

fn write_output(
    mut out: impl Write,
    args: &Args,
    loaded: &Loaded,
    want_tree: bool,
    sel: &tree::Select,
) -> io::Result<()> {
    let h = &loaded.history;
    match (want_tree, args.format) {
        (true, ReportFormat::Text) => out.write_all(tree::render(h, sel).as_bytes())?,
        (true, ReportFormat::Json) => json::write(&mut out, &tree::doc(h, sel))?,
        (false, format) => {
            let mut report = stats::compute(
                &loaded.records,
                h,
                stats::Options {
                    top: args.top as usize,
                },
            );
            report.selection = args.selection();
            match format {
                ReportFormat::Text => out.write_all(text::render(&report).as_bytes())?,
                ReportFormat::Json => json::write(&mut out, &report)?,
            }
        }
    }
    out.flush()
}
