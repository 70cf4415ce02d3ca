//! `cargo xtask bench`: what tracing costs a machine in a process storm, against the
//! untraced machine and the tools people use today (see docs/bench.md).
//!
//! For each storm mode, the conditions run interleaved, one run each per round, the
//! order rotated every round, because a shared machine's speed drifts. A traced run:
//! start the tracer (or peer), wait until it is attached, note its CPU time and BPF
//! counters, run the storm, wait until it has gone idle (so the events of the storm are
//! all processed), note CPU, peak RSS and counters again, stop it with SIGINT and count
//! what it recorded of the storm.

mod child;
mod conditions;
mod probe;
mod pty;
mod readback;
mod report;
mod soak;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::{build, cmd, ebpf, setup};

use self::child::Child;
pub use self::conditions::{Condition, Mode};
use self::conditions::{Storm, Tools};
use self::report::{Run, Startup, Summary};

/// What `cargo xtask bench` was asked for (its command-line options).
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Fewer and shorter runs (about a minute); peers only with --peers.
    #[arg(long)]
    pub quick: bool,
    /// Install the peers first (apt-get: forkstat, libbpf-tools, bpftrace).
    #[arg(long)]
    pub peers: bool,
    /// Runs per condition and mode [default: 5, --quick 2].
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Length of one untraced storm; counts are sized to it [default: 1.5, --quick 0.4].
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
    /// Storm worker processes running at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: u32,
    /// Storm modes to run (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "MODE")]
    pub modes: Vec<Mode>,
    /// Conditions to run besides untraced (comma-separated) [default: all installed].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CONDITION")]
    pub conditions: Vec<Condition>,
    /// Instead of the comparison: one tracer through MINUTES of back-to-back storms
    /// of every mode, its RSS sampled every second (peak and flatness).
    #[arg(long, value_name = "MINUTES")]
    pub soak: Option<f64>,
    /// Instead of the comparison: `tracer report` reading a recorded storm copied as
    /// 8 hosts (and 80), MB/s and peak RSS, next to DuckDB's read_json.
    #[arg(long, conflicts_with = "soak")]
    pub report: bool,
    /// Run the bench in a VM booted on this Debian kernel (as `cargo xtask test
    /// --kernel`), once with the default hooks and once with the syscall tracepoints.
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,
    /// Set by `--kernel` for the bench inside the VM: use what the host built.
    #[arg(long, hide = true)]
    pub in_vm: bool,
}

const QUICK_RUNS: usize = 2;
const FULL_RUNS: usize = 5;
const QUICK_SECONDS: f64 = 0.4;
const FULL_SECONDS: f64 = 1.5;
const QUICK_STARTUPS: usize = 3;
const FULL_STARTUPS: usize = 5;

/// How long a tracer or peer may take to attach.
const ATTACH_DEADLINE: Duration = Duration::from_secs(30);
/// How long it may stay busy after the storm.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// Idle: at most this many clock ticks of CPU over [`IDLE_WINDOW`].
const IDLE_TICKS: u64 = 1;
const IDLE_WINDOW: usize = 4;
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a storm may take.
const STORM_DEADLINE: Duration = Duration::from_secs(600);
/// How long SIGINT may take to stop a tracer or peer before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Everything a run needs.
struct Bench {
    tools: Tools,
    storm_bin: PathBuf,
    marker: PathBuf,
    tmp: PathBuf,
    workers: u32,
}

