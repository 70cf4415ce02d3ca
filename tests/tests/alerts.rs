//! Kernel tests of the live alerts: the real tracer traces `tracer-workload` modes
//! that storm, leave zombies, crash-loop and hit RLIMIT_NPROC, and each test checks
//! the one alert the pattern must raise, naming the right process and figures.
//!
//! Needs root and a built tracer, like tests/tests/kernel.rs. Thresholds are
//! lowered by flags where a busy two-core machine could miss the default (the
//! fork-storm rate: 5/s against a workload forking at 40 per second in an
//! emulated VM on a loaded host, thousands on a quiet host) or where the default would make the test slow (zombie counts
//! and ages).

use std::time::Duration;

use serde_json::{Value, json};
use tracer_tests::{Rec, Trace, ensure, ensure_eq, run_traced, run_traced_within};

/// comm of the workload and of its children that did not exec.
const WORKLOAD_COMM: &str = "tracer-workload";
const S: u64 = 1_000_000_000;

/// A figure of an alert, or the test fails.
fn fig(t: &Trace, about: &[u32], r: &Rec, name: &str) -> u64 {
    r.figure(name)
        .unwrap_or_else(|| t.fail(about, format!("no figure {name:?} in {r}")))
}

/// The alert names process `pid` (as the culprit) with its proc_id.
fn check_culprit(t: &Trace, a: &Rec, pid: u32) {
    ensure_eq!(t, [pid], a.pid(), Some(pid), "culprit pid of {a}");
    ensure_eq!(t, [pid], a.tid(), Some(pid), "culprit tid of {a}");
    ensure_eq!(
        t,
        [pid],
        a.proc_id(),
        Some(t.proc_id_of(pid).as_str()),
        "culprit proc_id"
    );
}

/// The fork-storm threshold (`--storm-rate`) of the storm test, per second: an
/// emulated VM on a loaded host forks about 40 a second with the tracer on.
const STORM_RATE: u64 = 5;

#[test]
fn fork_storm_raises_one_alert_naming_the_parent() {
    // Forks for 5 s (at most 100,000: a quiet machine forks well over 6,000/s and
    // must not hit the cap before 5 s), then idles 3.5 s so that the episode, with
    // a 2 s quiet period, ends while still traced.
    let t = run_traced_within(
        &["fork-storm", "5", "100000", "3500"],
        // A twentieth of the default rate: on a loaded 2-core machine, and in an
        // emulated VM (`cargo xtask test --kernel`, where a fork costs ten times
        // more), the workload's rate dips now and then, and a dip below the
        // threshold restarts the 3 s.
        &[
            "--alert-quiet",
            "2s",
            "--storm-rate",
            &STORM_RATE.to_string(),
        ],
        Duration::from_secs(120),
    );
    t.check_workload(0);
    let me = t.workload_pid();
    let children = t.fact("children").as_u64().unwrap_or(0);
    let storm_ms = t.fact("storm_ms").as_u64().unwrap_or(0);
    // The workload must really have stormed, or the test proves nothing.
    ensure!(
        t,
        [me],
        children * 1000 / storm_ms.max(1) > 4 * STORM_RATE && storm_ms >= 4000,
        "the workload forked only {children} children in {storm_ms} ms: too slow to test a {STORM_RATE}/s threshold"
    );

    let a = t.one_alert("fork_storm", false, &[me]);
    check_culprit(&t, a, me);
    ensure_eq!(t, [me], a.str("comm"), Some(WORKLOAD_COMM), "culprit comm");
    ensure_eq!(t, [me], a.str("scope"), Some("process"), "scope");
    ensure!(
        t,
        [me],
        a.str("filename")
            .is_some_and(|f| f.ends_with("/tracer-workload")),
        "filename of the culprit: {a}"
    );
    ensure_eq!(
        t,
        [me],
        a.argv(),
        vec![a.argv()[0], "fork-storm", "5", "100000", "3500"],
        "argv of the culprit"
    );
    ensure!(
        t,
        [me],
        fig(&t, &[me], a, "rate_per_s") > STORM_RATE
            && fig(&t, &[me], a, "threshold_per_s") == STORM_RATE,
        "rate and threshold: {a}"
    );
    let for_ns = fig(&t, &[me], a, "for_ns");
    ensure!(
        t,
        [me],
        for_ns >= 3 * S,
        "for_ns {for_ns} below --storm-for 3s"
    );
    let counted = fig(&t, &[me], a, "children");
    ensure!(
        t,
        [me],
        counted >= 3 * STORM_RATE && counted <= children,
        "children {counted} (3 s above {STORM_RATE}/s, and at most the {children} forked)"
    );
    let top = &a.get("executables")[0];
    ensure!(
        t,
        [me],
        top["filename"]
            .as_str()
            .is_some_and(|f| f.ends_with("/tracer-workload"))
            && top["count"].as_u64().is_some_and(|c| c > 0),
        "the children ran the workload's image (they did not exec): {a}"
    );
    let msg = a.str("message").unwrap_or_default();
    ensure!(
        t,
        [me],
        msg.starts_with(&format!("fork storm: {me} {WORKLOAD_COMM} (")) && msg.contains(" forked "),
        "message {msg:?}"
    );
    ensure!(
        t,
        [me],
        a.ktime_ns() >= a.u64("since_ktime_ns").unwrap_or(u64::MAX) + 3 * S,
        "raised before the storm lasted 3 s: {a}"
    );

    // The quiet period passed before the workload ended: one end, same culprit.
    let end = t.one_alert("fork_storm", true, &[me]);
    check_culprit(&t, end, me);
    ensure_eq!(
        t,
        [me],
        end.u64("since_ktime_ns"),
        a.u64("since_ktime_ns"),
        "the end belongs to the alert's episode"
    );
    ensure!(t, [me], end.seq() > a.seq(), "end before the alert");
    let total = fig(&t, &[me], end, "children");
    ensure!(
        t,
        [me],
        total >= counted && total <= children,
        "children of the episode {total}: at least the alert's {counted}, at most the {children} forked"
    );
    let duration = fig(&t, &[me], end, "duration_ns");
    ensure!(
        t,
        [me],
        (3 * S..=7 * S).contains(&duration),
        "episode duration {duration} ns for a 5 s storm"
    );
}

