//! `cargo xtask`: installs the build prerequisites, builds the eBPF object and the agent,
//! runs the agent and the tests. See README.md for the two commands a new machine needs.

mod bench;
mod build;
mod cmd;
mod deny;
mod ebpf;
mod elf;
mod lint;
mod run;
mod setup;
mod test;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run and test tracer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and running tracer needs (LLVM 22, nightly rust-src,
    /// bpf-linker, tracefs mount), skipping what is already there.
    Setup,
    /// Build the eBPF object into target/ebpf/bpfel-unknown-none/release/tracer.
    BuildEbpf {
        /// Accepted for symmetry with `build`; the eBPF object is always optimized
        /// because unoptimized eBPF does not pass the kernel verifier.
        #[arg(long)]
        release: bool,
    },
    /// Build the eBPF object, then the agent (target/<profile>/tracer) with it embedded.
    /// A release agent is split: the binary without debug info, `tracer.debug` beside it.
    Build {
        /// Build the agent with the release profile.
        #[arg(long)]
        release: bool,
        /// Build only the agent, for this target: `x86_64-unknown-linux-musl` gives a
        /// static binary (target/x86_64-unknown-linux-musl/<profile>/tracer).
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
    },
    /// Build, then run the agent (through `sudo -E` when not root): `cargo xtask run -- watch`.
    Run {
        /// Build and run the agent with the release profile.
        #[arg(long)]
        release: bool,
        /// Arguments for tracer, e.g. `watch -o events.jsonl`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build, then run the workspace tests, kernel tests included (needs root).
    /// Arguments after `--` go to `cargo test`, e.g. `cargo xtask test -- model::`.
    Test {
        /// Run the kernel tests in a qemu/KVM VM on Debian's kernel VERSION (e.g. 5.10,
        /// from Debian 11's archive, 6.1, 6.12) instead of the whole suite on the host kernel; arguments after `--`
        /// then go to the kernel test executable, e.g. `-- fork_exit --nocapture`.
        #[arg(long, value_name = "VERSION")]
        kernel: Option<String>,
        /// With --kernel: run only this test executable of tests/tests/ in the VM
        /// (its file name without .rs; repeatable). Without it, every one runs.
        #[arg(long = "test", value_name = "NAME", requires = "kernel")]
        tests: Vec<String>,
        /// With --kernel: the kernel tests run the static release agent (musl) instead of
        /// the debug one, as a server without the build machine's glibc would.
        #[arg(long = "static", requires = "kernel")]
        static_agent: bool,
        /// Arguments for `cargo test`, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run clippy on the workspace (not the eBPF crate) with warnings denied.
    Clippy,
    /// Measure what tracing costs in process storms: the release tracer against the
    /// untraced machine and, when installed, forkstat, execsnoop, exitsnoop and bpftrace.
    /// Prints a markdown table and writes target/bench/bench-<time>.json (needs root).
    Bench(bench::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::all().map(|()| ExitCode::SUCCESS),
        Command::BuildEbpf { release: _ } => ebpf::build().map(|_| ExitCode::SUCCESS),
        Command::Build { release, target } => {
            build::build(release, target.as_deref()).map(|_| ExitCode::SUCCESS)
        }
        Command::Run { release, args } => run::run(release, &args),
        Command::Test {
            kernel,
            static_agent,
            tests,
            args,
        } => test::test(kernel.as_deref(), static_agent, &tests, &args),
        Command::Clippy => lint::clippy(),
        Command::Bench(options) => bench::run(&options),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args)
            .expect("valid command line")
            .command
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_passes_everything_after_the_separator_to_tracer() {
        let Command::Run { release, args } =
            parse(&["xtask", "run", "--", "watch", "--release", "-p", "1"])
        else {
            panic!("not run");
        };
        assert!(!release);
        assert_eq!(args, ["watch", "--release", "-p", "1"]);
        let Command::Run { release, args } =
            parse(&["xtask", "run", "--release", "watch", "--threads"])
        else {
            panic!("not run");
        };
        assert!(release);
        assert_eq!(args, ["watch", "--threads"]);
    }

    #[test]
    fn test_passes_arguments_after_the_separator_to_cargo_test() {
        let Command::Test { kernel, args, .. } =
            parse(&["xtask", "test", "--", "model::", "--", "--nocapture"])
        else {
            panic!("not test");
        };
        assert_eq!(kernel, None);
        assert_eq!(args, ["model::", "--", "--nocapture"]);
        assert!(Cli::try_parse_from(["xtask", "test", "model::"]).is_err());
    }

    #[test]
    fn bench_takes_lists_of_modes_and_conditions() {
        let Command::Bench(bench::Options {
            quick,
            modes,
            conditions,
            workers,
            runs,
            ..
        }) = parse(&[
            "xtask",
            "bench",
            "--quick",
            "--modes",
            "fork-exec,threads",
            "--conditions",
            "tracer-threads,bpftrace",
        ])
        else {
            panic!("not bench");
        };
        assert!(quick);
        assert_eq!(modes, [bench::Mode::ForkExec, bench::Mode::Threads]);
        assert_eq!(
            conditions,
            [bench::Condition::TracerThreads, bench::Condition::Bpftrace]
        );
        assert_eq!((workers, runs), (2, None));
        assert!(Cli::try_parse_from(["xtask", "bench", "--modes", "spin"]).is_err());
    }

    #[test]
    fn test_kernel_takes_a_version_and_passes_the_rest_to_the_vm() {
        let Command::Test {
            kernel,
            static_agent,
            args,
            ..
        } = parse(&[
            "xtask",
            "test",
            "--kernel",
            "6.1",
            "--",
            "fork_exit",
            "--nocapture",
        ])
        else {
            panic!("not test");
        };
        assert_eq!(kernel.as_deref(), Some("6.1"));
        assert_eq!(args, ["fork_exit", "--nocapture"]);
        assert!(!static_agent);
        assert!(Cli::try_parse_from(["xtask", "test", "--kernel"]).is_err());
        let Command::Test { static_agent, .. } =
            parse(&["xtask", "test", "--kernel", "6.1", "--static"])
        else {
            panic!("not test");
        };
        assert!(static_agent);
        assert!(
            Cli::try_parse_from(["xtask", "test", "--static"]).is_err(),
            "--static is for the VM"
        );
    }

    #[test]
    fn build_takes_a_target() {
        let Command::Build { release, target } = parse(&[
            "xtask",
            "build",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
        ]) else {
            panic!("not build");
        };
        assert!(release);
        assert_eq!(target.as_deref(), Some("x86_64-unknown-linux-musl"));
    }
}
