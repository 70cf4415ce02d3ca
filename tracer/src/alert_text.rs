//! The words of an alert record: the one-line message every writer prints for
//! it, and cgroup paths as people name them. Beside the record types, below
//! both `alerts` (which fills in [`Alert::what`]) and `output` (which prints the
//! message), so that neither imports the other.

use crate::record::{Alert, Subject};

/// The whole one-line message of an alert: kind, culprit (pid, comm,
/// executable), its cgroup when known, then [`Alert::what`]. Bytes, since comm and
/// file names need not be UTF-8; the writers escape them.
pub fn message(alert: &Alert, subject: Option<&Subject>, cgroup_path: Option<&str>) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(alert.kind.title().as_bytes());
    if alert.end {
        m.extend_from_slice(b" over");
    }
    m.push(b':');
    if let Some(s) = subject {
        m.extend_from_slice(format!(" {} ", s.pid).as_bytes());
        m.extend_from_slice(s.comm.as_bytes());
    }
    if let Some(f) = &alert.filename {
        m.extend_from_slice(b" (");
        m.extend_from_slice(f);
        m.push(b')');
    }
    if let Some(cg) = cgroup_path {
        m.extend_from_slice(b" in ");
        m.extend_from_slice(cgroup_label(cg).as_bytes());
    }
    if !alert.what.is_empty() {
        m.push(b' ');
        m.extend_from_slice(alert.what.as_bytes());
    }
    m
}

/// A cgroup as people name it: the systemd unit (`nginx.service`) or the
/// container (`container 3f2a1b4c5d6e`) when the path names one, else the path.
pub fn cgroup_label(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    let is_id = |s: &str| s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    // docker/podman/containerd/cri-o under systemd: `<runtime>-<id>.scope`.
    if let Some(stem) = last.strip_suffix(".scope") {
        let id = stem.rsplit('-').next().unwrap_or(stem);
        if is_id(id) {
            return format!("container {}", &id[..12]);
        }
    }
    // The cgroupfs drivers: `/docker/<id>`, `/kubepods/.../<id>`.
    if is_id(last) {
        return format!("container {}", &last[..12]);
    }
    if last.ends_with(".service") {
        return last.to_string();
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(cgroup_label("/system.slice/nginx.service"), "nginx.service");
        assert_eq!(
            cgroup_label(
                "/system.slice/docker-3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708.scope"
            ),
            "container 3f2a1b4c5d6e"
        );
        assert_eq!(
            cgroup_label(
                "/kubepods/burstable/pod1/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ),
            "container 0123456789ab"
        );
        assert_eq!(
            cgroup_label("/user.slice/user-1000.slice/session-3.scope"),
            "/user.slice/user-1000.slice/session-3.scope"
        );
        assert_eq!(cgroup_label("/"), "/");
    }
}
