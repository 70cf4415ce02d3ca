//! Reading JSON Lines written by `tracer watch` (schema v2, docs/events.md) back
//! into records: from files or stdin, several inputs merged, bad lines skipped and
//! counted, never a panic whatever the bytes.
//!
//! A line is skipped (and counted, with the first few `file:line` kept) when it is
//! longer than [`MAX_LINE`], is not JSON, is cut short at the end of a file, has a
//! `type` this version does not know, misses a field the report needs, or has a
//! field of the wrong type. Unknown fields are ignored (later v1 writers may add
//! some); fields listed "or null" may also be absent.
//!
//! Records of all inputs are merged and ordered by (host, boot, `ktime_ns`, `seq`):
//! `ktime_ns` is the one clock that orders events of one boot, and `seq` breaks ties
//! in the order the agent wrote them. The same record read twice (the same file
//! given twice, overlapping rotated files) is kept once.
//!
//! Inputs compressed with zstd (rotated files of `watch --compress`) are read as
//! they are, recognised by their first bytes whatever their name. A `meta` record
//! (the header of each output file) is not an event: it goes to its run's
//! [`Run::meta`]. `seq` continues across the files of one run, so rotated files
//! show no gap of their own.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::lines::{Line, LineReader};
use super::progress::Progress;
use super::walltime::parse_rfc3339;
use crate::event::Comm;
use crate::output::escape::unescape;
use crate::record::{Alert, AlertExit, AlertKind, AlertProc, Name, ProcId};
pub use crate::record::{Body, Record, Subject};

/// Longest line read; longer ones are skipped. Real records are a few KiB at most
/// (argv is capped at 4 KiB by the kernel programs, before escaping).
pub const MAX_LINE: usize = 1 << 20;

/// How many skipped lines are remembered by position, for the report.
pub const KEEP_BAD: usize = 10;

/// Where records come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    /// `-` is stdin, anything else a file.
    pub fn from_arg(arg: &std::path::Path) -> Source {
        if arg.as_os_str() == "-" {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    /// How the source is named in messages.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".to_string(),
        }
    }
}

/// One tracer run's clock domain: records of one host and one boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub host: String,
    pub boot_id: String,
    /// Wall clock = `ktime_ns` + this, from the first record with a readable `ts`.
    pub wall_offset_ns: Option<i128>,
    /// Earliest and latest `ktime_ns` of its records.
    pub first_ktime_ns: u64,
    pub last_ktime_ns: u64,
    /// Records kept, per type.
    pub records: BTreeMap<String, u64>,
    /// The `meta` records of this run (one per output file started), in time order.
    pub meta: Vec<Meta>,
}

/// A `meta` record: the tracer, schema, kernel and options that wrote the file it
/// starts (docs/events.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub ktime_ns: u64,
    pub seq: u64,
    pub tracer_version: Option<String>,
    pub schema_version: Option<u64>,
    pub kernel: Option<String>,
    /// The `watch` options, as JSON text.
    pub options: Option<String>,
}

impl Run {
    /// Wall-clock ns of a `ktime_ns` of this run, if the offset is known.
    pub fn wall_ns(&self, ktime_ns: u64) -> Option<i128> {
        self.wall_offset_ns.map(|o| i128::from(ktime_ns) + o)
    }

    pub fn record_count(&self) -> u64 {
        self.records.values().sum()
    }
}

/// One record read back: the record as the agent wrote it, and where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    /// Index into [`Records::runs`].
    pub run: usize,
    pub seq: u64,
    /// Where it was read: index into [`Records::inputs`], and line number.
    pub input: usize,
    pub line: u64,
    /// Strings the kernel reported as bytes are bytes again (the `\xNN` escapes
    /// undone); the subject's cgroup path is shared between records, as there are
    /// few distinct ones.
    pub record: Record,
}

/// Why a line was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadKind {
    /// Not valid JSON (or not UTF-8).
    NotJson,
    /// The last line of an input, without a newline, and not a whole record.
    Truncated,
    /// Longer than [`MAX_LINE`].
    TooLong,
    /// Valid JSON, but not an object or without a string `type`.
    NotARecord,
    /// A `type` this version does not know.
    UnknownType,
    /// A field the report needs is absent or null.
    MissingField,
    /// A field has the wrong type or an impossible value.
    BadValue,
}

impl BadKind {
    pub fn describe(self) -> &'static str {
        match self {
            BadKind::NotJson => "not JSON",
            BadKind::Truncated => "truncated last line",
            BadKind::TooLong => "longer than 1 MiB",
            BadKind::NotARecord => "not a tracer record",
            BadKind::UnknownType => "unknown record type",
            BadKind::MissingField => "missing field",
            BadKind::BadValue => "bad field value",
        }
    }

    /// The name used in JSON output.
    pub fn key(self) -> &'static str {
        match self {
            BadKind::NotJson => "not_json",
            BadKind::Truncated => "truncated",
            BadKind::TooLong => "too_long",
            BadKind::NotARecord => "not_a_record",
            BadKind::UnknownType => "unknown_type",
            BadKind::MissingField => "missing_field",
            BadKind::BadValue => "bad_value",
        }
    }
}

