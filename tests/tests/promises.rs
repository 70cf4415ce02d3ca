//! Kernel tests of what README.md and docs/events.md promise and no other test
//! checks: `--no-alerts`, real cgroup paths and ids, a fork storm spread over a
//! cgroup, `ts` against the wall clock, the start-up snapshot (zombies, kernel
//! threads, deleted executables), failed and unusual execs, core dumps, the
//! summary's kernel counters, and JSON Lines on stdout.
//!
//! Needs root and a built tracer, like tests/tests/kernel.rs.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tracer_tests::{
    Proc, Rec, STEP_DEADLINE, Trace, complete_records, ensure, ensure_eq, parse_records,
    poll_until, run_dir, run_traced, run_traced_within, run_tracer, summary_in,
};

const S: u64 = 1_000_000_000;

// ---------------------------------------------------------------------------
// Helpers

/// The cgroup2 mount point, from /proc/self/mountinfo (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid machine).
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2"))
                .then(|| left.split(' ').nth(4).map(PathBuf::from))
                .flatten()
        })
        .expect(
            "the kernel tests need cgroup v2 mounted (tracer's `cgroup` field is a cgroup2 path)",
        )
}

/// A cgroup v2 directory the test made; dropping it kills what is left in it and
/// removes it.
struct TestCgroup {
    dir: PathBuf,
    /// Its path as `/proc/PID/cgroup` shows it (relative to the mount).
    path: String,
}

impl TestCgroup {
    fn create(label: &str) -> TestCgroup {
        let name = format!("tracer-test-{label}-{}", std::process::id());
        let dir = cgroup2_mount().join(&name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup {
            dir,
            path: format!("/{name}"),
        }
    }

    fn procs_file(&self) -> String {
        self.dir
            .join("cgroup.procs")
            .to_str()
            .expect("UTF-8")
            .to_string()
    }

    /// The cgroup id: the inode number of its directory (what
    /// bpf_get_current_cgroup_id returns, kernfs_node id on 64-bit).
    fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dir).expect("stat cgroup").ino()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        // rmdir fails with EBUSY until the killed tasks are released.
        let gone = poll_until(STEP_DEADLINE, || std::fs::remove_dir(&self.dir).is_ok());
        if !gone {
            eprintln!("cannot remove the test cgroup {}", self.dir.display());
        }
    }
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time
/// (`2026-11-22T04:13:22.123456789Z`, as `ts` is written).
fn ts_ns(ts: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = ts.get(20..ts.len() - 1)?;
    let nanos: u64 = format!("{frac:0<9}").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs as u64 * S + nanos)
}

