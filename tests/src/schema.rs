//! Record schema v2 (docs/events.md): the fields each record type must carry,
//! with their types, checked on every record a test reads.

use serde_json::Value;

/// Record types that describe one process (they carry the process fields).
pub const PROCESS_TYPES: [&str; 7] = [
    "process",
    "fork",
    "fork_failed",
    "exec",
    "exec_failed",
    "exit",
    "reap",
];

/// Record types besides [`PROCESS_TYPES`] that carry the process fields.
pub const MORE_PROCESS_TYPES: [&str; 2] = ["alert", "alert_end"];

/// The kinds an `alert` record can have (docs/events.md).
pub const ALERT_KINDS: [&str; 4] = [
    "fork_storm",
    "zombie_buildup",
    "crash_loop",
    "fork_failures",
];

/// The type a field must have.
#[derive(Clone, Copy)]
enum Ty {
    U64,
    Str,
    Bool,
    StrArray,
    Rfc3339,
}

fn field(v: &Value, key: &str, ty: Ty, nullable: bool) -> Result<(), String> {
    let Some(x) = v.get(key) else {
        return Err(format!("missing field {key:?}"));
    };
    if x.is_null() {
        return if nullable {
            Ok(())
        } else {
            Err(format!("field {key:?} is null"))
        };
    }
    let ok = match ty {
        Ty::U64 => x.is_u64(),
        Ty::Str => x.is_string(),
        Ty::Bool => x.is_boolean(),
        Ty::StrArray => x.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Ty::Rfc3339 => x.as_str().is_some_and(is_rfc3339),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("field {key:?} has the wrong type: {x}"))
    }
}

