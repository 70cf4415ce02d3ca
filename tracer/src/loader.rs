//! Loads the embedded eBPF object for the running kernel and attaches its programs.

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{BtfTracePoint, FExit, ProgramError, TracePoint},
};
use tracer_common::{Config, ForkerKey, ForkerStats, kind};

use crate::{btf, features, hooks, kconfig, kernel_log, tracefs};

/// The eBPF object built by `cargo xtask build` (see tracer/build.rs); empty when
/// the agent was built without it.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// BTF-enabled tracepoints (tp_btf): typed `struct task_struct *` arguments, and
/// cheaper than classic tracepoints since no trace record is formatted.
const BTF_PROGRAMS: &[&str] = &[
    "task_newtask",
    "sched_process_exec",
    "sched_process_exit",
    "sched_process_free",
];

/// Syscall tracepoints (category `syscalls`); the program is named after the event.
const SYSCALL_PROGRAMS: &[&str] = &[
    "sys_enter_execve",
    "sys_enter_execveat",
    "sys_exit_execve",
    "sys_exit_execveat",
    "sys_exit_wait4",
    "sys_enter_waitid",
    "sys_exit_waitid",
    "sys_exit_fork",
    "sys_exit_vfork",
    "sys_exit_clone",
    "sys_exit_clone3",
];

/// The names of every program [`load`] loads and attaches on `path`: the BTF
/// tracepoints, then the fexit programs or the syscall tracepoints.
pub fn program_names(path: hooks::Path) -> impl Iterator<Item = &'static str> {
    let rest = match path {
        hooks::Path::Fexit => hooks::FEXIT_PROGRAMS,
        hooks::Path::SyscallTracepoints => SYSCALL_PROGRAMS,
    };
    BTF_PROGRAMS.iter().chain(rest).copied()
}

/// Set to `syscall_tracepoints` to skip the fexit path (to measure or test the
/// fallback on a kernel that has trampolines).
pub const HOOKS_ENV: &str = "TRACER_HOOKS";

/// aya-log-ebpf's ring buffer of log records, and its size with `-vv` (aya-log-ebpf's default).
const LOG_MAP: &str = "AYA_LOGS";
const LOG_RING_SIZE: u32 = 128 * 1024;

/// The smallest ring buffer there can be (kernel/bpf/ringbuf.c: a page).
fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).unwrap_or(4096)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "this tracer binary was built without its eBPF object: build it with `cargo xtask build` (or `cargo xtask run`)"
    )]
    NoObject,
    #[error("root is needed to load eBPF programs (CAP_BPF, CAP_PERFMON): run it with sudo")]
    NotRoot,
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(transparent)]
    Layout(#[from] kconfig::KconfigError),
    #[error("parsing the BTF built for attaching the BTF tracepoints: {0}")]
    AyaBtf(String),
    #[error(
        "this kernel has no bpf(2) system call (built without CONFIG_BPF_SYSCALL): boot a kernel with BPF enabled"
    )]
    NoBpf,
    #[error(
        "the kernel refused bpf(2) to root ({0}): kernel lockdown, an LSM (SELinux, AppArmor), a seccomp profile (a container's) or, up to Linux 5.10, the locked-memory limit (ulimit -l) forbids BPF here; run tracer where BPF is allowed"
    )]
    BpfRefused(String),
    // aya's errors repeat their sources in their own text, so each of these holds
    // the de-duplicated chain (`chain`) instead of a `#[source]` anyhow would print again.
    #[error("loading the eBPF object into the kernel failed: {0}")]
    Load(String),
    #[error("loading program {name} failed: the kernel refused it: {why}")]
    Program { name: &'static str, why: String },
    /// The verifier refused a program: one line; its log is printed with `-v`.
    #[error(
        "the kernel (Linux {release}) refused eBPF program {name}: {error}{hint}",
        hint = if *.logged { "; the verifier's log is above" } else { "; run with -v for the verifier's log" }
    )]
    Refused {
        name: &'static str,
        release: String,
        error: String,
        logged: bool,
    },
    #[error(transparent)]
    Probe(#[from] features::ProbeError),
    /// The kernel lacks what the programs cannot do without ([`features::missing`]).
    #[error("{0}")]
    TooOld(String),
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF program {0} is missing from the object")]
    MissingProgram(&'static str),
    #[error("eBPF map {name}: {why}")]
    Map { name: &'static str, why: String },
    #[error("reading the eBPF programs' diagnostics: {0}")]
    KernelLog(String),
}

/// An error and its sources as one line, each once ([`crate::error::one_line`]).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::one_line(e)
}

/// Fails with a clear error when bpf(2) is missing or refused, before aya's load
/// reports it as a failure to create some map: one BPF_MAP_CREATE of a one-entry
/// array (`union bpf_attr`: map_type, key_size, value_size, max_entries).
fn probe_bpf() -> Result<(), LoadError> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let mut attr = [0u8; 72];
    for (i, word) in [BPF_MAP_TYPE_ARRAY, 4, 4, 1].into_iter().enumerate() {
        attr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    // SAFETY: attr is a zeroed bpf_attr prefix of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if fd >= 0 {
        // SAFETY: fd is the map just created, owned here.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        // kernel/sys_ni.c: bpf is COND_SYSCALL, -ENOSYS without CONFIG_BPF_SYSCALL.
        Some(libc::ENOSYS) => Err(LoadError::NoBpf),
        Some(libc::EPERM | libc::EACCES) => Err(LoadError::BpfRefused(error.to_string())),
        // Anything else (e.g. ENOMEM) is aya's to report with its context.
        _ => Ok(()),
    }
}

