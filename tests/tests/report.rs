//! Kernel tests of `tracer report`: record a real workload with `tracer watch`, then
//! check that the report's figures are what the workload did.
//!
//! Needs root and a built tracer, like the other kernel tests (`sudo cargo xtask test`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;
use tracer_tests::{Ran, Trace, ancestors_of_self, json_u64, run_traced, run_tracer};

const WORKLOAD_COMM: &str = "tracer-workload";

fn report(args: &[&str], file: &Path) -> Ran {
    let mut all: Vec<&OsStr> = vec![OsStr::new("report")];
    all.extend(args.iter().map(OsStr::new));
    all.push(file.as_os_str());
    run_tracer(&all, None).ok()
}

fn report_json(args: &[&str], file: &Path) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    report(&all, file).json()
}

/// Whole-process forks in the recording.
fn process_forks(t: &Trace) -> u64 {
    t.find("fork", |r| !r.thread()).len() as u64
}

#[test]
fn storm_report_names_the_forking_worker_its_executable_and_cgroup() {
    let t = run_traced(&["storm", "500"], &[]);
    t.check_workload(0);
    let workers = t.pids("workers");
    let children = t.pids("children");
    assert_eq!(children.len(), 500);
    let exe = t
        .find("exec", |r| r.pid() == Some(t.workload_pid()))
        .first()
        .and_then(|r| r.str("filename"))
        .expect("workload exec")
        .to_string();
    let cgroup = t.fork_of(children[0]).str("cgroup").map(str::to_string);

    let out = report(&[], &t.output).stdout;
    let first_screen: Vec<&str> = out.lines().take(24).collect();
    // Headline sentences wrap at 80 columns with a 6-space indent: join them back.
    let first_screen = first_screen.join("\n").replace("\n      ", " ");
    // Each worker forked 250 children: the headline names one of them.
    let named = workers.iter().any(|w| {
        first_screen.contains(&format!("busiest forker: pid {w} {WORKLOAD_COMM} ({exe})"))
    });
    assert!(named, "headline does not name a worker {workers:?}:\n{out}");
    assert!(
        first_screen.contains(": 250 children, peak "),
        "headline count is not 250:\n{out}"
    );
    assert!(
        first_screen.contains("its children ran /bin/true (250)"),
        "{out}"
    );
    // Both workers and the workload itself fork with the workload's executable.
    assert!(
        first_screen.contains(&format!(
            "busiest executable: {exe}: 502 forks by 3 processes"
        )),
        "{out}"
    );
    if let Some(cg) = &cgroup {
        assert!(
            first_screen.contains("busiest cgroup: ") && first_screen.contains(cg.as_str()),
            "headline does not name cgroup {cg}:\n{out}"
        );
    }
    assert!(first_screen.contains("FORK RATE"), "{out}");
    assert!(
        out.contains("ZOMBIES") && out.contains("EXITS by executable"),
        "{out}"
    );

    // The same figures as JSON, against what the workload did.
    let v = report_json(&[], &t.output);
    let by_parent = v["top_forkers"]["by_parent"].as_array().expect("by_parent");
    let top2: BTreeSet<u64> = by_parent[..2]
        .iter()
        .map(|p| json_u64(p, &["process", "pid"]))
        .collect();
    let want: BTreeSet<u64> = workers.iter().map(|&w| u64::from(w)).collect();
    assert_eq!(top2, want, "the two top forkers are the workers");
    for p in &by_parent[..2] {
        assert_eq!(json_u64(p, &["children"]), 250);
        assert!(json_u64(p, &["peak_per_sec"]) >= 1 && json_u64(p, &["peak_per_sec"]) <= 250);
        assert_eq!(p["children_ran"][0]["name"], "/bin/true");
    }
    assert_eq!(json_u64(&v, &["totals", "forked"]), process_forks(&t));
    assert!(json_u64(&v, &["totals", "forked"]) >= 503);
    assert_eq!(v["top_executed"][0]["filename"], "/bin/true");
    assert_eq!(json_u64(&v["top_executed"][0], &["execs"]), 500);
    let timeline_sum: u64 = v["timeline"][0]["forks"]
        .as_array()
        .expect("forks")
        .iter()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    assert_eq!(timeline_sum, process_forks(&t));
    let true_exits = v["exits"]
        .as_array()
        .expect("exits")
        .iter()
        .find(|e| e["exe"] == "/bin/true")
        .expect("/bin/true in exits");
    assert_eq!(
        (
            json_u64(true_exits, &["exits"]),
            json_u64(true_exits, &["failures"])
        ),
        (500, 0)
    );
    assert_eq!(json_u64(&v, &["input_problems", "bad_lines"]), 0);
    for key in [
        "report_version",
        "headline",
        "inputs",
        "runs",
        "totals",
        "lost",
        "top_forkers",
        "timeline",
        "zombies",
        "exits",
        "crash_loops",
        "longest_lived",
        "shortest_lived",
        "fork_failures",
        "exec_failures",
    ] {
        assert!(v.get(key).is_some(), "JSON report has no {key}");
    }
}

