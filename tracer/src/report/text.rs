//! The report for a terminal: the headline first (who forks most, what went
//! wrong), then the fork-rate timeline, the top forkers, and the details.
//! About 80 columns wide; long names are cut with `…`.

use std::fmt::Write as _;

use super::fmt::{bytes_size, duration, fit, fit_left, plural, rate, thousands};
use super::stats::{GroupForker, ProcRef, Report, Timeline, cgroup_text, proc_label};
use super::walltime::{parse_rfc3339, short, time_of_day};

/// Width the text is laid out for.
const WIDTH: usize = 80;
/// Width of the name column of the tables.
const NAME: usize = 42;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per value: a space for 0, `▁`..`█` for the rest, scaled to `max`
/// (any non-zero value shows at least `▁`).
pub fn sparkline(values: &[f64], max: f64) -> String {
    values
        .iter()
        .map(|&v| {
            if v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                let level = ((v / max) * 8.0).ceil() as usize;
                BARS[level.clamp(1, 8) - 1]
            }
        })
        .collect()
}

/// Words of `text` in lines of at most `width` characters, the first starting with
/// `first`, the others with `rest`.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split(' ') {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn when(ts: Option<&str>, ktime_ns: u64) -> String {
    match ts.and_then(parse_rfc3339) {
        Some(w) => time_of_day(w),
        None => format!("ktime {:.3}s", ktime_ns as f64 / 1e9),
    }
}

fn opt_duration(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_string(), duration)
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let hosts = r.runs.len() > 1;
    title(&mut o, r);
    if !r.selection.is_empty() {
        let _ = writeln!(o, "  only: {}", r.selection.join(" "));
    }
    o.push('\n');
    for h in &r.headline {
        o.push_str(&wrap(h, WIDTH, "  ", "      "));
    }
    timelines(&mut o, &r.timeline);
    top_forkers(&mut o, r, hosts);
    totals(&mut o, r);
    lost(&mut o, r);
    alerts(&mut o, r);
    zombies(&mut o, r, hosts);
    exits(&mut o, r, hosts);
    lifetimes(&mut o, r, hosts);
    failures(&mut o, r, hosts);
    input_problems(&mut o, r);
    o
}

fn title(o: &mut String, r: &Report) {
    let names: Vec<&str> = r.inputs.iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(
        o,
        "{}",
        fit(
            &format!(
                "tracer report: {} ({} records)",
                names.join(", "),
                thousands(r.totals.records)
            ),
            WIDTH
        )
    );
    for run in &r.runs {
        let span = match (
            run.start.as_deref().and_then(parse_rfc3339),
            run.end.as_deref().and_then(parse_rfc3339),
        ) {
            (Some(a), Some(b)) => {
                let end = if short(a).get(..10) == short(b).get(..10) {
                    time_of_day(b)
                } else {
                    short(b)
                };
                format!("{} → {end} UTC", short(a))
            }
            _ => format!(
                "ktime {:.3}s → {:.3}s",
                run.start_ktime_ns as f64 / 1e9,
                run.end_ktime_ns as f64 / 1e9
            ),
        };
        let boot: String = run.boot_id.chars().take(8).collect();
        let _ = writeln!(
            o,
            "  host {}, boot {boot}: {span} ({})",
            run.host,
            duration(run.duration_ns)
        );
    }
    // A file `watch` finished ends with `end`; without one, its last event is
    // not the end of the run, and the run's length above is a lower bound.
    for i in r.inputs.iter().filter(|i| i.end_reason.is_none()) {
        let _ = writeln!(
            o,
            "  {}: ended without an end record: tracer was killed or is still running",
            i.name
        );
    }
}

fn section(o: &mut String, name: &str) {
    let _ = write!(o, "\n{name}\n");
}

fn timelines(o: &mut String, timelines: &[Timeline]) {
    for t in timelines {
        if t.forks.iter().all(|&n| n == 0) {
            continue;
        }
        let max = t.columns.iter().copied().fold(0.0, f64::max);
        section(
            o,
            &format!(
                "FORK RATE{}: processes created per second, one column = {}",
                if timelines.len() > 1 {
                    format!(" on {}", t.host)
                } else {
                    String::new()
                },
                duration(t.column_ns)
            ),
        );
        let top = rate(max);
        let pad = top.chars().count();
        let _ = writeln!(o, "  {top} ┤{}", sparkline(&t.columns, max));
        let from = when(t.start.as_deref(), t.start_ktime_ns);
        let to = when(t.end.as_deref(), t.end_ktime_ns);
        let gap = t.columns.len().saturating_sub(from.chars().count() + 1);
        let _ = writeln!(
            o,
            "  {:pad$} └{from}{}",
            "",
            if gap > to.chars().count() {
                format!("{:>gap$}", to)
            } else {
                format!(" → {to}")
            }
        );
        if let Some(at) = t.peak_ktime_ns {
            let _ = writeln!(
                o,
                "  busiest second: {} forks from {}",
                thousands(t.peak_per_sec),
                when(t.peak_at.as_deref(), at)
            );
        }
    }
}

