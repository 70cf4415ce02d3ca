//! Kernel tests of the output file: rotation (plain and zstd), SIGHUP reopening,
//! file modes, a full disk, and a tracer killed with SIGKILL. Each records a real
//! workload with `tracer watch -o`, then reads the files back, and checks what
//! `tracer report` makes of them.
//!
//! Needs root and a built tracer, like the other kernel tests (`sudo cargo xtask test`);
//! the disk-full tests mount a small tmpfs.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tracer_tests::{
    Proc, Rec, STEP_DEADLINE, check_record, complete_records, json_u64, parse_records, poll_until,
    run_dir, run_tracer, summary_in, tracer_bin, workload_bin,
};

/// `--rotate-size` of the rotation tests: small, so a storm fills many files.
const SIZE: u64 = 32 * 1024;
/// How far past SIZE a file may end: rotation comes right after the event that
/// reaches SIZE, and one event gives a few lines of a few hundred bytes.
const SLACK: u64 = 4 * 1024;

/// `tracer watch --quiet ARGS`.
fn watch(args: &[&OsStr]) -> Proc {
    let mut all: Vec<&OsStr> = vec![OsStr::new("watch"), OsStr::new("--quiet")];
    all.extend_from_slice(args);
    Proc::tracer(&all)
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// One output file: its records, each checked against schema v1, `seq` going up
/// by one from line to line (not necessarily from 1: the run's `seq` goes on
/// across its files), every line whole.
fn read_file(path: &Path, run: &Proc) -> Vec<Rec> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text =
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()));
    assert!(
        text.ends_with('\n'),
        "{} does not end with a whole line\n{}",
        path.display(),
        run.describe()
    );
    let mut recs: Vec<Rec> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line}", path.display(), i + 1));
        check_record(&v).unwrap_or_else(|e| {
            panic!(
                "{}:{}: breaks schema v1: {e}: {line}",
                path.display(),
                i + 1
            )
        });
        let rec = Rec(v);
        if let Some(prev) = recs.last() {
            assert_eq!(
                rec.seq(),
                prev.seq() + 1,
                "{}:{}: seq does not follow the line before",
                path.display(),
                i + 1
            );
        }
        recs.push(rec);
    }
    recs
}

/// Checks that `recs` start with a `meta` record followed by the `process`
/// snapshot taken at the same moment; returns the number of `process` records.
fn check_header(path: &Path, recs: &[Rec], rotate_size: Option<u64>) -> usize {
    let meta = recs
        .first()
        .unwrap_or_else(|| panic!("{} is empty", path.display()));
    assert_eq!(
        meta.ty(),
        "meta",
        "{} does not start with meta",
        path.display()
    );
    assert_eq!(meta.u64("schema_version"), Some(2));
    assert!(meta.str("tracer_version").is_some_and(|v| !v.is_empty()));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(meta.str("kernel"), Some(release.trim()));
    let options = meta.get("options");
    assert_eq!(options["rotate_size"].as_u64(), rotate_size, "{meta}");
    let at = meta.u64("ktime_ns");
    recs[1..]
        .iter()
        .take_while(|r| r.ty() == "process" && r.u64("ktime_ns") == at)
        .count()
}

/// `tracer report --format json FILES...`, parsed.
fn report_json(files: &[PathBuf]) -> Value {
    let mut args: Vec<&OsStr> = vec![os("report"), os("--format"), os("json")];
    args.extend(files.iter().map(|f| f.as_os_str()));
    run_tracer(&args, None).ok().json()
}

/// The processes the records name: subjects of process records, and parents of
/// forks (the report knows a parent named by a fork even without its records).
fn proc_ids(recs: &[Rec]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for r in recs {
        if r.ty().starts_with("alert") || r.ty() == "meta" || r.ty() == "lost" {
            continue;
        }
        ids.extend(r.proc_id().map(str::to_string));
        ids.extend(r.str("parent_proc_id").map(str::to_string));
    }
    ids
}

