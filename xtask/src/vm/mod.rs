//! `cargo xtask test --kernel VERSION`: the kernel tests on another kernel, booted in a
//! qemu/KVM VM. The kernel is Debian's package of that version (apt), the VM boots it
//! directly with a busybox initramfs, sees the host's /usr, /etc and the workspace
//! read-only over 9p, runs every already-built test executable of tests/tests/ (all
//! of them touch the kernel) one after the other, writes their exit codes to a shared
//! directory and powers off. Nothing is installed into the host's /boot or /lib/modules.

pub mod bench;
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
/// How long one test executable may run in the VM before the init script kills it.
/// Emulated (TCG) on 2 cores shared with other work (load 17), faults.rs (a 60 s
/// fork bomb, CPU starvation) took 3.5 minutes and the longest about 10; KVM is
/// faster. An executable past this is stuck, not slow.
const LIMIT_PER_EXECUTABLE: Duration = Duration::from_secs(20 * 60);
/// Boot and power-off, on top of the executables' limits, before the VM is killed.
const BOOT_LIMIT: Duration = Duration::from_secs(5 * 60);
/// The VM's size: two CPUs as the tests run two at a time, and memory for /tmp (a
/// tmpfs), which holds the recordings (a fork bomb's is hundreds of MB).
const CPUS: u32 = 2;
const MEMORY_MIB: u32 = 3072;
/// How much longer the tests' deadlines are in the VM (`TRACER_TEST_DEADLINE_SCALE`,
/// tests/src/child.rs), under KVM and emulated: an exec of /bin/true costs about ten
/// times more emulated than on the host, and deadlines made for the host (a 1,000
/// process storm within 60 s) fail there for slowness, not for a bug.
const DEADLINE_SCALE_KVM: u32 = 2;
const DEADLINE_SCALE_TCG: u32 = 6;
/// The VM's PATH: only directories of the host's /usr, which the VM mounts.
const VM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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

/// Set-up, eBPF object, agent and test executables, kernel and initramfs, then the VM.
/// `args` go to every test executable (libtest), e.g. `fork_exit --nocapture`; `only`
/// names the executables to run (`--test`), empty for all. With `static_agent` the
/// tests run the static musl release agent (`TRACER_BIN`).
pub fn test(
    version: &str,
    static_agent: bool,
    only: &[String],
    args: &[String],
) -> Result<ExitCode> {
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
    let (agent, binaries, not_run) = step(3, STEPS, "agent and test executables", || {
        build::agent(false, &object, &["tracer"])?;
        // faults.rs measures the fork bomb's memory on the optimised agent.
        build::agent(true, &object, &["tracer"])?;
        let executables = test_executables(&object)?;
        if let Some(unknown) = only
            .iter()
            .find(|n| !executables.iter().any(|e| &e.name == *n))
        {
            let names: Vec<&str> = executables.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "--test {unknown}: no such test executable; there are: {}",
                names.join(", ")
            );
        }
        let (binaries, not_run) = choose(&executables, only, args)?;
        if binaries.is_empty() {
            bail!("no test executable has a test to run in the VM (see above)");
        }
        let agent = if static_agent {
            build::agent_for(true, Some(build::MUSL), &object)?
        } else {
            build::binary(false)
        };
        Ok((agent, binaries, not_run))
    })?;
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
        let plan = plan(
            names,
            shares(&dir.join("result"))?,
            &agent,
            &binaries,
            args,
            accel,
        )?;
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
        binaries: &binaries,
        threads: test_threads(args),
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
    for (name, why) in &not_run {
        println!("xtask: not run in the VM: {name} ({why})");
    }
    println!("xtask: all {STEPS} steps ok");
    Ok(ExitCode::SUCCESS)
}

/// A test executable cargo built: its target name (its file in tests/tests/), the
/// executable and its source file.
#[derive(Clone, Debug, PartialEq)]
struct Executable {
    name: String,
    path: PathBuf,
    source: PathBuf,
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
    /// The executables the VM runs, in order, with the tests each will run.
    binaries: &'a [(Executable, Vec<String>)],
    threads: usize,
}