fn group_rows(o: &mut String, heading: &str, rows: &[GroupForker], hosts: bool, cgroups: bool) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "  {:<NAME$} {:>8} {:>7} {:>8} {:>8}",
        heading, "forks", "parents", "peak/s", "mean/s"
    );
    for g in rows {
        let mut name = match (&g.key, cgroups) {
            (Some(k), true) => cgroup_text(Some(k), g.unit.as_deref()),
            (Some(k), false) => k.clone(),
            (None, _) => "(unknown)".into(),
        };
        if hosts {
            name = format!("{} {name}", g.host);
        }
        let _ = writeln!(
            o,
            "    {:<w$} {:>8} {:>7} {:>8} {:>8}",
            fit_left(&name, NAME - 2),
            thousands(g.forks),
            thousands(g.parents),
            thousands(g.peak_per_sec),
            rate(g.mean_per_sec).trim_end_matches("/s"),
            w = NAME - 2
        );
        // Forks are counted under the executable that called fork; what the
        // children went on to run is a separate, labelled column.
        if !cgroups && !g.children_ran.is_empty() {
            let detail = format!("      its children ran {}", counts(&g.children_ran));
            let _ = writeln!(o, "{}", fit(&detail, WIDTH));
        }
    }
}

/// Forks by systemd unit and by container ([`super::services`]), over all hosts.
fn service_rows(o: &mut String, b: &super::services::ByService) {
    let units = b.by_unit.iter().any(|u| u.unit.is_some());
    if !units && b.by_container.is_empty() {
        // No record named a unit or container (no systemd, or a recording made
        // before tracer wrote them): the tables would say nothing.
        return;
    }
    if units {
        let _ = writeln!(o, "  {:<NAME$} {:>8}", "by unit (all hosts)", "forks");
    }
    for u in b.by_unit.iter().filter(|_| units) {
        let name = u.unit.as_deref().unwrap_or("(no unit)");
        let _ = writeln!(
            o,
            "    {:<w$} {:>8}",
            fit_middle(name, NAME - 2),
            thousands(u.forks),
            w = NAME - 2
        );
    }
    if !b.by_container.is_empty() {
        // Ids in full, as the records have them (`docker ps` shows the first 12).
        let _ = writeln!(o, "  {:<66} {:>8}", "by container", "forks");
        for c in &b.by_container {
            let _ = writeln!(o, "    {:<64} {:>8}", c.container_id, thousands(c.forks));
            if let Some(pod) = &c.pod_uid {
                let _ = writeln!(o, "      in pod {pod}");
            }
        }
    }
    if b.forks_over_cap > 0 {
        let _ = writeln!(
            o,
            "    {} forks in units or containers past the first {} are in no row",
            thousands(b.forks_over_cap),
            thousands(super::services::MAX_KEYS as u64)
        );
    }
}

/// Cuts a name to `max` characters in the middle, keeping its end (`.scope`).
fn fit_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max - 7).collect();
    let tail: String = s.chars().skip(n - 6).collect();
    format!("{head}…{tail}")
}

/// `/bin/true 100, /bin/sh 3`.
fn counts(list: &[super::stats::Count]) -> String {
    let v: Vec<String> = (list.iter())
        .map(|c| format!("{} {}", c.name, thousands(c.count)))
        .collect();
    v.join(", ")
}

