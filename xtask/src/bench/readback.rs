//! `cargo xtask bench --report`: how fast `tracer report` reads a fleet's recordings
//! and in how much memory, next to DuckDB's `read_json` answering the same two
//! questions (top forking parents, zombie-time p50/p95) on the same files.
//!
//! One fork+exec storm is recorded with `tracer watch -o`; the recording is copied
//! as [`HOSTS`] hosts (the `host` field rewritten, so no copy is a duplicate of
//! another), and again as [`HOSTS`] × [`GROWTH`] hosts for the 10× input. Each reader
//! runs as a child; its wall time is measured around it and its peak RSS is the
//! kernel's `ru_maxrss` from `wait4` (docs/bench.md).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::child::{self, Child};
use super::conditions::{Condition, Mode};
use super::{Bench, DRAIN_DEADLINE, STOP_GRACE, create, read_tail, utc_stamp, wait_idle};

/// Operations of the recorded storm (issue 10: a 60,000-op storm, ~640k records
/// over 8 hosts).
pub const STORM_OPS: u64 = 60_000;
/// Hosts the recording is copied as.
pub const HOSTS: usize = 8;
/// The larger input is this many times the first.
pub const GROWTH: usize = 10;

/// DuckDB's side: the same two answers, each query timed, printed as one JSON line.
/// Columns are given, so `read_json` does not sample the files to guess a schema.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, time, duckdb
files = sys.argv[1:]
con = duckdb.connect()
src = ("read_json(?, format='newline_delimited', columns={'type':'VARCHAR','host':'VARCHAR',"
       "'boot_id':'VARCHAR','parent_proc_id':'VARCHAR','thread':'BOOLEAN','zombie_ns':'UBIGINT'})")
t0 = time.monotonic()
top = con.execute(
    "SELECT host, parent_proc_id, count(*) AS n FROM " + src +
    " WHERE type = 'fork' AND NOT coalesce(thread, false) AND parent_proc_id IS NOT NULL"
    " GROUP BY host, boot_id, parent_proc_id ORDER BY n DESC, host, parent_proc_id LIMIT 5",
    [files]).fetchall()
t1 = time.monotonic()
q = con.execute(
    "SELECT quantile_disc(zombie_ns, 0.5), quantile_disc(zombie_ns, 0.95), count(*) FROM " + src +
    " WHERE type = 'reap' AND zombie_ns IS NOT NULL", [files]).fetchall()[0]
t2 = time.monotonic()
print(json.dumps({"top": [[h, p, n] for h, p, n in top], "p50": q[0], "p95": q[1],
                  "zombies": q[2], "top_s": t1 - t0, "zombie_s": t2 - t1}))
"#;

/// One reader over one input set.
#[derive(Clone, Debug)]
struct Read {
    reader: &'static str,
    files: usize,
    bytes: u64,
    wall_s: f64,
    peak_rss_kib: u64,
    /// The busiest parent's children, and zombie p50 / p95 (ns), as the reader says.
    top_children: Option<u64>,
    p50_ns: Option<u64>,
    p95_ns: Option<u64>,
}

impl Read {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall_s
    }

    fn json(&self) -> Value {
        json!({
            "reader": self.reader,
            "files": self.files,
            "bytes": self.bytes,
            "wall_s": self.wall_s,
            "mb_per_s": self.mb_per_s(),
            "peak_rss_kib": self.peak_rss_kib,
            "top_children": self.top_children,
            "zombie_p50_ns": self.p50_ns,
            "zombie_p95_ns": self.p95_ns,
        })
    }
}

