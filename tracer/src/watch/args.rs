//! `tracer watch`'s arguments: what to trace, where the records go, the output
//! file's rotation, alert thresholds and secret redaction. `cli` only places
//! [`Args`] under the `watch` subcommand.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::ValueEnum;

pub use super::filter::EventType;
use crate::{
    filter::ProcFilter,
    parse::{
        parse_at_least_one, parse_count, parse_duration, parse_mode, parse_ring_size, parse_size,
    },
    proc_args::ProcArgs,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One readable line per event.
    Text,
    /// JSON Lines, schema in docs/events.md.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour when stdout is a terminal.
    Auto,
    Always,
    Never,
}

/// Everything `tracer watch` is told. (Its `--help` summary is the `watch`
/// subcommand's, in cli.rs.)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write JSON Lines records to FILE (`-` for stdout). The file is created with mode
    /// --file-mode (0600) and starts with a `meta` record; SIGHUP makes tracer reopen it.
    /// An existing non-empty FILE is refused unless --append or --force says what to do
    /// with it; a symbolic link at FILE is refused.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Form of the lines printed on stdout [default: text; jsonl with `-o -`].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print no event lines on stdout; alerts still go to stderr as they fire, and the
    /// summary at the end. Exit status 3 says records or events were lost (README).
    #[arg(short, long)]
    pub quiet: bool,
    /// Follow this existing process and its descendants; end when they are all gone.
    #[arg(short, long = "pid", value_name = "PID", conflicts_with = "command")]
    pub pids: Vec<u32>,
    /// Also record thread creation and thread exit.
    #[arg(long)]
    pub threads: bool,
    /// Stop after this long (e.g. 30s, 1h30m, 500ms; a plain number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Size of the kernel ring buffer (power of two, e.g. 4M, 16M, 64M). Larger rides out bigger
    /// bursts; it is mapped twice into tracer, so it counts double in tracer's RSS.
    #[arg(long, value_name = "SIZE", value_parser = parse_ring_size, default_value = "8M")]
    pub ring_size: u32,
    /// Show times on the terminal in UTC (default: local time, TZ honoured). Files are always UTC.
    #[arg(long)]
    pub utc: bool,
    /// When to colour the text lines.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub file: FileArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub redact: RedactArgs,
    /// Run COMMAND and follow its whole process tree, including orphans that outlive it;
    /// tracer exits with COMMAND's exit status once the last of them is gone.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Which records are written, on stdout and to the output file alike. The process
/// tree and the alerts still see every event; `meta`, `lost`, `alert` and
/// `alert_end` records are always written. Filters of different kinds must all
/// match; a filter given twice matches either value.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    #[command(flatten)]
    pub proc: ProcArgs,
    /// Only these record types (comma-separated), e.g. `--events exec_failed` for failed
    /// execs only. `process` is the snapshot of the processes running at start-up.
    #[arg(long, value_name = "TYPES", value_enum, value_delimiter = ',')]
    pub events: Vec<EventType>,
}

impl FilterArgs {
    /// The process part (`--uid`, `--comm`, `--cgroup`).
    pub fn procs(&self) -> ProcFilter {
        self.proc.procs()
    }
}

/// How the output file (`-o FILE`) is written: rotation, compression, permissions.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output file")]
pub struct FileArgs {
    /// Rotate the output file when it reaches SIZE (e.g. 100M, 1G): FILE becomes FILE.1,
    /// FILE.1 becomes FILE.2, and so on; the new FILE starts with a `meta` record and the
    /// process tree, so each file can be reported on its own.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "output")]
    pub rotate_size: Option<u64>,
    /// Rotated files to keep (FILE.1 ... FILE.N); the oldest is deleted.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "rotate_size",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rotate_keep: u32,
    /// Compress rotated files with zstd (FILE.1.zst, ...) in the background; `tracer report`
    /// reads them as they are.
    #[arg(long, requires = "rotate_size")]
    pub compress: bool,
    /// Permissions of the files tracer creates, in octal (applied exactly, whatever the umask).
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, default_value = "0600", requires = "output")]
    pub file_mode: u32,
    /// Add to an existing FILE: its records stay, and this run's part starts with its
    /// own `meta` record (for a service that restarts).
    #[arg(long, requires = "output", conflicts_with = "force")]
    pub append: bool,
    /// Replace an existing FILE (its records are lost).
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Also write the output file's records as Parquet under DIR (zstd, in
    /// `host=H/date=YYYY-MM-DD/` partitions, the columns of `tracer convert`): one file
    /// per output file (per rotation) and UTC day, given its name when complete.
    #[arg(long, value_name = "DIR", requires = "output")]
    pub parquet_dir: Option<PathBuf>,
}

