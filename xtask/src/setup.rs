//! `cargo xtask setup`: checks each prerequisite and installs what is missing, one
//! line per step. Versions and the reasons for them are in TOOLCHAIN notes: the
//! eBPF crate builds on nightly (LLVM 22), so bpf-linker must be built against LLVM 22.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Result, anyhow, bail};

use crate::cmd::{self, LLVM_BIN};

/// Debian packages bpf-linker's `llvm-22` feature builds and links against.
pub const APT_PACKAGES: [&str; 4] = [
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
];
/// The LLVM major version of the nightly toolchain and of bpf-linker: the linker
/// must read the bitcode nightly's rustc writes, so they have to agree.
const LLVM_MAJOR: u32 = 22;
/// The bpf-linker release known to work with LLVM 22 here.
pub const BPF_LINKER_VERSION: &str = "0.13.0";
/// The cargo-deny release `cargo xtask test` checks licences and bans with: the
/// newest that builds on the stable toolchain here (it needs rustc 1.88).
pub const CARGO_DENY_VERSION: &str = "0.20.2";
/// Where the agent reads tracepoint formats and attaches tracepoints.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// All nine steps: what `cargo xtask setup` and `cargo xtask test` run.
pub fn all() -> Result<()> {
    build_tools()?;
    tracefs(false)?;
    cargo_deny()?;
    tmux()?;
    sql_engines()?;
    objcopy()?;
    musl()
}

/// The SQL engines the tests run docs/sql.md's queries on and `cargo xtask bench
/// --report` compares against: DuckDB and chDB (ClickHouse's engine in-process), from
/// PyPI. Pinned so a test's SQL meets the engine it was written for.
pub const PIP_PACKAGES: [&str; 2] = ["duckdb==2.0.1", "chdb==4.4.0"];

/// Steps 1-3: what building the eBPF object needs.
pub fn build_tools() -> Result<()> {
    llvm()?;
    nightly()?;
    bpf_linker()
}

/// Step 1: LLVM 22 with the development libraries bpf-linker links to.
fn llvm() -> Result<()> {
    let Some(dpkg_query) = cmd::find_in_path("dpkg-query", &cmd::tool_path()) else {
        if Path::new(LLVM_BIN).is_dir() {
            println!(
                "xtask: llvm-22 present ({LLVM_BIN}; no dpkg-query to check its -dev packages)"
            );
            return Ok(());
        }
        bail!(
            "LLVM 22 not found in {LLVM_BIN} and this is not a Debian system (no dpkg-query): \
             install LLVM 22 with its development libraries yourself"
        );
    };
    let mut missing: Vec<&str> = APT_PACKAGES
        .into_iter()
        .filter(|package| !dpkg_installed(&dpkg_query, package))
        .collect();
    if missing.is_empty() {
        if Path::new(LLVM_BIN).is_dir() {
            println!("xtask: llvm-22 present ({})", APT_PACKAGES.join(" "));
            return Ok(());
        }
        // llvm-22-dev depends on llvm-22, but a forced removal can leave the tools out.
        missing.push("llvm-22");
    }
    let packages = missing.join(" ");
    if !cmd::is_root() {
        bail!(
            "installing {packages} needs root: run as root or install it yourself \
             (apt-get install -y --no-install-recommends {packages})"
        );
    }
    println!("xtask: installing {packages} (apt-get)");
    cmd::run(apt_get().arg("update"))?;
    cmd::run(
        apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )?;
    let still: Vec<&str> = APT_PACKAGES
        .into_iter()
        .filter(|package| !dpkg_installed(&dpkg_query, package))
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get finished but dpkg does not list {} as installed: check the apt sources",
            still.join(" ")
        );
    }
    if !Path::new(LLVM_BIN).is_dir() {
        bail!("apt-get finished but {LLVM_BIN} is missing: reinstall llvm-22");
    }
    Ok(())
}

fn apt_get() -> Command {
    let mut apt = Command::new("apt-get");
    apt.env("DEBIAN_FRONTEND", "noninteractive");
    apt
}

