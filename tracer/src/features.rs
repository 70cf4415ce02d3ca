//! What the running kernel offers the eBPF programs, probed at start-up; never
//! inferred from the version number (a distribution kernel backports features,
//! and a custom one leaves them out).
//!
//! Two kinds of answer: a feature the programs cannot do without (the kernel is
//! too old, and [`missing`] says so in one line), and a feature whose absence
//! selects the older variant of the programs ([`Features::task_btf`]).

use std::path::Path;

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};

/// The kernel's BTF, for the tp_btf programs and for every struct offset.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The oldest kernel series tracer is tested on (README, "Kernels").
pub const OLDEST_SUPPORTED: &str = "5.10";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `/sys/kernel/btf/vmlinux` exists: a kernel built with CONFIG_DEBUG_INFO_BTF,
    /// which exports it since Linux 5.4 (kernel/bpf/sysfs_btf.c).
    pub btf: bool,
    /// BPF_MAP_TYPE_RINGBUF, added in Linux 5.8 (kernel/bpf/ringbuf.c); every
    /// record goes through one. Everything else the programs need is older: tp_btf
    /// programs and bpf_probe_read_{kernel,user} (5.5), bpf_ktime_get_boot_ns (5.8,
    /// with the ring buffer), LRU hash maps (4.10).
    pub ring_buffer: bool,
    /// The bpf_get_current_task_btf helper, added in Linux 5.11 (kernel/trace/
    /// bpf_trace.c, commit "bpf: Implement get_current_task_btf and
    /// RET_PTR_TO_BTF_ID"). Without it the programs read through
    /// bpf_probe_read_kernel (`Config::task_btf`, tracer-ebpf/src/task.rs read).
    pub task_btf: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("probing the kernel's eBPF features: {0}")]
pub struct ProbeError(String);

/// Probes the running kernel: a file for BTF, a map creation for the ring buffer,
/// and a trial load of a two-instruction tracepoint program calling the helper
/// (aya's is_helper_supported reads the verifier's "invalid func" as absent).
pub fn probe() -> Result<Features, ProbeError> {
    let btf = Path::new(VMLINUX_BTF).exists();
    let ring_buffer =
        is_map_supported(MapType::RingBuf).map_err(|e| ProbeError(crate::error::one_line(&e)))?;
    // Only asked where it can matter: the trial load needs a kernel that loads
    // tracepoint programs at all.
    let task_btf = ring_buffer
        && is_helper_supported(
            ProgramType::TracePoint,
            BpfHelper::BPF_FUNC_get_current_task_btf,
        )
        .map_err(|e| ProbeError(crate::error::one_line(&e)))?;
    Ok(Features {
        btf,
        ring_buffer,
        task_btf,
    })
}

/// Set to 1, this makes the programs take their 5.10 path (bpf_get_current_task and
/// bpf_probe_read_kernel) on any kernel, so that path is tested and measured on the
/// host kernel too (docs/bench.md): it runs on every kernel that has the newer one.
pub const FORCE_PROBE_READ: &str = "TRACER_FORCE_PROBE_READ";

/// Whether [`FORCE_PROBE_READ`] asks for the 5.10 path.
pub fn forced_probe_read() -> bool {
    std::env::var_os(FORCE_PROBE_READ).is_some_and(|v| v == "1")
}

/// The line to end on when the kernel lacks what the programs cannot do without,
/// naming the first thing missing; None when it has everything.
pub fn missing(release: &str, features: &Features) -> Option<String> {
    let lacks = if !features.ring_buffer {
        "the BPF ring buffer (BPF_MAP_TYPE_RINGBUF), which Linux has since 5.8"
    } else if !features.btf {
        "BTF type information (/sys/kernel/btf/vmlinux, from CONFIG_DEBUG_INFO_BTF), \
         which Linux has since 5.4 when built with it"
    } else {
        return None;
    };
    Some(format!(
        "this kernel ({release}) lacks {lacks}; the oldest supported is {OLDEST_SUPPORTED}"
    ))
}

/// `uname -r`, for messages; "unknown" if uname fails.
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data; uname fills it or fails.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid utsname to write into.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".to_string();
    }
    // SAFETY: uname NUL-terminates release within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Features = Features {
        btf: true,
        ring_buffer: true,
        task_btf: true,
    };

    #[test]
    fn a_kernel_with_everything_passes() {
        assert_eq!(missing("6.18.0", &ALL), None);
        // 5.10 lacks bpf_get_current_task_btf: a variant, not a refusal.
        let k510 = Features {
            task_btf: false,
            ..ALL
        };
        assert_eq!(missing("5.10.0-35-amd64", &k510), None);
    }

    #[test]
    fn a_kernel_without_a_ring_buffer_is_too_old() {
        let k54 = Features {
            btf: true,
            ring_buffer: false,
            task_btf: false,
        };
        assert_eq!(
            missing("5.4.0-150-generic", &k54).as_deref(),
            Some(
                "this kernel (5.4.0-150-generic) lacks the BPF ring buffer (BPF_MAP_TYPE_RINGBUF), \
                 which Linux has since 5.8; the oldest supported is 5.10"
            )
        );
        // The ring buffer is named first even when BTF is missing too.
        let k419 = Features { btf: false, ..k54 };
        let line = missing("4.19.0-27-amd64", &k419).unwrap();
        assert!(line.starts_with("this kernel (4.19.0-27-amd64) lacks the BPF ring buffer"));
    }

    #[test]
    fn a_kernel_without_btf_is_refused_whatever_its_version() {
        let no_btf = Features { btf: false, ..ALL };
        let line = missing("6.6.1-custom", &no_btf).unwrap();
        assert_eq!(
            line,
            "this kernel (6.6.1-custom) lacks BTF type information (/sys/kernel/btf/vmlinux, \
             from CONFIG_DEBUG_INFO_BTF), which Linux has since 5.4 when built with it; the \
             oldest supported is 5.10"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn names_this_kernel() {
        let release = kernel_release();
        assert_ne!(release, "unknown");
        assert_eq!(
            release,
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap()
                .trim()
        );
    }
}