/// A skipped line, remembered for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub input: String,
    pub line: u64,
    pub kind: BadKind,
    pub detail: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.input,
            self.line,
            self.kind.describe(),
            self.detail
        )
    }
}

/// What reading one input found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputStats {
    pub name: String,
    pub bytes: u64,
    pub lines: u64,
    /// Lines that gave a record.
    pub records: u64,
    /// Lines skipped.
    pub bad: u64,
    /// Lines the `seq` numbers say are missing (not in the input at all).
    pub missing: u64,
    /// Times `seq` started again from a lower number: a new tracer run, or files
    /// joined together.
    pub seq_restarts: u64,
    /// The `reason` of the `end` record the input ends with; `None` when its
    /// last record is another (tracer was killed, or is still writing it).
    pub end: Option<String>,
}

/// Everything read from all inputs.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// Ordered by (host, boot, ktime_ns, seq).
    pub records: Vec<Rec>,
    pub runs: Vec<Run>,
    pub inputs: Vec<InputStats>,
    /// Skipped lines, per reason.
    pub bad: BTreeMap<BadKind, u64>,
    /// The first [`KEEP_BAD`] skipped lines.
    pub first_bad: Vec<BadLine>,
    /// Records dropped because the same record was read before.
    pub duplicates: u64,
}

impl Records {
    pub fn bad_total(&self) -> u64 {
        self.bad.values().sum()
    }
}

/// Reading failed as a whole (a line that cannot be used is not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {name}: {error}")]
    Open { name: String, error: io::Error },
    #[error("error reading {name}: {error}")]
    Read { name: String, error: io::Error },
    #[error("{name} is gzip-compressed: decompress it first, e.g. `zcat {name} | tracer report -`")]
    Compressed { name: String },
    #[error("stdin (`-`) is given more than once")]
    StdinTwice,
}

/// The raw fields of a line. Everything is optional here; what a type needs is
/// checked in [`convert`], so a missing field is reported by name.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    ktime_ns: Option<u64>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    boot_id: Option<Cow<'a, str>>,
    pid: Option<u32>,
    tid: Option<u32>,
    ppid: Option<u32>,
    #[serde(borrow)]
    proc_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    comm: Option<Cow<'a, str>>,
    uid: Option<u32>,
    #[serde(borrow)]
    cgroup: Option<Cow<'a, str>>,
    cgroup_id: Option<u64>,
    unit: Option<String>,
    container_id: Option<String>,
    pod_uid: Option<String>,
    #[serde(borrow)]
    filename: Option<Cow<'a, str>>,
    #[serde(borrow)]
    argv: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parent_proc_id: Option<Cow<'a, str>>,
    thread: Option<bool>,
    clone_flags: Option<u64>,
    argv_truncated: Option<bool>,
    argv_redacted: Option<bool>,
    old_tid: Option<u32>,
    errno: Option<u32>,
    exit_code: Option<u8>,
    signal: Option<u8>,
    core_dumped: Option<bool>,
    lifetime_ns: Option<u64>,
    zombie_ns: Option<u64>,
    reaper_pid: Option<u32>,
    #[serde(borrow)]
    reaper_comm: Option<Cow<'a, str>>,
    autoreap: Option<bool>,
    inferred: Option<bool>,
    reaped_after_ns: Option<u64>,
    reaped_before_ns: Option<u64>,
    uncertain: Option<bool>,
    count: Option<u64>,
    kind: Option<String>,
    alert: Option<String>,
    scope: Option<String>,
    since_ktime_ns: Option<u64>,
    parent: Option<RawParent>,
    figures: Option<Figures>,
    executables: Option<Vec<RawExecutable>>,
    exits: Option<Vec<RawExit>>,
    message: Option<String>,
    tracer_version: Option<String>,
    schema_version: Option<u64>,
    kernel: Option<String>,
    options: Option<serde_json::Value>,
    reason: Option<String>,
    records: Option<Figures>,
    lost: Option<Figures>,
    records_not_written: Option<u64>,
}

/// An alert's `parent`.
#[derive(Deserialize)]
struct RawParent {
    pid: Option<u32>,
    proc_id: Option<String>,
    comm: Option<String>,
    filename: Option<String>,
}

/// One of an alert's `executables`.
#[derive(Deserialize)]
struct RawExecutable {
    filename: Option<String>,
    count: Option<u64>,
}

/// One of an alert's `exits` (`signal_name` is derived from `signal`).
#[derive(Deserialize)]
struct RawExit {
    exit_code: Option<u8>,
    signal: Option<u8>,
}

/// An alert's `figures`: an object of numbers, in the order written (a map type
/// would sort them, and the order is the writer's).
struct Figures(Vec<(Name, u64)>);

