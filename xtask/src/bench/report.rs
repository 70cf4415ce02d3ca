//! Turning runs into the summary: medians and ranges, paired ratios, the markdown
//! tables, the check against the targets of issue 4, and the JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::conditions::{Condition, Counted, Mode};
use super::probe::ProgCounters;

/// One storm under one condition.
#[derive(Clone, Debug)]
pub struct Run {
    pub mode: Mode,
    pub condition: Condition,
    /// Which round of the interleaving; run i of a condition pairs with run i of untraced.
    pub round: usize,
    pub ops: u64,
    pub elapsed_s: f64,
    pub ops_per_s: f64,
    /// Events of the kinds the condition records that the storm made.
    pub expected: u64,
    pub counted: Counted,
    /// CPU time of the tracer (or peer) from just before the storm until it went idle
    /// after it.
    pub cpu_s: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// RSS when attached (before the storm) and after the drain: flat if nothing piles up.
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// Of the RSS, the BPF map mappings (the ring buffer).
    pub ring_rss_kib: Option<u64>,
    /// Voluntary context switches (sleeps, so wake-ups) over the storm and its drain.
    pub wakeups: Option<u64>,
    /// Other processes that held BPF programs when the run started (`pid comm`).
    pub other_bpf: Vec<String>,
    /// From start to attached (tracer: first record in its output file).
    pub attach_s: Option<f64>,
    /// How long after the storm the tracer (or peer) took to go idle.
    pub drain_s: Option<f64>,
    /// It did not go idle within the deadline: CPU and counts may be incomplete.
    pub drain_timed_out: bool,
    /// Run-time statistics of its BPF programs over the storm, by program name.
    pub progs: BTreeMap<String, ProgCounters>,
}

/// Median, minimum and maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// A program's cost summed over runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgCost {
    pub name: String,
    /// Runs over all storms.
    pub runs: u64,
    /// Median over storms of the average run time.
    pub ns_per_run: f64,
}

/// All runs of one condition on one mode.
#[derive(Clone, Debug)]
pub struct Summary {
    pub mode: Mode,
    pub condition: Condition,
    pub runs: usize,
    pub ops: u64,
    pub ops_per_s: Spread,
    /// Paired with untraced, run by run; `None` for untraced itself.
    pub ratio: Option<Spread>,
    pub recorded: u64,
    pub expected: u64,
    pub lost: Option<u64>,
    pub overflows: u64,
    /// CPU time per 1,000 operations: median over runs.
    pub cpu_ms_per_kop: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// Of it, the ring buffer mapping.
    pub ring_rss_mib: Option<f64>,
    /// Wake-ups of the tracer (or peer) per 1,000 operations: median over runs.
    pub wakeups_per_kop: Option<f64>,
    /// Runs during which other processes held BPF programs.
    pub contended_runs: usize,
    /// Largest growth of RSS from before the storm to after its drain.
    pub rss_growth_mib: Option<f64>,
    pub progs: Vec<ProgCost>,
    pub drain_timeouts: usize,
}

