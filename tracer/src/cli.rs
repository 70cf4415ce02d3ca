//! Command-line interface: argument parsing and the entry point `main.rs` calls.

use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
EXAMPLES:
    tracer watch                              # every fork, exec, exit and reap on this machine
    tracer watch -o events.jsonl --quiet      # record to a JSON Lines file, print only alerts
    tracer watch -o run.jsonl -- make -j8     # run make, follow its whole process tree, then stop
    tracer watch -p 1234                      # follow process 1234 and everything it starts
    tracer watch --threads --duration 30s     # include threads, stop after 30 seconds
    tracer watch --format jsonl | jq .        # JSON Lines on stdout
    tracer watch --storm-rate 50              # alert on fork storms above 50 forks/s
    tracer report events.jsonl                # who forked most, zombies, crashes, timeline
    tracer report --tree -p 1234 run.jsonl    # the process tree below pid 1234, folded
    tracer report --format json a.jsonl b.jsonl   # several files or hosts merged, as JSON
    tracer report --perfetto t.json --flamegraph f.svg run.jsonl  # timeline and flame graph files
    zcat old.jsonl.gz | tracer report -       # read a compressed recording from stdin";

#[derive(Debug, Parser)]
#[command(name = "tracer", version, about = "Trace process lifecycles: fork, exec, exit, zombies and who reaps them", after_help = EXAMPLES)]
pub struct Cli {
    /// More detail on stderr (-v: kernel layout resolved at start-up).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace process events live, on the terminal and/or to a JSON Lines file.
    #[command(after_help = EXAMPLES)]
    Watch(WatchArgs),
    /// Report on recorded JSON Lines: top forkers, fork rate, zombies, crashes, the tree.
    #[command(after_help = EXAMPLES)]
    Report(ReportArgs),
}

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

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Write JSON Lines records to FILE (`-` for stdout). The file is created with mode
    /// --file-mode (0600) and starts with a `meta` record; SIGHUP makes tracer reopen it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Form of the lines printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
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
    /// Stop after this long (e.g. 30s, 5m, 1h, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Size of the kernel ring buffer (power of two, e.g. 4M, 16M, 64M). Larger rides out bigger
    /// bursts; it is mapped twice into tracer, so it counts double in tracer's RSS.
    #[arg(long, value_name = "SIZE", value_parser = parse_ring_size, default_value = "8M")]
    pub ring_size: u32,
    /// When to colour the text lines.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
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

/// How the output file (`-o FILE`) is written: rotation, compression, permissions.
#[derive(Debug, Clone, Args)]
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
}

/// When `watch` raises `alert` records (docs/events.md); each is raised once per
/// episode, which ends after the condition has been false for `--alert-quiet`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Alerts")]
pub struct AlertArgs {
    /// Raise no alerts.
    #[arg(long)]
    pub no_alerts: bool,
    /// Fork storm: a parent (or the processes of one cgroup) creating more than N processes per second...
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
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
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub crash_count: u32,
    /// ...within this time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub crash_window: Duration,
    /// Fork failures: N failed forks by one user's processes in one cgroup...
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub fork_fail_count: u32,
    /// ...within this time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub fork_fail_window: Duration,
    /// An alert's episode ends (an `alert_end` record) once its condition has been false this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub alert_quiet: Duration,
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
#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A report to read in a terminal.
    Text,
    /// One JSON document (structure in docs/report.md).
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON Lines files written by `tracer watch -o` (`-` for stdin). Several files
    /// (rotated, or from several hosts) are merged in time order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Form of the output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Show the reconstructed process tree (pstree-like) instead of the report.
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
}

/// Parses `30s`, `5m`, `1h`, `250ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 30s, 5m, 1h or 500ms"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit {unit:?}: use ms, s, m or h"
            ));
        }
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `16M`, `4096K`, `1G` or bytes; must be a power of two of at least 4 KiB
/// (kernel/bpf/ringbuf.c ringbuf_map_alloc requires a page-aligned power of two).
pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let bad =
        || format!("{s:?}: the ring buffer size must be a power of two from 4K to 1G, e.g. 16M");
    let bytes = parse_bytes(s, "4M, 16M or 64M")?;
    if bytes < 4096 || !bytes.is_power_of_two() || bytes > 1 << 30 {
        return Err(bad());
    }
    Ok(bytes as u32)
}

/// Parses a file size: `100M`, `512K`, `2G` or bytes (K, M, G are powers of 1024);
/// at least 4K.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = parse_bytes(s, "100M, 512K or 1G")?;
    if bytes < 4096 {
        return Err(format!("{s:?}: the size must be at least 4K"));
    }
    Ok(bytes)
}

/// A byte count with an optional K, M or G suffix (powers of 1024); `examples`
/// goes into the error for text that is no size.
fn parse_bytes(s: &str, examples: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use e.g. {examples}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses permission bits in octal (`600`, `0640`, `0o640`). The owner must be able to
/// read and write (tracer reopens its files); no setuid, setgid or sticky bits.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("{s:?} is not an octal mode: use e.g. 0600 or 0640"))?;
    if mode > 0o777 {
        return Err(format!(
            "{s:?}: only permission bits (at most 0777) can be given"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{s:?}: the owner must be able to read and write the file (e.g. 0600 or 0640)"
        ));
    }
    Ok(mode)
}

/// Entry point: parses arguments, runs the command, turns errors into one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Watch(args) => crate::watch::run_blocking(args, cli.verbose),
        Command::Report(args) => crate::report::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the outermost context and its causes, joined.
            eprintln!("tracer: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<WatchArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("tracer").chain(args.iter().copied()))?;
        match cli.command {
            Command::Watch(w) => Ok(w),
            Command::Report(_) => panic!("not watch"),
        }
    }

    fn parse_report(args: &[&str]) -> Result<ReportArgs, clap::Error> {
        let cli =
            Cli::try_parse_from(["tracer", "report"].into_iter().chain(args.iter().copied()))?;
        match cli.command {
            Command::Report(r) => Ok(r),
            Command::Watch(_) => panic!("not report"),
        }
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

    #[test]
    fn watch_defaults() {
        let w = parse(&["watch"]).unwrap();
        assert_eq!(w.format, Format::Text);
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
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
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
    fn sizes_and_modes() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("5000"), Ok(5000));
        assert!(parse_size("1K").is_err());
        assert!(parse_size("big").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0400").unwrap_err().contains("owner"));
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("0x1f").is_err());
        assert!(parse_mode("rw-").is_err());
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("4M"), Ok(4 << 20));
        assert_eq!(parse_ring_size("4096k"), Ok(4 << 20));
        assert_eq!(parse_ring_size("65536"), Ok(65536));
        assert!(parse_ring_size("3M").unwrap_err().contains("power of two"));
        assert!(parse_ring_size("1K").is_err());
        assert!(parse_ring_size("lots").is_err());
        assert!(parse(&["watch", "--ring-size", "3M"]).is_err());
    }
}