#[test]
fn storm_tree_folds_each_workers_children() {
    let t = run_traced(&["storm", "500"], &[]);
    t.check_workload(0);
    let out = report(&["--tree"], &t.output).stdout;
    // The two workers' subtrees are identical (250 `true`s each, all exit 0): one
    // line, as pstree folds them.
    let folded: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "─ 2*[{WORKLOAD_COMM}───250*[true]]  [exit 0, lived "
            ))
        })
        .collect();
    assert_eq!(
        folded.len(),
        1,
        "the workers and their children fold:\n{out}"
    );
    assert!(!out.contains("250*[true]  ["), "{out}");
    let me = t.workload_pid();
    assert!(
        out.lines()
            .any(|l| l.contains(&format!("─ {me} {WORKLOAD_COMM}  [")) && l.contains("exit 0")),
        "{out}"
    );
    // Rooted at one worker: that worker and its folded children only.
    let w = t.pids("workers")[0];
    let sub = report(&["--tree", "--pid", &w.to_string()], &t.output).stdout;
    let lines: Vec<&str> = sub.lines().collect();
    assert_eq!(lines.len(), 2, "{sub}");
    assert!(
        lines[0].starts_with(&format!("{w} {WORKLOAD_COMM}  [")),
        "{sub}"
    );
    assert!(lines[1].starts_with("└─ 250*[true]  [exit 0"), "{sub}");
    // The tree as JSON: every process, unfolded.
    let v = report_json(&["--tree"], &t.output);
    let procs = v["processes"].as_array().expect("processes");
    for c in t.pids("children") {
        let n = procs
            .iter()
            .find(|p| p["pid"] == c)
            .unwrap_or_else(|| panic!("child {c} not in the JSON tree"));
        assert_eq!(n["chain"][0], "true");
        assert_eq!(n["exit_code"], 0);
        let parent = &procs[n["parent"].as_u64().expect("parent id") as usize];
        assert!(
            t.pids("workers")
                .contains(&(parent["pid"].as_u64().unwrap() as u32))
        );
    }
}

