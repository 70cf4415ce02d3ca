//! Kernel tests of the filters: `watch --uid/--comm/--cgroup/--events` on real
//! workloads (a process run as another user, a program whose name is longer than a
//! comm, a cgroup v2 made for the test, failed execs), and `report --since/--until`
//! and `--uid` on a real recording.
//!
//! Like the other kernel tests they run the real tracer (`TRACER_BIN`) as root.
//! Each run follows its own COMMAND, so every record in its file is of the test's
//! own processes; every wait has a deadline.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tracer_tests::{PROCESS_TYPES, Proc, Rec, STEP_DEADLINE, parse_records, run_dir};

const NOBODY: u64 = 65534;

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A program found in PATH.
fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found in PATH"))
}

/// One finished `tracer watch` run and its records.
struct Run {
    proc: Proc,
    records: Vec<Rec>,
    out: PathBuf,
}

impl Run {
    fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let lines: Vec<String> = self.records.iter().map(|r| r.to_string()).collect();
        panic!(
            "{msg}\n{}\n--- {}:\n{}",
            self.proc.describe(),
            self.out.display(),
            lines.join("\n")
        )
    }

    /// Records about processes (not meta, lost, alerts).
    fn process_records(&self) -> Vec<&Rec> {
        (self.records.iter())
            .filter(|r| PROCESS_TYPES.contains(&r.ty()))
            .collect()
    }

    fn filters(&self) -> &Value {
        let meta = (self.records.iter().find(|r| r.ty() == "meta"))
            .unwrap_or_else(|| self.fail("no meta record"));
        &meta.get("options")["filters"]
    }

    /// The summary's `N filtered out`.
    fn filtered_out(&self) -> Option<u64> {
        let err = self.proc.stderr();
        let line = err.lines().find(|l| l.contains(" records"))?;
        let i = line.find(" filtered out")?;
        line[..i].rsplit(' ').next()?.parse().ok()
    }
}

/// `tracer watch --quiet -o FILE FLAGS -- COMMAND`, waited for.
fn watch(label: &str, flags: &[&str], command: &[&str]) -> Run {
    let dir = run_dir(label);
    let out = dir.join("trace.jsonl");
    let mut args = vec!["watch", "--quiet", "-o", s(&out)];
    args.extend(flags);
    args.push("--");
    args.extend(command);
    let mut proc = Proc::tracer(&args);
    let status = proc.wait_within(STEP_DEADLINE);
    let content = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no output {}: {e}\n{}", out.display(), proc.describe()));
    let records = parse_records(&content)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", out.display(), proc.describe()));
    let run = Run { proc, records, out };
    if status.code() != Some(0) {
        run.fail(format!("tracer exited with {status}"));
    }
    run
}

fn exec_files<'a>(recs: &[&'a Rec]) -> Vec<&'a str> {
    (recs.iter())
        .filter(|r| r.ty() == "exec")
        .filter_map(|r| r.str("filename"))
        .collect()
}

#[test]
fn uid_keeps_only_that_users_processes() {
    let setpriv = which("setpriv");
    // Root's shell runs `id -u` as nobody, then /bin/echo as itself.
    let script = format!(
        "{} --reuid=65534 --regid=65534 --clear-groups /usr/bin/id -u; /bin/echo as-root",
        s(&setpriv)
    );
    let run = watch(
        "filter-uid",
        &["--uid", "65534"],
        &["/bin/sh", "-c", &script],
    );
    let recs = run.process_records();
    if let Some(r) = recs.iter().find(|r| r.u64("uid") != Some(NOBODY)) {
        run.fail(format!("a record of another uid was written: {r}"));
    }
    // setpriv exec'd id as nobody: that exec, its exit and its reap are there.
    let id: Vec<&&Rec> = (recs.iter())
        .filter(|r| r.ty() == "exec" && r.str("filename") == Some("/usr/bin/id"))
        .collect();
    let [id] = id[..] else {
        run.fail("expected one exec of /usr/bin/id as nobody")
    };
    for ty in ["exit", "reap"] {
        if !recs.iter().any(|r| r.ty() == ty && r.pid() == id.pid()) {
            run.fail(format!("no {ty} record of {id}"));
        }
    }
    if exec_files(&recs).contains(&"/bin/echo") {
        run.fail("root's /bin/echo was written");
    }
    if run.filters()["uids"] != serde_json::json!([NOBODY]) {
        run.fail(format!("meta options.filters: {}", run.filters()));
    }
    // The shell's fork, exec, exit and reap at least were held back.
    if run.filtered_out().is_none_or(|n| n < 4) {
        run.fail("the summary does not count the records filtered out");
    }
}