pub fn summarize(runs: &[Run], mode: Mode, condition: Condition) -> Option<Summary> {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.mode == mode && r.condition == condition)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let rates: Vec<f64> = mine.iter().map(|r| r.ops_per_s).collect();
    let ratio = (condition != Condition::Untraced)
        .then(|| {
            let ratios: Vec<f64> = mine
                .iter()
                .filter_map(|r| {
                    runs.iter()
                        .find(|u| {
                            u.mode == mode
                                && u.condition == Condition::Untraced
                                && u.round == r.round
                        })
                        .map(|u| r.ops_per_s / u.ops_per_s)
                })
                .collect();
            Spread::of(&ratios)
        })
        .flatten();
    let ops: u64 = mine.iter().map(|r| r.ops).sum();
    // Medians of per-run figures: a run during which something else stormed the
    // machine (the tracer traces everything) does not drag the figure with it.
    let per_kop = |value: &dyn Fn(&Run) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = mine
            .iter()
            .filter(|r| r.ops > 0)
            .filter_map(|r| Some(value(r)? * 1000.0 / r.ops as f64))
            .collect();
        Spread::of(&v).map(|s| s.median)
    };
    let lost: Option<u64> = mine.iter().map(|r| r.counted.lost).sum();
    let rss = mine.iter().filter_map(|r| r.peak_rss_kib).max();
    // Per program: all runs counted, and the median of the per-run averages.
    let mut progs: BTreeMap<&str, (u64, Vec<f64>)> = BTreeMap::new();
    for r in &mine {
        for (name, c) in r.progs.iter().filter(|(_, c)| c.run_cnt > 0) {
            let p = progs.entry(name).or_default();
            p.0 += c.run_cnt;
            p.1.push(c.run_time_ns as f64 / c.run_cnt as f64);
        }
    }
    Some(Summary {
        mode,
        condition,
        runs: mine.len(),
        ops,
        ops_per_s: Spread::of(&rates)?,
        ratio,
        recorded: mine.iter().map(|r| r.counted.recorded).sum(),
        expected: mine.iter().map(|r| r.expected).sum(),
        lost,
        overflows: mine.iter().map(|r| r.counted.overflows).sum(),
        cpu_ms_per_kop: per_kop(&|r| r.cpu_s.map(|c| c * 1000.0)),
        peak_rss_mib: rss.map(|k| k as f64 / 1024.0),
        wakeups_per_kop: per_kop(&|r| r.wakeups.map(|w| w as f64)),
        contended_runs: mine.iter().filter(|r| !r.other_bpf.is_empty()).count(),
        ring_rss_mib: mine
            .iter()
            .filter_map(|r| r.ring_rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0),
        rss_growth_mib: mine
            .iter()
            .filter_map(|r| Some(r.rss_after_kib? as f64 - r.rss_before_kib? as f64))
            .max_by(f64::total_cmp)
            .map(|k| k / 1024.0),
        progs: progs
            .into_iter()
            .filter_map(|(name, (runs, averages))| {
                Some(ProgCost {
                    name: name.to_string(),
                    runs,
                    ns_per_run: Spread::of(&averages)?.median,
                })
            })
            .collect(),
        drain_timeouts: mine.iter().filter(|r| r.drain_timed_out).count(),
    })
}

/// Start-up of `tracer watch`, measured apart from the storms.
#[derive(Clone, Debug, Default)]
pub struct Startup {
    /// Completion time of the first marker exec that made it into the output: the
    /// programs were attached and the agent streaming by then.
    pub attached_s: Vec<f64>,
    /// Completion time of the marker before it (not recorded): attachment came later.
    pub not_before_s: Vec<f64>,
    /// First record in the output file (what a user sees; includes the agent's
    /// once-a-second flush of a small snapshot).
    pub first_record_s: Vec<f64>,
}

fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn events(s: &Summary) -> String {
    if s.condition == Condition::Untraced {
        return "—".into();
    }
    if s.expected == 0 && s.recorded == 0 {
        return "0 / 0 (none of its kinds)".into();
    }
    let pct = if s.expected > 0 {
        format!(" ({:.2} %)", s.recorded as f64 * 100.0 / s.expected as f64)
    } else {
        String::new()
    };
    format!("{} / {}{pct}", count(s.recorded), count(s.expected))
}

fn lost(s: &Summary) -> String {
    match (s.condition, s.lost, s.overflows) {
        (Condition::Untraced, ..) => "—".into(),
        (_, Some(n), 0) => count(n),
        (_, Some(n), o) => format!("{} + {o} overflows", count(n)),
        (_, None, 0) => "n/a (none reported)".into(),
        (_, None, o) => format!("? ({o} socket overflows)"),
    }
}

fn rss(s: &Summary) -> String {
    match (s.peak_rss_mib, s.ring_rss_mib) {
        (None, _) => "—".into(),
        (Some(m), Some(r)) if r >= 0.1 => format!("{m:.1} (ring {r:.0})"),
        (Some(m), _) => format!("{m:.1}"),
    }
}

/// The main table: one row per mode and condition.
pub fn main_table(summaries: &[Summary]) -> String {
    let mut t = String::from(
        "| mode | condition | ops/s median (min–max) | vs untraced, paired: median (min–max) \
         | storm events recorded / made | lost events reported | CPU ms / 1k ops \
         | wake-ups / 1k ops | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.mode.name(),
            s.condition.label(),
            s.ops_per_s.show(0),
            s.ratio.map_or("—".into(), |r| r.show(3)),
            events(s),
            lost(s),
            s.cpu_ms_per_kop.map_or("—".into(), |c| format!("{c:.1}")),
            s.wakeups_per_kop.map_or("—".into(), |w| format!("{w:.0}")),
            rss(s),
        );
    }
    t
}

