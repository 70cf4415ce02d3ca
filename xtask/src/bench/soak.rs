//! `cargo xtask bench --soak MINUTES`: the tracer's memory over a long storm.
//!
//! Issue 4 asks for peak RSS ≤ 40 MiB on a 10-minute storm and memory flat once reaped
//! processes are pruned; the comparison runs last seconds, so they cannot show either.
//! One release `tracer watch --quiet -o FILE` runs for the whole soak while storms of
//! every mode (about 10 s each) follow one another back to back; a sampler reads its
//! VmRSS every second. Output files rotate (`--rotate-size`), as they would on a server
//! left running for days, so the disk does not fill.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::child::{self, Child};
use super::conditions::{Condition, Mode};
use super::{
    Bench, STOP_GRACE, create, ensure_running, loadavg, machine_info, machine_line, read_tail,
    round_count, utc_stamp, wait_idle,
};

/// Length of one storm of the soak.
const STORM_SECONDS: f64 = 10.0;
/// How often the sampler reads the tracer's RSS.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The memory target.
const PEAK_TARGET_MIB: f64 = 40.0;
/// "Flat": the RSS of the last fifth of the soak exceeds that of its middle fifth by
/// at most this much (allocator noise; a leak of one record per operation would be
/// hundreds of MiB over the storms here).
const FLAT_MIB: f64 = 1.0;
/// Rotation keeps the soak's disk use bounded.
const ROTATE: [&str; 4] = ["--rotate-size", "256M", "--rotate-keep", "2"];

/// One RSS sample: seconds since the tracer was attached, KiB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub rss_kib: u64,
}

/// What the samples say.
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    /// Median RSS of the middle fifth and of the last fifth of the soak, KiB.
    pub middle_kib: u64,
    pub last_kib: u64,
    /// Highest RSS in each whole minute, KiB.
    pub per_minute_kib: Vec<u64>,
}

