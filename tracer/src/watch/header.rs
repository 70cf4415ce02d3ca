//! The `meta` record that starts every output file (docs/events.md): which tracer,
//! schema, kernel and options wrote it, so that one file, rotated away from the
//! others, still says where it came from.

use serde_json::{Value, json};

use super::args::{Args, Format};

/// The JSON Lines schema the writer follows (docs/events.md).
pub const SCHEMA_VERSION: u64 = 2;

/// `uname -r`, from /proc/sys/kernel/osrelease (the same string).
fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The watch options as a JSON object. The COMMAND is named by its program only:
/// its arguments may hold secrets (its `exec` record has them).
pub fn options(args: &Args) -> Value {
    let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let alerts = args.alerts.config().map(|c| {
        json!({
            "storm_rate": c.storm_rate,
            "storm_for_ns": c.storm_for_ns,
            "zombie_max": c.zombie_max,
            "zombie_age_ns": c.zombie_age_ns,
            "crash_count": c.crash_count,
            "crash_window_ns": c.crash_window_ns,
            "fork_fail_count": c.fork_fail_count,
            "fork_fail_window_ns": c.fork_fail_window_ns,
            "quiet_ns": c.quiet_ns,
        })
    });
    let rotating = args.file.rotate_size.is_some();
    json!({
        "output": args.output.as_ref().map(|p| p.to_string_lossy()),
        "format": match args.format() {
            Format::Text => "text",
            Format::Jsonl => "jsonl",
        },
        "quiet": args.quiet,
        "pids": args.pids,
        "command": args.command.first().map(|c| c.to_string_lossy()),
        "threads": args.threads,
        "duration_ns": args.duration.map(ns),
        "ring_size": args.ring_size,
        "rotate_size": args.file.rotate_size,
        "rotate_keep": rotating.then_some(args.file.rotate_keep),
        "compress": args.file.compress,
        "file_mode": format!("{:04o}", args.file.file_mode),
        "append": args.file.append,
        "parquet_dir": args.file.parquet_dir.as_ref().map(|p| p.to_string_lossy()),
        "alerts": alerts,
        "filters": filters(args),
    })
}

/// The filters a file was written with (`null` without any): a reader must know
/// that records were held back, and which. Losses and alerts never are.
fn filters(args: &Args) -> Value {
    let f = &args.filter;
    if f.procs().is_empty() && f.events.is_empty() {
        return Value::Null;
    }
    json!({
        "uids": f.proc.uids,
        "comm": f.proc.comm.as_ref().map(|r| r.as_str()),
        "cgroup": f.proc.cgroup,
        "events": (!f.events.is_empty())
            .then(|| f.events.iter().map(|e| e.type_name()).collect::<Vec<_>>()),
    })
}

/// The fields of the `meta` record after the common ones, as JSON text
/// (`,"tracer_version":...`), rendered once per run.
pub fn meta_fields(args: &Args) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |name: &str, v: Value| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v.to_string().as_bytes());
    };
    field("tracer_version", json!(env!("CARGO_PKG_VERSION")));
    field("schema_version", json!(SCHEMA_VERSION));
    field("kernel", json!(kernel_release()));
    field("options", options(args));
    out
}

