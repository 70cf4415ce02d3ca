//! Command-line interface: the entry point `main.rs` calls. Each subcommand owns
//! its arguments ([`crate::watch::Args`], [`crate::report::Args`]); this only
//! places them under their names and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::path::Path;

use crate::{convert, record::Record, report, top, watch};

const EXAMPLES: &str = "\
EXAMPLES:
    tracer watch                              # every fork, exec, exit and reap on this machine
    tracer watch -o run.jsonl -- make -j8     # run make, follow its whole process tree, then stop
    tracer report events.jsonl                # who forked most, zombies, crashes, timeline
    sudo tracer top                           # live view: the busiest forkers, zombies, alerts

Each subcommand's --help has its own examples.";

const WATCH_EXAMPLES: &str = "\
EXAMPLES:
    tracer watch                              # every fork, exec, exit and reap on this machine
    tracer watch -o events.jsonl --quiet      # record to a JSON Lines file, print only alerts
    tracer watch -o events.jsonl --append     # add a run to an existing recording
    tracer watch -o run.jsonl -- make -j8     # run make, follow its whole process tree, then stop
    tracer watch -p 1234                      # follow process 1234 and everything it starts
    tracer watch --threads --duration 1h30m   # include threads, stop after an hour and a half
    tracer watch --utc                        # times in UTC rather than local time
    tracer watch --format jsonl | jq .        # JSON Lines on stdout
    tracer watch --storm-rate 50              # alert on fork storms above 50 forks/s
    tracer watch --on-alert 'curl -sS -d @- https://hooks.example/t'  # each alert as JSON to a webhook
    tracer watch --events exec_failed         # failed execs only
    tracer watch --uid 1000 --comm '^python'  # one user's python processes
    tracer -v watch                           # also print the kernel layout resolved at start-up";

const TOP_EXAMPLES: &str = "\
EXAMPLES:
    tracer top                                # the whole machine, busiest forker first
    tracer top -o events.jsonl                # and record what `watch -o` would
    tracer top -p 1234                        # process 1234 and everything it starts
    tracer top -- make -j8                    # run make and watch its tree
    tracer top --threads                      # count thread creation in the fork rates
    tracer top --replay events.jsonl --speed 10   # play a recording, ten times as fast
KEYS:
    arrows/j k move, Enter/Space fold, / filter, s sort, g group by cgroup, p pause, ? help, q quit";

const REPORT_EXAMPLES: &str = "\
EXAMPLES:
    tracer report events.jsonl                # who forked most, zombies, crashes, timeline
    tracer report events.jsonl*               # a recording and its rotated files, as one
    tracer report --tree -p 1234 run.jsonl    # the process tree below pid 1234, folded
    tracer report --since -1h events.jsonl    # the last hour of the recording
    tracer report --cgroup /system.slice/x.service events.jsonl  # one service's processes
    tracer report --format json a.jsonl b.jsonl   # several files or hosts merged, as JSON
    tracer report --perfetto t.json --flamegraph f.svg run.jsonl  # timeline and flame graph files
    zcat old.jsonl.gz | tracer report -       # read a compressed recording from stdin";

const CONVERT_EXAMPLES: &str = "\
EXAMPLES:
    tracer convert events.jsonl* -o /srv/parquet   # a recording and its rotated files to Parquet
    zcat old.jsonl.gz | tracer convert - -o pq     # from stdin
    duckdb -c \"select type, count(*) from read_parquet('pq/**/*.parquet', hive_partitioning=true) group by type\"";

#[derive(Debug, Parser)]
#[command(name = "tracer", version, about = "Trace process lifecycles: fork, exec, exit, zombies and who reaps them", after_help = EXAMPLES)]
pub struct Cli {
    /// More detail on stderr. For `watch`: -v prints the kernel layout resolved at
    /// start-up; -vv also the eBPF programs' own diagnostics (e.g. an argv or file name
    /// they could not read). `report` prints nothing more.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace process events live, on the terminal and/or to a JSON Lines file.
    #[command(after_help = WATCH_EXAMPLES)]
    // Both boxed: their arguments are hundreds of bytes, of different sizes.
    Watch(Box<watch::Args>),
    /// Report on recorded JSON Lines: top forkers, fork rate, zombies, crashes, the tree.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(Box<report::Args>),
    /// Convert recorded JSON Lines to Parquet (zstd, partitioned by host and date) for SQL engines.
    #[command(after_help = CONVERT_EXAMPLES)]
    Convert(convert::Args),
    /// Live full-screen view: fork rates per process, the tree, zombies, alerts, events.
    #[command(after_help = TOP_EXAMPLES)]
    // watch's options that draw lines have no use here: hidden (and refused).
    #[command(mut_arg("quiet", |a| a.hide(true)), mut_arg("format", |a| a.hide(true)),
              mut_arg("color", |a| a.hide(true)), mut_arg("utc", |a| a.hide(true)))]
    Top(Box<TopArgs>),
}

/// `tracer top`: its own options, and `watch`'s for what to trace and record,
/// which top runs with its view in place of the lines.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub top: top::Args,
    #[command(flatten)]
    pub watch: watch::Args,
}