pub fn run(opts: &Options) -> Result<ExitCode> {
    if !cmd::is_root() {
        bail!(
            "the bench loads eBPF programs and reads other processes' /proc entries: run it as \
             root (sudo -E cargo xtask bench)"
        );
    }
    if opts.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if let Some(version) = &opts.kernel {
        // The bench's own options, minus --kernel, for the bench inside the VM.
        let mut args = Vec::new();
        let mut it = std::env::args().skip_while(|a| a != "bench").skip(1);
        while let Some(a) = it.next() {
            if a == "--kernel" {
                it.next();
            } else if !a.starts_with("--kernel=") {
                args.push(a);
            }
        }
        return crate::vm::bench::bench(version, &args);
    }
    child::catch_interrupts();
    let command_line = command_line(opts);

    // The release tracer, and tracer-storm, through xtask's own build; in the VM,
    // what the host built (the workspace is read-only there).
    if !opts.in_vm {
        let object = ebpf::build()?;
        build::agent(true, &object, &["tracer", "tracer-tests"])?;
        setup::tracefs(false)?;
        if opts.peers {
            install_peers()?;
        }
    }

    let release = cmd::target_dir().join("release");
    let dir = if opts.in_vm {
        PathBuf::from("/tmp/bench")
    } else {
        cmd::target_dir().join("bench")
    };
    let tmp = dir.join("tmp");
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let bpftrace_script = dir.join("events.bt");
    fs::write(&bpftrace_script, conditions::BPFTRACE_SCRIPT)
        .with_context(|| format!("writing {}", bpftrace_script.display()))?;
    // Start-up markers exec /bin/true through a link, so their comm ("tbmark") and
    // argv stand out in the tracer's output.
    let marker = dir.join("tbmark");
    let _ = fs::remove_file(&marker);
    std::os::unix::fs::symlink("/bin/true", &marker)
        .with_context(|| format!("creating {}", marker.display()))?;

    let tools = find_tools(build::binary(true), bpftrace_script);
    let bench = Bench {
        tools,
        storm_bin: release.join("tracer-storm"),
        marker,
        tmp,
        workers: opts.workers,
    };

    if let Some(minutes) = opts.soak {
        if !minutes.is_finite() || minutes < 1.0 {
            bail!("--soak takes minutes, at least 1 (the issue's target is a 10-minute storm)");
        }
        bench.soak(minutes, &dir, &command_line)?;
        return Ok(ExitCode::SUCCESS);
    }
    if opts.report {
        bench.report_bench(&dir, &command_line)?;
        return Ok(ExitCode::SUCCESS);
    }

    let modes: Vec<Mode> = if opts.modes.is_empty() {
        Mode::ALL.to_vec()
    } else {
        Mode::ALL
            .into_iter()
            .filter(|m| opts.modes.contains(m))
            .collect()
    };
    let (conds, skipped) = plan_conditions(opts, &bench.tools);
    for (c, why) in &skipped {
        eprintln!("xtask: bench: skipping {}: {why}", c.label());
    }
    let runs = opts
        .runs
        .unwrap_or(if opts.quick { QUICK_RUNS } else { FULL_RUNS });
    let seconds = opts.seconds.unwrap_or(if opts.quick {
        QUICK_SECONDS
    } else {
        FULL_SECONDS
    });
    if runs == 0 || !seconds.is_finite() || seconds <= 0.0 {
        bail!("--runs and --seconds must be positive");
    }

    let started_at = SystemTime::now();
    let started = Instant::now();
    let load_before = loadavg();
    eprintln!(
        "xtask: bench: {} modes × {} conditions × {runs} rounds, storms of about {seconds} s \
         with {} workers",
        modes.len(),
        conds.len(),
        bench.workers
    );

    // Counts sized from an untraced run, so each storm takes about `seconds` here.
    let mut counts = BTreeMap::new();
    for &mode in &modes {
        let probe = bench.storm(mode, mode.calibration_count())?;
        let count = round_count(probe.ops_per_s * seconds, bench.workers);
        eprintln!(
            "xtask: bench: {}: {:.0} ops/s untraced, {count} operations per run",
            mode.name(),
            probe.ops_per_s
        );
        counts.insert(mode, count);
    }

    let startup = if conds.iter().any(|c| c.is_tracer()) {
        bench.startup(if opts.quick {
            QUICK_STARTUPS
        } else {
            FULL_STARTUPS
        })?
    } else {
        Startup::default()
    };
    eprintln!("xtask: bench: {}", report::startup_line(&startup));

    let mut all_runs: Vec<Run> = Vec::new();
    for (mi, &mode) in modes.iter().enumerate() {
        let here: Vec<Condition> = conds
            .iter()
            .copied()
            .filter(|c| c.applies_to(mode))
            .collect();
        for round in 0..runs {
            for i in 0..here.len() {
                let condition = here[(i + round + mi) % here.len()];
                let run = bench
                    .run(mode, condition, round, counts[&mode])
                    .with_context(|| {
                        format!(
                            "{} under {}, round {}",
                            mode.name(),
                            condition.name(),
                            round + 1
                        )
                    })?;
                eprintln!("{}", progress(&run));
                all_runs.push(run);
            }
        }
    }

    let summaries: Vec<Summary> = modes
        .iter()
        .flat_map(|&m| conds.iter().map(move |&c| (m, c)))
        .filter_map(|(m, c)| report::summarize(&all_runs, m, c))
        .collect();
    let targets = report::targets(&summaries, &startup);
    let load_after = loadavg();
    let machine = machine_info(load_before.as_deref(), load_after.as_deref());

    let stamp = utc_stamp(started_at);
    let json_path = dir.join(format!("bench-{stamp}.json"));
    let doc = json!({
        "version": 1,
        "started": stamp,
        "duration_s": started.elapsed().as_secs_f64(),
        "command": command_line,
        "machine": machine,
        "config": {
            "quick": opts.quick,
            "runs": runs,
            "seconds_per_storm": seconds,
            "workers": bench.workers,
            "counts": counts.iter().map(|(m, c)| (m.name().to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "conditions": conds.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|(c, why)| json!({"condition": c.name(), "why": why})).collect::<Vec<_>>(),
            "tracer": bench.tools.tracer,
        },
        "startup": report::startup_json(&startup),
        "summary": summaries.iter().map(report::summary_json).collect::<Vec<_>>(),
        "targets": report::targets_json(&targets),
        "runs": all_runs.iter().map(report::run_json).collect::<Vec<_>>(),
    });
    fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;

    println!();
    println!("## tracer bench {stamp}");
    println!();
    println!("`{command_line}` ({})", machine_line(&machine));
    println!();
    print!("{}", report::main_table(&summaries));
    let programs = report::program_table(&summaries, &modes);
    if !programs.is_empty() {
        println!();
        println!("In-kernel cost per program run (ns per run × runs during the storms):");
        println!();
        print!("{programs}");
    }
    println!();
    println!("{}", report::startup_line(&startup));
    if !skipped.is_empty() {
        println!();
        let list: Vec<String> = skipped
            .iter()
            .map(|(c, why)| format!("{} ({why})", c.name()))
            .collect();
        println!("Skipped: {}.", list.join(", "));
    }
    let contended: Vec<&Run> = all_runs
        .iter()
        .filter(|r| !r.other_bpf.is_empty())
        .collect();
    if !contended.is_empty() {
        let mut who: Vec<String> = contended
            .iter()
            .flat_map(|r| r.other_bpf.iter())
            .map(|h| {
                h.split_once(' ')
                    .map_or(h.clone(), |(_, comm)| comm.to_string())
            })
            .collect();
        who.sort();
        who.dedup();
        println!();
        println!(
            "Note: during {} of {} runs other processes held BPF programs ({}); if they trace \
             processes they fire on every storm too, untraced ones included.",
            contended.len(),
            all_runs.len(),
            who.join(", ")
        );
    }
    println!();
    println!("Targets (issue 4):");
    println!();
    print!("{}", report::targets_list(&targets));
    println!();
    println!("JSON: {}", json_path.display());
    Ok(ExitCode::SUCCESS)
}

impl Bench {
    /// Runs tracer-storm untraced and returns what it reported.
    fn storm(&self, mode: Mode, count: u64) -> Result<StormReport> {
        let out = self.tmp.join("storm.out");
        let err = self.tmp.join("storm.err");
        let mut command = Command::new(&self.storm_bin);
        command
            .arg(mode.name())
            .args(["--count", &count.to_string()])
            .args(["--workers", &self.workers.to_string()])
            .stdin(Stdio::null())
            .stdout(create(&out)?)
            .stderr(create(&err)?);
        let mut storm = Child::spawn(&mut command, "tracer-storm")?;
        let Some(status) = storm.wait_for(STORM_DEADLINE)? else {
            bail!(
                "tracer-storm {} --count {count} ran longer than {} s",
                mode.name(),
                STORM_DEADLINE.as_secs()
            );
        };
        if !status.success() {
            storm.kill_group();
            bail!(
                "tracer-storm {} failed ({}): {}",
                mode.name(),
                child::describe(status),
                read_tail(&err)
            );
        }
        let text =
            fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        StormReport::parse(&text)
            .ok_or_else(|| anyhow!("tracer-storm printed {text:?}, not its JSON line"))
    }

    fn run(&self, mode: Mode, condition: Condition, round: usize, count: u64) -> Result<Run> {
        child::check_interrupted()?;
        let output = self.tmp.join("tracer.jsonl");
        let stdout = self.tmp.join("traced.out");
        let stderr = self.tmp.join("traced.err");
        for f in [&output, &stdout, &stderr] {
            let _ = fs::remove_file(f);
        }
        let other_bpf = probe::other_bpf_holders(&[]);
        let Some(mut command) = self.tools.command(condition, &output) else {
            let s = self.storm(mode, count)?;
            return Ok(Run {
                mode,
                condition,
                round,
                ops: s.ops,
                elapsed_s: s.elapsed_s,
                ops_per_s: s.ops_per_s,
                expected: 0,
                counted: Default::default(),
                cpu_s: None,
                peak_rss_kib: None,
                rss_before_kib: None,
                rss_after_kib: None,
                ring_rss_kib: None,
                wakeups: None,
                other_bpf,
                attach_s: None,
                drain_s: None,
                drain_timed_out: false,
                progs: BTreeMap::new(),
            });
        };
        // The kernel counts run time per program only while stats are on; on only for
        // the traced runs, as the untraced ones have nothing to count.
        let stats = if condition.uses_bpf() {
            Some(probe::enable_bpf_stats()?)
        } else {
            None
        };
        command
            .stdin(Stdio::null())
            .stdout(create(&stdout)?)
            .stderr(create(&stderr)?);
        // top needs a terminal: both ends on a pty, kept open for the run.
        let _pty = if condition.is_top() {
            let pty = pty::Pty::open()?;
            command.stdin(pty.stdio()?).stdout(pty.stdio()?);
            Some(pty)
        } else {
            None
        };
        let start = Instant::now();
        let mut traced = Child::spawn(&mut command, condition.name())?;
        let pid = traced.pid();
        self.wait_attached(condition, &mut traced, &output, &stderr)?;
        let attach_s = start.elapsed().as_secs_f64();

        let cpu_before = probe::cpu_ticks(pid)?;
        let rss_before = probe::rss_kib(pid)?;
        let switches_before = probe::voluntary_switches(pid);
        let progs_before = probe::bpf_progs(pid);
        let storm = self.storm(mode, count)?;
        let (drain, drained) = wait_idle(&mut traced, &stderr)?;
        let cpu_after = probe::cpu_ticks(pid)?;
        let peak_rss = probe::peak_rss_kib(pid)?;
        let rss_after = probe::rss_kib(pid)?;
        let switches_after = probe::voluntary_switches(pid);
        let ring_rss = probe::bpf_map_rss_kib(pid);
        let progs_after = probe::bpf_progs(pid);
        // Names by id, while the programs are still loaded.
        let by_tag = probe::prog_names_by_tag();
        let mut progs = BTreeMap::new();
        for (id, delta) in probe::prog_deltas(&progs_before, &progs_after) {
            let name = progs_after
                .get(&id)
                .and_then(|p| by_tag.get(&p.tag))
                .map(|names| names.join("/"))
                .or_else(|| probe::prog_name(id))
                .unwrap_or_else(|| format!("prog {id}"));
            let entry: &mut probe::ProgCounters = progs.entry(name).or_default();
            entry.run_cnt += delta.run_cnt;
            entry.run_time_ns += delta.run_time_ns;
        }
        let (status, killed) = traced.stop(STOP_GRACE)?;
        drop(stats);
        if (condition.is_tracer() || condition.is_top()) && (killed || !status.success()) {
            bail!(
                "tracer ended with {}{} after SIGINT: {}",
                child::describe(status),
                if killed { " (killed)" } else { "" },
                read_tail(&stderr)
            );
        }
        if killed {
            eprintln!(
                "xtask: bench: {} did not stop on SIGINT within {} s and was killed",
                condition.name(),
                STOP_GRACE.as_secs()
            );
        }

        let ids = Storm {
            pid: storm.pid,
            workers: storm.workers.iter().copied().collect(),
        };
        let counted = conditions::count(condition, &output, &stdout, &stderr, &ids)?;
        // Thread storms write hundreds of MB; nothing of it is needed any more.
        for f in [&output, &stdout] {
            let _ = fs::remove_file(f);
        }
        Ok(Run {
            mode,
            condition,
            round,
            ops: storm.ops,
            elapsed_s: storm.elapsed_s,
            ops_per_s: storm.ops_per_s,
            expected: storm.ops * condition.events_per_op(mode),
            counted,
            cpu_s: Some(cpu_after.saturating_sub(cpu_before) as f64 / probe::ticks_per_second()),
            peak_rss_kib: Some(peak_rss),
            rss_before_kib: Some(rss_before),
            rss_after_kib: Some(rss_after),
            ring_rss_kib: Some(ring_rss),
            wakeups: Some(switches_after.saturating_sub(switches_before)),
            other_bpf,
            attach_s: Some(attach_s),
            drain_s: Some(drain),
            drain_timed_out: !drained,
            progs,
        })
    }

    /// Returns once `traced` is attached: the tracer has written its first record
    /// (it attaches before it reads /proc, and writes from its event loop); forkstat has
    /// bound its proc connector socket; a BPF peer's programs have run.
    fn wait_attached(
        &self,
        condition: Condition,
        traced: &mut Child,
        output: &Path,
        stderr: &Path,
    ) -> Result<()> {
        let start = Instant::now();
        let pid = traced.pid();
        let mut last_marker = Instant::now() - Duration::from_secs(1);
        loop {
            child::check_interrupted()?;
            ensure_running(traced, "before it was attached", stderr)?;
            let attached = match condition {
                Condition::Untraced => true,
                Condition::Tracer
                | Condition::TracerThreads
                | Condition::Top
                | Condition::TopThreads => fs::metadata(output).is_ok_and(|m| m.len() > 0),
                Condition::Forkstat => probe::proc_connector_bound(pid),
                Condition::Execsnoop | Condition::Exitsnoop | Condition::Bpftrace => {
                    // Make an exec and an exit happen, then look for program runs.
                    if last_marker.elapsed() >= Duration::from_millis(50) {
                        let _ = Command::new(&self.marker).status();
                        last_marker = Instant::now();
                    }
                    probe::bpf_progs(pid)
                        .values()
                        .any(|p| p.counters.run_cnt > 0)
                }
            };
            if attached {
                if condition == Condition::Forkstat {
                    // Bound, then it sends PROC_CN_MCAST_LISTEN: give that a moment.
                    child::sleep(Duration::from_millis(200))?;
                }
                return Ok(());
            }
            if start.elapsed() > ATTACH_DEADLINE {
                bail!(
                    "{} was not attached {} s after it started: {}",
                    traced.name(),
                    ATTACH_DEADLINE.as_secs(),
                    read_tail(stderr)
                );
            }
            std::thread::sleep(child::POLL);
        }
    }

    /// Starts `tracer watch` `n` times while execing numbered markers every 10 ms, and
    /// finds the first marker each run recorded.
    fn startup(&self, n: usize) -> Result<Startup> {
        let mut s = Startup::default();
        let output = self.tmp.join("startup.jsonl");
        let stderr = self.tmp.join("startup.err");
        for i in 0..n {
            let _ = fs::remove_file(&output);
            let mut command = self
                .tools
                .command(Condition::Tracer, &output)
                .expect("the tracer condition has a command");
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(create(&stderr)?);
            let start = Instant::now();
            let mut tracer = Child::spawn(&mut command, "tracer")?;
            let mut done_at: Vec<f64> = Vec::new();
            let mut first_record: Option<f64> = None;
            let mut after_first = 0;
            while after_first < 5 {
                child::check_interrupted()?;
                if let Some(status) = tracer.try_wait()? {
                    bail!(
                        "tracer ended ({}) during start-up: {}",
                        child::describe(status),
                        read_tail(&stderr)
                    );
                }
                let k = done_at.len();
                Command::new(&self.marker)
                    .arg(format!("m{i}-{k}"))
                    .status()
                    .with_context(|| format!("running {}", self.marker.display()))?;
                done_at.push(start.elapsed().as_secs_f64());
                if first_record.is_none() && fs::metadata(&output).is_ok_and(|m| m.len() > 0) {
                    first_record = Some(start.elapsed().as_secs_f64());
                }
                if first_record.is_some() {
                    after_first += 1;
                }
                if start.elapsed() > ATTACH_DEADLINE {
                    bail!(
                        "tracer wrote nothing in {} s: {}",
                        ATTACH_DEADLINE.as_secs(),
                        read_tail(&stderr)
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let (status, killed) = tracer.stop(STOP_GRACE)?;
            if killed || !status.success() {
                bail!(
                    "tracer ended with {} after SIGINT: {}",
                    child::describe(status),
                    read_tail(&stderr)
                );
            }
            let first = first_marker(&output, &format!("m{i}-"))?.ok_or_else(|| {
                anyhow!(
                    "none of the {} marker execs is in the tracer's output {}",
                    done_at.len(),
                    output.display()
                )
            })?;
            s.attached_s.push(done_at[first]);
            s.not_before_s
                .push(if first == 0 { 0.0 } else { done_at[first - 1] });
            if let Some(f) = first_record {
                s.first_record_s.push(f);
            }
        }
        Ok(s)
    }
}

/// Polls the CPU time of `traced` until it stays (nearly) flat: it has processed
/// everything the storm made. Returns the time it took and whether it got there.
fn wait_idle(traced: &mut Child, stderr: &Path) -> Result<(f64, bool)> {
    let start = Instant::now();
    let mut ticks: Vec<u64> = Vec::new();
    loop {
        child::check_interrupted()?;
        ensure_running(traced, "during the storm", stderr)?;
        ticks.push(probe::cpu_ticks(traced.pid())?);
        let n = ticks.len();
        if n > IDLE_WINDOW && ticks[n - 1] - ticks[n - 1 - IDLE_WINDOW] <= IDLE_TICKS {
            // The flat window is not part of the drain.
            let flat = IDLE_POLL.as_secs_f64() * IDLE_WINDOW as f64;
            return Ok(((start.elapsed().as_secs_f64() - flat).max(0.0), true));
        }
        if start.elapsed() > DRAIN_DEADLINE {
            return Ok((start.elapsed().as_secs_f64(), false));
        }
        std::thread::sleep(IDLE_POLL);
    }
}

/// The index of the first marker (argv[1] = PREFIX + index) exec'd in a tracer output.
fn first_marker(output: &Path, prefix: &str) -> Result<Option<usize>> {
    let text =
        fs::read_to_string(output).with_context(|| format!("reading {}", output.display()))?;
    let mut first: Option<usize> = None;
    for line in text.lines().filter(|l| l.contains("tbmark")) {
        let Ok(rec) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if rec["type"] != "exec" {
            continue;
        }
        if let Some(k) = rec["argv"][1]
            .as_str()
            .and_then(|a| a.strip_prefix(prefix))
            .and_then(|k| k.parse::<usize>().ok())
        {
            first = Some(first.map_or(k, |f| f.min(k)));
        }
    }
    Ok(first)
}

/// What tracer-storm prints.
struct StormReport {
    ops: u64,
    elapsed_s: f64,
    ops_per_s: f64,
    pid: i64,
    workers: Vec<i64>,
}

impl StormReport {
    fn parse(text: &str) -> Option<StormReport> {
        let v: Value = serde_json::from_str(text.trim()).ok()?;
        Some(StormReport {
            ops: v["ops"].as_u64()?,
            elapsed_s: v["elapsed_s"].as_f64()?,
            ops_per_s: v["ops_per_s"].as_f64()?,
            pid: v["pid"].as_i64()?,
            workers: v["worker_pids"]
                .as_array()?
                .iter()
                .filter_map(Value::as_i64)
                .collect(),
        })
    }
}

/// A count near `target`: two significant digits, a multiple of the workers, at least 100.
fn round_count(target: f64, workers: u32) -> u64 {
    let target = target.max(100.0);
    let scale = 10f64.powi(target.log10().floor() as i32 - 1);
    let rounded = ((target / scale).round() * scale) as u64;
    let w = u64::from(workers.max(1));
    (rounded / w).max(1) * w
}

/// The conditions to run and the ones skipped, with the reason.
fn plan_conditions(opts: &Options, tools: &Tools) -> (Vec<Condition>, Vec<(Condition, String)>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for c in Condition::ALL {
        let asked =
            c == Condition::Untraced || opts.conditions.is_empty() || opts.conditions.contains(&c);
        if !asked {
            continue;
        }
        if c.is_peer() && opts.quick && !opts.peers && opts.conditions.is_empty() {
            skipped.push((c, "--quick runs peers only with --peers".to_string()));
        } else if !tools.has(c) {
            skipped.push((
                c,
                format!(
                    "not installed (package {}; `cargo xtask bench --peers` installs it)",
                    c.package().unwrap_or("?")
                ),
            ));
        } else {
            run.push(c);
        }
    }
    (run, skipped)
}

/// Installs the peers that are missing with apt-get.
fn install_peers() -> Result<()> {
    let path = peer_path();
    let mut missing: Vec<&str> = Vec::new();
    for (program, package) in [
        ("forkstat", "forkstat"),
        ("execsnoop", "libbpf-tools"),
        ("exitsnoop", "libbpf-tools"),
        ("bpftrace", "bpftrace"),
    ] {
        if cmd::find_in_path(program, &path).is_none() && !missing.contains(&package) {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        println!("xtask: bench: peers installed (forkstat, libbpf-tools, bpftrace)");
        return Ok(());
    }
    let install = || {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing);
        cmd::run(&mut c)
    };
    if install().is_err() {
        // The package lists may be missing or stale on a fresh machine.
        cmd::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    Ok(())
}

fn peer_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec!["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("directories on PATH contain no ':'")
}

fn find_tools(tracer: PathBuf, bpftrace_script: PathBuf) -> Tools {
    let path = peer_path();
    // libbpf-tools installs execsnoop and exitsnoop under their plain names in
    // /usr/sbin (bcc's Python tools are execsnoop-bpfcc): take them only from that
    // package, so a different tool of the same name is not measured by mistake.
    let libbpf_tool = |name: &str| {
        cmd::find_in_path(name, &path).filter(|p| {
            cmd::probe(Command::new("dpkg-query").arg("-S").arg(p))
                .is_none_or(|owner| owner.contains("libbpf-tools"))
        })
    };
    Tools {
        tracer,
        forkstat: cmd::find_in_path("forkstat", &path),
        execsnoop: libbpf_tool("execsnoop"),
        exitsnoop: libbpf_tool("exitsnoop"),
        bpftrace: cmd::find_in_path("bpftrace", &path),
        bpftrace_script,
    }
}

fn create(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// Fails if `traced` has ended (`when`: "during the storm"), with the end of its
/// stderr log.
fn ensure_running(traced: &mut Child, when: &str, stderr: &Path) -> Result<()> {
    if let Some(status) = traced.try_wait()? {
        bail!(
            "{} ended ({}) {when}: {}",
            traced.name(),
            child::describe(status),
            read_tail(stderr)
        );
    }
    Ok(())
}

/// The last lines of a log file, for error messages.
fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        return "(no output)".into();
    }
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

fn progress(r: &Run) -> String {
    let mut line = format!(
        "xtask: bench: {:<11} {:<16} round {}: {:>8.0} ops/s",
        r.mode.name(),
        r.condition.name(),
        r.round + 1,
        r.ops_per_s
    );
    if r.condition == Condition::Untraced && !r.other_bpf.is_empty() {
        line += &format!(" [other BPF users: {}]", r.other_bpf.join(", "));
    }
    if r.condition != Condition::Untraced {
        line += &format!(
            ", {}/{} events, lost {}, cpu {:.0} ms, attach {:.2} s, drain {:.2} s",
            r.counted.recorded,
            r.expected,
            r.counted.lost.map_or("n/a".to_string(), |l| l.to_string()),
            r.cpu_s.unwrap_or(0.0) * 1000.0,
            r.attach_s.unwrap_or(0.0),
            r.drain_s.unwrap_or(0.0),
        );
        if !r.other_bpf.is_empty() {
            line += &format!(" [other BPF users: {}]", r.other_bpf.join(", "));
        }
        if r.drain_timed_out {
            line += " (still busy at the deadline)";
        }
    }
    line
}

fn command_line(opts: &Options) -> String {
    let mut line = String::from("cargo xtask bench");
    if opts.quick {
        line += " --quick";
    }
    if opts.peers {
        line += " --peers";
    }
    if let Some(r) = opts.runs {
        line += &format!(" --runs {r}");
    }
    if let Some(s) = opts.seconds {
        line += &format!(" --seconds {s}");
    }
    if opts.workers != 2 {
        line += &format!(" --workers {}", opts.workers);
    }
    if !opts.modes.is_empty() {
        let m: Vec<&str> = opts.modes.iter().map(|m| m.name()).collect();
        line += &format!(" --modes {}", m.join(","));
    }
    if !opts.conditions.is_empty() {
        let c: Vec<String> = opts
            .conditions
            .iter()
            // As typed: clap's value name (`tracer-threads`), not the Debug name.
            .map(|c| {
                clap::ValueEnum::to_possible_value(c)
                    .map_or_else(|| c.name().to_owned(), |v| v.get_name().to_owned())
            })
            .collect();
        line += &format!(" --conditions {}", c.join(","));
    }
    if let Some(m) = opts.soak {
        line += &format!(" --soak {m}");
    }
    if opts.report {
        line += " --report";
    }
    line
}

fn loadavg() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn machine_info(load_before: Option<&str>, load_after: Option<&str>) -> Value {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    let cpu = fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
    });
    let commit = cmd::probe(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(cmd::workspace_root()),
    )
    .map(|s| s.trim().to_string());
    json!({
        "kernel": kernel,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "commit": commit,
    })
}

fn machine_line(m: &Value) -> String {
    format!(
        "kernel {}, {} CPUs, load average {} before and {} after, commit {}",
        m["kernel"].as_str().unwrap_or("?"),
        m["cpus"].as_u64().map_or("?".into(), |n| n.to_string()),
        m["loadavg_before"].as_str().unwrap_or("?"),
        m["loadavg_after"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
    )
}

/// `20261122T041322Z` for a time (UTC).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_rounded_to_the_workers() {
        assert_eq!(round_count(14_382.0 * 1.5, 2), 22_000);
        assert_eq!(round_count(3_433.0, 2), 3_400);
        assert_eq!(round_count(3.0, 2), 100);
        assert_eq!(round_count(1_234.0, 3), 1_200);
        assert_eq!(round_count(1_250.0, 7), 1_295);
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_407_202);
        assert_eq!(utc_stamp(t), "20261123T041322Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }

    #[test]
    fn storm_reports_parse() {
        let r = StormReport::parse(
            r#"{"ops":4000,"elapsed_s":0.25,"ops_per_s":16000.0,"pid":7,"worker_pids":[8,9]}"#,
        )
        .unwrap();
        assert_eq!((r.ops, r.pid, r.workers.clone()), (4000, 7, vec![8, 9]));
        assert!(StormReport::parse("hello").is_none());
    }

    #[test]
    fn command_line_names_conditions_as_typed() {
        let opts = Options {
            quick: false,
            peers: false,
            runs: None,
            seconds: None,
            workers: 2,
            modes: vec![],
            conditions: vec![Condition::Tracer, Condition::TracerThreads],
            soak: None,
            report: false,
            kernel: None,
            in_vm: false,
        };
        assert_eq!(
            command_line(&opts),
            "cargo xtask bench --conditions tracer,tracer-threads"
        );
    }

    #[test]
    fn quick_runs_peers_only_when_asked() {
        let tools = Tools {
            tracer: "t".into(),
            forkstat: Some("f".into()),
            execsnoop: None,
            exitsnoop: None,
            bpftrace: None,
            bpftrace_script: "s".into(),
        };
        let mut opts = Options {
            quick: false,
            peers: false,
            runs: None,
            seconds: None,
            workers: 2,
            modes: vec![],
            conditions: vec![],
            soak: None,
            report: false,
            kernel: None,
            in_vm: false,
        };
        let (run, skipped) = plan_conditions(&opts, &tools);
        assert_eq!(
            run,
            [
                Condition::Untraced,
                Condition::Tracer,
                Condition::TracerThreads,
                Condition::Top,
                Condition::TopThreads,
                Condition::Forkstat
            ]
        );
        assert_eq!(skipped.len(), 3);
        opts.quick = true;
        let (run, _) = plan_conditions(&opts, &tools);
        assert_eq!(run.len(), 5);
        opts.conditions = vec![Condition::Forkstat];
        let (run, _) = plan_conditions(&opts, &tools);
        assert_eq!(run, [Condition::Untraced, Condition::Forkstat]);
    }
}
