//! Who a cgroup v2 path belongs to: its systemd unit, its container, its pod.
//!
//! Pure (no I/O): the host stage ([`crate::cgroup::CgroupResolver::fill`]) parses
//! each distinct cgroup path once and caches the result with the path, and every
//! record of that cgroup carries the same shared strings.
//!
//! The path shapes are the ones the managers create (see the table test below):
//! - systemd: `/system.slice/nginx.service`, `/user.slice/user-1000.slice/session-3.scope`,
//!   `/init.scope`, and sub-cgroups a unit makes below itself (`/system.slice/x.service/worker`);
//! - runc under systemd (docker, containerd, CRI-O, podman, nerdctl):
//!   `<runtime>-<64 hex>.scope` with `docker-`, `cri-containerd-`, `crio-`, `libpod-`,
//!   `libpod-payload-` or `nerdctl-` (podman's cgroupfs driver drops the `.scope`);
//! - the cgroupfs driver: `/docker/<64 hex>`, `/kubepods/<qos>/pod<uid>/<64 hex>`, and
//!   containerd's systemd-form `kubepods-<qos>-pod<uid>.slice:cri-containerd:<64 hex>`
//!   as one directory name where no systemd made it;
//! - Kubernetes with the systemd driver:
//!   `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice/<scope>`.
//!
//! Rules (docs/events.md says the same to users):
//! - `unit` is the innermost `.service` or `.scope` on the path: the unit systemd
//!   starts and stops, so a container under docker is its `docker-<id>.scope`, a
//!   login shell its `session-3.scope`, a sub-cgroup a service made belongs to
//!   the service. Slices are not units that processes run in, so a path with only
//!   slices (or none, like the cgroupfs driver's) has no unit.
//! - `container_id` is the innermost container on the path, all 64 hex digits,
//!   never shortened. An id that is not exactly 64 hex digits is not an id (so
//!   `docker-thing.scope` is a unit, not a container). CRI-O's monitor,
//!   `crio-conmon-<id>.scope`, runs outside the container: no container id.
//! - `pod_uid` is the Kubernetes pod the path is under (only below a `kubepods`
//!   cgroup), with dashes: the systemd driver writes its dashes as `_`.

use std::sync::Arc;

/// What a cgroup path says about who runs in it; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub unit: Option<Arc<str>>,
    pub container_id: Option<Arc<str>>,
    pub pod_uid: Option<Arc<str>>,
}

/// Length of a container id as runc and every runtime above it make it.
const ID_LEN: usize = 64;

/// `<prefix><id>[.scope]` cgroups of runc containers, by runtime.
const SCOPE_PREFIXES: [&str; 6] = [
    "docker-",
    "cri-containerd-",
    "crio-",
    // podman with `--cgroups=split` (Falco's `libpod-payload-` case); before `libpod-`,
    // which does not match it anyway (`payload-…` is not hex).
    "libpod-payload-",
    "libpod-",
    "nerdctl-",
];

/// Parses a cgroup v2 path (relative to the mount, as /proc/PID/cgroup shows it).
pub fn parse(path: &str) -> Identity {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let unit = parts
        .iter()
        .rev()
        .find(|p| is_unit(p))
        .map(|p| Arc::from(*p));
    let under_kubepods = |i: usize| parts[..i].iter().any(|p| p.starts_with("kubepods"));
    let pod_uid = parts
        .iter()
        .enumerate()
        .rev()
        .filter(|&(i, _)| under_kubepods(i) || parts[i].starts_with("kubepods-"))
        .find_map(|(_, p)| pod_uid(p))
        .map(|u| Arc::from(u.as_str()));
    let container_id = (0..parts.len())
        .rev()
        .find_map(|i| container_id(parts[i], i.checked_sub(1).map(|j| parts[j])))
        .map(Arc::from);
    Identity {
        unit,
        container_id,
        pod_uid,
    }
}

/// A systemd unit a process can run in: a service or a scope with a name.
fn is_unit(part: &str) -> bool {
    [".service", ".scope"]
        .iter()
        .any(|s| part.len() > s.len() && part.ends_with(s))
}

fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id if this path component is a container's cgroup (`parent` is
/// the component above it).
fn container_id<'a>(part: &'a str, parent: Option<&str>) -> Option<&'a str> {
    let stem = part.strip_suffix(".scope").unwrap_or(part);
    for prefix in SCOPE_PREFIXES {
        if let Some(id) = stem.strip_prefix(prefix)
            && is_id(id)
        {
            return Some(id);
        }
    }
    // containerd's cgroupsPath in systemd form, made into a directory name where
    // no systemd placed it (kind, some k3s): `<pod slice>:cri-containerd:<id>`.
    if let Some((front, id)) = part.rsplit_once(':')
        && let Some((_, runtime)) = front.rsplit_once(':')
        && ["cri-containerd", "crio", "docker"].contains(&runtime)
        && is_id(id)
    {
        return Some(id);
    }
    // The cgroupfs drivers name the cgroup by the bare id, under `/docker` or a pod.
    let parent = parent?;
    (is_id(part) && (parent == "docker" || pod_uid(parent).is_some())).then_some(part)
}

/// The pod uid of `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid>.slice` (systemd,
/// with the uid's dashes written as `_`), with dashes.
fn pod_uid(part: &str) -> Option<String> {
    // `kubepods-…-pod<uid>.slice:cri-containerd:<id>`: the pod is the first part.
    let part = part.split(':').next().unwrap_or(part);
    let uid = match part.strip_prefix("pod") {
        Some(uid) => uid,
        None => {
            let stem = part.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
            let at = stem.rfind("pod")?;
            // `kubepods-pod<uid>` (guaranteed QoS) or `kubepods-<qos>-pod<uid>`.
            if at != 0 && !stem[..at].ends_with('-') {
                return None;
            }
            &stem[at + 3..]
        }
    };
    let uid = uid.replace('_', "-");
    is_pod_uid(&uid).then_some(uid)
}

