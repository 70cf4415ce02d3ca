//! The processes that already exist when tracing starts, read from /proc, and a
//! few facts about the machine (boot id, host name).
//!
//! Each /proc/PID directory is opened once and its files are read relative to
//! that directory handle: the handle stays bound to the process it was opened
//! for (proc_pident_lookup / get_proc_task in fs/proc/base.c fail with ENOENT or
//! ESRCH once that process is gone), so a pid reused mid-scan can never mix two
//! processes into one entry.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cgroup::CgroupResolver;
use crate::event::Comm;
pub use crate::model::SeedProc;

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("cannot list {path}: {error} (is procfs mounted there?)")]
    List { path: PathBuf, error: io::Error },
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("unexpected contents in {path}: {problem}")]
    Parse {
        path: PathBuf,
        problem: &'static str,
    },
}

/// The result of a scan: the processes read, and what went wrong on the way.
#[derive(Debug)]
pub struct Snapshot {
    pub procs: Vec<SeedProc>,
    /// One entry per process that could not be read for a reason other than
    /// having exited (that is normal and not reported). Those processes are
    /// missing from `procs`.
    pub errors: Vec<ProcfsError>,
}

/// Reads every process under `proc_root` (normally `/proc`). Only a failure to
/// list `proc_root` itself is an error; see [`snapshot_counted`] for the
/// processes that had to be skipped.
pub fn snapshot(
    proc_root: &Path,
    cgroups: &mut CgroupResolver,
) -> Result<Vec<SeedProc>, ProcfsError> {
    snapshot_counted(proc_root, cgroups).map(|s| s.procs)
}

/// [`snapshot`], also returning the per-process errors so they can be reported.
pub fn snapshot_counted(
    proc_root: &Path,
    cgroups: &mut CgroupResolver,
) -> Result<Snapshot, ProcfsError> {
    let list_err = |error| ProcfsError::List {
        path: proc_root.to_path_buf(),
        error,
    };
    let mut snap = Snapshot {
        procs: Vec::new(),
        errors: Vec::new(),
    };
    for entry in fs::read_dir(proc_root).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let Some(pid) = std::str::from_utf8(entry.file_name().as_bytes())
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue; // not a process directory (self, sys, meminfo, ...)
        };
        match read_process(proc_root, pid, cgroups) {
            Ok(Some(p)) => snap.procs.push(p),
            Ok(None) => {} // exited while we looked
            Err(e) => snap.errors.push(e),
        }
    }
    snap.procs.sort_by_key(|p| p.pid);
    Ok(snap)
}

/// The process is gone (or going): not an error during a scan.
fn vanished(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH))
}

fn read_at(dir: &File, name: &CStr) -> io::Result<Vec<u8>> {
    // SAFETY: `name` is NUL-terminated and `dir` is an open descriptor for the call.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened by us and is owned by nobody else.
    let mut f = unsafe { File::from_raw_fd(fd) };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

fn readlink_at(dir: &File, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 512];
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes; `name` is NUL-terminated.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let Ok(n) = usize::try_from(n) else {
            return Err(io::Error::last_os_error());
        };
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // Possibly cut: d_path output is at most a page, so this ends quickly.
        if buf.len() >= 1 << 16 {
            return Err(io::Error::other("link target longer than 64 KiB"));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// `Ok(None)` when the process exited while we read it.
fn read_process(
    proc_root: &Path,
    pid: u32,
    cgroups: &mut CgroupResolver,
) -> Result<Option<SeedProc>, ProcfsError> {
    let dir_path = proc_root.join(pid.to_string());
    let read_err = |file: &str, error| ProcfsError::Read {
        path: dir_path.join(file),
        error,
    };
    let dir = match File::open(&dir_path) {
        Ok(d) => d,
        Err(e) if vanished(&e) => return Ok(None),
        Err(e) => return Err(read_err("", e)),
    };
    macro_rules! read_or_vanish {
        ($name:literal) => {
            match read_at(&dir, $name) {
                Ok(b) => b,
                Err(e) if vanished(&e) => return Ok(None),
                Err(e) => return Err(read_err($name.to_str().unwrap_or("?"), e)),
            }
        };
    }

    let stat_bytes = read_or_vanish!(c"stat");
    let stat = parse_stat(&stat_bytes).map_err(|problem| ProcfsError::Parse {
        path: dir_path.join("stat"),
        problem,
    })?;
    if stat.pid != pid {
        let problem = "the pid in the file is not the directory's";
        return Err(ProcfsError::Parse {
            path: dir_path.join("stat"),
            problem,
        });
    }
    let status = read_or_vanish!(c"status");
    let cmdline = read_or_vanish!(c"cmdline");
    // EACCES for other users' processes when we are not root, ENOENT for kernel
    // threads and zombies (no mm): all mean "no file name to show".
    let filename = readlink_at(&dir, c"exe").ok();
    // No cgroup file at all means a kernel without cgroups: id unknown.
    let cgroup_id = match read_at(&dir, c"cgroup") {
        Ok(text) => parse_cgroup_v2(&text)
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| cgroups.id_of_path(p))
            .unwrap_or(0),
        Err(_) => 0,
    };

    Ok(Some(SeedProc {
        pid,
        ppid: stat.ppid,
        start_ticks: stat.start_ticks,
        comm: Comm::new(stat.comm),
        state: stat.state,
        filename,
        argv: parse_cmdline(&cmdline),
        uid: parse_status_uid(&status),
        cgroup_id,
        subreaper: false,
    }))
}

/// The fields of /proc/PID/stat we use.
#[derive(Debug, PartialEq, Eq)]
pub struct StatFields<'a> {
    pub pid: u32,
    /// Raw bytes between the parentheses; may itself contain spaces and parentheses.
    pub comm: &'a [u8],
    pub state: char,
    pub ppid: u32,
    /// Field 22.
    pub start_ticks: u64,
}