#[test]
fn reverse_wait_zombies_and_their_exit_codes() {
    let t = run_traced(&["reverse-wait"], &[]);
    t.check_workload(0);
    let me = u64::from(t.workload_pid());
    let children = t.pids("children");
    let v = report_json(&[], &t.output);
    // The five children and the workload itself (reaped by the tracer): every reap
    // in the file has a zombie time, so each one counts.
    let reaps = t.find("reap", |_| true).len() as u64;
    assert_eq!(json_u64(&v, &["zombies", "count"]), reaps);
    assert!(reaps >= 5);
    assert!(json_u64(&v, &["zombies", "p50_ns"]) > 0);
    assert!(json_u64(&v, &["zombies", "max_ns"]) >= json_u64(&v, &["zombies", "p50_ns"]));
    assert_eq!(json_u64(&v, &["zombies", "unreaped_at_end"]), 0);
    // Exit codes 100..104 from the workload's own executable, under the workload: a
    // crash loop by the report's definition (5 failures, same parent, same program).
    let l = &v["crash_loops"][0];
    assert_eq!(json_u64(l, &["failures"]), 5, "{v:#}");
    assert_eq!(json_u64(l, &["parent", "pid"]), me);
    let exits = v["exits"].as_array().expect("exits");
    let e = exits
        .iter()
        .find(|e| json_u64(e, &["failures"]) == 5)
        .expect("an executable with 5 failures");
    for code in 100..105 {
        assert_eq!(e["codes"][code.to_string()], 1, "code {code}: {e:#}");
    }
    // Each child's zombie time in the tree: from its exit to its reap.
    let tree = report_json(&["--tree"], &t.output);
    for c in children {
        let n = tree["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == c)
            .expect("child in tree");
        let z = json_u64(n, &["zombie_ns"]);
        let rec = t.reap_of(c);
        assert_eq!(Some(z), rec.u64("zombie_ns"), "child {c}");
        assert!(z > 0);
    }
}

#[test]
fn zombie_orphan_names_the_slow_parent_and_who_reaped_the_orphan() {
    let t = run_traced(&["zombie-orphan"], &[]);
    t.check_workload(0);
    let middle = u64::from(t.pid("middle"));
    let child = t.pid("child");
    let v = report_json(&[], &t.output);
    // The middle process left its child a zombie for at least 300 ms.
    let slow = v["zombies"]["slow_reapers"]
        .as_array()
        .expect("slow_reapers")
        .iter()
        .find(|s| s["parent"]["pid"] == middle)
        .unwrap_or_else(|| panic!("middle {middle} not a slow reaper: {:#}", v["zombies"]));
    assert!(json_u64(slow, &["max_ns"]) >= 300_000_000, "{slow:#}");
    // Whoever reaped the orphan (the tracer, a subreaper above it, or init) is named.
    let reaper = t.reap_of(child).u64("reaper_pid");
    let o = &v["zombies"]["orphan_reapers"][0];
    assert_eq!(o["reaper_pid"].as_u64(), reaper, "{:#}", v["zombies"]);
    assert_eq!(json_u64(o, &["orphans"]), 1);
    let mut possible: Vec<u64> = ancestors_of_self().into_iter().map(u64::from).collect();
    possible.push(u64::from(t.tracer_pid));
    assert!(possible.contains(&reaper.unwrap_or(0)), "reaper {reaper:?}");
    let out = report(&[], &t.output).stdout;
    assert!(out.contains("parents that reap slowly"), "{out}");
    assert!(
        out.contains("orphans (reparented before their end) were reaped by:"),
        "{out}"
    );
}

#[test]
fn sigkill_ending_in_tree_and_report() {
    let t = run_traced(&["sigkill"], &[]);
    t.check_workload(0);
    let c = t.pid("child");
    let tree = report(&["--tree"], &t.output).stdout;
    assert!(
        tree.lines()
            .any(|l| l.contains(&format!("{c} {WORKLOAD_COMM}  ["))
                && l.contains(", SIGKILL, zombie ")),
        "{tree}"
    );
    let v = report_json(&[], &t.output);
    let killed = v["exits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["signals"]["SIGKILL"] == 1)
        .unwrap_or_else(|| panic!("no SIGKILL in exits: {:#}", v["exits"]));
    assert_eq!(json_u64(killed, &["failures"]), 1);
}

#[test]
fn stdin_split_files_and_damaged_files_give_the_same_figures() {
    let t = run_traced(&["storm", "200"], &[]);
    t.check_workload(0);
    let whole = report_json(&[], &t.output);

    // From stdin.
    let ran = run_tracer(
        &[
            OsStr::new("report"),
            OsStr::new("--format"),
            OsStr::new("json"),
            OsStr::new("-"),
        ],
        Some(&t.output),
    )
    .ok();
    let v = ran.json();
    assert_eq!(v["inputs"][0]["name"], "<stdin>");
    assert_eq!(v["totals"], whole["totals"]);
    assert_eq!(v["top_forkers"], whole["top_forkers"]);

    // Cut in two files, given in reverse order.
    let content = std::fs::read_to_string(&t.output).expect("recording");
    let lines: Vec<&str> = content.lines().collect();
    let (a, b) = lines.split_at(lines.len() / 2);
    let pa = t.output.with_file_name("part1.jsonl");
    let pb = t.output.with_file_name("part2.jsonl");
    std::fs::write(&pa, a.join("\n") + "\n").unwrap();
    std::fs::write(&pb, b.join("\n") + "\n").unwrap();
    let ran = run_tracer(
        &[
            OsStr::new("report"),
            OsStr::new("--format"),
            OsStr::new("json"),
            pb.as_os_str(),
            pa.as_os_str(),
        ],
        None,
    )
    .ok();
    let v = ran.json();
    assert_eq!(v["totals"], whole["totals"]);
    assert_eq!(v["zombies"], whole["zombies"]);
    assert_eq!(v["top_forkers"], whole["top_forkers"]);

    // Damaged: a line of garbage in the middle and a truncated last line.
    let mut damaged = String::new();
    for (i, l) in lines.iter().enumerate() {
        damaged.push_str(l);
        damaged.push('\n');
        if i == 10 {
            damaged.push_str("\u{0}\u{1}garbage\n");
        }
    }
    damaged.push_str(&lines[lines.len() - 1][..40]);
    let pd = t.output.with_file_name("damaged.jsonl");
    std::fs::write(&pd, damaged).unwrap();
    let out = report(&[], &pd).stdout;
    assert!(out.contains("2 lines of the input skipped"), "{out}");
    assert!(out.contains("damaged.jsonl:12: not json"), "{out}");
    assert!(
        out.contains(&format!("damaged.jsonl:{}: truncated", lines.len() + 2)),
        "{out}"
    );
    let v = report_json(&[], &pd);
    assert_eq!(
        v["totals"], whole["totals"],
        "skipping bad lines loses nothing else"
    );
    assert_eq!(
        json_u64(&v, &["input_problems", "by_reason", "truncated"]),
        1
    );
    assert_eq!(
        json_u64(&v, &["input_problems", "by_reason", "not_json"]),
        1
    );
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let t = run_traced(&["fork-exit"], &[]);
    t.check_workload(0);
    let missing = t.output.with_file_name("missing.jsonl");
    let ran = run_tracer(&[OsStr::new("report"), missing.as_os_str()], None);
    assert_eq!(ran.status.code(), Some(1));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with("tracer: cannot open "),
        "{}",
        ran.stderr
    );
    let ran = run_tracer(
        &[
            OsStr::new("report"),
            OsStr::new("--pid"),
            OsStr::new("999999999"),
            t.output.as_os_str(),
        ],
        None,
    );
    assert_eq!(ran.status.code(), Some(1));
    assert!(
        ran.stderr
            .contains("no process in the recording matches --pid 999999999"),
        "{}",
        ran.stderr
    );
}

/// `report --perfetto OUT --flamegraph SVG FILE`: the report as usual on stdout, the
/// files written, one `wrote` line each on stderr.
fn report_with_views(file: &Path) -> (Ran, Value, String) {
    let json = file.with_file_name("out.json");
    let svg = file.with_file_name("out.svg");
    let ran = run_tracer(
        &[
            OsStr::new("report"),
            OsStr::new("--perfetto"),
            json.as_os_str(),
            OsStr::new("--flamegraph"),
            svg.as_os_str(),
            file.as_os_str(),
        ],
        None,
    )
    .ok();
    let text = std::fs::read_to_string(&json).expect("perfetto file written");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e})", json.display()));
    let svg = std::fs::read_to_string(&svg).expect("flame graph written");
    (ran, v, svg)
}

