//! Fault tests: the real tracer under a fork bomb, starved of CPU, started twice,
//! with a tiny ring, killed with SIGKILL, and without BTF or tracefs (simulated in
//! a private mount namespace).
//!
//! Needs root and a built tracer, as the kernel tests (`sudo cargo xtask test`).
//! The fork bomb and the CPU starvation load the whole machine, so they run alone
//! (a write lock); the other tests may run side by side (read locks). Every
//! process a test starts is killed if the test fails (`Proc` kills its group when
//! dropped, the cgroup is emptied and removed when dropped). No assertion depends
//! on timing: deadlines only bound how long a step may take.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracer_tests::{
    BpfIds, PidsCgroup, Proc, Rec, STEP_DEADLINE, Scan, Trace, allowed_cpus, complete_records,
    facts_in, poll_until, reschedule, run_traced, scan_records, schedule, summary_in, tracer_bin,
    tracer_release_bin, vm_rss_kib, workload_bin,
};

// ---------------------------------------------------------------------------
// Helpers

/// Held for writing by the tests that load the whole machine, for reading by the
/// others.
static MACHINE: RwLock<()> = RwLock::new(());

fn alone() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|p| p.into_inner())
}

fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|p| p.into_inner())
}

/// A scratch directory, removed when dropped, whether the test passed or not (a
/// fork bomb's recording is hundreds of MB; failure messages quote what matters).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(label: &str) -> Scratch {
    Scratch(tracer_tests::run_dir(label))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Starts `tracer watch --quiet -o OUT EXTRA...` tracing the whole machine, set up
/// by `setup` (CPU, nice value), and waits until it has written a first record
/// (its programs are attached by then).
fn start_tracer(out: &Path, extra: &[&str], setup: impl FnOnce(&mut Command)) -> Proc {
    start_tracer_bin(&tracer_bin(), out, extra, setup)
}

fn start_tracer_bin(
    bin: &Path,
    out: &Path,
    extra: &[&str],
    setup: impl FnOnce(&mut Command),
) -> Proc {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the fault tests load eBPF programs and need root: `sudo cargo xtask test`"
    );
    let mut cmd = Command::new(bin);
    cmd.args(["watch", "--quiet", "-o", s(out)]).args(extra);
    setup(&mut cmd);
    let mut run = Proc::spawn(&mut cmd, false);
    wait_first_record(&mut run, out);
    run
}

fn wait_first_record(run: &mut Proc, out: &Path) {
    let ok = poll_until(STEP_DEADLINE, || {
        // The first line is complete once the file holds a newline.
        std::fs::read(out).is_ok_and(|b| b.contains(&b'\n')) || run.try_status().is_some()
    });
    if !ok || run.try_status().is_some() {
        panic!(
            "the tracer wrote no first record to {}\n{}",
            out.display(),
            run.describe()
        );
    }
}

/// Runs `tracer-workload exec-nonascii` (a child execs /bin/echo and is reaped) to
/// its end, started by this test process, and returns its facts.
fn fresh_workload() -> Value {
    let out = Command::new(workload_bin())
        .arg("exec-nonascii")
        .output()
        .expect("run the workload");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "workload exec-nonascii: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    facts_in(&stdout).unwrap_or_else(|| panic!("no pids line from the workload: {stdout}"))
}

fn fact(facts: &Value, key: &str) -> u32 {
    facts
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {key} in the workload's facts {facts}")) as u32
}

