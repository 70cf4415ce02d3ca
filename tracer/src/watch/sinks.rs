//! Where records go: stdout and/or the output file, with counts for the summary.

use std::{
    collections::{BTreeMap, HashSet},
    io::{self, Write},
};

use crate::{
    alerts::Engine,
    cgroup::CgroupResolver,
    output::Writer,
    record::{Body, ProcId, Record},
    redact::Redactor,
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
    /// Sees every record written and raises alerts; `None` with `--no-alerts`.
    pub alerts: Option<Engine>,
    /// Hides secrets in argv before a record is written or seen by `alerts`.
    pub redactor: Redactor,
}

impl Sinks {
    /// Writes the records, each followed by the alerts it raises.
    pub fn write_all(&mut self, records: &mut Vec<Record>) {
        let mut raised = Vec::new();
        for mut rec in records.drain(..) {
            self.write_one(&mut rec);
            if let Some(engine) = self.alerts.as_mut() {
                // It sees the record redacted: the argv it quotes in alerts
                // comes from these records.
                engine.observe(&rec, &mut raised);
                for mut alert in raised.drain(..) {
                    self.write_one(&mut alert);
                }
            }
        }
    }

    /// Time has come to `now` (CLOCK_BOOTTIME ns): writes the alerts that time
    /// alone raises or ends.
    pub fn tick(&mut self, now: u64) {
        let mut raised = Vec::new();
        if let Some(engine) = self.alerts.as_mut() {
            engine.tick(now, &mut raised);
        }
        for mut alert in raised {
            self.write_one(&mut alert);
        }
    }

    /// Every record goes out through here, its argv redacted first.
    fn write_one(&mut self, rec: &mut Record) {
        redact(&self.redactor, rec);
        let rec = &*rec;
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
            if let Err(e) = w.write(rec, &mut self.cgroups) {
                note_failure(&mut self.failed, name, "writing to", &e, 1);
            }
        }
    }

    /// The highest fork rates the alert engine saw, per parent, executable and
    /// cgroup (named as its unit or container), for the summary; `None` with
    /// `--no-alerts` or no forks.
    pub fn peak_rates(&mut self, per_dimension: usize) -> Option<String> {
        let peaks = self.alerts.as_ref()?.peak_rates();
        let mut dims = Vec::new();
        let parents: Vec<String> = (peaks.parents.iter().take(per_dimension))
            .map(|(p, r)| match p.comm.as_bytes() {
                // A parent outside what is traced (the tracer, for a COMMAND).
                b"" => format!("{} ? {r}/s", p.pid),
                comm => format!("{} {} {r}/s", p.pid, String::from_utf8_lossy(comm)),
            })
            .collect();
        let exes: Vec<String> = (peaks.executables.iter().take(per_dimension))
            .map(|(f, r)| {
                let name = f
                    .as_deref()
                    .map_or("(unknown image)".into(), String::from_utf8_lossy);
                format!("{name} {r}/s")
            })
            .collect();
        let cgroups: Vec<String> = (peaks.cgroups.iter().take(per_dimension))
            .map(|(id, r)| {
                let name = self
                    .cgroups
                    .path(*id)
                    .map_or_else(|| format!("cgroup {id}"), crate::alerts::cgroup_label);
                format!("{name} {r}/s")
            })
            .collect();
        for (what, list) in [
            ("parent", parents),
            ("executable", exes),
            ("cgroup", cgroups),
        ] {
            if !list.is_empty() {
                dims.push(format!("by {what} {}", list.join(", ")));
            }
        }
        (!dims.is_empty()).then(|| dims.join("; "))
    }

    pub fn flush(&mut self) {
        for (name, w) in &mut self.writers {
            if let Err(e) = w.flush() {
                note_failure(&mut self.failed, name, "flushing", &e, 0);
            }
        }
    }
}

/// Replaces secrets in the record's argv (`exec`, `process`, `alert`), and says so
/// in `argv_redacted` where the record has it.
fn redact(redactor: &Redactor, rec: &mut Record) {
    match &mut rec.body {
        Body::Exec {
            argv,
            argv_redacted,
            ..
        }
        | Body::Process {
            argv,
            argv_redacted,
            ..
        } => *argv_redacted |= redactor.redact_argv(argv),
        Body::Alert(a) => {
            redactor.redact_argv(&mut a.argv);
        }
        _ => {}
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
