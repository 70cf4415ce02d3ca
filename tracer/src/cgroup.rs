//! cgroup v2 ids to paths.
//!
//! The eBPF programs record bpf_get_current_cgroup_id() (kernel/bpf/helpers.c),
//! which is `cgroup_id(cgrp)` = `cgrp->kn->id`, the kernfs node id of the cgroup's
//! directory. kernfs gives that directory the inode number `kernfs_ino(kn)`, which
//! is the same id on 64-bit (include/linux/kernfs.h; fs/kernfs/inode.c,
//! kernfs_init_inode), and reports it as `d_ino` in readdir (fs/kernfs/dir.c,
//! kernfs_fop_readdir). So walking the cgroup2 mount and noting each directory's
//! inode number gives us the id → path map without any extra syscalls per entry.
//!
//! Ids are never reused (a 64-bit counter), so entries stay valid after a cgroup
//! is removed; we keep them, which lets a process that dies in a short-lived
//! container still be named.

// Looked up for every record written.
use foldhash::{HashMap, HashMapExt};
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::identity::{self, Identity};
use crate::record::Record;

/// How often at most a lookup miss may walk the hierarchy again.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(1);

pub struct CgroupResolver {
    /// Where cgroup2 is mounted; `None` when it is not (then every lookup is `None`).
    root: Option<PathBuf>,
    /// id → path relative to the mount, starting with `/` (the root is `/`), the
    /// form /proc/PID/cgroup uses. Shared with the records that carry it.
    by_id: HashMap<u64, Arc<str>>,
    /// Ids a scan did not find → number of scans done when that first happened.
    /// An id still missing after one more scan is given up on for good.
    misses: HashMap<u64, u64>,
    /// Scans completed.
    scans: u64,
    last_scan: Option<Instant>,
    rescan_interval: Duration,
    /// Directories we could not read for reasons other than their removal.
    scan_errors: u64,
    /// What each cgroup's path names, parsed on the first record of that cgroup.
    /// As `by_id`, kept for the run: ids are not reused, and there are few.
    identities: HashMap<u64, Identity>,
}

