//! `cargo xtask test --kernel VERSION`: the kernel tests on another kernel, booted in a
//! qemu/KVM VM. The kernel is Debian's package of that version (apt), the VM boots it
//! directly with a busybox initramfs, sees the host's /usr, /etc and the workspace
//! read-only over 9p, runs the already-built kernel test executable and writes its exit
//! code to a shared directory before powering off. Nothing is installed into the host's
//! /boot or /lib/modules.

mod cpio;
mod debian;
mod init;
mod modules;
mod progress;
mod qemu;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use self::progress::Progress;
use crate::cmd::{self, step};
use crate::{build, ebpf, setup};

/// Steps of a VM run, for the `step i/N` lines.
const STEPS: usize = 5;
/// How long one boot of the VM may run (boot, all kernel tests, power-off) before it is
/// killed. Emulated (TCG) on 2 busy cores the whole run takes about 4 minutes, `storm`
/// 2.5-3 of them; KVM is faster. A run past this is stuck, not slow.
const TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The VM's size: two CPUs as the tests run two at a time, and memory for /tmp (a tmpfs).
const CPUS: u32 = 2;
const MEMORY_MIB: u32 = 2048;
/// Kernel options without which the tracer cannot run, checked before booting so a kernel
/// that cannot pass fails with the reason rather than with 20 failing tests.
const REQUIRED: [(&str, &str); 5] = [
    ("CONFIG_BPF_SYSCALL", "eBPF"),
    (
        "CONFIG_DEBUG_INFO_BTF",
        "BTF (/sys/kernel/btf/vmlinux), for tp_btf programs and struct offsets",
    ),
    ("CONFIG_BPF_EVENTS", "eBPF programs on tracepoints"),
    ("CONFIG_FTRACE_SYSCALLS", "syscall tracepoints"),
    (
        "CONFIG_9P_FS",
        "the 9p file system the VM mounts the host's directories with",
    ),
];

/// Set-up, eBPF object, agent and test executable, kernel and initramfs, then the VM.
/// `args` go to the kernel test executable (libtest), e.g. `fork_exit --nocapture`.
/// With `static_agent` the tests run the static musl release agent (`TRACER_BIN`).
pub fn test(version: &str, static_agent: bool, args: &[String]) -> Result<ExitCode> {
    let accel = step(1, STEPS, "set-up", || {
        if std::env::consts::ARCH != "x86_64" {
            bail!("--kernel boots Debian's amd64 kernels with KVM: it needs an x86_64 host");
        }
        setup::build_tools()?;
        debian::host_packages()?;
        let (accel, why) = qemu::detect_accel();
        println!("xtask: {why}");
        Ok(accel)
    })?;
    let object = step(2, STEPS, "eBPF object", ebpf::build)?;
    let tests = step(3, STEPS, "agent and kernel tests", || {
        build::agent(false, &object, &["tracer"])?;
        let agent = if static_agent {
            build::agent_for(true, Some(build::MUSL), &object)?
        } else {
            build::binary(false)
        };
        Ok((agent, kernel_test_executable(&object)?))
    })?;
    let (agent, tests) = tests;
    let (kernel, initramfs) = step(4, STEPS, &format!("kernel {version}"), || {
        let package = debian::kernel_package(version)?;
        let kernel = debian::kernel(&package)?;
        check_config(&kernel.config, &kernel.release)?;
        let busybox = debian::busybox()?;
        let dir = kernel
            .vmlinuz
            .parent()
            .expect("in target/vm/<package>")
            .to_path_buf();
        let initramfs = dir.join("initramfs.cpio");
        let modules = kernel
            .modules
            .iter()
            .map(|m| {
                let name = m
                    .file_name()
                    .expect("module file")
                    .to_string_lossy()
                    .into_owned();
                fs::read(m).map(|bytes| (name, bytes))
            })
            .collect::<Result<Vec<_>, _>>()
            .context("reading the prepared modules")?;
        let names = modules.iter().map(|(name, _)| name.clone()).collect();
        let plan = plan(names, shares(&dir.join("result"))?, &agent, &tests, args)?;
        let image = init::initramfs(&busybox, &modules, &init::script(&plan))?;
        fs::write(&initramfs, image)
            .with_context(|| format!("cannot write {}", initramfs.display()))?;
        println!(
            "xtask: Linux {} with {} modules; initramfs {}",
            kernel.release,
            kernel.modules.len(),
            initramfs.display()
        );
        Ok((kernel, initramfs))
    })?;
    let threads = test_threads(args);
    let order = test_list(&tests, args)?;
    let dir = kernel
        .vmlinuz
        .parent()
        .expect("in target/vm/<package>")
        .to_path_buf();
    let vm = Run {
        version,
        release: &kernel.release,
        accel,
        vmlinuz: &kernel.vmlinuz,
        initramfs: &initramfs,
        dir: &dir,
        order: &order,
        threads,
    };
    step(
        5,
        STEPS,
        &format!(
            "kernel tests on Linux {} in a VM, {}",
            kernel.release,
            accel.name()
        ),
        || vm.tests(),
    )?;
    println!("xtask: all {STEPS} steps ok");
    Ok(ExitCode::SUCCESS)
}

