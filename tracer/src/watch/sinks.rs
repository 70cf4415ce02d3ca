//! Where records go: stdout and/or the output file, with counts for the summary.

use std::{collections::BTreeMap, io, io::Write};

use crate::{cgroup::CgroupResolver, output::Writer, record::Record};

pub struct Sinks {
    pub writers: Vec<(String, Writer<Box<dyn Write>>)>,
    pub cgroups: CgroupResolver,
    /// Records per type, for the summary.
    pub counts: BTreeMap<&'static str, u64>,
    /// Records a writer could not write, per writer name.
    pub failed: BTreeMap<String, u64>,
}

impl Sinks {
    pub fn write_all(&mut self, records: &mut Vec<Record>) {
        for rec in records.drain(..) {
            *self.counts.entry(rec.body.type_name()).or_default() += 1;
            for (name, w) in &mut self.writers {
                if let Err(e) = w.write(&rec, &mut self.cgroups) {
                    self.write_failed(name.clone(), &e);
                }
            }
        }
    }

    pub fn flush(&mut self) {
        for (name, w) in &mut self.writers {
            if let Err(e) = w.flush() {
                let name = name.clone();
                let first = !self.failed.contains_key(&name);
                *self.failed.entry(name.clone()).or_default() += 0;
                if first {
                    eprintln!("tracer: flushing {name} failed: {e}; tracing goes on");
                }
            }
        }
    }

    fn write_failed(&mut self, name: String, e: &io::Error) {
        let n = self.failed.entry(name.clone()).or_default();
        if *n == 0 {
            eprintln!("tracer: writing to {name} failed: {e}; tracing goes on and failed records are counted");
        }
        *n += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}