/// Lifts RLIMIT_MEMLOCK for this process. Up to Linux 5.10 every BPF map and program
/// is charged to the user's locked memory (kernel/bpf/syscall.c
/// bpf_map_charge_memlock, which answers EPERM past the limit): the 8 MiB ring
/// alone exceeds the usual 8 MiB limit once a second tracer (or any BPF user) runs
/// as root. Linux 5.11 charges the memory cgroup instead (commit "bpf: Eliminate
/// rlimit-based memory accounting for bpf maps") and ignores the
/// limit, so lifting it is harmless there. Root may raise it (CAP_SYS_RESOURCE);
/// if that fails the BPF probe that follows reports the refusal.
fn lift_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct passed; no other precondition.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) };
}

pub struct LoadOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_size: u32,
    /// Also send thread fork/exit events.
    pub threads: bool,
    /// The programs' own diagnostics (`-vv`, see [`kernel_log`]); when off they
    /// are compiled out by the verifier.
    pub diagnostics: bool,
    /// Print the verifier's log to stderr when it refuses a program (`-v`).
    pub verifier_log: bool,
}

/// The programs, attached. Dropping this detaches them (the links belong to the
/// `Ebpf` object), so nothing stays in the kernel after the agent exits.
pub struct Loaded {
    /// Owns the attached programs: keep it alive while tracing.
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub lost: PerCpuArray<MapData, u64>,
    pub counters: Counters,
    pub config: Config,
    /// Where reaps, failed execs and failed forks come from (see [`hooks`]).
    pub hooks: hooks::Path,
    /// Why the fexit path was not taken, when it was not.
    pub fexit_refused: Option<String>,
    pub tracefs: PathBuf,
    /// The programs' diagnostics, to read when readable; `None` unless asked for.
    pub kernel_log: Option<kernel_log::KernelLog>,
}

/// Per-kind totals, indexed by `tracer_common::kind`.
pub type KindTotals = [u64; kind::COUNT as usize];

/// Sums a per-CPU, per-kind counter array (`LOST`, `SEEN`).
pub fn kind_totals(map: &PerCpuArray<MapData, u64>) -> Result<KindTotals, aya::maps::MapError> {
    let mut out = [0u64; kind::COUNT as usize];
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = map.get(&(k as u32), 0)?.iter().sum();
    }
    Ok(out)
}

/// One process and how many processes it created, from the kernel's `FORKS` map.
pub struct Forker {
    pub key: ForkerKey,
    pub comm: crate::event::Comm,
    pub count: u64,
}