fn parse_num<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses /proc/PID/stat (fs/proc/array.c, do_task_stat). The command name is
/// printed raw inside parentheses, so it is everything up to the LAST `)`: none
/// of the later fields can contain one.
pub fn parse_stat(stat: &[u8]) -> Result<StatFields<'_>, &'static str> {
    let open = stat
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no '(' before the command name")?;
    let close = stat
        .iter()
        .rposition(|&b| b == b')')
        .ok_or("no ')' after the command name")?;
    if close < open {
        return Err("')' before '('");
    }
    let pid = parse_num(stat[..open].trim_ascii()).ok_or("field 1 (pid) is not a number")?;
    let comm = &stat[open + 1..close];
    // Fields 3.. after the name; fields[0] is field 3.
    let mut fields = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = match fields.next().map(|f| f.trim_ascii_end()) {
        Some([c]) if c.is_ascii_alphabetic() => char::from(*c),
        _ => return Err("field 3 (state) is not one letter"),
    };
    let ppid = fields
        .next()
        .and_then(parse_num)
        .ok_or("field 4 (ppid) is not a number")?;
    // Field 22 is 18 fields after field 4.
    let start_ticks = fields
        .nth(17)
        .map(<[u8]>::trim_ascii_end)
        .and_then(parse_num)
        .ok_or("field 22 (starttime) is missing or not a number")?;
    Ok(StatFields {
        pid,
        comm,
        state,
        ppid,
        start_ticks,
    })
}

/// /proc/PID/cmdline: arguments each followed by a NUL. A process that rewrote
/// its argument area may leave the last one unterminated; it is kept as it is.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    bytes.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// The real uid: the first number of the `Uid:` line of /proc/PID/status.
pub fn parse_status_uid(status: &[u8]) -> Option<u32> {
    status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Uid:"))
        .and_then(|rest| {
            rest.split(|b| b.is_ascii_whitespace())
                .find(|f| !f.is_empty())
        })
        .and_then(parse_num)
}

/// The cgroup v2 path: the `0::PATH` line of /proc/PID/cgroup.
pub fn parse_cgroup_v2(text: &[u8]) -> Option<&[u8]> {
    text.split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
}

fn read_trimmed(path: &str) -> io::Result<String> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.trim_end().to_owned()),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {path}: {e}"))),
    }
}

/// The start time (field 22 of /proc/PID/stat, in clock ticks) of the process
/// now holding `pid`, or None when there is none.
pub fn start_ticks(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&stat).ok().map(|f| f.start_ticks)
}

