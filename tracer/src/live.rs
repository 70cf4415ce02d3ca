//! The seam between the live pipeline (loader → decode → model → host → alerts,
//! run by `watch`) and a live view of it (`top`): the pipeline hands every record
//! it writes to a [`View`], and asks it on each tick whether to stop. Neither side
//! imports the other; `cli` joins them.

use crate::record::Record;

/// A live consumer of the pipeline's records, besides its writers.
pub trait View {
    /// One record, as the writers get it (argv redacted, cgroup path filled in),
    /// before the record filter (`--uid`, `--comm`, `--events`): the view keeps
    /// the whole tree. Alerts come through here too, right after the record that
    /// raised them.
    fn record(&mut self, rec: &Record);
    /// The pipeline's tick (every 50 ms, storm or not), with CLOCK_BOOTTIME now.
    /// Returns true when the view asks the run to stop (its user quit).
    fn tick(&mut self, now_ns: u64) -> bool;
}
