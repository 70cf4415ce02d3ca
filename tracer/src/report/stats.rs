//! The figures of the report, computed from a [`History`]: pure, and the same data
//! for the terminal ([`super::text`]) and for `--format json` ([`super::json`]),
//! whose structure is documented in docs/report.md.
//!
//! Times are `ktime_ns` (CLOCK_BOOTTIME of the run) and durations ns; `ts` strings are
//! wall-clock RFC 3339, present when the input had readable `ts` fields. Byte strings
//! from the kernel (comm, file names) are lossy UTF-8 here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::fmt::{basename, lossy, rate, thousands};
use super::history::{Ending, History, ProcIdx};
use super::reader::Records;
use super::unit::cgroup_label;
use super::walltime::rfc3339;
use crate::names::{errno_name, signal_name};

/// Version of the JSON document's structure.
pub const REPORT_VERSION: u32 = 1;

/// A parent whose child stayed a zombie this long, or is one at the end, reaps slowly.
/// A parent that waits for its children collects them within microseconds to a few
/// milliseconds; 100 ms is far beyond that and still short for a person.
pub const SLOW_REAP_NS: u64 = 100_000_000;

/// This many failures of the same executable under the same parent make a crash loop.
pub const CRASH_LOOP_MIN: u64 = 3;

/// The timeline has at most this many buckets (one per second up to a day).
pub const TIMELINE_MAX_BUCKETS: u64 = 86_400;

const NS_PER_SEC: u64 = 1_000_000_000;

/// An executable (file name bytes, shared) in one run; `None` when unknown.
type ExeKey = (usize, Option<Arc<[u8]>>);

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Rows in each ranked list.
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { top: 5 }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub report_version: u32,
    /// The report's first paragraph: the busiest forkers and the problems found,
    /// one sentence each.
    pub headline: Vec<String>,
    /// The filters the report was asked for (`--since`, `--until`, `--uid`,
    /// `--comm`, `--cgroup`), as given; empty: the whole recording, every process.
    pub selection: Vec<String>,
    pub inputs: Vec<InputOut>,
    pub input_problems: InputProblems,
    pub runs: Vec<RunOut>,
    pub totals: Totals,
    pub lost: LostOut,
    /// Alerts `watch` raised while recording (not their `alert_end`s), in time order.
    pub alerts: Vec<AlertOut>,
    pub top_forkers: TopForkers,
    pub top_executed: Vec<Executed>,
    pub timeline: Vec<Timeline>,
    pub zombies: Zombies,
    pub exits: Vec<ExitBreakdown>,
    pub crash_loops: Vec<CrashLoop>,
    pub longest_lived: Vec<Life>,
    pub shortest_lived: Vec<Life>,
    pub fork_failures: ForkFailures,
    pub exec_failures: ExecFailures,
}