#[test]
fn comm_matches_the_executable_file_name_beyond_the_comm() {
    // A program whose file name is longer than a comm (15 bytes): its comm is cut,
    // so only the file name matches, also for its exit and reap, which carry no
    // file name.
    let dir = run_dir("filter-comm-bin");
    let long = dir.join("a-rather-long-program-name");
    std::fs::copy("/bin/true", &long).expect("copy /bin/true");
    let script = format!("{}; /bin/true", s(&long));
    let run = watch(
        "filter-comm",
        &["--comm", "^a-rather-long-program-name$"],
        &["/bin/sh", "-c", &script],
    );
    let recs = run.process_records();
    let types: Vec<&str> = recs.iter().map(|r| r.ty()).collect();
    if types != ["exec", "exit", "reap"] {
        run.fail(format!(
            "expected exec, exit, reap of the long name, got {types:?}"
        ));
    }
    if recs[0].str("filename") != Some(s(&long)) || recs[1].str("comm") != Some("a-rather-long-p") {
        run.fail("not the long-named program's records");
    }
    if recs.iter().any(|r| r.pid() != recs[0].pid()) {
        run.fail("records of another process were written");
    }
    if run.filters()["comm"] != "^a-rather-long-program-name$" {
        run.fail(format!("meta options.filters: {}", run.filters()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
/// hybrid system).
fn cgroup2_mount() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("cgroup2 is not mounted: the --cgroup test needs it")
}

/// A cgroup made for the test, removed when dropped (its processes are gone by then).
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn cgroup_keeps_only_processes_inside() {
    let mount = cgroup2_mount();
    let name = format!("tracer-test-filter-{}", std::process::id());
    let cg = TestCgroup(mount.join(&name));
    std::fs::create_dir(&cg.0).unwrap_or_else(|e| panic!("mkdir {}: {e}", cg.0.display()));
    // A shell moves itself into the cgroup and runs /bin/true there; its parent,
    // outside, runs /bin/echo.
    let script = format!(
        "/bin/sh -c 'echo $$ > {}/cgroup.procs && exec /bin/true'; /bin/echo outside",
        s(&cg.0)
    );
    let prefix = format!("/{name}");
    let run = watch(
        "filter-cgroup",
        &["--cgroup", &prefix],
        &["/bin/sh", "-c", &script],
    );
    let recs = run.process_records();
    if let Some(r) = recs
        .iter()
        .find(|r| r.str("cgroup") != Some(prefix.as_str()))
    {
        run.fail(format!("a record outside {prefix}: {r}"));
    }
    let files = exec_files(&recs);
    if files != ["/bin/true"] {
        run.fail(format!(
            "expected only the exec of /bin/true, got {files:?}"
        ));
    }
    let t = recs[0].pid();
    for ty in ["exit", "reap"] {
        if !recs.iter().any(|r| r.ty() == ty && r.pid() == t) {
            run.fail(format!("no {ty} record of /bin/true"));
        }
    }
    if run.filters()["cgroup"] != prefix.as_str() {
        run.fail(format!("meta options.filters: {}", run.filters()));
    }
}

#[test]
fn events_exec_failed_writes_failed_execs_only() {
    let run = watch(
        "filter-events",
        &["--events", "exec_failed"],
        &["/bin/sh", "-c", "/nonexistent/tracer-test-prog; /bin/true"],
    );
    let recs = run.process_records();
    let types: Vec<&str> = recs.iter().map(|r| r.ty()).collect();
    if types != ["exec_failed"] {
        run.fail(format!("expected one exec_failed, got {types:?}"));
    }
    let f = recs[0];
    if f.str("filename") != Some("/nonexistent/tracer-test-prog")
        || f.str("error") != Some("ENOENT")
    {
        run.fail(format!("not the failed exec: {f}"));
    }
    for r in &run.records {
        if !matches!(
            r.ty(),
            "meta" | "exec_failed" | "lost" | "alert" | "alert_end" | "end"
        ) {
            run.fail(format!("a record of a type not asked for: {r}"));
        }
    }
    if run.filters()["events"] != serde_json::json!(["exec_failed"]) {
        run.fail(format!("meta options.filters: {}", run.filters()));
    }
}

/// `tracer report ARGS`, its stdout as JSON.
fn report_json(args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend(args);
    let mut p = Proc::tracer(&all);
    let status = p.wait_within(STEP_DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", p.describe());
    serde_json::from_str(&p.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", p.describe()))
}

fn executed(report: &Value) -> Vec<String> {
    (report["top_executed"]
        .as_array()
        .expect("top_executed")
        .iter())
    .map(|e| e["filename"].as_str().expect("filename").to_string())
    .collect()
}

#[test]
fn report_since_until_and_uid_on_a_real_recording() {
    let setpriv = which("setpriv");
    // Two phases a quarter second apart: the cut goes between them, wherever the
    // recording's clock puts them.
    let script = format!(
        "/bin/true; /bin/sleep 0.25; {} --reuid=65534 --regid=65534 --clear-groups /bin/echo late",
        s(&setpriv)
    );
    let run = watch("filter-report", &[], &["/bin/sh", "-c", &script]);
    let exec_of = |file: &str| {
        (run.records.iter())
            .find(|r| r.ty() == "exec" && r.str("filename") == Some(file))
            .unwrap_or_else(|| run.fail(format!("no exec of {file}")))
    };
    let (first, second) = (exec_of("/bin/true"), exec_of("/bin/echo"));
    let k1 = first.u64("ktime_ns").unwrap();
    let k2 = second.u64("ktime_ns").unwrap();
    let last = run
        .records
        .iter()
        .filter_map(|r| r.u64("ktime_ns"))
        .max()
        .unwrap();
    // Wall clock = ktime + one offset per run (docs/events.md).
    let mid_ns = (k1 + k2) / 2;
    let ts = first.str("ts").unwrap();
    let wall1 = tracer::report::walltime::parse_rfc3339(ts).unwrap();
    let mid = tracer::report::walltime::rfc3339(wall1 + i128::from(mid_ns - k1));
    let file = s(&run.out);

    let late = report_json(&["--since", &mid, file]);
    let names = executed(&late);
    if !names.contains(&"/bin/echo".into()) || names.contains(&"/bin/true".into()) {
        run.fail(format!("--since {mid}: executed {names:?}"));
    }
    assert_eq!(
        late["selection"],
        serde_json::json!([format!("--since {mid}")])
    );
    // The same cut, counted back from the recording's last record.
    let back_ms = (last - mid_ns) / 1_000_000;
    let rel = report_json(&["--since", &format!("-{back_ms}ms"), file]);
    if executed(&rel) != names {
        run.fail(format!(
            "--since -{back_ms}ms: executed {:?}",
            executed(&rel)
        ));
    }
    let early = report_json(&["--until", &mid, file]);
    let names = executed(&early);
    if !names.contains(&"/bin/true".into()) || names.contains(&"/bin/echo".into()) {
        run.fail(format!("--until {mid}: executed {names:?}"));
    }
    // Only nobody's process is counted: the one that ran setpriv, then echo.
    let nobody = report_json(&["--uid", "65534", file]);
    assert_eq!(nobody["totals"]["processes"], 1, "{}", nobody["totals"]);
    let mut names = executed(&nobody);
    names.sort();
    assert_eq!(names, ["/bin/echo", s(&setpriv)]);
}
