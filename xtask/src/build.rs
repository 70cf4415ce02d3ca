//! `cargo xtask build`: the eBPF object, then the agent that embeds it. A release agent
//! is split: the binary without its debug info, and `tracer.debug` beside it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, ebpf, elf, setup};

/// The target of the static build: musl's libc is linked into the binary, so it runs on
/// any x86_64 Linux whatever its glibc.
pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// Builds the eBPF object, then tracer (and the test programs of tracer-tests), or with
/// `target` only tracer for that target (the static musl build).
pub fn build(release: bool, target: Option<&str>) -> Result<()> {
    let object = ebpf::build()?;
    match target {
        None => agent(release, &object, &["tracer", "tracer-tests"]),
        Some(target) => agent_for(release, Some(target), &object).map(|_| ()),
    }
}

/// `cargo build -p ...` with `TRACER_EBPF_OBJ` pointing at `object`, for tracer/build.rs;
/// a release tracer is then split ([`split_debug`]).
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
    let binary = binary(release);
    if release {
        split_debug(&binary)?;
    }
    println!("xtask: built {}", binary.display());
    Ok(())
}

/// tracer alone for `target` (e.g. [`MUSL`]), split when `release`; a musl build must come
/// out static. Returns the binary's path.
pub fn agent_for(release: bool, target: Option<&str>, object: &Path) -> Result<PathBuf> {
    if target == Some(MUSL) {
        setup::musl()?;
    }
    let mut build = with_object(object);
    build.args(["build", "-p", "tracer", "--bin", "tracer"]);
    if let Some(target) = target {
        build.args(["--target", target]);
    }
    if release {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    let binary = binary_for(release, target);
    if release {
        split_debug(&binary)?;
    }
    if target == Some(MUSL) {
        let facts = elf::facts(&binary)?;
        if !facts.is_static() {
            bail!(
                "{} is not static (program interpreter: {}, shared libraries needed: {}): \
                 check that nothing in the build links a shared library",
                binary.display(),
                facts.interpreter,
                facts.needed
            );
        }
        println!("xtask: {} is static", binary.display());
    }
    println!("xtask: built {}", binary.display());
    Ok(binary)
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
    binary_for(release, None)
}

/// The agent binary of a profile and target (`None`: the host's, in target/<profile>).
pub fn binary_for(release: bool, target: Option<&str>) -> PathBuf {
    let mut dir = cmd::target_dir();
    if let Some(target) = target {
        dir.push(target);
    }
    dir.join(if release { "release" } else { "debug" })
        .join("tracer")
}

/// The debug file of `binary`: `tracer.debug` beside `tracer`.
pub fn debug_file(binary: &Path) -> PathBuf {
    let mut name = binary.file_name().unwrap_or_default().to_os_string();
    name.push(".debug");
    binary.with_file_name(name)
}

/// Moves the DWARF debug info of `binary` into [`debug_file`] and links the two with a
/// `.gnu_debuglink` section (file name and CRC), the layout Debian's `dh_strip` makes:
/// gdb, perf, addr2line and the Rust standard library's backtraces look for the linked
/// file in the binary's directory. The symbol table stays in the binary, so function
/// names in a backtrace or a profile do not need the debug file; file and line do.
///
/// Cargo hard-links `target/<profile>/tracer` to its own copy in `deps/`; objcopy writes a
/// new file here and renames it over the link, so cargo's copy keeps its debug info and a
/// build where nothing changed leaves the split binary alone (then there is nothing to do).
pub fn split_debug(binary: &Path) -> Result<()> {
    let facts = elf::facts(binary)?;
    let debug = debug_file(binary);
    let name = debug.file_name().unwrap_or_default().to_string_lossy();
    if !facts.debug_info {
        if facts.debuglink.as_deref() == Some(&*name) && debug.is_file() {
            println!(
                "xtask: {} already split, debug info in {}",
                binary.display(),
                debug.display()
            );
            return Ok(());
        }
        bail!(
            "{} has no debug info to split and no {name} beside it: build it with \
             debug info (profile.release debug = 1 in Cargo.toml)",
            binary.display()
        );
    }
    let objcopy = setup::objcopy()?;
    cmd::run(
        Command::new(&objcopy)
            .arg("--only-keep-debug")
            .arg(binary)
            .arg(&debug),
    )?;
    let stripped = binary.with_extension("stripped");
    // --add-gnu-debuglink stores the debug file's name and CRC; run beside it so the
    // name is the bare file name, which is what the readers look up next to the binary.
    cmd::run(
        Command::new(&objcopy)
            .current_dir(binary.parent().unwrap_or(Path::new(".")))
            .arg("--strip-debug")
            .arg(format!("--add-gnu-debuglink={name}"))
            .arg(binary)
            .arg(&stripped),
    )?;
    fs::rename(&stripped, binary).with_context(|| {
        format!(
            "cannot rename {} to {}",
            stripped.display(),
            binary.display()
        )
    })?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "xtask: split {} ({} bytes) and {} ({} bytes)",
        binary.display(),
        size(binary),
        debug.display(),
        size(&debug)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a copy of the xtask binary running this test (a debug build, with DWARF),
    /// then splits it again as a second `cargo xtask build --release` would, when cargo
    /// left the split binary in place.
    #[test]
    fn splits_debug_info_beside_the_binary_once() {
        let dir = cmd::target_dir()
            .join("tmp")
            .join(format!("xtask-split-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("tool");
        fs::copy(std::env::current_exe().unwrap(), &binary).unwrap();
        let before = fs::metadata(&binary).unwrap().len();

        split_debug(&binary).unwrap();
        let debug = dir.join("tool.debug");
        assert_eq!(debug_file(&binary), debug);
        let stripped = elf::facts(&binary).unwrap();
        assert!(!stripped.debug_info);
        assert_eq!(stripped.debuglink.as_deref(), Some("tool.debug"));
        assert!(elf::facts(&debug).unwrap().debug_info);
        let after = fs::metadata(&binary).unwrap().len();
        assert!(after < before / 2, "{before} -> {after} bytes");

        let debug_size = fs::metadata(&debug).unwrap().len();
        split_debug(&binary).unwrap();
        assert_eq!(fs::metadata(&binary).unwrap().len(), after);
        assert_eq!(fs::metadata(&debug).unwrap().len(), debug_size);

        fs::remove_file(&debug).unwrap();
        let err = split_debug(&binary).unwrap_err().to_string();
        assert!(err.contains("no debug info to split"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
