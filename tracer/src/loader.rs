//! Loads the embedded eBPF object for the running kernel and attaches its programs.

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, TracePoint},
};
use tracer_common::{Config, kind};

use crate::{btf, kconfig, tracefs};

/// The eBPF object built by `cargo xtask build` (see tracer/build.rs); empty when
/// the agent was built without it.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// BTF-enabled tracepoints (tp_btf): typed `struct task_struct *` arguments, and
/// cheaper than classic tracepoints since no trace record is formatted.
const BTF_PROGRAMS: &[&str] = &[
    "task_newtask",
    "sched_process_fork",
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
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "this tracer binary was built without its eBPF object: build it with `cargo xtask build` (or `cargo xtask run`)"
    )]
    NoObject,
    #[error("tracer needs root to load eBPF programs (CAP_BPF, CAP_PERFMON): run it with sudo")]
    NotRoot,
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(transparent)]
    Layout(#[from] kconfig::KconfigError),
    #[error("reading kernel BTF for the BTF tracepoints: {0}")]
    AyaBtf(#[source] aya::BtfError),
    #[error(
        "loading the eBPF object into the kernel failed (is BPF enabled? kernel.unprivileged_bpf_disabled and lockdown can refuse it): {0}"
    )]
    Load(#[source] aya::EbpfError),
    #[error("loading program {name} failed: the kernel refused it ({source})")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

pub struct LoadOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_size: u32,
    /// Also send thread fork/exit events.
    pub threads: bool,
}

/// The programs, attached. Dropping this detaches them (the links belong to the
/// `Ebpf` object), so nothing stays in the kernel after the agent exits.
pub struct Loaded {
    /// Owns the attached programs: keep it alive while tracing.
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub lost: PerCpuArray<MapData, u64>,
    pub config: Config,
    pub tracefs: PathBuf,
}

impl Loaded {
    /// Total events lost so far, per kind (index = `tracer_common::kind`).
    pub fn lost_totals(&self) -> Result<[u64; kind::COUNT as usize], LoadError> {
        let mut out = [0u64; kind::COUNT as usize];
        for (k, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .lost
                .get(&(k as u32), 0)
                .map_err(|source| LoadError::Map {
                    name: "LOST",
                    source,
                })?;
            *slot = per_cpu.iter().sum();
        }
        Ok(out)
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
    let tracefs = tracefs::ensure_mounted()?;
    let kernel_btf = btf::Btf::from_sys_fs()?;
    let config = kconfig::resolve(&kernel_btf, &tracefs, opts.threads)?;
    let aya_btf = aya::Btf::from_sys_fs().map_err(LoadError::AyaBtf)?;

    let mut ebpf = EbpfLoader::new()
        .btf(Some(&aya_btf))
        .override_global("CONFIG", &config, true)
        .map_max_entries("EVENTS", opts.ring_size)
        .load(OBJECT)
        .map_err(LoadError::Load)?;

    for &name in BTF_PROGRAMS {
        let prog: &mut BtfTracePoint = program(&mut ebpf, name)?;
        prog.load(name, &aya_btf)
            .map_err(|source| LoadError::Program { name, source })?;
        prog.attach()
            .map_err(|source| LoadError::Program { name, source })?;
    }
    for &name in SYSCALL_PROGRAMS {
        let prog: &mut TracePoint = program(&mut ebpf, name)?;
        prog.load()
            .map_err(|source| LoadError::Program { name, source })?;
        prog.attach("syscalls", name)
            .map_err(|source| LoadError::Program { name, source })?;
    }

    let ring = ebpf
        .take_map("EVENTS")
        .ok_or(LoadError::MissingMap("EVENTS"))?;
    let ring = RingBuf::try_from(ring).map_err(|source| LoadError::Map {
        name: "EVENTS",
        source,
    })?;
    let lost = ebpf.take_map("LOST").ok_or(LoadError::MissingMap("LOST"))?;
    let lost = PerCpuArray::try_from(lost).map_err(|source| LoadError::Map {
        name: "LOST",
        source,
    })?;
    Ok(Loaded {
        ebpf,
        ring,
        lost,
        config,
        tracefs,
    })
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(LoadError::Program {
        name,
        source: aya::programs::ProgramError::UnexpectedProgramType,
    })?;
    prog.try_into()
        .map_err(|source| LoadError::Program { name, source })
}
