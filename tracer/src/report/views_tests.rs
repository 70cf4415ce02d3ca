//! Tests of `--perfetto` and `--flamegraph` on hand-written JSON Lines streams.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::history::History;
use super::reader;
use super::walltime::rfc3339;
use super::{flamegraph, perfetto, tree};

const MS: u64 = 1_000_000;
/// ktime of `t = 0`: 1000 s after boot.
const BASE: u64 = 1_000_000_000_000;
/// Wall clock at ktime 0.
const WALL0: i128 = 1_795_000_000_000_000_000;

/// Writes records as `tracer watch -o` does; times in ms after [`BASE`].
struct S {
    host: &'static str,
    boot: &'static str,
    /// Wall clock at ktime 0 of this boot.
    wall0: i128,
    seq: u64,
    lines: Vec<String>,
    /// `proc_id` of each pid's current process.
    ids: HashMap<u32, String>,
}

impl S {
    fn new() -> S {
        S::on("web-1", "boot-aaaaaaaa", WALL0)
    }

    fn on(host: &'static str, boot: &'static str, wall0: i128) -> S {
        S {
            host,
            boot,
            wall0,
            seq: 0,
            lines: Vec::new(),
            ids: HashMap::new(),
        }
    }

    fn id(&self, pid: u32) -> String {
        self.ids
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| format!("{pid}-1"))
    }

    fn rec(&mut self, ty: &str, t_ms: u64, pid: u32, ppid: u32, comm: &str, extra: Value) {
        self.seq += 1;
        let k = BASE + t_ms * MS;
        let mut v = json!({
            "seq": self.seq, "type": ty, "ts": rfc3339(self.wall0 + i128::from(k)),
            "ktime_ns": k, "host": self.host, "boot_id": self.boot,
            "pid": pid, "tid": pid, "ppid": ppid, "proc_id": self.id(pid), "comm": comm,
            "uid": 0, "cgroup": "/system.slice/x.service", "cgroup_id": 7,
        });
        for (key, val) in extra.as_object().expect("object") {
            v[key] = val.clone();
        }
        self.lines.push(v.to_string());
    }

    fn process(&mut self, t: u64, pid: u32, ppid: u32, comm: &str, exe: Option<&str>, state: &str) {
        let extra = json!({"filename": exe, "argv": [comm, "--flag"], "state": state});
        self.rec("process", t, pid, ppid, comm, extra);
    }

    fn fork(&mut self, t: u64, pid: u32, ppid: u32, comm: &str) {
        let parent = self.id(ppid);
        self.ids
            .insert(pid, format!("{pid}-{}", (BASE + t * MS) / 10_000_000));
        let extra = json!({"parent_proc_id": parent, "thread": false, "clone_flags": 17});
        self.rec("fork", t, pid, ppid, comm, extra);
    }

    fn exec(&mut self, t: u64, pid: u32, ppid: u32, file: &str, argv: &[&str]) {
        let comm = file.rsplit('/').next().unwrap_or(file).to_string();
        let extra =
            json!({"filename": file, "argv": argv, "argv_truncated": false, "old_tid": null});
        self.rec("exec", t, pid, ppid, &comm, extra);
    }

    fn exit(&mut self, t: u64, pid: u32, ppid: u32, comm: &str, code: Option<u8>, sig: Option<u8>) {
        let extra = json!({"exit_code": code, "signal": sig, "signal_name": null,
            "core_dumped": false, "lifetime_ns": null, "thread": false});
        self.rec("exit", t, pid, ppid, comm, extra);
    }

    fn reap(&mut self, t: u64, pid: u32, ppid: u32, comm: &str, zombie_ns: Option<u64>) {
        let extra = json!({"zombie_ns": zombie_ns, "reaper_pid": ppid, "reaper_comm": "make",
            "autoreap": false});
        self.rec("reap", t, pid, ppid, comm, extra);
    }

    fn history(&self) -> History {
        S::history_of(&[self])
    }

    fn history_of(streams: &[&S]) -> History {
        let texts: Vec<(String, String)> = streams
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("in{i}.jsonl"), s.lines.join("\n") + "\n"))
            .collect();
        let inputs: Vec<(&str, &[u8])> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_bytes()))
            .collect();
        let r = reader::read_bytes(&inputs).expect("readable");
        assert_eq!(r.bad_total(), 0, "{:?}", r.first_bad);
        History::build(&r)
    }
}