/// Counts per kind from the summary's `the kernel saw (...): fork 3, exec 3` line.
fn kernel_saw(stderr: &str) -> Option<BTreeMap<String, u64>> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tracer: the kernel saw"))?;
    let list = line.split_once("): ")?.1;
    list.split(", ")
        .map(|item| {
            let (k, n) = item.rsplit_once(' ')?;
            Some((k.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// `tracer watch -o FILE --quiet --duration DUR [extra]` over the whole machine,
/// run to its end; the checked trace.
fn whole_machine(label: &str, dur: &str, extra: &[&str]) -> Trace {
    let dir = run_dir(label);
    let out = dir.join("all.jsonl");
    let head = ["watch", "--quiet", "--duration", dur, "-o"];
    let mut args: Vec<&OsStr> = head.iter().map(OsStr::new).collect();
    args.push(out.as_os_str());
    args.extend(extra.iter().map(OsStr::new));
    let mut run = Proc::tracer(&args);
    let status = run.wait_within(STEP_DEADLINE);
    ensure_ok(&run, status.success());
    let content = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", out.display(), run.describe()));
    Trace::from_run(&run, &content, &out, Value::Null, &dir)
}

fn ensure_ok(run: &Proc, ok: bool) {
    if !ok {
        panic!("tracer failed\n{}", run.describe());
    }
}

// ---------------------------------------------------------------------------
// Alerts

/// A fork storm the default rules would alert on, with and without
/// `--no-alerts`: the control run raises `fork_storm`, the other run raises none
/// (no record, no stderr line) and says so in its `meta`.
#[test]
fn no_alerts_raises_none_end_to_end() {
    let storm = ["fork-storm", "3", "100000", "100"];
    // 5/s: an emulated VM (`cargo xtask test --kernel`) on a loaded host forks
    // about 40/s.
    let flags = ["--storm-rate", "5", "--storm-for", "1s"];
    let control = run_traced_within(&storm, &flags, Duration::from_secs(120));
    control.check_workload(0);
    let me = control.workload_pid();
    let children = control.fact("children").as_u64().unwrap_or(0);
    let storm_ms = control.fact("storm_ms").as_u64().unwrap_or(0);
    ensure!(
        control,
        [me],
        children * 1000 / storm_ms.max(1) > 20,
        "the workload forked only {children} children in {storm_ms} ms: too slow to test a 5/s threshold"
    );
    let a = control.one_alert("fork_storm", false, &[me]);
    ensure_eq!(
        control,
        [me],
        a.pid(),
        Some(me),
        "culprit of the control run"
    );

    let mut quiet_flags = flags.to_vec();
    quiet_flags.push("--no-alerts");
    let t = run_traced_within(&storm, &quiet_flags, Duration::from_secs(120));
    t.check_workload(0);
    let me = t.workload_pid();
    let children = t.fact("children").as_u64().unwrap_or(0);
    ensure!(
        t,
        [me],
        t.find("fork", |r| r.ppid() == Some(me)).len() > 20,
        "the storm was recorded ({children} children forked)"
    );
    let alerts: Vec<&Rec> = t
        .records
        .iter()
        .filter(|r| r.ty().starts_with("alert"))
        .collect();
    ensure!(t, [me], alerts.is_empty(), "--no-alerts raised {alerts:?}");
    ensure!(
        t,
        [me],
        !t.stderr.contains("ALERT") && !t.stderr.contains("fork storm"),
        // (stderr carries alerts once --quiet no longer hides them; issue 14)
        "--no-alerts printed an alert on stderr"
    );
    let meta = &t.records[0];
    ensure!(
        t,
        [me],
        meta.ty() == "meta" && meta.get("options")["alerts"].is_null(),
        "meta options.alerts must be null with --no-alerts: {meta}"
    );
}

/// Twenty processes in one cgroup each fork at most 40 children a second (under
/// the 50/s per-parent threshold), together several hundred (a hundred in an
/// emulated VM): one `fork_storm` alert of scope `cgroup` naming the cgroup, none
/// of scope `process`.
#[test]
fn fork_storm_spread_over_a_cgroup() {
    let cg = TestCgroup::create("storm");
    let procs = cg.procs_file();
    let t = run_traced_within(
        &["cgroup-storm", &procs, "20", "5", "25"],
        &["--storm-rate", "50", "--alert-quiet", "30s"],
        Duration::from_secs(120),
    );
    t.check_workload(0);
    let me = t.workload_pid();
    let parents = t.pids("parents");
    let children = t.fact("children").as_u64().unwrap_or(0);
    ensure!(
        t,
        [me],
        children / 5 > 75,
        "the cgroup forked only {children} children in 5 s: too few to test a 50/s threshold"
    );
    let a = t.one_alert("fork_storm", false, &[me]);
    ensure_eq!(t, [me], a.str("scope"), Some("cgroup"), "scope: {a}");
    ensure_eq!(
        t,
        [me],
        a.str("cgroup"),
        Some(cg.path.as_str()),
        "cgroup of the alert"
    );
    ensure_eq!(
        t,
        [me],
        a.u64("cgroup_id"),
        Some(cg.id()),
        "cgroup_id of the alert"
    );
    ensure!(
        t,
        [me],
        a.pid().is_some_and(|p| parents.contains(&p)),
        "the culprit is one of the storming parents {parents:?}: {a}"
    );
    ensure!(
        t,
        [me],
        a.figure("rate_per_s").is_some_and(|r| r > 50),
        "rate above the threshold: {a}"
    );
    ensure!(
        t,
        [me],
        a.str("message").is_some_and(|m| m.contains(&cg.path[1..])),
        "the message names the cgroup: {a}"
    );
}

// ---------------------------------------------------------------------------
// Process fields and clocks

/// The workload moves itself into a new cgroup v2 and forks: its records and its
/// child's name that cgroup and its id (the directory's inode).
#[test]
fn records_name_a_real_cgroup() {
    let cg = TestCgroup::create("path");
    let t = run_traced(&["join-fork", &cg.procs_file()], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    for r in t.records_of(child) {
        ensure_eq!(
            t,
            [me, child],
            r.str("cgroup"),
            Some(cg.path.as_str()),
            "cgroup of {r}"
        );
        ensure_eq!(
            t,
            [me, child],
            r.u64("cgroup_id"),
            Some(cg.id()),
            "cgroup_id of {r}"
        );
    }
    ensure!(
        t,
        [child],
        t.records_of(child).len() >= 4,
        "fork, exec, exit and reap of the child"
    );
    // The workload started in the test's cgroup and ended in the new one.
    let exit = t.process_exit(me);
    ensure_eq!(
        t,
        [me],
        exit.str("cgroup"),
        Some(cg.path.as_str()),
        "cgroup at the workload's exit"
    );
    let fork = t.fork_of(me);
    ensure!(
        t,
        [me],
        fork.u64("cgroup_id") != Some(cg.id()),
        "the workload was forked before it moved"
    );
    ensure!(
        t,
        [me],
        fork.u64("cgroup_id") != Some(0),
        "cgroup_id of the workload's fork is 0 (unknown)"
    );
    ensure!(
        t,
        [me],
        !fork.is_null("cgroup"),
        "cgroup path of the workload's fork"
    );
}

/// `ts` is the wall clock: each of the child's records falls within a second of
/// the workload's own CLOCK_REALTIME readings around it, and `ts` and `ktime_ns`
/// differ by the same offset on every record.
#[test]
fn ts_agrees_with_the_wall_clock() {
    let t = run_traced(&["join-fork", "-"], &[]);
    t.check_workload(0);
    let child = t.pid("child");
    let before = t.fact("before_ns").as_u64().expect("before_ns");
    let after = t.fact("after_ns").as_u64().expect("after_ns");
    let recs = t.records_of(child);
    ensure!(
        t,
        [child],
        recs.len() >= 4,
        "fork, exec, exit and reap of the child"
    );
    for r in &recs {
        let ts = r
            .str("ts")
            .and_then(ts_ns)
            .unwrap_or_else(|| t.fail(&[child], format!("bad ts in {r}")));
        ensure!(
            t,
            [child],
            ts + S >= before && ts <= after + S,
            "ts {} of {} is not within 1 s of the wall clock {before}..{after} around it",
            ts,
            r.ty()
        );
    }
    let offsets: Vec<i128> = t
        .records
        .iter()
        .filter_map(|r| Some(ts_ns(r.str("ts")?)? as i128 - r.u64("ktime_ns")? as i128))
        .collect();
    let (lo, hi) = (offsets.iter().min().unwrap(), offsets.iter().max().unwrap());
    ensure!(
        t,
        [],
        hi - lo == 0,
        "ts - ktime_ns varies by {} ns in one run",
        hi - lo
    );
}

// ---------------------------------------------------------------------------
// The start-up snapshot and the kernel counters (whole machine)

/// A zombie, a kernel thread and a process whose executable was deleted, all
/// there before tracer starts, as `process` records.
#[test]
fn snapshot_shows_zombies_kernel_threads_and_deleted_executables() {
    let dir = run_dir("snapshot");
    // A zombie: a child of this test that exited and is not waited for yet.
    let mut zombie = Command::new("/bin/true").spawn().expect("spawn /bin/true");
    let zpid = zombie.id();
    let state = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(')')? + 2..].chars().next())
    };
    assert!(
        poll_until(STEP_DEADLINE, || state(zpid) == Some('Z')),
        "{zpid} not a zombie"
    );
    // A running copy of sleep whose file is then deleted.
    let copy = dir.join("tw-sleep-copy");
    std::fs::copy("/bin/sleep", &copy).expect("copy /bin/sleep");
    let mut deleted = Command::new(&copy)
        .arg("600")
        .spawn()
        .expect("spawn the copy");
    let dpid = deleted.id();
    assert!(
        poll_until(STEP_DEADLINE, || std::fs::read_link(format!(
            "/proc/{dpid}/exe"
        ))
        .is_ok_and(|p| p == copy)),
        "{dpid} did not exec {}",
        copy.display()
    );
    std::fs::remove_file(&copy).expect("delete the copy");

    let t = whole_machine("snapshot-run", "1s", &[]);
    let _ = deleted.kill();
    let _ = deleted.wait();
    let _ = zombie.wait();

    let z = t.one("process", &[zpid], "of the zombie", |r| {
        r.pid() == Some(zpid)
    });
    ensure_eq!(t, [zpid], z.str("state"), Some("Z"), "state of the zombie");
    ensure!(
        t,
        [zpid],
        z.argv().is_empty() && z.get("argv").is_array(),
        "argv of the zombie: {z}"
    );
    ensure!(
        t,
        [zpid],
        z.is_null("filename"),
        "filename of the zombie: {z}"
    );

    // kthreadd (pid 2) and its children are kernel threads.
    let kthreads = t.find("process", |r| r.pid() == Some(2) || r.ppid() == Some(2));
    ensure!(
        t,
        [2],
        kthreads.len() > 1,
        "no kernel threads in the snapshot"
    );
    for k in &kthreads {
        ensure!(
            t,
            [2],
            k.is_null("filename") && k.argv().is_empty(),
            "kernel thread {k}"
        );
    }

    let d = t.one("process", &[dpid], "of the deleted executable", |r| {
        r.pid() == Some(dpid)
    });
    let want = format!("{} (deleted)", copy.display());
    ensure_eq!(
        t,
        [dpid],
        d.str("filename"),
        Some(want.as_str()),
        "filename"
    );
    ensure_eq!(
        t,
        [dpid],
        d.argv(),
        vec![copy.to_str().unwrap(), "600"],
        "argv"
    );
    ensure_eq!(
        t,
        [dpid],
        d.str("state"),
        Some("S"),
        "state of a sleeping process"
    );
}

/// The summary's "the kernel saw" counts agree with the records of the same
/// run: on the whole machine, for each kind with one record per event, records
/// plus the events reported lost are what the kernel counted. A shell run while
/// tracing makes sure there are forks, execs, a failed exec and exits; SIGTERM
/// ends the run.
#[test]
fn kernel_counters_agree_with_the_records() {
    let dir = run_dir("counters");
    let out = dir.join("all.jsonl");
    let mut run = Proc::tracer(&[
        OsStr::new("watch"),
        OsStr::new("--quiet"),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    // The snapshot is written once the programs are attached.
    let started = poll_until(STEP_DEADLINE, || {
        complete_records(&out).iter().any(|r| r.ty() == "process")
    });
    assert!(
        started,
        "no snapshot in {}\n{}",
        out.display(),
        run.describe()
    );
    let sh = Command::new("/bin/sh")
        .args([
            "-c",
            "/bin/true; /nonexistent-tracer-test 2>/dev/null; /bin/true",
        ])
        .status()
        .expect("run /bin/sh");
    assert_eq!(sh.code(), Some(0), "the shell's last command is /bin/true");
    run.signal(libc::SIGTERM);
    let status = run.wait_within(STEP_DEADLINE);
    ensure_ok(&run, status.code() == Some(0));
    let content = std::fs::read_to_string(&out).expect("the recording");
    let t = Trace::from_run(&run, &content, &out, Value::Null, &dir);

    let saw = kernel_saw(&t.stderr)
        .unwrap_or_else(|| t.fail(&[], "no `the kernel saw` line in the summary"));
    let summary = summary_in(&t.stderr).unwrap_or_else(|| t.fail(&[], "no summary line"));
    let mut lost: BTreeMap<&str, u64> = BTreeMap::new();
    for r in t.find("lost", |_| true) {
        *lost.entry(r.str("kind").unwrap()).or_default() += r.u64("count").unwrap();
    }
    ensure_eq!(
        t,
        [],
        lost.values().sum::<u64>(),
        summary.lost,
        "lost events: records and summary"
    );
    for kind in ["fork", "exec", "exec_failed", "exit", "fork_failed"] {
        let records = t.find(kind, |_| true).len() as u64;
        ensure_eq!(
            t,
            [],
            saw.get(kind).copied().unwrap_or(0),
            records + lost.get(kind).copied().unwrap_or(0),
            "{kind}: the kernel saw vs {records} records + lost ({})",
            summary.line
        );
    }
    for kind in ["fork", "exec", "exec_failed", "exit"] {
        ensure!(
            t,
            [],
            saw.get(kind).is_some_and(|&n| n >= 1),
            "the shell's {kind} was not counted: {saw:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Execs and exits

/// EACCES and ENOEXEC `exec_failed` records, `execveat` relative to a directory
/// descriptor (`/dev/fd/N/NAME`, failed: the name passed), and `fexecve`
/// (`/dev/fd/N`).
#[test]
fn exec_failures_and_execveat_fexecve_file_names() {
    let dir = run_dir("exec-errors");
    let t = run_traced(&["exec-errors", dir.to_str().unwrap()], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let failed = |path: &str, err: &str, errno: i32| {
        let r = t.one("exec_failed", &[me], &format!("for {path}"), |r| {
            r.pid() == Some(me) && r.str("filename") == Some(path)
        });
        ensure_eq!(t, [me], r.str("error"), Some(err), "error of {r}");
        ensure_eq!(t, [me], r.u64("errno"), Some(errno as u64), "errno of {r}");
        ensure_eq!(t, [me], r.tid(), Some(me), "tid of {r}");
    };
    failed(t.fact("noexec").as_str().unwrap(), "EACCES", libc::EACCES);
    failed(
        t.fact("garbage").as_str().unwrap(),
        "ENOEXEC",
        libc::ENOEXEC,
    );
    failed("tw-no-such-program", "ENOENT", libc::ENOENT);

    let dirfd = t.fact("dirfd").as_u64().unwrap();
    let child = t.pid("execveat_child");
    let exec = t.one("exec", &[child], "of the execveat child", |r| {
        r.pid() == Some(child)
    });
    ensure_eq!(
        t,
        [child],
        exec.str("filename"),
        Some(format!("/dev/fd/{dirfd}/true").as_str()),
        "execveat filename"
    );
    ensure_eq!(
        t,
        [child],
        exec.str("comm"),
        Some("true"),
        "comm after execveat"
    );

    let filefd = t.fact("filefd").as_u64().unwrap();
    let child = t.pid("fexecve_child");
    let exec = t.one("exec", &[child], "of the fexecve child", |r| {
        r.pid() == Some(child)
    });
    ensure_eq!(
        t,
        [child],
        exec.str("filename"),
        Some(format!("/dev/fd/{filefd}").as_str()),
        "fexecve filename"
    );
    ensure_eq!(t, [child], exec.argv(), vec!["true"], "argv after fexecve");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Puts /proc/sys/kernel/core_pattern back as it was when dropped.
struct CorePattern(Option<String>);

impl Drop for CorePattern {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/sys/kernel/core_pattern", old);
        }
    }
}

/// A process killed by SIGSEGV that dumps core: `core_dumped: true`.
#[test]
fn core_dump_from_a_real_crash() {
    let dir = run_dir("crash");
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("core_pattern");
    // A pipe (systemd-coredump, apport) takes the dump; a relative file name
    // lands in the crashing process's directory, which the workload chooses. An
    // absolute path is somewhere the test does not own: use a relative one.
    let _restore = if pattern.starts_with('|') || !pattern.starts_with('/') {
        CorePattern(None)
    } else {
        std::fs::write("/proc/sys/kernel/core_pattern", "core").expect("set core_pattern");
        CorePattern(Some(pattern.clone()))
    };
    let t = run_traced(&["crash", dir.to_str().unwrap()], &[]);
    t.check_workload(0);
    let child = t.pid("child");
    ensure!(
        t,
        [child],
        t.fact("core_dumped") == &Value::Bool(true),
        "the kernel wrote no core (wait status without WCOREDUMP; core_pattern {pattern:?}): \
         cannot test core_dumped"
    );
    let exit = t.process_exit(child);
    ensure_eq!(
        t,
        [child],
        exit.u64("signal"),
        Some(libc::SIGSEGV as u64),
        "signal"
    );
    ensure_eq!(
        t,
        [child],
        exit.str("signal_name"),
        Some("SIGSEGV"),
        "signal_name"
    );
    ensure_eq!(
        t,
        [child],
        exit.bool("core_dumped"),
        Some(true),
        "core_dumped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Output

/// `--format jsonl` without `-o`, and `-o -`, write JSON Lines to stdout without
/// a `meta` record.
#[test]
fn stdout_json_lines_have_no_meta() {
    for flags in [&["--format", "jsonl"][..], &["-o", "-"][..]] {
        let mut args: Vec<&OsStr> = vec![OsStr::new("watch")];
        args.extend(flags.iter().map(OsStr::new));
        args.extend(["--", "/bin/sh", "-c", "/bin/true"].iter().map(OsStr::new));
        let ran = run_tracer(&args, None).ok();
        let recs = parse_records(&ran.stdout)
            .unwrap_or_else(|e| panic!("{flags:?}: stdout is not JSON Lines: {e}\n{}", ran.stdout));
        assert!(
            recs.iter().all(|r| r.ty() != "meta"),
            "{flags:?}: a meta record on stdout:\n{}",
            ran.stdout
        );
        assert!(
            recs.iter()
                .any(|r| r.ty() == "exec" && r.str("filename") == Some("/bin/true")),
            "{flags:?}: no exec of /bin/true:\n{}",
            ran.stdout
        );
        assert_eq!(
            recs.first().map(Rec::ty),
            Some("fork"),
            "{flags:?}: the first record is the fork of COMMAND"
        );
    }
}
