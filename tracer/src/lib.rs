//! tracer: the userspace agent. `main.rs` only calls [`cli::main`].
pub mod cgroup;
pub mod event;
pub mod output;
pub mod procfs;
pub mod record;