#[derive(Clone, Debug, Serialize)]
pub struct InputOut {
    pub name: String,
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub bad_lines: u64,
    pub missing_lines: u64,
    pub seq_restarts: u64,
    /// The `reason` of the input's closing `end` record; null when it has none.
    pub end_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BadLineOut {
    pub input: String,
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct InputProblems {
    pub bad_lines: u64,
    pub by_reason: BTreeMap<&'static str, u64>,
    pub first_bad_lines: Vec<BadLineOut>,
    pub missing_lines: u64,
    pub duplicates: u64,
    pub parent_cycles_broken: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunOut {
    pub host: String,
    pub boot_id: String,
    pub start_ktime_ns: u64,
    pub end_ktime_ns: u64,
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration_ns: u64,
    pub records: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub records: u64,
    pub processes: u64,
    pub forked: u64,
    pub in_snapshot: u64,
    pub inferred: u64,
    pub threads_created: u64,
    pub execs: u64,
    pub exec_failures: u64,
    pub exits: u64,
    pub reaps: u64,
    /// Of `reaps`, those inferred from /proc (no event showed them).
    pub reaps_inferred: u64,
    pub fork_failures: u64,
    pub alive_at_end: u64,
    pub zombies_at_end: u64,
    pub lost_events: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LostKind {
    pub host: String,
    pub kind: String,
    pub count: u64,
    /// When the first `lost` record of this kind was written (the drops happened
    /// shortly before: the agent polls the kernel counters).
    pub first_noticed_ktime_ns: u64,
    pub first_noticed: Option<String>,
    /// What these losses make uncertain.
    pub uncertain: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct AlertOut {
    pub alert: String,
    pub ktime_ns: u64,
    /// Wall-clock time, RFC 3339, when the run's clock is known.
    pub time: Option<String>,
    pub message: String,
    /// The episode's `alert_end` was recorded (the condition went away).
    pub ended: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LostOut {
    pub total: u64,
    pub by_kind: Vec<LostKind>,
    /// Processes whose records say `uncertain`: events were lost while they lived.
    pub uncertain_processes: u64,
    /// Of those, the ones released with no exit seen (found gone by `tracer watch`
    /// after the loss, or their exit record was lost).
    pub ended_unseen: u64,
}

/// A process, as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcRef {
    pub host: String,
    pub proc_id: String,
    pub pid: u32,
    /// Its latest comm.
    pub comm: String,
    /// The executable it ran last.
    pub exe: Option<String>,
    /// What it ran, in order, as in `--tree` (`["run.sh", "sleep"]`: it ran a
    /// script, then exec'd `sleep`).
    pub chain: Vec<String>,
    /// Where this names a parent of forks (top forkers, crash loops): the executable
    /// it was running when it made them (most of them, when it forked under several);
    /// `null` elsewhere. A process that forks and later execs is named by this, not
    /// by the program it ran last.
    pub forked_as: Option<String>,
    pub cgroup: Option<String>,
    /// The systemd unit or container the cgroup names, if any.
    pub unit: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParentForker {
    pub process: ProcRef,
    pub children: u64,
    /// Most children created within any one second.
    pub peak_per_sec: u64,
    /// Children per second from its first child to its last (at least 1 s).
    pub mean_per_sec: f64,
    pub first_fork_ktime_ns: u64,
    pub last_fork_ktime_ns: u64,
    /// The executables it was running when it forked, with the forks made under
    /// each, in the order it ran them (one entry unless it exec'd between forks).
    pub forked_as: Vec<Count>,
    /// What the children ran last, most common first.
    pub children_ran: Vec<Count>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupForker {
    pub host: String,
    /// The executable or cgroup path (`null`: unknown).
    pub key: Option<String>,
    /// For cgroups: the unit or container it names.
    pub unit: Option<String>,
    pub forks: u64,
    /// Distinct processes that forked.
    pub parents: u64,
    pub peak_per_sec: u64,
    pub mean_per_sec: f64,
    /// What the children of these forks ran last, most common first: a separate
    /// column, never what the forks are counted under.
    pub children_ran: Vec<Count>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopForkers {
    pub by_parent: Vec<ParentForker>,
    pub by_executable: Vec<GroupForker>,
    pub by_cgroup: Vec<GroupForker>,
    /// Forks per systemd unit and per container, over all hosts
    /// ([`super::services`]).
    pub by_service: super::services::ByService,
}

#[derive(Clone, Debug, Serialize)]
pub struct Executed {
    pub filename: String,
    pub execs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    pub host: String,
    pub boot_id: String,
    pub start_ktime_ns: u64,
    pub start: Option<String>,
    pub bucket_ns: u64,
    /// Process forks per bucket, from `start_ktime_ns`.
    pub forks: Vec<u64>,
    pub peak_per_sec: u64,
    pub peak_ktime_ns: Option<u64>,
    pub peak_at: Option<String>,
    pub end_ktime_ns: u64,
    pub end: Option<String>,
    /// For the terminal: the span cut into at most [`SPARK_COLUMNS`] columns of a
    /// round width, and the fork rate (per second) in each.
    #[serde(skip)]
    pub column_ns: u64,
    #[serde(skip)]
    pub columns: Vec<f64>,
}

/// Width of the terminal sparkline.
pub const SPARK_COLUMNS: u64 = 72;

/// The smallest round column width that fits `span_ns` into [`SPARK_COLUMNS`].
pub fn column_width(span_ns: u64) -> u64 {
    const MS: u64 = 1_000_000;
    const STEPS: [u64; 19] = [
        10 * MS,
        20 * MS,
        50 * MS,
        100 * MS,
        200 * MS,
        500 * MS,
        NS_PER_SEC,
        2 * NS_PER_SEC,
        5 * NS_PER_SEC,
        10 * NS_PER_SEC,
        15 * NS_PER_SEC,
        30 * NS_PER_SEC,
        60 * NS_PER_SEC,
        120 * NS_PER_SEC,
        300 * NS_PER_SEC,
        600 * NS_PER_SEC,
        900 * NS_PER_SEC,
        1800 * NS_PER_SEC,
        3600 * NS_PER_SEC,
    ];
    let need = span_ns.div_ceil(SPARK_COLUMNS).max(1);
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= need)
        .unwrap_or_else(|| need.div_ceil(3600 * NS_PER_SEC) * 3600 * NS_PER_SEC)
}

#[derive(Clone, Debug, Serialize)]
pub struct SlowReaper {
    /// The parent that had to reap (`null` when unknown).
    pub parent: Option<ProcRef>,
    /// Its children whose time as a zombie is known (exit and reap seen).
    pub zombies: u64,
    pub p50_ns: Option<u64>,
    pub max_ns: Option<u64>,
    pub unreaped_at_end: u64,
    /// Age at the end of the recording of its oldest unreaped zombie.
    pub oldest_unreaped_ns: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrphanReaper {
    pub host: String,
    pub reaper_pid: Option<u32>,
    pub reaper_comm: Option<String>,
    pub autoreap: bool,
    pub orphans: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Zombies {
    /// Processes whose time as a zombie is known (exit and reap seen).
    pub count: u64,
    pub p50_ns: Option<u64>,
    pub p95_ns: Option<u64>,
    pub max_ns: Option<u64>,
    pub longest: Option<ProcRef>,
    pub unreaped_at_end: u64,
    pub slow_reapers: Vec<SlowReaper>,
    pub orphan_reapers: Vec<OrphanReaper>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExitBreakdown {
    pub host: String,
    pub exe: Option<String>,
    pub exits: u64,
    pub success: u64,
    pub failures: u64,
    /// Non-zero exit codes.
    pub codes: BTreeMap<u8, u64>,
    /// Killing signals, by name.
    pub signals: BTreeMap<String, u64>,
    pub core_dumps: u64,
    pub lifetime_p50_ns: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CrashLoop {
    pub parent: Option<ProcRef>,
    pub exe: Option<String>,
    pub failures: u64,
    pub exits: u64,
    pub first_ktime_ns: u64,
    pub last_ktime_ns: u64,
    /// The last few endings, oldest first: `exit 1`, `SIGSEGV (core)`, ...
    pub last_endings: Vec<String>,
    pub lifetime_p50_ns: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Life {
    pub process: ProcRef,
    pub lifetime_ns: u64,
    pub ending: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrnoCount {
    pub errno: u32,
    pub error: Option<&'static str>,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForkFailer {
    pub process: ProcRef,
    pub count: u64,
    pub by_errno: Vec<ErrnoCount>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForkFailures {
    pub total: u64,
    pub by_errno: Vec<ErrnoCount>,
    pub by_process: Vec<ForkFailer>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExecFailure {
    pub filename: String,
    pub errno: u32,
    pub error: Option<&'static str>,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExecFailures {
    pub total: u64,
    pub top: Vec<ExecFailure>,
}

/// How an ending is written: `exit 0`, `exit 3`, `SIGKILL`, `SIGSEGV (core)`, ...
pub fn ending_text(e: Ending) -> String {
    match e {
        Ending::Alive => "alive at end".into(),
        Ending::Exited(c) => format!("exit {c}"),
        Ending::Killed {
            signal,
            core_dumped,
        } => {
            let name =
                signal_name(signal).map_or_else(|| format!("signal {signal}"), str::to_string);
            if core_dumped {
                format!("{name} (core)")
            } else {
                name
            }
        }
        Ending::Unknown => "ended (status unknown)".into(),
        Ending::ExitUnseen => "ended (exit not seen)".into(),
        Ending::ZombieAtStart => "zombie at start".into(),
    }
}

/// What lost events of a kind make uncertain.
pub fn lost_meaning(kind: &str) -> &'static str {
    match kind {
        "fork" => {
            "processes created then may be missing or have no known parent; fork counts and rates are lower bounds"
        }
        "exec" => {
            "some executables are not known; exec chains and per-executable counts may be incomplete"
        }
        "exit" => {
            "some exits are missing: those processes look alive at the end, and their status and lifetime are unknown"
        }
        "wait" => "some reapers are unknown",
        "free" => "some reaps are missing: those processes look like zombies at the end",
        "exec_failed" => "failed execs are undercounted",
        "fork_failed" => "failed forks are undercounted",
        _ => "some events of an unknown kind are missing",
    }
}

/// The nearest-rank percentile `q` (0..=1) of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The most events within any window of one second, over sorted times.
pub fn peak_per_sec(sorted_ns: &[u64]) -> u64 {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..sorted_ns.len() {
        while sorted_ns[hi].saturating_sub(sorted_ns[lo]) >= NS_PER_SEC {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as u64
}

/// Events per second between the first and the last (over at least one second).
pub fn mean_per_sec(sorted_ns: &[u64]) -> f64 {
    match (sorted_ns.first(), sorted_ns.last()) {
        (Some(&a), Some(&b)) => {
            let span = (b - a).max(NS_PER_SEC) as f64 / NS_PER_SEC as f64;
            sorted_ns.len() as f64 / span
        }
        _ => 0.0,
    }
}

struct Ctx<'a> {
    h: &'a History,
}

impl Ctx<'_> {
    fn host(&self, run: usize) -> String {
        self.h
            .runs
            .get(run)
            .map(|r| r.host.clone())
            .unwrap_or_default()
    }

    fn ts(&self, run: usize, ktime_ns: u64) -> Option<String> {
        self.h.runs.get(run)?.wall_ns(ktime_ns).map(rfc3339)
    }

    fn proc_ref(&self, i: ProcIdx) -> ProcRef {
        let p = &self.h.procs[i];
        let cgroup = p.cgroup.as_deref().map(str::to_string);
        ProcRef {
            host: self.host(p.run),
            proc_id: p.id.to_string(),
            pid: p.pid(),
            comm: lossy(p.comm.as_bytes()),
            exe: p.exe().map(|e| lossy(e)),
            chain: p.chain().iter().map(|c| lossy(c)).collect(),
            forked_as: None,
            unit: cgroup.as_deref().and_then(cgroup_label),
            cgroup,
        }
    }

    /// `i` as the parent of forks made at `fork_times`: named by the executable
    /// it ran when it made most of them.
    fn forker_ref(&self, i: ProcIdx, fork_times: impl IntoIterator<Item = u64>) -> ProcRef {
        let mut r = self.proc_ref(i);
        r.forked_as = forked_as(self.h, i, fork_times)
            .into_iter()
            .max_by(|a, b| a.count.cmp(&b.count).then_with(|| b.name.cmp(&a.name)))
            .map(|c| c.name);
        r
    }
}

/// The executables process `i` was running at `fork_times`, with how many forks
/// each, in the order it ran them. A process runs one image from exec to exec
/// (fs/exec.c `begin_new_exec`), and a child is created with the image its parent
/// runs at that moment (kernel/fork.c `copy_process`, `mm` copied or shared).
fn forked_as(h: &History, i: ProcIdx, fork_times: impl IntoIterator<Item = u64>) -> Vec<Count> {
    let p = &h.procs[i];
    // Keyed by the exec the image came from (0: what it ran before its first exec).
    let mut by: BTreeMap<usize, (Option<&[u8]>, u64)> = BTreeMap::new();
    for t in fork_times {
        let n = p.execs.partition_point(|e| e.ktime_ns <= t);
        by.entry(n)
            .or_insert_with(|| (p.image_at(t).map(|e| &e[..]), 0))
            .1 += 1;
    }
    by.into_values()
        .map(|(exe, count)| Count {
            name: exe.map_or_else(|| "(unknown)".into(), lossy),
            count,
        })
        .collect()
}

/// The forks of one group (a parent, an executable, a cgroup).
#[derive(Default)]
struct Group {
    times: Vec<u64>,
    parents: Vec<ProcIdx>,
    /// The children created (executable and cgroup groups).
    children: Vec<ProcIdx>,
}

impl Group {
    fn finish(&mut self) {
        self.times.sort_unstable();
        self.parents.sort_unstable();
        self.parents.dedup();
    }
}

fn rank<K: Ord + Clone>(groups: HashMap<K, Group>, top: usize) -> Vec<(K, Group)> {
    let mut v: Vec<(K, Group)> = groups
        .into_iter()
        .map(|(k, mut g)| {
            g.finish();
            (k, g)
        })
        .collect();
    // Most forks first; ties by who started first, then by key, so output is stable.
    v.sort_by(|(ka, a), (kb, b)| {
        b.times
            .len()
            .cmp(&a.times.len())
            .then_with(|| a.times.first().cmp(&b.times.first()))
            .then_with(|| ka.cmp(kb))
    });
    v.truncate(top);
    v
}

/// Computes the whole report.
pub fn compute(records: &Records, h: &History, opts: Options) -> Report {
    let cx = Ctx { h };
    let top = opts.top.max(1);

    let inputs: Vec<InputOut> = records
        .inputs
        .iter()
        .map(|i| InputOut {
            name: i.name.clone(),
            bytes: i.bytes,
            lines: i.lines,
            records: i.records,
            bad_lines: i.bad,
            missing_lines: i.missing,
            seq_restarts: i.seq_restarts,
            end_reason: i.end.clone(),
        })
        .collect();
    let input_problems = InputProblems {
        bad_lines: records.bad_total(),
        by_reason: records.bad.iter().map(|(k, n)| (k.key(), *n)).collect(),
        first_bad_lines: records
            .first_bad
            .iter()
            .map(|b| BadLineOut {
                input: b.input.clone(),
                line: b.line,
                reason: b.kind.key(),
                detail: b.detail.clone(),
            })
            .collect(),
        missing_lines: records.inputs.iter().map(|i| i.missing).sum(),
        duplicates: records.duplicates,
        parent_cycles_broken: h.cycles_broken,
    };
    let runs: Vec<RunOut> = h
        .runs
        .iter()
        .map(|r| RunOut {
            host: r.host.clone(),
            boot_id: r.boot_id.clone(),
            start_ktime_ns: r.first_ktime_ns,
            end_ktime_ns: r.last_ktime_ns,
            start: r.wall_ns(r.first_ktime_ns).map(rfc3339),
            end: r.wall_ns(r.last_ktime_ns).map(rfc3339),
            duration_ns: r.last_ktime_ns - r.first_ktime_ns,
            records: r.records.clone(),
        })
        .collect();

    let totals = totals(h);
    let lost = lost(&cx);
    let alerts = alerts(h);
    let top_forkers = top_forkers(&cx, top);
    let top_executed = top_executed(h, top);
    let timeline = timelines(&cx);
    let zombies = zombies(&cx, top);
    let (exits, crash_loops) = exits(&cx, top);
    let (longest_lived, shortest_lived) = lifetimes(&cx, top);
    let fork_failures = fork_failures(&cx, top);
    let exec_failures = exec_failures(h, top);

    let mut report = Report {
        report_version: REPORT_VERSION,
        headline: Vec::new(),
        selection: Vec::new(),
        inputs,
        input_problems,
        runs,
        totals,
        lost,
        alerts,
        top_forkers,
        top_executed,
        timeline,
        zombies,
        exits,
        crash_loops,
        longest_lived,
        shortest_lived,
        fork_failures,
        exec_failures,
    };
    report.headline = headline(&report);
    report
}

fn totals(h: &History) -> Totals {
    let mut t = Totals {
        records: h.runs.iter().map(|r| r.record_count()).sum(),
        processes: h.procs.len() as u64,
        exec_failures: h.exec_failures.len() as u64,
        fork_failures: h.fork_failures.len() as u64,
        lost_events: h.lost.iter().map(|l| l.count).sum(),
        ..Default::default()
    };
    for p in &h.procs {
        match p.origin {
            super::history::Origin::Fork => t.forked += 1,
            super::history::Origin::Snapshot => t.in_snapshot += 1,
            super::history::Origin::Inferred => t.inferred += 1,
        }
        t.threads_created += p.threads_created;
        t.execs += p.execs.len() as u64;
        t.exits += u64::from(p.exit.is_some());
        t.reaps += u64::from(p.reap.is_some());
        t.reaps_inferred += u64::from(p.reap.as_ref().is_some_and(|r| r.inferred));
        t.alive_at_end += u64::from(p.alive_at_end());
        t.zombies_at_end += u64::from(p.zombie_at_end());
    }
    t
}

fn alerts(h: &History) -> Vec<AlertOut> {
    let mut out: Vec<AlertOut> = Vec::new();
    for a in &h.alerts {
        if a.end {
            // The latest open alert of the same kind in that run is the one that ended.
            if let Some(open) = out
                .iter_mut()
                .rev()
                .find(|o| o.alert == a.alert && !o.ended)
            {
                open.ended = true;
            }
            continue;
        }
        out.push(AlertOut {
            alert: a.alert.clone(),
            ktime_ns: a.ktime_ns,
            time: h.runs[a.run].wall_ns(a.ktime_ns).map(rfc3339),
            message: a.message.clone(),
            ended: false,
        });
    }
    out
}

fn lost(cx: &Ctx) -> LostOut {
    let mut by: BTreeMap<(usize, String), LostKind> = BTreeMap::new();
    for l in &cx.h.lost {
        let e = by
            .entry((l.run, l.kind.clone()))
            .or_insert_with(|| LostKind {
                host: cx.host(l.run),
                kind: l.kind.clone(),
                count: 0,
                first_noticed_ktime_ns: l.ktime_ns,
                first_noticed: cx.ts(l.run, l.ktime_ns),
                uncertain: lost_meaning(&l.kind),
            });
        e.count += l.count;
        if l.ktime_ns < e.first_noticed_ktime_ns {
            e.first_noticed_ktime_ns = l.ktime_ns;
            e.first_noticed = cx.ts(l.run, l.ktime_ns);
        }
    }
    let mut by_kind: Vec<LostKind> = by.into_values().collect();
    by_kind.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    let uncertain = cx.h.procs.iter().filter(|p| p.uncertain);
    LostOut {
        total: by_kind.iter().map(|k| k.count).sum(),
        by_kind,
        uncertain_processes: uncertain.clone().count() as u64,
        ended_unseen: uncertain
            .filter(|p| p.ending() == super::history::Ending::ExitUnseen)
            .count() as u64,
    }
}

/// Process forks: (child, parent if known, fork time).
fn forks(h: &History) -> impl Iterator<Item = (ProcIdx, Option<ProcIdx>, u64)> + '_ {
    h.procs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.fork_ns.map(|t| (i, p.parent, t)))
}

fn top_forkers(cx: &Ctx, top: usize) -> TopForkers {
    let h = cx.h;
    let mut by_parent: HashMap<ProcIdx, Group> = HashMap::new();
    let mut by_exe: HashMap<ExeKey, Group> = HashMap::new();
    let mut by_cgroup: HashMap<(usize, Option<Arc<str>>), Group> = HashMap::new();
    for (child, parent, t) in forks(h) {
        let c = &h.procs[child];
        if let Some(pi) = parent {
            by_parent.entry(pi).or_default().times.push(t);
        }
        // The executable that called fork: the parent's at that moment, which the
        // child runs until it execs (`image`). Never what the child exec'd later:
        // that is `children_ran`.
        let exe = match parent {
            Some(pi) => h.procs[pi].image_at(t).cloned(),
            None => c.image.clone(),
        };
        let g = by_exe.entry((c.run, exe)).or_default();
        g.times.push(t);
        g.parents.extend(parent);
        g.children.push(child);
        let g = by_cgroup.entry((c.run, c.cgroup.clone())).or_default();
        g.times.push(t);
        g.parents.extend(parent);
        g.children.push(child);
    }
    let parents = rank(by_parent, top)
        .into_iter()
        .map(|(pi, g)| {
            let forked: Vec<ProcIdx> = (h.procs[pi].children.iter().copied())
                .filter(|&c| h.procs[c].fork_ns.is_some())
                .collect();
            ParentForker {
                process: cx.forker_ref(pi, g.times.iter().copied()),
                children: g.times.len() as u64,
                peak_per_sec: peak_per_sec(&g.times),
                mean_per_sec: mean_per_sec(&g.times),
                first_fork_ktime_ns: g.times.first().copied().unwrap_or(0),
                last_fork_ktime_ns: g.times.last().copied().unwrap_or(0),
                forked_as: forked_as(h, pi, g.times.iter().copied()),
                children_ran: children_ran(h, &forked),
            }
        })
        .collect();
    let group = |host: String, key: Option<String>, unit: Option<String>, g: &Group| GroupForker {
        host,
        key,
        unit,
        forks: g.times.len() as u64,
        parents: g.parents.len() as u64,
        peak_per_sec: peak_per_sec(&g.times),
        mean_per_sec: mean_per_sec(&g.times),
        children_ran: children_ran(h, &g.children),
    };
    // Today's hook of the services fold: one fork per forked process, under the
    // unit and container its records named (what `add` counts from the records).
    let mut services = super::services::Services::default();
    for (child, _, _) in forks(h) {
        let id = &h.procs[child].identity;
        services.add_fork(
            id.unit.as_ref(),
            id.container_id.as_ref(),
            id.pod_uid.as_ref(),
        );
    }
    TopForkers {
        by_service: services.finish(top),
        by_parent: parents,
        by_executable: rank(by_exe, top)
            .into_iter()
            .map(|((run, exe), g)| group(cx.host(run), exe.map(|e| lossy(&e)), None, &g))
            .collect(),
        by_cgroup: rank(by_cgroup, top)
            .into_iter()
            .map(|((run, cg), g)| {
                let unit = cg.as_deref().and_then(cgroup_label);
                group(cx.host(run), cg.map(|c| c.to_string()), unit, &g)
            })
            .collect(),
    }
}

/// What `children` ran last, the three most common first.
fn children_ran(h: &History, children: &[ProcIdx]) -> Vec<Count> {
    let mut ran: HashMap<Option<&Arc<[u8]>>, u64> = HashMap::new();
    for &c in children {
        *ran.entry(h.procs[c].exe()).or_default() += 1;
    }
    let mut ran: Vec<(Option<&Arc<[u8]>>, u64)> = ran.into_iter().collect();
    ran.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ran.truncate(3);
    ran.into_iter()
        .map(|(exe, count)| Count {
            name: exe.map_or_else(|| "(unknown)".into(), |e| lossy(e)),
            count,
        })
        .collect()
}

fn top_executed(h: &History, top: usize) -> Vec<Executed> {
    let mut by: HashMap<&[u8], u64> = HashMap::new();
    for p in &h.procs {
        for e in &p.execs {
            *by.entry(&e.filename).or_default() += 1;
        }
    }
    let mut v: Vec<(&[u8], u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(top);
    v.into_iter()
        .map(|(f, n)| Executed {
            filename: lossy(f),
            execs: n,
        })
        .collect()
}

fn timelines(cx: &Ctx) -> Vec<Timeline> {
    let h = cx.h;
    let mut times: Vec<Vec<u64>> = vec![Vec::new(); h.runs.len()];
    for (child, _, t) in forks(h) {
        times[h.procs[child].run].push(t);
    }
    h.runs
        .iter()
        .enumerate()
        .map(|(run, r)| {
            let t = &mut times[run];
            t.sort_unstable();
            let start = r.first_ktime_ns;
            let span = r.last_ktime_ns - start;
            let secs = span / NS_PER_SEC + 1;
            let bucket_secs = secs.div_ceil(TIMELINE_MAX_BUCKETS).max(1);
            let bucket_ns = bucket_secs * NS_PER_SEC;
            let mut forks = vec![0u64; (span / bucket_ns + 1) as usize];
            for &ft in t.iter() {
                let last = forks.len() - 1;
                let i = (ft.saturating_sub(start) / bucket_ns) as usize;
                forks[i.min(last)] += 1;
            }
            let column_ns = column_width(span);
            let mut counts = vec![0u64; (span / column_ns + 1) as usize];
            for &ft in t.iter() {
                let last = counts.len() - 1;
                let i = (ft.saturating_sub(start) / column_ns) as usize;
                counts[i.min(last)] += 1;
            }
            let per_sec = NS_PER_SEC as f64 / column_ns as f64;
            let columns = counts.iter().map(|&c| c as f64 * per_sec).collect();
            // Where the busiest one-second window begins.
            let (peak, peak_at) = peak_window(t);
            Timeline {
                host: r.host.clone(),
                boot_id: r.boot_id.clone(),
                start_ktime_ns: start,
                start: cx.ts(run, start),
                bucket_ns,
                forks,
                peak_per_sec: peak,
                peak_ktime_ns: peak_at,
                peak_at: peak_at.and_then(|p| cx.ts(run, p)),
                end_ktime_ns: r.last_ktime_ns,
                end: cx.ts(run, r.last_ktime_ns),
                column_ns,
                columns,
            }
        })
        .collect()
}

/// [`peak_per_sec`] and where its window starts.
fn peak_window(sorted_ns: &[u64]) -> (u64, Option<u64>) {
    let mut best = (0u64, None);
    let mut lo = 0;
    for hi in 0..sorted_ns.len() {
        while sorted_ns[hi].saturating_sub(sorted_ns[lo]) >= NS_PER_SEC {
            lo += 1;
        }
        let n = (hi - lo + 1) as u64;
        if n > best.0 {
            best = (n, Some(sorted_ns[lo]));
        }
    }
    best
}

fn zombies(cx: &Ctx, top: usize) -> Zombies {
    let h = cx.h;
    let mut all: Vec<(u64, ProcIdx)> = Vec::new();
    #[derive(Default)]
    struct ByParent {
        times: Vec<u64>,
        unreaped: u64,
        oldest: Option<u64>,
    }
    let mut by_parent: HashMap<Option<ProcIdx>, ByParent> = HashMap::new();
    let mut orphans: HashMap<(usize, Option<u32>, Option<String>, bool), u64> = HashMap::new();
    let mut unreaped_at_end = 0;
    for (i, p) in h.procs.iter().enumerate() {
        let parent = p.exit.as_ref().and_then(|e| e.parent).or(p.parent);
        if let Some(z) = p.zombie_ns()
            && p.exit.is_some()
        {
            all.push((z, i));
            by_parent.entry(parent).or_default().times.push(z);
        }
        if p.zombie_at_end() {
            unreaped_at_end += 1;
            let since = p.exit.as_ref().map_or(p.first_ns, |e| e.ktime_ns);
            let age = h.end_ns(p.run).saturating_sub(since);
            let e = by_parent.entry(parent).or_default();
            e.unreaped += 1;
            e.oldest = Some(e.oldest.map_or(age, |o| o.max(age)));
        }
        // An orphan: reaped after being reparented away from the parent it started with.
        if let Some(r) = &p.reap
            && p.records > 0
            && r.ppid != p.ppid
        {
            let key = (
                p.run,
                r.reaper_pid,
                r.reaper_comm.map(|c| lossy(c.as_bytes())),
                r.autoreap,
            );
            *orphans.entry(key).or_default() += 1;
        }
    }
    all.sort_unstable();
    let sorted: Vec<u64> = all.iter().map(|(z, _)| *z).collect();
    let mut slow: Vec<SlowReaper> = by_parent
        .into_iter()
        .filter_map(|(parent, mut g)| {
            g.times.sort_unstable();
            let max = g.times.last().copied();
            let slow = max.is_some_and(|m| m >= SLOW_REAP_NS)
                || g.oldest.is_some_and(|o| o >= SLOW_REAP_NS);
            slow.then(|| SlowReaper {
                parent: parent.map(|p| cx.proc_ref(p)),
                zombies: g.times.len() as u64,
                p50_ns: percentile(&g.times, 0.5),
                max_ns: max,
                unreaped_at_end: g.unreaped,
                oldest_unreaped_ns: g.oldest,
            })
        })
        .collect();
    slow.sort_by(|a, b| {
        let worst = |s: &SlowReaper| s.oldest_unreaped_ns.max(s.max_ns);
        b.unreaped_at_end
            .cmp(&a.unreaped_at_end)
            .then_with(|| worst(b).cmp(&worst(a)))
            .then_with(|| {
                a.parent
                    .as_ref()
                    .map(|p| p.pid)
                    .cmp(&b.parent.as_ref().map(|p| p.pid))
            })
    });
    slow.truncate(top);
    let mut orphan_reapers: Vec<OrphanReaper> = orphans
        .into_iter()
        .map(|((run, pid, comm, autoreap), n)| OrphanReaper {
            host: cx.host(run),
            reaper_pid: pid,
            reaper_comm: comm,
            autoreap,
            orphans: n,
        })
        .collect();
    orphan_reapers.sort_by(|a, b| {
        b.orphans
            .cmp(&a.orphans)
            .then_with(|| a.reaper_pid.cmp(&b.reaper_pid))
            .then_with(|| a.autoreap.cmp(&b.autoreap))
    });
    orphan_reapers.truncate(top);
    Zombies {
        count: sorted.len() as u64,
        p50_ns: percentile(&sorted, 0.5),
        p95_ns: percentile(&sorted, 0.95),
        max_ns: sorted.last().copied(),
        longest: all.last().map(|&(_, i)| cx.proc_ref(i)),
        unreaped_at_end,
        slow_reapers: slow,
        orphan_reapers,
    }
}

fn exits(cx: &Ctx, top: usize) -> (Vec<ExitBreakdown>, Vec<CrashLoop>) {
    let h = cx.h;
    #[derive(Default)]
    struct Acc {
        out: Option<ExitBreakdown>,
        lifetimes: Vec<u64>,
    }
    let mut by_exe: HashMap<ExeKey, Acc> = HashMap::new();
    // (parent, exe) → (exit time, ending, lifetime, fork time) of each exit.
    type Loop = Vec<(u64, Ending, Option<u64>, Option<u64>)>;
    let mut by_parent_exe: HashMap<(Option<ProcIdx>, ExeKey), Loop> = HashMap::new();
    for p in &h.procs {
        let Some(exit) = &p.exit else { continue };
        let ending = p.ending();
        let exe = p.exe().cloned();
        let acc = by_exe.entry((p.run, exe.clone())).or_default();
        let b = acc.out.get_or_insert_with(|| ExitBreakdown {
            host: cx.host(p.run),
            exe: exe.as_deref().map(lossy),
            exits: 0,
            success: 0,
            failures: 0,
            codes: BTreeMap::new(),
            signals: BTreeMap::new(),
            core_dumps: 0,
            lifetime_p50_ns: None,
        });
        b.exits += 1;
        match ending {
            Ending::Exited(0) => b.success += 1,
            Ending::Exited(c) => {
                b.failures += 1;
                *b.codes.entry(c).or_default() += 1;
            }
            Ending::Killed {
                signal,
                core_dumped,
            } => {
                b.failures += 1;
                let name =
                    signal_name(signal).map_or_else(|| format!("signal {signal}"), str::to_string);
                *b.signals.entry(name).or_default() += 1;
                b.core_dumps += u64::from(core_dumped);
            }
            _ => {}
        }
        acc.lifetimes.extend(p.lifetime_ns());
        by_parent_exe
            .entry((p.parent, (p.run, exe)))
            .or_default()
            .push((exit.ktime_ns, ending, p.lifetime_ns(), p.fork_ns));
    }
    let mut breakdown: Vec<ExitBreakdown> = by_exe
        .into_values()
        .filter_map(|mut acc| {
            acc.lifetimes.sort_unstable();
            let mut b = acc.out?;
            b.lifetime_p50_ns = percentile(&acc.lifetimes, 0.5);
            Some(b)
        })
        .collect();
    breakdown.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| b.exits.cmp(&a.exits))
            .then_with(|| a.exe.cmp(&b.exe))
    });
    breakdown.truncate(top);

    let mut loops: Vec<CrashLoop> = by_parent_exe
        .into_iter()
        .filter_map(|((parent, (_run, exe)), mut v)| {
            v.sort_by_key(|e| e.0);
            let failures: Vec<&(u64, Ending, Option<u64>, Option<u64>)> =
                v.iter().filter(|e| e.1.is_failure()).collect();
            if (failures.len() as u64) < CRASH_LOOP_MIN {
                return None;
            }
            let mut lifetimes: Vec<u64> = failures.iter().filter_map(|e| e.2).collect();
            lifetimes.sort_unstable();
            let last: Vec<String> = v
                .iter()
                .rev()
                .take(5)
                .rev()
                .map(|e| ending_text(e.1))
                .collect();
            Some(CrashLoop {
                // Named by what it ran when it started the failing children.
                parent: parent.map(|p| cx.forker_ref(p, failures.iter().filter_map(|e| e.3))),
                exe: exe.as_deref().map(lossy),
                failures: failures.len() as u64,
                exits: v.len() as u64,
                first_ktime_ns: failures[0].0,
                last_ktime_ns: failures[failures.len() - 1].0,
                last_endings: last,
                lifetime_p50_ns: percentile(&lifetimes, 0.5),
            })
        })
        .collect();
    loops.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.exe.cmp(&b.exe))
            .then_with(|| {
                a.parent
                    .as_ref()
                    .map(|p| p.pid)
                    .cmp(&b.parent.as_ref().map(|p| p.pid))
            })
    });
    loops.truncate(top);
    (breakdown, loops)
}

fn lifetimes(cx: &Ctx, top: usize) -> (Vec<Life>, Vec<Life>) {
    let h = cx.h;
    let mut v: Vec<(u64, ProcIdx)> = h
        .procs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.lifetime_ns().map(|l| (l, i)))
        .collect();
    v.sort_unstable();
    let life = |&(l, i): &(u64, ProcIdx)| Life {
        process: cx.proc_ref(i),
        lifetime_ns: l,
        ending: ending_text(h.procs[i].ending()),
    };
    let shortest = v.iter().take(top).map(life).collect();
    let longest = v.iter().rev().take(top).map(life).collect();
    (longest, shortest)
}

fn errno_counts(map: &BTreeMap<u32, u64>) -> Vec<ErrnoCount> {
    let mut v: Vec<ErrnoCount> = map
        .iter()
        .map(|(&errno, &count)| ErrnoCount {
            errno,
            error: errno_name(errno),
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.errno.cmp(&b.errno)));
    v
}

fn fork_failures(cx: &Ctx, top: usize) -> ForkFailures {
    let h = cx.h;
    let mut by_errno: BTreeMap<u32, u64> = BTreeMap::new();
    for f in &h.fork_failures {
        *by_errno.entry(f.errno).or_default() += 1;
    }
    let mut procs: Vec<(u64, ProcIdx)> = h
        .procs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.fork_failed.is_empty())
        .map(|(i, p)| (p.fork_failed.values().sum(), i))
        .collect();
    procs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    procs.truncate(top);
    ForkFailures {
        total: h.fork_failures.len() as u64,
        by_errno: errno_counts(&by_errno),
        by_process: procs
            .into_iter()
            .map(|(n, i)| ForkFailer {
                process: cx.proc_ref(i),
                count: n,
                by_errno: errno_counts(&h.procs[i].fork_failed),
            })
            .collect(),
    }
}

fn exec_failures(h: &History, top: usize) -> ExecFailures {
    let mut by: HashMap<(&[u8], u32), u64> = HashMap::new();
    for f in &h.exec_failures {
        *by.entry((&f.filename, f.errno)).or_default() += 1;
    }
    let mut v: Vec<((&[u8], u32), u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(top);
    ExecFailures {
        total: h.exec_failures.len() as u64,
        top: v
            .into_iter()
            .map(|((f, errno), count)| ExecFailure {
                filename: lossy(f),
                errno,
                error: errno_name(errno),
                count,
            })
            .collect(),
    }
}

/// `pid 1234 bash (/usr/bin/bash)`, with the host when there are several.
pub fn proc_label(p: &ProcRef, with_host: bool) -> String {
    let mut s = String::new();
    if with_host {
        s.push_str(&p.host);
        s.push(' ');
    }
    // A process that ran several programs is named by all of them in order, so a
    // script that forked and then exec'd its service is not taken for the service.
    let name = if p.chain.len() > 1 {
        p.chain.join(" → ")
    } else {
        p.comm.clone()
    };
    s.push_str(&format!("pid {} {name}", p.pid));
    match (&p.forked_as, &p.exe) {
        (Some(f), _) if p.chain.len() > 1 => s.push_str(&format!(" (forked as {f})")),
        (Some(exe), _) | (None, Some(exe)) => {
            // Only when it says more than the comm does.
            if lossy(basename(exe.as_bytes())) != p.comm || exe.contains('/') {
                s.push_str(&format!(" ({exe})"));
            }
        }
        (None, None) => {}
    }
    s
}

/// A cgroup as people know it: the unit or container, else the path.
pub fn cgroup_text(path: Option<&str>, unit: Option<&str>) -> String {
    match (unit, path) {
        (Some(u), _) => u.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => "an unknown cgroup".to_string(),
    }
}

fn headline(r: &Report) -> Vec<String> {
    let hosts = r.runs.len() > 1;
    let mut out = Vec::new();
    if let Some(f) = r.top_forkers.by_parent.first() {
        let mut s = format!(
            "busiest forker: {} in {}: {} children, peak {}, mean {}",
            proc_label(&f.process, hosts),
            cgroup_text(f.process.cgroup.as_deref(), f.process.unit.as_deref()),
            thousands(f.children),
            rate(f.peak_per_sec as f64),
            rate(f.mean_per_sec),
        );
        if let Some(c) = f.children_ran.first() {
            s.push_str(&format!(
                "; its children ran {} ({})",
                c.name,
                thousands(c.count)
            ));
        }
        out.push(s);
    } else {
        out.push(format!(
            "no process was created during the recording ({} records)",
            thousands(r.totals.records)
        ));
    }
    if let Some(e) = r.top_forkers.by_executable.first() {
        out.push(format!(
            "busiest executable: {}{}: {} forks by {}, peak {}",
            if hosts {
                format!("{} ", e.host)
            } else {
                String::new()
            },
            e.key.as_deref().unwrap_or("(unknown)"),
            thousands(e.forks),
            super::fmt::plural(e.parents, "process", "processes"),
            rate(e.peak_per_sec as f64),
        ));
    }
    if let Some(c) = r.top_forkers.by_cgroup.first() {
        let name = match (&c.unit, &c.key) {
            (Some(u), Some(k)) => format!("{u} ({k})"),
            (None, Some(k)) => k.clone(),
            _ => "(unknown)".to_string(),
        };
        out.push(format!(
            "busiest cgroup: {}{}: {} forks, peak {}",
            if hosts {
                format!("{} ", c.host)
            } else {
                String::new()
            },
            name,
            thousands(c.forks),
            rate(c.peak_per_sec as f64),
        ));
    }
    if r.lost.total > 0 {
        let kinds: Vec<String> = r
            .lost
            .by_kind
            .iter()
            .map(|k| format!("{} {}", k.kind, thousands(k.count)))
            .collect();
        let marked = match r.lost.uncertain_processes {
            0 => String::new(),
            n => format!("; {} processes lived through the losses", thousands(n)),
        };
        out.push(format!(
            "{} events were lost ({}): the figures below are lower bounds{marked}",
            thousands(r.lost.total),
            kinds.join(", ")
        ));
    }
    if let Some(l) = r.crash_loops.first() {
        out.push(format!(
            "crash loop: {} failed {} times under {}",
            l.exe.as_deref().unwrap_or("(unknown)"),
            thousands(l.failures),
            l.parent
                .as_ref()
                .map_or_else(|| "an unknown parent".into(), |p| proc_label(p, hosts)),
        ));
    }
    if r.zombies.unreaped_at_end > 0 {
        out.push(format!(
            "{} still zombies at the end of the recording",
            super::fmt::plural(r.zombies.unreaped_at_end, "process was", "processes were")
        ));
    }
    if r.fork_failures.total > 0 {
        let errs: Vec<String> = r
            .fork_failures
            .by_errno
            .iter()
            .map(|e| format!("{} {}", e.error.unwrap_or("errno"), thousands(e.count)))
            .collect();
        out.push(format!(
            "{} failed: {}",
            super::fmt::plural(r.fork_failures.total, "fork", "forks"),
            errs.join(", ")
        ));
    }
    if r.input_problems.bad_lines > 0 {
        out.push(format!(
            "{} of the input skipped (see INPUT PROBLEMS)",
            super::fmt::plural(r.input_problems.bad_lines, "line", "lines")
        ));
    }
    out
}
