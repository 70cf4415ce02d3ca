//! Records as the tests read them: [`Rec`] (one JSON Lines record), whole files
//! parsed and checked ([`parse_records`]), files being written ([`complete_records`])
//! and files too big to hold, read line by line ([`scan_records`]).

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::schema::check_record;

/// One JSON Lines record.
#[derive(Clone, Debug, PartialEq)]
pub struct Rec(pub Value);

impl Rec {
    /// The field, or `Null` when absent.
    pub fn get(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).as_u64()
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).as_str()
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).as_bool()
    }
    pub fn is_null(&self, key: &str) -> bool {
        self.get(key).is_null()
    }
    pub fn seq(&self) -> u64 {
        self.u64("seq").expect("checked when parsed")
    }
    pub fn ty(&self) -> &str {
        self.str("type").expect("checked when parsed")
    }
    /// The process (tgid); None for records about no process (`lost`).
    pub fn pid(&self) -> Option<u32> {
        self.u64("pid").map(|p| p as u32)
    }
    pub fn tid(&self) -> Option<u32> {
        self.u64("tid").map(|p| p as u32)
    }
    pub fn ppid(&self) -> Option<u32> {
        self.u64("ppid").map(|p| p as u32)
    }
    pub fn proc_id(&self) -> Option<&str> {
        self.str("proc_id")
    }
    /// `thread` of fork and exit records (false when absent).
    pub fn thread(&self) -> bool {
        self.bool("thread").unwrap_or(false)
    }
    /// `argv` of exec records as strings.
    pub fn argv(&self) -> Vec<&str> {
        match self.get("argv").as_array() {
            Some(a) => a.iter().filter_map(Value::as_str).collect(),
            None => Vec::new(),
        }
    }

    /// A number from an alert's `figures`.
    pub fn figure(&self, name: &str) -> Option<u64> {
        self.get("figures").get(name).and_then(Value::as_u64)
    }
}

impl fmt::Display for Rec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The number at `path` in `v` (e.g. `["totals", "forked"]` in a report's JSON);
/// fails the test, showing `v`, if there is none.
pub fn json_u64(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |cur, key| &cur[*key])
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v:#}"))
}

/// Records one a line, for failure messages.
pub(crate) fn lines(recs: &[&Rec]) -> String {
    recs.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses JSON Lines and checks each record against schema v2 and `seq` is 1, 2, 3, ...
pub fn parse_records(content: &str) -> Result<Vec<Rec>, String> {
    let mut records = Vec::new();
    for (i, line) in content.lines().enumerate() {
        records.push(checked_line(i as u64 + 1, line, records.len() as u64 + 1)?);
    }
    Ok(records)
}

/// Line `lineno` of a JSON Lines file as a record: JSON, schema v2, and `seq` equal to
/// `want` (seq runs 1, 2, 3, ... without a gap).
fn checked_line(lineno: u64, line: &str, want: u64) -> Result<Rec, String> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| format!("line {lineno} is not JSON ({e}): {line}"))?;
    check_record(&value).map_err(|e| format!("line {lineno} breaks schema v2: {e}: {line}"))?;
    let rec = Rec(value);
    if rec.seq() != want {
        return Err(format!(
            "line {lineno}: seq {} where {want} was due (seq must be gap-free from 1): {line}",
            rec.seq()
        ));
    }
    Ok(rec)
}

/// The complete lines (ending in `\n`) of a JSON Lines file being written, as far
/// as they parse; an absent file has none. For polling: the final check is
/// [`parse_records`].
pub fn complete_records(path: &Path) -> Vec<Rec> {
    let Ok(content) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match content.rfind('\n') {
        Some(i) => &content[..i],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .map(Rec)
        .collect()
}

/// What [`scan_records`] found in a JSON Lines file read line by line (a fork
/// bomb's recording is hundreds of MB: too big to hold as [`Rec`]s).
#[derive(Debug, Default)]
pub struct Scan {
    pub records: u64,
    pub bytes: u64,
    pub per_type: std::collections::BTreeMap<String, u64>,
    /// The sum of the `count` of the `lost` records.
    pub lost: u64,
    /// The lost counts per `kind`.
    pub lost_by_kind: std::collections::BTreeMap<String, u64>,
    /// The records `keep` chose, in order.
    pub kept: Vec<Rec>,
    /// Processes (proc_ids) with records that contradict each other: two
    /// whole-process exits, two reaps, an exit after the reap, a fork after the
    /// exit. At most the first 20.
    pub inconsistent: Vec<String>,
}

/// Reads a JSON Lines output as it is streamed: each line checked against schema
/// v1 ([`check_record`]), `seq` gap-free from 1, the file ending with a newline;
/// counts the records per type and the lost events, keeps the records for which
/// `keep` holds, and checks that no process's records contradict each other.
pub fn scan_records(path: &Path, keep: impl Fn(&Rec) -> bool) -> Result<Scan, String> {
    use std::collections::HashMap;
    use std::io::BufRead;
    /// What was seen of one process: seq of its fork, exit, reap (0: none).
    #[derive(Default)]
    struct Seen {
        fork: u64,
        exit: u64,
        reap: u64,
    }
    let file = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan::default();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut line = String::new();
    let mut lineno = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("{}: line {}: {e}", path.display(), lineno + 1))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        scan.bytes += n as u64;
        let Some(text) = line.strip_suffix('\n') else {
            return Err(format!(
                "line {lineno} has no newline: the last record was cut or not flushed: {line:?}"
            ));
        };
        let rec = checked_line(lineno, text, scan.records + 1)?;
        let seq = rec.seq();
        scan.records += 1;
        *scan.per_type.entry(rec.ty().to_string()).or_default() += 1;
        if rec.ty() == "lost" {
            let count = rec.u64("count").expect("checked");
            scan.lost += count;
            *scan
                .lost_by_kind
                .entry(rec.str("kind").expect("checked").to_string())
                .or_default() += count;
        }
        if let (Some(id), false) = (rec.proc_id(), rec.thread()) {
            let s = seen.entry(id.to_string()).or_default();
            let bad = match rec.ty() {
                "fork" if s.fork != 0 || s.exit != 0 => Some("a fork after its fork or exit"),
                "fork" => {
                    s.fork = seq;
                    None
                }
                "exit" if s.exit != 0 => Some("a second exit"),
                "exit" if s.reap != 0 => Some("an exit after its reap"),
                "exit" => {
                    s.exit = seq;
                    None
                }
                "reap" if s.reap != 0 => Some("a second reap"),
                "reap" => {
                    s.reap = seq;
                    None
                }
                _ => None,
            };
            if let Some(what) = bad
                && scan.inconsistent.len() < 20
            {
                scan.inconsistent
                    .push(format!("{id}: {what} (seq {seq}): {rec}"));
            }
        }
        if keep(&rec) {
            scan.kept.push(rec);
        }
    }
    Ok(scan)
}