/// A UUID (`8-4-4-4-12` hex) as the API server makes them, or 32 hex digits: the
/// kubelet names a static pod by a hash of its manifest.
fn is_pod_uid(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |c: &u8| c.is_ascii_hexdigit();
    match b.len() {
        32 => b.iter().all(hex),
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => hex(c),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const ID2: &str = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8";
    const UID: &str = "5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a";
    const UID_: &str = "5c2e1f0a_1b2c_4d3e_8f9a_0b1c2d3e4f5a";

    fn want(unit: Option<&str>, container: Option<&str>, pod: Option<&str>) -> Identity {
        Identity {
            unit: unit.map(Arc::from),
            container_id: container.map(Arc::from),
            pod_uid: pod.map(Arc::from),
        }
    }

    type Case<'a> = (String, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    /// (path, unit, container_id, pod_uid), from the shapes the managers make
    /// (systemd, docker, containerd, CRI-O, kubelet, podman, nerdctl; Falco's
    /// container plugin test/matchers.cpp has the runtime ones).
    #[test]
    fn real_path_shapes() {
        let docker_scope = format!("docker-{ID}.scope");
        let cri_scope = format!("cri-containerd-{ID}.scope");
        let crio_scope = format!("crio-{ID}.scope");
        let libpod_scope = format!("libpod-{ID}.scope");
        let nerdctl_scope = format!("nerdctl-{ID}.scope");
        let conmon_scope = format!("crio-conmon-{ID}.scope");
        let short_scope = format!("docker-{}.scope", &ID[..12]);
        let cases: Vec<Case> = vec![
            // systemd alone
            ("/".into(), None, None, None),
            ("".into(), None, None, None),
            ("/init.scope".into(), Some("init.scope"), None, None),
            (
                "/system.slice/nginx.service".into(),
                Some("nginx.service"),
                None,
                None,
            ),
            (
                "/system.slice/x.service/worker".into(),
                Some("x.service"),
                None,
                None,
            ),
            (
                "/system.slice/system-getty.slice/getty@tty1.service".into(),
                Some("getty@tty1.service"),
                None,
                None,
            ),
            (
                "/user.slice/user-1000.slice/session-3.scope".into(),
                Some("session-3.scope"),
                None,
                None,
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/init.scope".into(),
                Some("init.scope"),
                None,
                None,
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-terminal.scope"
                    .into(),
                Some("app-gnome-terminal.scope"),
                None,
                None,
            ),
            ("/user.slice/user-1000.slice".into(), None, None, None),
            ("/system.slice".into(), None, None, None),
            ("/mygroup/sub".into(), None, None, None),
            ("/.service".into(), None, None, None),
            // docker
            (
                format!("/system.slice/{docker_scope}"),
                Some(&docker_scope),
                Some(ID),
                None,
            ),
            (
                format!("/docker.slice/{docker_scope}"),
                Some(&docker_scope),
                Some(ID),
                None,
            ),
            (format!("/docker/{ID}"), None, Some(ID), None),
            // docker in docker: the innermost container is where the process runs.
            (format!("/docker/{ID2}/docker/{ID}"), None, Some(ID), None),
            // a container with its own cgroup namespace makes cgroups below its scope
            (
                format!("/system.slice/{docker_scope}/init"),
                Some(&docker_scope),
                Some(ID),
                None,
            ),
            // containerd, nerdctl
            (
                format!("/system.slice/{cri_scope}"),
                Some(&cri_scope),
                Some(ID),
                None,
            ),
            (
                format!("/system.slice/{nerdctl_scope}"),
                Some(&nerdctl_scope),
                Some(ID),
                None,
            ),
            // Kubernetes, systemd driver: burstable, besteffort, guaranteed
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/{cri_scope}"
                ),
                Some(&cri_scope),
                Some(ID),
                Some(UID),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/{crio_scope}"
                ),
                Some(&crio_scope),
                Some(ID),
                Some(UID),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/{cri_scope}"),
                Some(&cri_scope),
                Some(ID),
                Some(UID),
            ),
            // the pod's own cgroup: a pod, no container
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
                ),
                None,
                None,
                Some(UID),
            ),
            // CRI-O's monitor runs beside the container, not in it
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope"
                ),
                Some(&conmon_scope),
                None,
                Some(UID),
            ),
            // containerd's systemd-form cgroupsPath as one directory
            (
                format!(
                    "/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{ID}"
                ),
                Some("containerd.service"),
                Some(ID),
                Some(UID),
            ),
            // Kubernetes, cgroupfs driver (containerd: bare id; CRI-O: crio-<id>)
            (
                format!("/kubepods/burstable/pod{UID}/{ID}"),
                None,
                Some(ID),
                Some(UID),
            ),
            (
                format!("/kubepods/besteffort/pod{UID}/crio-{ID}"),
                None,
                Some(ID),
                Some(UID),
            ),
            (
                format!("/kubepods/pod{UID}/{ID}"),
                None,
                Some(ID),
                Some(UID),
            ),
            (
                format!("/kubepods/besteffort/pod{UID}"),
                None,
                None,
                Some(UID),
            ),
            // a static pod: its uid is a 32-hex hash
            (
                format!(
                    "/kubepods/burstable/pod{}/{ID}",
                    "bd12dd3393227d950605a2444b13c27a"
                ),
                None,
                Some(ID),
                Some("bd12dd3393227d950605a2444b13c27a"),
            ),
            // k3s/kind nest kubepods under their own cgroup
            (
                format!("/system.slice/k3s.service/kubepods/burstable/pod{UID}/{ID}"),
                Some("k3s.service"),
                Some(ID),
                Some(UID),
            ),
            // `pod…` outside kubepods is somebody's own cgroup
            (format!("/pod{UID}/{ID}"), None, Some(ID), None),
            // podman, rootful and rootless, with and without .scope, split mode
            (
                format!("/machine.slice/{libpod_scope}"),
                Some(&libpod_scope),
                Some(ID),
                None,
            ),
            (
                format!("/machine.slice/{libpod_scope}/container"),
                Some(&libpod_scope),
                Some(ID),
                None,
            ),
            (format!("/libpod_parent/libpod-{ID}"), None, Some(ID), None),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/{libpod_scope}"),
                Some(&libpod_scope),
                Some(ID),
                None,
            ),
            (
                format!(
                    "/system.slice/system-ceph-f952f5be.slice/ceph-f952f5be@mon.a.service/libpod-payload-{ID}"
                ),
                Some("ceph-f952f5be@mon.a.service"),
                Some(ID),
                None,
            ),
            // ids that are not ids: too short, too long, not hex
            (
                "/system.slice/docker-thing.scope".into(),
                Some("docker-thing.scope"),
                None,
                None,
            ),
            (
                format!("/system.slice/{short_scope}"),
                Some(&short_scope),
                None,
                None,
            ),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/libpod-{ID}{ID}"),
                Some("user@1000.service"),
                None,
                None,
            ),
            (format!("/docker/{}g", &ID[..63]), None, None, None),
            ("/docker".into(), None, None, None),
            ("/docker/notanid".into(), None, None, None),
            // a bad pod uid is no pod
            ("/kubepods/burstable/podnot-a-uid".into(), None, None, None),
            (
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice".into(),
                None,
                None,
                None,
            ),
        ];
        for (path, unit, container, pod) in cases {
            assert_eq!(parse(&path), want(unit, container, pod), "{path}");
        }
    }

    #[test]
    fn ids_are_whole() {
        let id = parse(&format!("/system.slice/docker-{ID}.scope")).container_id;
        assert_eq!(id.as_deref().map(str::len), Some(64));
    }
}