impl<'de> Deserialize<'de> for Figures {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FiguresVisitor;
        impl<'de> Visitor<'de> for FiguresVisitor {
            type Value = Figures;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of non-negative integers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Figures, A::Error> {
                let mut figures = Vec::new();
                while let Some((name, n)) = map.next_entry::<String, u64>()? {
                    figures.push((Name::Owned(text(name)), n));
                }
                Ok(Figures(figures))
            }
        }
        d.deserialize_map(FiguresVisitor).map_err(de::Error::custom)
    }
}

/// A line that gave no record: why, and a short detail.
type Skip = (BadKind, String);

fn missing(field: &str) -> Skip {
    (BadKind::MissingField, format!("no {field:?}"))
}

fn need<T>(v: Option<T>, field: &str) -> Result<T, Skip> {
    v.ok_or_else(|| missing(field))
}

/// `"<pid>-<start ticks>"`.
pub fn parse_proc_id(s: &str) -> Option<ProcId> {
    let (pid, start) = s.split_once('-')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(start) {
        return None;
    }
    Some(ProcId {
        pid: pid.parse().ok()?,
        start_ticks: start.parse().ok()?,
    })
}

fn proc_id_field(s: &str, field: &str) -> Result<ProcId, Skip> {
    parse_proc_id(s).ok_or_else(|| {
        (
            BadKind::BadValue,
            format!("{field} {s:?} is not \"<pid>-<start>\""),
        )
    })
}

/// The bytes a JSON string stands for (`\xNN` is byte NN).
fn bytes(s: &str) -> Vec<u8> {
    if s.contains('\\') {
        unescape(s)
    } else {
        s.as_bytes().to_vec()
    }
}

/// Text the writer wrote as bytes (a cgroup path, a name): the `\xNN` escapes
/// undone, and anything that is then not UTF-8 replaced (U+FFFD).
fn text(s: String) -> String {
    if s.contains('\\') {
        String::from_utf8_lossy(&unescape(&s)).into_owned()
    } else {
        s
    }
}

/// [`text`] of a field borrowed from the line: no copy unless it has escapes.
fn text_cow(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.contains('\\') {
        Cow::Owned(String::from_utf8_lossy(&unescape(&s)).into_owned())
    } else {
        s
    }
}

/// The part of a parsed line common to every record, before it is placed in a run.
struct Parsed<'a> {
    host: Cow<'a, str>,
    boot_id: Cow<'a, str>,
    ts: Option<Cow<'a, str>>,
    seq: u64,
    /// The record, and its subject's cgroup path, unit, container id and pod uid
    /// (shared when the record is kept).
    record: Record,
    cgroup: Option<Cow<'a, str>>,
    /// Boxed, and `None` when all three are null: most records have none, and
    /// this keeps [`Item`] small.
    identity: Option<Box<[Option<String>; 3]>>,
}

/// What a line is: a record, or the `meta` header of a file.
enum Item<'a> {
    Record(Parsed<'a>),
    Meta {
        host: String,
        boot_id: String,
        ts: Option<String>,
        meta: Meta,
    },
}

const PROCESS_TYPES: [&str; 9] = [
    "process",
    "fork",
    "exec",
    "exec_failed",
    "exit",
    "reap",
    "fork_failed",
    "alert",
    "alert_end",
];

