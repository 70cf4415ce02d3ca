//! Where records go: stdout and/or the output file, with counts for the summary.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{self, Write},
};

use super::on_alert::{Job, OnAlert};
use crate::{
    alerts::Engine,
    cgroup::CgroupResolver,
    model::Model,
    output::{JsonlWriter, TextWriter, Writer, file::OutputFile},
    record::{Body, ProcId, Record},
    redact::Redactor,
};

use super::filter::RecordFilter;
use super::parquet::ParquetOut;

/// The output file (`-o FILE`): JSON Lines, rotated and reopened, each file
/// starting with its header (docs/events.md, `meta`).
pub struct FileSink {
    /// As named in messages.
    pub name: String,
    pub w: JsonlWriter<OutputFile>,
    /// The `meta` record's own fields, rendered once ([`super::header::meta_fields`]).
    pub meta: Vec<u8>,
    /// `--parquet-dir`: the same records as Parquet, one file per output file.
    pub parquet: Option<ParquetOut>,
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
    /// Events the kernel could not deliver so far, per kind, for `end` records.
    pub lost: crate::loader::KindTotals,
    /// With `--quiet`: alerts still go to stderr as they fire, one line each.
    pub alert_lines: Option<TextWriter<Box<dyn Write>>>,
    /// The reader of stdout went away (`tracer watch | head`): the run ends.
    pub stdout_closed: bool,
    /// `--on-alert CMD`: where alert records go besides the writers.
    pub on_alert: Option<OnAlertSink>,
    /// `--uid/--comm/--cgroup/--events`: which records are written; `None` writes
    /// all. Alerts and the summary's forkers see every record regardless.
    pub filter: Option<RecordFilter>,
    /// `tracer top`'s live view: sees every record, before the filter.
    pub view: Option<Box<dyn crate::live::View>>,
}

/// Alerts for `--on-alert`, and the processes it runs.
pub struct OnAlertSink {
    pub runner: OnAlert,
    /// Renders each alert as the JSON line the writers write.
    pub line: JsonlWriter<io::Sink>,
    /// tracer's own pid: the processes it forks, other than COMMAND, are CMD's.
    pub own_pid: u32,
    /// `-- COMMAND`'s pid, once started.
    pub command_pid: Option<u32>,
    /// CMD's processes and their descendants until reaped: recorded like any
    /// other, but kept from the alert engine, lest a failing or busy CMD raise
    /// alerts that run CMD again.
    pub procs: HashSet<ProcId>,
}

impl OnAlertSink {
    /// Is `rec` about a process CMD started (directly or not)? Follows forks to
    /// know them, and forgets them when reaped.
    fn is_own(&mut self, rec: &Record) -> bool {
        let Some(s) = &rec.subject else {
            return false;
        };
        if let Body::Fork {
            parent_proc_id,
            thread: false,
            ..
        } = &rec.body
        {
            let from_tracer = s.ppid == self.own_pid && Some(s.pid) != self.command_pid;
            if from_tracer || parent_proc_id.is_some_and(|p| self.procs.contains(&p)) {
                self.procs.insert(s.proc_id);
            }
        }
        let own = self.procs.contains(&s.proc_id);
        if own && matches!(rec.body, Body::Reap { .. }) {
            self.procs.remove(&s.proc_id);
        }
        own
    }
}

impl Sinks {
    /// Writes the records, each followed by the alerts it raises.
    pub fn write_all(&mut self, records: &mut Vec<Record>) {
        let mut raised = Vec::new();
        for mut rec in records.drain(..) {
            self.write_one(&mut rec);
            let own = self.on_alert.as_mut().is_some_and(|o| o.is_own(&rec));
            if !own && let Some(engine) = self.alerts.as_mut() {
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
                writer_failed(
                    &mut self.failed,
                    &mut self.failing,
                    &mut self.stdout_closed,
                    name,
                    &e,
                );
            }
        }
        self.drop_closed_stdout();
    }

