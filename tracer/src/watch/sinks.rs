//! Where records go: stdout and/or the output file, with counts for the summary.

use std::{
    collections::{BTreeMap, HashSet},
    io::{self, Write},
};

use crate::{
    cgroup::CgroupResolver,
    output::Writer,
    record::{Body, ProcId, Record},
};

pub struct Sinks {
    pub writers: Vec<(String, Writer<Box<dyn Write>>)>,
    pub cgroups: CgroupResolver,
    /// Records per type, for the summary.
    pub counts: BTreeMap<&'static str, u64>,
    /// Records a writer could not write, per writer name.
    pub failed: BTreeMap<String, u64>,
    /// When following a tree: every process that forked in it, to keep the
    /// summary's top forkers (counted in the kernel for all processes) to the tree.
    pub fork_parents: Option<HashSet<ProcId>>,
}

impl Sinks {
    pub fn write_all(&mut self, records: &mut Vec<Record>) {
        for rec in records.drain(..) {
            *self.counts.entry(rec.body.type_name()).or_default() += 1;
            if let (
                Some(set),
                Body::Fork {
                    parent_proc_id: Some(parent),
                    thread: false,
                    ..
                },
            ) = (self.fork_parents.as_mut(), &rec.body)
            {
                set.insert(*parent);
            }
            for (name, w) in &mut self.writers {
                if let Err(e) = w.write(&rec, &mut self.cgroups) {
                    note_failure(&mut self.failed, name, "writing to", &e, 1);
                }
            }
        }
    }

    pub fn flush(&mut self) {
        for (name, w) in &mut self.writers {
            if let Err(e) = w.flush() {
                note_failure(&mut self.failed, name, "flushing", &e, 0);
            }
        }
    }
}

/// Says once per writer that it failed (tracing goes on), and counts records lost to it.
fn note_failure(
    failed: &mut BTreeMap<String, u64>,
    name: &str,
    doing: &str,
    e: &io::Error,
    records: u64,
) {
    if !failed.contains_key(name) {
        eprintln!(
            "tracer: {doing} {name} failed: {e}; tracing goes on and records that cannot be written are counted"
        );
    }
    *failed.entry(name.to_string()).or_default() += records;
}