impl Run<'_> {
    /// Boots the VM, which runs the tests and writes their exit codes to the result
    /// share. Nothing is retried: a test failure, a kernel panic (a soft lockup
    /// included) and a VM killed at its time limit each fail with one line saying
    /// where the tests were.
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
            tsc_khz: match self.accel {
                qemu::Accel::Kvm => None,
                qemu::Accel::Tcg => qemu::host_tsc_khz(),
            },
        };
        if let Some(khz) = vm.tsc_khz {
            println!("xtask: host TSC {khz} kHz, the emulated guest's (tsc_early_khz)");
        }
        let list = self
            .binaries
            .iter()
            .map(|(e, tests)| progress::Binary {
                name: e.name.clone(),
                tests: tests.clone(),
            })
            .collect();
        let mut progress = Progress::new(list, self.threads, LIMIT_PER_EXECUTABLE.as_secs() / 60);
        let timeout = BOOT_LIMIT + LIMIT_PER_EXECUTABLE * self.binaries.len() as u32;
        let ended = qemu::run(
            qemu::command(&vm)?,
            &format!("vm {}| ", self.version),
            &log,
            timeout,
            &mut progress,
        )?;
        let kernel = format!("Linux {} (--kernel {})", self.release, self.version);
        let status = match ended {
            qemu::Ended::TimedOut => bail!(
                "the VM on {kernel} did not finish within {} minutes and was killed, {}; \
                 console log {}",
                timeout.as_secs() / 60,
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
        let codes =
            parse_status(&text).with_context(|| format!("console log {}", log.display()))?;
        let failed: Vec<&str> = codes
            .iter()
            .filter(|(_, code)| *code != 0)
            .map(|(name, _)| name.as_str())
            .collect();
        // A VM that stopped early says so even when some executables also failed.
        let stopped = (codes.len() < self.binaries.len()).then(|| {
            format!(
                "the VM on {kernel} stopped ({status}) after {} of {} test executables, {}",
                codes.len(),
                self.binaries.len(),
                progress.summary()
            )
        });
        match (failed.is_empty(), stopped) {
            (true, None) => {}
            (true, Some(stopped)) => bail!("{stopped}; console log {}", log.display()),
            (false, stopped) => bail!(
                "the kernel tests failed on {kernel}: {}{}; their failures are above, all \
                 output in {}",
                failed.join(", "),
                stopped.map(|s| format!("; and {s}")).unwrap_or_default(),
                log.display()
            ),
        }
        let (passed, ignored) = progress
            .outcomes()
            .iter()
            .filter_map(|o| o.counts)
            .fold((0, 0), |(p, i), (passed, _, ignored)| {
                (p + passed, i + ignored)
            });
        println!(
            "xtask: {} test executables on {kernel}: {passed} tests passed, {ignored} ignored",
            codes.len()
        );
        Ok(())
    }
}

/// How many tests an executable runs at once: `--test-threads N` or `=N` in `args`,
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

/// The executables to run in the VM, each with the tests it will run with `args` (its
/// own `--list`, run on the host: listing loads nothing into the kernel), and the
/// others with why they are not run, each said on a line now: an executable with no
/// test matching `args`, or one that needs a program the VM does not have.
#[allow(clippy::type_complexity)]
fn choose(
    executables: &[Executable],
    only: &[String],
    args: &[String],
) -> Result<(Vec<(Executable, Vec<String>)>, Vec<(String, String)>)> {
    let mut run = Vec::new();
    let mut not_run = Vec::new();
    for e in executables {
        if !only.is_empty() && !only.contains(&e.name) {
            let why = "not named by --test".to_string();
            println!("xtask: {}: not run in the VM: {why}", e.name);
            not_run.push((e.name.clone(), why));
            continue;
        }
        let mut list = std::process::Command::new(&e.path);
        list.args(args).arg("--list");
        let out =
            cmd::probe(&mut list).ok_or_else(|| anyhow!("`{} --list` failed", e.path.display()))?;
        let tests = progress::listed_tests(&out);
        let source = fs::read_to_string(&e.source)
            .with_context(|| format!("cannot read {}", e.source.display()))?;
        let why = if tests.is_empty() {
            Some("no test matches the arguments".to_string())
        } else {
            missing_in_vm(&needs(&source))
        };
        match why {
            Some(why) => {
                println!("xtask: {}: not run in the VM: {why}", e.name);
                not_run.push((e.name.clone(), why));
            }
            None => {
                println!("xtask: {}: {} tests to run in the VM", e.name, tests.len());
                run.push((e.clone(), tests));
            }
        }
    }
    Ok((run, not_run))
}

/// What a test's source says it runs besides the tracer and the workload.
#[derive(Debug, PartialEq)]
enum Need {
    /// A program by name or absolute path (a `Command::new("…")` literal).
    Program(String),
    /// A Python module (an `import …` line in Python the test runs).
    PythonModule(String),
}