/// The `hooks` field of the `meta` record (`,"hooks":{..}`): which programs
/// report reaps, failed execs and failed forks, known once loaded.
pub fn hooks_field(path: crate::hooks::Path, fexit_refused: Option<&str>) -> Vec<u8> {
    let v = json!({"path": path.name(), "fexit_refused": fexit_refused});
    format!(",\"hooks\":{v}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(args: &[&str]) -> Args {
        let argv: Vec<&str> = std::iter::once("watch")
            .chain(args.iter().copied())
            .collect();
        super::super::args::parse(&argv).unwrap()
    }

    #[test]
    fn meta_fields_are_json_with_the_options() {
        let args = watch(&[
            "-o",
            "/var/log/t.jsonl",
            "--rotate-size",
            "1M",
            "--compress",
            "--file-mode",
            "640",
            "--no-alerts",
            "--",
            "curl",
            "-u",
            "user:secret",
        ]);
        let mut text = b"{\"x\":1".to_vec();
        text.extend(meta_fields(&args));
        text.push(b'}');
        let v: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["tracer_version"], json!(env!("CARGO_PKG_VERSION")));
        assert_eq!(v["schema_version"], json!(2));
        assert_eq!(v["kernel"], json!(kernel_release()));
        let o = &v["options"];
        assert_eq!(o["output"], json!("/var/log/t.jsonl"));
        assert_eq!(o["rotate_size"], json!(1 << 20));
        assert_eq!(o["rotate_keep"], json!(5));
        assert_eq!(o["compress"], json!(true));
        assert_eq!(o["file_mode"], json!("0640"));
        assert_eq!(o["alerts"], Value::Null);
        assert_eq!(o["command"], json!("curl"));
        assert_eq!(o["filters"], Value::Null);
        assert!(!String::from_utf8_lossy(&text).contains("secret"));
    }

    #[test]
    fn hooks_field_names_the_path_and_why() {
        let parse = |b: Vec<u8>| -> Value {
            let mut t = b"{\"x\":0".to_vec();
            t.extend(b);
            t.push(b'}');
            serde_json::from_slice(&t).unwrap()
        };
        let v = parse(hooks_field(crate::hooks::Path::Fexit, None));
        assert_eq!(v["hooks"], json!({"path": "fexit", "fexit_refused": null}));
        let v = parse(hooks_field(
            crate::hooks::Path::SyscallTracepoints,
            Some("fexit on kernel_wait4: \"EPERM\""),
        ));
        assert_eq!(
            v["hooks"],
            json!({"path": "syscall_tracepoints", "fexit_refused": "fexit on kernel_wait4: \"EPERM\""})
        );
    }

    /// The `meta` example in docs/events.md has exactly the fields written, and
    /// its `options` exactly the keys of [`options`].
    #[test]
    fn documented_meta_matches() {
        let doc = include_str!("../../../docs/events.md");
        let line = doc
            .lines()
            .find(|l| l.starts_with('{') && l.contains(r#""type":"meta""#))
            .expect("a meta example");
        let documented: Value = serde_json::from_str(line).unwrap();
        let mut text =
            br#"{"seq":1,"type":"meta","ts":"","ktime_ns":0,"host":"","boot_id":"x""#.to_vec();
        text.extend(meta_fields(&watch(&[
            "-o",
            "x",
            "--rotate-size",
            "100M",
            "--uid",
            "0",
            "--events",
            "exec",
        ])));
        text.extend(hooks_field(crate::hooks::Path::Fexit, None));
        text.push(b'}');
        let ours: Value = serde_json::from_slice(&text).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&documented), keys(&ours));
        assert_eq!(keys(&documented["options"]), keys(&ours["options"]));
        assert_eq!(
            keys(&documented["options"]["alerts"]),
            keys(&ours["options"]["alerts"])
        );
        assert_eq!(
            keys(&documented["options"]["filters"]),
            keys(&ours["options"]["filters"])
        );
    }

    #[test]
    fn filters_are_listed() {
        let o = options(&watch(&[
            "--uid",
            "65534",
            "--comm",
            "^sleep$",
            "--cgroup",
            "/system.slice/",
            "--events",
            "exec_failed,exit",
        ]));
        assert_eq!(
            o["filters"],
            json!({"uids": [65534], "comm": "^sleep$", "cgroup": "/system.slice",
                   "events": ["exec_failed", "exit"]})
        );
        let o = options(&watch(&["--comm", "x"]));
        assert_eq!(
            o["filters"],
            json!({"uids": [], "comm": "x", "cgroup": null, "events": null})
        );
    }

    #[test]
    fn alert_thresholds_are_listed_when_on() {
        let o = options(&watch(&["--storm-rate", "50"]));
        assert_eq!(o["alerts"]["storm_rate"], json!(50));
        assert_eq!(o["rotate_keep"], Value::Null);
        assert_eq!(o["file_mode"], json!("0600"));
    }
}
