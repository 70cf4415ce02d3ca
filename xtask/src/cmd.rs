//! Paths, the running of external commands and of numbered steps, shared by the
//! subcommands.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// Where Debian's llvm-22 package puts its tools; bpf-linker's build must find
/// `llvm-config` here first or it picks an older LLVM and fails to link.
pub const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

/// The workspace root: xtask lives one directory below it.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the xtask crate lives one directory below the workspace root")
        .to_path_buf()
}

/// The userspace target directory: `CARGO_TARGET_DIR` if set (as cargo does), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The eBPF crate's target directory, apart from the userspace one so the two
/// toolchains (stable outside, nightly inside) never share build artefacts.
pub fn ebpf_target_dir() -> PathBuf {
    target_dir().join("ebpf")
}

/// The eBPF object that `tracer/build.rs` embeds.
pub fn ebpf_object() -> PathBuf {
    ebpf_target_dir().join("bpfel-unknown-none/release/tracer")
}

/// Cargo's home (`CARGO_HOME`, else `~/.cargo`): `cargo install` and rustup put binaries in its `bin`.
pub fn cargo_home() -> PathBuf {
    if let Some(home) = env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let home = env::var_os("HOME").unwrap_or_else(|| OsString::from("/root"));
    PathBuf::from(home).join(".cargo")
}

/// `PATH` with LLVM 22's tools and cargo's `bin` in front of the inherited one.
pub fn tool_path() -> OsString {
    let mut dirs = vec![PathBuf::from(LLVM_BIN), cargo_home().join("bin")];
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).expect("directories on PATH contain no ':'")
}

/// The first executable called `name` in the directories of `path`.
pub fn find_in_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The cargo that runs xtask (cargo sets `CARGO` for `cargo run`), so nested
/// userspace builds use the same toolchain.
pub fn outer_cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// A command line as a user would type it, with the directory and the variables
/// set for this command, for printing before it runs.
pub fn show(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("(cd {}) ", dir.display()));
    }
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value
            && key != "PATH"
        {
            line.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            line.push_str(&format!(" '{}'", arg.replace('\'', r"'\''")));
        } else {
            line.push(' ');
            line.push_str(&arg);
        }
    }
    line
}

/// The program's file name and the arguments, for error messages.
fn short(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut line = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Prints the command, runs it with inherited stdio and returns how it ended.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    println!("xtask: $ {}", show(cmd));
    cmd.status()
        .with_context(|| format!("could not start `{}`", cmd.get_program().to_string_lossy()))
}

/// Prints the command, runs it and fails unless it exits with status 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", short(cmd));
    }
    Ok(())
}

/// Runs a probe quietly; its stdout when it exits with status 0, `None` when it
/// cannot start or fails. Probes only look, so they are not printed.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether the variable `name`, inherited from the `cargo run` that started xtask, must
/// not reach a nested cargo. Cargo sets `CARGO`, `CARGO_MANIFEST_*`, `CARGO_PKG_*`, ... for
/// the program it runs and rustup sets `RUSTUP_TOOLCHAIN` (stable here): passed on, they
/// would make the nested build use the wrong toolchain, target or target directory.
/// User settings that only say how to reach the network or where cargo lives stay.
pub fn scrubbed(name: &str, keep_toolchain: bool) -> bool {
    const KEEP_CARGO: [&str; 7] = [
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_TERM_",
        "CARGO_LOG",
    ];
    const COMPILER: [&str; 7] = [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUST_RECURSION_COUNT",
    ];
    if name.starts_with("RUSTUP_TOOLCHAIN") {
        return !keep_toolchain;
    }
    if name == "CARGO" || name.starts_with("__CARGO") || COMPILER.contains(&name) {
        return true;
    }
    name.starts_with("CARGO_") && !KEEP_CARGO.iter().any(|keep| name.starts_with(keep))
}