fn dpkg_installed(dpkg_query: &Path, package: &str) -> bool {
    // dpkg-query exits 1 for a package it has never heard of.
    cmd::probe(Command::new(dpkg_query).args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

/// Step 2: a nightly toolchain with rust-src, for `-Z build-std=core` on bpfel-unknown-none.
fn nightly() -> Result<()> {
    let rustup = cmd::find_in_path("rustup", &cmd::tool_path()).ok_or_else(|| {
        anyhow!(
            "rustup not found on PATH or in {}: install it from https://rustup.rs \
             (the eBPF crate builds on a nightly toolchain)",
            cmd::cargo_home().join("bin").display()
        )
    })?;
    let installed = cmd::probe(Command::new(&rustup).args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]));
    match installed {
        Some(list) if list.lines().any(|line| line.trim() == "rust-src") => {}
        Some(_) => {
            println!("xtask: adding rust-src to the nightly toolchain (rustup)");
            cmd::run(Command::new(&rustup).args([
                "component",
                "add",
                "rust-src",
                "--toolchain",
                "nightly",
            ]))?;
        }
        None => {
            println!("xtask: installing the nightly toolchain with rust-src (rustup)");
            cmd::run(Command::new(&rustup).args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))?;
        }
    }
    let verbose = cmd::probe(Command::new(&rustup).args([
        "run",
        "nightly",
        "rustc",
        "--version",
        "--verbose",
    ]))
    .unwrap_or_default();
    match nightly_llvm_major(&verbose) {
        Some(LLVM_MAJOR) => {
            println!("xtask: nightly toolchain with rust-src present (LLVM {LLVM_MAJOR})")
        }
        Some(other) => println!(
            "xtask: nightly toolchain with rust-src present, but it uses LLVM {other} and bpf-linker \
             uses LLVM {LLVM_MAJOR}; if linking the eBPF object fails, pin a nightly with LLVM \
             {LLVM_MAJOR} in tracer-ebpf/rust-toolchain.toml"
        ),
        None => println!("xtask: nightly toolchain with rust-src present (LLVM version unknown)"),
    }
    Ok(())
}

/// The LLVM major version from `rustc --version --verbose` ("LLVM version: 22.1.2").
fn nightly_llvm_major(verbose: &str) -> Option<u32> {
    verbose
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version:"))
        .and_then(|version| version.trim().split('.').next())
        .and_then(|major| major.parse().ok())
}

/// Step 3: bpf-linker built against LLVM 22, in cargo's bin directory.
fn bpf_linker() -> Result<()> {
    // `--version` also proves libLLVM.so.22 still loads: the linker links it dynamically.
    cargo_tool(
        "bpf-linker",
        BPF_LINKER_VERSION,
        // llvm-sys finds LLVM through the first llvm-config on PATH (LLVM 22's, from
        // tool_path); without the default features it builds against no other LLVM.
        &["--no-default-features", "--features", "llvm-22"],
        "about 2 minutes",
    )
}

/// Step 5: cargo-deny, which `cargo xtask test` runs on the dependency graph
/// (licences, bans; see deny.toml).
fn cargo_deny() -> Result<()> {
    cargo_tool("cargo-deny", CARGO_DENY_VERSION, &[], "about 5 minutes")
}

/// Step 6: tmux, which the `tracer top` test drives the terminal UI in.
fn tmux() -> Result<()> {
    if cmd::probe(Command::new("tmux").arg("-V")).is_some() {
        println!("xtask: tmux present");
        return Ok(());
    }
    if !cmd::is_root() {
        bail!("installing tmux needs root: run as root or `apt-get install -y tmux` yourself");
    }
    println!("xtask: installing tmux (apt-get)");
    cmd::run(apt_get().args(["install", "-y", "--no-install-recommends", "tmux"]))
}

/// Step 7: DuckDB and chDB for Python (pip), unless both import at the pinned versions.
fn sql_engines() -> Result<()> {
    let check = "import duckdb, chdb, importlib.metadata as m; \
                 print(m.version('duckdb'), m.version('chdb'))";
    let wanted: Vec<&str> = PIP_PACKAGES
        .iter()
        .map(|p| p.split_once("==").map_or(*p, |(_, v)| v))
        .collect();
    if let Some(found) = cmd::probe(Command::new("python3").args(["-c", check]))
        && found.split_whitespace().eq(wanted.iter().copied())
    {
        println!("xtask: python3 duckdb and chdb present ({})", found.trim());
        return Ok(());
    }
    println!(
        "xtask: installing {} for python3 (pip, about 1 minute)",
        PIP_PACKAGES.join(" ")
    );
    cmd::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--root-user-action=ignore")
            // Debian's own python3 refuses pip installs outside a venv (PEP 668) unless
            // told; these are test tools, not the host's packages.
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .args(PIP_PACKAGES),
    )
}

/// Step 8: objcopy (binutils), which splits a release binary's debug info into
/// `tracer.debug`. Returns its path.
pub fn objcopy() -> Result<std::path::PathBuf> {
    if let Some(found) = cmd::find_in_path("objcopy", &cmd::tool_path()) {
        println!("xtask: objcopy present ({})", found.display());
        return Ok(found);
    }
    apt_install("binutils", "objcopy")?;
    cmd::find_in_path("objcopy", &cmd::tool_path())
        .ok_or_else(|| anyhow!("apt-get installed binutils but objcopy is not on PATH"))
}

