pub mod event;
pub mod record;
fn main() {}
