//! `cargo xtask build`: the eBPF object, then the agent that embeds it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::{cmd, ebpf};

/// Builds the eBPF object, then tracer (and the test programs of tracer-tests).
pub fn build(release: bool) -> Result<()> {
    let object = ebpf::build()?;
    agent(release, &object, &["tracer", "tracer-tests"])
}

/// `cargo build -p ...` with `TRACER_EBPF_OBJ` pointing at `object`, for tracer/build.rs.
pub fn agent(release: bool, object: &Path, packages: &[&str]) -> Result<()> {
    let mut build = with_object(object);
    build.arg("build");
    for package in packages {
        build.args(["-p", package]);
    }
    if release {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    println!("xtask: built {}", binary(release).display());
    Ok(())
}

/// A cargo (the toolchain that runs xtask) in the workspace root with `TRACER_EBPF_OBJ` set.
pub fn with_object(object: &Path) -> Command {
    let mut cargo = cmd::outer_cargo();
    cargo
        .current_dir(cmd::workspace_root())
        .env("TRACER_EBPF_OBJ", object);
    cargo
}

/// The agent binary of a profile.
pub fn binary(release: bool) -> PathBuf {
    cmd::target_dir()
        .join(if release { "release" } else { "debug" })
        .join("tracer")
}
