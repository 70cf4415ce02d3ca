//! `tracer report`'s arguments: the recordings to read, the form of the report,
//! the tree's roots and the extra files to write. `cli` only places [`Args`]
//! under the `report` subcommand.

use std::path::PathBuf;

use clap::ValueEnum;
#[cfg(test)]
use regex::Regex;

use super::window::{When, parse_when};
use crate::{
    filter::ProcFilter,
    parse::{parse_count, parse_mode},
    proc_args::ProcArgs,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A report to read in a terminal.
    Text,
    /// One JSON document (structure in docs/report.md).
    Json,
}

/// Everything `tracer report` is told. (Its `--help` summary is the `report`
/// subcommand's, in cli.rs.) The process filter's help is reworded for counting.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("uids", |a| a.help(
        "Count only processes of this user id (repeatable); with --tree, root the tree at them"
    )),
    mut_arg("comm", |a| a.help(
        "Count only processes whose comm, or a program they ran, matches REGEX \
         (unanchored: '^make$' for exactly make); with --tree, root the tree at them"
    )),
    mut_arg("cgroup", |a| a.help(
        "Count only processes in this cgroup or below it, as /proc/PID/cgroup names it \
         (e.g. /system.slice/nginx.service); with --tree, root the tree at them"
    )),
)]
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
    /// Only what happened from WHEN on: an RFC 3339 time (2026-11-22T04:13:22Z), or
    /// -DURATION before the recording's last record (-1h, -1h30m), or +DURATION after
    /// its first (+5m). The recording is cut there, as if tracing had started then.
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    pub since: Option<When>,
    /// Only what happened up to WHEN (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    pub until: Option<When>,
    #[command(flatten)]
    pub proc: ProcArgs,
    /// Rows in each ranked list of the report.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = parse_count)]
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

impl Args {
    /// `--uid`, `--comm` and `--cgroup`.
    pub fn procs(&self) -> ProcFilter {
        self.proc.procs()
    }

    /// The filters given, as the command line says them, for the report's
    /// `selection`; empty without any.
    pub fn selection(&self) -> Vec<String> {
        let mut out = Vec::new();
        let when = |w: &When| match w {
            When::At(t) => super::walltime::rfc3339(*t),
            When::BeforeEnd(d) => format!("-{}", humantime::format_duration(*d)),
            When::AfterStart(d) => format!("+{}", humantime::format_duration(*d)),
        };
        if let Some(w) = &self.since {
            out.push(format!("--since {}", when(w)));
        }
        if let Some(w) = &self.until {
            out.push(format!("--until {}", when(w)));
        }
        out.extend(self.proc.uids.iter().map(|u| format!("--uid {u}")));
        if let Some(re) = &self.proc.comm {
            out.push(format!("--comm {:?}", re.as_str()));
        }
        if let Some(c) = &self.proc.cgroup {
            out.push(format!("--cgroup {c}"));
        }
        out
    }
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
        assert!(!r.tree && r.pids.is_empty() && r.proc.comm.is_none());
        assert!(r.procs().is_empty() && r.since.is_none() && r.until.is_none());
        assert!(r.selection().is_empty());
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
        assert_eq!(r.proc.comm.as_ref().map(Regex::as_str), Some("make"));
        assert_eq!(r.top, 20);
        assert!(parse_report(&["--top", "0", "x"]).is_err());
        assert!(parse_report(&["--format", "yaml", "x"]).is_err());
        assert!(parse_report(&["--pid", "abc", "x"]).is_err());
    }

    #[test]
    fn report_window_and_filters() {
        let r = parse_report(&[
            "--since",
            "-1h30m",
            "--until=2026-11-22T04:13:22Z",
            "--uid",
            "0",
            "--uid",
            "65534",
            "--comm",
            "^sleep$",
            "--cgroup",
            "/system.slice/",
            "x.jsonl",
        ])
        .unwrap();
        assert_eq!(
            r.since,
            Some(When::BeforeEnd(std::time::Duration::from_secs(5400)))
        );
        assert!(matches!(r.until, Some(When::At(_))));
        assert_eq!(r.proc.uids, [0, 65534]);
        assert_eq!(r.proc.cgroup.as_deref(), Some("/system.slice"));
        assert_eq!(
            r.selection(),
            [
                "--since -1h 30m",
                "--until 2026-11-22T04:13:22.000000000Z",
                "--uid 0",
                "--uid 65534",
                "--comm \"^sleep$\"",
                "--cgroup /system.slice"
            ]
        );
        assert_eq!(
            parse_report(&["--since", "+5m", "x"]).unwrap().since,
            Some(When::AfterStart(std::time::Duration::from_secs(300)))
        );
        for bad in [
            &["--since", "yesterday", "x"][..],
            &["--until", "-5 parsecs", "x"],
            &["--comm", "(", "x"],
            &["--cgroup", "user.slice", "x"],
        ] {
            assert!(parse_report(bad).is_err(), "{bad:?}");
        }
    }
}
