//! What a cgroup path names, for people: the systemd unit or the container.
//!
//! Paths follow the conventions of the managers that create them:
//! - systemd: `/system.slice/nginx.service`, `/user.slice/user-1000.slice/session-3.scope`,
//!   possibly with sub-cgroups below a unit (`/system.slice/x.service/worker`);
//! - docker, podman, containerd, CRI-O with the systemd driver:
//!   `docker-<id>.scope`, `libpod-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`;
//! - the cgroupfs driver: `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`;
//! - Kubernetes with the systemd driver:
//!   `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`;
//! - LXC: `/lxc.payload.<name>`, `/lxc/<name>`.

/// `"nginx.service"`, `"docker 3f2a9c1b7d4e"`, `"pod 5c2e1f0a container 3f2a9c1b7d4e"`,
/// or `None` when the path names no unit or container (then show the path).
pub fn cgroup_label(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod = parts.iter().find_map(|p| pod_uid(p));
    // The innermost container wins: that is where the processes run.
    for (i, part) in parts.iter().enumerate().rev() {
        if let Some((runtime, id)) = container_id(part, parts.get(i.wrapping_sub(1)).copied()) {
            // Ids are shown as `docker ps` shows them: the first 12 characters.
            let short: String = id.chars().take(12).collect();
            return Some(match &pod {
                Some(uid) => format!("pod {} container {short}", &uid[..uid.len().min(8)]),
                None => format!("{runtime} {short}"),
            });
        }
    }
    if let Some(uid) = pod {
        return Some(format!("pod {}", &uid[..uid.len().min(8)]));
    }
    // The innermost systemd unit; a sub-cgroup of a service belongs to the service.
    let unit = |suffixes: &[&str]| {
        parts
            .iter()
            .rev()
            .find(|p| suffixes.iter().any(|s| p.len() > s.len() && p.ends_with(s)))
            .map(|p| p.to_string())
    };
    unit(&[".service", ".scope"]).or_else(|| unit(&[".slice"]))
}

fn is_container_id(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// (runtime, id) if this path component is a container's cgroup.
fn container_id<'a>(part: &'a str, parent: Option<&str>) -> Option<(&'static str, &'a str)> {
    const SCOPES: [(&str, &str); 5] = [
        ("docker-", "docker"),
        ("libpod-", "podman"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("containerd-", "containerd"),
    ];
    if let Some(stem) = part.strip_suffix(".scope") {
        for (prefix, runtime) in SCOPES {
            if let Some(id) = stem.strip_prefix(prefix)
                && is_container_id(id)
            {
                return Some((runtime, id));
            }
        }
    }
    if let Some(name) = part.strip_prefix("lxc.payload.")
        && !name.is_empty()
    {
        return Some(("lxc", name));
    }
    match parent {
        Some("docker") if is_container_id(part) => Some(("docker", part)),
        Some("lxc") if !part.is_empty() => Some(("lxc", part)),
        Some(p) if pod_uid(p).is_some() && is_container_id(part) => Some(("container", part)),
        _ => None,
    }
}

/// The pod uid in `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice` (systemd,
/// where the uid's dashes are underscores).
fn pod_uid(part: &str) -> Option<String> {
    let uid = if let Some(rest) = part.strip_prefix("pod") {
        rest
    } else {
        let stem = part.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
        let at = stem.find("pod")?;
        &stem[at + 3..]
    };
    let uid = uid.replace('_', "-");
    let ok = uid.len() >= 8 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    #[test]
    fn systemd_units() {
        let cases = [
            ("/system.slice/nginx.service", "nginx.service"),
            ("/system.slice/x.service/worker", "x.service"),
            (
                "/user.slice/user-1000.slice/session-3.scope",
                "session-3.scope",
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-terminal.scope",
                "app-gnome-terminal.scope",
            ),
            ("/user.slice/user-1000.slice", "user-1000.slice"),
            ("/init.scope", "init.scope"),
        ];
        for (path, want) in cases {
            assert_eq!(cgroup_label(path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn containers() {
        let cases = [
            (
                format!("/system.slice/docker-{ID}.scope"),
                "docker 3f2a9c1b7d4e",
            ),
            (format!("/docker/{ID}"), "docker 3f2a9c1b7d4e"),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman 3f2a9c1b7d4e",
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5c2e1f0a_1b2c_4d3e_8f9a_0b1c2d3e4f5a.slice/cri-containerd-{ID}.scope"
                ),
                "pod 5c2e1f0a container 3f2a9c1b7d4e",
            ),
            (
                format!("/kubepods/burstable/pod5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a/{ID}"),
                "pod 5c2e1f0a container 3f2a9c1b7d4e",
            ),
            (
                "/kubepods/besteffort/pod5c2e1f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a".to_string(),
                "pod 5c2e1f0a",
            ),
            ("/lxc.payload.web".to_string(), "lxc web"),
            ("/lxc/db".to_string(), "lxc db"),
        ];
        for (path, want) in cases {
            assert_eq!(cgroup_label(&path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn paths_that_name_nothing() {
        for path in [
            "/",
            "",
            "/mygroup/sub",
            "/docker",
            "/docker/notanid",
            "/.service",
        ] {
            assert_eq!(cgroup_label(path), None, "{path}");
        }
        // A scope that looks like a container but whose id is not hex is a plain unit.
        assert_eq!(
            cgroup_label("/system.slice/docker-thing.scope").as_deref(),
            Some("docker-thing.scope")
        );
    }
}