/// init (1) with a zombie left from before tracing (7) and bash (10), which
/// becomes make and forks: true (100), cc (101) which runs cc1 (102), sleep (103,
/// alive at the end), a child that exits 1 and is never reaped (104), and one whose
/// exit record was lost (105). Failures, an alert and lost events on the way; the
/// recording ends at 100 ms.
fn build() -> S {
    let mut s = S::new();
    s.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    s.process(0, 7, 1, "defunct", None, "Z");
    s.fork(1, 10, 1, "init");
    s.exec(2, 10, 1, "/bin/bash", &["bash", "-c", "make"]);
    s.exec(3, 10, 1, "/usr/bin/make", &["make", "-j2"]);
    s.fork(10, 100, 10, "make");
    s.exec(10, 100, 10, "/bin/true", &["true"]);
    s.exit(12, 100, 10, "true", Some(0), None);
    s.reap(15, 100, 10, "true", Some(3 * MS));
    s.fork(20, 101, 10, "make");
    s.exec(20, 101, 10, "/usr/bin/cc", &["cc", "-c", "x.c"]);
    s.fork(21, 102, 101, "cc");
    s.exec(21, 102, 101, "/usr/lib/cc1", &["cc1", "x.c"]);
    s.exit(30, 102, 101, "cc1", Some(0), None);
    s.reap(31, 102, 101, "cc1", Some(MS));
    s.exit(40, 101, 10, "cc", None, Some(9));
    s.reap(41, 101, 10, "cc", Some(MS));
    s.fork(50, 103, 10, "make");
    s.exec(50, 103, 10, "/bin/sleep", &["sleep", "9"]);
    s.fork(51, 104, 10, "make");
    s.exit(52, 104, 10, "make", Some(1), None);
    s.fork(55, 105, 10, "make");
    s.reap(70, 105, 10, "make", Some(5 * MS));
    s.reap(60, 7, 1, "defunct", None);
    s.rec(
        "fork_failed",
        61,
        10,
        1,
        "make",
        json!({"errno": 11, "error": "EAGAIN"}),
    );
    s.rec(
        "exec_failed",
        62,
        10,
        1,
        "make",
        json!({"filename": "/nope", "errno": 2, "error": "ENOENT"}),
    );
    s.rec(
        "alert",
        63,
        10,
        1,
        "make",
        json!({"alert": "fork_storm", "message": "fork storm: 10 make"}),
    );
    s.seq += 1;
    let k = BASE + 64 * MS;
    s.lines.push(
        json!({"seq": s.seq, "type": "lost", "ts": rfc3339(WALL0 + i128::from(k)),
            "ktime_ns": k, "host": s.host, "boot_id": s.boot, "kind": "exit", "count": 3})
        .to_string(),
    );
    s.process(100, 1, 0, "init", Some("/sbin/init"), "S");
    s
}

fn perfetto_json(h: &History, roots: &[usize]) -> (Value, u64) {
    let mut out = Vec::new();
    let n = perfetto::write(&mut out, h, roots).expect("written");
    let v: Value = serde_json::from_slice(&out).expect("the file is JSON");
    (v, n)
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"].as_array().expect("traceEvents")
}

/// Track names by tid, and each tid's group.
fn thread_names(v: &Value) -> Vec<(u64, u64, String)> {
    let mut out: Vec<(u64, u64, String)> = events(v)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The tid of the track whose name ends with `PID COMM...`.
fn tid_of(v: &Value, pid_comm: &str) -> u64 {
    let found: Vec<u64> = thread_names(v)
        .into_iter()
        .filter(|(_, _, n)| n.trim_start_matches("· ").starts_with(pid_comm))
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(found.len(), 1, "tracks named {pid_comm}: {found:?}");
    found[0]
}

fn on_track<'a>(v: &'a Value, tid: u64, ph: &str, name: &str) -> Vec<&'a Value> {
    events(v)
        .iter()
        .filter(|e| e["tid"] == tid && e["ph"] == ph && e["name"] == name)
        .collect()
}

/// `ts` or `dur` back in ns.
fn ns(x: &Value) -> u64 {
    (x.as_f64().expect("a number") * 1000.0).round() as u64
}