/// The programs a test source runs by a literal name (`Command::new("tmux")`), and
/// the Python modules it imports when one of them is Python.
fn needs(source: &str) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    for (i, m) in source.match_indices("Command::new(\"") {
        if let Some((program, _)) = source[i + m.len()..].split_once('"')
            && !out.contains(&Need::Program(program.to_string()))
        {
            out.push(Need::Program(program.to_string()));
        }
    }
    let python = out
        .iter()
        .any(|n| matches!(n, Need::Program(p) if p.starts_with("python")));
    if python {
        for (i, m) in source.match_indices("import ") {
            let module: String = source[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() && !out.contains(&Need::PythonModule(module.clone())) {
                out.push(Need::PythonModule(module));
            }
        }
    }
    out
}

/// Why the VM cannot give the test what it needs, if it cannot. The VM has the host's
/// /usr and /etc and nothing else of the host: a program must be in [`VM_PATH`] (or an
/// absolute path into /usr), a Python module importable by the python3 found there.
fn missing_in_vm(needs: &[Need]) -> Option<String> {
    let in_vm = |program: &str| -> Option<PathBuf> {
        if program.starts_with('/') {
            let shared = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/etc/"]
                .iter()
                .any(|d| program.starts_with(d));
            return (shared && Path::new(program).exists()).then(|| PathBuf::from(program));
        }
        cmd::find_in_path(program, std::ffi::OsStr::new(VM_PATH))
    };
    let mut missing = Vec::new();
    for need in needs {
        match need {
            Need::Program(p) => {
                if in_vm(p).is_none() {
                    missing.push(format!("{p}, which is not in the host's /usr"));
                }
            }
            Need::PythonModule(m) => {
                let importable = in_vm("python3").is_some_and(|python| {
                    std::process::Command::new(python)
                        .args(["-c", &format!("import {m}")])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                });
                if !importable {
                    missing.push(format!(
                        "Python module {m}, which the python3 in the host's /usr cannot import"
                    ));
                }
            }
        }
    }
    (!missing.is_empty()).then(|| format!("needs {}", missing.join("; ")))
}