/// `12345` → `12,345`, as tracer prints counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `ts`/`dur` (µs) back in ns.
fn us_to_ns(x: &Value) -> u64 {
    (x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")) * 1000.0).round() as u64
}

#[test]
fn storm_perfetto_has_a_track_and_a_running_slice_per_process() {
    let t = run_traced(&["storm", "300"], &[]);
    t.check_workload(0);
    let (ran, v, _) = report_with_views(&t.output);
    assert!(ran.stdout.contains("busiest forker: "), "{}", ran.stdout);
    let events = v["traceEvents"].as_array().expect("traceEvents");
    assert!(
        ran.stderr
            .contains(&format!("out.json ({} events)", thousands(events.len()))),
        "{}",
        ran.stderr
    );
    assert_eq!(v["displayTimeUnit"], "ms");
    assert_eq!(v["metadata"]["time_base"], "wall");

    // Tracks: name, group and depth by tid; the running slice by proc_id.
    let mut tracks: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut running: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut zombie: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    let mut execs: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in events {
        let tid = e["tid"].as_u64().unwrap_or(0);
        match (e["ph"].as_str(), e["name"].as_str()) {
            (Some("M"), Some("thread_name")) => {
                let name = e["args"]["name"].as_str().expect("name").to_string();
                tracks.insert(tid, (e["pid"].as_u64().expect("pid"), name));
            }
            (Some("X"), Some("running")) => {
                let id = e["args"]["proc_id"].as_str().expect("proc_id").to_string();
                running.entry(id).or_default().push(e);
            }
            (Some("X"), Some("zombie")) => zombie.entry(tid).or_default().push(e),
            (Some("i"), Some("exec")) => execs.entry(tid).or_default().push(e),
            _ => {}
        }
    }
    let forks = t.find("fork", |r| !r.thread());
    assert_eq!(forks.len(), 303, "the workload, 2 workers, 300 children");
    let depth = |name: &str| name.matches("· ").count();
    for fork in &forks {
        let id = fork.str("proc_id").expect("proc_id");
        let pid = fork.pid().expect("pid");
        let slices = running
            .get(id)
            .unwrap_or_else(|| panic!("no running slice for {id}"));
        assert_eq!(slices.len(), 1, "{id}");
        let r = slices[0];
        let tid = r["tid"].as_u64().expect("tid");
        assert_eq!(r["args"]["pid"], pid);
        assert_eq!(r["args"]["start_ktime_ns"], fork.u64("ktime_ns").unwrap());
        let exit = t
            .find("exit", |x| x.str("proc_id") == Some(id) && !x.thread())
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no exit of {id}"));
        assert_eq!(
            us_to_ns(&r["dur"]),
            exit.u64("ktime_ns").unwrap() - fork.u64("ktime_ns").unwrap(),
            "running slice of {id} lasts from fork to exit"
        );
        // Zombie: exactly the recorded zombie time.
        let z = &zombie[&tid];
        assert_eq!(z.len(), 1);
        assert_eq!(
            Some(us_to_ns(&z[0]["dur"])),
            t.reap_of(pid).u64("zombie_ns")
        );
        // Nested under its parent: one level deeper, after it in order, same group.
        let (group, name) = &tracks[&tid];
        assert!(name.contains(&format!("{pid} ")), "{name}");
        let parent_id = fork.str("parent_proc_id").expect("parent_proc_id");
        let p = running[parent_id][0];
        let ptid = p["tid"].as_u64().unwrap();
        let (pgroup, pname) = &tracks[&ptid];
        assert_eq!(group, pgroup);
        assert!(ptid < tid, "{pname} comes before {name}");
        assert_eq!(depth(name), depth(pname) + 1, "{pname} / {name}");
    }
    // Each child's exec of /bin/true is an instant on its track.
    for c in t.pids("children") {
        let id = t.fork_of(c).str("proc_id").unwrap();
        let tid = running[id][0]["tid"].as_u64().unwrap();
        let e = &execs[&tid];
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["args"]["filename"], "/bin/true");
        assert_eq!(e[0]["args"]["argv"][0], "true");
    }
}

