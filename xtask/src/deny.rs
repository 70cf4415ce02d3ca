//! The licence and bans check `cargo xtask test` runs before the tests: cargo-deny
//! (installed by `cargo xtask setup`) against deny.toml, on the workspace and on the
//! eBPF crate (outside the workspace, but its object ships inside the agent).

use anyhow::Result;

use crate::cmd;

/// `cargo deny check licenses bans` on the workspace and on tracer-ebpf. Only these
/// two checks: `advisories` would fetch the advisory database, and these need no
/// network beyond what a build already fetched from crates.io.
pub fn check() -> Result<()> {
    let root = cmd::workspace_root();
    for manifest in [root.join("Cargo.toml"), root.join("tracer-ebpf/Cargo.toml")] {
        let mut deny = cmd::outer_cargo();
        cmd::scrub_cargo_env(&mut deny, false);
        deny.current_dir(&root)
            .env("PATH", cmd::tool_path())
            .arg("deny")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--config")
            .arg(root.join("deny.toml"))
            .args(["check", "licenses", "bans"]);
        cmd::run(&mut deny)?;
    }
    Ok(())
}
