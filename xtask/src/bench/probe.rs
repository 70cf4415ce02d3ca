//! What the bench reads about a running tracer or peer: CPU time and peak RSS from
//! /proc, the run counts and run times of its BPF programs (fdinfo of its program fds),
//! and the switch that makes the kernel count those (`BPF_ENABLE_STATS`).

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

/// `utime + stime` of a process (all its threads), in clock ticks: fields 14 and 15 of
/// /proc/PID/stat (fs/proc/array.c do_task_stat).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&text).ok_or_else(|| anyhow!("{path}: unexpected format: {text:?}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (USER_HZ), the unit of [`cpu_ticks`].
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Peak resident set size (`VmHWM`, KiB) from /proc/PID/status.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, "VmHWM:").ok_or_else(|| anyhow!("{path} has no VmHWM line"))
}

/// Voluntary context switches of all threads of a process (/proc/PID/task/*/status):
/// how often it went to sleep, so for an event consumer about how often it was woken.
pub fn voluntary_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|text| parse_status_kib(&text, "voluntary_ctxt_switches:"))
        .sum()
}

/// Other processes holding BPF programs (`pid comm`), besides `except`: tracers of
/// other users fire on the storm too and make every condition slower.
pub fn other_bpf_holders(except: &[u32]) -> Vec<String> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || except.contains(&pid) {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-prog")
        });
        let comm = fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        // systemd keeps cgroup device and firewall programs, which storms never run.
        if holds && !comm.starts_with("systemd") {
            out.push(format!("{pid} {comm}"));
        }
    }
    out
}

/// Current resident set size (`VmRSS`, KiB) from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, "VmRSS:").ok_or_else(|| anyhow!("{path} has no VmRSS line"))
}

/// Resident KiB of the process's mappings of BPF maps (/proc/PID/smaps): the ring
/// buffer, which the kernel maps whole (data pages twice, kernel/bpf/ringbuf.c
/// ringbuf_map_mmap_kern), so it counts in RSS though it is kernel memory.
pub fn bpf_map_rss_kib(pid: u32) -> u64 {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let mut in_bpf_map = false;
    let mut total = 0;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_bpf_map = line.ends_with("anon_inode:bpf-map");
        } else if in_bpf_map && let Some(kib) = parse_status_kib(line, "Rss:") {
            total += kib;
        }
    }
    total
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A BPF program's counters as the kernel reports them in fdinfo
/// (kernel/bpf/syscall.c bpf_prog_show_fdinfo); they only grow while stats are enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgCounters {
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// A loaded BPF program as fdinfo shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgSample {
    /// The program's tag (hash of its instructions), which /proc/kallsyms names it by.
    pub tag: String,
    pub counters: ProgCounters,
}

/// The BPF programs a process holds open, by program id.
pub fn bpf_progs(pid: u32) -> BTreeMap<u32, ProgSample> {
    let mut progs = BTreeMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return progs;
    };
    for entry in dir.flatten() {
        let is_prog = fs::read_link(entry.path())
            .is_ok_and(|target| target.as_os_str() == "anon_inode:bpf-prog");
        if !is_prog {
            continue;
        }
        let info = Path::new("/proc")
            .join(pid.to_string())
            .join("fdinfo")
            .join(entry.file_name());
        if let Ok(text) = fs::read_to_string(info)
            && let Some((id, sample)) = parse_prog_fdinfo(&text)
        {
            progs.insert(id, sample);
        }
    }
    progs
}

fn parse_prog_fdinfo(text: &str) -> Option<(u32, ProgSample)> {
    let value = |key: &str| -> Option<&str> {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(str::trim)
    };
    let number = |key: &str| value(key).and_then(|v| v.parse::<u64>().ok());
    Some((
        u32::try_from(number("prog_id:")?).ok()?,
        ProgSample {
            tag: value("prog_tag:").unwrap_or("").to_string(),
            counters: ProgCounters {
                run_time_ns: number("run_time_ns:").unwrap_or(0),
                run_cnt: number("run_cnt:").unwrap_or(0),
            },
        },
    ))
}