/// Removes from `cmd` what [`scrubbed`] names, and the toolchain library directories
/// `cargo run` put on `LD_LIBRARY_PATH` (another toolchain's would come first for the
/// nested rustc). `keep_toolchain` keeps rustup's choice of toolchain, for a nested
/// cargo that should use the same toolchain as xtask itself.
pub fn scrub_cargo_env(cmd: &mut Command, keep_toolchain: bool) {
    for (name, _) in env::vars_os() {
        if scrubbed(&name.to_string_lossy(), keep_toolchain) {
            cmd.env_remove(&name);
        }
    }
    if let Some(paths) = env::var_os("LD_LIBRARY_PATH") {
        let rustup_home = env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".rustup")
            });
        let dropped = [rustup_home.join("toolchains"), target_dir()];
        match without_dirs_under(&paths, &dropped) {
            Some(kept) => cmd.env("LD_LIBRARY_PATH", kept),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
    }
}

/// `paths` (a PATH-like list) without the entries under any of `dropped`; `None` if nothing is left.
fn without_dirs_under(paths: &OsStr, dropped: &[PathBuf]) -> Option<OsString> {
    let kept: Vec<PathBuf> = env::split_paths(paths)
        .filter(|dir| !dir.as_os_str().is_empty() && !dropped.iter().any(|d| dir.starts_with(d)))
        .collect();
    if kept.is_empty() {
        return None;
    }
    env::join_paths(kept).ok()
}

/// Runs step `number` of `steps`, announcing it and saying how it ended in one line each.
pub fn step<T>(
    number: usize,
    steps: usize,
    name: &str,
    body: impl FnOnce() -> Result<T>,
) -> Result<T> {
    println!("xtask: step {number}/{steps} {name}");
    let result = body();
    match &result {
        Ok(_) => println!("xtask: step {number}/{steps} {name}: ok"),
        Err(_) => println!("xtask: step {number}/{steps} {name}: FAILED"),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_what_cargo_run_and_rustup_set_but_keeps_user_network_settings() {
        for name in [
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_INSTALL_ROOT",
            "__CARGO_FIX_PLZ",
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
            "RUSTDOC",
        ] {
            assert!(scrubbed(name, true), "{name} should be removed");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_NET_OFFLINE",
            "CARGO_HTTP_PROXY",
            "CARGO_TERM_COLOR",
            "PATH",
            "HOME",
        ] {
            assert!(!scrubbed(name, false), "{name} should stay");
        }
        assert!(scrubbed("RUSTUP_TOOLCHAIN", false));
        assert!(!scrubbed("RUSTUP_TOOLCHAIN", true));
        assert!(!scrubbed("RUSTUP_HOME", false));
    }

    #[test]
    fn drops_toolchain_library_dirs_only() {
        let dropped = [PathBuf::from("/r/toolchains"), PathBuf::from("/w/target")];
        let paths = OsStr::new("/w/target/debug:/r/toolchains/stable/lib:/opt/lib:/w/targetx");
        assert_eq!(
            without_dirs_under(paths, &dropped),
            Some(OsString::from("/opt/lib:/w/targetx"))
        );
        assert_eq!(
            without_dirs_under(OsStr::new("/w/target/debug/deps"), &dropped),
            None
        );
    }

    #[test]
    fn show_quotes_arguments_a_shell_would_split() {
        let mut cmd = Command::new("tracer");
        cmd.args(["watch", "-o", "my events.jsonl", "it's", ""])
            .env("A", "1")
            .current_dir("/w");
        assert_eq!(
            show(&cmd),
            r"(cd /w) A=1 tracer watch -o 'my events.jsonl' 'it'\''s' ''"
        );
    }

    #[test]
    fn find_in_path_skips_directories_without_the_program() {
        let path = env::join_paths(["/nonexistent-xtask-dir", "/bin", "/usr/bin"]).unwrap();
        let sh = find_in_path("sh", &path).expect("a Debian machine has sh");
        assert!(sh.ends_with("sh") && !sh.starts_with("/nonexistent-xtask-dir"));
        assert_eq!(find_in_path("no-such-program-xtask", &path), None);
    }
}
