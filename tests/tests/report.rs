//! Kernel tests of `tracer report`: record a real workload with `tracer watch`, then
//! check that the report's figures are what the workload did.
//!
//! Needs root and a built tracer, like the other kernel tests (`sudo cargo xtask test`).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;
use tracer_tests::{Ran, Trace, ancestors_of_self, run_traced, run_tracer};

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
    let ran = report(&all, file);
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("{} printed no JSON ({e}):\n{}", ran.command, ran.stdout))
}

/// The number at `path` (e.g. `["totals", "forked"]`).
fn num(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v:#}"))
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
        .map(|p| num(p, &["process", "pid"]))
        .collect();
    let want: BTreeSet<u64> = workers.iter().map(|&w| u64::from(w)).collect();
    assert_eq!(top2, want, "the two top forkers are the workers");
    for p in &by_parent[..2] {
        assert_eq!(num(p, &["children"]), 250);
        assert!(num(p, &["peak_per_sec"]) >= 1 && num(p, &["peak_per_sec"]) <= 250);
        assert_eq!(p["children_ran"][0]["name"], "/bin/true");
    }
    assert_eq!(num(&v, &["totals", "forked"]), process_forks(&t));
    assert!(num(&v, &["totals", "forked"]) >= 503);
    assert_eq!(v["top_executed"][0]["filename"], "/bin/true");
    assert_eq!(num(&v["top_executed"][0], &["execs"]), 500);
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
        (num(true_exits, &["exits"]), num(true_exits, &["failures"])),
        (500, 0)
    );
    assert_eq!(num(&v, &["input_problems", "bad_lines"]), 0);
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
    let folded: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("250*[true]  [exit 0, lived "))
        .collect();
    assert_eq!(folded.len(), 2, "each worker's 250 children fold:\n{out}");
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
    assert_eq!(num(&v, &["zombies", "count"]), reaps);
    assert!(reaps >= 5);
    assert!(num(&v, &["zombies", "p50_ns"]) > 0);
    assert!(num(&v, &["zombies", "max_ns"]) >= num(&v, &["zombies", "p50_ns"]));
    assert_eq!(num(&v, &["zombies", "unreaped_at_end"]), 0);
    // Exit codes 100..104 from the workload's own executable, under the workload: a
    // crash loop by the report's definition (5 failures, same parent, same program).
    let l = &v["crash_loops"][0];
    assert_eq!(num(l, &["failures"]), 5, "{v:#}");
    assert_eq!(num(l, &["parent", "pid"]), me);
    let exits = v["exits"].as_array().expect("exits");
    let e = exits
        .iter()
        .find(|e| num(e, &["failures"]) == 5)
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
        let z = num(n, &["zombie_ns"]);
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
    assert!(num(slow, &["max_ns"]) >= 300_000_000, "{slow:#}");
    // Whoever reaped the orphan (the tracer, a subreaper above it, or init) is named.
    let reaper = t.reap_of(child).u64("reaper_pid");
    let o = &v["zombies"]["orphan_reapers"][0];
    assert_eq!(o["reaper_pid"].as_u64(), reaper, "{:#}", v["zombies"]);
    assert_eq!(num(o, &["orphans"]), 1);
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
    assert_eq!(num(killed, &["failures"]), 1);
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
    let v: Value = serde_json::from_str(&ran.stdout).expect("JSON from stdin");
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
    let v: Value = serde_json::from_str(&ran.stdout).expect("JSON");
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
    assert_eq!(num(&v, &["input_problems", "by_reason", "truncated"]), 1);
    assert_eq!(num(&v, &["input_problems", "by_reason", "not_json"]), 1);
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
