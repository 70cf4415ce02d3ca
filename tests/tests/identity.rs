//! Kernel tests of `unit`, `container_id` and `pod_uid` (docs/events.md): the
//! workload moves itself into a real cgroup v2 made in the shape systemd, or a
//! container runtime under Kubernetes, would make, and forks there; the records
//! of its child name that unit, container and pod.
//!
//! Needs root and a built tracer, like tests/tests/kernel.rs.

use std::path::PathBuf;

use tracer_tests::{STEP_DEADLINE, ensure_eq, poll_until, run_traced};

/// The cgroup2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2"))
                .then(|| left.split(' ').nth(4).map(PathBuf::from))
                .flatten()
        })
        .expect("the identity tests need cgroup v2 mounted")
}

/// A tree of cgroup v2 directories the test made, `rel` below the mount (the
/// first component is the test's own); dropping it kills what is left in the
/// leaf and removes the tree.
struct TestCgroup {
    top: PathBuf,
    leaf: PathBuf,
}

impl TestCgroup {
    fn create(rel: &str) -> TestCgroup {
        let mount = cgroup2_mount();
        let top = mount.join(rel.split('/').next().expect("a path"));
        let leaf = mount.join(rel);
        std::fs::create_dir_all(&leaf).unwrap_or_else(|e| panic!("mkdir {}: {e}", leaf.display()));
        TestCgroup { top, leaf }
    }

    fn procs_file(&self) -> String {
        let f = self.leaf.join("cgroup.procs");
        f.to_str().expect("UTF-8").to_string()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.leaf.join("cgroup.kill"), "1");
        // rmdir fails with EBUSY until the killed tasks are released; then the
        // directories go innermost first.
        let mut dir = self.leaf.clone();
        loop {
            let gone = poll_until(STEP_DEADLINE, || std::fs::remove_dir(&dir).is_ok());
            if !gone {
                eprintln!("cannot remove the test cgroup {}", dir.display());
                return;
            }
            if dir == self.top || !dir.pop() {
                return;
            }
        }
    }
}

/// Runs the workload in a cgroup at `rel` and checks the unit, container and
/// pod its child's records carry.
fn check(rel: &str, unit: Option<&str>, container_id: Option<&str>, pod_uid: Option<&str>) {
    let cg = TestCgroup::create(rel);
    let t = run_traced(&["join-fork", &cg.procs_file()], &[]);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let records = t.records_of(child);
    ensure_eq!(
        t,
        [me, child],
        records.is_empty(),
        false,
        "records of the child"
    );
    for r in records {
        let path = format!("/{rel}");
        ensure_eq!(
            t,
            [me, child],
            r.str("cgroup"),
            Some(path.as_str()),
            "cgroup of {r}"
        );
        ensure_eq!(t, [me, child], r.str("unit"), unit, "unit of {r}");
        ensure_eq!(
            t,
            [me, child],
            r.str("container_id"),
            container_id,
            "container_id of {r}"
        );
        ensure_eq!(t, [me, child], r.str("pod_uid"), pod_uid, "pod_uid of {r}");
    }
}

/// A service under a slice, as systemd makes them.
#[test]
fn records_name_the_systemd_unit() {
    let n = std::process::id();
    let unit = format!("tracer-test-{n}.service");
    check(
        &format!("tracer-test-{n}.slice/{unit}"),
        Some(&unit),
        None,
        None,
    );
}

/// A container of a Kubernetes pod, as the kubelet (systemd driver) and
/// containerd make them: the scope is the unit, the id is whole, the pod uid has
/// its dashes back.
#[test]
fn records_name_the_container_and_pod() {
    let n = std::process::id();
    // A fresh id and uid per run, so a record of another run cannot match.
    let id = format!("{:064x}", u128::from(n) << 64 | 0xc0ffee);
    let uid = format!("{n:08x}-1b2c-4d3e-8f9a-0b1c2d3e4f5a");
    let scope = format!("cri-containerd-{id}.scope");
    let rel = format!(
        "tracer-test-{n}.slice/kubepods-besteffort-pod{}.slice/{scope}",
        uid.replace('-', "_")
    );
    check(&rel, Some(&scope), Some(&id), Some(&uid));
}