impl Default for CgroupResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl CgroupResolver {
    /// Finds the cgroup2 mount in /proc/self/mountinfo. Nothing is scanned until
    /// the first lookup.
    pub fn new() -> Self {
        let root = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|text| cgroup2_mount_point(&text));
        Self::with_root(root)
    }

    /// A resolver for the hierarchy mounted at `root` (`None`: no cgroup2).
    pub fn with_root(root: Option<PathBuf>) -> Self {
        CgroupResolver {
            root,
            by_id: HashMap::new(),
            misses: HashMap::new(),
            scans: 0,
            last_scan: None,
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            scan_errors: 0,
            identities: HashMap::new(),
        }
    }

    /// A resolver that knows no cgroups (no cgroup2, or for tests).
    pub fn unavailable() -> Self {
        Self::with_root(None)
    }

    /// The cgroup2 mount point, if there is one.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub fn set_rescan_interval(&mut self, interval: Duration) {
        self.rescan_interval = interval;
    }

    /// Directories that could not be read during scans (other than ones removed
    /// while we walked): a sign the paths we report are incomplete.
    pub fn scan_errors(&self) -> u64 {
        self.scan_errors
    }

    /// The path of cgroup `id` relative to the cgroup2 mount, like
    /// `/system.slice/ssh.service`; `None` for 0 (unknown) and for ids not found.
    ///
    /// Names that are not UTF-8 are shown with U+FFFD in their place (systemd and
    /// container runtimes only make ASCII names).
    pub fn path(&mut self, id: u64) -> Option<&str> {
        if id == 0 || self.root.is_none() {
            return None;
        }
        if !self.by_id.contains_key(&id) {
            self.on_miss(id);
        }
        self.by_id.get(&id).map(|p| &**p)
    }

    /// [`Self::path`], shared: what a record carries (no allocation per record).
    pub fn shared_path(&mut self, id: u64) -> Option<Arc<str>> {
        if id == 0 || self.root.is_none() {
            return None;
        }
        if !self.by_id.contains_key(&id) {
            self.on_miss(id);
        }
        self.by_id.get(&id).cloned()
    }

    /// The host stage's part of a record: its subject's cgroup path, from its id,
    /// and the unit, container and pod that path names, so every sink shows the
    /// same values without resolving them again.
    pub fn fill(&mut self, rec: &mut Record) {
        let Some(s) = rec.subject.as_mut() else {
            return;
        };
        if s.cgroup.is_none() {
            s.cgroup = self.shared_path(s.cgroup_id);
        }
        if let Some(path) = &s.cgroup
            && s.cgroup_id != 0
            && s.unit.is_none()
            && s.container_id.is_none()
            && s.pod_uid.is_none()
        {
            // Parsed once per cgroup; every record of it shares the strings.
            let ident = self
                .identities
                .entry(s.cgroup_id)
                .or_insert_with(|| identity::parse(path));
            s.unit.clone_from(&ident.unit);
            s.container_id.clone_from(&ident.container_id);
            s.pod_uid.clone_from(&ident.pod_uid);
        }
    }

    /// The id of the cgroup at `rel` (relative to the mount, with or without the
    /// leading `/`), by stat; remembered for [`Self::path`].
    pub fn id_of_path(&mut self, rel: &str) -> Option<u64> {
        let root = self.root.as_ref()?;
        let trimmed = rel.trim_matches('/');
        let full = if trimmed.is_empty() {
            root.clone()
        } else {
            root.join(trimmed)
        };
        let meta = fs::metadata(&full).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let id = meta.ino();
        self.by_id
            .entry(id)
            .or_insert_with(|| Arc::from(format!("/{trimmed}")));
        Some(id)
    }

    fn on_miss(&mut self, id: u64) {
        if let Some(&scans_then) = self.misses.get(&id)
            && self.scans > scans_then
        {
            // A later scan did not find it either: it came and went between scans.
            return;
        }
        let due = self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.rescan_interval);
        if due {
            self.scan();
        }
        if !self.by_id.contains_key(&id) {
            self.misses.entry(id).or_insert(self.scans);
        }
    }

    /// Walks the whole hierarchy and adds every directory to the map.
    fn scan(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        self.last_scan = Some(Instant::now());
        self.scans += 1;
        match fs::metadata(&root) {
            Ok(meta) => {
                self.by_id.insert(meta.ino(), Arc::from("/"));
            }
            Err(_) => {
                self.scan_errors += 1;
                return;
            }
        }
        let mut stack: Vec<(PathBuf, String)> = vec![(root, String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Removed while we walked: normal for short-lived cgroups.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => {
                    self.scan_errors += 1;
                    continue;
                }
            };
            for entry in entries {
                let Ok(entry) = entry else {
                    self.scan_errors += 1;
                    continue;
                };
                // d_type from readdir; cgroupfs fills it in, so no stat is needed.
                let Ok(ft) = entry.file_type() else { continue };
                if !ft.is_dir() {
                    continue;
                }
                let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
                self.by_id
                    .insert(entry.ino(), Arc::from(child_rel.as_str()));
                stack.push((entry.path(), child_rel));
            }
        }
        let by_id = &self.by_id;
        self.misses.retain(|id, _| !by_id.contains_key(id));
    }
}