impl Bench {
    /// Records the storm, makes the fleet's copies, runs both readers on both sizes,
    /// prints the table and writes target/bench/report-<time>.json.
    pub(super) fn report_bench(&self, dir: &Path, command_line: &str) -> Result<()> {
        let work = dir.join("report");
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let recording = work.join("storm.jsonl");
        self.record_storm(&recording)?;
        let small = fleet(&recording, &work, HOSTS, 0)?;
        let mut large = small.clone();
        large.extend(fleet(&recording, &work, HOSTS * GROWTH - HOSTS, HOSTS)?);
        let _ = fs::remove_file(&recording);

        let mut reads = Vec::new();
        for files in [&small, &large] {
            reads.push(self.run_report(files)?);
            reads.push(run_duckdb(files)?);
        }
        let _ = fs::remove_dir_all(&work);

        print!("{}", table(&reads));
        let stamp = utc_stamp(std::time::SystemTime::now());
        let path = dir.join(format!("report-{stamp}.json"));
        let doc = json!({
            "command": command_line,
            "storm_ops": STORM_OPS,
            "hosts": HOSTS,
            "growth": GROWTH,
            "reads": reads.iter().map(Read::json).collect::<Vec<_>>(),
        });
        fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("xtask: bench: wrote {}", path.display());
        Ok(())
    }

    /// `tracer watch -o recording` through one fork+exec storm of [`STORM_OPS`].
    fn record_storm(&self, recording: &Path) -> Result<()> {
        let stderr = self.tmp.join("report-watch.err");
        let mut command = self
            .tools
            .command(Condition::Tracer, recording)
            .context("no tracer command")?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(create(&stderr)?);
        let mut traced = Child::spawn(&mut command, "tracer watch")?;
        self.wait_attached(Condition::Tracer, &mut traced, recording, &stderr)?;
        let storm = self.storm(Mode::ForkExec, STORM_OPS)?;
        let (_, drained) = wait_idle(&mut traced, &stderr)?;
        if !drained {
            eprintln!(
                "xtask: bench: tracer was still busy {} s after the storm; stopping it anyway",
                DRAIN_DEADLINE.as_secs()
            );
        }
        let (status, killed) = traced.stop(STOP_GRACE)?;
        if killed || !status.success() {
            bail!(
                "tracer watch ended with {} after SIGINT: {}",
                child::describe(status),
                read_tail(&stderr)
            );
        }
        let size = fs::metadata(recording).map_or(0, |m| m.len());
        eprintln!(
            "xtask: bench: recorded {} ops of fork+exec storm: {:.1} MB",
            storm.ops,
            size as f64 / 1e6
        );
        Ok(())
    }

    /// `tracer report --format json FILES`, timed.
    fn run_report(&self, files: &[PathBuf]) -> Result<Read> {
        let mut command = Command::new(&self.tools.tracer);
        command.args(["report", "--format", "json"]).args(files);
        let (out, wall_s, peak_rss_kib) = measure(&mut command, "tracer report")?;
        let v: Value = serde_json::from_slice(&out).context("tracer report printed no JSON")?;
        Ok(Read {
            reader: "tracer report",
            files: files.len(),
            bytes: total_bytes(files),
            wall_s,
            peak_rss_kib,
            top_children: v["top_forkers"]["by_parent"][0]["children"].as_u64(),
            p50_ns: v["zombies"]["p50_ns"].as_u64(),
            p95_ns: v["zombies"]["p95_ns"].as_u64(),
        })
    }
}

/// DuckDB (python3 `duckdb`, installed by `cargo xtask setup`) on the same files.
fn run_duckdb(files: &[PathBuf]) -> Result<Read> {
    let mut command = Command::new("python3");
    command.arg("-c").arg(DUCKDB_SCRIPT).args(files);
    let (out, wall_s, peak_rss_kib) = measure(&mut command, "python3 duckdb")?;
    let v: Value = serde_json::from_slice(&out).context("the DuckDB script printed no JSON")?;
    Ok(Read {
        reader: "duckdb read_json",
        files: files.len(),
        bytes: total_bytes(files),
        wall_s,
        peak_rss_kib,
        top_children: v["top"][0][2].as_u64(),
        p50_ns: v["p50"].as_u64(),
        p95_ns: v["p95"].as_u64(),
    })
}

