//! Maps shared by the programs.

use aya_ebpf::{
    macros::map,
    maps::{LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use tracer_common::{EXEC_EVENT_MAX, ForkerKey, ForkerStats, kind};

/// All events, in the order they were reserved. The agent sets the real size
/// (`--ring-size`) at load time; this is only the default.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 * 1024 * 1024, 0);

/// Per CPU and per event kind: records the ring buffer had no room for. A BPF
/// ring buffer does not report losses itself, so this is how none go unnoticed.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(kind::COUNT, 0);

/// Per CPU and per event kind: every event that happened, delivered or not, so
/// totals stay right when the ring buffer overflows.
#[map]
pub static SEEN: PerCpuArray<u64> = PerCpuArray::with_max_entries(kind::COUNT, 0);

/// Processes created, per creating process and CPU: the top forkers, exact even
/// when fork records are lost. Per CPU so increments need no atomics; LRU so a
/// storm of one-shot forkers evicts the quiet ones, not the heavy ones.
#[map]
pub static FORKS: LruPerCpuHashMap<ForkerKey, ForkerStats> =
    LruPerCpuHashMap::with_max_entries(16384, 0);

/// The user pointer to an execve/execveat file name, keyed by tid, from syscall
/// entry to syscall exit; read only if the exec failed (the old mm is still there).
#[map]
pub static EXEC_PENDING: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16384, 0);

/// A waitid call in progress: its `infop` user pointer (0 for NULL) and options.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WaitidCall {
    pub infop: u64,
    pub options: u64,
}

/// waitid's arguments keyed by tid, from entry to exit: waitid returns 0, and
/// the reaped pid is only in `infop->si_pid`, or nowhere with a NULL `infop`.
#[map]
pub static WAITID_PENDING: LruHashMap<u32, WaitidCall> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU scratch space to build an exec record (too big for the 512-byte stack)
/// before copying just the used part into the ring buffer.
#[map]
pub static EXEC_SCRATCH: PerCpuArray<[u8; EXEC_EVENT_MAX]> = PerCpuArray::with_max_entries(1, 0);

/// include/uapi/linux/bpf.h: bpf_ringbuf_query's BPF_RB_AVAIL_DATA, and the
/// submit flags BPF_RB_NO_WAKEUP / BPF_RB_FORCE_WAKEUP.
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// Flags for submitting a record: wake the agent only once enough unread data
/// has piled up. By default the kernel wakes the consumer for every record it
/// finds caught up (kernel/bpf/ringbuf.c bpf_ringbuf_commit), which in a storm
/// means one wake-up per event; the agent drains on a timer instead.
#[inline(always)]
pub fn wakeup_flags() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= crate::config::conf!(wakeup_bytes) as u64 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Counts an event of `kind`, whether or not its record gets through.
#[inline(always)]
pub fn count_seen(kind: u32) {
    if let Some(slot) = SEEN.get_ptr_mut(kind) {
        // Per-CPU slot: no other writer can race with this increment.
        unsafe { *slot += 1 };
    }
}

/// Counts a record the ring buffer could not take.
#[inline(always)]
pub fn count_lost(kind: u32) {
    if let Some(slot) = LOST.get_ptr_mut(kind) {
        // Per-CPU slot: no other writer can race with this increment.
        unsafe { *slot += 1 };
    }
}