/// Step 9: what the static build (`--target x86_64-unknown-linux-musl`) needs: musl's
/// Rust standard library (rustup) and `musl-gcc` (Debian's musl-tools), with which
/// zstd-sys compiles zstd's C code for musl (the cc crate picks `musl-gcc` for this target).
pub fn musl() -> Result<()> {
    let target = crate::build::MUSL;
    let rustup = cmd::find_in_path("rustup", &cmd::tool_path())
        .ok_or_else(|| anyhow!("rustup not found on PATH: install it from https://rustup.rs"))?;
    // Without --toolchain rustup picks the toolchain that runs xtask (RUSTUP_TOOLCHAIN).
    let installed = cmd::probe(Command::new(&rustup).args(["target", "list", "--installed"]))
        .unwrap_or_default();
    if installed.lines().any(|line| line.trim() == target) {
        println!("xtask: {target} standard library present");
    } else {
        println!("xtask: adding the {target} standard library (rustup)");
        cmd::run(Command::new(&rustup).args(["target", "add", target]))?;
    }
    if cmd::find_in_path("musl-gcc", &cmd::tool_path()).is_some() {
        println!("xtask: musl-gcc present");
        return Ok(());
    }
    apt_install("musl-tools", "musl-gcc")
}

/// `apt-get install PACKAGE` (as root), which provides `program`.
fn apt_install(package: &str, program: &str) -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "installing {package} (for {program}) needs root: run as root or \
             `apt-get install -y {package}` yourself"
        );
    }
    println!("xtask: installing {package} (apt-get)");
    cmd::run(apt_get().args(["install", "-y", "--no-install-recommends", package]))
}

/// `cargo install NAME --locked --version VERSION EXTRA` into cargo's bin directory,
/// unless `NAME --version` already runs from there.
fn cargo_tool(name: &str, version: &str, extra: &[&str], how_long: &str) -> Result<()> {
    let tool = cmd::cargo_home().join("bin").join(name);
    if let Some(found) = cmd::probe(Command::new(&tool).arg("--version")) {
        println!("xtask: {} present", found.trim());
        return Ok(());
    }
    println!("xtask: installing {name} {version} (cargo install, {how_long})");
    let mut install = cmd::outer_cargo();
    cmd::scrub_cargo_env(&mut install, true);
    install
        .env("PATH", cmd::tool_path())
        .args(["install", name, "--locked", "--version", version])
        .args(extra);
    cmd::run(&mut install)?;
    if cmd::probe(Command::new(&tool).arg("--version")).is_none() {
        bail!(
            "cargo install finished but `{} --version` does not run: check that it went to {}",
            tool.display(),
            cmd::cargo_home().join("bin").display()
        );
    }
    Ok(())
}

/// Step 4: tracefs mounted, where the agent reads tracepoint formats. Not mounted
/// at boot on some machines. `sudo` is used when allowed and this is not root.
pub fn tracefs(use_sudo: bool) -> Result<()> {
    if tracefs_mounted() {
        println!("xtask: tracefs mounted at {TRACEFS}");
        return Ok(());
    }
    let mount = ["mount", "-t", "tracefs", "nodev", TRACEFS];
    if cmd::is_root() {
        println!("xtask: mounting tracefs at {TRACEFS}");
        return cmd::run(Command::new(mount[0]).args(&mount[1..]));
    }
    if use_sudo && let Some(sudo) = cmd::find_in_path("sudo", &cmd::tool_path()) {
        println!("xtask: mounting tracefs at {TRACEFS} (sudo)");
        return cmd::run(Command::new(sudo).args(mount));
    }
    bail!(
        "mounting tracefs needs root: run as root or `sudo {}`",
        mount.join(" ")
    );
}

fn tracefs_mounted() -> bool {
    // Non-root may not look inside tracefs (its root is mode 0700), so ask the mount table too.
    Path::new(TRACEFS).join("events").is_dir()
        || fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| mounts_have_tracefs(&mounts))
}

/// Whether a /proc/self/mounts text has tracefs mounted on [`TRACEFS`].
fn mounts_have_tracefs(mounts: &str) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(TRACEFS) && fields.next() == Some("tracefs")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tracefs_only_at_its_mount_point() {
        let mounted =
            "sysfs /sys sysfs rw 0 0\nnodev /sys/kernel/tracing tracefs rw,relatime 0 0\n";
        assert!(mounts_have_tracefs(mounted));
        let elsewhere = "tracefs /sys/kernel/debug/tracing tracefs rw 0 0\nnone /sys/kernel/tracing tmpfs rw 0 0\n";
        assert!(!mounts_have_tracefs(elsewhere));
        assert!(!mounts_have_tracefs(""));
    }

    #[test]
    fn reads_llvm_major_from_rustc_verbose_version() {
        let verbose = "rustc 1.97.0-nightly (abc 2026-05-15)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\n\
                       release: 1.97.0-nightly\nLLVM version: 22.1.2\n";
        assert_eq!(nightly_llvm_major(verbose), Some(22));
        assert_eq!(nightly_llvm_major("rustc 1.97.0-nightly\n"), None);
        assert_eq!(nightly_llvm_major("LLVM version: x\n"), None);
    }
}