fn top_forkers(o: &mut String, r: &Report, hosts: bool) {
    let t = &r.top_forkers;
    if t.by_parent.is_empty() && t.by_executable.is_empty() {
        return;
    }
    section(o, "TOP FORKERS");
    if !t.by_parent.is_empty() {
        let _ = writeln!(
            o,
            "  {:<w$} {:>8} {:>8} {:>8}",
            "by parent process",
            "children",
            "peak/s",
            "mean/s",
            w = NAME + 8
        );
        for p in &t.by_parent {
            let _ = writeln!(
                o,
                "    {:<w$} {:>8} {:>8} {:>8}",
                fit(&proc_label(&p.process, hosts), NAME + 6),
                thousands(p.children),
                thousands(p.peak_per_sec),
                rate(p.mean_per_sec).trim_end_matches("/s"),
                w = NAME + 6
            );
            let mut detail = format!(
                "in {}",
                cgroup_text(p.process.cgroup.as_deref(), p.process.unit.as_deref())
            );
            if p.forked_as.len() > 1 {
                let as_: Vec<String> = (p.forked_as.iter())
                    .map(|c| format!("{} {}", c.name, thousands(c.count)))
                    .collect();
                detail.push_str(&format!("; forked as {}", as_.join(", then ")));
            }
            if !p.children_ran.is_empty() {
                detail.push_str(&format!("; its children ran {}", counts(&p.children_ran)));
            }
            let _ = writeln!(o, "{}", fit(&format!("      {detail}"), WIDTH));
        }
    }
    group_rows(
        o,
        "by executable that forked",
        &t.by_executable,
        hosts,
        false,
    );
    group_rows(o, "by cgroup", &t.by_cgroup, hosts, true);
    service_rows(o, &t.by_service);
    if !r.top_executed.is_empty() {
        let _ = writeln!(o, "  {:<NAME$} {:>8}", "most executed", "execs");
        for e in &r.top_executed {
            let _ = writeln!(
                o,
                "    {:<w$} {:>8}",
                fit_left(&e.filename, NAME - 2),
                thousands(e.execs),
                w = NAME - 2
            );
        }
    }
}

fn totals(o: &mut String, r: &Report) {
    let t = &r.totals;
    section(o, "TOTALS");
    let _ = writeln!(
        o,
        "  {}: {} created, {} in the start-up snapshot, {} first seen later",
        plural(t.processes, "process", "processes"),
        thousands(t.forked),
        thousands(t.in_snapshot),
        thousands(t.inferred),
    );
    let reaps = match t.reaps_inferred {
        0 => plural(t.reaps, "reap", "reaps"),
        n => format!(
            "{} ({} inferred from /proc)",
            plural(t.reaps, "reap", "reaps"),
            thousands(n)
        ),
    };
    let _ = writeln!(
        o,
        "  {}, {}, {}, {} created",
        plural(t.execs, "exec", "execs"),
        plural(t.exits, "exit", "exits"),
        reaps,
        plural(t.threads_created, "thread", "threads"),
    );
    let _ = writeln!(
        o,
        "  at the end: {} still running, {} still zombies",
        thousands(t.alive_at_end),
        thousands(t.zombies_at_end)
    );
}

fn lost(o: &mut String, r: &Report) {
    if r.lost.total == 0 {
        return;
    }
    section(
        o,
        &format!(
            "LOST EVENTS: {} the kernel could not deliver (ring buffer full; a larger --ring-size helps)",
            thousands(r.lost.total)
        ),
    );
    for k in &r.lost.by_kind {
        let line = format!(
            "{} {} (first noticed {}): {}",
            k.kind,
            thousands(k.count),
            when(k.first_noticed.as_deref(), k.first_noticed_ktime_ns),
            k.uncertain
        );
        o.push_str(&wrap(&line, WIDTH, "  ", "    "));
    }
    if r.lost.uncertain_processes > 0 {
        let line = format!(
            "uncertain: {} processes lived through the losses (their records say `uncertain`; `--tree` marks them `?`), {} of them ended unseen (found gone, exit not recorded)",
            thousands(r.lost.uncertain_processes),
            thousands(r.lost.ended_unseen)
        );
        o.push_str(&wrap(&line, WIDTH, "  ", "    "));
    }
}

fn alerts(o: &mut String, r: &Report) {
    if r.alerts.is_empty() {
        return;
    }
    section(
        o,
        &format!("ALERTS raised live by `tracer watch`: {}", r.alerts.len()),
    );
    for a in &r.alerts {
        let end = if a.ended {
            ""
        } else {
            " (still on when the recording ended)"
        };
        let line = format!("{} {}{end}", when(a.time.as_deref(), a.ktime_ns), a.message);
        o.push_str(&wrap(&line, WIDTH, "  ", "    "));
    }
}

