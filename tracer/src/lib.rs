//! tracer: the userspace agent. `main.rs` only calls [`cli::main`].
pub mod btf;
pub mod decode;
pub mod event;
pub mod kconfig;
pub mod loader;
pub mod record;
pub mod tracefs;