#[test]
fn perfetto_file_has_the_documented_top_level() {
    let h = build().history();
    let (v, n) = perfetto_json(&h, &h.roots());
    assert_eq!(v["displayTimeUnit"], "ms");
    assert_eq!(n, events(&v).len() as u64);
    assert_eq!(v["metadata"]["time_base"], "wall");
    assert_eq!(
        v["metadata"]["time_zero"],
        rfc3339(WALL0 + i128::from(BASE))
    );
    assert_eq!(v["metadata"]["processes"], 9);
    assert_eq!(v["metadata"]["tracer_perfetto_version"], 1);
    for e in events(&v) {
        let ph = e["ph"].as_str().expect("ph");
        assert!(["M", "X", "i", "s", "f"].contains(&ph), "{e}");
        assert!(e["pid"].as_u64().is_some(), "{e}");
        if ph != "M" {
            assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
        }
    }
    // One group: init, the only root.
    let groups: Vec<&Value> = events(&v)
        .iter()
        .filter(|e| e["name"] == "process_name")
        .collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["args"]["name"], "1 init (/sbin/init)");
    assert_eq!(groups[0]["pid"], 1);
    let sort: Vec<&Value> = events(&v)
        .iter()
        .filter(|e| e["name"] == "process_sort_index")
        .collect();
    assert_eq!(sort[0]["args"]["sort_index"], 1);
}

#[test]
fn perfetto_tracks_are_nested_in_tree_order() {
    let h = build().history();
    let (v, _) = perfetto_json(&h, &h.roots());
    let names: Vec<String> = thread_names(&v).into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(
        names,
        [
            "1 init (/sbin/init)",
            "· 7 defunct",
            "· 10 make (/usr/bin/make)",
            "· · 100 true (/bin/true)",
            "· · 101 cc (/usr/bin/cc)",
            "· · · 102 cc1 (/usr/lib/cc1)",
            "· · 103 sleep (/bin/sleep)",
            "· · 104 make (/usr/bin/make)",
            "· · 105 make (/usr/bin/make)",
        ]
    );
    // Every track is in the group (pid 1), its tid is not the group's, and the
    // sort index follows the same order as the tids.
    let tracks = thread_names(&v);
    for (tid, pid, _) in &tracks {
        assert_eq!(*pid, 1);
        assert_ne!(*tid, *pid);
        let idx: Vec<&Value> = events(&v)
            .iter()
            .filter(|e| e["name"] == "thread_sort_index" && e["tid"] == *tid)
            .collect();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0]["args"]["sort_index"], *tid);
    }
    let tids: Vec<u64> = tracks.iter().map(|t| t.0).collect();
    assert_eq!(tids, (2..=10).collect::<Vec<u64>>());
}

