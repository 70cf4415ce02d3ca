//! Running the VM: qemu with KVM, the kernel and initramfs given directly (no disk, no
//! bootloader), the host directories as 9p shares, and the serial console streamed to
//! stdout line by line with a prefix.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::init::Share;
use super::progress::Progress;
use crate::cmd;

/// The emulator Debian's qemu-system-x86 installs.
pub const QEMU: &str = "qemu-system-x86_64";
/// Where KVM is; qemu without it emulates every instruction, too slow for the tests.
pub const KVM: &str = "/dev/kvm";

/// How qemu runs the guest's instructions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accel {
    /// Hardware virtualisation through KVM (kvm_intel or kvm_amd).
    Kvm,
    /// qemu's own emulator, one host thread per virtual CPU: several times slower, but
    /// it boots any kernel where KVM cannot (no KVM, or a KVM that runs only guests
    /// built for it).
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (emulation, slower)",
        }
    }
}

/// Which accelerator can boot a stock kernel here, and why.
///
/// KVM needs an openable /dev/kvm backed by hardware virtualisation (module kvm_intel or
/// kvm_amd). Some cloud VMs offer a /dev/kvm without it, backed by kvm_pvm (PVM, a
/// software "pagetable virtual machine"): it only runs guests built for PVM, and a
/// stock Debian kernel hangs in its first instructions there, so it counts as no KVM.
pub fn choose_accel(kvm_opens: Result<(), String>, loaded_modules: &[String]) -> (Accel, String) {
    let hardware = ["kvm_intel", "kvm_amd"]
        .iter()
        .find(|m| loaded_modules.iter().any(|l| l == *m));
    match (kvm_opens, hardware) {
        (Ok(()), Some(module)) => (Accel::Kvm, format!("{KVM} usable ({module})")),
        (Ok(()), None) if loaded_modules.iter().any(|m| m == "kvm_pvm") => (
            Accel::Tcg,
            format!(
                "{KVM} is PVM (kvm_pvm), which cannot boot stock kernels: using qemu's emulator (TCG), slower"
            ),
        ),
        (Ok(()), None) => (
            Accel::Tcg,
            format!(
                "{KVM} opens but neither kvm_intel nor kvm_amd is loaded: using qemu's emulator (TCG), slower"
            ),
        ),
        (Err(err), _) => (
            Accel::Tcg,
            format!("{KVM} not usable ({err}): using qemu's emulator (TCG), slower"),
        ),
    }
}

/// [`choose_accel`] for this machine.
pub fn detect_accel() -> (Accel, String) {
    let opens = OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM)
        .map(drop)
        .map_err(|e| e.to_string());
    let modules: Vec<String> = std::fs::read_dir("/sys/module")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    choose_accel(opens, &modules)
}

/// One VM run.
#[derive(Debug)]
pub struct Vm {
    pub accel: Accel,
    pub vmlinuz: PathBuf,
    pub initramfs: PathBuf,
    pub shares: Vec<Share>,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The host's TSC frequency, given to an emulated guest ([`append`]).
    pub tsc_khz: Option<u64>,
}

/// The kernel command line: the serial console (what the host reads); warnings and
/// worse on it (`loglevel=5`: a WARN or a lockup's backtrace shows, boot chatter does
/// not); a soft lockup (a CPU stuck in the kernel for 2 * watchdog_thresh = 60 s)
/// prints every CPU's backtrace, not only the stuck one's (the other CPU may hold what
/// it waits for), then panics; a panic ends the VM at once (`panic=-1` reboots, which
/// `-no-reboot` turns into qemu exiting) instead of leaving a hung VM until the timeout.
pub const APPEND: &str = "console=ttyS0 panic=-1 loglevel=5 softlockup_panic=1 \
                          softlockup_all_cpu_backtrace=1 watchdog_thresh=30";

/// Added under TCG, where the guest's clock and syscalls cost the most.
/// `tsc=reliable`: the kernel's TSC synchronisation check (check_tsc_sync_source) sees
/// the emulated CPUs' TSCs warp, marks the TSC unstable and falls back to the HPET,
/// whose every read is an emulated MMIO access under qemu's global lock; every
/// `ktime_get` (each event's timestamp, each timer) then goes through it. The TSC
/// of TCG is the host's monotonic clock, so it is in fact reliable.
/// `mitigations=off`: no speculative-execution mitigations (retpolines, RSB filling on
/// context switch), which only cost time in an emulated test VM.
pub const APPEND_TCG: &str = "tsc=reliable mitigations=off";