#[test]
fn storm_flame_graph_counts_the_true_children() {
    let t = run_traced(&["storm", "300"], &[]);
    t.check_workload(0);
    let (ran, _, svg) = report_with_views(&t.output);
    let forks = t.find("fork", |r| !r.thread()).len();
    assert!(
        ran.stderr
            .contains(&format!("out.svg ({forks} processes in ")),
        "{}",
        ran.stderr
    );
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg, opts).expect("well-formed SVG");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    // Both workers ran the workload's image and forked 150 `true`s each: one frame.
    let trues: Vec<&&str> = titles.iter().filter(|t| t.starts_with("true (")).collect();
    assert_eq!(trues.len(), 1, "{titles:?}");
    assert!(trues[0].starts_with("true (300 processes, "), "{titles:?}");
    assert!(
        titles.contains(&format!("all ({forks} processes, 100%)").as_str()),
        "{titles:?}"
    );
    assert!(svg.contains("tracer: processes spawned by ancestry"));
}

#[test]
fn unwritable_view_files_fail_with_one_line() {
    let t = run_traced(&["fork-exit"], &[]);
    t.check_workload(0);
    let missing = t.output.with_file_name("no-such-dir").join("out.json");
    let ran = run_tracer(
        &[
            OsStr::new("report"),
            OsStr::new("--perfetto"),
            missing.as_os_str(),
            t.output.as_os_str(),
        ],
        None,
    );
    assert_eq!(ran.status.code(), Some(1));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with(&format!(
            "tracer: cannot write the Perfetto trace to {}: ",
            missing.display()
        )),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stdout.is_empty(),
        "no report after a failed file: {}",
        ran.stdout
    );
}

