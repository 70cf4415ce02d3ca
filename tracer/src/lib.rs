//! tracer: the userspace agent. `main.rs` only calls [`cli::main`].
pub mod alerts;
pub mod btf;
pub mod cgroup;
pub mod cli;
pub mod decode;
pub mod event;
pub mod kconfig;
pub mod kernel_log;
pub mod loader;
pub mod model;
pub mod output;
pub mod procfs;
pub mod record;
pub mod redact;
pub mod report;
pub mod tracefs;
pub mod watch;