fn run_top(t: TopArgs, verbose: u8) -> anyhow::Result<u8> {
    let TopArgs {
        top: targs,
        watch: mut wargs,
    } = t;
    if wargs.format.is_some() || wargs.output.as_deref() == Some(Path::new("-")) {
        return Err(crate::error::Exit::usage(
            "tracer top draws on the terminal, so it writes no lines there (`--format`, `-o -`): give `-o FILE` to record, or use `tracer watch`",
        )
        .into());
    }
    wargs.quiet = true;
    top::run(
        &targs,
        |view| watch::run_with_view(&wargs, verbose, Some(view)),
        read_recording,
    )
}

/// A whole recording, for `top --replay`, read as `report` reads one.
fn read_recording(path: &Path) -> anyhow::Result<Vec<Record>> {
    if path == Path::new("-") {
        return Err(crate::error::Exit::usage(
            "tracer top reads keys from stdin, so --replay cannot read it: give the recording's file name",
        )
        .into());
    }
    let recs = report::reader::read_all(
        &[report::reader::Source::from_arg(path)],
        &mut report::progress::Progress::quiet(),
    )?;
    Ok(recs.records.into_iter().map(|r| r.record).collect())
}

/// Entry point: parses arguments, runs the command, turns errors into one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Watch(args) => watch::run_blocking(&args, cli.verbose),
        Command::Report(args) => report::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Top(args) => run_top(*args, cli.verbose),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the outermost context and its causes, each once.
            eprintln!("tracer: {}", crate::error::anyhow_line(&e));
            ExitCode::from(crate::error::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_subcommands_compose() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["tracer", "-vv", "watch", "--quiet"]).unwrap();
        assert_eq!(cli.verbose, 2);
        assert!(matches!(cli.command, Command::Watch(w) if w.quiet));
        let cli = Cli::try_parse_from(["tracer", "report", "a.jsonl", "-v"]).unwrap();
        assert_eq!(cli.verbose, 1);
        assert!(matches!(cli.command, Command::Report(r) if r.files == [PathBuf::from("a.jsonl")]));
        assert!(Cli::try_parse_from(["tracer"]).is_err());
        let cli = Cli::try_parse_from(["tracer", "convert", "a.jsonl", "-", "-o", "pq"]).unwrap();
        assert!(matches!(cli.command, Command::Convert(c)
            if c.files == [PathBuf::from("a.jsonl"), PathBuf::from("-")]
                && c.output.as_path() == std::path::Path::new("pq") && c.file_mode == 0o600));
        // -o is required: there is no default place to write to.
        assert!(Cli::try_parse_from(["tracer", "convert", "a.jsonl"]).is_err());
        // --parquet-dir holds the output file's records: it needs -o.
        assert!(Cli::try_parse_from(["tracer", "watch", "--parquet-dir", "pq"]).is_err());
        let cli =
            Cli::try_parse_from(["tracer", "watch", "-o", "f", "--parquet-dir", "pq"]).unwrap();
        assert!(matches!(cli.command, Command::Watch(w)
            if w.file.parquet_dir == Some(PathBuf::from("pq"))));
    }

    /// `top` takes watch's scoping and recording options beside its own, and
    /// refuses what cannot go together.
    #[test]
    fn top_composes_watch_options_with_its_own() {
        let cli = Cli::try_parse_from(["tracer", "top", "-p", "7", "--threads", "-o", "x.jsonl"])
            .unwrap();
        let Command::Top(t) = cli.command else {
            panic!("not top")
        };
        assert_eq!((t.watch.pids.as_slice(), t.watch.threads), (&[7][..], true));
        assert_eq!(t.watch.output, Some(PathBuf::from("x.jsonl")));
        assert!(t.top.replay.is_none());
        let cli = Cli::try_parse_from(["tracer", "top", "--", "make", "-j8"]).unwrap();
        assert!(matches!(cli.command, Command::Top(t) if t.watch.command.len() == 2));
        let cli =
            Cli::try_parse_from(["tracer", "top", "--replay", "r.jsonl", "--speed", "4"]).unwrap();
        assert!(matches!(cli.command, Command::Top(t) if t.top.speed == 4.0));
        for bad in [
            &["tracer", "top", "--replay", "r.jsonl", "-p", "7"][..],
            &["tracer", "top", "--speed", "2"],
            &["tracer", "top", "--replay", "r.jsonl", "--speed", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        // Lines on stdout have no place under a full-screen view.
        let cli = Cli::try_parse_from(["tracer", "top", "--format", "jsonl"]).unwrap();
        let Command::Top(t) = cli.command else {
            panic!("not top")
        };
        let e = run_top(*t, 0).unwrap_err();
        assert!(e.to_string().contains("use `tracer watch`"), "{e}");
    }

    /// Each subcommand's help shows its own examples, and says what -v does where.
    #[test]
    fn each_subcommand_has_its_own_examples() {
        let help = |sub: &str| {
            let mut cmd = Cli::command();
            cmd.build();
            let mut sub = cmd.find_subcommand_mut(sub).unwrap().clone();
            sub.render_long_help().to_string()
        };
        let (watch, report) = (help("watch"), help("report"));
        assert!(watch.contains("tracer watch -p 1234"), "{watch}");
        assert!(!watch.contains("tracer report --tree"), "{watch}");
        assert!(report.contains("tracer report --tree"), "{report}");
        assert!(!report.contains("tracer watch -p"), "{report}");
        assert_ne!(watch, report);
        // -v is global: its text says what it does for each subcommand.
        assert!(
            report.contains("For `watch`: -v prints the kernel layout"),
            "{report}"
        );
        assert!(report.contains("`report` prints nothing more"), "{report}");
    }
}
