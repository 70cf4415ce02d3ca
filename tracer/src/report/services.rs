//! Who is forking, by service: forks per systemd unit and per container, from the
//! `unit`, `container_id` and `pod_uid` the agent put in each record
//! ([`crate::identity`]).
//!
//! A fold: [`Services::add`] takes one record at a time and [`Services::finish`]
//! ranks what it counted. Memory is bounded: at most [`MAX_KEYS`] distinct units
//! and as many containers are counted by name; forks of any further ones are
//! counted in [`ByService::forks_over_cap`], so the totals still add up.
//!
//! The same unit on several hosts is one row: a service is what a fleet runs, and
//! `by_cgroup` (per host) is there for the other question.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::record::{Body, Record};

/// Distinct units (and, separately, containers) counted by name. A host runs a
/// few hundred units and containers; ten thousand leaves room for a fleet while
/// keeping the fold to about a megabyte.
pub const MAX_KEYS: usize = 10_000;

#[derive(Default)]
pub struct Services {
    /// Forks per unit; `None`: forks in a cgroup that names no unit.
    by_unit: HashMap<Option<Arc<str>>, u64>,
    by_container: HashMap<Arc<str>, ContainerCount>,
    forks: u64,
    over_cap: u64,
}

struct ContainerCount {
    forks: u64,
    /// As first seen: a container's pod and scope do not change.
    unit: Option<Arc<str>>,
    pod_uid: Option<Arc<str>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ByService {
    /// Processes forked (threads not counted), in all.
    pub forks: u64,
    /// The units with the most forks, most first; `unit: null` is the forks in
    /// cgroups that name no unit (so the rows with the rest add up to `forks`).
    pub by_unit: Vec<UnitRow>,
    /// The containers with the most forks, most first.
    pub by_container: Vec<ContainerRow>,
    /// Forks in containers, in all (the rows are the top ones).
    pub container_forks: u64,
    /// Forks of units or containers met after [`MAX_KEYS`] others: counted in
    /// `forks`, in no row.
    pub forks_over_cap: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitRow {
    pub unit: Option<String>,
    pub forks: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerRow {
    /// All 64 hex digits.
    pub container_id: String,
    pub pod_uid: Option<String>,
    pub unit: Option<String>,
    pub forks: u64,
}

impl Services {
    /// Counts a record: a `fork` of a process (not a thread) counts once under
    /// the new process's unit and container, which are its parent's at the fork.
    pub fn add(&mut self, rec: &Record) {
        if let (Body::Fork { thread: false, .. }, Some(s)) = (&rec.body, &rec.subject) {
            self.add_fork(s.unit.as_ref(), s.container_id.as_ref(), s.pod_uid.as_ref());
        }
    }

    /// One fork in that unit and container.
    pub fn add_fork(
        &mut self,
        unit: Option<&Arc<str>>,
        container_id: Option<&Arc<str>>,
        pod_uid: Option<&Arc<str>>,
    ) {
        self.forks += 1;
        let mut over = false;
        let key = unit.cloned();
        let units = self.by_unit.len();
        match self.by_unit.get_mut(&key) {
            Some(n) => *n += 1,
            None if units < MAX_KEYS => {
                self.by_unit.insert(key, 1);
            }
            None => over = true,
        }
        if let Some(id) = container_id {
            let containers = self.by_container.len();
            match self.by_container.get_mut(id) {
                Some(c) => c.forks += 1,
                None if containers < MAX_KEYS => {
                    self.by_container.insert(
                        Arc::clone(id),
                        ContainerCount {
                            forks: 1,
                            unit: unit.cloned(),
                            pod_uid: pod_uid.cloned(),
                        },
                    );
                }
                None => over = true,
            }
        }
        if over {
            self.over_cap += 1;
        }
    }

    /// The `top` units and containers with the most forks; ties by name.
    pub fn finish(self, top: usize) -> ByService {
        let mut units: Vec<(Option<Arc<str>>, u64)> = self.by_unit.into_iter().collect();
        units.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut containers: Vec<(Arc<str>, ContainerCount)> =
            self.by_container.into_iter().collect();
        let container_forks = containers.iter().map(|(_, c)| c.forks).sum::<u64>();
        containers.sort_by(|a, b| b.1.forks.cmp(&a.1.forks).then_with(|| a.0.cmp(&b.0)));
        let text = |s: Option<Arc<str>>| s.map(|s| s.to_string());
        ByService {
            forks: self.forks,
            by_unit: (units.into_iter().take(top))
                .map(|(unit, forks)| UnitRow {
                    unit: text(unit),
                    forks,
                })
                .collect(),
            by_container: (containers.into_iter().take(top))
                .map(|(id, c)| ContainerRow {
                    container_id: id.to_string(),
                    pod_uid: text(c.pod_uid),
                    unit: text(c.unit),
                    forks: c.forks,
                })
                .collect(),
            container_forks,
            forks_over_cap: self.over_cap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Comm;
    use crate::identity;
    use crate::record::{ProcId, Subject};

    const A: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const B: &str = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8";

    /// A record as the agent writes it for a process in `cgroup`.
    fn rec(cgroup: &str, body: Body) -> Record {
        let id = identity::parse(cgroup);
        Record {
            ktime_ns: 1,
            subject: Some(Subject {
                pid: 2,
                tid: 2,
                ppid: 1,
                proc_id: ProcId {
                    pid: 2,
                    start_ticks: 1,
                },
                comm: Comm::new(b"sh"),
                uid: Some(0),
                cgroup_id: 9,
                cgroup: Some(cgroup.into()),
                unit: id.unit,
                container_id: id.container_id,
                pod_uid: id.pod_uid,
            }),
            body,
            uncertain: false,
        }
    }

    fn fork(cgroup: &str) -> Record {
        rec(
            cgroup,
            Body::Fork {
                parent_proc_id: None,
                thread: false,
                clone_flags: None,
            },
        )
    }

    #[test]
    fn forks_by_unit_and_container() {
        let pod = "5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a";
        let k8s = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{B}.scope",
            pod.replace('-', "_")
        );
        let mut s = Services::default();
        for _ in 0..3 {
            s.add(&fork("/system.slice/nginx.service"));
        }
        for _ in 0..5 {
            s.add(&fork(&format!("/system.slice/docker-{A}.scope")));
        }
        s.add(&fork(&k8s));
        s.add(&fork(&format!("/docker/{A}")));
        s.add(&fork("/mygroup"));
        // Threads and other records are not forks of processes.
        s.add(&rec(
            "/system.slice/nginx.service",
            Body::Fork {
                parent_proc_id: None,
                thread: true,
                clone_flags: None,
            },
        ));
        s.add(&rec(
            "/system.slice/nginx.service",
            Body::ForkFailed { errno: 11 },
        ));
        let got = s.finish(10);
        let docker_scope = format!("docker-{A}.scope");
        let cri_scope = format!("cri-containerd-{B}.scope");
        assert_eq!(got.forks, 11);
        let units: Vec<(Option<&str>, u64)> = (got.by_unit.iter())
            .map(|r| (r.unit.as_deref(), r.forks))
            .collect();
        assert_eq!(
            units,
            [
                (Some(&*docker_scope), 5),
                (Some("nginx.service"), 3),
                (None, 2),
                (Some(&*cri_scope), 1),
            ]
        );
        assert_eq!(got.container_forks, 7);
        assert_eq!(
            got.by_container,
            [
                ContainerRow {
                    container_id: A.into(),
                    pod_uid: None,
                    unit: Some(docker_scope),
                    forks: 6,
                },
                ContainerRow {
                    container_id: B.into(),
                    pod_uid: Some(pod.into()),
                    unit: Some(cri_scope),
                    forks: 1,
                },
            ]
        );
        assert_eq!(got.forks_over_cap, 0);
    }

    #[test]
    fn top_cuts_the_rows_not_the_totals() {
        let mut s = Services::default();
        for (i, n) in [(1, 4), (2, 2), (3, 1)] {
            for _ in 0..n {
                s.add(&fork(&format!("/system.slice/s{i}.service")));
            }
        }
        let got = s.finish(2);
        assert_eq!(got.forks, 7);
        assert_eq!(got.by_unit.len(), 2);
        assert_eq!(got.by_unit[1].unit.as_deref(), Some("s2.service"));
    }

    /// Past the cap, forks are still counted in the total, and said to be
    /// in no row.
    #[test]
    fn distinct_units_are_capped() {
        let mut s = Services::default();
        for i in 0..MAX_KEYS + 3 {
            let unit: Arc<str> = Arc::from(format!("u{i}.service"));
            s.add_fork(Some(&unit), None, None);
        }
        let again: Arc<str> = Arc::from("u0.service");
        s.add_fork(Some(&again), None, None);
        let got = s.finish(1);
        assert_eq!(got.forks, MAX_KEYS as u64 + 4);
        assert_eq!(got.forks_over_cap, 3);
        assert_eq!(got.by_unit[0].unit.as_deref(), Some("u0.service"));
        assert_eq!(got.by_unit[0].forks, 2);
    }
}