/// Records a storm of `n` processes with rotation (`extra` flags added) into
/// `dir/t.jsonl`; returns the ended tracer.
fn rotated_storm(dir: &Path, n: usize, extra: &[&str]) -> Proc {
    let out = dir.join("t.jsonl");
    let size = SIZE.to_string();
    let n = n.to_string();
    let mut args: Vec<&OsStr> = vec![
        os("-o"),
        out.as_os_str(),
        os("--rotate-size"),
        os(&size),
        os("--rotate-keep"),
        os("3"),
    ];
    args.extend(extra.iter().map(os));
    let workload = workload_bin();
    args.extend([os("--"), workload.as_os_str(), os("storm"), os(&n)]);
    let mut run = watch(&args);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(
        status.success(),
        "tracer exited with {status}\n{}",
        run.describe()
    );
    assert!(
        !run.stderr().contains(" failed: "),
        "a failure on stderr\n{}",
        run.describe()
    );
    run
}

#[test]
fn rotation_keeps_n_files_each_starting_with_meta_and_the_tree() {
    let dir = run_dir("rotate");
    let run = rotated_storm(&dir, 600, &[]);
    // ~2,400 records of ~350 bytes: many rotations, of which 3 files are kept.
    assert_eq!(
        names(&dir),
        ["t.jsonl", "t.jsonl.1", "t.jsonl.2", "t.jsonl.3"],
        "{}",
        run.describe()
    );
    let mut all = Vec::new();
    let mut prev_last: Option<u64> = None;
    let mut paths = Vec::new();
    for name in ["t.jsonl.3", "t.jsonl.2", "t.jsonl.1", "t.jsonl"] {
        let path = dir.join(name);
        let recs = read_file(&path, &run);
        let snapshot = check_header(&path, &recs, Some(SIZE));
        let size = std::fs::metadata(&path).expect("stat").len();
        assert!(size <= SIZE + SLACK, "{name} has {size} bytes");
        if name != "t.jsonl" {
            assert!(size >= SIZE / 2, "{name} rotated early: {size} bytes");
            // The storm was on when these began: its workload and workers were alive.
            assert!(
                snapshot >= 2,
                "{name}: {snapshot} process records after meta"
            );
        }
        if let Some(p) = prev_last {
            assert_eq!(
                recs[0].seq(),
                p + 1,
                "{name}: seq goes on from the last file"
            );
        }
        prev_last = recs.last().map(Rec::seq);

        // Each file alone is a whole recording: every process it names is known
        // from its snapshot or its fork, none inferred, no line missing.
        let r = report_json(std::slice::from_ref(&path));
        let ids = proc_ids(&recs);
        assert_eq!(json_u64(&r, &["input_problems", "bad_lines"]), 0, "{name}");
        assert_eq!(
            json_u64(&r, &["input_problems", "missing_lines"]),
            0,
            "{name}"
        );
        assert_eq!(
            json_u64(&r, &["totals", "inferred"]),
            0,
            "{name}: {:#}",
            r["totals"]
        );
        assert_eq!(
            json_u64(&r, &["totals", "processes"]),
            ids.len() as u64,
            "{name}"
        );
        assert_eq!(
            json_u64(&r, &["totals", "records"]),
            recs.len() as u64,
            "{name}: every record counted"
        );
        all.extend(recs);
        paths.push(path);
    }

    // Together: no gap, no duplicate, each process once.
    let r = report_json(&paths);
    assert_eq!(json_u64(&r, &["input_problems", "bad_lines"]), 0);
    assert_eq!(json_u64(&r, &["input_problems", "missing_lines"]), 0);
    assert_eq!(json_u64(&r, &["input_problems", "duplicates"]), 0);
    assert_eq!(
        json_u64(&r, &["totals", "processes"]),
        proc_ids(&all).len() as u64
    );
    let forked: BTreeSet<&str> = all
        .iter()
        .filter(|r| r.ty() == "fork" && !r.thread())
        .filter_map(Rec::proc_id)
        .collect();
    assert_eq!(json_u64(&r, &["totals", "forked"]), forked.len() as u64);
    let metas = all.iter().filter(|r| r.ty() == "meta").count() as u64;
    assert_eq!(
        r["runs"][0]["records"]["meta"].as_u64(),
        Some(metas),
        "{:#}",
        r["runs"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compressed_rotated_files_report_as_the_uncompressed_ones() {
    let dir = run_dir("compress");
    let run = rotated_storm(&dir, 600, &["--compress", "--file-mode", "0640"]);
    assert_eq!(
        names(&dir),
        ["t.jsonl", "t.jsonl.1.zst", "t.jsonl.2.zst", "t.jsonl.3.zst"],
        "{}",
        run.describe()
    );
    let plain_dir = dir.join("plain");
    std::fs::create_dir(&plain_dir).expect("mkdir");
    let mut packed = Vec::new();
    let mut plain = Vec::new();
    for n in [3, 2, 1] {
        let zst = dir.join(format!("t.jsonl.{n}.zst"));
        let mode = std::fs::metadata(&zst).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{}", zst.display());
        let bytes = std::fs::read(&zst).expect("read");
        assert_eq!(&bytes[..4], &[0x28, 0xB5, 0x2F, 0xFD], "zstd magic");
        let data = zstd::decode_all(&bytes[..]).expect("valid zstd");
        // Named without .zst, so it is read as plain text.
        let out = plain_dir.join(format!("t.jsonl.{n}"));
        std::fs::write(&out, &data).expect("write");
        let recs = read_file(&out, &run);
        check_header(&out, &recs, Some(SIZE));

        let figures = |path: &Path| {
            let mut r = report_json(&[path.to_path_buf()]);
            let input = r["inputs"][0].take();
            (r, input)
        };
        let (from_zst, input_zst) = figures(&zst);
        let (from_plain, input_plain) = figures(&out);
        assert_eq!(from_zst, from_plain, "{}", zst.display());
        assert_eq!(input_zst["lines"], input_plain["lines"]);
        assert_eq!(input_zst["bytes"].as_u64(), Some(bytes.len() as u64));
        packed.push(zst);
        plain.push(out);
    }
    packed.push(dir.join("t.jsonl"));
    plain.push(dir.join("t.jsonl"));
    let mut a = report_json(&packed);
    let mut b = report_json(&plain);
    a["inputs"].take();
    b["inputs"].take();
    assert_eq!(a, b, "all files together");
    assert_eq!(json_u64(&a, &["input_problems", "missing_lines"]), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `tracer watch -o dir/t.jsonl [extra] -- tracer-workload storm-gated GATE N`
/// and waits until the workload waits at its gate.
fn gated_run(dir: &Path, gate: &Path, n: usize, extra: &[&OsStr]) -> Proc {
    std::fs::create_dir_all(gate).expect("gate dir");
    let out = dir.join("t.jsonl");
    let workload = workload_bin();
    let n = n.to_string();
    let mut args: Vec<&OsStr> = vec![os("-o"), out.as_os_str()];
    args.extend_from_slice(extra);
    args.extend([
        os("--"),
        workload.as_os_str(),
        os("storm-gated"),
        gate.as_os_str(),
        os(&n),
    ]);
    let mut run = watch(&args);
    let ready = gate.join("ready");
    if !poll_until(STEP_DEADLINE, || {
        ready.exists() || run.try_status().is_some()
    }) {
        panic!("the workload never got ready\n{}", run.describe());
    }
    assert!(run.try_status().is_none(), "{}", run.describe());
    run
}

#[test]
fn sighup_reopens_the_file_after_logrotate_renamed_it() {
    let dir = run_dir("sighup");
    let gate = dir.join("gate");
    let out = dir.join("t.jsonl");
    let mut run = gated_run(&dir, &gate, 20, &[]);
    let workload: u32 = std::fs::read_to_string(gate.join("ready"))
        .expect("ready")
        .parse()
        .expect("pid");
    // The workload's exec is in the file (flushed within a second).
    let exec_seen = || {
        complete_records(&out)
            .iter()
            .any(|r| r.ty() == "exec" && r.pid() == Some(workload))
    };
    assert!(poll_until(STEP_DEADLINE, exec_seen), "{}", run.describe());

    // What logrotate does without copytruncate: rename, then SIGHUP.
    let old = dir.join("t.jsonl.1");
    std::fs::rename(&out, &old).expect("rename");
    run.signal(libc::SIGHUP);
    let reopened = || {
        complete_records(&out)
            .first()
            .is_some_and(|r| r.ty() == "meta")
    };
    assert!(
        poll_until(STEP_DEADLINE, reopened),
        "no new file after SIGHUP\n{}",
        run.describe()
    );
    std::fs::write(gate.join("go"), "").expect("go");
    let status = run.wait_within(STEP_DEADLINE);
    assert!(status.success(), "{}", run.describe());
    assert!(!run.stderr().contains(" failed: "), "{}", run.describe());

    let first = read_file(&old, &run);
    let second = read_file(&out, &run);
    assert_eq!(first[0].seq(), 1, "the renamed file is the first one");
    check_header(&old, &first, None);
    let snapshot = check_header(&out, &second, None);
    assert_eq!(
        second[0].seq(),
        first.last().expect("records").seq() + 1,
        "seq goes on in the reopened file"
    );
    // The new file's snapshot holds the waiting workload; the storm is after it.
    assert!(
        second[1..=snapshot]
            .iter()
            .any(|r| r.pid() == Some(workload)),
        "workload {workload} not in the snapshot of the reopened file"
    );
    let forks = second
        .iter()
        .filter(|r| r.ty() == "fork" && r.u64("ppid").is_some())
        .count();
    assert!(
        forks >= 20,
        "the storm is in the reopened file ({forks} forks)"
    );
    assert!(
        !first
            .iter()
            .any(|r| r.ty() == "fork" && r.ppid() != Some(run.pid())),
        "the storm went to the old file"
    );
    let r = report_json(&[old.clone(), out.clone()]);
    assert_eq!(json_u64(&r, &["input_problems", "missing_lines"]), 0);
    assert_eq!(json_u64(&r, &["input_problems", "bad_lines"]), 0);
    let mut all = first;
    all.extend(second);
    assert_eq!(
        json_u64(&r, &["totals", "processes"]),
        proc_ids(&all).len() as u64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tracer watch -o FILE [flags] -- /bin/true` under umask 077; returns the
/// mode bits of FILE.
fn mode_of_output(flags: &[&str]) -> u32 {
    let dir = run_dir("mode");
    let out = dir.join("t.jsonl");
    let mut cmd = Command::new(tracer_bin());
    cmd.args(["watch", "--quiet", "-o"])
        .arg(&out)
        .args(flags)
        .args(["--", "/bin/true"]);
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut run = Proc::spawn(&mut cmd, false);
    let status = run.wait_within(STEP_DEADLINE);
    assert!(status.success(), "{}", run.describe());
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o7777;
    let _ = std::fs::remove_dir_all(&dir);
    mode
}

#[test]
fn files_are_0600_unless_file_mode_says_otherwise() {
    assert_eq!(mode_of_output(&[]), 0o600);
    // Exactly as asked, though the umask (077) would have taken the group bits.
    assert_eq!(mode_of_output(&["--file-mode", "0640"]), 0o640);
}

/// A tmpfs of `size` at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let c = |s: &OsStr| CString::new(s.as_encoded_bytes()).expect("no NUL");
        let (src, target, fstype) = (c(os("tmpfs")), c(dir.as_os_str()), c(os("tmpfs")));
        let data = c(&OsString::from(format!("size={size},mode=0755")));
        // SAFETY: all pointers are valid NUL-terminated strings for the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            panic!(
                "mounting a tmpfs at {}: {} (the disk-full tests need root)",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: a valid path; MNT_DETACH even if something still has it open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `N records not written to FILE` (`1 record`, `1,200 records`) in the summary.
fn not_written(stderr: &str, file: &Path) -> Option<u64> {
    let sum = summary_in(stderr)?;
    let tail = format!(" not written to {}", file.display());
    let line = &sum.line;
    let end = line.find(&tail)?;
    let head = line[..end]
        .strip_suffix(" records")
        .or_else(|| line[..end].strip_suffix(" record"))?;
    head.rsplit(' ').next()?.replace(',', "").parse().ok()
}

#[test]
fn a_full_disk_loses_counted_records_and_keeps_whole_lines() {
    let dir = run_dir("disk-full");
    let mnt = dir.join("mnt");
    let _fs = Tmpfs::mount(&mnt, "64k");
    let out = mnt.join("t.jsonl");
    let workload = workload_bin();
    let mut run = watch(&[
        os("-o"),
        out.as_os_str(),
        os("--"),
        workload.as_os_str(),
        os("storm"),
        os("1000"),
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    let stderr = run.stderr();
    // Tracing went on to the end, the storm completed (the workload's status, 0),
    // and records were lost: 3 (README, Exit status).
    assert_eq!(status.code(), Some(3), "{}", run.describe());
    assert!(
        stderr.contains(&format!(
            "tracer: writing to {} failed: No space left on device",
            out.display()
        )),
        "{}",
        run.describe()
    );
    let lost = not_written(&stderr, &out)
        .unwrap_or_else(|| panic!("no `records not written` in the summary\n{stderr}"));
    // 1,000 children take ~4,000 records, ~1.4 MB: most cannot fit in 64 KiB.
    assert!(lost > 1000, "only {lost} records lost\n{stderr}");
    let content = std::fs::read_to_string(&out).expect("read");
    assert!(content.len() > 32 * 1024, "the file filled the disk");
    assert!(content.ends_with('\n'), "a partial last line");
    // Whole lines, gap-free seq from 1: what was written is a valid recording.
    let recs = parse_records(&content).unwrap_or_else(|e| panic!("{e}"));
    let summary = summary_in(&stderr).expect("summary");
    assert_eq!(
        summary.records - lost,
        recs.len() as u64,
        "records made, less those lost, are what the file holds"
    );
    let r = report_json(std::slice::from_ref(&out));
    assert_eq!(json_u64(&r, &["input_problems", "bad_lines"]), 0);
    drop(_fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writing_resumes_when_space_comes_back_and_says_what_was_lost() {
    let dir = run_dir("disk-resume");
    let mnt = dir.join("mnt");
    // Room for ~100 KiB of records until the filler goes; then for all that is
    // held in memory (256 KiB at most) and the second storm.
    let _fs = Tmpfs::mount(&mnt, "1m");
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![1u8; 900 * 1024]).expect("filler");
    let out = mnt.join("t.jsonl");
    let (gate1, gate2) = (dir.join("gate1"), dir.join("gate2"));
    std::fs::create_dir_all(&gate1).expect("gate1");
    std::fs::create_dir_all(&gate2).expect("gate2");
    let workload = workload_bin();
    // Two storms, each behind its own gate: the first fills the disk, the second
    // comes after space is freed.
    let script = r#""$0" storm-gated "$1" 1000 && "$0" storm-gated "$2" 20"#;
    let mut run = watch(&[
        os("-o"),
        out.as_os_str(),
        os("--"),
        os("/bin/sh"),
        os("-c"),
        os(script),
        workload.as_os_str(),
        gate1.as_os_str(),
        gate2.as_os_str(),
    ]);
    let ready1 = gate1.join("ready");
    assert!(
        poll_until(STEP_DEADLINE, || ready1.exists()),
        "{}",
        run.describe()
    );
    std::fs::write(gate1.join("go"), "").expect("go");
    let failed = format!(
        "tracer: writing to {} failed: No space left on device",
        out.display()
    );
    let ready2 = gate2.join("ready");
    assert!(
        poll_until(STEP_DEADLINE, || ready2.exists()
            && run.stderr().contains(&failed)),
        "no disk-full message after the first storm\n{}",
        run.describe()
    );
    std::fs::remove_file(&filler).expect("free space");
    let again = format!("tracer: writing to {} works again; ", out.display());
    assert!(
        poll_until(STEP_DEADLINE, || run.stderr().contains(&again)),
        "writing did not resume\n{}",
        run.describe()
    );
    std::fs::write(gate2.join("go"), "").expect("go");
    let status = run.wait_within(STEP_DEADLINE);
    let stderr = run.stderr();
    // Records were lost meanwhile: 3 (README, Exit status).
    assert_eq!(status.code(), Some(3), "{}", run.describe());
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&again))
        .expect("checked");
    let lost: u64 = line[again.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(lost > 0 && line.ends_with("lost to it"), "{line}");
    assert_eq!(stderr.matches(&failed).count(), 1, "said once\n{stderr}");
    let total = not_written(&stderr, &out).expect("summary");
    assert!(total >= lost, "summary {total} < {lost}\n{stderr}");

    let content = std::fs::read_to_string(&out).expect("read");
    let recs = parse_records(&content).unwrap_or_else(|e| panic!("{e}"));
    let summary = summary_in(&stderr).expect("summary");
    assert_eq!(summary.records - total, recs.len() as u64, "{stderr}");
    // The second storm, after the resumption, is in the file.
    let facts: Vec<Value> = run
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("pids: "))
        .map(|j| serde_json::from_str(j).expect("pids line"))
        .collect();
    assert_eq!(facts.len(), 2, "{}", run.stdout());
    let children: Vec<u64> = facts[1]["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(children.len(), 20);
    for c in children {
        assert!(
            recs.iter()
                .any(|r| r.ty() == "exec" && r.pid() == Some(c as u32)),
            "no exec of {c}, forked after writing resumed"
        );
    }
    drop(_fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_leaves_at_most_one_partial_line_which_report_counts() {
    let dir = run_dir("sigkill");
    let out = dir.join("t.jsonl");
    let workload = workload_bin();
    let mut run = watch(&[
        os("-o"),
        out.as_os_str(),
        os("--"),
        workload.as_os_str(),
        os("storm"),
        os("20000"),
    ]);
    let enough = || complete_records(&out).len() > 3000;
    assert!(poll_until(STEP_DEADLINE, enough), "{}", run.describe());
    run.signal(libc::SIGKILL);
    run.wait_exit_within(STEP_DEADLINE);
    drop(run);

    let content = std::fs::read(&out).expect("read");
    let text = String::from_utf8_lossy(&content);
    let (whole, partial) = match text.rfind('\n') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", &text[..]),
    };
    let recs = parse_records(whole).unwrap_or_else(|e| panic!("{e}"));
    assert!(recs.len() > 3000);
    let r = report_json(std::slice::from_ref(&out));
    let truncated = u64::from(!partial.is_empty());
    assert_eq!(
        json_u64(&r, &["input_problems", "bad_lines"]),
        truncated,
        "{:#}",
        r["input_problems"]
    );
    assert_eq!(json_u64(&r, &["input_problems", "missing_lines"]), 0);
    assert_eq!(json_u64(&r, &["totals", "records"]), recs.len() as u64);

    // What a power cut in the middle of a line leaves: that line is skipped and
    // counted as truncated, the rest is reported.
    let last = whole[..whole.len() - 1].rfind('\n').map_or(0, |i| i + 1);
    let cut_at = last + (whole.len() - last) / 2;
    std::fs::write(&out, &whole.as_bytes()[..cut_at]).expect("cut");
    let r = report_json(std::slice::from_ref(&out));
    assert_eq!(json_u64(&r, &["input_problems", "bad_lines"]), 1);
    assert_eq!(
        json_u64(&r, &["input_problems", "by_reason", "truncated"]),
        1
    );
    assert_eq!(json_u64(&r, &["totals", "records"]), recs.len() as u64 - 1);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Recordings are never destroyed unasked (issue 14: bugs 1, 8, 9, 10)

/// `tracer watch --quiet -o OUT FLAGS -- /bin/true` to its end; its exit code.
fn record_true(out: &Path, flags: &[&str]) -> (Proc, Option<i32>) {
    let mut args: Vec<&OsStr> = vec![os("-o"), out.as_os_str()];
    args.extend(flags.iter().map(os));
    args.extend([os("--"), os("/bin/true")]);
    let mut run = watch(&args);
    let code = run.wait_within(STEP_DEADLINE).code();
    (run, code)
}

/// The one line of a refusal with exit status 2.
fn refused_with_2((run, code): &(Proc, Option<i32>), what: &str) -> String {
    assert_eq!(
        *code,
        Some(2),
        "{what}: exit status 2 expected\n{}",
        run.describe()
    );
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: one line expected\n{}",
        run.describe()
    );
    lines[0].to_string()
}

#[test]
fn an_existing_recording_is_refused_then_appended_to_or_replaced() {
    let dir = run_dir("append");
    let out = dir.join("events.jsonl");
    let (first, code) = record_true(&out, &[]);
    assert_eq!(code, Some(0), "{}", first.describe());
    let before = std::fs::read(&out).expect("first recording");
    assert!(!before.is_empty(), "{}", first.describe());

    // Again without a word: refused, the recording untouched.
    let again = record_true(&out, &[]);
    let line = refused_with_2(&again, "a second run on the same file");
    assert!(
        line.contains(out.to_str().unwrap())
            && line.contains("exists")
            && line.contains("--append")
            && line.contains("--force"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the recording changed"
    );

    // --append: the old run stays as it was, a second run follows with its meta.
    let (appended, code) = record_true(&out, &["--append"]);
    assert_eq!(code, Some(0), "{}", appended.describe());
    let after = std::fs::read(&out).unwrap();
    assert!(after.starts_with(&before), "{}", appended.describe());
    // Each run is whole and checked on its own (seq starts again at 1).
    let part = |bytes: &[u8]| parse_records(std::str::from_utf8(bytes).unwrap()).expect("whole");
    let (old, new) = (part(&before), part(&after[before.len()..]));
    assert_eq!(new[0].ty(), "meta", "the appended run starts with its meta");
    assert_eq!(new[0].get("options")["append"], Value::Bool(true));
    let recs: Vec<&Rec> = old.iter().chain(&new).collect();
    assert_eq!(recs.iter().filter(|r| r.ty() == "meta").count(), 2);
    let report = report_json(std::slice::from_ref(&out));
    assert_eq!(
        report["inputs"][0]["seq_restarts"].as_u64(),
        Some(1),
        "{report:#}"
    );
    let execs = recs
        .iter()
        .filter(|r| r.ty() == "exec" && r.str("filename") == Some("/bin/true"))
        .count();
    assert_eq!(execs, 2, "each run's command is in the file");

    // --force: replaced by one run.
    let (forced, code) = record_true(&out, &["--force"]);
    assert_eq!(code, Some(0), "{}", forced.describe());
    let text = std::fs::read_to_string(&out).unwrap();
    let recs = parse_records(&text).expect("whole records");
    assert_eq!(
        recs.iter().filter(|r| r.ty() == "meta").count(),
        1,
        "{}",
        forced.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_symlink_at_the_output_is_refused_and_its_target_untouched() {
    let dir = run_dir("symlink");
    let target = dir.join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("events.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for flags in [&[][..], &["--force"], &["--append"]] {
        let run = record_true(&link, flags);
        let line = refused_with_2(&run, "a symlink");
        assert!(line.contains("symbolic link"), "{flags:?}: {line}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{flags:?}: the target was chmod'ed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_outputs_never_replace_an_input_and_are_0600() {
    let dir = run_dir("report-out");
    let rec = dir.join("events.jsonl");
    let (first, _) = record_true(&rec, &[]);
    let rotated = dir.join("events.jsonl.1");
    std::fs::copy(&rec, &rotated).unwrap_or_else(|e| panic!("{e}\n{}", first.describe()));
    let before = std::fs::read(&rec).unwrap();
    let report = |args: &[&OsStr]| {
        let mut all = vec![os("report")];
        all.extend_from_slice(args);
        run_tracer(&all, None)
    };
    // The README's glob, `--perfetto events.jsonl*`, and the same file named twice.
    for (flag, out, input) in [
        ("--perfetto", &rec, &rotated),
        ("--flamegraph", &rec, &rec),
        ("--perfetto", &rotated, &rotated),
    ] {
        let ran = report(&[os(flag), out.as_os_str(), input.as_os_str()]);
        assert_eq!(ran.status.code(), Some(2), "{ran:?}");
        assert_eq!(ran.stderr.lines().count(), 1, "{ran:?}");
        assert!(ran.stderr.contains(flag), "{ran:?}");
        assert!(ran.stdout.is_empty(), "nothing is reported: {ran:?}");
        assert_eq!(std::fs::read(&rec).unwrap(), before, "{ran:?}");
        assert_eq!(std::fs::read(&rotated).unwrap(), before, "{ran:?}");
    }
    // New files: mode 0600 whatever the umask, no temporary file left.
    let (trace, svg) = (dir.join("t.json"), dir.join("f.svg"));
    let ran = report(&[
        os("--perfetto"),
        trace.as_os_str(),
        os("--flamegraph"),
        svg.as_os_str(),
        rec.as_os_str(),
    ])
    .ok();
    for f in [&trace, &svg] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {ran:?}", f.display());
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("a trace");
    assert!(
        json["traceEvents"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(
        names(&dir),
        ["events.jsonl", "events.jsonl.1", "f.svg", "t.json"]
    );
    // `-` is stdout, for every output flag; the report then stays off stdout.
    let ran = report(&[os("--perfetto"), os("-"), rec.as_os_str()]).ok();
    let json: Value = serde_json::from_str(&ran.stdout).expect("stdout is the trace alone");
    assert!(
        json["traceEvents"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let ran = report(&[os("--flamegraph"), os("-"), rec.as_os_str()]).ok();
    assert!(ran.stdout.trim_start().starts_with("<?xml"), "{ran:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_input_names_its_cause_once() {
    let ran = run_tracer(&[os("report"), os("/nonexistent-dir/nope.jsonl")], None);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    let cause = std::io::Error::from_raw_os_error(libc::ENOENT).to_string();
    assert_eq!(ran.stderr.lines().count(), 1, "{ran:?}");
    assert!(
        ran.stderr.contains("/nonexistent-dir/nope.jsonl"),
        "{ran:?}"
    );
    assert_eq!(ran.stderr.matches(&cause).count(), 1, "{ran:?}");
}