/// Parses one line into a record, or says why it cannot be one.
fn parse_line(line: &[u8]) -> Result<Item<'_>, Skip> {
    let raw: Raw<'_> = serde_json::from_slice(line).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Data => {
                // Valid JSON of the wrong shape: not an object at all, or a field of
                // the wrong type.
                if line.trim_ascii_start().first() == Some(&b'{') {
                    BadKind::BadValue
                } else {
                    BadKind::NotARecord
                }
            }
            _ => BadKind::NotJson,
        };
        (kind, e.to_string())
    })?;
    let Some(ty) = raw.ty else {
        return Err((BadKind::NotARecord, "no \"type\"".into()));
    };
    if !["lost", "meta", "end"].contains(&&*ty) && !PROCESS_TYPES.contains(&&*ty) {
        return Err((BadKind::UnknownType, format!("type {ty:?}")));
    }
    let ktime_ns = need(raw.ktime_ns, "ktime_ns")?;
    let seq = need(raw.seq, "seq")?;
    let host = need(raw.host, "host")?;
    let boot_id = need(raw.boot_id, "boot_id")?;
    if ty == "meta" {
        return Ok(Item::Meta {
            host: host.into_owned(),
            boot_id: boot_id.into_owned(),
            ts: raw.ts.map(Cow::into_owned),
            meta: Meta {
                ktime_ns,
                seq,
                tracer_version: raw.tracer_version,
                schema_version: raw.schema_version,
                kernel: raw.kernel,
                options: raw.options.map(|o| o.to_string()),
            },
        });
    }

    let subject = if ty == "lost" || ty == "end" {
        None
    } else {
        let pid = need(raw.pid, "pid")?;
        let proc_id = proc_id_field(&need(raw.proc_id, "proc_id")?, "proc_id")?;
        if proc_id.pid != pid {
            return Err((
                BadKind::BadValue,
                format!("proc_id {proc_id} is not of pid {pid}"),
            ));
        }
        Some((
            Subject {
                pid,
                tid: raw.tid.unwrap_or(pid),
                ppid: need(raw.ppid, "ppid")?,
                proc_id,
                comm: Comm::new(&bytes(&need(raw.comm, "comm")?)),
                uid: raw.uid,
                cgroup_id: raw.cgroup_id.unwrap_or(0),
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            },
            raw.cgroup.map(text_cow),
            match (raw.unit, raw.container_id, raw.pod_uid) {
                (None, None, None) => None,
                (u, c, p) => Some(Box::new([u.map(text), c.map(text), p.map(text)])),
            },
        ))
    };
    let (subject, cgroup, identity) = match subject {
        Some((s, c, i)) => (Some(s), c, i),
        None => (None, None, None),
    };

    let argv = |a: Option<Vec<Cow<'_, str>>>| -> Vec<Vec<u8>> {
        a.unwrap_or_default().iter().map(|s| bytes(s)).collect()
    };
    let body = match &*ty {
        "process" => Body::Process {
            filename: raw.filename.as_deref().map(bytes),
            argv: argv(raw.argv),
            state: raw.state.and_then(|s| s.chars().next()),
            argv_redacted: raw.argv_redacted.unwrap_or(false),
        },
        "fork" => Body::Fork {
            parent_proc_id: match raw.parent_proc_id {
                Some(s) => Some(proc_id_field(&s, "parent_proc_id")?),
                None => None,
            },
            thread: raw.thread.unwrap_or(false),
            clone_flags: raw.clone_flags,
        },
        "exec" => Body::Exec {
            filename: bytes(&need(raw.filename, "filename")?),
            argv: argv(raw.argv),
            argv_truncated: raw.argv_truncated.unwrap_or(false),
            argv_redacted: raw.argv_redacted.unwrap_or(false),
            old_tid: raw.old_tid,
        },
        "exec_failed" => Body::ExecFailed {
            filename: bytes(&need(raw.filename, "filename")?),
            errno: need(raw.errno, "errno")?,
        },
        "exit" => {
            if raw.exit_code.is_some() && raw.signal.is_some() {
                return Err((
                    BadKind::BadValue,
                    "both exit_code and signal are set".into(),
                ));
            }
            Body::Exit {
                exit_code: raw.exit_code,
                signal: raw.signal,
                core_dumped: raw.core_dumped.unwrap_or(false),
                lifetime_ns: raw.lifetime_ns,
                thread: raw.thread.unwrap_or(false),
            }
        }
        "reap" => Body::Reap {
            zombie_ns: raw.zombie_ns,
            reaper_pid: raw.reaper_pid,
            reaper_comm: raw.reaper_comm.as_deref().map(|c| Comm::new(&bytes(c))),
            autoreap: raw.autoreap.unwrap_or(false),
            inferred: match raw.inferred {
                Some(true) => Some(crate::record::ReapWindow {
                    after_ns: raw.reaped_after_ns,
                    before_ns: need(raw.reaped_before_ns, "reaped_before_ns")?,
                }),
                _ => None,
            },
        },
        "fork_failed" => Body::ForkFailed {
            errno: need(raw.errno, "errno")?,
        },
        "lost" => Body::Lost {
            kind: Name::Owned(text(need(raw.kind, "kind")?)),
            count: need(raw.count, "count")?,
        },
        "end" => Body::End {
            reason: Name::Owned(text(need(raw.reason, "reason")?)),
            records: raw.records.map_or_else(Vec::new, |f| f.0),
            lost: raw.lost.map_or_else(Vec::new, |f| f.0),
            not_written: raw.records_not_written.unwrap_or(0),
        },
        "alert" | "alert_end" => {
            let name = need(raw.alert, "alert")?;
            let Some(kind) = AlertKind::from_name(&name) else {
                return Err((
                    BadKind::BadValue,
                    format!("alert {name:?} is not one this version knows"),
                ));
            };
            let parent = match raw.parent {
                Some(p) => {
                    let pid = need(p.pid, "parent.pid")?;
                    let proc_id =
                        proc_id_field(&need(p.proc_id, "parent.proc_id")?, "parent.proc_id")?;
                    Some(AlertProc {
                        pid,
                        proc_id,
                        comm: Comm::new(&bytes(&need(p.comm, "parent.comm")?)),
                        filename: p.filename.as_deref().map(bytes),
                    })
                }
                None => None,
            };
            let mut executables = Vec::new();
            for e in raw.executables.unwrap_or_default() {
                let count = need(e.count, "executables.count")?;
                executables.push((e.filename.as_deref().map(bytes), count));
            }
            let mut alert = Alert {
                kind,
                end: ty == "alert_end",
                scope: Name::Owned(text(raw.scope.unwrap_or_default())),
                // Older or hand-made lines without it: the alert's own time.
                since_ns: raw.since_ktime_ns.unwrap_or(ktime_ns),
                filename: raw.filename.as_deref().map(bytes),
                argv: argv(raw.argv),
                parent,
                figures: raw.figures.map_or_else(Vec::new, |f| f.0),
                executables,
                exits: (raw.exits.unwrap_or_default().into_iter())
                    .map(|e| AlertExit {
                        exit_code: e.exit_code,
                        signal: e.signal,
                    })
                    .collect(),
                errno: raw.errno,
                what: String::new(),
                message: None,
            };
            split_message(
                &mut alert,
                subject.as_ref(),
                cgroup.as_deref(),
                bytes(&raw.message.unwrap_or_default()),
            );
            Body::Alert(Box::new(alert))
        }
        _ => unreachable!("type checked above"),
    };
    Ok(Item::Record(Parsed {
        host,
        boot_id,
        ts: raw.ts,
        seq,
        record: Record {
            ktime_ns,
            subject,
            body,
            uncertain: raw.uncertain.unwrap_or(false),
        },
        cgroup,
        identity,
    }))
}