/// The kernel command line for `accel`. Under TCG with `tsc_khz` (the host's TSC
/// frequency, [`host_tsc_khz`]) also `tsc_early_khz=`: the emulated CPU's TSC is
/// the host's own (qemu's cpu_get_tsc reads the host's TSC when not counting
/// instructions), but the guest measures its frequency against the emulated PIT and
/// HPET (arch/x86/kernel/tsc.c, native_calibrate_tsc / pit_hpet_ptimer_calibrate_cpu),
/// which on a loaded host gives nonsense: one boot here took 255 MHz for a 2.6 GHz
/// TSC ("PIT calibration deviates from HPET: 255024 2600068"), and the guest's clock
/// then ran ten times fast, so every timeout in the tests expired ten times early.
/// The later refinement (tsc_refine_calibration_work) only moves it within 1%.
pub fn append(accel: Accel, tsc_khz: Option<u64>) -> String {
    match (accel, tsc_khz) {
        (Accel::Kvm, _) => APPEND.to_string(),
        (Accel::Tcg, None) => format!("{APPEND} {APPEND_TCG}"),
        (Accel::Tcg, Some(khz)) => format!("{APPEND} {APPEND_TCG} tsc_early_khz={khz}"),
    }
}

/// The host's TSC frequency in kHz, measured against the monotonic clock over 200 ms
/// (both count real time however loaded the host is); None where there is no TSC.
pub fn host_tsc_khz() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        let started = std::time::Instant::now();
        // SAFETY: rdtsc has no preconditions on x86_64.
        let t0 = unsafe { std::arch::x86_64::_rdtsc() };
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: as above.
        let t1 = unsafe { std::arch::x86_64::_rdtsc() };
        let nanos = started.elapsed().as_nanos();
        let khz = u128::from(t1.wrapping_sub(t0)) * 1_000_000 / nanos.max(1);
        u64::try_from(khz).ok().filter(|&k| k > 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The qemu command for `vm`.
pub fn command(vm: &Vm) -> Result<Command> {
    let mut qemu = Command::new(QEMU);
    qemu.args(["-nodefaults", "-no-user-config", "-no-reboot"])
        .args(["-machine", "q35"])
        .args(match vm.accel {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            // `max`: every CPU feature TCG emulates; thread=multi: one host thread per CPU.
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        })
        .args([
            "-smp",
            &vm.cpus.to_string(),
            "-m",
            &format!("{}M", vm.memory_mib),
        ])
        .args(["-display", "none", "-serial", "stdio"])
        .arg("-kernel")
        .arg(&vm.vmlinuz)
        .arg("-initrd")
        .arg(&vm.initramfs)
        .arg("-append")
        .arg(append(vm.accel, vm.tsc_khz));
    for share in &vm.shares {
        qemu.args(["-virtfs", &virtfs(share)?]);
    }
    Ok(qemu)
}

/// The `-virtfs` option of a share. `security_model=none` passes the guest's file
/// operations through as qemu's own user (root here); `multidevs=remap` keeps inode
/// numbers unique when the directory spans several host file systems.
fn virtfs(share: &Share) -> Result<String> {
    if share.host.contains(',') {
        bail!(
            "{} contains a comma, which qemu's -virtfs cannot take: use a path without one",
            share.host
        );
    }
    if share.tag.len() > 31 {
        bail!("9p mount tag {} is longer than 31 bytes", share.tag);
    }
    let mut option = format!(
        "local,path={},mount_tag={},security_model=none,multidevs=remap",
        share.host, share.tag
    );
    if !share.writable {
        option.push_str(",readonly=on");
    }
    Ok(option)
}

/// How a VM run ended.
#[derive(Debug)]
pub enum Ended {
    /// qemu exited (the guest powered off, or panicked: `-no-reboot`).
    Exited(ExitStatus),
    /// Still running after the timeout: qemu was killed.
    TimedOut,
}

/// Runs qemu, writing each console line to `log` and giving it to `progress`, and
/// printing with `prefix` what `progress` says to show of it; kills qemu after `timeout`.
pub fn run(
    mut qemu: Command,
    prefix: &str,
    log: &Path,
    timeout: Duration,
    progress: &mut Progress,
) -> Result<Ended> {
    println!("xtask: $ {}", cmd::show(&qemu));
    println!(
        "xtask: console log {}; the VM is killed after {} minutes",
        log.display(),
        timeout.as_secs() / 60
    );
    let mut log_file =
        File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    // stdin stays off the terminal: qemu's stdio chardev would put a terminal in raw mode.
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {QEMU}: apt-get install qemu-system-x86"))?;
    let stdout = child.stdout.take().expect("piped");
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        // Host seconds since qemu started: a slow guest and a stuck one
                        // look alike in the guest's own timestamps.
                        let _ =
                            writeln!(log_file, "{:7.1} {text}", started.elapsed().as_secs_f64());
                        let shown = progress.line(text);
                        let mut out = std::io::stdout().lock();
                        for line in shown {
                            let _ = writeln!(out, "{prefix}{line}");
                        }
                        let _ = out.flush();
                    }
                }
            }
            let _ = log_file.flush();
        });
        // When qemu ends, its end of the pipe closes and the reader above returns.
        loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(Ended::Exited(status)),
                Ok(None) => {}
                Err(err) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(err).context("waiting for qemu");
                }
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break Ok(Ended::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// The path as a string for the init script and qemu, which both need UTF-8 here.
pub fn utf8(path: &Path) -> Result<String> {
    path.to_str().map(str::to_string).with_context(|| {
        format!(
            "{} is not UTF-8: use a workspace path that is",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(host: &str, writable: bool) -> Share {
        Share {
            tag: "ws".into(),
            host: host.into(),
            guest: host.into(),
            writable,
        }
    }

    #[test]
    fn shares_are_read_only_unless_writable() {
        assert_eq!(
            virtfs(&share("/w", false)).unwrap(),
            "local,path=/w,mount_tag=ws,security_model=none,multidevs=remap,readonly=on"
        );
        assert!(!virtfs(&share("/w", true)).unwrap().contains("readonly"));
        let err = virtfs(&share("/a,b", false)).unwrap_err();
        assert!(err.to_string().contains("comma"), "{err}");
    }

    #[test]
    fn command_boots_the_kernel_directly_with_kvm() {
        let vm = Vm {
            accel: Accel::Kvm,
            vmlinuz: "/k/vmlinuz".into(),
            initramfs: "/k/initramfs.cpio".into(),
            shares: vec![share("/w", false)],
            cpus: 2,
            memory_mib: 2048,
            tsc_khz: None,
        };
        let args: Vec<String> = command(&vm)
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        for part in [
            "-no-reboot",
            "-accel kvm -cpu host",
            "-smp 2 -m 2048M",
            "-kernel /k/vmlinuz -initrd /k/initramfs.cpio",
            "-serial stdio",
            "-virtfs local,path=/w,mount_tag=ws",
        ] {
            assert!(line.contains(part), "{part:?} not in {line}");
        }
        let append = args.iter().position(|a| a == "-append").unwrap();
        assert_eq!(args[append + 1], APPEND);
        assert!(super::append(Accel::Tcg, None).ends_with("tsc=reliable mitigations=off"));
        assert!(
            super::append(Accel::Tcg, Some(2_600_068))
                .ends_with("tsc=reliable mitigations=off tsc_early_khz=2600068")
        );
        assert_eq!(super::append(Accel::Kvm, Some(2_600_068)), APPEND);
    }

    #[test]
    fn uses_kvm_only_when_it_is_hardware_virtualisation() {
        let modules = |list: &[&str]| list.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        let (accel, why) = choose_accel(Ok(()), &modules(&["kvm", "kvm_amd", "ext4"]));
        assert_eq!(
            (accel, why.as_str()),
            (Accel::Kvm, "/dev/kvm usable (kvm_amd)")
        );
        let (accel, why) = choose_accel(Ok(()), &modules(&["kvm", "kvm_pvm"]));
        assert_eq!(accel, Accel::Tcg);
        assert!(why.contains("PVM"), "{why}");
        let (accel, why) = choose_accel(
            Err("No such file or directory".into()),
            &modules(&["kvm_intel"]),
        );
        assert_eq!(accel, Accel::Tcg);
        assert!(why.contains("not usable (No such file"), "{why}");
    }
}
