//! `tracer report`'s arguments: the recordings to read, the form of the report,
//! the tree's roots and the extra files to write. `cli` only places [`Args`]
//! under the `report` subcommand.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::parse::parse_mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A report to read in a terminal.
    Text,
    /// One JSON document (structure in docs/report.md).
    Json,
}

/// Everything `tracer report` is told. (Its `--help` summary is the `report`
/// subcommand's, in cli.rs.)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON Lines files written by `tracer watch -o` (`-` for stdin). Several files
    /// (rotated, or from several hosts) are merged in time order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Form of the output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Show the reconstructed process tree (pstree-like, identical subtrees folded as
    /// `200*[bash───sleep]`) instead of the report.
    #[arg(long)]
    pub tree: bool,
    /// Root the tree at the processes with this pid (implies --tree; repeatable).
    #[arg(short, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Root the tree at the processes with this command name or executable name (implies --tree).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Rows in each ranked list of the report.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub top: u32,
    /// Also write a timeline for ui.perfetto.dev or chrome://tracing (Chrome trace event
    /// JSON): a track per process in tree order, running and zombie phases, execs.
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// Also write an ancestry flame graph (SVG): the programs run, from the root down;
    /// width = processes spawned.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// Permissions of the --perfetto and --flamegraph files, in octal (they hold
    /// command lines). Each is written under a temporary name and renamed into place;
    /// `-` writes it to stdout instead of the report; an input is never overwritten.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, default_value = "0600")]
    pub file_mode: u32,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Report {
        #[command(flatten)]
        args: Args,
    }

    fn parse_report(args: &[&str]) -> Result<Args, clap::Error> {
        Report::try_parse_from(std::iter::once("report").chain(args.iter().copied()))
            .map(|r| r.args)
    }

    #[test]
    fn report_defaults_and_files() {
        let r = parse_report(&["a.jsonl", "-", "b.jsonl"]).unwrap();
        assert_eq!(
            r.files,
            vec![
                PathBuf::from("a.jsonl"),
                PathBuf::from("-"),
                PathBuf::from("b.jsonl")
            ]
        );
        assert_eq!(r.format, ReportFormat::Text);
        assert!(!r.tree && r.pids.is_empty() && r.comm.is_none());
        assert_eq!(r.top, 5);
    }

    #[test]
    fn report_needs_a_file() {
        assert!(parse_report(&[]).is_err());
        assert!(parse_report(&["--tree"]).is_err());
    }

    #[test]
    fn report_options() {
        let r = parse_report(&[
            "--format", "json", "--tree", "-p", "12", "--pid", "13", "--comm", "make", "--top",
            "20", "x.jsonl",
        ])
        .unwrap();
        assert_eq!(r.format, ReportFormat::Json);
        assert!(r.tree);
        assert_eq!(r.pids, vec![12, 13]);
        assert_eq!(r.comm.as_deref(), Some("make"));
        assert_eq!(r.top, 20);
        assert!(parse_report(&["--top", "0", "x"]).is_err());
        assert!(parse_report(&["--format", "yaml", "x"]).is_err());
        assert!(parse_report(&["--pid", "abc", "x"]).is_err());
    }
}
