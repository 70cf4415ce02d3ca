//! tracer: the userspace agent. `main.rs` only calls [`cli::main`].
pub mod event;
pub mod model;
pub mod record;