/// When `watch` raises `alert` records (docs/events.md); each is raised once per
/// episode, which ends after the condition has been false for `--alert-quiet`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Alerts")]
pub struct AlertArgs {
    /// Raise no alerts.
    #[arg(long)]
    pub no_alerts: bool,
    /// Fork storm: a parent (or the processes of one cgroup) creating more than N processes per second...
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = parse_at_least_one)]
    pub storm_rate: u64,
    /// ...for this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    pub storm_for: Duration,
    /// Zombie build-up: a parent holding more than N unreaped zombies...
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub zombie_max: u64,
    /// ...or a zombie older than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub zombie_age: Duration,
    /// Crash loop: the same executable under the same parent exiting non-zero or by a signal N times...
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = parse_count)]
    pub crash_count: u32,
    /// ...within this time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub crash_window: Duration,
    /// Fork failures: N failed forks by one user's processes in one cgroup...
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_count)]
    pub fork_fail_count: u32,
    /// ...within this time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub fork_fail_window: Duration,
    /// An alert's episode ends (an `alert_end` record) once its condition has been false this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub alert_quiet: Duration,
    /// Run CMD (with /bin/sh -c) for each `alert` and `alert_end`, the record as one JSON line
    /// on its stdin, one alert at a time, e.g. --on-alert 'curl -sS -d @- https://hooks.example/x'.
    /// Tracing never waits for it; its output goes to stderr. README: Alerts delivered.
    #[arg(long, value_name = "CMD", conflicts_with = "no_alerts")]
    pub on_alert: Option<OsString>,
    /// Kill an --on-alert run (its whole process group) that takes longer than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", requires = "on_alert")]
    pub on_alert_timeout: Duration,
}

impl Args {
    /// The form of stdout's lines: `--format`, or JSON Lines with `-o -`.
    pub fn format(&self) -> Format {
        let to_stdout = self.output.as_deref() == Some(std::path::Path::new("-"));
        self.format.unwrap_or(if to_stdout {
            Format::Jsonl
        } else {
            Format::Text
        })
    }
}

impl AlertArgs {
    /// The alert engine's thresholds; `None` with `--no-alerts`.
    pub fn config(&self) -> Option<crate::alerts::Config> {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        (!self.no_alerts).then(|| crate::alerts::Config {
            storm_rate: self.storm_rate,
            storm_for_ns: ns(self.storm_for),
            zombie_max: self.zombie_max,
            zombie_age_ns: ns(self.zombie_age),
            crash_count: self.crash_count,
            crash_window_ns: ns(self.crash_window),
            fork_fail_count: self.fork_fail_count,
            fork_fail_window_ns: ns(self.fork_fail_window),
            quiet_ns: ns(self.alert_quiet),
        })
    }
}

/// Secrets in command lines: replaced by `***` in every argv written
/// (docs/redaction.md lists the default rules).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Secrets")]
pub struct RedactArgs {
    /// Replace what REGEX matches in any argument by `***` (only its group named
    /// `secret`, if it has one: 'card=(?P<secret>\d+)'), besides the default rules.
    /// Repeatable.
    #[arg(long = "redact", value_name = "REGEX")]
    pub patterns: Vec<String>,
    /// Turn off the default rules (passwords, tokens, keys, Authorization headers,
    /// user:password@ in URLs); only --redact patterns apply.
    #[arg(long)]
    pub no_default_redact: bool,
}

impl RedactArgs {
    /// The redactor these flags ask for; an error names a bad pattern.
    pub fn redactor(&self) -> Result<crate::redact::Redactor, crate::redact::RedactError> {
        crate::redact::Redactor::new(&self.patterns, !self.no_default_redact)
    }
}

