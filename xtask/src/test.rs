//! `cargo xtask test`: everything CI runs, from a fresh machine to the test results.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::{build, cmd, ebpf, setup};

const STEPS: usize = 4;

/// Set-up, eBPF object, agent, then `cargo test --workspace ARGS` with
/// `TRACER_EBPF_OBJ` and `TRACER_BIN` set for the kernel tests.
pub fn test(args: &[String]) -> Result<ExitCode> {
    if !cmd::is_root() {
        bail!("the kernel tests load eBPF programs and need root: run `cargo xtask test` as root");
    }
    step(1, "set-up", setup::all)?;
    let object = step(2, "eBPF object", ebpf::build)?;
    step(3, "agent", || build::agent(false, &object, &["tracer"]))?;
    step(4, "tests", || {
        let mut test = build::with_object(&object);
        test.env("TRACER_BIN", build::binary(false))
            .args(["test", "--workspace"])
            .args(args);
        cmd::run(&mut test)
    })?;
    println!("xtask: all {STEPS} steps ok");
    Ok(ExitCode::SUCCESS)
}

/// Runs one step, announcing it and saying how it ended in one line each.
fn step<T>(number: usize, name: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("xtask: step {number}/{STEPS} {name}");
    let result = body();
    match &result {
        Ok(_) => println!("xtask: step {number}/{STEPS} {name}: ok"),
        Err(_) => println!("xtask: step {number}/{STEPS} {name}: FAILED"),
    }
    result
}