/// One kernel's VM test run, for [`Run::tests`].
struct Run<'a> {
    /// The version asked for (`6.1`) and the kernel's release (`6.1.0-56-amd64`).
    version: &'a str,
    release: &'a str,
    accel: qemu::Accel,
    vmlinuz: &'a Path,
    initramfs: &'a Path,
    /// `target/vm/<package>/`: the result share and the console logs go there.
    dir: &'a Path,
    /// The tests the executable will run, in the order it starts them.
    order: &'a [String],
    threads: usize,
}

impl Run<'_> {
    /// Boots the VM, which runs the tests and writes their exit code to the result share.
    /// Nothing is retried: a test failure, a kernel panic (a soft lockup included) and a
    /// VM killed at [`TIMEOUT`] each fail with one line saying where the tests were.
    fn tests(&self) -> Result<()> {
        let result = self.dir.join("result");
        if result.exists() {
            fs::remove_dir_all(&result)?;
        }
        fs::create_dir_all(&result)?;
        let log = self.dir.join("console.log");
        let vm = qemu::Vm {
            accel: self.accel,
            vmlinuz: self.vmlinuz.to_path_buf(),
            initramfs: self.initramfs.to_path_buf(),
            shares: shares(&result)?,
            cpus: CPUS,
            memory_mib: MEMORY_MIB,
        };
        let mut progress = Progress::new(self.order.to_vec(), self.threads);
        let ended = qemu::run(
            qemu::command(&vm)?,
            &format!("vm {}| ", self.version),
            &log,
            TIMEOUT,
            &mut progress,
        )?;
        let kernel = format!("Linux {} (--kernel {})", self.release, self.version);
        let status = match ended {
            qemu::Ended::TimedOut => bail!(
                "the VM on {kernel} did not finish within {} minutes and was killed, {}; \
                 console log {}",
                TIMEOUT.as_secs() / 60,
                progress.summary(),
                log.display()
            ),
            qemu::Ended::Exited(status) => status,
        };
        let file = result.join(init::STATUS_FILE);
        let Ok(text) = fs::read_to_string(&file) else {
            bail!(
                "the VM on {kernel} stopped ({status}) without a test result, {}; console log {}",
                progress.summary(),
                log.display()
            );
        };
        match parse_status(&text).with_context(|| format!("console log {}", log.display()))? {
            0 => Ok(()),
            code => bail!(
                "the kernel tests failed on {kernel} (exit code {code}); their output is above \
                 and in {}",
                log.display()
            ),
        }
    }
}

/// How many tests the executable runs at once: `--test-threads N` or `=N` in `args`,
/// else one per CPU of the VM.
fn test_threads(args: &[String]) -> usize {
    args.iter()
        .enumerate()
        .find_map(|(i, a)| {
            if let Some(n) = a.strip_prefix("--test-threads=") {
                n.parse().ok()
            } else if a == "--test-threads" {
                args.get(i + 1)?.parse().ok()
            } else {
                None
            }
        })
        .unwrap_or(CPUS as usize)
}

/// The tests the executable will run with `args`, in its order (its own `--list`, run
/// on the host: listing loads nothing into the kernel).
fn test_list(tests: &Path, args: &[String]) -> Result<Vec<String>> {
    let mut list = std::process::Command::new(tests);
    list.args(args).arg("--list");
    let out =
        cmd::probe(&mut list).ok_or_else(|| anyhow!("`{} --list` failed", tests.display()))?;
    Ok(progress::listed_tests(&out))
}