#[test]
fn perfetto_running_and_zombie_slices() {
    let h = build().history();
    let (v, _) = perfetto_json(&h, &h.roots());
    /// (ts, dur) in ms.
    type Span = Option<(u64, u64)>;
    // (track, running, zombie)
    let want: [(&str, Span, Span); 9] = [
        ("1 init", Some((0, 100)), None),
        ("7 defunct", None, Some((0, 60))),
        ("10 make", Some((1, 99)), None),
        ("100 true", Some((10, 2)), Some((12, 3))),
        ("101 cc ", Some((20, 20)), Some((40, 1))),
        ("102 cc1", Some((21, 9)), Some((30, 1))),
        ("103 sleep", Some((50, 50)), None),
        ("104 make", Some((51, 1)), Some((52, 48))),
        // Its exit was lost: the recorded zombie time places it.
        ("105 make", Some((55, 10)), Some((65, 5))),
    ];
    for (track, running, zombie) in want {
        let tid = tid_of(&v, track);
        for (name, phase) in [("running", running), ("zombie", zombie)] {
            let slices = on_track(&v, tid, "X", name);
            let got: Vec<(u64, u64)> = slices
                .iter()
                .map(|e| (ns(&e["ts"]) / MS, ns(&e["dur"]) / MS))
                .collect();
            assert_eq!(got, phase.into_iter().collect::<Vec<_>>(), "{track} {name}");
        }
    }
    // The zombie slice is the recorded zombie time, to the ns.
    let t100 = tid_of(&v, "100 true");
    let z = on_track(&v, t100, "X", "zombie")[0];
    assert_eq!(ns(&z["dur"]), 3 * MS);
    assert_eq!(z["args"]["zombie_ns"], 3 * MS);
    assert_eq!(z["args"]["reaper_pid"], 10);
    assert_eq!(z["args"]["unreaped_at_end"], false);
    let r = on_track(&v, t100, "X", "running")[0];
    assert_eq!(r["cat"], "process");
    assert_eq!(r["args"]["pid"], 100);
    assert_eq!(r["args"]["parent_pid"], 10);
    assert_eq!(
        r["args"]["parent_proc_id"],
        h.procs[h.procs[h.roots()[0]].children[1]].id.to_string()
    );
    assert_eq!(r["args"]["ending"], "exit 0");
    assert_eq!(r["args"]["exit_code"], 0);
    assert_eq!(r["args"]["lifetime_ns"], 2 * MS);
    assert_eq!(r["args"]["chain"], json!(["true"]));
    assert_eq!(r["args"]["start_ktime_ns"], BASE + 10 * MS);
    // Killed, alive at the end, unreaped at the end, a zombie from the start.
    let r101 = on_track(&v, tid_of(&v, "101 cc "), "X", "running")[0];
    assert_eq!(r101["args"]["signal"], 9);
    assert_eq!(r101["args"]["ending"], "SIGKILL");
    let r103 = on_track(&v, tid_of(&v, "103 sleep"), "X", "running")[0];
    assert_eq!(r103["args"]["alive_at_end"], true);
    let z104 = on_track(&v, tid_of(&v, "104 make"), "X", "zombie")[0];
    assert_eq!(z104["args"]["unreaped_at_end"], true);
    assert_eq!(z104["args"]["zombie_ns"], Value::Null);
    let z7 = on_track(&v, tid_of(&v, "7 defunct"), "X", "zombie")[0];
    assert_eq!(z7["args"]["zombie_at_start"], true);
    assert_eq!(z7["args"]["exit_ktime_ns"], Value::Null);
}

#[test]
fn perfetto_execs_forks_failures_alerts_and_losses() {
    let h = build().history();
    let (v, _) = perfetto_json(&h, &h.roots());
    let t10 = tid_of(&v, "10 make");
    let execs = on_track(&v, t10, "i", "exec");
    assert_eq!(execs.len(), 2);
    assert_eq!(execs[0]["s"], "t");
    assert_eq!(ns(&execs[0]["ts"]), 2 * MS);
    assert_eq!(execs[0]["args"]["filename"], "/bin/bash");
    assert_eq!(execs[0]["args"]["argv"], json!(["bash", "-c", "make"]));
    assert_eq!(execs[1]["args"]["filename"], "/usr/bin/make");
    assert_eq!(ns(&execs[1]["ts"]), 3 * MS);
    let t102 = tid_of(&v, "102 cc1");
    assert_eq!(
        on_track(&v, t102, "i", "exec")[0]["args"]["argv"],
        json!(["cc1", "x.c"])
    );
    // Flows: from the parent's track at the fork to the child's.
    let t101 = tid_of(&v, "101 cc ");
    let starts = on_track(&v, t101, "s", "fork");
    assert_eq!(starts.len(), 1, "101 forked 102");
    assert_eq!(starts[0]["id"], t102);
    assert_eq!(ns(&starts[0]["ts"]), 21 * MS);
    let ends = on_track(&v, t102, "f", "fork");
    assert_eq!(ends.len(), 1);
    assert_eq!(
        (&ends[0]["id"], &ends[0]["bp"]),
        (&json!(t102), &json!("e"))
    );
    assert_eq!(ns(&ends[0]["ts"]), 21 * MS);
    // init's child 10 was forked; the zombie 7 and init were not.
    let flows = events(&v).iter().filter(|e| e["ph"] == "s").count();
    assert_eq!(flows, 7);
    // Failures and the alert on the culprit's track, lost events on the group.
    let ff = on_track(&v, t10, "i", "fork_failed");
    assert_eq!(ff[0]["args"]["errno"], 11);
    assert_eq!(ff[0]["args"]["error"], "EAGAIN");
    assert_eq!(ns(&ff[0]["ts"]), 61 * MS);
    let ef = on_track(&v, t10, "i", "exec_failed");
    assert_eq!(ef[0]["args"]["filename"], "/nope");
    let alert = on_track(&v, t10, "i", "alert: fork_storm");
    assert_eq!(alert[0]["args"]["message"], "fork storm: 10 make");
    let lost: Vec<&Value> = events(&v).iter().filter(|e| e["name"] == "lost").collect();
    assert_eq!(lost.len(), 1);
    assert_eq!((&lost[0]["s"], &lost[0]["pid"]), (&json!("p"), &json!(1)));
    assert_eq!(lost[0]["args"]["count"], 3);
}

