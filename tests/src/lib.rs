//! Support for the kernel tests: run the real `tracer watch` on a `tracer-workload`
//! mode, read back its JSON Lines, check every record against schema v2, and find
//! records by the pids the workload reported.
//!
//! Needs root and a built tracer (`TRACER_BIN`, default `<workspace>/target/debug/tracer`).
//! Neither missing is a skip: the tests fail with a message saying what to do, so a
//! run that could not test anything cannot pass.
//!
//! Failures panic with the records seen for the pids concerned (see [`Trace::fail`]).
//!
//! - [`child`]: children in their own process group, pipes drained, deadlines;
//! - [`tracer_run`]: runs of the `tracer` binary and its summary line;
//! - [`workloads`]: the `tracer-workload` binary and the pids it reports;
//! - [`records`] and [`schema`]: reading JSON Lines and checking schema v2;
//! - [`trace`]: one run's records and the assertions made on them;
//! - [`system`]: cgroups, scheduling, memory and BPF objects for the fault tests.

pub mod child;
pub mod records;
pub mod schema;
pub mod system;
pub mod trace;
pub mod tracer_run;
pub mod workloads;

pub use child::{DEADLINE, Proc, STEP_DEADLINE, poll_until, require_root, spawn_with_deadline};
pub use records::{Rec, Scan, complete_records, json_u64, parse_records, scan_records};
pub use schema::{ALERT_KINDS, MORE_PROCESS_TYPES, PROCESS_TYPES, check_record, is_rfc3339};
pub use system::{BpfIds, PidsCgroup, allowed_cpus, reschedule, schedule, vm_rss_kib};
pub use trace::Trace;
pub use tracer_run::{
    Ran, Summary, run_dir, run_traced, run_traced_by, run_traced_within, run_tracer, summary_in,
    tracer_bin, tracer_release_bin, tracer_static_bin,
};
pub use workloads::{ancestors_of_self, facts_in, facts_of, workload_bin};