/// The kernel test executable, built (not run) by `cargo test --no-run`, which also
/// builds tracer-workload. Its path comes from cargo's JSON messages.
fn kernel_test_executable(object: &Path) -> Result<PathBuf> {
    let mut cargo = build::with_object(object);
    cargo.args([
        "test",
        "-p",
        "tracer-tests",
        "--test",
        "kernel",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    println!("xtask: $ {}", cmd::show(&cargo));
    let output = cargo
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start cargo")?;
    if !output.status.success() {
        bail!(
            "`cargo test --no-run -p tracer-tests` failed ({})",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    executable_of(&stdout, "kernel").ok_or_else(|| {
        anyhow!("cargo built no test executable named `kernel` (no such artifact in its output)")
    })
}

/// The `executable` of the test target `name` in cargo's JSON messages.
fn executable_of(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "test"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Fails, naming what is missing, when the kernel lacks an option in [`REQUIRED`].
fn check_config(config: &Path, release: &str) -> Result<()> {
    let text =
        fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|(option, _)| !matches!(debian::config_value(&text, option), Some("y" | "m")))
        .map(|(option, what)| format!("{option} ({what})"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "Linux {release} is built without {}: the tracer cannot run on it",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The host directories the VM mounts: /usr and /etc for programs and their libraries,
/// the workspace (sources and target directory) at its own path so that every path
/// the build wrote in stays valid, and the result directory, the only writable one.
fn shares(result: &Path) -> Result<Vec<init::Share>> {
    let read_only = |tag: &str, path: &str| init::Share {
        tag: tag.into(),
        host: path.into(),
        guest: path.into(),
        writable: false,
    };
    let workspace = cmd::workspace_root();
    let target = cmd::target_dir();
    let mut shares = vec![
        read_only("usr", "/usr"),
        read_only("etc", "/etc"),
        read_only("workspace", &qemu::utf8(&workspace)?),
    ];
    if !target.starts_with(&workspace) {
        shares.push(read_only("target", &qemu::utf8(&target)?));
    }
    shares.push(init::Share {
        tag: "result".into(),
        host: qemu::utf8(result)?,
        guest: init::RESULT_DIR.into(),
        writable: true,
    });
    Ok(shares)
}

/// What the VM's init runs: the kernel test executable in the tests' package directory
/// (where `cargo test` runs it) with `agent` as the tracer under test, two tests at a
/// time unless `args` say otherwise.
fn plan(
    modules: Vec<String>,
    shares: Vec<init::Share>,
    agent: &Path,
    tests: &Path,
    args: &[String],
) -> Result<init::Plan> {
    let debug = cmd::target_dir().join("debug");
    let env = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("RUST_BACKTRACE".into(), "1".into()),
        ("TRACER_BIN".into(), qemu::utf8(agent)?),
        (
            "TRACER_WORKLOAD".into(),
            qemu::utf8(&debug.join("tracer-workload"))?,
        ),
    ];
    let mut command = vec![qemu::utf8(tests)?];
    if !args.iter().any(|a| a.starts_with("--test-threads")) {
        command.push(format!("--test-threads={CPUS}"));
    }
    command.extend(args.iter().cloned());
    Ok(init::Plan {
        modules,
        shares,
        workdir: qemu::utf8(&cmd::workspace_root().join("tests"))?,
        env,
        command,
    })
}

/// The tests' exit code from the status file (`tests N`); an error for `setup MESSAGE`.
fn parse_status(text: &str) -> Result<i32> {
    let text = text.trim();
    if let Some(code) = text.strip_prefix("tests ") {
        return code.parse().map_err(|_| {
            anyhow!("the VM's status file says {text:?}: expected `tests <exit code>`")
        });
    }
    if let Some(message) = text.strip_prefix("setup ") {
        bail!("the VM could not run the tests: {message}");
    }
    bail!("the VM's status file says {text:?}: expected `tests <exit code>`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_the_init_script_writes() {
        assert_eq!(parse_status("tests 0\n").unwrap(), 0);
        assert_eq!(parse_status("tests 101\n").unwrap(), 101);
        let err = parse_status("setup failed: /vm/busybox insmod /vm/modules/9p.ko\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("could not run the tests: failed: "),
            "{err}"
        );
        assert!(parse_status("").is_err());
        assert!(parse_status("tests x").is_err());
    }

    #[test]
    fn finds_the_test_executable_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"tracer_tests","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"tracer-workload","kind":["bin"]},"executable":"/t/debug/tracer-workload"}
{"reason":"compiler-artifact","target":{"name":"kernel","kind":["test"]},"executable":"/t/debug/deps/kernel-0123"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable_of(messages, "kernel"),
            Some(PathBuf::from("/t/debug/deps/kernel-0123"))
        );
        assert_eq!(
            executable_of(messages, "tracer-workload"),
            None,
            "a bin is no test"
        );
        assert_eq!(executable_of("not json\n", "kernel"), None);
    }
}