/// Checks that `recs` hold the whole life of a [`fresh_workload`] run and of its
/// child, each exactly once and in order: fork, exec, exit 0, reap (the workload
/// by this test process, the child by the workload). Records are matched by
/// proc_id, so records of earlier processes with the same pids (a fork bomb
/// wraps the pid space) do not count.
fn check_fresh_life(recs: &[Rec], facts: &Value) -> Result<(), String> {
    let me = fact(facts, "self");
    let child = fact(facts, "child");
    let execs: Vec<&Rec> = recs
        .iter()
        .filter(|r| {
            r.ty() == "exec" && r.pid() == Some(me) && r.argv().get(1) == Some(&"exec-nonascii")
        })
        .collect();
    let [exec] = execs[..] else {
        return Err(format!(
            "{} exec records of workload {me} (exec-nonascii), expected one",
            execs.len()
        ));
    };
    let me_id = exec.proc_id().expect("checked").to_string();
    let forks: Vec<&Rec> = recs
        .iter()
        .filter(|r| {
            r.ty() == "fork"
                && r.pid() == Some(child)
                && r.str("parent_proc_id") == Some(me_id.as_str())
        })
        .collect();
    let [child_fork] = forks[..] else {
        return Err(format!(
            "{} fork records of child {child} from {me_id}, expected one",
            forks.len()
        ));
    };
    let child_id = child_fork.proc_id().expect("checked").to_string();
    let life = |id: &str, pid: u32, exe: &str, reaper: u32| -> Result<(), String> {
        let mine: Vec<&Rec> = recs.iter().filter(|r| r.proc_id() == Some(id)).collect();
        let types: Vec<&str> = mine.iter().map(|r| r.ty()).collect();
        if types != ["fork", "exec", "exit", "reap"] {
            return Err(format!(
                "records of {pid} ({id}) are {types:?}, expected fork, exec, exit, reap in order"
            ));
        }
        if !mine[1].str("filename").is_some_and(|f| f.ends_with(exe)) {
            return Err(format!("exec of {pid} is not of {exe}: {}", mine[1]));
        }
        if mine[2].u64("exit_code") != Some(0) {
            return Err(format!("exit of {pid} is not code 0: {}", mine[2]));
        }
        if mine[3].u64("reaper_pid") != Some(u64::from(reaper)) {
            return Err(format!("{pid} not reaped by {reaper}: {}", mine[3]));
        }
        Ok(())
    };
    life(&me_id, me, "/tracer-workload", std::process::id())?;
    life(&child_id, child, "/bin/echo", me)
}

/// Stops a tracer with SIGINT and waits for it; it must exit with `want`: 0, or
/// 3 when events were lost (README, Exit status).
fn stop(run: &mut Proc, want: i32) {
    let code = stop_any(run);
    assert_eq!(
        code,
        Some(want),
        "tracer exit status after SIGINT\n{}",
        run.describe()
    );
}

/// Stops a tracer with SIGINT and gives its exit code, for a caller that knows
/// only later whether events were lost.
fn stop_any(run: &mut Proc) -> Option<i32> {
    run.signal(libc::SIGINT);
    run.wait_within(STEP_DEADLINE).code()
}

/// Checks the end-of-run summary on the tracer's stderr against what the output
/// holds: records in all and per type, and the lost events, which must equal the
/// sum of the `lost` records' counts.
fn check_summary(run: &Proc, scan: &Scan) {
    let stderr = run.stderr();
    let Some(sum) = summary_in(&stderr) else {
        panic!("no summary line on stderr\n{}", run.describe());
    };
    assert_eq!(
        (sum.records, &sum.per_type),
        (scan.records, &scan.per_type),
        "records in the summary {:?} vs the output",
        sum.line
    );
    assert_eq!(
        sum.lost, scan.lost,
        "events lost in the summary {:?} vs the sum of the lost records",
        sum.line
    );
}

/// Scans a finished run's output, keeping the records of `pids`, and checks it
/// (schema, seq, no contradictions, the summary).
fn scan_run(run: &Proc, out: &Path, pids: &[u32]) -> Scan {
    let scan = scan_records(out, |r| r.pid().is_some_and(|p| pids.contains(&p)))
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", out.display(), run.describe()));
    assert!(
        scan.inconsistent.is_empty(),
        "records that contradict each other in {}:\n{}\n{}",
        out.display(),
        scan.inconsistent.join("\n"),
        run.describe()
    );
    check_summary(run, &scan);
    scan
}

/// Lists our programs and maps among those loaded in the kernel, by id.
fn loaded_ids() -> (BTreeSet<u32>, BTreeSet<u32>, BTreeMap<u32, String>) {
    let mut names = BTreeMap::new();
    let progs = aya::programs::loaded_programs()
        // A program released while the list is walked gives an error: it is gone.
        .filter_map(Result::ok)
        .map(|p| {
            names.insert(p.id(), p.name_as_str().unwrap_or("").to_string());
            p.id()
        })
        .collect();
    let maps = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .map(|m| m.id())
        .collect();
    (progs, maps, names)
}

