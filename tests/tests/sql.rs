//! docs/sql.md's queries, as written there, on DuckDB and on ClickHouse's engine
//! (chDB), over Parquet that `tracer convert` made from a real recording: both
//! engines must give the same rows, and those rows must be what `tracer report
//! --format json` says of the same recording.
//!
//! Needs root and a built tracer like the other kernel tests, and python3 with
//! duckdb and chdb (`cargo xtask setup` installs them; without them the test fails
//! saying so).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tracer_tests::{
    DEADLINE, Trace, require_root, run_dir, run_tracer, spawn_with_deadline, tracer_bin,
    workload_bin,
};

/// Runs the queries it is given (JSON on stdin: `engine`, `glob`, `queries`) on one
/// engine, over a relation `records` defined as docs/sql.md defines it for that
/// engine, and prints `{name: {columns, rows}}` (or `{name: {error}}`). Values are
/// made comparable across engines: integers as integers (ClickHouse's UInt64 and
/// DuckDB's BIGINT alike), times as RFC 3339 UTC strings.
const RUNNER: &str = r#"
import sys, json, datetime, decimal
req = json.load(sys.stdin)
engine, glob = req["engine"], req["glob"]
try:
    if engine == "duckdb":
        import duckdb
    else:
        import chdb.session
except ImportError as e:
    print(f"python3 has no module {e.name!r} for the SQL tests: run `cargo xtask setup` (it installs duckdb and chdb)", file=sys.stderr)
    sys.exit(3)
def value(v):
    if isinstance(v, datetime.datetime):
        # A time without a zone is UTC (the column is UTC): never the machine's zone.
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
if engine == "duckdb":
    con = duckdb.connect()
    con.sql(f"CREATE VIEW records AS SELECT * FROM read_parquet('{glob}')")
    run = lambda q: con.sql(q).to_arrow_table()
else:
    sess = chdb.session.Session()
    sess.query(f"CREATE VIEW records AS SELECT * FROM file('{glob}', Parquet)")
    run = lambda q: sess.query(q, "ArrowTable")
out = {}
for name, q in req["queries"].items():
    try:
        t = run(q)
        out[name] = {"columns": t.column_names,
                     "rows": [[value(v) for v in r.values()] for r in t.to_pylist()]}
    except Exception as e:
        out[name] = {"error": str(e) or repr(e)}
json.dump(out, sys.stdout)
"#;

/// The engines, as the runner names them.
const ENGINES: [&str; 2] = ["duckdb", "chdb"];

/// The report's quantile sketch keeps quantiles within 1 % of the exact value.
const QUANTILE_TOLERANCE: f64 = 0.01;