/// Full names of the loaded BPF programs by tag, from /proc/kallsyms, where each JITed
/// program is `bpf_prog_<tag>_<name>` with the name of its function in BTF, not cut to
/// the 15 bytes of `bpf_prog_info.name` (kernel/bpf/core.c bpf_get_prog_name). Programs
/// with the same instructions share a tag, so a tag can have several names.
pub fn prog_names_by_tag() -> BTreeMap<String, Vec<String>> {
    fs::read_to_string("/proc/kallsyms")
        .map(|text| parse_kallsyms(&text))
        .unwrap_or_default()
}

fn parse_kallsyms(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let Some(sym) = line.split_whitespace().nth(2) else {
            continue;
        };
        let Some(rest) = sym.strip_prefix("bpf_prog_") else {
            continue;
        };
        if let Some((tag, name)) = rest.split_once('_')
            && tag.len() == 16
            && tag.chars().all(|c| c.is_ascii_hexdigit())
        {
            let list = names.entry(tag.to_string()).or_default();
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
        }
    }
    names
}

/// Counters at the end minus counters at the start, for the programs present at both.
pub fn prog_deltas(
    before: &BTreeMap<u32, ProgSample>,
    after: &BTreeMap<u32, ProgSample>,
) -> BTreeMap<u32, ProgCounters> {
    after
        .iter()
        .map(|(&id, a)| {
            let a = a.counters;
            let b = before.get(&id).map(|b| b.counters).unwrap_or_default();
            (
                id,
                ProgCounters {
                    run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns),
                    run_cnt: a.run_cnt.saturating_sub(b.run_cnt),
                },
            )
        })
        .collect()
}

// bpf(2) commands and the layout of the attributes used here (include/uapi/linux/bpf.h).
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_ENABLE_STATS: libc::c_long = 32;
const BPF_STATS_RUN_TIME: u32 = 0;
/// `struct bpf_prog_info`: `char name[16]` sits at byte 64 (after type, id, tag[8],
/// jited/xlated lengths, the two instruction pointers, load_time, created_by_uid,
/// nr_map_ids and map_ids); the UAPI only ever appends fields.
const PROG_INFO_NAME_OFFSET: usize = 64;
const PROG_INFO_LEN: usize = 256;

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> libc::c_long {
    // SAFETY: attr is a valid, writable buffer of the given size for the command.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) }
}

/// A program's name (at most 15 bytes, as the loader gave it), looked up by id.
pub fn prog_name(id: u32) -> Option<String> {
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this new fd to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut info = vec![0u8; PROG_INFO_LEN];
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(PROG_INFO_LEN as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) < 0 {
        return None;
    }
    let name = &info[PROG_INFO_NAME_OFFSET..PROG_INFO_NAME_OFFSET + 16];
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..len]).into_owned())
}

/// Keeps the kernel's BPF run-time statistics on while it lives.
///
/// `BPF_ENABLE_STATS` turns them on for as long as the returned fd is open, so they go
/// back to what they were however the bench ends (even SIGKILL). Where that command is
/// missing (kernels before 5.8) the `kernel.bpf_stats_enabled` sysctl is set instead and
/// restored on drop.
pub struct StatsOn {
    _fd: Option<OwnedFd>,
    restore: Option<String>,
}

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