/// Takes an alert's `what` out of its `message`: the writer puts the kind, the
/// culprit and its cgroup in front ([`crate::alerts::message`]). A message that
/// does not start that way (written by hand, or by another version) is kept
/// whole in [`Alert::message`].
fn split_message(
    alert: &mut Alert,
    subject: Option<&Subject>,
    cgroup: Option<&str>,
    message: Vec<u8>,
) {
    let front = crate::alert_text::message(alert, subject, cgroup);
    let what = match message.strip_prefix(front.as_slice()) {
        Some([]) => Some(String::new()),
        // An empty `what` adds no space, so a lone space is not the writer's.
        Some([b' ', rest @ ..]) if !rest.is_empty() => {
            std::str::from_utf8(rest).ok().map(str::to_owned)
        }
        _ => None,
    };
    match what {
        Some(what) => alert.what = what,
        None => alert.message = Some(message),
    }
}

/// Reads records from all sources; `progress` is told how far reading got.
pub fn read_all(sources: &[Source], progress: &mut Progress) -> Result<Records, ReadError> {
    read_sources(sources, &mut io::stdin().lock(), progress)
}

/// [`read_all`] with `stdin` standing for `-`.
///
/// Parsing JSON is the cost of reading, so inputs are parsed in parallel: each file
/// on one thread of a pool as large as the machine's cores
/// ([`std::thread::available_parallelism`]), stdin on the calling thread (it is
/// not `Send`). What each input gave is then put together in the order the inputs
/// were given, so the result is the same as reading them one after the other.
pub fn read_sources(
    sources: &[Source],
    stdin: &mut dyn Read,
    progress: &mut Progress,
) -> Result<Records, ReadError> {
    if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
        return Err(ReadError::StdinTwice);
    }
    let total: Option<u64> = sources
        .iter()
        .map(|s| match s {
            Source::File(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    progress.start(total);
    let files: Vec<(usize, &PathBuf)> = sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Source::File(p) => Some((i, p)),
            Source::Stdin => None,
        })
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(files.len());
    let mut parts: Vec<Option<Result<Builder, ReadError>>> = std::iter::repeat_with(|| None)
        .take(sources.len())
        .collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Msg>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, files) = (&next, &files);
            scope.spawn(move || {
                while let Some(&(i, path)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut told = Told::new(|bytes, lines| {
                        let _ = tx.send(Msg::Progress(bytes, lines));
                    });
                    let part = read_file(path, &mut |b, l| told.advance(b, l));
                    told.flush();
                    let _ = tx.send(Msg::Done(i, Box::new(part)));
                }
            });
        }
        drop(tx);
        if let Some(i) = sources.iter().position(|s| *s == Source::Stdin) {
            let mut b = Builder::default();
            let reader = BufReader::with_capacity(256 * 1024, &mut *stdin);
            let r = b.read_input(Source::Stdin.name(), reader, &mut |bytes, lines| {
                progress.advance(bytes, lines);
            });
            parts[i] = Some(r.map(|()| b));
        }
        for msg in rx {
            match msg {
                Msg::Progress(bytes, lines) => progress.advance(bytes, lines),
                Msg::Done(i, part) => parts[i] = Some(*part),
            }
        }
    });
    progress.finish();
    let mut all = Builder::default();
    let parts: Vec<Builder> = parts
        .into_iter()
        .map(|p| p.expect("every input was read"))
        .collect::<Result<_, _>>()?;
    all.absorb_all(parts);
    Ok(all.finish())
}

/// What a reading thread tells the thread that shows progress.
enum Msg {
    Progress(u64, u64),
    Done(usize, Box<Result<Builder, ReadError>>),
}

/// Progress of one thread, passed on in batches (a message per line would cost
/// more than the line).
struct Told<F: FnMut(u64, u64)> {
    bytes: u64,
    lines: u64,
    tell: F,
}

impl<F: FnMut(u64, u64)> Told<F> {
    const EVERY: u64 = 4096;

    fn new(tell: F) -> Self {
        Told {
            bytes: 0,
            lines: 0,
            tell,
        }
    }