/// Checks one record against schema v2.
pub fn check_record(v: &Value) -> Result<(), String> {
    use Ty::*;
    if !v.is_object() {
        return Err("not an object".into());
    }
    field(v, "seq", U64, false)?;
    field(v, "type", Str, false)?;
    field(v, "ts", Rfc3339, false)?;
    field(v, "ktime_ns", U64, false)?;
    field(v, "host", Str, false)?;
    field(v, "boot_id", Str, false)?;
    let ty = v["type"].as_str().expect("checked");
    // Optional, on the records that sum a life up: present only when true.
    if let Some(u) = v.get("uncertain")
        && (u != &Value::Bool(true) || !["exit", "reap", "process"].contains(&ty))
    {
        return Err(format!(
            "uncertain {u} on a {ty} record (only true, on exit/reap/process)"
        ));
    }
    if PROCESS_TYPES.contains(&ty) || MORE_PROCESS_TYPES.contains(&ty) {
        for k in ["pid", "tid", "ppid"] {
            field(v, k, U64, false)?;
        }
        field(v, "proc_id", Str, false)?;
        if v["proc_id"].as_str() == Some("") {
            return Err("empty proc_id".into());
        }
        field(v, "comm", Str, false)?;
        field(v, "uid", U64, true)?;
        field(v, "cgroup", Str, true)?;
        field(v, "cgroup_id", U64, false)?;
        field(v, "unit", Str, true)?;
        field(v, "container_id", Str, true)?;
        field(v, "pod_uid", Str, true)?;
        if let Some(id) = v["container_id"].as_str()
            && (id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("container_id {id:?} is not 64 hex digits"));
        }
    }
    match ty {
        "process" => {
            field(v, "filename", Str, true)?;
            field(v, "argv", StrArray, false)?;
            field(v, "argv_redacted", Bool, false)?;
            field(v, "state", Str, false)?;
            let state = v["state"].as_str().expect("checked");
            if state.len() != 1 || !"RSDZTtIXPKWx".contains(state) {
                return Err(format!("state {state:?} is not one /proc/PID/stat letter"));
            }
        }
        "fork" => {
            field(v, "parent_proc_id", Str, true)?;
            field(v, "thread", Bool, false)?;
            field(v, "clone_flags", U64, true)?;
        }
        "fork_failed" => {
            field(v, "errno", U64, false)?;
            field(v, "error", Str, true)?;
            if v["errno"].as_u64() == Some(0) {
                return Err("errno 0 (must be positive)".into());
            }
        }
        "exec" => {
            field(v, "filename", Str, false)?;
            field(v, "argv", StrArray, false)?;
            field(v, "argv_truncated", Bool, false)?;
            field(v, "argv_redacted", Bool, false)?;
            field(v, "old_tid", U64, true)?;
        }
        "exec_failed" => {
            field(v, "filename", Str, false)?;
            field(v, "errno", U64, false)?;
            field(v, "error", Str, true)?;
            if v["errno"].as_u64() == Some(0) {
                return Err("errno 0 (must be positive)".into());
            }
        }
        "exit" => {
            field(v, "exit_code", U64, true)?;
            field(v, "signal", U64, true)?;
            field(v, "signal_name", Str, true)?;
            field(v, "core_dumped", Bool, false)?;
            field(v, "lifetime_ns", U64, true)?;
            field(v, "thread", Bool, false)?;
            if v["exit_code"].as_u64().is_some_and(|c| c > 255) {
                return Err("exit_code above 255".into());
            }
            // A process either exited with a code or was killed by a signal.
            if v["exit_code"].is_null() == v["signal"].is_null() {
                return Err("exactly one of exit_code and signal must be set".into());
            }
            if v["signal"].is_null() != v["signal_name"].is_null() {
                return Err("signal_name must be set exactly when signal is".into());
            }
        }
        "reap" => {
            field(v, "zombie_ns", U64, true)?;
            field(v, "reaper_pid", U64, true)?;
            field(v, "reaper_comm", Str, true)?;
            field(v, "autoreap", Bool, false)?;
            // Only on an inferred reap: `"inferred": true` and its window.
            if let Some(i) = v.get("inferred") {
                if i != &Value::Bool(true) {
                    return Err(format!("inferred {i} on a reap (only true)"));
                }
                field(v, "reaped_after_ns", U64, true)?;
                field(v, "reaped_before_ns", U64, false)?;
            } else if v.get("reaped_before_ns").is_some() {
                return Err("reaped_before_ns on a reap not inferred".into());
            }
        }
        "lost" => {
            field(v, "count", U64, false)?;
            field(v, "kind", Str, false)?;
        }
        "alert" | "alert_end" => check_alert(v)?,
        "meta" => {
            field(v, "tracer_version", Str, false)?;
            field(v, "schema_version", U64, false)?;
            field(v, "kernel", Str, true)?;
            if !v.get("options").is_some_and(Value::is_object) {
                return Err("field \"options\" is not an object".into());
            }
            if v["schema_version"].as_u64() != Some(2) {
                return Err("schema_version is not 2".into());
            }
        }
        "end" => {
            field(v, "reason", Str, false)?;
            field(v, "records_not_written", U64, false)?;
            for k in ["records", "lost"] {
                if !v[k]
                    .as_object()
                    .is_some_and(|o| o.values().all(Value::is_u64))
                {
                    return Err(format!("field {k:?} is not an object of counts"));
                }
            }
            let reasons = [
                "duration",
                "signal",
                "command",
                "pid-gone",
                "stdout-closed",
                "error",
                "quit",
                "rotated",
            ];
            if !reasons.contains(&v["reason"].as_str().expect("checked")) {
                return Err(format!("unknown end reason {}", v["reason"]));
            }
        }
        other => return Err(format!("unknown type {other:?}")),
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` (RFC 3339 section 5.6).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// Checks the fields of an `alert` or `alert_end` record.
fn check_alert(v: &Value) -> Result<(), String> {
    use Ty::*;
    field(v, "alert", Str, false)?;
    if !ALERT_KINDS.contains(&v["alert"].as_str().expect("checked")) {
        return Err(format!("unknown alert kind {}", v["alert"]));
    }
    field(v, "scope", Str, false)?;
    field(v, "since_ktime_ns", U64, false)?;
    field(v, "filename", Str, true)?;
    field(v, "argv", StrArray, false)?;
    match v.get("parent") {
        Some(Value::Null) => {}
        Some(p @ Value::Object(_)) => {
            field(p, "pid", U64, false)?;
            field(p, "proc_id", Str, false)?;
            field(p, "comm", Str, false)?;
            field(p, "filename", Str, true)?;
        }
        other => return Err(format!("parent must be an object or null: {other:?}")),
    }
    match v.get("figures").and_then(Value::as_object) {
        Some(f) if f.values().all(Value::is_u64) => {}
        _ => {
            return Err(format!(
                "figures must map names to numbers: {}",
                v["figures"]
            ));
        }
    }
    for e in v
        .get("executables")
        .and_then(Value::as_array)
        .ok_or("executables must be an array")?
    {
        field(e, "filename", Str, true)?;
        field(e, "count", U64, false)?;
    }
    for e in v
        .get("exits")
        .and_then(Value::as_array)
        .ok_or("exits must be an array")?
    {
        field(e, "exit_code", U64, true)?;
        field(e, "signal", U64, true)?;
        field(e, "signal_name", Str, true)?;
    }
    field(v, "errno", U64, true)?;
    field(v, "error", Str, true)?;
    field(v, "message", Str, false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_records;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2024-05-01T12:34:56Z"));
        assert!(is_rfc3339("2024-05-01T12:34:56.123456789Z"));
        assert!(is_rfc3339("2024-05-01T12:34:56.1+02:00"));
        assert!(!is_rfc3339("2024-05-01 12:34:56"));
        assert!(!is_rfc3339("2024-05-01T12:34:56."));
        assert!(!is_rfc3339("2024-05-01T12:34:56+0200"));
        assert!(!is_rfc3339("1714566896"));
    }

    fn exit_line(seq: u64, extra: &str) -> String {
        format!(
            r#"{{"seq":{seq},"type":"exit","ts":"2024-05-01T12:34:56.5Z","ktime_ns":1,"host":"h","boot_id":"b","pid":5,"tid":5,"ppid":1,"proc_id":"5-7","comm":"x","uid":0,"cgroup":null,"cgroup_id":0,"unit":null,"container_id":null,"pod_uid":null,"core_dumped":false,"lifetime_ns":3,"thread":false{extra}}}"#
        )
    }

    #[test]
    fn schema_accepts_and_rejects() {
        let good = exit_line(1, r#","exit_code":7,"signal":null,"signal_name":null"#);
        let recs = parse_records(&good).expect("valid record");
        assert_eq!(recs[0].u64("exit_code"), Some(7));

        let both = exit_line(1, r#","exit_code":7,"signal":9,"signal_name":"SIGKILL""#);
        assert!(
            parse_records(&both)
                .unwrap_err()
                .contains("exactly one of exit_code")
        );

        let no_name = exit_line(1, r#","exit_code":null,"signal":9,"signal_name":null"#);
        assert!(parse_records(&no_name).unwrap_err().contains("signal_name"));

        let gap = format!(
            "{good}\n{}",
            exit_line(3, r#","exit_code":0,"signal":null,"signal_name":null"#)
        );
        assert!(parse_records(&gap).unwrap_err().contains("seq 3 where 2"));

        let missing = good.replace(r#""proc_id":"5-7","#, "");
        assert!(parse_records(&missing).unwrap_err().contains("proc_id"));

        let lost = r#"{"seq":1,"type":"lost","ts":"2024-05-01T12:34:56Z","ktime_ns":1,"host":"h","boot_id":"b","count":3,"kind":"exec"}"#;
        assert_eq!(parse_records(lost).expect("lost is valid")[0].pid(), None);
    }
}