pub fn enable_bpf_stats() -> Result<StatsOn> {
    let mut attr = [0u8; 8];
    attr[0..4].copy_from_slice(&BPF_STATS_RUN_TIME.to_ne_bytes());
    let fd = bpf(BPF_ENABLE_STATS, &mut attr);
    if fd >= 0 {
        // SAFETY: the kernel just returned this new fd to us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        return Ok(StatsOn {
            _fd: Some(fd),
            restore: None,
        });
    }
    let old = fs::read_to_string(STATS_SYSCTL)
        .with_context(|| format!("BPF_ENABLE_STATS failed and {STATS_SYSCTL} is not readable"))?;
    fs::write(STATS_SYSCTL, "1").with_context(|| format!("writing 1 to {STATS_SYSCTL}"))?;
    Ok(StatsOn {
        _fd: None,
        restore: Some(old.trim().to_string()),
    })
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        if let Some(old) = &self.restore
            && let Err(e) = fs::write(STATS_SYSCTL, old)
        {
            eprintln!("xtask: could not restore {STATS_SYSCTL} to {old}: {e}");
        }
    }
}

/// Whether process `pid` has a NETLINK_CONNECTOR socket bound to a multicast group
/// (forkstat listening for proc connector events), from /proc/net/netlink.
pub fn proc_connector_bound(pid: u32) -> bool {
    const NETLINK_CONNECTOR: &str = "11";
    let Ok(text) = fs::read_to_string("/proc/net/netlink") else {
        return false;
    };
    text.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sk Eth Pid Groups ...: the port id of a process's first socket is its pid.
        f.len() > 3
            && f[1] == NETLINK_CONNECTOR
            && f[2] == pid.to_string()
            && f[3].chars().any(|c| c != '0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_command_names() {
        let stat = "4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 150 0 0 0 17 5 0 0 20 0 1 0 \
                    900 1000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
        assert_eq!(parse_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_ok());
        assert!(peak_rss_kib(me).unwrap() > 0);
    }

    #[test]
    fn status_and_fdinfo_fields() {
        let status = "Name:\tx\nVmPeak:\t  10 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(2048));
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\nprog_type:\t26\n\
                      prog_jited:\t1\nprog_tag:\t0123456789abcdef\nmemlock:\t4096\nprog_id:\t77\n\
                      run_time_ns:\t123456\nrun_cnt:\t1000\nrecursion_misses:\t0\n";
        assert_eq!(
            parse_prog_fdinfo(fdinfo),
            Some((
                77,
                ProgSample {
                    tag: "0123456789abcdef".into(),
                    counters: ProgCounters {
                        run_time_ns: 123456,
                        run_cnt: 1000
                    }
                }
            ))
        );
        assert_eq!(parse_prog_fdinfo("pos:\t0\n"), None);
    }

    #[test]
    fn kallsyms_names_programs_by_tag() {
        let text = "ffffffffc0001000 t bpf_prog_f9e443f8f8113716_sys_exit_execve\t[bpf]
ffffffffc0002000 t bpf_prog_f9e443f8f8113716_sys_exit_execveat\t[bpf]
ffffffffc0003000 t bpf_prog_d8b648c40a49f478_sched_process_exit\t[bpf]
ffffffffc0004000 t bpf_prog_d8b648c40a49f478_sched_process_exit\t[bpf]
ffffffff81000000 T bpf_prog_free
ffffffff81000100 T _stext";
        let names = parse_kallsyms(text);
        assert_eq!(
            names["f9e443f8f8113716"],
            ["sys_exit_execve", "sys_exit_execveat"]
        );
        assert_eq!(names["d8b648c40a49f478"], ["sched_process_exit"]);
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn deltas_subtract_per_program() {
        let sample = |run_time_ns, run_cnt| ProgSample {
            tag: String::new(),
            counters: ProgCounters {
                run_time_ns,
                run_cnt,
            },
        };
        let before = BTreeMap::from([(1, sample(100, 2))]);
        let after = BTreeMap::from([(1, sample(400, 5)), (2, sample(50, 1))]);
        let d = prog_deltas(&before, &after);
        assert_eq!(d[&1].run_time_ns, 300);
        assert_eq!(d[&1].run_cnt, 3);
        assert_eq!(d[&2].run_cnt, 1);
    }
}
