//! `cargo xtask clippy`: clippy with warnings denied on the workspace members
//! (tracer-ebpf is excluded from the workspace; it needs nightly and a BPF target).

use std::process::ExitCode;

use anyhow::Result;

use crate::cmd;

pub fn clippy() -> Result<ExitCode> {
    let mut clippy = cmd::outer_cargo();
    clippy.current_dir(cmd::workspace_root()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    cmd::run(&mut clippy)?;
    Ok(ExitCode::SUCCESS)
}