pub fn memory(samples: &[Sample], seconds: f64) -> Option<Memory> {
    let window = |from: f64, to: f64| {
        let mut v: Vec<u64> = samples
            .iter()
            .filter(|s| s.t >= from * seconds && s.t < to * seconds)
            .map(|s| s.rss_kib)
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let minutes = (seconds / 60.0).ceil() as usize;
    let per_minute_kib = (0..minutes)
        .map(|m| {
            samples
                .iter()
                .filter(|s| (s.t / 60.0) as usize == m)
                .map(|s| s.rss_kib)
                .max()
                .unwrap_or(0)
        })
        .collect();
    Some(Memory {
        middle_kib: window(0.4, 0.6)?,
        last_kib: window(0.8, 1.01)?,
        per_minute_kib,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Bench {
    pub(super) fn soak(&self, minutes: f64, dir: &Path, command_line: &str) -> Result<()> {
        let seconds = minutes * 60.0;
        let started_at = SystemTime::now();
        let load_before = loadavg();

        // Storms of about STORM_SECONDS each, sized untraced.
        let mut plan = Vec::new();
        for mode in Mode::ALL {
            let probe = self.storm(mode, mode.calibration_count())?;
            plan.push((
                mode,
                round_count(probe.ops_per_s * STORM_SECONDS, self.workers),
            ));
        }

        let output = self.tmp.join("soak.jsonl");
        let stderr = self.tmp.join("soak.err");
        for entry in fs::read_dir(&self.tmp)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("soak.") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let mut command = self
            .tools
            .command(Condition::Tracer, &output)
            .expect("the tracer is always there");
        command
            .args(ROTATE)
            .stdin(std::process::Stdio::null())
            .stdout(create(&self.tmp.join("soak.out"))?)
            .stderr(create(&stderr)?);
        eprintln!(
            "xtask: bench: soak: {minutes} min of storms ({}) under `tracer watch --quiet -o \
             FILE {}`",
            plan.iter()
                .map(|(m, c)| format!("{} ×{c}", m.name()))
                .collect::<Vec<_>>()
                .join(", "),
            ROTATE.join(" ")
        );
        let mut traced = Child::spawn(&mut command, "tracer")?;
        let pid = traced.pid();
        self.wait_attached(Condition::Tracer, &mut traced, &output, &stderr)?;
        let attached = Instant::now();
        let rss_attached = super::probe::rss_kib(pid)?;

        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(rss_kib) = super::probe::rss_kib(pid) {
                        samples.push(Sample {
                            t: attached.elapsed().as_secs_f64(),
                            rss_kib,
                        });
                    }
                    thread::sleep(SAMPLE_EVERY);
                }
                samples
            })
        };

        let mut ops = vec![0u64; plan.len()];
        let mut storms = 0usize;
        let result = (|| -> Result<()> {
            let mut i = 0;
            while attached.elapsed().as_secs_f64() < seconds {
                ensure_running(&mut traced, "during the soak", &stderr)?;
                let (mode, count) = plan[i % plan.len()];
                let s = self.storm(mode, count)?;
                ops[i % plan.len()] += s.ops;
                storms += 1;
                i += 1;
                if storms.is_multiple_of(plan.len()) {
                    eprintln!(
                        "xtask: bench: soak: {:.0} s, {storms} storms, RSS {:.1} MiB",
                        attached.elapsed().as_secs_f64(),
                        mib(super::probe::rss_kib(pid)?)
                    );
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        let samples = sampler.join().expect("the sampler does not panic");
        result?;
        let (_, drained) = wait_idle(&mut traced, &stderr)?;
        let peak_kib = super::probe::peak_rss_kib(pid)?;
        let ring_kib = super::probe::bpf_map_rss_kib(pid);
        let (status, killed) = traced.stop(STOP_GRACE)?;
        if killed || !status.success() {
            bail!(
                "tracer ended with {}{} after SIGINT: {}",
                child::describe(status),
                if killed { " (killed)" } else { "" },
                read_tail(&stderr)
            );
        }
        let summary = fs::read_to_string(&stderr).unwrap_or_default();
        let lost = lost_events(&summary);
        let elapsed = samples.last().map_or(0.0, |s| s.t);
        let Some(mem) = memory(&samples, elapsed) else {
            bail!("the soak was too short to sample: ask for at least a minute");
        };
        for entry in fs::read_dir(&self.tmp)?.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("soak.jsonl")
            {
                let _ = fs::remove_file(entry.path());
            }
        }

        let machine = machine_info(load_before.as_deref(), loadavg().as_deref());
        let stamp = utc_stamp(started_at);
        let growth_mib = mib(mem.last_kib) - mib(mem.middle_kib);
        let peak_ok = mib(peak_kib) <= PEAK_TARGET_MIB;
        let flat_ok = growth_mib <= FLAT_MIB;
        let total_ops: u64 = ops.iter().sum();

        println!();
        println!("## tracer soak {stamp}");
        println!();
        println!("`{command_line}` ({})", machine_line(&machine));
        println!();
        println!(
            "{storms} storms back to back over {elapsed:.0} s, {total_ops} operations ({}); \
             lost events reported: {}{}.",
            plan.iter()
                .zip(&ops)
                .map(|((m, _), n)| format!("{} {n}", m.name()))
                .collect::<Vec<_>>()
                .join(", "),
            lost.map_or("? (no summary line)".to_owned(), |n| n.to_string()),
            if drained {
                ""
            } else {
                "; the tracer was still busy 30 s after the last storm"
            }
        );
        println!();
        println!(
            "RSS: {:.1} MiB when attached, {:.1} MiB median over the middle fifth, {:.1} MiB \
             over the last fifth; peak (VmHWM) {:.1} MiB, of which {:.1} MiB is the mapped ring \
             buffer.",
            mib(rss_attached),
            mib(mem.middle_kib),
            mib(mem.last_kib),
            mib(peak_kib),
            mib(ring_kib)
        );
        println!();
        println!("| minute | highest RSS MiB |");
        println!("|---|---|");
        for (m, kib) in mem.per_minute_kib.iter().enumerate() {
            println!("| {} | {:.1} |", m + 1, mib(*kib));
        }
        println!();
        println!("Targets (issue 4):");
        println!();
        println!(
            "- {}: peak RSS ≤ {PEAK_TARGET_MIB} MiB over the soak — {:.1} MiB",
            if peak_ok { "holds" } else { "MISSES" },
            mib(peak_kib)
        );
        println!(
            "- {}: memory flat once reaped processes are pruned (last fifth ≤ middle fifth + \
             {FLAT_MIB} MiB) — {growth_mib:+.1} MiB",
            if flat_ok { "holds" } else { "MISSES" },
        );

        let json_path = dir.join(format!("soak-{stamp}.json"));
        let doc = json!({
            "version": 1,
            "started": stamp,
            "command": command_line,
            "machine": machine,
            "storms": storms,
            "ops": plan.iter().zip(&ops).map(|((m, _), n)| (m.name().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "lost": lost,
            "rss_attached_kib": rss_attached,
            "peak_rss_kib": peak_kib,
            "ring_rss_kib": ring_kib,
            "middle_rss_kib": mem.middle_kib,
            "last_rss_kib": mem.last_kib,
            "per_minute_max_rss_kib": mem.per_minute_kib,
            "samples": samples.iter().map(|s| json!([s.t, s.rss_kib])).collect::<Vec<_>>(),
        });
        fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", json_path.display()))?;
        println!();
        println!("JSON: {}", json_path.display());
        Ok(())
    }
}

/// The lost-event count of the tracer's summary line ("…, N events lost[ (…)]").
fn lost_events(stderr: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|line| {
        let (before, _) = line.split_once(" events lost")?;
        before.rsplit([' ', ',']).next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_windows_and_minutes() {
        // 0-59 s at 20 MiB, 60-119 s growing 1 MiB per 6 s.
        let samples: Vec<Sample> = (0..120)
            .map(|t| Sample {
                t: f64::from(t),
                rss_kib: if t < 60 {
                    20 * 1024
                } else {
                    20 * 1024 + (t as u64 - 60) / 6 * 1024
                },
            })
            .collect();
        let m = memory(&samples, 120.0).unwrap();
        assert_eq!(m.per_minute_kib, vec![20 * 1024, 29 * 1024]);
        // Middle fifth 48-71 s: median sample 60 s → 20 MiB; last fifth 96-119 s →
        // median at 108 s → 28 MiB.
        assert_eq!(m.middle_kib, 20 * 1024);
        assert_eq!(m.last_kib, 28 * 1024);
        assert_eq!(memory(&[], 60.0), None);
    }

    #[test]
    fn lost_count_from_the_summary() {
        let text =
            "tracer: listening\ntracer: 11.0 s, 252141 records (alert 2, exec 11), 0 events lost\n";
        assert_eq!(lost_events(text), Some(0));
        let text = "tracer: 60.0 s, 9 records (lost 2), 479213 events lost (exit 9; a larger \
                    --ring-size rides out bursts)\ntracer: top forkers: x\n";
        assert_eq!(lost_events(text), Some(479_213));
        assert_eq!(lost_events("tracer: killed\n"), None);
    }
}