/// The BPF objects tracer `run` holds: all our programs (each loaded, by name),
/// and some maps.
fn our_bpf(run: &Proc) -> BpfIds {
    let ids = BpfIds::of(run.pid());
    let (progs, _, names) = loaded_ids();
    let ours: BTreeSet<String> = ids
        .progs
        .iter()
        .map(|id| {
            assert!(
                progs.contains(id),
                "program {id} held by the tracer is not loaded"
            );
            names[id].clone()
        })
        .collect();
    // The kernel keeps 15 bytes of a name (BPF_OBJ_NAME_LEN).
    // The fexit set or the syscall tracepoint set, whichever this kernel took,
    // and all of that one (tracer::hooks).
    let names = |path| -> BTreeSet<String> {
        tracer::loader::program_names(path)
            .map(|n| n[..n.len().min(15)].to_string())
            .collect()
    };
    let fexit = names(tracer::hooks::Path::Fexit);
    let want = if ours == fexit {
        fexit
    } else {
        names(tracer::hooks::Path::SyscallTracepoints)
    };
    assert_eq!(
        ours,
        want,
        "programs held by tracer {} (ids {:?})",
        run.pid(),
        ids.progs
    );
    assert!(
        !ids.maps.is_empty(),
        "tracer {} holds no BPF map",
        run.pid()
    );
    ids
}

/// Waits until none of `ids` is loaded in the kernel any more (the kernel frees
/// programs and maps asynchronously once their last reference is gone).
fn wait_released(ids: &BpfIds, what: &str) {
    let mut left = (BTreeSet::new(), BTreeSet::new());
    let gone = poll_until(STEP_DEADLINE, || {
        let (progs, maps, _) = loaded_ids();
        left = (
            ids.progs.intersection(&progs).copied().collect(),
            ids.maps.intersection(&maps).copied().collect(),
        );
        left.0.is_empty() && left.1.is_empty()
    });
    assert!(
        gone,
        "{what}: programs {:?} and maps {:?} still loaded after {STEP_DEADLINE:?}",
        left.0, left.1
    );
}

/// Runs `script` with `sh -c` as root in a private mount namespace (`unshare
/// --mount --propagation private`), `$0` the tracer, `$1` a scratch directory;
/// returns the run once ended, and its status.
fn in_mount_namespace(script: &str, dir: &Path) -> (Proc, ExitStatus) {
    let mut run = Proc::spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec", script])
            .arg(tracer_bin())
            .arg(dir),
        false,
    );
    let status = run.wait_within(STEP_DEADLINE);
    (run, status)
}

/// The one line on stderr of a tracer that refused to start; fails if it exited
/// with 0, panicked or said more (or less) than one line.
fn one_line_refusal((run, status): &(Proc, ExitStatus)) -> String {
    let stderr = run.stderr();
    assert!(
        status.code().is_some_and(|c| c != 0),
        "exit status {status}: it should refuse to start\n{}",
        run.describe()
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "a panic, not an error message\n{}",
        run.describe()
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr\n{}",
        run.describe()
    );
    eprintln!("refused with: {}", lines[0]);
    lines[0].to_string()
}

// ---------------------------------------------------------------------------
// Fork bomb

/// Largest number of processes in the bomb's cgroup.
const BOMB_PIDS: u64 = 64;
/// How long the bomb runs.
const BOMB_SECS: u64 = 60;
/// How much the tracer's RSS may grow over the last third of the bomb, from its
/// peak in the middle third. Its tables are bounded by the live processes plus
/// fixed caps, but with events lost they also hold the processes whose end was
/// lost until the /proc recheck releases them, which waits for the ring's backlog
/// (seconds with a debug build): their high-water mark, and so the tables'
/// capacity, settles within the first half. A leak of 40 bytes per process (a
/// bomb creates about 200,000 processes a minute here) is beyond this margin.
const RSS_SLACK_KIB: u64 = 4 << 10;

