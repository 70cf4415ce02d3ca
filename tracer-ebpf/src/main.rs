//! Kernel side of tracer: programs on the scheduler's process-lifecycle
//! tracepoints and a few syscall tracepoints, writing to one ring buffer.
//!
//! No kernel layout is compiled in: every struct offset and tracepoint field
//! offset comes from [`config::CONFIG`], which the agent fills from the running
//! kernel's BTF and tracefs format files before loading.
#![no_std]
#![no_main]

mod config;
mod maps;
mod probes;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path to it.
    loop {}
}

/// bpf_probe_read_kernel and the tp_btf helpers are GPL-only (kernel/bpf/helpers.c).
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
