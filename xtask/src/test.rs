//! `cargo xtask test`: everything CI runs, from a fresh machine to the test results.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cmd::{self, step};
use crate::{build, deny, ebpf, setup, vm};

const STEPS: usize = 5;

/// Set-up, eBPF object, agent (debug; release for the fork-bomb test and the split
/// binary's test; static musl release for its test), the licence and bans check
/// (deny.toml), then `cargo test --workspace ARGS` with `TRACER_EBPF_OBJ`, `TRACER_BIN`,
/// `TRACER_RELEASE_BIN` and `TRACER_STATIC_BIN` set for the kernel tests.
/// With `kernel`, the kernel tests in a VM on that kernel instead (see [`vm::test`]),
/// run by the static agent with `static_agent`.
/// `only` (with `kernel`) names the test executables to run in the VM; empty is all.
pub fn test(
    kernel: Option<&str>,
    static_agent: bool,
    only: &[String],
    args: &[String],
) -> Result<ExitCode> {
    if !cmd::is_root() {
        bail!("the kernel tests load eBPF programs and need root: run `cargo xtask test` as root");
    }
    if let Some(version) = kernel {
        return vm::test(version, static_agent, only, args);
    }
    step(1, STEPS, "set-up", setup::all)?;
    let object = step(2, STEPS, "eBPF object", ebpf::build)?;
    step(3, STEPS, "agent", || {
        build::agent(false, &object, &["tracer"])?;
        // The fork-bomb test measures memory as a server runs it: optimised.
        build::agent(true, &object, &["tracer"])?;
        build::agent_for(true, Some(build::MUSL), &object).map(|_| ())
    })?;
    step(4, STEPS, "licences and bans (cargo deny)", deny::check)?;
    step(5, STEPS, "tests", || {
        let mut test = build::with_object(&object);
        test.env("TRACER_BIN", build::binary(false))
            .env("TRACER_RELEASE_BIN", build::binary(true))
            .env(
                "TRACER_STATIC_BIN",
                build::binary_for(true, Some(build::MUSL)),
            )
            .args(["test", "--workspace"])
            .args(args);
        cmd::run(&mut test)
    })?;
    println!("xtask: all {STEPS} steps ok");
    Ok(ExitCode::SUCCESS)
}