#[test]
fn perfetto_subtree_and_several_hosts() {
    // Rooted at cc (101): cc and cc1 only, as their own group.
    let h = build().history();
    let sel = tree::Select {
        pids: vec![101],
        ..Default::default()
    };
    let (v, _) = perfetto_json(&h, &tree::roots(&h, &sel));
    let names: Vec<String> = thread_names(&v).into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(names, ["101 cc (/usr/bin/cc)", "· 102 cc1 (/usr/lib/cc1)"]);
    // The flow into the root comes from outside: left out; the one inside stays.
    assert_eq!(events(&v).iter().filter(|e| e["ph"] == "s").count(), 1);
    assert!(events(&v).iter().all(|e| e["name"] != "alert: fork_storm"));

    // Two hosts: one group each, placed by wall clock. Host b's ktime is far
    // off, but its first record is 500 ms after a's on the wall clock.
    let a = build();
    let mut b = S::on(
        "db-2",
        "boot-bbbbbbbb",
        WALL0 + 500 * i128::from(MS) + 7_000 * i128::from(MS),
    );
    b.process(0, 1, 0, "systemd", Some("/usr/lib/systemd/systemd"), "S");
    // Shift b's ktime down by 7 s: `rec` takes ms after BASE, so write it raw.
    b.lines.clear();
    let k = BASE - 7_000 * MS;
    b.lines.push(
        json!({"seq": 1, "type": "process", "ts": rfc3339(b.wall0 + i128::from(k)),
            "ktime_ns": k, "host": "db-2", "boot_id": "boot-bbbbbbbb", "pid": 1, "tid": 1,
            "ppid": 0, "proc_id": "1-1", "comm": "systemd", "uid": 0, "cgroup": "/",
            "cgroup_id": 1, "filename": "/usr/lib/systemd/systemd", "argv": ["systemd"],
            "state": "S"})
        .to_string(),
    );
    let h = S::history_of(&[&a, &b]);
    let (v, _) = perfetto_json(&h, &h.roots());
    assert_eq!(v["metadata"]["hosts"], "db-2, web-1");
    let groups: Vec<(u64, String)> = events(&v)
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                1,
                "db-2 (boot boot-bbb): 1 systemd (/usr/lib/systemd/systemd)".to_string()
            ),
            (2, "web-1 (boot boot-aaa): 1 init (/sbin/init)".to_string()),
        ]
    );
    let systemd = thread_names(&v)
        .into_iter()
        .find(|(_, pid, _)| *pid == 1)
        .expect("systemd's track")
        .0;
    let r = on_track(&v, systemd, "X", "running")[0];
    assert_eq!(ns(&r["ts"]), 500 * MS, "placed by wall clock");
    let init = tid_of(&v, "1 init");
    assert_eq!(ns(&on_track(&v, init, "X", "running")[0]["ts"]), 0);
}

#[test]
fn perfetto_deep_trees_stop_indenting() {
    let mut s = S::new();
    s.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    for i in 0..60u32 {
        let parent = if i == 0 { 1 } else { 1000 + i - 1 };
        s.fork(u64::from(i), 1000 + i, parent, "bomb");
    }
    let h = s.history();
    let (v, _) = perfetto_json(&h, &h.roots());
    let names = thread_names(&v);
    assert_eq!(names.len(), 61);
    let last = &names[60].2;
    assert_eq!(
        last,
        &format!(
            "{}(60) 1059 bomb (/sbin/init)",
            "· ".repeat(perfetto::MAX_INDENT)
        )
    );
}

// ---------------------------------------------------------------------------
// Flame graph

#[test]
fn folded_stacks_are_exec_chains_weighted_by_spawned_processes() {
    let h = build().history();
    let f = flamegraph::folded(&h, &h.roots());
    assert_eq!(
        f.lines,
        [
            "init;bash;make 1",
            "init;bash;make;cc 1",
            "init;bash;make;cc;cc1 1",
            "init;bash;make;make 2",
            "init;bash;make;sleep 1",
            "init;bash;make;true 1",
        ]
    );
    assert_eq!((f.processes, f.cut), (7, 0));
    // Rooted at a subtree: stacks start there.
    let sel = tree::Select {
        pids: vec![101],
        ..Default::default()
    };
    let f = flamegraph::folded(&h, &tree::roots(&h, &sel));
    assert_eq!(f.lines, ["cc 1", "cc;cc1 1"]);
}