/// In-kernel cost: one row per condition and program, one column per mode.
pub fn program_table(summaries: &[Summary], modes: &[Mode]) -> String {
    let mut rows: BTreeMap<(Condition, String), BTreeMap<Mode, &ProgCost>> = BTreeMap::new();
    for s in summaries {
        for p in &s.progs {
            rows.entry((s.condition, p.name.clone()))
                .or_default()
                .insert(s.mode, p);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::from("| condition | program |");
    for m in modes {
        let _ = write!(t, " {} |", m.name());
    }
    t.push_str("\n|---|---|");
    for _ in modes {
        t.push_str("---|");
    }
    t.push('\n');
    for ((condition, name), by_mode) in &rows {
        let _ = write!(t, "| {} | {name} |", condition.name());
        for m in modes {
            match by_mode.get(m) {
                Some(p) => {
                    let _ = write!(t, " {:.0} ns × {} |", p.ns_per_run, count(p.runs));
                }
                None => t.push_str(" — |"),
            }
        }
        t.push('\n');
    }
    t
}

pub fn startup_line(s: &Startup) -> String {
    match (
        Spread::of(&s.attached_s),
        Spread::of(&s.not_before_s),
        Spread::of(&s.first_record_s),
    ) {
        (Some(a), Some(b), Some(f)) => format!(
            "`tracer watch` start-up over {} starts: attached and streaming (first marker exec \
             recorded) after {} s, not before {} s; first record in the output file after {} s.",
            s.attached_s.len(),
            a.show(3),
            b.show(3),
            f.show(3)
        ),
        _ => "`tracer watch` start-up: not measured.".into(),
    }
}

/// Runs a program needs in a storm before its average counts against the 2 µs target.
const MIN_PROG_RUNS: u64 = 1000;

/// One target of issue 4 and whether it held.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub held: Option<bool>,
    pub detail: String,
}

fn target(name: &str, held: Option<bool>, detail: String) -> Target {
    Target {
        name: name.to_string(),
        held,
        detail,
    }
}

/// Checks the targets of issue 4 against the tracer's summaries.
pub fn targets(summaries: &[Summary], startup: &Startup) -> Vec<Target> {
    let tracer: Vec<&Summary> = summaries
        .iter()
        .filter(|s| s.condition.is_tracer())
        .collect();
    let mut out = Vec::new();

    let mut misses = Vec::new();
    for s in &tracer {
        let lost = s.lost.unwrap_or(0);
        if lost > 0 || s.recorded != s.expected {
            misses.push(format!(
                "{} on {}: {} of {} recorded, {lost} lost",
                s.condition.name(),
                s.mode.name(),
                s.recorded,
                s.expected
            ));
        }
    }
    if !tracer.is_empty() {
        out.push(target(
            "no event lost in any mode, --threads included",
            Some(misses.is_empty()),
            if misses.is_empty() {
                format!(
                    "{} of {} storm events recorded, 0 lost",
                    count(tracer.iter().map(|s| s.recorded).sum()),
                    count(tracer.iter().map(|s| s.expected).sum())
                )
            } else {
                misses.join("; ")
            },
        ));
    }

    for s in &tracer {
        let bound = match (s.condition, s.mode) {
            (_, Mode::ForkExec | Mode::PosixSpawn) => 0.97,
            (_, Mode::ForkExit | Mode::Zombie) => 0.95,
            (Condition::TracerThreads, Mode::Threads) => 0.90,
            (_, Mode::Threads) => 0.97,
        };
        let Some(r) = s.ratio else { continue };
        let held = r.median >= bound;
        out.push(target(
            &format!(
                "paired ratio ≥ {bound:.2}: {} on {}",
                s.condition.name(),
                s.mode.name()
            ),
            Some(held),
            if held {
                format!("median {:.3} (runs {:.3}–{:.3})", r.median, r.min, r.max)
            } else {
                format!(
                    "median {:.3} (runs {:.3}–{:.3}): {:.1} points short",
                    r.median,
                    r.min,
                    r.max,
                    (bound - r.median) * 100.0
                )
            },
        ));
    }

    if let Some(s) = tracer
        .iter()
        .find(|s| s.condition == Condition::Tracer && s.mode == Mode::ForkExec)
        && let Some(c) = s.cpu_ms_per_kop
    {
        out.push(target(
            "tracer CPU ≤ 5 ms per 1,000 fork+exec+exit operations",
            Some(c <= 5.0),
            format!(
                "{c:.2} ms per 1,000 ({}){}",
                if c <= 5.0 {
                    "holds".to_string()
                } else {
                    format!("{:.1}× the target", c / 5.0)
                },
                ", over the storm and its drain"
            ),
        ));
    }

    if let Some(rss) = tracer
        .iter()
        .filter_map(|s| s.peak_rss_mib)
        .max_by(f64::total_cmp)
    {
        let ring = tracer
            .iter()
            .filter_map(|s| s.ring_rss_mib)
            .max_by(f64::total_cmp)
            .unwrap_or(0.0);
        let growth = tracer
            .iter()
            .filter_map(|s| s.rss_growth_mib)
            .max_by(f64::total_cmp);
        out.push(target(
            "peak RSS ≤ 40 MiB",
            Some(rss <= 40.0),
            format!(
                "largest VmHWM {rss:.1} MiB, of which {ring:.1} MiB is the mapped ring buffer; \
                 RSS grew by at most {} MiB from before a storm to after it (runs are seconds \
                 long, not the 10-minute storm of the target)",
                growth.map_or("?".into(), |g| format!("{g:.1}"))
            ),
        ));
    }

    // Programs that ran a handful of times in a storm (an exec in a thread storm) are
    // left out: one interrupt in a few runs decides their average.
    let mut measured = 0;
    let mut above: Vec<(f64, String)> = Vec::new();
    for s in &tracer {
        for p in s.progs.iter().filter(|p| p.runs >= MIN_PROG_RUNS) {
            measured += 1;
            if p.ns_per_run > 2000.0 {
                above.push((
                    p.ns_per_run,
                    format!(
                        "{} {:.0} ns ({}, {})",
                        p.name,
                        p.ns_per_run,
                        s.condition.name(),
                        s.mode.name()
                    ),
                ));
            }
        }
    }
    if measured > 0 {
        above.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.push(target(
            "no BPF program above 2 µs per run",
            Some(above.is_empty()),
            if above.is_empty() {
                format!("all {measured} program × storm medians at most 2 µs")
            } else {
                let shown: Vec<&str> = above.iter().take(6).map(|(_, d)| d.as_str()).collect();
                format!(
                    "{} of {measured} program × storm medians above 2 µs; slowest: {}{}",
                    above.len(),
                    shown.join("; "),
                    if above.len() > shown.len() {
                        "; ..."
                    } else {
                        ""
                    }
                )
            },
        ));
    }

    // `tracer top` (issue 11): the same pipeline as watch with a view in place of
    // the lines, so it must lose nothing watch does not, for at most twice its CPU.
    for t in summaries.iter().filter(|s| s.condition.is_top()) {
        let Some(w) = t.condition.watch_twin().and_then(|twin| {
            summaries
                .iter()
                .find(|w| w.condition == twin && w.mode == t.mode)
        }) else {
            continue;
        };
        let name = format!(
            "{} vs {} on {}",
            t.condition.name(),
            w.condition.name(),
            t.mode.name()
        );
        let (tl, wl) = (t.lost.unwrap_or(0), w.lost.unwrap_or(0));
        let whole = t.recorded == t.expected || t.recorded >= w.recorded;
        out.push(target(
            &format!("loses nothing watch does not: {name}"),
            Some(whole && tl <= wl),
            format!(
                "top {} of {} recorded, {tl} lost; watch {} of {}, {wl} lost",
                count(t.recorded),
                count(t.expected),
                count(w.recorded),
                count(w.expected)
            ),
        ));
        if let (Some(tc), Some(wc)) = (t.cpu_ms_per_kop, w.cpu_ms_per_kop)
            && wc > 0.0
        {
            let ratio = tc / wc;
            out.push(target(
                &format!("CPU ≤ 2× watch --quiet: {name}"),
                Some(ratio <= 2.0),
                format!("{tc:.2} vs {wc:.2} ms per 1,000 operations: {ratio:.2}×"),
            ));
        }
    }

    if let Some(a) = Spread::of(&startup.attached_s) {
        out.push(target(
            "attached and streaming within 0.5 s of start",
            Some(a.max <= 0.5),
            format!(
                "median {:.3} s, worst {:.3} s over {} starts",
                a.median,
                a.max,
                startup.attached_s.len()
            ),
        ));
    }
    out
}

pub fn targets_list(targets: &[Target]) -> String {
    let mut t = String::new();
    for tg in targets {
        let mark = match tg.held {
            Some(true) => "holds",
            Some(false) => "MISSES",
            None => "not measured",
        };
        let _ = writeln!(t, "- {mark}: {} — {}", tg.name, tg.detail);
    }
    t
}

pub fn run_json(r: &Run) -> Value {
    json!({
        "mode": r.mode.name(),
        "condition": r.condition.name(),
        "round": r.round,
        "ops": r.ops,
        "elapsed_s": r.elapsed_s,
        "ops_per_s": r.ops_per_s,
        "expected_events": r.expected,
        "recorded_events": r.counted.recorded,
        "recorded_by_kind": r.counted.by_kind,
        "lost": r.counted.lost,
        "overflows": r.counted.overflows,
        "cpu_s": r.cpu_s,
        "peak_rss_kib": r.peak_rss_kib,
        "rss_before_kib": r.rss_before_kib,
        "rss_after_kib": r.rss_after_kib,
        "ring_rss_kib": r.ring_rss_kib,
        "wakeups": r.wakeups,
        "other_bpf_holders": r.other_bpf,
        "attach_s": r.attach_s,
        "drain_s": r.drain_s,
        "drain_timed_out": r.drain_timed_out,
        "programs": r.progs.iter().map(|(name, c)| json!({
            "name": name, "run_cnt": c.run_cnt, "run_time_ns": c.run_time_ns,
        })).collect::<Vec<_>>(),
    })
}

pub fn summary_json(s: &Summary) -> Value {
    json!({
        "mode": s.mode.name(),
        "condition": s.condition.name(),
        "command": s.condition.label(),
        "runs": s.runs,
        "ops": s.ops,
        "ops_per_s": s.ops_per_s.json(),
        "ratio_vs_untraced": s.ratio.map(|r| r.json()),
        "recorded_events": s.recorded,
        "expected_events": s.expected,
        "lost": s.lost,
        "overflows": s.overflows,
        "cpu_ms_per_1000_ops": s.cpu_ms_per_kop,
        "peak_rss_mib": s.peak_rss_mib,
        "ring_rss_mib": s.ring_rss_mib,
        "wakeups_per_1000_ops": s.wakeups_per_kop,
        "runs_with_other_bpf_holders": s.contended_runs,
        "rss_growth_mib": s.rss_growth_mib,
        "drain_timeouts": s.drain_timeouts,
        "programs": s.progs.iter().map(|p| json!({
            "name": p.name, "runs": p.runs, "ns_per_run": p.ns_per_run,
        })).collect::<Vec<_>>(),
    })
}

pub fn startup_json(s: &Startup) -> Value {
    json!({
        "attached_s": s.attached_s,
        "not_before_s": s.not_before_s,
        "first_record_s": s.first_record_s,
    })
}

pub fn targets_json(targets: &[Target]) -> Value {
    targets
        .iter()
        .map(|t| json!({ "target": t.name, "held": t.held, "detail": t.detail }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(condition: Condition, round: usize, ops_per_s: f64) -> Run {
        Run {
            mode: Mode::ForkExec,
            condition,
            round,
            ops: 1000,
            elapsed_s: 1000.0 / ops_per_s,
            ops_per_s,
            expected: if condition == Condition::Untraced {
                0
            } else {
                4000
            },
            counted: Counted {
                recorded: if condition == Condition::Untraced {
                    0
                } else {
                    4000
                },
                lost: (condition != Condition::Untraced).then_some(0),
                ..Counted::default()
            },
            cpu_s: (condition != Condition::Untraced).then_some(0.004),
            peak_rss_kib: (condition != Condition::Untraced).then_some(10240),
            rss_before_kib: None,
            rss_after_kib: None,
            ring_rss_kib: None,
            wakeups: (condition != Condition::Untraced).then_some(500),
            other_bpf: vec![],
            attach_s: None,
            drain_s: None,
            drain_timed_out: false,
            progs: BTreeMap::from([(
                "exec".to_string(),
                ProgCounters {
                    run_time_ns: 1000 * (round as u64 + 1),
                    run_cnt: 10,
                },
            )]),
        }
    }

    #[test]
    fn spreads_take_the_middle() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let runs = vec![
            run(Condition::Untraced, 0, 1000.0),
            run(Condition::Tracer, 0, 900.0),
            run(Condition::Untraced, 1, 2000.0),
            run(Condition::Tracer, 1, 1960.0),
            run(Condition::Untraced, 2, 1500.0),
            run(Condition::Tracer, 2, 1500.0),
        ];
        let s = summarize(&runs, Mode::ForkExec, Condition::Tracer).unwrap();
        let r = s.ratio.unwrap();
        assert_eq!((r.min, r.median, r.max), (0.9, 0.98, 1.0));
        // 3 × 4 ms over 3,000 operations.
        assert!((s.cpu_ms_per_kop.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(s.progs[0].runs, 30);
        assert!((s.progs[0].ns_per_run - 200.0).abs() < 1e-9);
        assert_eq!(
            summarize(&runs, Mode::ForkExec, Condition::Untraced)
                .unwrap()
                .ratio,
            None
        );
        assert!(summarize(&runs, Mode::Threads, Condition::Tracer).is_none());
    }

    #[test]
    fn targets_say_which_hold_and_by_how_much_others_miss() {
        let runs = vec![
            run(Condition::Untraced, 0, 1000.0),
            run(Condition::Tracer, 0, 900.0),
        ];
        let s = summarize(&runs, Mode::ForkExec, Condition::Tracer).unwrap();
        let startup = Startup {
            attached_s: vec![0.2, 0.3],
            not_before_s: vec![0.19, 0.29],
            first_record_s: vec![1.1, 1.2],
        };
        let t = targets(&[s], &startup);
        let find = |prefix: &str| t.iter().find(|t| t.name.starts_with(prefix)).unwrap();
        assert_eq!(find("no event lost").held, Some(true));
        let ratio = find("paired ratio");
        assert_eq!(ratio.held, Some(false));
        assert!(
            ratio.detail.contains("7.0 points short"),
            "{}",
            ratio.detail
        );
        assert_eq!(find("tracer CPU").held, Some(true));
        assert_eq!(find("attached").held, Some(true));
        assert!(targets_list(&t).contains("MISSES: paired ratio ≥ 0.97"));
        // 10 runs of a program are too few to judge it.
        assert!(!t.iter().any(|t| t.name.contains("BPF program")));
        let mut slow = summarize(&runs, Mode::ForkExec, Condition::Tracer).unwrap();
        slow.progs = vec![
            ProgCost {
                name: "fork".into(),
                runs: 5000,
                ns_per_run: 2500.0,
            },
            ProgCost {
                name: "free".into(),
                runs: 5000,
                ns_per_run: 300.0,
            },
        ];
        let t = targets(&[slow], &startup);
        let p = t.iter().find(|t| t.name.contains("BPF program")).unwrap();
        assert_eq!(p.held, Some(false));
        assert!(p.detail.starts_with("1 of 2 "), "{}", p.detail);
        assert!(p.detail.contains("fork 2500 ns"), "{}", p.detail);
    }

    #[test]
    fn table_rows_show_events_and_losses() {
        let runs = vec![
            run(Condition::Untraced, 0, 1000.0),
            run(Condition::Tracer, 0, 990.0),
        ];
        let s: Vec<Summary> = [Condition::Untraced, Condition::Tracer]
            .into_iter()
            .filter_map(|c| summarize(&runs, Mode::ForkExec, c))
            .collect();
        let t = main_table(&s);
        assert!(t.contains("| fork-exec | tracer watch --quiet -o FILE | 990 (990–990) | 0.990 (0.990–0.990) | 4,000 / 4,000 (100.00 %) | 0 | 4.0 | 500 | 10.0 |"), "{t}");
        assert!(program_table(&s, &[Mode::ForkExec]).contains("| tracer | exec | 100 ns × 10 |"));
    }
}