/// Counters kept in the kernel, exact even when records are lost.
pub struct Counters {
    /// Events that happened, per kind (`SEEN`).
    pub seen: PerCpuArray<MapData, u64>,
    /// Processes created per creating process (`FORKS`).
    pub forks: PerCpuHashMap<MapData, ForkerKey, ForkerStats>,
}

impl Counters {
    /// Events that happened, per kind.
    pub fn seen_totals(&self) -> Result<KindTotals, aya::maps::MapError> {
        kind_totals(&self.seen)
    }

    /// The processes that created the most processes, most first.
    pub fn forkers(&self) -> Vec<Forker> {
        let mut all: Vec<Forker> = self
            .forks
            .iter()
            .filter_map(Result::ok)
            .map(|(key, per_cpu)| {
                let comm = per_cpu
                    .iter()
                    .find(|s| s.comm[0] != 0)
                    .map_or([0; 16], |s| s.comm);
                Forker {
                    key,
                    comm: crate::event::Comm(comm),
                    count: per_cpu.iter().map(|s| s.count).sum(),
                }
            })
            .collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.pid.cmp(&b.key.pid)));
        all
    }
}

pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    if OBJECT.is_empty() {
        return Err(LoadError::NoObject);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LoadError::NotRoot);
    }
    lift_memlock_limit();
    probe_bpf()?;
    let found = features::probe()?;
    if let Some(line) = features::missing(&features::kernel_release(), &found) {
        return Err(LoadError::TooOld(line));
    }
    let tracefs = tracefs::ensure_mounted()?;
    let (mut config, attach_btf, plan) = {
        // Our reader of the kernel's BTF gives the offsets and a slim BTF for
        // attaching (see `Btf::attach_only`); it is freed before aya parses
        // the full BTF in `EbpfLoader::new`, so only one parse is alive at a time.
        let kernel_btf = btf::Btf::from_sys_fs()?;
        let typedefs: Vec<String> = BTF_PROGRAMS
            .iter()
            .map(|name| format!("btf_trace_{name}"))
            .collect();
        let typedefs: Vec<&str> = typedefs.iter().map(String::as_str).collect();
        let plan = match std::env::var(HOOKS_ENV) {
            Ok(v) if v == hooks::Path::SyscallTracepoints.name() => {
                Err(format!("{HOOKS_ENV}={v} asks for the syscall tracepoints"))
            }
            _ => hooks::plan(&kernel_btf).map_err(|e| chain(&e)),
        };
        let funcs: Vec<&str> = plan.as_ref().map_or(Vec::new(), |p| {
            p.programs.iter().map(|f| f.function.as_str()).collect()
        });
        (
            kconfig::resolve(&kernel_btf, &tracefs, opts.threads)?,
            kernel_btf.attach_only_with_funcs(&typedefs, &funcs)?,
            plan,
        )
    };
    if let Ok(plan) = &plan {
        config.regs_arg0 = plan.regs_arg[0];
        config.regs_arg1 = plan.regs_arg[1];
        config.waitid_info_pid = plan.waitid_info_pid;
    }
    config.wakeup_bytes = opts.ring_size / 4;
    config.task_btf = u32::from(found.task_btf && !features::forced_probe_read());
    let aya_btf = aya::Btf::parse(&attach_btf, aya::Endianness::default())
        .map_err(|e| LoadError::AyaBtf(chain(&e)))?;
    drop(attach_btf);

    let log_level = kernel_log::level(opts.diagnostics);
    let log_ring = if opts.diagnostics {
        LOG_RING_SIZE
    } else {
        page_size()
    };
    // `EbpfLoader::new` parses the full vmlinux BTF (tens of MB of small
    // allocations, aya 0.14 has no way to skip it); `.btf()` drops that at once.
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&aya_btf))
        .override_global("CONFIG", &config, true)
        .map_max_entries("EVENTS", opts.ring_size)
        .override_global(aya_log::LEVEL, &log_level, true)
        // Nothing is written to it when diagnostics are off: one page then.
        .map_max_entries(LOG_MAP, log_ring)
        .load(OBJECT)
        .map_err(|e| LoadError::Load(chain(&e)))?;

    for &name in BTF_PROGRAMS {
        let prog: &mut BtfTracePoint = program(&mut ebpf, name)?;
        prog.load(name, &aya_btf)
            .map_err(|e| refused(name, e, verifier_log(opts).as_mut().map(|w| w as _)))?;
        prog.attach().map_err(|e| LoadError::Program {
            name,
            why: chain(&e),
        })?;
    }
    // The fexit set where the kernel loads and attaches it all, else the
    // syscall tracepoints: loading is the probe (this is where a kernel without
    // trampolines, or one whose lockdown refuses them, says no).
    let (hooks, fexit_refused) = match plan {
        Ok(plan) => match attach_fexit(&mut ebpf, &plan, &aya_btf) {
            Ok(()) => (hooks::Path::Fexit, None),
            Err(why) => {
                attach_syscall_tracepoints(&mut ebpf, opts)?;
                (hooks::Path::SyscallTracepoints, Some(why))
            }
        },
        Err(why) => {
            attach_syscall_tracepoints(&mut ebpf, opts)?;
            (hooks::Path::SyscallTracepoints, Some(why))
        }
    };

    // Hand the freed parse back to the kernel before the ring buffer is mapped,
    // so the agent's peak RSS is not the sum of both.
    drop(aya_btf);
    // SAFETY: malloc_trim only releases free heap memory.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
    // musl has no malloc_trim: its allocator (mallocng) unmaps freed groups itself.
    let ring = RingBuf::try_from(take(&mut ebpf, "EVENTS")?).map_err(map_err("EVENTS"))?;
    let lost = PerCpuArray::try_from(take(&mut ebpf, "LOST")?).map_err(map_err("LOST"))?;
    let seen = PerCpuArray::try_from(take(&mut ebpf, "SEEN")?).map_err(map_err("SEEN"))?;
    let forks = PerCpuHashMap::try_from(take(&mut ebpf, "FORKS")?).map_err(map_err("FORKS"))?;
    let kernel_log = if opts.diagnostics {
        Some(
            aya_log::EbpfLogger::init_with_logger(&mut ebpf, kernel_log::Stderr)
                .map_err(|e| LoadError::KernelLog(chain(&e)))?,
        )
    } else {
        None
    };
    Ok(Loaded {
        ebpf,
        ring,
        lost,
        counters: Counters { seen, forks },
        config,
        hooks,
        fexit_refused,
        tracefs,
        kernel_log,
    })
}