/// Whether /proc has an entry for `pid` (a stat of the directory: the cheapest
/// look-up; it cannot tell a reused pid, see [`start_ticks`] for that).
pub fn pid_present(proc_root: &Path, pid: u32) -> bool {
    fs::symlink_metadata(proc_root.join(pid.to_string())).is_ok()
}

/// This boot's random id (changes at every boot), from /proc/sys/kernel/random/boot_id.
pub fn boot_id() -> io::Result<String> {
    read_trimmed("/proc/sys/kernel/random/boot_id")
}

/// The host name in our UTS namespace, from /proc/sys/kernel/hostname.
pub fn hostname() -> io::Result<String> {
    read_trimmed("/proc/sys/kernel/hostname")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn stat_with_hostile_comm() {
        let line = b"4242 (a) b (c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 58237 3133440 381 18446744073709551615 1 2 3\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            StatFields {
                pid: 4242,
                comm: b"a) b (c",
                state: 'S',
                ppid: 17,
                start_ticks: 58237
            }
        );
    }

    #[test]
    fn stat_real_line_and_edge_cases() {
        let cat = b"6049 (cat) R 6041 6041 4190 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 58237 3133440 381 18446744073709551615 94666746482688 0";
        let s = parse_stat(cat).unwrap();
        assert_eq!(
            (s.pid, s.comm, s.state, s.ppid, s.start_ticks),
            (6049, &b"cat"[..], 'R', 6041, 58237)
        );
        // Empty name, spaces and newline in the name.
        let odd = b"7 () Z 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 99\n";
        assert_eq!(parse_stat(odd).unwrap().comm, b"");
        let nl = b"7 (x\ny z) I 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5";
        let s = parse_stat(nl).unwrap();
        assert_eq!((s.comm, s.state, s.start_ticks), (&b"x\ny z"[..], 'I', 5));
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b"1 (x S 1").is_err());
        assert!(parse_stat(b"1 (x) S 1 0 0").is_err(), "too few fields");
        assert!(parse_stat(b"x (x) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5").is_err());
        assert!(parse_stat(b"1 (x) SS 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5").is_err());
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(parse_cmdline(b""), Vec::<Vec<u8>>::new());
        assert_eq!(
            parse_cmdline(b"ls\0-la\0"),
            vec![b"ls".to_vec(), b"-la".to_vec()]
        );
        assert_eq!(
            parse_cmdline(b"a\0\0b\0"),
            vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]
        );
        // execve(path, [""], envp): one empty argument.
        assert_eq!(parse_cmdline(b"\0"), vec![b"".to_vec()]);
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            vec![b"nginx: worker process".to_vec()]
        );
    }

    #[test]
    fn status_and_cgroup_lines() {
        let status = b"Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\n";
        assert_eq!(parse_status_uid(status), Some(1000));
        assert_eq!(parse_status_uid(b"Name:\tx\n"), None);
        let cg = b"4:memory:/a\n0::/system.slice/ssh.service\n";
        assert_eq!(parse_cgroup_v2(cg), Some(&b"/system.slice/ssh.service"[..]));
        assert_eq!(parse_cgroup_v2(b"4:memory:/a\n"), None);
    }

    /// A made-up /proc in a temporary directory.
    struct FakeProc(PathBuf);
    impl FakeProc {
        fn new() -> Self {
            let p = std::env::temp_dir().join(format!("tracer-fakeproc-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            FakeProc(p)
        }
        fn add(&self, pid: &str, files: &[(&str, &[u8])]) {
            let d = self.0.join(pid);
            fs::create_dir_all(&d).unwrap();
            for (name, content) in files {
                fs::write(d.join(name), content).unwrap();
            }
        }
    }
    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn fake_proc_tree() {
        let fp = FakeProc::new();
        fp.add(
            "300",
            &[
                (
                    "stat",
                    b"300 (we ird) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1234\n",
                ),
                ("status", b"Uid:\t33\t33\t33\t33\n"),
                ("cmdline", b"/usr/sbin/we ird\0--flag\0"),
                ("cgroup", b"0::/\n"),
            ],
        );
        std::os::unix::fs::symlink("/usr/sbin/weird", fp.0.join("300/exe")).unwrap();
        fp.add(
            "2",
            &[
                (
                    "stat",
                    b"2 (kthreadd) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1\n",
                ),
                ("status", b"Uid:\t0\n"),
                ("cmdline", b""),
            ],
        );
        fp.add(
            "77",
            &[("stat", b"garbage"), ("status", b""), ("cmdline", b"")],
        );
        fp.add("self", &[]);
        fs::write(fp.0.join("meminfo"), "").unwrap();

        let mut cg = CgroupResolver::unavailable();
        let snap = snapshot_counted(&fp.0, &mut cg).unwrap();
        assert_eq!(
            snap.procs,
            vec![
                SeedProc {
                    pid: 2,
                    ppid: 0,
                    start_ticks: 1,
                    comm: Comm::new(b"kthreadd"),
                    state: 'S',
                    filename: None,
                    argv: vec![],
                    uid: Some(0),
                    cgroup_id: 0,
                    subreaper: false,
                },
                SeedProc {
                    pid: 300,
                    ppid: 1,
                    start_ticks: 1234,
                    comm: Comm::new(b"we ird"),
                    state: 'S',
                    filename: Some(b"/usr/sbin/weird".to_vec()),
                    argv: vec![b"/usr/sbin/we ird".to_vec(), b"--flag".to_vec()],
                    uid: Some(33),
                    cgroup_id: 0,
                    subreaper: false,
                },
            ]
        );
        assert_eq!(snap.errors.len(), 1, "{:?}", snap.errors);
        let msg = snap.errors[0].to_string();
        assert!(msg.contains("77/stat") && msg.contains("'('"), "{msg}");

        let missing = fp.0.join("nope");
        let err = snapshot(&missing, &mut cg).unwrap_err();
        assert!(err.to_string().contains("cannot list"), "{err}");
    }

    #[test]
    fn real_proc_has_us_and_our_zombie() {
        // SAFETY: the child only calls _exit, which is async-signal-safe, so forking
        // a multi-threaded test process is fine.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork: {}", io::Error::last_os_error());
        if child == 0 {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        // Wait for it to exit but leave it unreaped (WNOWAIT): a zombie.
        // SAFETY: `info` is a valid siginfo_t to write to.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                child as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(rc, 0, "waitid: {}", io::Error::last_os_error());

        let mut cg = CgroupResolver::new();
        let snap = snapshot_counted(Path::new("/proc"), &mut cg);

        // Reap before asserting so a failure leaves no zombie behind.
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        let snap = snap.unwrap();

        let me = std::process::id();
        let us = snap
            .procs
            .iter()
            .find(|p| p.pid == me)
            .expect("this process is in the snapshot");
        // SAFETY: getppid/getuid cannot fail.
        let (ppid, uid) = unsafe { (libc::getppid() as u32, libc::getuid()) };
        assert_eq!(us.ppid, ppid);
        assert_eq!(us.uid, Some(uid));
        let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
        assert_eq!(us.argv, argv);
        let exe = fs::read_link("/proc/self/exe")
            .unwrap()
            .into_os_string()
            .into_vec();
        assert_eq!(us.filename, Some(exe));
        // The state is the main thread's, which sleeps while test threads run.
        assert!(
            us.state.is_ascii_alphabetic() && us.state != 'Z',
            "{}",
            us.state
        );
        let self_stat = fs::read("/proc/self/stat").unwrap();
        assert_eq!(us.start_ticks, parse_stat(&self_stat).unwrap().start_ticks);
        if let Some(root) = cg.root().map(Path::to_path_buf) {
            let own = fs::read("/proc/self/cgroup").unwrap();
            let rel = std::str::from_utf8(parse_cgroup_v2(&own).unwrap())
                .unwrap()
                .to_owned();
            let ino = std::os::unix::fs::MetadataExt::ino(
                &fs::metadata(root.join(rel.trim_start_matches('/'))).unwrap(),
            );
            assert_eq!(us.cgroup_id, ino);
        }

        let z = snap
            .procs
            .iter()
            .find(|p| p.pid == child as u32)
            .expect("the zombie is listed");
        assert_eq!(z.state, 'Z');
        assert_eq!(z.ppid, me);
        assert_eq!(z.argv, Vec::<Vec<u8>>::new());
        assert_eq!(z.filename, None);

        // pid 1 is always there.
        assert!(snap.procs.iter().any(|p| p.pid == 1));
    }

    #[test]
    fn machine_facts() {
        let id = boot_id().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4, "{id}");
        assert!(!hostname().unwrap().is_empty());
    }
}