    fn advance(&mut self, bytes: u64, lines: u64) {
        self.bytes += bytes;
        self.lines += lines;
        if self.lines >= Self::EVERY {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.bytes > 0 || self.lines > 0 {
            (self.tell)(self.bytes, self.lines);
        }
        self.bytes = 0;
        self.lines = 0;
    }
}

/// One file, read on its own.
fn read_file(path: &PathBuf, advance: &mut dyn FnMut(u64, u64)) -> Result<Builder, ReadError> {
    let name = Source::File(path.clone()).name();
    let file = std::fs::File::open(path).map_err(|e| ReadError::Open {
        name: name.clone(),
        error: e,
    })?;
    let mut b = Builder::default();
    b.read_input(name, BufReader::with_capacity(256 * 1024, file), advance)?;
    Ok(b)
}

/// Reads records from in-memory inputs: (name, bytes). For tests and callers that
/// already hold the data.
pub fn read_bytes(inputs: &[(&str, &[u8])]) -> Result<Records, ReadError> {
    let mut parts = Vec::with_capacity(inputs.len());
    for (name, data) in inputs {
        let mut b = Builder::default();
        b.read_input(name.to_string(), *data, &mut |_, _| {})?;
        parts.push(b);
    }
    let mut all = Builder::default();
    all.absorb_all(parts);
    Ok(all.finish())
}

/// Gaps in `seq` within one input: lines missing from it.
#[derive(Default)]
struct SeqCheck {
    last: Option<u64>,
    /// Lines skipped since the last record (they may have held the missing numbers).
    bad_since: u64,
}

impl SeqCheck {
    fn check(&mut self, seq: u64, stats: &mut InputStats) {
        match self.last {
            Some(prev) if seq == prev + 1 => {}
            Some(prev) if seq <= prev => stats.seq_restarts += 1,
            Some(prev) => stats.missing += (seq - prev - 1).saturating_sub(self.bad_since),
            None => {}
        }
        self.last = Some(seq);
        self.bad_since = 0;
    }
}

/// A `BufRead` that counts the bytes taken from it: the compressed bytes under
/// a zstd decoder, for progress and the input's size.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.count.set(self.count.get() + n as u64);
        self.inner.consume(n);
    }
}

#[derive(Default)]
struct Builder {
    records: Vec<Rec>,
    /// `meta` records with the index of their run.
    metas: Vec<(usize, usize, Meta)>,
    runs: Vec<Run>,
    run_index: HashMap<(String, String), usize>,
    /// The run of the last line read.
    last_run: Option<usize>,
    /// Interned subject strings: cgroup paths, units, container ids, pod uids.
    cgroups: HashSet<Arc<str>>,
    inputs: Vec<InputStats>,
    bad: BTreeMap<BadKind, u64>,
    first_bad: Vec<BadLine>,
}

impl Builder {
    fn skip(&mut self, stats: &mut InputStats, line: u64, kind: BadKind, detail: String) {
        stats.bad += 1;
        *self.bad.entry(kind).or_default() += 1;
        if self.first_bad.len() < KEEP_BAD {
            // Details quote the input: keep them short.
            let mut detail = detail;
            if detail.len() > 120 {
                let mut cut = 117;
                while !detail.is_char_boundary(cut) {
                    cut -= 1;
                }
                detail.truncate(cut);
                detail.push_str("...");
            }
            self.first_bad.push(BadLine {
                input: stats.name.clone(),
                line,
                kind,
                detail,
            });
        }
    }

    fn read_input(
        &mut self,
        name: String,
        mut reader: impl BufRead,
        advance: &mut dyn FnMut(u64, u64),
    ) -> Result<(), ReadError> {
        let read_error = |e| ReadError::Read {
            name: name.clone(),
            error: e,
        };
        let head = reader.fill_buf().map_err(read_error)?;
        if head.starts_with(&[0x1f, 0x8b]) {
            return Err(ReadError::Compressed { name });
        }
        if crate::output::file::is_zstd(head) {
            let count = Rc::new(Cell::new(0));
            let counted = Counted {
                inner: reader,
                count: Rc::clone(&count),
            };
            let decoder = zstd::stream::read::Decoder::with_buffer(counted).map_err(read_error)?;
            let decoded = BufReader::with_capacity(256 * 1024, decoder);
            return self.read_lines(name, decoded, advance, Some(count));
        }
        self.read_lines(name, reader, advance, None)
    }