/// A program load that failed: a verifier refusal becomes one line naming the program
/// and the kernel, its log (tens of lines) written first to `log` (stderr with `-v`).
fn refused(name: &'static str, e: ProgramError, log: Option<&mut dyn std::io::Write>) -> LoadError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let text = verifier_log.to_string();
            let mut logged = false;
            if let Some(out) = log
                && !text.trim().is_empty()
            {
                let mut write = || -> std::io::Result<()> {
                    writeln!(out, "tracer: the verifier's log for {name}:")?;
                    for line in text.lines() {
                        writeln!(out, "  {line}")?;
                    }
                    Ok(())
                };
                logged = write().is_ok();
            }
            LoadError::Refused {
                name,
                release: features::kernel_release(),
                error: io_error.to_string(),
                logged,
            }
        }
        other => LoadError::Program {
            name,
            why: chain(&other),
        },
    }
}

/// Where a refused program's verifier log goes: stderr with `-v`, else nowhere.
fn verifier_log(opts: &LoadOptions) -> Option<std::io::Stderr> {
    opts.verifier_log.then(std::io::stderr)
}

/// Loads and attaches every fexit program of `plan`; on the first failure
/// unloads those done (detaching them) and says why.
fn attach_fexit(ebpf: &mut Ebpf, plan: &hooks::Plan, btf: &aya::Btf) -> Result<(), String> {
    let mut done = Vec::new();
    let mut result = Ok(());
    for f in &plan.programs {
        let step = program::<FExit>(ebpf, f.program)
            .map_err(|e| chain(&e))
            .and_then(|prog| {
                prog.load(&f.function, btf)
                    .and_then(|()| prog.attach().map(drop))
                    .map_err(|e| format!("fexit on {}: {}", f.function, chain(&e)))
            });
        done.push(f.program);
        if let Err(why) = step {
            result = Err(why);
            break;
        }
    }
    if result.is_err() {
        for name in done {
            if let Some(aya::programs::Program::FExit(prog)) = ebpf.program_mut(name) {
                // Not loaded (the failing one) is fine: nothing to undo.
                let _ = prog.unload();
            }
        }
    }
    result
}

