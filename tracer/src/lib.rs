//! tracer: the userspace agent. `main.rs` only calls [`cli::main`].
pub mod event;
pub mod record;
pub mod decode;