/// Runs `command` to its end; its stdout, wall time, and peak RSS (KiB) from
/// `wait4`'s rusage, which counts the child alone (not this process).
fn measure(command: &mut Command, name: &str) -> Result<(Vec<u8>, f64, u64)> {
    child::check_interrupted()?;
    let out = tempfile_path(name);
    command
        .stdin(Stdio::null())
        .stdout(File::create(&out).with_context(|| format!("creating {}", out.display()))?)
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut spawned = command
        .spawn()
        .with_context(|| format!("could not start {name}"))?;
    let pid = spawned.id() as libc::pid_t;
    let mut stderr = Vec::new();
    if let Some(mut e) = spawned.stderr.take() {
        std::io::Read::read_to_end(&mut e, &mut stderr).ok();
    }
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which std has not reaped (no wait() on it).
    let r = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    let wall_s = start.elapsed().as_secs_f64();
    if r != pid {
        bail!("wait4 on {name}: {}", std::io::Error::last_os_error());
    }
    let status = std::process::ExitStatus::from_raw(status);
    let stdout = fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = fs::remove_file(&out);
    if !status.success() {
        bail!(
            "{name} failed ({}): {}",
            child::describe(status),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    // ru_maxrss is in KiB on Linux (getrusage(2)).
    Ok((stdout, wall_s, usage.ru_maxrss as u64))
}

fn tempfile_path(name: &str) -> PathBuf {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("xtask-bench-{slug}-{}.out", std::process::id()))
}

fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

/// `count` copies of `recording` as hosts numbered from `first`: every record's
/// `"host":"NAME"` becomes `"host":"NAME-hN"`.
fn fleet(recording: &Path, dir: &Path, count: usize, first: usize) -> Result<Vec<PathBuf>> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::with_capacity(
            1 << 20,
            File::open(recording).with_context(|| format!("opening {}", recording.display()))?,
        ))
    };
    let mut first_line = String::new();
    open()?.read_line(&mut first_line)?;
    let head: Value = serde_json::from_str(&first_line)
        .with_context(|| format!("{}: the first line is not JSON", recording.display()))?;
    let Some(host) = head["host"].as_str() else {
        bail!("{}: the first record has no host", recording.display());
    };
    let pattern = format!("\"host\":{}", serde_json::to_string(host)?);
    let mut paths = Vec::with_capacity(count);
    for n in first..first + count {
        child::check_interrupted()?;
        let path = dir.join(format!("host-{n:03}.jsonl"));
        let renamed = format!(
            "\"host\":{}",
            serde_json::to_string(&format!("{host}-h{n}"))?
        );
        let mut w = BufWriter::with_capacity(
            1 << 20,
            File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        for line in open()?.lines() {
            let line = line?;
            w.write_all(line.replacen(&pattern, &renamed, 1).as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

fn ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "–".into(), |n| format!("{:.3}", n as f64 / 1e6))
}

/// The markdown table: one row per reader and input.
fn table(reads: &[Read]) -> String {
    let mut s = String::new();
    s.push_str(
        "| reader | files | input MB | wall s | MB/s | peak RSS MiB | top parent's children | zombie p50 / p95 ms |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in reads {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.1} | {} | {} / {} |",
            r.reader,
            r.files,
            r.bytes as f64 / 1e6,
            r.wall_s,
            r.mb_per_s(),
            r.peak_rss_kib as f64 / 1024.0,
            r.top_children.map_or_else(|| "–".into(), |n| n.to_string()),
            ms(r.p50_ns),
            ms(r.p95_ns),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_copies_rename_the_host_of_every_record() {
        let dir = std::env::temp_dir().join(format!("xtask-fleet-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let rec = dir.join("r.jsonl");
        fs::write(
            &rec,
            "{\"seq\":1,\"type\":\"meta\",\"host\":\"web\",\"boot_id\":\"b\"}\n\
             {\"seq\":2,\"type\":\"fork\",\"host\":\"web\",\"boot_id\":\"b\",\"comm\":\"host\"}\n",
        )
        .unwrap();
        let copies = fleet(&rec, &dir, 2, 3).unwrap();
        assert_eq!(copies.len(), 2);
        let text = fs::read_to_string(&copies[1]).unwrap();
        assert_eq!(
            text,
            "{\"seq\":1,\"type\":\"meta\",\"host\":\"web-h4\",\"boot_id\":\"b\"}\n\
             {\"seq\":2,\"type\":\"fork\",\"host\":\"web-h4\",\"boot_id\":\"b\",\"comm\":\"host\"}\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