fn zombies(o: &mut String, r: &Report, hosts: bool) {
    let z = &r.zombies;
    if z.count == 0 && z.unreaped_at_end == 0 {
        return;
    }
    section(o, "ZOMBIES");
    if z.count > 0 {
        let _ = writeln!(
            o,
            "  {} from exit to reap: p50 {}, p95 {}, max {}",
            plural(z.count, "process", "processes"),
            opt_duration(z.p50_ns),
            opt_duration(z.p95_ns),
            opt_duration(z.max_ns),
        );
        if let Some(p) = &z.longest {
            let _ = writeln!(
                o,
                "{}",
                fit(&format!("    longest: {}", proc_label(p, hosts)), WIDTH)
            );
        }
    }
    let _ = writeln!(
        o,
        "  still zombies at the end: {}",
        thousands(z.unreaped_at_end)
    );
    if !z.slow_reapers.is_empty() {
        let _ = writeln!(
            o,
            "  parents that reap slowly (a zombie ≥ {}) or never:",
            duration(super::stats::SLOW_REAP_NS)
        );
        for s in &z.slow_reapers {
            let who = s
                .parent
                .as_ref()
                .map_or_else(|| "(unknown parent)".into(), |p| proc_label(p, hosts));
            let mut line = format!(
                "{}: {}, p50 {}, max {}",
                who,
                plural(s.zombies, "zombie child", "zombie children"),
                opt_duration(s.p50_ns),
                opt_duration(s.max_ns)
            );
            if s.unreaped_at_end > 0 {
                line.push_str(&format!(
                    "; {} still unreaped at the end (oldest {})",
                    thousands(s.unreaped_at_end),
                    opt_duration(s.oldest_unreaped_ns)
                ));
            }
            o.push_str(&wrap(&line, WIDTH, "    ", "      "));
        }
    }
    if !z.orphan_reapers.is_empty() {
        let _ = writeln!(o, "  orphans (reparented before their end) were reaped by:");
        for a in &z.orphan_reapers {
            let who = if a.autoreap {
                "the kernel (parent ignores SIGCHLD)".to_string()
            } else {
                match (a.reaper_pid, &a.reaper_comm) {
                    (Some(p), Some(c)) => format!("pid {p} {c}"),
                    (Some(p), None) => format!("pid {p}"),
                    _ => "(unknown)".into(),
                }
            };
            let host = if hosts {
                format!("{} ", a.host)
            } else {
                String::new()
            };
            let _ = writeln!(o, "    {host}{who}: {}", thousands(a.orphans));
        }
    }
}

fn endings(
    codes: &std::collections::BTreeMap<u8, u64>,
    signals: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut parts: Vec<(u64, String)> = codes
        .iter()
        .map(|(c, n)| (*n, format!("code {c} ×{}", thousands(*n))))
        .chain(
            signals
                .iter()
                .map(|(s, n)| (*n, format!("{s} ×{}", thousands(*n)))),
        )
        .collect();
    parts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    parts
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(", ")
}

fn exits(o: &mut String, r: &Report, hosts: bool) {
    if r.exits.is_empty() {
        return;
    }
    section(o, "EXITS by executable (failures first)");
    let _ = writeln!(
        o,
        "  {:<NAME$} {:>8} {:>8} {:>8}",
        "executable", "exits", "failed", "p50 life"
    );
    for e in &r.exits {
        let mut name = e.exe.clone().unwrap_or_else(|| "(unknown)".into());
        if hosts {
            name = format!("{} {name}", e.host);
        }
        let _ = writeln!(
            o,
            "    {:<w$} {:>8} {:>8} {:>8}",
            fit_left(&name, NAME - 2),
            thousands(e.exits),
            thousands(e.failures),
            opt_duration(e.lifetime_p50_ns),
            w = NAME - 2
        );
        if e.failures > 0 {
            let mut how = endings(&e.codes, &e.signals);
            if e.core_dumps > 0 {
                how.push_str(&format!("; {} core dumps", thousands(e.core_dumps)));
            }
            o.push_str(&wrap(&how, WIDTH, "      ", "      "));
        }
    }
    if !r.crash_loops.is_empty() {
        section(
            o,
            &format!(
                "CRASH LOOPS: the same executable under the same parent failing ≥ {} times",
                super::stats::CRASH_LOOP_MIN
            ),
        );
        for l in &r.crash_loops {
            let parent = l
                .parent
                .as_ref()
                .map_or_else(|| "an unknown parent".into(), |p| proc_label(p, hosts));
            let line = format!(
                "{} under {}: {} of {} exits failed over {}, typical lifetime {}; last: {}",
                l.exe.as_deref().unwrap_or("(unknown)"),
                parent,
                thousands(l.failures),
                thousands(l.exits),
                duration(l.last_ktime_ns - l.first_ktime_ns),
                opt_duration(l.lifetime_p50_ns),
                l.last_endings.join(", ")
            );
            o.push_str(&wrap(&line, WIDTH, "  ", "    "));
        }
    }
}