/// The fenced blocks of docs/sql.md whose info string is `sql NAME`, by name.
fn doc_queries() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sql.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```sql ") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let name = name.trim().to_string();
        assert!(
            out.insert(name.clone(), body.join("\n")).is_none(),
            "docs/sql.md names two queries {name}"
        );
    }
    out
}

/// One query's result on one engine.
#[derive(Debug, PartialEq)]
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Each row as column → value.
    fn maps(&self) -> Vec<BTreeMap<&str, &Value>> {
        self.rows
            .iter()
            .map(|r| self.columns.iter().map(String::as_str).zip(r).collect())
            .collect()
    }
}

/// Runs every query on `engine` over the Parquet files under `dir`.
fn run_engine(
    engine: &str,
    dir: &Path,
    queries: &BTreeMap<String, String>,
) -> BTreeMap<String, Rows> {
    let req = json!({
        "engine": engine,
        "glob": format!("{}/**/*.parquet", dir.display()),
        "queries": queries,
    });
    let mut child = Command::new("python3")
        .args(["-c", RUNNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run `cargo xtask setup`"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write the queries to python3");
    let out = child.wait_with_output().expect("python3 ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{engine}: python3 failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{engine}: runner printed no JSON ({e}); stderr: {stderr}"));
    let mut results = BTreeMap::new();
    for (name, r) in v.as_object().expect("an object") {
        if let Some(err) = r.get("error") {
            panic!(
                "{engine}: query {name} of docs/sql.md failed: {err}\n{}",
                queries[name]
            );
        }
        let columns = r["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c.as_str().expect("column name").to_string())
            .collect();
        let rows = r["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row.as_array().expect("row").clone())
            .collect();
        results.insert(name.clone(), Rows { columns, rows });
    }
    results
}

/// A cgroup v2 shaped like a systemd service, `tracer-sql.slice/tracer-sql-N.service`,
/// so that the records have a cgroup (and a unit) to group by; removed when dropped
/// (its processes have ended by then).
struct ServiceCgroup {
    slice: PathBuf,
    service: PathBuf,
}

impl ServiceCgroup {
    fn create() -> ServiceCgroup {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
        let root = mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&"cgroup2"))
            .map(|f| PathBuf::from(f[1]))
            .expect("cgroup2 is not mounted: the SQL test groups by a cgroup it makes");
        let slice = root.join("tracer-sql.slice");
        let service = slice.join(format!("tracer-sql-{}.service", std::process::id()));
        std::fs::create_dir_all(&service)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", service.display()));
        ServiceCgroup { slice, service }
    }
}

impl Drop for ServiceCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.service);
        // Another test run may still use the slice: then it stays, empty.
        let _ = std::fs::remove_dir(&self.slice);
    }
}

/// A recording of real workloads that give every query something to find: a crash
/// loop, zombies held 300 ms, failed forks at RLIMIT_NPROC and a fork storm, run
/// one after the other under one shell that `tracer watch` follows, which first
/// moves itself into `cg`; then a second crash loop of processes that never exec
/// (a subshell whose subshells `exit 7`: dash forks for each, so their executable
/// is the shell's, inherited two forks down).
fn record(dir: &Path, cg: &ServiceCgroup) -> Trace {
    let output = dir.join("trace.jsonl");
    let w = workload_bin();
    let w = w.display();
    let procs = cg.service.join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && {w} crash-loop && {w} zombies 20 300 && {w} nproc-burst 5 \
         && {w} storm 200 && ( (exit 7); (exit 7); (exit 7); true ) && true",
        procs.display()
    );
    let mut cmd = Command::new(tracer_bin());
    cmd.args(["watch", "--format", "jsonl", "--quiet", "-o"])
        .arg(&output)
        .args(["--", "sh", "-c", &script]);
    let run = spawn_with_deadline(&mut cmd, Stdio::null(), DEADLINE, String::new);
    let t = Trace::from_output(&run, &output, Value::Null, dir);
    assert!(
        t.status.success(),
        "the traced workloads failed:\n{}",
        t.stderr
    );
    t
}

fn convert(input: &Path, out: &Path) {
    let args: Vec<&OsStr> = vec![
        OsStr::new("convert"),
        input.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ];
    run_tracer(&args, None).ok();
}

fn report_json(args: &[&str], file: &Path) -> Value {
    let mut all: Vec<&OsStr> = vec![
        OsStr::new("report"),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    all.extend(args.iter().map(OsStr::new));
    all.push(file.as_os_str());
    run_tracer(&all, None).ok().json()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// `sql` is within the sketch's tolerance of `report`.
fn close(sql: &Value, report: &Value) -> bool {
    let (s, r) = (u(sql) as f64, u(report) as f64);
    (s - r).abs() <= QUANTILE_TOLERANCE * s
}

/// The report's `by_executable` / `by_cgroup` rows as (key, forks, parents, peak).
fn groups(v: &Value) -> Vec<(Value, u64, u64, u64)> {
    v.as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["key"].clone(),
                u(&g["forks"]),
                u(&g["parents"]),
                u(&g["peak_per_sec"]),
            )
        })
        .collect()
}

fn sql_groups(r: &Rows, key: &str) -> Vec<(Value, u64, u64, u64)> {
    r.maps()
        .iter()
        .map(|m| {
            (
                m[key].clone(),
                u(m["forks"]),
                u(m["parents"]),
                u(m["peak_per_sec"]),
            )
        })
        .collect()
}

#[test]
fn sql_doc_queries_match_the_report_on_duckdb_and_clickhouse() {
    require_root();
    let dir = run_dir("sql");
    let cg = ServiceCgroup::create();
    let t = record(&dir, &cg);
    let parquet: PathBuf = dir.join("parquet");
    convert(&t.output, &parquet);

    let queries = doc_queries();
    for name in [
        "forks_by_parent",
        "forks_by_cgroup",
        "forks_by_executable",
        "forks_per_minute",
        "zombie_times",
        "zombie_times_by_parent",
        "crash_loops",
        "fork_failures_by_errno",
        "fork_failures_by_process",
        "ancestry",
        "forks_by_unit",
        "forks_by_container",
    ] {
        assert!(
            queries.contains_key(name),
            "docs/sql.md has no query {name}"
        );
    }
    let duck = run_engine(ENGINES[0], &parquet, &queries);
    let ch = run_engine(ENGINES[1], &parquet, &queries);
    for name in queries.keys() {
        assert_eq!(duck[name], ch[name], "{name}: DuckDB and ClickHouse differ");
    }
    let q = |name: &str| &duck[name];

    // The report, with as many rows per list as the queries' LIMIT 10.
    let v = report_json(&["--top", "10"], &t.output);
    let tf = &v["top_forkers"];

    // Top forkers by parent: the same parents in the same order, with the same counts.
    let sql: Vec<(Value, u64, u64, u64, u64)> = q("forks_by_parent")
        .maps()
        .iter()
        .map(|m| {
            let p = m["parent_proc_id"].clone();
            let c = u(m["children"]);
            (
                p,
                c,
                u(m["peak_per_sec"]),
                u(m["first_fork_ktime_ns"]),
                u(m["last_fork_ktime_ns"]),
            )
        })
        .collect();
    let rep: Vec<(Value, u64, u64, u64, u64)> = tf["by_parent"]
        .as_array()
        .expect("by_parent")
        .iter()
        .map(|p| {
            let (c, peak) = (u(&p["children"]), u(&p["peak_per_sec"]));
            let (a, b) = (u(&p["first_fork_ktime_ns"]), u(&p["last_fork_ktime_ns"]));
            (p["process"]["proc_id"].clone(), c, peak, a, b)
        })
        .collect();
    assert_eq!(sql, rep, "forks_by_parent vs report top_forkers.by_parent");
    // The storm's two workers forked 100 children each: they lead.
    assert_eq!((sql[0].1, sql[1].1), (100, 100), "{sql:?}");

    assert_eq!(
        sql_groups(q("forks_by_cgroup"), "cgroup"),
        groups(&tf["by_cgroup"]),
        "forks_by_cgroup vs report top_forkers.by_cgroup"
    );
    // The shell moved into the service's cgroup before it started anything.
    let service = format!(
        "/tracer-sql.slice/tracer-sql-{}.service",
        std::process::id()
    );
    let by_cgroup = sql_groups(q("forks_by_cgroup"), "cgroup");
    assert_eq!(by_cgroup[0].0, json!(service), "{by_cgroup:?}");
    assert!(by_cgroup[0].1 >= 230, "{by_cgroup:?}");
    let by_exe = sql_groups(q("forks_by_executable"), "executable");
    assert_eq!(
        by_exe,
        groups(&tf["by_executable"]),
        "forks_by_executable vs report top_forkers.by_executable"
    );
    // The workload forked, and so did its storm workers, which never exec'd: their
    // forks are the workload's executable's, inherited.
    let workload = workload_bin();
    assert_eq!(
        by_exe[0].0,
        json!(workload.display().to_string()),
        "{by_exe:?}"
    );

    // Forks per minute: each minute's count is the fork records whose `ts` falls in it.
    let mut per_minute: BTreeMap<String, u64> = BTreeMap::new();
    for r in t.find("fork", |r| !r.thread()) {
        let ts = r.str("ts").expect("ts");
        *per_minute.entry(format!("{}:00Z", &ts[..16])).or_default() += 1;
    }
    let sql: BTreeMap<String, u64> = q("forks_per_minute")
        .maps()
        .iter()
        .map(|m| {
            (
                m["minute"].as_str().expect("minute").to_string(),
                u(m["forks"]),
            )
        })
        .collect();
    assert_eq!(sql, per_minute, "forks_per_minute vs the fork records");
    assert_eq!(sql.values().sum::<u64>(), u(&v["totals"]["forked"]));

    // By service and container: the fork records' own `unit`, `container_id` and
    // `pod_uid` fields, counted here from the JSON Lines (null where absent).
    let forks = t.find("fork", |r| !r.thread());
    for (query, keys) in [
        ("forks_by_unit", &["unit"][..]),
        ("forks_by_container", &["container_id", "pod_uid"][..]),
    ] {
        let mut want: BTreeMap<Vec<Option<String>>, (u64, BTreeSet<String>)> = BTreeMap::new();
        for r in &forks {
            let key: Vec<Option<String>> =
                keys.iter().map(|k| r.str(k).map(str::to_string)).collect();
            if query == "forks_by_container" && key.iter().all(Option::is_none) {
                continue;
            }
            let e = want.entry(key).or_default();
            e.0 += 1;
            e.1.extend(r.str("parent_proc_id").map(str::to_string));
        }
        let want: BTreeMap<Vec<Option<String>>, (u64, u64)> = want
            .into_iter()
            .map(|(k, (n, parents))| (k, (n, parents.len() as u64)))
            .collect();
        let got: BTreeMap<Vec<Option<String>>, (u64, u64)> = q(query)
            .maps()
            .iter()
            .map(|m| {
                let key = keys
                    .iter()
                    .map(|k| m[k].as_str().map(str::to_string))
                    .collect();
                (key, (u(m["forks"]), u(m["parents"])))
            })
            .collect();
        assert_eq!(got, want, "{query} vs the fork records");
    }
    // The report counts services over all hosts together: the same, summed.
    let svc = &tf["by_service"];
    let mut sql: BTreeMap<Vec<Option<String>>, u64> = BTreeMap::new();
    for m in q("forks_by_unit").maps() {
        *sql.entry(vec![m["unit"].as_str().map(str::to_string)])
            .or_default() += u(m["forks"]);
    }
    let rep: BTreeMap<Vec<Option<String>>, u64> = svc["by_unit"]
        .as_array()
        .expect("by_service.by_unit")
        .iter()
        .map(|r| (vec![r["unit"].as_str().map(str::to_string)], u(&r["forks"])))
        .collect();
    assert_eq!(
        sql, rep,
        "forks_by_unit vs report top_forkers.by_service.by_unit"
    );
    let unit = format!("tracer-sql-{}.service", std::process::id());
    assert!(sql[&vec![Some(unit.clone())]] >= 230, "{unit}: {sql:?}");
    let mut sql: BTreeMap<Vec<Option<String>>, u64> = BTreeMap::new();
    for m in q("forks_by_container").maps() {
        let key = ["container_id", "pod_uid"].map(|k| m[k].as_str().map(str::to_string));
        *sql.entry(key.to_vec()).or_default() += u(m["forks"]);
    }
    let rep: BTreeMap<Vec<Option<String>>, u64> = svc["by_container"]
        .as_array()
        .expect("by_service.by_container")
        .iter()
        .map(|r| {
            let key = ["container_id", "pod_uid"].map(|k| r[k].as_str().map(str::to_string));
            (key.to_vec(), u(&r["forks"]))
        })
        .collect();
    assert_eq!(
        sql, rep,
        "forks_by_container vs report by_service.by_container"
    );

    // Zombie times: counts and the maximum exact, p50/p95 within the sketch's error.
    let z = &q("zombie_times").maps()[0];
    let rz = &v["zombies"];
    assert_eq!(u(z["zombies"]), u(&rz["count"]), "zombie count");
    assert_eq!(u(z["max_ns"]), u(&rz["max_ns"]), "zombie max");
    for p in ["p50_ns", "p95_ns"] {
        assert!(
            close(z[p], &rz[p]),
            "zombie {p}: SQL {} report {}",
            z[p],
            rz[p]
        );
    }
    // Per parent: every parent the report lists as reaping slowly, with its counts.
    let by_parent = q("zombie_times_by_parent").maps();
    let slow = rz["slow_reapers"].as_array().expect("slow_reapers");
    assert!(
        !slow.is_empty(),
        "the 20 zombies held 300 ms make a slow reaper"
    );
    for s in slow {
        let pid = &s["parent"]["proc_id"];
        let row = by_parent
            .iter()
            .find(|m| m["parent_proc_id"] == pid)
            .unwrap_or_else(|| panic!("slow reaper {pid} not in zombie_times_by_parent"));
        assert_eq!(u(row["zombies"]), u(&s["zombies"]), "zombies of {pid}");
        assert_eq!(u(row["max_ns"]), u(&s["max_ns"]), "max of {pid}");
        assert!(
            close(row["p50_ns"], &s["p50_ns"]),
            "p50 of {pid}: {row:?} vs {s}"
        );
    }
    let slow_in_sql = by_parent
        .iter()
        .filter(|m| u(m["max_ns"]) >= 100_000_000)
        .count();
    assert_eq!(
        slow_in_sql,
        slow.len(),
        "parents with a zombie of 100 ms or more"
    );
    // The workload that held its 20 zombies for 300 ms.
    let held = by_parent
        .iter()
        .find(|m| u(m["zombies"]) == 20)
        .unwrap_or_else(|| panic!("no parent of 20 zombies: {by_parent:?}"));
    assert!(u(held["p50_ns"]) >= 300_000_000, "{held:?}");

    // Crash loops: the shell restarted five times, every run failing.
    let sql: Vec<(Value, Value, u64, u64, u64, u64)> = q("crash_loops")
        .maps()
        .iter()
        .map(|m| {
            (
                m["parent_proc_id"].clone(),
                m["executable"].clone(),
                u(m["failures"]),
                u(m["exits"]),
                u(m["first_failure_ktime_ns"]),
                u(m["last_failure_ktime_ns"]),
            )
        })
        .collect();
    let rep: Vec<(Value, Value, u64, u64, u64, u64)> = v["crash_loops"]
        .as_array()
        .expect("crash_loops")
        .iter()
        .map(|l| {
            (
                l["parent"]["proc_id"].clone(),
                l["exe"].clone(),
                u(&l["failures"]),
                u(&l["exits"]),
                u(&l["first_ktime_ns"]),
                u(&l["last_ktime_ns"]),
            )
        })
        .collect();
    assert_eq!(sql, rep, "crash_loops vs report crash_loops");
    let loops: Vec<(&Value, u64, u64)> = sql.iter().map(|l| (&l.1, l.2, l.3)).collect();
    // The workload's `sh -c` runs (exec'd /bin/sh), then the subshells that never
    // exec'd: the shell's executable, which `tracer watch -- sh` ran as /usr/bin/sh.
    assert_eq!(
        loops,
        vec![(&json!("/bin/sh"), 5, 5), (&json!("/usr/bin/sh"), 3, 3)],
        "{sql:?}"
    );

    // Fork failures: 5 EAGAINs at RLIMIT_NPROC, all from the limited process.
    let ff = &v["fork_failures"];
    let sql: Vec<(u64, Value, u64)> = q("fork_failures_by_errno")
        .maps()
        .iter()
        .map(|m| (u(m["errno"]), m["error"].clone(), u(m["failures"])))
        .collect();
    let rep: Vec<(u64, Value, u64)> = ff["by_errno"]
        .as_array()
        .expect("by_errno")
        .iter()
        .map(|e| (u(&e["errno"]), e["error"].clone(), u(&e["count"])))
        .collect();
    assert_eq!(sql, rep, "fork_failures_by_errno vs report");
    assert_eq!(sql, vec![(11, json!("EAGAIN"), 5)]);
    let sql: Vec<(Value, u64)> = q("fork_failures_by_process")
        .maps()
        .iter()
        .map(|m| (m["proc_id"].clone(), u(m["failures"])))
        .collect();
    let rep: Vec<(Value, u64)> = ff["by_process"]
        .as_array()
        .expect("by_process")
        .iter()
        .map(|p| (p["process"]["proc_id"].clone(), u(&p["count"])))
        .collect();
    assert_eq!(sql, rep, "fork_failures_by_process vs report");

    // Ancestry: for every forked process, its ancestors as the report's tree has them.
    let tree = report_json(&["--tree"], &t.output);
    let procs = tree["processes"].as_array().expect("processes");
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in procs.iter().filter(|p| p["origin"] == "fork") {
        let mut chain = Vec::new();
        let mut at = &p["parent"];
        while let Some(i) = at.as_u64() {
            let a = &procs[i as usize];
            chain.push(a["proc_id"].as_str().expect("proc_id").to_string());
            at = &a["parent"];
        }
        want.insert(p["proc_id"].as_str().expect("proc_id").to_string(), chain);
    }
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in q("ancestry").maps() {
        let chain = got
            .entry(m["proc_id"].as_str().expect("proc_id").to_string())
            .or_default();
        assert_eq!(
            u(m["depth"]),
            chain.len() as u64 + 1,
            "ancestry depths in order"
        );
        chain.push(m["ancestor"].as_str().expect("ancestor").to_string());
    }
    assert_eq!(got, want, "ancestry vs report --tree");
    assert!(want.len() >= 230, "{} forked processes", want.len());
}

/// Without the python modules the SQL tests cannot run: they say what to do.
#[test]
fn missing_engine_says_to_run_setup() {
    // -S: no site-packages, so duckdb and chdb cannot be found.
    let mut child = Command::new("python3")
        .args(["-S", "-c", RUNNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let req = json!({"engine": "duckdb", "glob": "/nonexistent/*.parquet", "queries": {}});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "python3 has no module 'duckdb' for the SQL tests: run `cargo xtask setup` (it installs duckdb and chdb)"
    );
}