#[test]
// The release build, as servers run it: the debug build lags seconds behind the
// bomb, and its tables then hold the backlog's processes (35 -> 48 MiB).
fn bounded_fork_bomb_at_full_rate() {
    let _machine = alone();
    let dir = scratch("fork-bomb");
    let out = dir.join("trace.jsonl");
    let name = format!("tracer-faults-bomb-{}", std::process::id());
    let mut cgroup = PidsCgroup::create(&name, BOMB_PIDS).unwrap_or_else(|e| panic!("{e}"));
    let bound = match &cgroup {
        Some(cg) => format!("cgroup:{}", s(&cg.procs_file())),
        None => {
            eprintln!(
                "no cgroup pids controller on this machine: bounding the bomb with RLIMIT_NPROC {BOMB_PIDS} as uid 65534"
            );
            format!("nproc:{BOMB_PIDS}")
        }
    };
    if let Some(cg) = &cgroup {
        eprintln!(
            "fork bomb in {} (cgroup v{}), pids.max {BOMB_PIDS}",
            cg.dir.display(),
            if cg.v2 { 2 } else { 1 }
        );
    }
    let mut tracer = start_tracer_bin(&tracer_release_bin(), &out, &[], |_| {});
    let tracer_pid = tracer.pid();

    let mut bomb = Proc::spawn(
        Command::new(workload_bin()).args(["fork-bomb", &BOMB_SECS.to_string(), &bound]),
        false,
    );
    let start = Instant::now();
    // (seconds since the bomb started, VmRSS KiB), once a second while it runs.
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let deadline = Duration::from_secs(BOMB_SECS) + STEP_DEADLINE;
    while bomb.try_status().is_none() {
        if start.elapsed() > deadline {
            panic!("the bomb ran past {deadline:?}\n{}", bomb.describe());
        }
        if let Some(status) = tracer.try_status() {
            panic!(
                "the tracer died under the fork bomb ({status})\n{}",
                tracer.describe()
            );
        }
        if let Some(kib) = vm_rss_kib(tracer_pid) {
            rss.push((start.elapsed().as_secs(), kib));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let bomb_status = bomb.wait_within(STEP_DEADLINE);
    assert!(
        bomb_status.success(),
        "the bomb failed\n{}",
        bomb.describe()
    );
    let bomb_facts = facts_in(&bomb.stdout())
        .unwrap_or_else(|| panic!("no pids line from the bomb\n{}", bomb.describe()));
    let refused = cgroup.as_ref().and_then(PidsCgroup::refused_forks);
    // Whatever is left of it is killed, and the cgroup removed.
    if let Some(cg) = cgroup.as_mut() {
        cg.remove().unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        tracer.try_status().is_none(),
        "the tracer died under the fork bomb\n{}",
        tracer.describe()
    );

    // After the bomb, a fresh exec is recorded whole.
    let facts = fresh_workload();
    let code = stop_any(&mut tracer);
    let me = fact(&facts, "self");
    let child = fact(&facts, "child");
    let scan = scan_run(&tracer, &out, &[me, child]);
    // 0, or 3 when events were lost (README, Exit status).
    assert_eq!(
        code,
        Some(if scan.lost > 0 { 3 } else { 0 }),
        "tracer exit status after SIGINT, {} events lost\n{}",
        scan.lost,
        tracer.describe()
    );
    let report = format!(
        "bomb {bomb_facts}; pids.events max {refused:?}; output {} records, {} MB, per type {:?}; lost {} {:?}; tracer VmRSS KiB by second {rss:?}",
        scan.records,
        scan.bytes >> 20,
        scan.per_type,
        scan.lost,
        scan.lost_by_kind
    );
    eprintln!("{report}");
    if let Err(e) = check_fresh_life(&scan.kept, &facts) {
        panic!("after the bomb: {e}\n{report}\n{}", tracer.describe());
    }

    // Its forks failed at the bound, and the failures are recorded (or counted as
    // lost): every refusal the cgroup counted, at least.
    let failed = scan.per_type.get("fork_failed").copied().unwrap_or(0);
    let lost_failed = scan.lost_by_kind.get("fork_failed").copied().unwrap_or(0);
    assert!(failed > 0, "no fork_failed record under the bomb\n{report}");
    let refusals = refused.unwrap_or_else(|| {
        bomb_facts
            .get("eagain")
            .and_then(Value::as_u64)
            .expect("eagain")
    });
    assert!(
        failed + lost_failed >= refusals,
        "{failed} fork_failed records + {lost_failed} lost < {refusals} forks refused\n{report}"
    );

    // Where events were lost, the records say so (`uncertain`), and no process
    // ends unseen without it.
    let uncertain = check_uncertain(&out).unwrap_or_else(|e| panic!("{e}\n{report}"));
    if scan.lost > 0 {
        assert!(
            uncertain > 0,
            "{} events lost but no record marked uncertain\n{report}",
            scan.lost
        );
    }

    // Memory stays flat: the last third's peak no higher than the middle third's
    // plus a margin (the tree is bounded by the live processes, not by history).
    let peak = |from: u64, to: u64| {
        rss.iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|&(_, k)| k)
            .max()
    };
    let third = BOMB_SECS / 3;
    let (Some(middle), Some(last)) = (peak(third, 2 * third), peak(2 * third, BOMB_SECS + 60))
    else {
        panic!("too few RSS samples: {rss:?}");
    };
    assert!(
        last <= middle + RSS_SLACK_KIB,
        "tracer RSS grew from {middle} KiB (middle third) to {last} KiB (last third)\n{report}"
    );
    drop(cgroup);
}

/// Checks the `uncertain` marks of a recording (docs/events.md): a process
/// whose fork is recorded and whose reap comes with no exit before it ended
/// unseen, and its reap must say so. Returns how many records are marked.
fn check_uncertain(out: &Path) -> Result<u64, String> {
    use std::io::BufRead;
    let file = std::fs::File::open(out).map_err(|e| format!("open {}: {e}", out.display()))?;
    // proc_id -> (fork seen, exit seen)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut marked = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("read {}: {e}", out.display()))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        let uncertain = v.get("uncertain") == Some(&Value::Bool(true));
        marked += u64::from(uncertain);
        let (Some(id), false) = (
            v["proc_id"].as_str(),
            v["thread"].as_bool().unwrap_or(false),
        ) else {
            continue;
        };
        let s = seen.entry(id.to_string()).or_default();
        match v["type"].as_str() {
            Some("fork") => s.0 = true,
            Some("exit") => s.1 = true,
            Some("reap") => {
                let (forked, exited) = seen.remove(id).unwrap_or_default();
                if forked && !exited && !uncertain {
                    return Err(format!(
                        "{id} was reaped with no exit recorded, and the reap does not say it is uncertain: {line}"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(marked)
}

// ---------------------------------------------------------------------------
// Starved consumer

/// How long the busy loops hold the CPUs.
const STARVE_MS: u64 = 3000;
/// Exec storms run side by side while the tracer is starved.
const STORMS: usize = 4;
/// Fresh workloads run after the starvation, at most, until one is recorded whole.
const RECOVERY_TRIES: usize = 5;

#[test]
fn starved_consumer_counts_losses_and_recovers() {
    let _machine = alone();
    let dir = scratch("starved");
    let out = dir.join("trace.jsonl");
    let cpus = allowed_cpus();
    // The consumer on the first CPU at the lowest priority, with a 64 KiB ring
    // (16 exec events): in an emulated VM (`cargo xtask test --kernel`) the storms
    // exec only a few dozen times in all, which a larger ring would hold.
    let mut tracer = start_tracer(&out, &["--ring-size", "64K"], |cmd| {
        schedule(cmd, Some(cpus[0]), Some(19))
    });

    // A busy loop at nice -20 on every CPU, and exec storms (4 KiB events) at
    // nice -20 sharing them: the tracer gets next to no CPU while the storms fill
    // the ring. (Each storm only gets a slice now and then against the busy
    // loops: a few dozen execs a second; together they fill the ring twice over.)
    let mut spinners: Vec<Proc> = cpus
        .iter()
        .map(|cpu| {
            Proc::spawn(
                Command::new(workload_bin()).args([
                    "spin",
                    &cpu.to_string(),
                    &STARVE_MS.to_string(),
                    "-20",
                ]),
                false,
            )
        })
        .collect();
    let mut storms: Vec<Proc> = (0..STORMS)
        .map(|_| {
            let mut cmd = Command::new(workload_bin());
            cmd.args(["exec-storm", &(STARVE_MS / 1000).to_string()]);
            schedule(&mut cmd, None, Some(-20));
            Proc::spawn(&mut cmd, false)
        })
        .collect();
    for p in spinners.iter_mut().chain(storms.iter_mut()) {
        let status = p.wait_within(STEP_DEADLINE);
        assert!(status.success(), "{}", p.describe());
    }
    assert!(
        tracer.try_status().is_none(),
        "the tracer died while starved\n{}",
        tracer.describe()
    );
    let storm_facts: Vec<Value> = storms
        .iter()
        .map(|p| facts_in(&p.stdout()).expect("a storm's pids line"))
        .collect();
    let storm_pids: Vec<u32> = storm_facts.iter().map(|f| fact(f, "self")).collect();
    let children: u64 = storm_facts
        .iter()
        .map(|f| f["children"].as_u64().expect("children"))
        .sum();

    // The starvation ends: the tracer gets every CPU at the default priority.
    reschedule(tracer.pid(), &cpus, 0);
    // Recovery: a fresh workload is recorded whole. The machine's other processes
    // may still overflow the ring now and then (this test does not own the
    // machine): a try whose records are incomplete is retried, and is only
    // excused by lost records written after it started.
    let mut tries: Vec<(Value, u64)> = Vec::new();
    for _ in 0..RECOVERY_TRIES {
        let written = complete_records(&out).len();
        let facts = fresh_workload();
        let me = fact(&facts, "self");
        // Wait until the tracer has written the workload's reap (or give up on it).
        poll_until(STEP_DEADLINE, || {
            complete_records(&out).iter().skip(written).any(|r| {
                r.ty() == "reap"
                    && r.pid() == Some(me)
                    && r.u64("reaper_pid") == Some(u64::from(std::process::id()))
            })
        });
        let done = check_fresh_life(&complete_records(&out)[written..], &facts).is_ok();
        tries.push((facts, written as u64));
        if done {
            break;
        }
    }
    stop(&mut tracer, 3);
    let mut pids: Vec<u32> = tries
        .iter()
        .flat_map(|(f, _)| [fact(f, "self"), fact(f, "child")])
        .collect();
    pids.extend(&storm_pids);
    let scan = scan_records(&out, |r| {
        r.pid().is_some_and(|p| pids.contains(&p))
            || (r.ty() == "fork" && r.ppid().is_some_and(|p| storm_pids.contains(&p)))
            || r.ty() == "lost"
    })
    .unwrap_or_else(|e| panic!("{}: {e}\n{}", out.display(), tracer.describe()));
    let report = format!(
        "{STORMS} exec storms of {children} children in all; output {} records, per type {:?}; lost {} {:?}; {} recovery tries",
        scan.records,
        scan.per_type,
        scan.lost,
        scan.lost_by_kind,
        tries.len()
    );
    eprintln!("{report}");
    assert!(
        scan.inconsistent.is_empty(),
        "records that contradict each other:\n{}\n{report}",
        scan.inconsistent.join("\n")
    );
    check_summary(&tracer, &scan);
    assert!(
        scan.lost > 0,
        "nothing lost while the consumer was starved with a 64 KiB ring: the test did not starve it\n{report}"
    );
    // The processes that lived through the losses say so.
    let uncertain = check_uncertain(&out).unwrap_or_else(|e| panic!("{e}\n{report}"));
    assert!(
        uncertain > 0,
        "{} events lost but no record marked uncertain\n{report}",
        scan.lost
    );
    for (n, (facts, written)) in tries.iter().enumerate() {
        match check_fresh_life(&scan.kept, facts) {
            Ok(()) => break,
            Err(e) if n + 1 == tries.len() => panic!(
                "no fresh workload after the starvation was recorded whole in {} tries: {e}\n{report}\n{}",
                tries.len(),
                tracer.describe()
            ),
            Err(e) => assert!(
                scan.kept
                    .iter()
                    .any(|r| r.ty() == "lost" && r.seq() > *written),
                "fresh workload {} after the starvation recorded incompletely with nothing lost since: {e}\n{report}\n{}",
                n + 1,
                tracer.describe()
            ),
        }
    }

    // Nothing lost silently: each child of the storms has its fork recorded or
    // counted among the lost forks. (Matched by ppid: the storms' pids were not
    // reused during this short run, which has the machine to itself.)
    let forks = scan
        .kept
        .iter()
        .filter(|r| r.ty() == "fork" && r.ppid().is_some_and(|p| storm_pids.contains(&p)))
        .count() as u64;
    let lost_forks = scan.lost_by_kind.get("fork").copied().unwrap_or(0);
    assert!(
        forks + lost_forks >= children,
        "{forks} fork records + {lost_forks} lost forks < {children} children of the storms\n{report}"
    );
}

// ---------------------------------------------------------------------------
// Started twice, tiny ring, SIGKILL

#[test]
fn two_tracers_at_once_each_record_everything() {
    let _machine = shared();
    // One directory each: a Trace removes its directory when dropped.
    let (dir_a, dir_b) = (scratch("twice-a"), scratch("twice-b"));
    let (out_a, out_b) = (dir_a.join("trace.jsonl"), dir_b.join("trace.jsonl"));
    // Started together, before either has loaded its programs.
    let spawn = |out: &Path| {
        Proc::spawn(
            Command::new(tracer_bin()).args(["watch", "--quiet", "-o", s(out)]),
            false,
        )
    };
    let mut a = spawn(&out_a);
    let mut b = spawn(&out_b);
    wait_first_record(&mut a, &out_a);
    wait_first_record(&mut b, &out_b);
    let (ids_a, ids_b) = (our_bpf(&a), our_bpf(&b));
    assert!(
        ids_a.progs.is_disjoint(&ids_b.progs),
        "the two tracers share programs: {ids_a:?} {ids_b:?}"
    );

    let facts = fresh_workload();
    for (run, out, dir) in [(&mut a, &out_a, &dir_a), (&mut b, &out_b, &dir_b)] {
        stop(run, 0);
        let content = std::fs::read_to_string(out).expect("output");
        let t = Trace::from_run(run, &content, out, facts.clone(), dir);
        if let Err(e) = check_fresh_life(&t.records, &facts) {
            t.fail(&[fact(&facts, "self"), fact(&facts, "child")], e);
        }
        let scan = scan_run(run, out, &[]);
        assert_eq!(scan.records, t.records.len() as u64);
    }
    wait_released(&ids_a, "first tracer ended");
    wait_released(&ids_b, "second tracer ended");
}

#[test]
fn tiny_ring_works_for_light_load() {
    let _machine = shared();
    // The ring takes every process's events, not only the workload's: the
    // machine's other processes can fill 4 KiB at any moment. One run, no retry:
    // losses, when there are any, must be reported consistently (records, summary,
    // exit status); a run with none must be complete.
    let t = run_traced(&["exec-nonascii"], &["--ring-size", "4K"]);
    let lost: u64 = t
        .find("lost", |_| true)
        .iter()
        .filter_map(|r| r.u64("count"))
        .sum();
    // 3 says events were lost (README, Exit status).
    let want = if lost > 0 { 3 } else { 0 };
    tracer_tests::ensure_eq!(t, [], t.tracer_exit_code(), Some(want), "tracer exit code");
    let sum = summary_in(&t.stderr).unwrap_or_else(|| t.fail(&[], "no summary line"));
    tracer_tests::ensure_eq!(t, [], sum.lost, lost, "summary lost vs lost records");
    if lost > 0 {
        eprintln!("4K ring: {lost} events lost and reported; completeness not checked");
        return;
    }
    t.check_workload(0);
    if let Err(e) = check_fresh_life_under_tracer(&t, &t.facts) {
        t.fail(&[t.workload_pid(), t.pid("child")], e);
    }
    eprintln!("4K ring: {} records, nothing lost", t.records.len());
}

#[test]
fn sigkill_leaves_nothing_in_the_kernel_and_a_restart_works() {
    let _machine = shared();
    let dir = scratch("sigkill");
    let out = dir.join("trace.jsonl");
    let mut run = start_tracer(&out, &[], |_| {});
    let ids = our_bpf(&run);

    run.signal(libc::SIGKILL);
    let status = run.wait_within(STEP_DEADLINE);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{}",
        run.describe()
    );
    // The programs and maps go away with the process's file descriptors.
    wait_released(&ids, "tracer killed with SIGKILL");
    // What it wrote is whole records, numbered from 1, but for at most a cut last
    // line.
    let complete = complete_records(&out);
    assert!(!complete.is_empty(), "no complete record before the kill");
    for (i, r) in complete.iter().enumerate() {
        assert_eq!(r.seq(), i as u64 + 1, "seq of complete line {}", i + 1);
    }

    // A restart works.
    let t = run_traced(&["exec-nonascii"], &[]);
    t.check_workload(0);
    let facts = t.facts.clone();
    if let Err(e) = check_fresh_life_under_tracer(&t, &facts) {
        t.fail(&[t.workload_pid(), t.pid("child")], e);
    }
}

/// [`check_fresh_life`] for a workload the tracer started (`-- COMMAND`): it is
/// forked by the tracer and reaped by it.
fn check_fresh_life_under_tracer(t: &Trace, facts: &Value) -> Result<(), String> {
    let child = fact(facts, "child");
    let me = t.workload_pid();
    let recs: Vec<&Rec> = t.records_of(child);
    let types: Vec<&str> = recs.iter().map(|r| r.ty()).collect();
    if types != ["fork", "exec", "exit", "reap"] {
        return Err(format!("records of child {child}: {types:?}"));
    }
    if recs[3].u64("reaper_pid") != Some(u64::from(me)) {
        return Err(format!("child {child} not reaped by {me}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// No BTF, no tracefs

#[test]
fn no_btf_is_one_clear_line() {
    let _machine = shared();
    let dir = scratch("no-btf");
    // The kernel's BTF absent: an empty tmpfs over /sys/kernel/btf.
    let absent = in_mount_namespace(
        r#"mount -t tmpfs -o size=64k,ro notbtf /sys/kernel/btf; exec "$0" watch --quiet --duration 1s"#,
        &dir,
    );
    let line = one_line_refusal(&absent);
    assert!(
        line.contains("BTF") && line.contains("CONFIG_DEBUG_INFO_BTF"),
        "the error should say kernel BTF is missing and what provides it: {line:?}"
    );
    // Unreadable BTF: an empty file bound over /sys/kernel/btf/vmlinux.
    let broken = in_mount_namespace(
        r#": > "$1/empty"; mount --bind "$1/empty" /sys/kernel/btf/vmlinux; exec "$0" watch --quiet --duration 1s"#,
        &dir,
    );
    let line = one_line_refusal(&broken);
    assert!(
        line.contains("BTF"),
        "the error should say the kernel BTF is unusable: {line:?}"
    );
}

#[test]
fn tracefs_absent_is_one_clear_line_and_unmounted_is_mounted() {
    let _machine = shared();
    let dir = scratch("no-tracefs");
    // tracefs not mounted (an empty tmpfs over both places it can be): the tracer
    // mounts it itself and runs.
    let unmounted = in_mount_namespace(
        r#"mount -t tmpfs -o size=64k notracefs /sys/kernel/tracing
           mount -t tmpfs -o size=64k nodebugfs /sys/kernel/debug
           exec "$0" watch --quiet --duration 1s"#,
        &dir,
    );
    assert_eq!(
        unmounted.1.code(),
        Some(0),
        "tracer with tracefs unmounted\n{}",
        unmounted.0.describe()
    );
    // No place to mount it (a kernel without tracefs has no /sys/kernel/tracing):
    // an empty read-only tmpfs over /sys/kernel, with only the BTF put back.
    let absent = in_mount_namespace(
        r#"mkdir -p "$1/btf"
           mount --bind /sys/kernel/btf "$1/btf"
           mount -t tmpfs -o size=64k nokernel /sys/kernel
           mkdir /sys/kernel/btf
           mount --bind "$1/btf" /sys/kernel/btf
           mount -o remount,ro /sys/kernel
           exec "$0" watch --quiet --duration 1s"#,
        &dir,
    );
    let line = one_line_refusal(&absent);
    assert!(
        line.contains("tracefs") && line.contains("/sys/kernel/tracing"),
        "the error should say tracefs cannot be had and where: {line:?}"
    );
}

// ---------------------------------------------------------------------------
// BPF disabled

/// `AUDIT_ARCH_*` of this machine (include/uapi/linux/audit.h: EM_* | 64BIT | LE).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Makes the child's bpf(2) fail with `errno`, through a seccomp filter installed
/// between fork and exec: ENOSYS is what a kernel built without
/// CONFIG_BPF_SYSCALL answers (kernel/sys_ni.c), EPERM what lockdown, an LSM or a
/// container's seccomp profile answer.
fn deny_bpf(command: &mut Command, errno: u32) {
    use std::os::unix::process::CommandExt;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    // struct seccomp_data: int nr at 0, __u32 arch at 4.
    let filter = [
        stmt(load, 4),
        jeq(AUDIT_ARCH, 0, 3),
        stmt(load, 0),
        jeq(libc::SYS_bpf as u32, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | errno),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two prctl calls on
    // memory it owns (async-signal-safe).
    unsafe {
        command.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &raw const prog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn bpf_disabled_is_one_clear_line() {
    let _machine = shared();
    for (errno, says) in [
        (libc::ENOSYS, ["BPF", "CONFIG_BPF_SYSCALL"]),
        (libc::EPERM, ["BPF", "lockdown"]),
    ] {
        let mut command = Command::new(tracer_bin());
        command.args(["watch", "--quiet", "--duration", "1s"]);
        deny_bpf(&mut command, errno as u32);
        let mut run = Proc::spawn(&mut command, false);
        let status = run.wait_within(STEP_DEADLINE);
        let line = one_line_refusal(&(run, status));
        for word in says {
            assert!(
                line.contains(word),
                "bpf(2) failing with errno {errno}: the error should say {word}: {line:?}"
            );
        }
    }
}