/// `tracer watch`'s arguments parsed without the rest of the command line, for
/// tests: the first word stands for the program name.
#[cfg(test)]
pub(crate) fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    #[derive(Debug, clap::Parser)]
    struct Watch {
        #[command(flatten)]
        args: Args,
    }
    <Watch as clap::Parser>::try_parse_from(args).map(|w| w.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_defaults() {
        let w = parse(&["watch"]).unwrap();
        assert_eq!(w.format(), Format::Text);
        assert_eq!(
            parse(&["watch", "-o", "-"]).unwrap().format(),
            Format::Jsonl
        );
        assert_eq!(w.ring_size, 8 << 20);
        assert!(
            !w.quiet
                && !w.threads
                && w.output.is_none()
                && w.command.is_empty()
                && w.pids.is_empty()
        );
    }

    #[test]
    fn watch_command_after_double_dash_keeps_its_own_flags() {
        let w = parse(&[
            "watch",
            "-o",
            "x.jsonl",
            "--quiet",
            "--",
            "sh",
            "-c",
            "exit 3",
            "--threads",
        ])
        .unwrap();
        assert_eq!(w.output.as_deref(), Some(std::path::Path::new("x.jsonl")));
        assert!(w.quiet);
        assert!(!w.threads);
        assert_eq!(w.command, vec!["sh", "-c", "exit 3", "--threads"]);
    }

    #[test]
    fn pid_and_command_conflict() {
        assert!(parse(&["watch", "-p", "1", "--", "true"]).is_err());
        assert_eq!(
            parse(&["watch", "-p", "1", "-p", "2"]).unwrap().pids,
            vec![1, 2]
        );
    }

    #[test]
    fn alert_defaults_are_the_engine_defaults() {
        let w = parse(&["watch"]).unwrap();
        assert_eq!(w.alerts.config(), Some(crate::alerts::Config::default()));
        assert_eq!(
            parse(&["watch", "--no-alerts"]).unwrap().alerts.config(),
            None
        );
    }

    #[test]
    fn alert_flags() {
        let w = parse(&[
            "watch",
            "--storm-rate",
            "50",
            "--storm-for",
            "1500ms",
            "--zombie-max",
            "0",
            "--zombie-age",
            "2m",
            "--crash-count",
            "3",
            "--crash-window",
            "10s",
            "--fork-fail-count",
            "1",
            "--fork-fail-window",
            "1s",
            "--alert-quiet",
            "2s",
            "--",
            "make",
            "--storm-rate",
            "7",
        ])
        .unwrap();
        let c = w.alerts.config().unwrap();
        assert_eq!(
            c,
            crate::alerts::Config {
                storm_rate: 50,
                storm_for_ns: 1_500_000_000,
                zombie_max: 0,
                zombie_age_ns: 120_000_000_000,
                crash_count: 3,
                crash_window_ns: 10_000_000_000,
                fork_fail_count: 1,
                fork_fail_window_ns: 1_000_000_000,
                quiet_ns: 2_000_000_000,
            }
        );
        assert_eq!(w.command, vec!["make", "--storm-rate", "7"]);
    }

    #[test]
    fn bad_alert_flags_are_refused() {
        for bad in [
            &["watch", "--storm-rate", "0"][..],
            &["watch", "--storm-rate=-5"],
            &["watch", "--storm-rate", "fast"],
            &["watch", "--storm-for", "0s"],
            &["watch", "--zombie-age", "soon"],
            &["watch", "--crash-count", "0"],
            &["watch", "--fork-fail-count", "1000001"],
            &["watch", "--alert-quiet", "5x"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn on_alert_flags() {
        let w = parse(&["watch"]).unwrap();
        assert_eq!(w.alerts.on_alert, None);
        let w = parse(&[
            "watch",
            "--on-alert",
            "cat >> a",
            "--on-alert-timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(
            w.alerts.on_alert.as_deref(),
            Some(std::ffi::OsStr::new("cat >> a"))
        );
        assert_eq!(w.alerts.on_alert_timeout, Duration::from_secs(2));
        assert!(parse(&["watch", "--on-alert-timeout", "2s"]).is_err());
        assert!(parse(&["watch", "--on-alert", "x", "--no-alerts"]).is_err());
    }

    #[test]
    fn redact_flags() {
        let w = parse(&["watch"]).unwrap();
        assert!(w.redact.patterns.is_empty() && !w.redact.no_default_redact);
        assert!(w.redact.redactor().unwrap().is_active());
        let w = parse(&[
            "watch",
            "--redact",
            r"card=\d+",
            r"--redact=(?i)sk_live_\w+",
            "--no-default-redact",
            "--",
            "app",
            "--redact",
            "x",
        ])
        .unwrap();
        assert_eq!(w.redact.patterns, [r"card=\d+", r"(?i)sk_live_\w+"]);
        assert!(w.redact.no_default_redact);
        assert_eq!(w.command, vec!["app", "--redact", "x"]);
        let r = w.redact.redactor().unwrap();
        let mut argv = vec![
            b"pay".to_vec(),
            b"card=42".to_vec(),
            b"--password=x".to_vec(),
        ];
        assert!(r.redact_argv(&mut argv));
        assert_eq!(argv, [&b"pay"[..], b"***", b"--password=x"]);
        let w = parse(&["watch", "--no-default-redact"]).unwrap();
        assert!(!w.redact.redactor().unwrap().is_active());
        // A bad pattern parses (the regex is checked when watch starts) and then
        // fails with a message naming it.
        let w = parse(&["watch", "--redact", "a(b"]).unwrap();
        let e = w.redact.redactor().unwrap_err().to_string();
        assert!(e.contains("'a(b'") && !e.contains('\n'), "{e}");
        assert!(parse(&["watch", "--redact"]).is_err());
    }

    #[test]
    fn file_flags() {
        let w = parse(&["watch", "-o", "x"]).unwrap();
        assert_eq!(
            (w.file.rotate_size, w.file.rotate_keep, w.file.compress),
            (None, 5, false)
        );
        assert_eq!(w.file.file_mode, 0o600);
        let w = parse(&[
            "watch",
            "-o",
            "x",
            "--rotate-size",
            "100M",
            "--rotate-keep",
            "3",
            "--compress",
            "--file-mode",
            "640",
        ])
        .unwrap();
        assert_eq!(w.file.rotate_size, Some(100 << 20));
        assert_eq!(w.file.rotate_keep, 3);
        assert!(w.file.compress);
        assert_eq!(w.file.file_mode, 0o640);
        // Each needs what it applies to.
        assert!(parse(&["watch", "--rotate-size", "1M"]).is_err());
        assert!(parse(&["watch", "-o", "x", "--compress"]).is_err());
        assert!(parse(&["watch", "-o", "x", "--rotate-keep", "2"]).is_err());
        assert!(parse(&["watch", "--file-mode", "0640"]).is_err());
        assert!(
            parse(&[
                "watch",
                "-o",
                "x",
                "--rotate-size",
                "1M",
                "--rotate-keep",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn filter_flags() {
        let w = parse(&["watch"]).unwrap();
        assert!(w.filter.procs().is_empty() && w.filter.events.is_empty());
        let w = parse(&[
            "watch",
            "--uid",
            "0",
            "--uid=65534",
            "--comm",
            "^sleep$",
            "--cgroup",
            "/system.slice/",
            "--events",
            "exec,exec_failed",
            "--events=exit",
            "--",
            "sh",
            "--uid",
            "7",
        ])
        .unwrap();
        let f = &w.filter;
        assert_eq!(f.proc.uids, [0, 65534]);
        assert_eq!(f.proc.comm.as_ref().unwrap().as_str(), "^sleep$");
        assert_eq!(f.proc.cgroup.as_deref(), Some("/system.slice"));
        assert_eq!(
            f.events,
            [EventType::Exec, EventType::ExecFailed, EventType::Exit]
        );
        assert_eq!(w.command, ["sh", "--uid", "7"]);
        for bad in [
            &["watch", "--uid", "root"][..],
            &["watch", "--comm", "a("],
            &["watch", "--cgroup", "system.slice"],
            &["watch", "--events", "exec,lost"],
            &["watch", "--events", "alert"],
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue
                ),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn ring_size_must_be_a_power_of_two() {
        assert_eq!(
            parse(&["watch", "--ring-size", "4M"]).unwrap().ring_size,
            4 << 20
        );
        assert!(parse(&["watch", "--ring-size", "3M"]).is_err());
    }
}
