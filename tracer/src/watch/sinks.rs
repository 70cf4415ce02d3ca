//! Where records go: stdout and/or the output file, with counts for the summary.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{self, Write},
};

use crate::{
    alerts::Engine,
    cgroup::CgroupResolver,
    model::Model,
    output::{JsonlWriter, Writer, file::OutputFile},
    record::{Body, ProcId, Record},
    redact::Redactor,
};

/// The output file (`-o FILE`): JSON Lines, rotated and reopened, each file
/// starting with its header (docs/events.md, `meta`).
pub struct FileSink {
    /// As named in messages.
    pub name: String,
    pub w: JsonlWriter<OutputFile>,
    /// The `meta` record's own fields, rendered once ([`super::header::meta_fields`]).
    pub meta: Vec<u8>,
}

pub struct Sinks {
    pub writers: Vec<(String, Writer<Box<dyn Write>>)>,
    pub file: Option<FileSink>,
    pub cgroups: CgroupResolver,
    /// Records per type, for the summary.
    pub counts: BTreeMap<&'static str, u64>,
    /// Records a writer could not write, per writer name.
    pub failed: BTreeMap<String, u64>,
    /// Writers failing now, with the records lost to them since they began to.
    pub failing: BTreeMap<String, u64>,
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
        for (name, w) in &mut self.writers {
            if let Err(e) = w.tick(now) {
                note_failure(
                    &mut self.failed,
                    &mut self.failing,
                    name,
                    "writing to",
                    &e,
                    1,
                );
            }
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
                note_failure(
                    &mut self.failed,
                    &mut self.failing,
                    name,
                    "writing to",
                    &e,
                    1,
                );
            }
        }
        if let Some(f) = self.file.as_mut() {
            let result = f.w.write(rec, &mut self.cgroups);
            self.file_result("writing to", result, 1);
        }
    }

    /// Notes what a file operation did: an error (with `refused` records lost to
    /// it), and lines the file had to drop.
    fn file_result(&mut self, doing: &str, result: io::Result<()>, refused: u64) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if let Err(e) = result {
            note_failure(
                &mut self.failed,
                &mut self.failing,
                &f.name,
                doing,
                &e,
                refused,
            );
        }
        let dropped = f.w.get_mut().take_dropped();
        if dropped > 0 {
            *self.failed.entry(f.name.clone()).or_default() += dropped;
            *self.failing.entry(f.name.clone()).or_default() += dropped;
        }
    }

    /// Starts the output file: its `meta` record, then `records` (the start-up
    /// snapshot, which is also the file's process snapshot) to every writer.
    pub fn start(&mut self, records: &mut Vec<Record>) {
        self.write_file_header(None);
        self.write_all(records);
        if let Some(f) = self.file.as_mut() {
            f.w.get_mut().header_written();
        }
    }

    /// The output file is close to its size limit: end batches after each event.
    pub fn rotation_near(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| f.w.get_ref().rotation_near())
    }

    /// Between two batches, when `model` holds what the records written so far
    /// say: rotates the output file if it reached its size, and starts a new file
    /// (rotated or reopened) with its header.
    pub fn end_batch(&mut self, model: &Model) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if f.w.get_ref().rotation_due() {
            let result = f.w.get_mut().rotate();
            self.file_result("rotating", result, 0);
        }
        self.write_file_header(Some(model));
    }

    /// SIGHUP: reopen the output file (logrotate moved it away).
    pub fn reopen(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let result = f.w.get_mut().reopen();
            self.file_result("reopening", result, 0);
        }
    }

    /// If the output file is new: its `meta` record and, given the model, the
    /// `process` snapshot of the tree, to that file only. They count in the
    /// summary like any other record (those that fail also as not written).
    fn write_file_header(&mut self, model: Option<&Model>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if !f.w.get_ref().header_due() {
            return;
        }
        let now = super::boottime_ns();
        *self.counts.entry("meta").or_default() += 1;
        let result = f.w.write_meta(now, &f.meta);
        self.file_result("writing to", result, 1);
        if let Some(model) = model {
            let mut snapshot = Vec::new();
            model.snapshot(now, &mut snapshot);
            for rec in &mut snapshot {
                // The model keeps argv as the kernel gave it: redact here too.
                redact(&self.redactor, rec);
                let Some(f) = self.file.as_mut() else {
                    return;
                };
                *self.counts.entry(rec.body.type_name()).or_default() += 1;
                let result = f.w.write(rec, &mut self.cgroups);
                self.file_result("writing to", result, 1);
            }
        }
        if let Some(f) = self.file.as_mut() {
            f.w.get_mut().header_written();
        }
    }

    /// The highest fork rates the alert engine saw, per parent, executable and
    /// cgroup (named as its unit or container), for the summary; `None` with
    /// `--no-alerts` or no forks. A parent the records never named (the tracer
    /// itself, forking COMMAND) takes its name from `names` (the kernel's fork
    /// counters, which the top-forkers line uses), so both lines agree.
    pub fn peak_rates(
        &mut self,
        per_dimension: usize,
        names: &HashMap<u32, String>,
    ) -> Option<String> {
        use crate::units::thousands;
        let peaks = self.alerts.as_ref()?.peak_rates();
        let mut dims = Vec::new();
        let parents: Vec<String> = (peaks.parents.iter().take(per_dimension))
            .map(|(p, r)| match (p.comm.as_bytes(), names.get(&p.pid)) {
                // A parent outside what is traced (the tracer, for a COMMAND).
                (b"", Some(name)) => format!("{} {name} {}/s", p.pid, thousands(*r)),
                (b"", None) => format!("{} (not traced) {}/s", p.pid, thousands(*r)),
                (comm, _) => format!(
                    "{} {} {}/s",
                    p.pid,
                    String::from_utf8_lossy(comm),
                    thousands(*r)
                ),
            })
            .collect();
        let image_rates = |list: &[(Option<Vec<u8>>, u64)]| -> Vec<String> {
            (list.iter().take(per_dimension))
                .map(|(f, r)| {
                    let name = f
                        .as_deref()
                        .map_or("(unknown image)".into(), String::from_utf8_lossy);
                    format!("{name} {}/s", thousands(*r))
                })
                .collect()
        };
        // Forks by the image that called fork; what the children went on to run
        // is its own, labelled figure.
        let exes = image_rates(&peaks.executables);
        let children = image_rates(&peaks.children_ran);
        let cgroups: Vec<String> = (peaks.cgroups.iter().take(per_dimension))
            .map(|(id, r)| {
                let name = self
                    .cgroups
                    .path(*id)
                    .map_or_else(|| format!("cgroup {id}"), crate::alert_text::cgroup_label);
                format!("{name} {}/s", thousands(*r))
            })
            .collect();
        for (what, list) in [
            ("by parent", parents),
            ("by executable that forked", exes),
            ("by cgroup", cgroups),
            ("its children ran", children),
        ] {
            if !list.is_empty() {
                dims.push(format!("{what} {}", list.join(", ")));
            }
        }
        (!dims.is_empty()).then(|| dims.join("; "))
    }

    /// Flushes every writer; one that was failing and now takes everything is
    /// said to work again, with the records it lost.
    pub fn flush(&mut self) {
        for (name, w) in &mut self.writers {
            match w.flush() {
                Err(e) => {
                    note_failure(&mut self.failed, &mut self.failing, name, "flushing", &e, 0)
                }
                Ok(()) => note_recovery(&mut self.failing, name),
            }
        }
        if let Some(f) = self.file.as_mut() {
            let result = f.w.flush();
            let ok = result.is_ok();
            self.file_result("writing to", result, 0);
            if ok && let Some(f) = &self.file {
                note_recovery(&mut self.failing, &f.name);
            }
        }
    }

    /// The end: flushes everything and closes the output file (waiting for
    /// compression of rotated files); what could not be written is counted.
    pub fn finish(&mut self) {
        for (name, w) in &mut self.writers {
            if let Err(e) = w.release_held() {
                note_failure(
                    &mut self.failed,
                    &mut self.failing,
                    name,
                    "writing to",
                    &e,
                    1,
                );
            }
        }
        self.flush();
        if let Some(f) = self.file.as_mut() {
            let result = f.w.get_mut().close();
            self.file_result("writing to", result, 0);
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

/// Says once per episode that a writer failed (tracing goes on), and counts
/// records lost to it.
fn note_failure(
    failed: &mut BTreeMap<String, u64>,
    failing: &mut BTreeMap<String, u64>,
    name: &str,
    doing: &str,
    e: &io::Error,
    records: u64,
) {
    if !failing.contains_key(name) {
        eprintln!(
            "tracer: {doing} {name} failed: {e}; tracing goes on and records that cannot be written are counted"
        );
    }
    *failing.entry(name.to_string()).or_default() += records;
    *failed.entry(name.to_string()).or_default() += records;
}

/// A writer that failed works again: say so, with what it lost meanwhile.
fn note_recovery(failing: &mut BTreeMap<String, u64>, name: &str) {
    if let Some(lost) = failing.remove(name) {
        eprintln!(
            "tracer: writing to {name} works again; {lost} {} lost to it",
            if lost == 1 {
                "record was"
            } else {
                "records were"
            }
        );
    }
}