/// Every integration test executable of tracer-tests (tests/tests/*.rs: each traces
/// the real kernel), built (not run) by `cargo test --no-run`, which also builds
/// tracer-workload. Their paths come from cargo's JSON messages; sorted by name.
fn test_executables(object: &Path) -> Result<Vec<Executable>> {
    let mut cargo = build::with_object(object);
    cargo.args([
        "test",
        "-p",
        "tracer-tests",
        "--tests",
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
    let found = executables_of(&stdout);
    if found.is_empty() {
        bail!("cargo built no test executable of tests/tests/ (none in its output)");
    }
    Ok(found)
}

/// The integration test executables (target kind `test`) in cargo's JSON messages,
/// sorted by name.
fn executables_of(messages: &str) -> Vec<Executable> {
    let mut found: Vec<Executable> = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "test"))
        })
        .filter_map(|m| {
            Some(Executable {
                name: m["target"]["name"].as_str()?.to_string(),
                path: PathBuf::from(m["executable"].as_str()?),
                source: PathBuf::from(m["target"]["src_path"].as_str()?),
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    found
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

/// What the VM's init runs: each test executable in the tests' package directory
/// (where `cargo test` runs it) with `agent` as the tracer under test, two tests at a time unless `args` say otherwise.
fn plan(
    modules: Vec<String>,
    shares: Vec<init::Share>,
    agent: &Path,
    binaries: &[(Executable, Vec<String>)],
    args: &[String],
    accel: qemu::Accel,
) -> Result<init::Plan> {
    let scale = match accel {
        qemu::Accel::Kvm => DEADLINE_SCALE_KVM,
        qemu::Accel::Tcg => DEADLINE_SCALE_TCG,
    };
    let debug = cmd::target_dir().join("debug");
    let mut env = vec![
        ("PATH".into(), VM_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("RUST_BACKTRACE".into(), "1".into()),
        ("TRACER_TEST_DEADLINE_SCALE".into(), scale.to_string()),
        ("TRACER_BIN".into(), qemu::utf8(agent)?),
        (
            "TRACER_RELEASE_BIN".into(),
            qemu::utf8(&build::binary(true))?,
        ),
        (
            "TRACER_WORKLOAD".into(),
            qemu::utf8(&debug.join("tracer-workload"))?,
        ),
    ];
    // The path the tracer must take there (kernel.rs hooks_null_infop_waitid),
    // when the caller says which: `TRACER_TEST_HOOKS=fexit cargo xtask test --kernel 6.1`.
    for key in ["TRACER_TEST_HOOKS", "TRACER_HOOKS"] {
        if let Ok(v) = std::env::var(key) {
            env.push((key.into(), v));
        }
    }
    let mut runs = Vec::new();
    for (e, _) in binaries {
        let mut command = vec![qemu::utf8(&e.path)?];
        if !args.iter().any(|a| a.starts_with("--test-threads")) {
            command.push(format!("--test-threads={CPUS}"));
        }
        command.extend(args.iter().cloned());
        runs.push(init::TestRun {
            name: e.name.clone(),
            command,
        });
    }
    Ok(init::Plan {
        modules,
        shares,
        workdir: qemu::utf8(&cmd::workspace_root().join("tests"))?,
        env,
        runs,
        limit_secs: LIMIT_PER_EXECUTABLE.as_secs(),
    })
}

/// The executables' exit codes from the status file (`tests NAME CODE` lines, in the
/// order they ran); an error for `setup MESSAGE` or a line of neither kind.
fn parse_status(text: &str) -> Result<Vec<(String, i32)>> {
    let mut codes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(message) = line.strip_prefix("setup ") {
            bail!("the VM could not run the tests: {message}");
        }
        if line == "done" {
            continue;
        }
        let parsed = line
            .strip_prefix("tests ")
            .and_then(|rest| rest.rsplit_once(' '))
            .and_then(|(name, code)| Some((name.to_string(), code.parse().ok()?)));
        match parsed {
            Some(entry) => codes.push(entry),
            None => {
                bail!("the VM's status file says {line:?}: expected `tests <name> <exit code>`")
            }
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_the_init_script_writes() {
        assert_eq!(
            parse_status("tests kernel 0\ntests zombies 101\ndone\n").unwrap(),
            [("kernel".to_string(), 0), ("zombies".to_string(), 101)]
        );
        assert_eq!(parse_status("").unwrap(), []);
        let err = parse_status("setup failed: /vm/busybox insmod /vm/modules/9p.ko\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("could not run the tests: failed: "),
            "{err}"
        );
        assert!(parse_status("tests kernel x").is_err());
        assert!(parse_status("tests 0").is_err());
    }

    #[test]
    fn finds_the_test_executables_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"tracer_tests","kind":["lib"],"src_path":"/w/tests/src/lib.rs"},"executable":"/t/debug/deps/tracer_tests-1"}
{"reason":"compiler-artifact","target":{"name":"tracer-workload","kind":["bin"],"src_path":"/w/tests/src/bin/tracer-workload.rs"},"executable":"/t/debug/tracer-workload"}
{"reason":"compiler-artifact","target":{"name":"zombies","kind":["test"],"src_path":"/w/tests/tests/zombies.rs"},"executable":"/t/debug/deps/zombies-4567"}
{"reason":"compiler-artifact","target":{"name":"kernel","kind":["test"],"src_path":"/w/tests/tests/kernel.rs"},"executable":"/t/debug/deps/kernel-0123"}
not json
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executables_of(messages),
            [
                Executable {
                    name: "kernel".into(),
                    path: "/t/debug/deps/kernel-0123".into(),
                    source: "/w/tests/tests/kernel.rs".into(),
                },
                Executable {
                    name: "zombies".into(),
                    path: "/t/debug/deps/zombies-4567".into(),
                    source: "/w/tests/tests/zombies.rs".into(),
                },
            ],
            "tests only, not the lib's unit tests or a bin, sorted by name"
        );
    }

    #[test]
    fn a_test_needs_the_programs_it_names_and_python_modules_it_imports() {
        let source = r#"
            let a = Command::new("tmux").args(["new-session"]);
            let b = Command::new("/bin/sh");
            let c = Command::new(tracer_bin());
            let d = Command::new("tmux");
            let q = Command::new("python3").args(["-c", "import duckdb\nprint(1)"]);
        "#;
        assert_eq!(
            needs(source),
            [
                Need::Program("tmux".into()),
                Need::Program("/bin/sh".into()),
                Need::Program("python3".into()),
                Need::PythonModule("duckdb".into()),
            ]
        );
        assert_eq!(
            needs(r#"Command::new("head"); // import nothing"#),
            [Need::Program("head".into())],
            "imports count only with Python"
        );
    }

    #[test]
    fn the_vm_has_what_the_hosts_usr_has_and_nothing_else() {
        assert_eq!(missing_in_vm(&[Need::Program("sh".into())]), None);
        assert_eq!(missing_in_vm(&[Need::Program("/bin/sh".into())]), None);
        let why = missing_in_vm(&[
            Need::Program("no-such-program-xtask".into()),
            Need::Program("/root/.cargo/bin/cargo".into()),
        ])
        .unwrap();
        assert_eq!(
            why,
            "needs no-such-program-xtask, which is not in the host's /usr; \
             /root/.cargo/bin/cargo, which is not in the host's /usr"
        );
    }
}