    /// Reads the lines of one input. `compressed` counts the bytes read from a
    /// zstd input before decompression.
    fn read_lines(
        &mut self,
        name: String,
        reader: impl BufRead,
        advance: &mut dyn FnMut(u64, u64),
        compressed: Option<Rc<Cell<u64>>>,
    ) -> Result<(), ReadError> {
        let mut stats = InputStats {
            name: name.clone(),
            ..Default::default()
        };
        let mut seq = SeqCheck::default();
        let mut lines = LineReader::new(reader, MAX_LINE);
        let mut last_bytes = 0u64;
        loop {
            let (line_no, line) = match lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                // Damaged or cut-short compressed data: what came before it is
                // kept, the rest counts as one truncated line.
                Err(e) if compressed.is_some() => {
                    stats.lines += 1;
                    let at = stats.lines;
                    let detail = format!("zstd data damaged or cut short: {e}");
                    self.skip(&mut stats, at, BadKind::Truncated, detail);
                    break;
                }
                Err(e) => {
                    return Err(ReadError::Read { name, error: e });
                }
            };
            stats.lines = line_no;
            self.line(&mut stats, &mut seq, line_no, line);
            let now = compressed.as_ref().map_or(lines.bytes_read(), |c| c.get());
            advance(now - last_bytes, 1);
            last_bytes = now;
        }
        stats.bytes = compressed.map_or(lines.bytes_read(), |c| c.get());
        self.inputs.push(stats);
        Ok(())
    }

    /// Takes one line of the input being read (`self.inputs.len()`).
    fn line(&mut self, stats: &mut InputStats, seq: &mut SeqCheck, line_no: u64, line: Line) {
        let (text, last) = match line {
            Line::Full(t) => (t, false),
            Line::Unterminated(t) => (t, true),
            Line::TooLong { len } => {
                self.skip(stats, line_no, BadKind::TooLong, format!("{len} bytes"));
                seq.bad_since += 1;
                return;
            }
        };
        if text.trim_ascii().is_empty() {
            // Blank lines carry nothing; editors and `cat` add them.
            return;
        }
        match parse_line(text) {
            Ok(Item::Record(p)) => {
                stats.end = match &p.record.body {
                    Body::End { reason, .. } => Some(reason.to_string()),
                    _ => None,
                };
                stats.records += 1;
                seq.check(p.seq, stats);
                let input = self.inputs.len();
                self.add(p, input, line_no);
            }
            Ok(Item::Meta {
                host,
                boot_id,
                ts,
                meta,
            }) => {
                stats.end = None;
                stats.records += 1;
                seq.check(meta.seq, stats);
                let run = self.run_of(&host, &boot_id, meta.ktime_ns, ts.as_deref());
                self.metas.push((run, self.inputs.len(), meta));
            }
            Err((kind, detail)) => {
                // A last line without newline that does not parse is what a crash
                // mid-write leaves (docs/events.md): say so rather than "not JSON".
                let kind = if last && matches!(kind, BadKind::NotJson) {
                    BadKind::Truncated
                } else {
                    kind
                };
                self.skip(stats, line_no, kind, detail);
                seq.bad_since += 1;
            }
        }
    }

    /// The run of (host, boot), created if new, widened to `ktime_ns`.
    fn run_of(&mut self, host: &str, boot_id: &str, ktime_ns: u64, ts: Option<&str>) -> usize {
        // Most lines are of the run of the line before: no key built for them.
        let same = |r: &Run| r.host == host && r.boot_id == boot_id;
        let run = match self.last_run {
            Some(i) if same(&self.runs[i]) => i,
            _ => {
                let key = (host.to_owned(), boot_id.to_owned());
                match self.run_index.get(&key) {
                    Some(&i) => i,
                    None => {
                        let i = self.runs.len();
                        self.runs.push(Run {
                            host: key.0.clone(),
                            boot_id: key.1.clone(),
                            wall_offset_ns: None,
                            first_ktime_ns: ktime_ns,
                            last_ktime_ns: ktime_ns,
                            records: BTreeMap::new(),
                            meta: Vec::new(),
                        });
                        self.run_index.insert(key, i);
                        i
                    }
                }
            }
        };
        self.last_run = Some(run);
        let r = &mut self.runs[run];
        r.first_ktime_ns = r.first_ktime_ns.min(ktime_ns);
        r.last_ktime_ns = r.last_ktime_ns.max(ktime_ns);
        if r.wall_offset_ns.is_none()
            && let Some(wall) = ts.and_then(parse_rfc3339)
        {
            r.wall_offset_ns = Some(wall - i128::from(ktime_ns));
        }
        run
    }

    fn add(&mut self, p: Parsed, input: usize, line: u64) {
        let mut record = p.record;
        let run = self.run_of(&p.host, &p.boot_id, record.ktime_ns, p.ts.as_deref());
        if let Some(s) = record.subject.as_mut() {
            // Few distinct values: one shared copy of each.
            let mut share = |c: Option<&str>| {
                c.map(|c| match self.cgroups.get(c) {
                    Some(shared) => Arc::clone(shared),
                    None => {
                        let shared: Arc<str> = Arc::from(c);
                        self.cgroups.insert(Arc::clone(&shared));
                        shared
                    }
                })
            };
            s.cgroup = share(p.cgroup.as_deref());
            let [unit, container_id, pod_uid] = p.identity.map(|b| *b).unwrap_or_default();
            s.unit = share(unit.as_deref());
            s.container_id = share(container_id.as_deref());
            s.pod_uid = share(pod_uid.as_deref());
        }
        self.records.push(Rec {
            run,
            seq: p.seq,
            input,
            line,
            record,
        });
    }

    /// Takes in what each input gave when read on its own, in the order the inputs
    /// were given: runs met again are widened, and input and run numbers shifted, so
    /// the result is what reading them in turn would have built.
    fn absorb_all(&mut self, parts: Vec<Builder>) {
        for part in parts {
            self.absorb(part);
        }
    }

    fn absorb(&mut self, mut part: Builder) {
        let input_base = self.inputs.len();
        let runs: Vec<usize> = part.runs.into_iter().map(|r| self.add_run(r)).collect();
        let renumber = |rec: &mut Rec| {
            rec.run = runs[rec.run];
            rec.input += input_base;
        };
        if self.records.is_empty() {
            part.records.iter_mut().for_each(renumber);
            self.records = part.records;
        } else {
            // Moved from the end, the part's buffer shrinking as it empties, so the
            // records are not held twice; `finish` sorts them by a key that is
            // unique to each record, so the order they are moved in does not matter.
            let mut moved = 0usize;
            while let Some(mut rec) = part.records.pop() {
                renumber(&mut rec);
                self.records.push(rec);
                moved += 1;
                if moved.is_multiple_of(1 << 16) {
                    part.records.shrink_to_fit();
                }
            }
        }
        for (run, input, meta) in part.metas {
            self.metas.push((runs[run], input + input_base, meta));
        }
        self.inputs.extend(part.inputs);
        for (kind, n) in part.bad {
            *self.bad.entry(kind).or_default() += n;
        }
        let room = KEEP_BAD.saturating_sub(self.first_bad.len());
        self.first_bad.extend(part.first_bad.into_iter().take(room));
    }

    /// A run read from a later input: new, or the same host and boot as one
    /// already known (widened; its clock offset is the earlier input's, as the
    /// first readable `ts` sets it).
    fn add_run(&mut self, r: Run) -> usize {
        let key = (r.host.clone(), r.boot_id.clone());
        match self.run_index.get(&key) {
            Some(&i) => {
                let known = &mut self.runs[i];
                known.first_ktime_ns = known.first_ktime_ns.min(r.first_ktime_ns);
                known.last_ktime_ns = known.last_ktime_ns.max(r.last_ktime_ns);
                known.wall_offset_ns = known.wall_offset_ns.or(r.wall_offset_ns);
                i
            }
            None => {
                let i = self.runs.len();
                self.runs.push(r);
                self.run_index.insert(key, i);
                i
            }
        }
    }

    fn finish(mut self) -> Records {
        // Runs in order of host, then time (boot ids are random, so a host's boots
        // are ordered by their wall clock, when known).
        let first_wall: Vec<Option<i128>> = self
            .runs
            .iter()
            .map(|r| r.wall_ns(r.first_ktime_ns))
            .collect();
        let mut order: Vec<usize> = (0..self.runs.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&self.runs[a], &self.runs[b]);
            ra.host
                .cmp(&rb.host)
                .then_with(|| first_wall[a].cmp(&first_wall[b]))
                .then_with(|| ra.boot_id.cmp(&rb.boot_id))
        });
        let mut rank = vec![0usize; self.runs.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old] = new;
        }
        for rec in &mut self.records {
            rec.run = rank[rec.run];
        }
        let mut runs: Vec<Option<Run>> = self.runs.into_iter().map(Some).collect();
        let runs: Vec<Run> = order
            .iter()
            .map(|&old| runs[old].take().expect("each run once"))
            .collect();

        // (input, line) is unique to a record, so an unstable sort orders them
        // the same as a stable one, without the stable sort's buffer of half
        // the records.
        self.records.sort_unstable_by(|a, b| {
            (a.run, a.record.ktime_ns, a.seq, a.input, a.line).cmp(&(
                b.run,
                b.record.ktime_ns,
                b.seq,
                b.input,
                b.line,
            ))
        });
        // The same record from two inputs: same run, time, seq and content.
        let before = self.records.len();
        self.records.dedup_by(|later, earlier| {
            later.input != earlier.input
                && later.run == earlier.run
                && later.seq == earlier.seq
                && later.record.ktime_ns == earlier.record.ktime_ns
                && later.record.subject == earlier.record.subject
                && later.record.body == earlier.record.body
        });
        let mut duplicates = (before - self.records.len()) as u64;

        let mut runs = runs;
        for rec in &self.records {
            *runs[rec.run]
                .records
                .entry(rec.record.body.type_name().to_string())
                .or_default() += 1;
        }
        // `meta` records go to their runs, the same one from two inputs once.
        let mut metas = std::mem::take(&mut self.metas);
        for m in &mut metas {
            m.0 = rank[m.0];
        }
        metas.sort_by_key(|(run, input, m)| (*run, m.ktime_ns, m.seq, *input));
        let before = metas.len();
        metas.dedup_by(|later, earlier| {
            later.1 != earlier.1 && later.0 == earlier.0 && later.2 == earlier.2
        });
        duplicates += (before - metas.len()) as u64;
        for (run, _, meta) in metas {
            *runs[run].records.entry("meta".to_string()).or_default() += 1;
            runs[run].meta.push(meta);
        }
        Records {
            records: self.records,
            runs,
            inputs: self.inputs,
            bad: self.bad,
            first_bad: self.first_bad,
            duplicates,
        }
    }
}