fn attach_syscall_tracepoints(ebpf: &mut Ebpf, opts: &LoadOptions) -> Result<(), LoadError> {
    for &name in SYSCALL_PROGRAMS {
        let prog: &mut TracePoint = program(ebpf, name)?;
        prog.load()
            .map_err(|e| refused(name, e, verifier_log(opts).as_mut().map(|w| w as _)))?;
        prog.attach("syscalls", name)
            .map_err(|e| LoadError::Program {
                name,
                why: chain(&e),
            })?;
    }
    Ok(())
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::MissingMap(name))
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> LoadError {
    move |e| LoadError::Map {
        name,
        why: chain(&e),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?;
    prog.try_into().map_err(|e| LoadError::Program {
        name,
        why: chain(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: &'static str,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(text: &'static str, source: Option<E>) -> E {
        E {
            text,
            source: source.map(Box::new),
        }
    }

    /// What the verifier of Linux 5.10 answered the first program before it had a
    /// 5.10 variant (kernel/bpf/verifier.c check_helper_call), shortened.
    fn refusal_5_10() -> ProgramError {
        ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EINVAL),
            verifier_log: aya_obj::VerifierLog::new(
                "func#0 @0\n0: R1=ctx(id=0,off=0,imm=0) R10=fp0\n; \
                 let current = bpf_get_current_task_btf()\n\
                 12: (85) call unknown#158\ninvalid func unknown#158\n\
                 processed 12 insns (limit 1000000)\n"
                    .to_string(),
            ),
        }
    }

    #[test]
    fn a_refusal_is_one_line_naming_program_and_kernel_and_the_log_goes_to_v() {
        let release = features::kernel_release();
        // Without -v: one line, no log, and how to get it.
        let line = refused("task_newtask", refusal_5_10(), None).to_string();
        assert_eq!(
            line,
            format!(
                "the kernel (Linux {release}) refused eBPF program task_newtask: Invalid \
                 argument (os error 22); run with -v for the verifier's log"
            )
        );
        assert!(!line.contains('\n'));
        // With -v: the same one line, the log written before it.
        let mut log = Vec::new();
        let line = refused(
            "task_newtask",
            refusal_5_10(),
            Some(&mut log as &mut dyn std::io::Write),
        )
        .to_string();
        assert!(
            !line.contains('\n') && !line.contains("unknown#158"),
            "{line}"
        );
        assert!(line.ends_with("; the verifier's log is above"), "{line}");
        let log = String::from_utf8(log).unwrap();
        assert!(
            log.starts_with("tracer: the verifier's log for task_newtask:\n"),
            "{log}"
        );
        assert!(log.contains("  invalid func unknown#158\n"), "{log}");
    }

    #[test]
    fn other_load_failures_keep_their_cause() {
        let e = ProgramError::SyscallError(aya::sys::SyscallError {
            call: "bpf_prog_load",
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
        });
        let line = refused("sys_exit_wait4", e, None).to_string();
        assert!(
            line.starts_with("loading program sys_exit_wait4 failed: the kernel refused it:")
                && line.contains("bpf_prog_load"),
            "{line}"
        );
    }

    #[test]
    fn chain_leaves_out_what_a_wrapper_already_says() {
        let io = e("Function not implemented (os error 38)", None);
        let map = e("failed to create map `X`", Some(io));
        let top = e("map error: failed to create map `X`", Some(map));
        assert_eq!(
            chain(&top),
            "map error: failed to create map `X`: Function not implemented (os error 38)"
        );
        assert_eq!(chain(&e("alone", None)), "alone");
    }
}
