//! `cargo xtask bench --kernel VERSION`: the bench (docs/bench.md) inside a VM booted on
//! that kernel, as `cargo xtask test --kernel` boots it. One boot runs the bench twice:
//! with the tracer's default hooks (fexit where the kernel allows it), then with
//! `TRACER_HOOKS=syscall_tracepoints`; each is paired untraced vs tracer as usual.
//! The tables print on the console (and in the console log); the JSON files land in
//! `target/vm/<package>/bench-result/`.

use std::fs;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::progress::Progress;
use super::{check_config, debian, init, qemu, shares};
use crate::{build, cmd, ebpf, setup};

/// Two benches, each a few minutes under KVM; more is stuck, not slow.
const TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// Bigger than the test VM: the storms run two workers.
const CPUS: u32 = 2;
const MEMORY_MIB: u32 = 2048;

/// `bench_args` are the bench's own options, passed on as given (`--kernel` removed).
pub fn bench(version: &str, bench_args: &[String]) -> Result<ExitCode> {
    if std::env::consts::ARCH != "x86_64" {
        bail!("--kernel boots Debian's amd64 kernels with KVM: it needs an x86_64 host");
    }
    setup::build_tools()?;
    debian::host_packages()?;
    let (accel, why) = qemu::detect_accel();
    println!("xtask: {why}");
    let object = ebpf::build()?;
    build::agent(true, &object, &["tracer", "tracer-tests"])?;
    let xtask = std::env::current_exe().context("finding xtask's own executable")?;

    let package = debian::kernel_package(version)?;
    let kernel = debian::kernel(&package)?;
    check_config(&kernel.config, &kernel.release)?;
    let busybox = debian::busybox()?;
    let dir = kernel
        .vmlinuz
        .parent()
        .expect("in target/vm/<package>")
        .to_path_buf();
    let result = dir.join("bench-result");
    if result.exists() {
        fs::remove_dir_all(&result)?;
    }
    fs::create_dir_all(&result)?;
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

    // The bench writes its scratch files and JSON under /tmp (a tmpfs in the VM: the
    // workspace is read-only there), then the JSON goes to the result share.
    let run = format!(
        "{} bench --in-vm {}",
        init::quote(&qemu::utf8(&xtask)?),
        bench_args
            .iter()
            .map(|a| init::quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let script = format!(
        "echo 'vm-bench: default hooks'; {run}; a=$?; \
         echo 'vm-bench: TRACER_HOOKS=syscall_tracepoints'; \
         TRACER_HOOKS=syscall_tracepoints {run}; b=$?; \
         cp /tmp/bench/*.json {}/ ; exit $((a | b))",
        init::RESULT_DIR
    );
    let plan = init::Plan {
        modules: modules.iter().map(|(n, _)| n.clone()).collect(),
        shares: shares(&result)?,
        workdir: qemu::utf8(&cmd::workspace_root())?,
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), "/root".into()),
        ],
        runs: vec![init::TestRun {
            name: "bench".into(),
            command: vec!["/bin/sh".into(), "-c".into(), script],
        }],
        limit_secs: TIMEOUT.as_secs(),
    };
    let initramfs = dir.join("initramfs-bench.cpio");
    let image = init::initramfs(&busybox, &modules, &init::script(&plan))?;
    fs::write(&initramfs, image)
        .with_context(|| format!("cannot write {}", initramfs.display()))?;
    let vm = qemu::Vm {
        accel,
        vmlinuz: kernel.vmlinuz.clone(),
        initramfs,
        shares: shares(&result)?,
        cpus: CPUS,
        memory_mib: MEMORY_MIB,
        tsc_khz: match accel {
            qemu::Accel::Kvm => None,
            qemu::Accel::Tcg => qemu::host_tsc_khz(),
        },
    };
    let log = dir.join("console-bench.log");
    let mut progress = Progress::new(Vec::new(), 1, TIMEOUT.as_secs() / 60);
    let ended = qemu::run(
        qemu::command(&vm)?,
        &format!("vm {version}| "),
        &log,
        TIMEOUT,
        &mut progress,
    )?;
    if let qemu::Ended::TimedOut = ended {
        bail!(
            "the bench VM on Linux {} did not finish within {} minutes; console log {}",
            kernel.release,
            TIMEOUT.as_secs() / 60,
            log.display()
        );
    }
    let status = fs::read_to_string(result.join(init::STATUS_FILE)).unwrap_or_default();
    println!(
        "xtask: bench on Linux {} done ({}); JSON in {}, console log {}",
        kernel.release,
        status.trim(),
        result.display(),
        log.display()
    );
    if status.lines().any(|l| l.trim() == "tests bench 0") {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}
