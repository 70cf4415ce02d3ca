//! `cargo xtask build-ebpf`: builds tracer-ebpf on nightly for bpfel-unknown-none.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, anyhow};

use crate::{cmd, setup};

/// Installs what is missing (set-up steps 1-3), builds the eBPF crate and returns
/// the path of the object. Always optimized: unoptimized eBPF does not pass the verifier.
pub fn build() -> Result<PathBuf> {
    setup::build_tools()?;
    let crate_dir = cmd::workspace_root().join("tracer-ebpf");
    let path = cmd::tool_path();
    // The rustup proxy (first on `path`), not the toolchain's own cargo that runs xtask:
    // only the proxy understands `+nightly`.
    let cargo = cmd::find_in_path("cargo", &path).ok_or_else(|| {
        anyhow!(
            "cargo not found in {}",
            cmd::cargo_home().join("bin").display()
        )
    })?;
    let mut build = Command::new(cargo);
    // tracer-ebpf has its own rust-toolchain.toml (nightly) and .cargo/config.toml
    // (bpfel-unknown-none, build-std); what the outer stable `cargo run` exported would
    // override them.
    cmd::scrub_cargo_env(&mut build, false);
    build
        .current_dir(&crate_dir)
        .env("PATH", &path)
        .env("CARGO_TARGET_DIR", cmd::ebpf_target_dir())
        .args(["+nightly", "build", "--release"]);
    println!("xtask: building the eBPF object (nightly, bpfel-unknown-none)");
    cmd::run(&mut build)?;
    let object = cmd::ebpf_object();
    let size = fs::metadata(&object)
        .with_context(|| {
            format!(
                "the eBPF build succeeded but {} is missing",
                object.display()
            )
        })?
        .len();
    println!("xtask: eBPF object {} ({size} bytes)", object.display());
    Ok(object)
}