    /// Every record goes out through here, its argv redacted and its cgroup path
    /// put in first, unless the filter holds it back.
    fn write_one(&mut self, rec: &mut Record) {
        redact(&self.redactor, rec);
        self.cgroups.fill(rec);
        let rec = &*rec;
        if let Some(v) = self.view.as_mut() {
            v.record(rec);
        }
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
        if let Some(f) = self.filter.as_mut()
            && !f.keep(rec, &mut self.cgroups)
        {
            return;
        }
        *self.counts.entry(rec.body.type_name()).or_default() += 1;
        for (name, w) in &mut self.writers {
            if let Err(e) = w.write(rec) {
                writer_failed(
                    &mut self.failed,
                    &mut self.failing,
                    &mut self.stdout_closed,
                    name,
                    &e,
                );
            }
        }
        self.drop_closed_stdout();
        if let (Some(w), Body::Alert(_)) = (self.alert_lines.as_mut(), &rec.body) {
            // stderr: nothing to count or retry if even that fails.
            let _ = w.write(rec).and_then(|()| w.flush());
        }
        if let Some(f) = self.file.as_mut() {
            let result = f.w.write(rec);
            let ok = result.is_ok();
            self.file_result("writing to", result, 1);
            if ok {
                self.parquet_write(Some(rec), None);
            }
        }
        if let Body::Alert(alert) = &rec.body
            && self.on_alert.is_some()
        {
            // Its `seq` is the one it has in the output file, else on stdout.
            let seq = match (&self.file, self.writers.first()) {
                (Some(f), _) => f.w.records_written(),
                (None, Some((_, w))) => w.records_written(),
                (None, None) => self.counts.values().sum(),
            };
            let cgroup = rec.subject.as_ref().and_then(|s| s.cgroup.as_deref());
            let message = crate::alert_text::message(alert, rec.subject.as_ref(), cgroup);
            let Some(o) = self.on_alert.as_mut() else {
                return;
            };
            let line = o.line.render(seq, rec).to_vec();
            let pid = rec
                .subject
                .as_ref()
                .map_or(String::new(), |s| s.pid.to_string());
            o.runner.send(Job {
                line,
                env: vec![
                    (
                        "TRACER_ALERT_TYPE",
                        rec.body.type_name().as_bytes().to_vec(),
                    ),
                    ("TRACER_ALERT_KIND", alert.kind.name().as_bytes().to_vec()),
                    ("TRACER_ALERT_PID", pid.into_bytes()),
                    ("TRACER_ALERT_MESSAGE", message),
                ],
            });
        }
    }