/// The mount point of the cgroup2 hierarchy in /proc/self/mountinfo text,
/// preferring a mount of the hierarchy's root (field 4 = `/`) if there are several.
pub fn cgroup2_mount_point(mountinfo: &str) -> Option<PathBuf> {
    let mut fallback = None;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split(' ').next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        let (Some(root), Some(mount_point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let path = PathBuf::from(unescape_mountinfo(mount_point));
        if *root == "/" {
            return Some(path);
        }
        fallback.get_or_insert(path);
    }
    fallback
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal
/// (fs/proc_namespace.c, show_mountinfo → seq_path_root with " \t\n\\").
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The cgroup2 mount of this machine, or `None` after saying why the caller skips.
    pub(crate) fn cgroup2_root_or_skip() -> Option<PathBuf> {
        let root = CgroupResolver::new().root().map(Path::to_path_buf);
        if root.is_none() {
            eprintln!("skipped: cgroup2 is not mounted (no cgroup2 line in /proc/self/mountinfo)");
        }
        root
    }

    /// The test process's own cgroup v2 path, from the `0::` line of /proc/self/cgroup.
    /// This process's cgroup v2 path and id (its directory's inode), or `None`
    /// after saying why the test is skipped.
    fn own_cgroup_and_id_or_skip() -> Option<(String, u64)> {
        let root = cgroup2_root_or_skip()?;
        let Some(own) = own_cgroup() else {
            eprintln!("skipped: /proc/self/cgroup has no 0:: line");
            return None;
        };
        let ino = fs::metadata(root.join(own.trim_start_matches('/')))
            .unwrap()
            .ino();
        Some((own, ino))
    }

    fn own_cgroup() -> Option<String> {
        let text = fs::read_to_string("/proc/self/cgroup").ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_owned)
    }

    #[test]
    fn parses_mountinfo() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        assert_eq!(
            cgroup2_mount_point(text),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let nested = "\
50 1 0:40 /kubepods /mnt/sub rw - cgroup2 cgroup2 rw
51 1 0:40 / /mnt/with\\040space rw shared:1 master:2 - cgroup2 cgroup2 rw,nsdelegate
";
        assert_eq!(
            cgroup2_mount_point(nested),
            Some(PathBuf::from("/mnt/with space"))
        );
        let only_sub = "50 1 0:40 /kubepods /mnt/sub rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_point(only_sub),
            Some(PathBuf::from("/mnt/sub"))
        );
        assert_eq!(
            cgroup2_mount_point("31 23 0:28 / /x rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    /// The host stage puts the path in the record, one shared copy per cgroup.
    #[test]
    fn fill_puts_the_shared_path_in_the_record() {
        let Some((own, ino)) = own_cgroup_and_id_or_skip() else {
            return;
        };
        let record = |cgroup_id| Record {
            ktime_ns: 1,
            subject: Some(crate::record::Subject {
                pid: 1,
                tid: 1,
                ppid: 0,
                proc_id: crate::record::ProcId {
                    pid: 1,
                    start_ticks: 1,
                },
                comm: crate::event::Comm::new(b"init"),
                uid: Some(0),
                cgroup_id,
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            }),
            body: crate::record::Body::ForkFailed { errno: 11 },
            uncertain: false,
        };
        let mut r = CgroupResolver::new();
        let (mut a, mut b, mut unknown) = (record(ino), record(ino), record(0));
        r.fill(&mut a);
        r.fill(&mut b);
        r.fill(&mut unknown);
        let path = |rec: &Record| rec.subject.as_ref().unwrap().cgroup.clone();
        assert_eq!(path(&a).as_deref(), Some(own.as_str()));
        assert!(Arc::ptr_eq(&path(&a).unwrap(), &path(&b).unwrap()));
        assert_eq!(path(&unknown), None, "id 0 is unknown");
    }

    #[test]
    fn own_cgroup_resolves_both_ways() {
        let Some((own, ino)) = own_cgroup_and_id_or_skip() else {
            return;
        };

        // Lookup by id walks the hierarchy.
        let mut r = CgroupResolver::new();
        assert_eq!(r.path(ino), Some(own.as_str()));
        // And by path, on a fresh resolver.
        let mut r2 = CgroupResolver::new();
        assert_eq!(r2.id_of_path(&own), Some(ino));
        assert_eq!(r2.path(ino), Some(own.as_str()));
        assert_eq!(r.path(0), None);
        assert_eq!(r.scan_errors(), 0);
    }

    #[test]
    fn new_real_cgroup_is_found_on_rescan() {
        let Some(root) = cgroup2_root_or_skip() else {
            return;
        };
        let name = format!("tracer-test-{}", std::process::id());
        let dir = root.join(&name);
        let mut r = CgroupResolver::new();
        r.path(u64::MAX); // first scan
        if let Err(e) = fs::create_dir(&dir) {
            eprintln!("skipped: cannot create {}: {e}", dir.display());
            return;
        }
        let ino = fs::metadata(&dir).map(|m| m.ino());
        r.set_rescan_interval(Duration::ZERO);
        let got = ino
            .as_ref()
            .ok()
            .and_then(|&i| r.path(i).map(str::to_owned));
        let _ = fs::remove_dir(&dir);
        assert_eq!(got, Some(format!("/{name}")));
    }

    /// A fake hierarchy in a temporary directory: the resolver works on any tree.
    struct TempTree(PathBuf);
    impl TempTree {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("tracer-cg-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("system.slice/ssh.service")).unwrap();
            fs::create_dir_all(p.join("user.slice")).unwrap();
            fs::write(p.join("cgroup.procs"), "").unwrap();
            TempTree(p)
        }
        fn ino(&self, rel: &str) -> u64 {
            fs::metadata(self.0.join(rel)).unwrap().ino()
        }
    }
    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The host stage names the unit, container and pod of a record's cgroup,
    /// parsed once per cgroup and shared by all its records.
    #[test]
    fn fill_names_unit_and_container_once_per_cgroup() {
        const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
        let t = TempTree::new("ident");
        let docker = format!("system.slice/docker-{ID}.scope");
        fs::create_dir_all(t.0.join(&docker)).unwrap();
        let record = |cgroup_id| Record {
            ktime_ns: 1,
            subject: Some(crate::record::Subject {
                pid: 1,
                tid: 1,
                ppid: 0,
                proc_id: crate::record::ProcId {
                    pid: 1,
                    start_ticks: 1,
                },
                comm: crate::event::Comm::new(b"init"),
                uid: Some(0),
                cgroup_id,
                cgroup: None,
                unit: None,
                container_id: None,
                pod_uid: None,
            }),
            body: crate::record::Body::ForkFailed { errno: 11 },
            uncertain: false,
        };
        let mut r = CgroupResolver::with_root(Some(t.0.clone()));
        let mut filled = |id| {
            let mut rec = record(id);
            r.fill(&mut rec);
            rec.subject.unwrap()
        };
        let (a, b) = (
            filled(t.ino("system.slice/ssh.service")),
            filled(t.ino("system.slice/ssh.service")),
        );
        assert_eq!(a.unit.as_deref(), Some("ssh.service"));
        assert_eq!((a.container_id, a.pod_uid), (None, None));
        assert!(Arc::ptr_eq(&a.unit.unwrap(), &b.unit.unwrap()));
        let c = filled(t.ino(&docker));
        assert_eq!(c.unit.as_deref(), Some(&*format!("docker-{ID}.scope")));
        assert_eq!(c.container_id.as_deref(), Some(ID));
        let root = filled(t.ino(""));
        assert_eq!(root.cgroup.as_deref(), Some("/"));
        assert_eq!((root.unit, root.container_id), (None, None));
        assert_eq!(r.identities.len(), 3, "one parse per cgroup");
    }

    #[test]
    fn walks_a_tree() {
        let t = TempTree::new("walk");
        let mut r = CgroupResolver::with_root(Some(t.0.clone()));
        assert_eq!(r.path(t.ino("")), Some("/"));
        assert_eq!(
            r.path(t.ino("system.slice/ssh.service")),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(r.path(t.ino("user.slice")), Some("/user.slice"));
        // Files are not cgroups.
        assert_eq!(r.path(t.ino("cgroup.procs")), None);
        assert_eq!(r.id_of_path("/user.slice/"), Some(t.ino("user.slice")));
        assert_eq!(r.id_of_path("cgroup.procs"), None);
        assert_eq!(r.id_of_path("/nope"), None);
        assert_eq!(r.scans, 1);
    }

    #[test]
    fn rescans_are_rate_limited_and_misses_remembered() {
        let t = TempTree::new("rescan");
        let mut r = CgroupResolver::with_root(Some(t.0.clone()));
        r.set_rescan_interval(Duration::from_secs(3600));
        assert_eq!(r.path(t.ino("user.slice")), Some("/user.slice"));
        assert_eq!(r.scans, 1);

        // A cgroup created after the scan: not due for a rescan yet.
        fs::create_dir(t.0.join("user.slice/new")).unwrap();
        let new = t.ino("user.slice/new");
        assert_eq!(r.path(new), None);
        assert_eq!(r.scans, 1);

        // Once a rescan is allowed, the miss gets its second chance.
        r.set_rescan_interval(Duration::ZERO);
        assert_eq!(r.path(new), Some("/user.slice/new"));
        assert_eq!(r.scans, 2);

        // An id that is nowhere: one more scan, then it is given up on.
        let ghost = u64::MAX - 7;
        assert_eq!(r.path(ghost), None);
        assert_eq!(r.scans, 3);
        assert_eq!(r.path(ghost), None);
        assert_eq!(r.scans, 4);
        assert_eq!(r.path(ghost), None);
        assert_eq!(r.scans, 4);

        // Removed cgroups keep their names (ids are never reused).
        fs::remove_dir(t.0.join("user.slice/new")).unwrap();
        assert_eq!(r.path(new), Some("/user.slice/new"));
    }

    #[test]
    fn no_cgroup2() {
        let mut r = CgroupResolver::unavailable();
        assert_eq!(r.path(1), None);
        assert_eq!(r.id_of_path("/"), None);
    }
}
