//! Zombie truth on the real kernel, tracing the whole machine (no `-p`/`--`):
//! zombies reaped with no wait the probes see (by init after their parent died,
//! by a subreaper with waitid(P_ALL, NULL infop), by a subreaper that ignores
//! SIGCHLD) each get a reap record within 2 s of when the workload saw them gone
//! from /proc, from the reaper the kernel chose, and `tracer report` counts none
//! of them as still zombies. Children reaped one at a time by waitid(P_ALL, NULL
//! infop) get exact reaps (the wait's time). With the orphans, the middle
//! process's zombie build-up alert ends while traced, init is blamed for nothing,
//! and the watch summary counts the inferred reaps and their /proc look-ups.
//!
//! Needs root and a built tracer (`sudo cargo xtask test`). Records are matched by
//! proc_id (taken from each zombie's fork under the workload's middle process), so
//! other processes on the machine with reused pids do not count. No fixed sleeps:
//! every wait is on a record or a marker, with a deadline.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tracer_tests::{
    Proc, Rec, STEP_DEADLINE, complete_records, facts_in, poll_until, run_dir, run_tracer,
    workload_bin,
};

/// How far an inferred reap may be from the truth (the bound).
const TRUTH_SLACK_NS: u64 = 2_000_000_000;

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn nums(facts: &Value, key: &str) -> Vec<u64> {
    facts[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {facts}"))
        .iter()
        .map(|v| v.as_u64().expect("number"))
        .collect()
}

fn num(facts: &Value, key: &str) -> u64 {
    facts[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {facts}"))
}

enum Reaper {
    Init,
    Workload,
}

/// What the reap records must say.
#[derive(PartialEq)]
enum Expect {
    /// None is inferred, each no later than the workload saw it go.
    Exact,
    /// Exact or inferred, within the bound.
    Either,
}

/// Traces the machine while `tracer-workload MODE N` runs, waits until every
/// zombie it reports has a reap record, stops the tracer with SIGINT, and checks
/// each zombie's exit and reap and the report.
fn zombies_get_true_reaps(mode: &str, n: usize, reaper: Reaper, expect: Expect) {
    zombies_get_true_reaps_alerted(mode, n, reaper, expect, false);
}

/// With `alert`, zombie build-up alerts at `--zombie-max 10 --alert-quiet 1s`:
/// the workload's middle process raises one, and it ends (`alert_end`) while
/// traced; the adopter (init or the workload) raises none for the zombies it
/// adopted.
fn zombies_get_true_reaps_alerted(
    mode: &str,
    n: usize,
    reaper: Reaper,
    expect: Expect,
    alert: bool,
) {
    let dir = run_dir(mode);
    let out = dir.join("trace.jsonl");
    let mut args = vec!["watch", "--quiet", "-o", s(&out)];
    if alert {
        args.extend(["--zombie-max", "10", "--alert-quiet", "1s"]);
    }
    let mut tracer = Proc::tracer(&args);
    let started = poll_until(STEP_DEADLINE, || {
        std::fs::read(&out).is_ok_and(|b| b.contains(&b'\n')) || tracer.try_status().is_some()
    });
    assert!(
        started && tracer.try_status().is_none(),
        "no first record\n{}",
        tracer.describe()
    );

    let mut workload = vec![mode.to_string(), n.to_string()];
    if alert {
        // Held long enough (over the 1 s a count must last) to raise the alert.
        workload.push("2000".into());
    }
    let ran = Command::new(workload_bin())
        .args(&workload)
        .output()
        .expect("run the workload");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "workload {mode}: {}\n{stdout}\n{}",
        ran.status,
        String::from_utf8_lossy(&ran.stderr)
    );
    let facts = facts_in(&stdout).unwrap_or_else(|| panic!("no pids line: {stdout}"));
    let me = num(&facts, "self") as u32;
    let middle = num(&facts, "middle") as u32;
    let zombies: Vec<u32> = nums(&facts, "zombies").iter().map(|&p| p as u32).collect();
    let gone = nums(&facts, "gone_ns");
    let orphaned = num(&facts, "orphaned_ns");
    assert_eq!(zombies.len(), n);

    // Each zombie's proc_id, from its fork under the middle process. One pass
    // over the records: the whole machine's recording is large.
    let ids = |recs: &[Rec]| -> Vec<Option<String>> {
        let forks: std::collections::HashMap<u32, &str> = recs
            .iter()
            .filter(|r| r.ty() == "fork" && r.ppid() == Some(middle))
            .filter_map(|r| Some((r.pid()?, r.proc_id()?)))
            .collect();
        zombies
            .iter()
            .map(|z| forks.get(z).map(|s| s.to_string()))
            .collect()
    };
    let reaps_of = |recs: &[Rec]| -> std::collections::HashMap<String, usize> {
        let mut m = std::collections::HashMap::new();
        for r in recs.iter().filter(|r| r.ty() == "reap") {
            if let Some(id) = r.proc_id() {
                *m.entry(id.to_string()).or_default() += 1;
            }
        }
        m
    };
    let reaped = |reaps: &std::collections::HashMap<String, usize>, id: &Option<String>| {
        id.as_ref()
            .and_then(|id| reaps.get(id))
            .copied()
            .unwrap_or(0)
    };
    let mut recs = Vec::new();
    let all = poll_until(STEP_DEADLINE, || {
        recs = complete_records(&out);
        let reaps = reaps_of(&recs);
        ids(&recs).iter().all(|id| reaped(&reaps, id) > 0) || tracer.try_status().is_some()
    });
    let zombie_alert = |recs: &[Rec], ty: &str, pid: u32| {
        recs.iter()
            .find(|r| {
                r.ty() == ty && r.str("alert") == Some("zombie_buildup") && r.pid() == Some(pid)
            })
            .cloned()
    };
    let ended = !alert
        || poll_until(STEP_DEADLINE, || {
            recs = complete_records(&out);
            zombie_alert(&recs, "alert_end", middle).is_some() || tracer.try_status().is_some()
        });
    tracer.signal(libc::SIGINT);
    tracer.wait_exit_within(STEP_DEADLINE);
    let recs = complete_records(&out);
    let ids = ids(&recs);
    let reaps = reaps_of(&recs);
    let missing: Vec<u32> = zombies
        .iter()
        .zip(&ids)
        .filter(|(_, id)| reaped(&reaps, id) == 0)
        .map(|(&z, _)| z)
        .collect();
    assert!(
        all && missing.is_empty(),
        "{} of {n} zombies have no reap in {} (first: {:?})\n{}",
        missing.len(),
        out.display(),
        &missing[..missing.len().min(10)],
        tracer.describe()
    );

    let want_reaper = match reaper {
        Reaper::Init => 1,
        Reaper::Workload => me,
    };
    if alert {
        let raised = zombie_alert(&recs, "alert", middle);
        let end = zombie_alert(&recs, "alert_end", middle);
        assert!(
            ended && raised.is_some() && end.is_some(),
            "middle {middle} holding {n} zombies: alert {raised:?}, alert_end {end:?}\n{}",
            tracer.describe()
        );
        let (raised, end) = (raised.expect("alert"), end.expect("alert_end"));
        assert!(raised.seq() < end.seq(), "{raised:?} then {end:?}");
        assert!(
            raised.figure("zombies").is_some_and(|z| z > 10),
            "{raised:?}"
        );
        // The adopted zombies count for nobody: the adopter raises nothing.
        assert!(
            zombie_alert(&recs, "alert", want_reaper).is_none(),
            "the adopter {want_reaper} was blamed for zombies it adopted"
        );
    }
    let mut inferred_count = 0;
    let mut ends = std::collections::HashMap::<(&str, &str), Vec<&Rec>>::new();
    for r in recs
        .iter()
        .filter(|r| matches!(r.ty(), "exit" | "reap") && !r.thread())
    {
        if let Some(id) = r.proc_id() {
            ends.entry((r.ty(), id)).or_default().push(r);
        }
    }
    for ((&z, id), &gone_ns) in zombies.iter().zip(&ids).zip(&gone) {
        let id = id.as_deref().unwrap_or("");
        let of = |ty: &str| ends.get(&(ty, id)).cloned().unwrap_or_default();
        let (exits, reaps) = (of("exit"), of("reap"));
        assert_eq!(exits.len(), 1, "zombie {z}: exits {exits:?}");
        assert_eq!(reaps.len(), 1, "zombie {z}: reaps {reaps:?}");
        let (exit, reap) = (exits[0], reaps[0]);
        let t = reap.u64("ktime_ns").expect("ktime_ns");
        let exited = exit.u64("ktime_ns").expect("ktime_ns");
        assert!(
            t >= exited && t >= orphaned && t <= gone_ns + TRUTH_SLACK_NS,
            "zombie {z}: reaped at {t}, exited {exited}, orphaned {orphaned}, seen gone {gone_ns}: {reap:?}"
        );
        assert_eq!(
            reap.u64("reaper_pid"),
            Some(u64::from(want_reaper)),
            "zombie {z}: reaper: {reap:?}"
        );
        if expect == Expect::Exact {
            assert!(
                reap.bool("inferred").is_none() && t <= gone_ns,
                "zombie {z}: not exact (reaped at {t}, its wait returned by {gone_ns}): {reap:?}"
            );
        }
        if reap.bool("inferred") == Some(true) {
            inferred_count += 1;
            let before = reap.u64("reaped_before_ns").expect("reaped_before_ns");
            let after = reap.u64("reaped_after_ns").expect("reaped_after_ns");
            assert!(
                after >= exited && after <= before && before == t,
                "{reap:?}"
            );
            assert_eq!(reap.u64("zombie_ns"), Some(t - exited), "{reap:?}");
        }
    }
    // The watch summary says how many reaps were inferred and what they cost.
    let summary = tracer.stderr();
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix("tracer: reaps inferred from /proc: "));
    if inferred_count > 0 {
        let line = line.unwrap_or_else(|| panic!("no inferred-reaps line:\n{summary}"));
        let (count, rest) = line.split_once(" (").expect("count (look-ups");
        let count: u64 = count.replace(',', "").parse().expect("a count");
        let lookups: u64 = rest
            .split_once(' ')
            .and_then(|(l, _)| l.replace(',', "").parse().ok())
            .expect("look-ups");
        // Machine-wide: other processes' reaps may be inferred too, never fewer.
        assert!(
            count >= inferred_count && lookups >= count,
            "summary {line:?}, {inferred_count} of ours inferred"
        );
    }

    // The report: none of ours among the still zombies, and it counts exactly the
    // processes of the recording that exited (or were zombies at start-up) with no
    // reap; it says how many reaps were inferred.
    let rep = run_tracer(&["report".as_ref(), out.as_os_str()], None).ok();
    let still = rep
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("still zombies at the end: "))
        .unwrap_or_else(|| panic!("no still-zombies line:\n{}", rep.stdout));
    let still: u64 = still.replace(',', "").parse().expect("a count");
    let mut ended = std::collections::BTreeMap::<&str, (bool, bool)>::new();
    for r in &recs {
        let Some(id) = r.proc_id() else { continue };
        let e = ended.entry(id).or_default();
        match r.ty() {
            "exit" if !r.thread() => e.0 = true,
            "process" if r.str("state") == Some("Z") => e.0 = true,
            "reap" => e.1 = true,
            _ => {}
        }
    }
    let unreaped: Vec<&&str> = ended
        .iter()
        .filter(|(_, (exit, reap))| *exit && !*reap)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        still,
        unreaped.len() as u64,
        "report: {still} still zombies, the recording has {unreaped:?}\n{}",
        rep.stdout
    );
    if inferred_count > 0 {
        assert!(
            rep.stdout.contains(" inferred from /proc)"),
            "the report does not say reaps were inferred:\n{}",
            rep.stdout
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether pid 1's reaps are inferred or exact depends on pid 1: an init whose wait
/// the tracer cannot see (this sandbox's, in another pid namespace) leaves them to
/// /proc; the test VM's busybox init reaps with wait4, which both hook paths show.
/// Either way each reap must name pid 1 and fall within its bounds.
#[test]
fn orphaned_zombies_adopted_by_init_get_their_reaps() {
    zombies_get_true_reaps_alerted(
        "orphan-zombies",
        1000,
        Reaper::Init,
        Expect::Either,
        true,
    );
}

/// 20 zombies adopted at once: the first wait has 20 it could collect, so which
/// one went is for /proc to tell (or a timely free).
#[test]
fn a_subreaper_reaping_with_a_null_infop_gets_its_reaps() {
    zombies_get_true_reaps(
        "subreaper-null-waitid",
        20,
        Reaper::Workload,
        Expect::Either,
    );
}

/// Children that die one at a time, each collected by waitid(P_ALL, NULL infop)
/// before the next exits: each wait had one zombie to take, so its reap is exact
/// (the wait's own time), none inferred.
#[test]
fn a_null_infop_wait_with_one_zombie_child_reaps_it_exactly() {
    zombies_get_true_reaps(
        "subreaper-null-waitid-serial",
        20,
        Reaper::Workload,
        Expect::Exact,
    );
}

#[test]
fn a_subreaper_ignoring_sigchld_releases_its_adopted_zombies() {
    zombies_get_true_reaps(
        "subreaper-ignores-sigchld",
        20,
        Reaper::Workload,
        Expect::Either,
    );
}