fn life_rows(o: &mut String, rows: &[super::stats::Life], hosts: bool) {
    for l in rows {
        let _ = writeln!(
            o,
            "{}",
            fit(
                &format!(
                    "    {:>8}  {:<14} {}",
                    duration(l.lifetime_ns),
                    l.ending,
                    proc_label(&l.process, hosts),
                ),
                WIDTH
            )
        );
    }
}

fn lifetimes(o: &mut String, r: &Report, hosts: bool) {
    if r.longest_lived.is_empty() {
        return;
    }
    section(o, "LIFETIMES of processes that ended during the recording");
    let _ = writeln!(o, "  longest:");
    life_rows(o, &r.longest_lived, hosts);
    let _ = writeln!(o, "  shortest:");
    life_rows(o, &r.shortest_lived, hosts);
}

fn proc_rows(o: &mut String, rows: impl Iterator<Item = (ProcRef, String)>, hosts: bool) {
    for (p, what) in rows {
        o.push_str(&wrap(
            &format!("{}: {what}", proc_label(&p, hosts)),
            WIDTH,
            "    ",
            "      ",
        ));
    }
}

fn failures(o: &mut String, r: &Report, hosts: bool) {
    let f = &r.fork_failures;
    if f.total > 0 {
        let errs: Vec<String> = f
            .by_errno
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.error
                        .map_or_else(|| format!("errno {}", e.errno), str::to_string),
                    thousands(e.count)
                )
            })
            .collect();
        section(
            o,
            &format!(
                "FORK FAILURES: {} ({})",
                thousands(f.total),
                errs.join(", ")
            ),
        );
        proc_rows(
            o,
            f.by_process.iter().map(|p| {
                let errs: Vec<String> = p
                    .by_errno
                    .iter()
                    .map(|e| format!("{} {}", e.error.unwrap_or("errno"), thousands(e.count)))
                    .collect();
                (
                    p.process.clone(),
                    format!("{} ({})", thousands(p.count), errs.join(", ")),
                )
            }),
            hosts,
        );
    }
    let e = &r.exec_failures;
    if e.total > 0 {
        section(o, &format!("FAILED EXECS: {}", thousands(e.total)));
        for x in &e.top {
            let _ = writeln!(
                o,
                "    {:<w$} {:>8} {}",
                fit_left(&x.filename, NAME - 2),
                thousands(x.count),
                x.error
                    .map_or_else(|| format!("errno {}", x.errno), str::to_string),
                w = NAME - 2
            );
        }
    }
}

fn input_problems(o: &mut String, r: &Report) {
    let p = &r.input_problems;
    if p.bad_lines == 0 && p.missing_lines == 0 && p.duplicates == 0 && p.parent_cycles_broken == 0
    {
        return;
    }
    section(o, "INPUT PROBLEMS");
    if p.bad_lines > 0 {
        let reasons: Vec<String> = p
            .by_reason
            .iter()
            .map(|(k, n)| format!("{} {}", thousands(*n), k.replace('_', " ")))
            .collect();
        let _ = writeln!(
            o,
            "  {} skipped: {}",
            plural(p.bad_lines, "line", "lines"),
            reasons.join(", ")
        );
        for b in &p.first_bad_lines {
            // The place in full (a cut path is useless), the detail cut to fit.
            let place = format!("    {}:{}: {}", b.input, b.line, b.reason.replace('_', " "));
            let room = WIDTH.saturating_sub(place.chars().count() + 2).max(30);
            let _ = writeln!(o, "{place}: {}", fit(&b.detail, room));
        }
        if p.bad_lines > p.first_bad_lines.len() as u64 {
            let _ = writeln!(
                o,
                "    ({} more not shown)",
                thousands(p.bad_lines - p.first_bad_lines.len() as u64)
            );
        }
    }
    if p.missing_lines > 0 {
        let _ = writeln!(
            o,
            "  {} missing: gaps in `seq` (lines removed from the file?)",
            plural(p.missing_lines, "line is", "lines are")
        );
    }
    if p.duplicates > 0 {
        let _ = writeln!(
            o,
            "  {} read twice (same record in several inputs) counted once",
            plural(p.duplicates, "record", "records")
        );
    }
    if p.parent_cycles_broken > 0 {
        let _ = writeln!(
            o,
            "  {} made a parent cycle and lost their parent link",
            plural(p.parent_cycles_broken, "process", "processes")
        );
    }
    let bytes: u64 = r.inputs.iter().map(|i| i.bytes).sum();
    let _ = writeln!(
        o,
        "  read {} in {} lines",
        bytes_size(bytes),
        thousands(r.inputs.iter().map(|i| i.lines).sum())
    );
}
