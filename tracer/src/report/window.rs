//! `tracer report --since/--until`: the part of a recording to report on, and
//! `--uid/--comm/--cgroup`: the processes to count.
//!
//! A time window cuts the recording as if tracing had started at `--since` and
//! stopped at `--until`: records outside it are left out, whatever their type
//! (`lost` and `alert` records too), and each run's start and end become the
//! window's edges where the window is narrower. A process that started before
//! `--since` is then known only from its later records ("inferred"), one still
//! running at `--until` is alive at the end.
//!
//! A relative time counts from the recording's last record (`-1h`: the last hour
//! of the recording), not from now: an old recording is reported on the same way
//! today as the day it was made. `+10m` counts from its first record.

use std::time::Duration;

use super::history::Proc;
use super::reader::Records;
use super::walltime::{parse_rfc3339, rfc3339};
use crate::filter::{ProcFilter, file_name};

/// A point in a recording, as `--since`/`--until` give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Wall-clock ns since the Unix epoch (an RFC 3339 time).
    At(i128),
    /// This long before the recording's last record (`-1h`).
    BeforeEnd(Duration),
    /// This long after the recording's first record (`+10m`).
    AfterStart(Duration),
}

/// Parses `2026-11-22T04:13:22Z` (RFC 3339, any offset), `-1h30m` or `+5m`
/// (durations as humantime reads them: `90s`, `1h 30m`, `250ms`).
pub fn parse_when(s: &str) -> Result<When, String> {
    let t = s.trim();
    let rel = |d: &str| {
        humantime::parse_duration(d.trim()).map_err(|e| {
            format!("{s:?}: {e}: give a duration such as -30m, -1h30m or +90s, or an RFC 3339 time")
        })
    };
    if let Some(d) = t.strip_prefix('-') {
        return rel(d).map(When::BeforeEnd);
    }
    if let Some(d) = t.strip_prefix('+') {
        return rel(d).map(When::AfterStart);
    }
    parse_rfc3339(t).map(When::At).ok_or_else(|| {
        format!(
            "{s:?} is not a time: give an RFC 3339 time (2026-11-22T04:13:22Z), or -DURATION from the recording's end (-30m) or +DURATION from its start (+5m)"
        )
    })
}

fn dur_ns(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// Leaves in `records` only what lies between `since` and `until` (both inclusive).
/// Fails with one line when the recording has no wall-clock time to place them, or
/// when nothing is left.
pub fn cut(records: &mut Records, since: Option<When>, until: Option<When>) -> Result<(), String> {
    if since.is_none() && until.is_none() {
        return Ok(());
    }
    if records.runs.iter().any(|r| r.wall_offset_ns.is_none()) {
        return Err(
            "--since/--until need the records' wall-clock times (`ts`), and a run in the input has none readable".into(),
        );
    }
    let start = (records.runs.iter())
        .filter_map(|r| r.wall_ns(r.first_ktime_ns))
        .min();
    let end = (records.runs.iter())
        .filter_map(|r| r.wall_ns(r.last_ktime_ns))
        .max();
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(());
    };
    let resolve = |w: When| match w {
        When::At(t) => t,
        When::BeforeEnd(d) => end - dur_ns(d),
        When::AfterStart(d) => start + dur_ns(d),
    };
    let lo = since.map_or(i128::MIN, resolve);
    let hi = until.map_or(i128::MAX, resolve);
    let show = |t: i128| match t {
        i128::MIN | i128::MAX => "the edge".to_string(),
        t => rfc3339(t),
    };
    if lo > hi {
        return Err(format!(
            "--since ({}) is after --until ({}): give a window that starts before it ends",
            show(lo),
            show(hi)
        ));
    }
    let offsets: Vec<i128> = (records.runs.iter())
        .map(|r| r.wall_offset_ns.unwrap_or(0))
        .collect();
    let ktime = |run: usize, wall: i128| -> u64 {
        wall.saturating_sub(offsets[run])
            .clamp(0, i128::from(u64::MAX)) as u64
    };
    records.records.retain(|r| {
        let t = i128::from(r.record.ktime_ns) + offsets[r.run];
        (lo..=hi).contains(&t)
    });
    if records.records.is_empty() {
        return Err(format!(
            "no records between {} and {}: the recording runs from {} to {}",
            show(lo),
            show(hi),
            rfc3339(start),
            rfc3339(end)
        ));
    }
    for (i, run) in records.runs.iter_mut().enumerate() {
        let meta = run.records.get("meta").copied();
        run.records.clear();
        if let Some(m) = meta {
            run.records.insert("meta".into(), m);
        }
        let (klo, khi) = (ktime(i, lo), ktime(i, hi));
        // Clamped so that start <= end even for a run the window misses.
        run.first_ktime_ns = run.first_ktime_ns.max(klo).min(run.last_ktime_ns);
        run.last_ktime_ns = run.last_ktime_ns.min(khi).max(run.first_ktime_ns);
    }
    for r in &records.records {
        *records.runs[r.run]
            .records
            .entry(r.record.body.type_name().to_string())
            .or_default() += 1;
    }
    Ok(())
}

/// Whether process `p` is one `--uid/--comm/--cgroup` ask about: its uid, a name
/// of its own (its last comm, the programs it exec'd, what it ran when the snapshot
/// saw it; not its parent's name that a child carries from fork to exec), its
/// cgroup when first seen.
pub fn proc_matches(f: &ProcFilter, p: &Proc) -> bool {
    if f.is_empty() {
        return true;
    }
    let chain = p.chain();
    let execs = p.execs.iter().map(|e| file_name(&e.filename));
    f.uid_matches(p.uid)
        && f.cgroup_matches(p.cgroup.as_deref())
        && f.comm_matches(
            [p.comm.as_bytes()]
                .into_iter()
                .chain(chain.iter().map(Vec::as_slice))
                .chain(execs),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whens() {
        assert_eq!(
            parse_when("-1h30m"),
            Ok(When::BeforeEnd(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse_when("+250ms"),
            Ok(When::AfterStart(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_when("2026-11-22T04:13:22Z"),
            Ok(When::At(parse_rfc3339("2026-11-22T04:13:22Z").unwrap()))
        );
        for bad in ["yesterday", "-1x", "-", "2026-11-22"] {
            let e = parse_when(bad).unwrap_err();
            assert!(!e.contains('\n') && e.contains(bad), "{bad}: {e}");
        }
    }
}
