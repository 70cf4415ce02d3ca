//! What the fault tests set up and measure on the host: pids-limited cgroups,
//! CPU affinity and nice values, resident memory, the BPF objects a process holds.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::child::{STEP_DEADLINE, poll_until};

/// A cgroup whose `pids.max` bounds the processes in it, in the cgroup v2
/// hierarchy if its pids controller is there, else in the v1 pids hierarchy.
/// Dropping it kills whatever is in it and removes it.
#[derive(Debug)]
pub struct PidsCgroup {
    pub dir: PathBuf,
    pub v2: bool,
    removed: bool,
}

/// Mount points of the cgroup v2 hierarchy and of the v1 hierarchy holding the
/// pids controller, from /proc/self/mountinfo.
fn cgroup_mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mut v2, mut v1) = (None, None);
    for line in info.lines() {
        // `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS... - FSTYPE SOURCE SUPER_OPTIONS`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let fstype = right.next();
        let super_opts = right.nth(1).unwrap_or("");
        match fstype {
            Some("cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(point)),
            Some("cgroup") if v1.is_none() && super_opts.split(',').any(|o| o == "pids") => {
                v1 = Some(PathBuf::from(point))
            }
            _ => {}
        }
    }
    (v2, v1)
}

impl PidsCgroup {
    /// Creates cgroup `name` with `pids.max` = `max`: in cgroup v2 if its pids
    /// controller is available there (enabling it for the root's children), else
    /// in the v1 pids hierarchy; None if neither is there.
    pub fn create(name: &str, max: u64) -> Result<Option<PidsCgroup>, String> {
        let (v2, v1) = cgroup_mounts();
        let v2_pids = v2.filter(|m| {
            std::fs::read_to_string(m.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        });
        let (root, is_v2) = match (v2_pids, v1) {
            (Some(m), _) => {
                std::fs::write(m.join("cgroup.subtree_control"), "+pids").map_err(|e| {
                    format!("enable pids in {}/cgroup.subtree_control: {e}", m.display())
                })?;
                (m, true)
            }
            (None, Some(m)) => (m, false),
            (None, None) => return Ok(None),
        };
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cg = PidsCgroup {
            dir,
            v2: is_v2,
            removed: false,
        };
        cg.write("pids.max", &max.to_string())?;
        Ok(Some(cg))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .map_err(|e| format!("write {value:?} to {}: {e}", path.display()))
    }

    /// The file a process writes its pid to, to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The processes in it.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many forks its `pids.max` refused (`max` in `pids.events`).
    pub fn refused_forks(&self) -> Option<u64> {
        let events = std::fs::read_to_string(self.dir.join("pids.events")).ok()?;
        events
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Kills everything in it (after stopping all forks: `pids.max` 0) and removes
    /// it, waiting up to [`STEP_DEADLINE`].
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        // No new process while the others are killed (pids.max only limits forks).
        self.write("pids.max", "0")?;
        if self.v2 {
            // Linux 5.14+; older kernels go on with the loop below.
            let _ = self.write("cgroup.kill", "1");
        }
        let emptied = poll_until(STEP_DEADLINE, || {
            let pids = self.pids();
            for &pid in &pids {
                // SAFETY: signals processes in the cgroup this test created.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            pids.is_empty()
        });
        if !emptied {
            return Err(format!(
                "{} still holds {:?} after SIGKILL",
                self.dir.display(),
                self.pids()
            ));
        }
        let mut last = None;
        // rmdir fails with EBUSY until the killed tasks are released.
        let gone = poll_until(STEP_DEADLINE, || match std::fs::remove_dir(&self.dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                last = Some(e);
                false
            }
        });
        if !gone {
            return Err(format!("rmdir {}: {last:?}", self.dir.display()));
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleaning up the test cgroup: {e}");
        }
    }
}

/// Makes `cmd` run on CPU `cpu` only and/or with nice value `nice` (set between
/// fork and exec, so the command is started that way).
pub fn schedule(cmd: &mut Command, cpu: Option<usize>, nice: Option<i32>) {
    // SAFETY: the closure only makes two syscalls (async-signal-safe) on itself.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(nice) = nice
                && libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// Sets every thread of running process `pid` to run on `cpus` with nice value
/// `nice` (both are per thread in Linux). Fails the test if the process is gone.
pub fn reschedule(pid: u32, cpus: &[usize], nice: i32) {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: the set is valid; allowed_cpus gives CPUs below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("threads of {pid}: {e}"));
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: plain syscalls on a thread of a process this test started; a
        // thread that ended meanwhile gives ESRCH, which is fine.
        unsafe {
            libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
        }
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        panic!("sched_getaffinity: {}", std::io::Error::last_os_error());
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The BPF objects a process holds open, by kernel id, from the `prog_id:`,
/// `map_id:` and `link_id:` lines of /proc/PID/fdinfo/* (kernel/bpf/syscall.c,
/// bpf_prog_show_fdinfo and friends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BpfIds {
    pub progs: BTreeSet<u32>,
    pub maps: BTreeSet<u32>,
    pub links: BTreeSet<u32>,
}

impl BpfIds {
    pub fn of(pid: u32) -> BpfIds {
        let mut ids = BpfIds::default();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return ids;
        };
        for entry in dir.flatten() {
            let Ok(info) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in info.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let Ok(id) = value.trim().parse::<u32>() else {
                    continue;
                };
                match key {
                    "prog_id" => ids.progs.insert(id),
                    "map_id" => ids.maps.insert(id),
                    "link_id" => ids.links.insert(id),
                    _ => false,
                };
            }
        }
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.maps.is_empty() && self.links.is_empty()
    }
}