    /// Notes what a file operation did: an error (with `refused` records lost to
    /// it), and lines the file had to drop.
    /// Once stdout's reader is gone, nothing more is written there.
    fn drop_closed_stdout(&mut self) {
        if self.stdout_closed {
            self.writers.retain(|(name, _)| name != "stdout");
        }
    }

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
            self.write_end("rotated");
            let Some(f) = self.file.as_mut() else {
                return;
            };
            let result = f.w.get_mut().rotate();
            self.file_result("rotating", result, 0);
        }
        self.write_file_header(Some(model));
    }

    /// SIGHUP: reopen the output file (logrotate moved it away).
    pub fn reopen(&mut self) {
        // The file logrotate moved away is done: it ends like a rotated one.
        self.write_end("rotated");
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
        let ok = result.is_ok();
        self.file_result("writing to", result, 1);
        if ok {
            self.parquet_write(None, Some(now));
        }
        if let Some(model) = model {
            let mut snapshot = Vec::new();
            model.snapshot(now, &mut snapshot);
            for rec in &mut snapshot {
                // The model keeps argv as the kernel gave it: redact here too.
                redact(&self.redactor, rec);
                self.cgroups.fill(rec);
                // Filtered as the start-up snapshot is. (The filter has seen
                // these processes already; seeing them again changes nothing.)
                if let Some(f) = self.filter.as_mut()
                    && !f.keep(rec, &mut self.cgroups)
                {
                    continue;
                }
                let Some(f) = self.file.as_mut() else {
                    return;
                };
                *self.counts.entry(rec.body.type_name()).or_default() += 1;
                let result = f.w.write(rec);
                let ok = result.is_ok();
                self.file_result("writing to", result, 1);
                if ok {
                    self.parquet_write(Some(rec), None);
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            f.w.get_mut().header_written();
        }
    }

    /// Ends the output file with an `end` record (docs/events.md): `reason`, and
    /// the run's totals so far. It counts like any other record.
    pub fn write_end(&mut self, reason: &'static str) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let rec = Record {
            ktime_ns: super::boottime_ns(),
            subject: None,
            body: Body::End {
                reason: reason.into(),
                records: self.counts.iter().map(|(k, n)| ((*k).into(), *n)).collect(),
                lost: (0..tracer_common::kind::COUNT)
                    .map(|k| (tracer_common::kind::name(k).into(), self.lost[k as usize]))
                    .collect(),
                not_written: self.failed.get(&f.name).copied().unwrap_or(0),
            },
            uncertain: false,
        };
        *self.counts.entry("end").or_default() += 1;
        let result = f.w.write(&rec);
        let ok = result.is_ok();
        self.file_result("writing to", result, 1);
        if ok {
            self.parquet_write(Some(&rec), None);
        }
        // The output file is done (the run ends, or it is rotated or reopened):
        // so are its Parquet files.
        self.parquet_roll();
    }

    /// The record (or, with `meta_at`, the `meta` record) the output file just
    /// took, with its `seq`, to the Parquet files.
    fn parquet_write(&mut self, rec: Option<&Record>, meta_at: Option<u64>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let seq = f.w.records_written();
        let Some(p) = f.parquet.as_mut() else {
            return;
        };
        let result = match (rec, meta_at) {
            (Some(rec), _) => p.write(seq, rec),
            (None, Some(ktime_ns)) => p.write_meta(seq, ktime_ns),
            (None, None) => return,
        };
        if let Err(e) = result {
            let name = p.name.clone();
            let e = io::Error::other(e.to_string());
            note_failure(
                &mut self.failed,
                &mut self.failing,
                &name,
                "writing Parquet under",
                &e,
                1,
            );
        }
    }

    /// Finishes the Parquet files of the output file that just ended.
    fn parquet_roll(&mut self) {
        let Some(p) = self.file.as_mut().and_then(|f| f.parquet.as_mut()) else {
            return;
        };
        if let Err(e) = p.roll() {
            let name = p.name.clone();
            let e = io::Error::other(e.to_string());
            note_failure(
                &mut self.failed,
                &mut self.failing,
                &name,
                "writing Parquet under",
                &e,
                0,
            );
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
                Err(e) if is_stdout_gone(name, &e) => self.stdout_closed = true,
                Err(e) => {
                    note_failure(&mut self.failed, &mut self.failing, name, "flushing", &e, 0)
                }
                Ok(()) => note_recovery(&mut self.failing, name),
            }
        }
        if self.stdout_closed {
            self.writers.retain(|(name, _)| name != "stdout");
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
        // Files the `end` record did not finish (a run with no `end` written).
        self.parquet_roll();
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

/// The reader of stdout went away (EPIPE: SIGPIPE is ignored by the Rust
/// runtime): not a failure to report, the sign to stop, as `grep` would.
fn is_stdout_gone(name: &str, e: &io::Error) -> bool {
    name == "stdout" && e.kind() == io::ErrorKind::BrokenPipe
}

/// Says once per episode that a writer failed (tracing goes on), and counts
/// records lost to it.
/// A terminal writer's line could not be written: stdout's reader gone ends the
/// run (`stdout-closed`) whether it shows on a record or on a tick's flush; any
/// other failure is counted and tracing goes on.
fn writer_failed(
    failed: &mut BTreeMap<String, u64>,
    failing: &mut BTreeMap<String, u64>,
    stdout_closed: &mut bool,
    name: &str,
    e: &io::Error,
) {
    if is_stdout_gone(name, e) {
        *stdout_closed = true;
    } else {
        note_failure(failed, failing, name, "writing to", e, 1);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::Comm, output::RunInfo, record::Subject};

    fn rec(pid: u32, ppid: u32, body: Body) -> Record {
        Record {
            ktime_ns: 1,
            subject: Some(Subject {
                pid,
                tid: pid,
                ppid,
                proc_id: ProcId::from_start_ns(pid, 0),
                comm: Comm::new(b"x"),
                uid: Some(0),
                cgroup_id: 0,
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            }),
            body,
            uncertain: false,
        }
    }

    fn fork(pid: u32, ppid: u32) -> Record {
        let parent = ProcId::from_start_ns(ppid, 0);
        rec(
            pid,
            ppid,
            Body::Fork {
                parent_proc_id: Some(parent),
                thread: false,
                clone_flags: None,
            },
        )
    }

    #[test]
    fn cmds_processes_are_known_from_their_fork_until_reaped() {
        let info = RunInfo {
            host: "h".into(),
            boot_id: "b".into(),
            realtime_offset_ns: 0,
        };
        let mut o = OnAlertSink {
            runner: OnAlert::start(
                std::ffi::OsStr::new("true"),
                std::time::Duration::from_secs(1),
            )
            .unwrap(),
            line: JsonlWriter::new(io::sink(), info),
            own_pid: 100,
            command_pid: Some(101),
            procs: Default::default(),
        };
        // COMMAND and what it starts are not CMD's.
        assert!(!o.is_own(&fork(101, 100)));
        assert!(!o.is_own(&fork(102, 101)));
        // tracer's other children are CMD's runs, with their descendants.
        assert!(o.is_own(&fork(200, 100)));
        assert!(o.is_own(&fork(201, 200)));
        let exit = Body::Exit {
            exit_code: Some(7),
            signal: None,
            core_dumped: false,
            lifetime_ns: Some(1),
            thread: false,
        };
        assert!(o.is_own(&rec(201, 200, exit.clone())));
        let reap = Body::Reap {
            zombie_ns: Some(1),
            reaper_pid: Some(200),
            reaper_comm: None,
            autoreap: false,
            inferred: None,
        };
        assert!(o.is_own(&rec(201, 200, reap)));
        // Forgotten once reaped: a later process with that pid is not CMD's.
        assert!(!o.is_own(&rec(201, 1, exit)));
        assert!(o.procs.contains(&ProcId::from_start_ns(200, 0)));
        assert!(!o.is_own(&fork(300, 1)));
        o.runner.finish();
    }
}