/// A script that starts 50 helpers and then execs another program (`run.sh`
/// ending in `exec server`): every figure names the script as the forker, with the
/// program it became beside it, never the program alone.
#[test]
fn a_script_that_forks_then_execs_is_named_as_the_script() {
    let t = run_traced(&["script-then-exec", "50"], &[]);
    t.check_workload(0);
    let sp = t.pid("script_pid");
    let script = t.fact("script").as_str().expect("script path").to_string();
    let name = Path::new(&script)
        .file_name()
        .and_then(OsStr::to_str)
        .expect("script name")
        .to_string();
    // What the kernel says happened: 50 children of the script, and then its exec.
    let helpers = t.find("fork", |r| {
        !r.thread() && r.u64("ppid") == Some(u64::from(sp))
    });
    assert_eq!(helpers.len(), 50, "forks by the script");
    let execs: Vec<&str> = t
        .find("exec", |r| r.pid() == Some(sp))
        .iter()
        .filter_map(|r| r.str("filename"))
        .collect();
    assert_eq!(execs, [script.as_str(), "/bin/sleep"]);

    let label = format!("pid {sp} {name} → sleep (forked as {script})");
    let out = report(&[], &t.output).stdout;
    let joined = out.replace("\n      ", " ");
    assert!(
        joined.contains(&format!("busiest forker: {label} in ")),
        "{out}"
    );
    assert!(
        joined.contains(&format!(
            "crash loop: /bin/false failed 50 times under {label}"
        )),
        "{out}"
    );
    assert!(!joined.contains(&format!("pid {sp} sleep")), "{out}");

    let v = report_json(&[], &t.output);
    let p = &v["top_forkers"]["by_parent"][0];
    assert_eq!(json_u64(p, &["process", "pid"]), u64::from(sp));
    assert_eq!(p["process"]["forked_as"], script.as_str());
    assert_eq!(p["process"]["exe"], "/bin/sleep");
    assert_eq!(p["forked_as"][0]["name"], script.as_str());
    assert_eq!(json_u64(&p["forked_as"][0], &["count"]), 50);
    // By executable: the script made the forks; /bin/false, which never forks,
    // is only what its children ran.
    let by_exe = v["top_forkers"]["by_executable"]
        .as_array()
        .expect("by_executable");
    let mine = by_exe
        .iter()
        .find(|g| g["key"] == script.as_str())
        .unwrap_or_else(|| panic!("the script is not among {by_exe:#?}"));
    assert_eq!(json_u64(mine, &["forks"]), 50);
    assert_eq!(mine["children_ran"][0]["name"], "/bin/false");
    assert!(
        by_exe.iter().all(|g| g["key"] != "/bin/false"),
        "{by_exe:#?}"
    );

    // The tree: the script's line shows its chain, the helpers which program made them.
    let tree = report(&["--tree", "--pid", &sp.to_string()], &t.output).stdout;
    let lines: Vec<&str> = tree.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{sp} {name} → sleep  [")),
        "{tree}"
    );
    assert!(
        lines[1].starts_with(&format!("└─ 50*[false (forked by {name})]  [exit 1")),
        "{tree}"
    );
    assert_eq!(lines.len(), 2, "{tree}");

    // watch's own summary counts the forks under the script too.
    let peaks = (t.stderr.lines())
        .find(|l| l.contains("peak fork rates:"))
        .unwrap_or_else(|| panic!("no peak fork rates in the summary:\n{}", t.stderr));
    assert!(
        peaks.contains(&format!("by executable that forked {script} ")),
        "{peaks}"
    );
    assert!(peaks.contains("its children ran /bin/false "), "{peaks}");
}