#[test]
fn folded_frames_are_escaped_hosts_separated_and_deep_stacks_cut() {
    // A snapshot process that exec'd keeps what it started as; names with `;`
    // and control bytes stay one frame.
    let mut s = S::new();
    s.process(0, 5, 0, "sh", Some("/bin/sh"), "S");
    s.exec(1, 5, 0, "/usr/bin/python3", &["python3"]);
    s.fork(2, 6, 5, "a;b\u{1b}");
    s.fork(3, 7, 5, "python3");
    s.exec(3, 7, 5, "/bin/sh", &["sh"]);
    s.exec(4, 7, 5, "/usr/bin/env", &["env"]);
    let h = s.history();
    let f = flamegraph::folded(&h, &h.roots());
    assert_eq!(
        f.lines,
        ["sh;python3;a\\x3bb\\x1b 1", "sh;python3;sh;env 1"]
    );

    // Two hosts: a frame for each at the bottom.
    let mut a = S::new();
    a.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    a.fork(1, 2, 1, "init");
    let mut b = S::on("db-2", "boot-bbbbbbbb", WALL0);
    b.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    b.fork(1, 3, 1, "init");
    let h = S::history_of(&[&a, &b]);
    let f = flamegraph::folded(&h, &h.roots());
    assert_eq!(
        f.lines,
        [
            "host db-2 (boot boot-bbb);init;init 1",
            "host web-1 (boot boot-aaa);init;init 1"
        ]
    );

    // Deeper than MAX_FRAMES: the rest is counted in one `…` frame.
    let mut s = S::new();
    s.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    let n = flamegraph::MAX_FRAMES as u32 + 5;
    for i in 0..n {
        let parent = if i == 0 { 1 } else { 10_000 + i - 1 };
        s.fork(u64::from(i), 10_000 + i, parent, "bomb");
    }
    let h = s.history();
    let f = flamegraph::folded(&h, &h.roots());
    assert_eq!(f.processes, u64::from(n));
    // init + 999 bombs fit; the other 6 bombs are in `…`.
    assert_eq!(f.cut, 6);
    let last = f
        .lines
        .iter()
        .find(|l| l.ends_with(";… 6"))
        .expect("cut line");
    assert_eq!(last.split(';').count(), flamegraph::MAX_FRAMES + 1);
    assert_eq!(f.lines.len(), flamegraph::MAX_FRAMES);
}

/// Parses the SVG as XML (inferno writes an SVG DOCTYPE, which is allowed here).
fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(svg, opts).expect("well-formed XML")
}

#[test]
fn flame_graph_svg_is_well_formed_and_names_the_frames() {
    let h = build().history();
    let f = flamegraph::folded(&h, &h.roots());
    let mut svg = Vec::new();
    flamegraph::write(&mut svg, &f).expect("drawn");
    let svg = String::from_utf8(svg).expect("UTF-8");
    let doc = parse_svg(&svg);
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    for want in [
        "all (7 processes, 100%)",
        "init (7 processes, 100.00%)",
        "make (7 processes, 100.00%)",
        "make (2 processes, 28.57%)",
        "cc (2 processes, 28.57%)",
        "cc1 (1 processes, 14.29%)",
        "true (1 processes, 14.29%)",
    ] {
        assert!(titles.contains(&want), "no {want:?} in {titles:?}");
    }
    assert!(svg.contains(flamegraph::TITLE));
    // Frame names that need XML escaping stay well-formed.
    let mut s = S::new();
    s.process(0, 1, 0, "init", Some("/sbin/init"), "S");
    s.fork(1, 2, 1, "<a&b>\"'");
    let h = s.history();
    let mut svg = Vec::new();
    flamegraph::write(&mut svg, &flamegraph::folded(&h, &h.roots())).expect("drawn");
    let svg = String::from_utf8(svg).expect("UTF-8");
    let doc = parse_svg(&svg);
    assert!(
        doc.descendants()
            .any(|n| n.text() == Some("<a&b>\"' (1 processes, 100.00%)"))
    );
}