#[test]
fn zombie_buildup_over_the_maximum() {
    let t = run_traced(&["zombies", "60", "3000"], &["--zombie-max", "20"]);
    t.check_workload(0);
    let me = t.workload_pid();
    let a = t.one_alert("zombie_buildup", false, &[me]);
    check_culprit(&t, a, me);
    let zombies = fig(&t, &[me], a, "zombies");
    ensure!(
        t,
        [me],
        (21..=60).contains(&zombies),
        "zombies {zombies}: above --zombie-max 20, at most the 60 left"
    );
    ensure_eq!(t, [me], a.figure("max_zombies"), Some(20), "max_zombies");
    // Every child's reap comes after the alert: they were still zombies then.
    for c in t.pids("children") {
        ensure!(
            t,
            [me, c],
            t.reap_of(c).seq() > a.seq(),
            "child {c} reaped before the alert"
        );
    }
    let msg = a.str("message").unwrap_or_default();
    ensure!(
        t,
        [me],
        msg.starts_with(&format!("zombie build-up: {me} {WORKLOAD_COMM} ("))
            && msg.contains(&format!("holds {zombies} unreaped zombies")),
        "message {msg:?}"
    );
}

#[test]
fn zombie_buildup_by_age() {
    let t = run_traced(&["zombies", "1", "3500"], &["--zombie-age", "2s"]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pids("children")[0];
    let a = t.one_alert("zombie_buildup", false, &[me, child]);
    check_culprit(&t, a, me);
    ensure_eq!(t, [me], a.figure("zombies"), Some(1), "zombies");
    let age = fig(&t, &[me], a, "oldest_zombie_ns");
    let exit = t.process_exit(child);
    ensure!(
        t,
        [me, child],
        age > 2 * S && a.ktime_ns() >= exit.ktime_ns() + 2 * S,
        "age {age} ns: older than --zombie-age 2s, counted from the exit"
    );
    ensure!(
        t,
        [me, child],
        t.reap_of(child).seq() > a.seq(),
        "reaped before the alert"
    );
    let msg = a.str("message").unwrap_or_default();
    ensure!(
        t,
        [me],
        msg.contains("holds 1 unreaped zombie,") && msg.ends_with("(one older than 2.00s)"),
        "message {msg:?}"
    );
}

#[test]
fn crash_loop_names_exe_codes_and_restarter() {
    let t = run_traced(&["crash-loop"], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let children = t.pids("children");
    let last = *children.last().expect("five children");
    let a = t.one_alert("crash_loop", false, &children);
    // The culprit is the latest failure; the restarter is its parent.
    check_culprit(&t, a, last);
    ensure_eq!(t, children, a.str("comm"), Some("sh"), "culprit comm");
    ensure_eq!(
        t,
        children,
        a.str("filename"),
        Some("/bin/sh"),
        "executable"
    );
    ensure_eq!(t, children, a.argv(), vec!["sh", "-c", "exit 6"], "argv");
    ensure_eq!(
        t,
        children,
        a.str("scope"),
        Some("parent_executable"),
        "scope"
    );
    ensure_eq!(
        t,
        children,
        a.get("parent")["pid"],
        json!(me),
        "restarter pid"
    );
    ensure_eq!(
        t,
        children,
        a.get("parent")["proc_id"].as_str(),
        Some(t.proc_id_of(me).as_str()),
        "restarter proc_id"
    );
    let code = |c: u64| json!({"exit_code": c, "signal": null, "signal_name": null});
    ensure_eq!(
        t,
        children,
        a.get("exits"),
        &json!([
            code(3),
            code(4),
            {"exit_code": null, "signal": 9, "signal_name": "SIGKILL"},
            code(5),
            code(6)
        ]),
        "last exits"
    );
    ensure_eq!(t, children, a.figure("crashes"), Some(5), "crashes");
    // The median of the five lifetimes the exit records give.
    let mut lifetimes: Vec<u64> = children
        .iter()
        .map(|&c| t.process_exit(c).u64("lifetime_ns").unwrap_or(0))
        .collect();
    lifetimes.sort_unstable();
    ensure_eq!(
        t,
        children,
        a.figure("median_lifetime_ns"),
        Some(lifetimes[2]),
        "typical lifetime"
    );
    // Raised at the fifth failure, right after its exit record.
    ensure!(
        t,
        children,
        a.seq() > t.process_exit(last).seq(),
        "alert before the fifth exit"
    );
    let msg = a.str("message").unwrap_or_default();
    ensure!(
        t,
        children,
        msg.starts_with(&format!("crash loop: {last} sh (/bin/sh) "))
            && msg.contains("failed 5 times in ")
            && msg.contains(&format!("under {me} {WORKLOAD_COMM} (last: code 3, code 4, SIGKILL, code 5, code 6; typical lifetime ")),
        "message {msg:?}"
    );
}

#[test]
fn fork_failures_at_rlimit_nproc() {
    let t = run_traced(&["nproc-burst", "20"], &[]);
    t.check_workload(0);
    let limited = t.pid("limited");
    let failures = t.fact("failures").as_u64().unwrap_or(0);
    ensure_eq!(
        t,
        [limited],
        failures,
        20,
        "failed forks the workload counted"
    );

    // Every failed fork is a fork_failed record with EAGAIN, as uid 65534.
    let failed = t.find("fork_failed", |r| r.pid() == Some(limited));
    ensure_eq!(
        t,
        [limited],
        failed.len() as u64,
        failures,
        "fork_failed records"
    );
    for r in &failed {
        ensure_eq!(t, [limited], r.u64("errno"), Some(11), "errno of {r}");
        ensure_eq!(t, [limited], r.str("error"), Some("EAGAIN"), "error of {r}");
        ensure_eq!(t, [limited], r.u64("uid"), Some(65534), "uid of {r}");
    }

    let a = t.one_alert("fork_failures", false, &[limited]);
    check_culprit(&t, a, limited);
    ensure_eq!(t, [limited], a.u64("uid"), Some(65534), "culprit uid");
    ensure_eq!(t, [limited], a.str("scope"), Some("user_cgroup"), "scope");
    ensure_eq!(t, [limited], a.u64("errno"), Some(11), "errno");
    ensure_eq!(
        t,
        [limited],
        a.get("error"),
        &Value::from("EAGAIN"),
        "error"
    );
    ensure_eq!(
        t,
        [limited],
        a.figure("failures"),
        Some(10),
        "failures at the alert"
    );
    ensure_eq!(
        t,
        [limited],
        a.figure("processes"),
        Some(1),
        "processes failing"
    );
    // Raised by the tenth failure, once.
    ensure!(
        t,
        [limited],
        a.seq() > failed[9].seq() && a.seq() < failed[10].seq(),
        "the alert must follow the tenth fork_failed record"
    );
    let msg = a.str("message").unwrap_or_default();
    ensure!(
        t,
        [limited],
        msg.starts_with(&format!("fork failures: {limited} {WORKLOAD_COMM} ("))
            && msg.contains(" failed to fork 10 times in ")
            && msg.ends_with(": EAGAIN, fork limit reached (RLIMIT_NPROC or pids.max)"),
        "message {msg:?}"
    );
}

/// Accessors the tests need that `Rec` does not have.
trait RecExt {
    fn ktime_ns(&self) -> u64;
}

impl RecExt for Rec {
    fn ktime_ns(&self) -> u64 {
        self.u64("ktime_ns").expect("checked by the schema")
    }
}
