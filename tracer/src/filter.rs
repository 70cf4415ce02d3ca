//! Which processes a user asked about: `--uid`, `--comm` and `--cgroup`, the same
//! rules for `watch` (which records are written) and `report` (which processes are
//! counted). Pure: the caller hands over what it knows of a process (uid, names,
//! cgroup path); nothing is looked up here.

use regex::Regex;

/// The process filters given on the command line; an empty one keeps everything.
#[derive(Clone, Debug, Default)]
pub struct ProcFilter {
    /// Keep processes of one of these uids (empty: any).
    pub uids: Vec<u32>,
    /// Keep processes whose comm or executable file name this matches.
    pub comm: Option<Regex>,
    /// Keep processes in this cgroup or below it (a path as in `/proc/PID/cgroup`,
    /// normalised by [`parse_cgroup_prefix`]).
    pub cgroup: Option<String>,
}

impl ProcFilter {
    /// No filter given: everything passes.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.comm.is_none() && self.cgroup.is_none()
    }

    /// `--uid`: an unknown uid never matches a uid filter.
    pub fn uid_matches(&self, uid: Option<u32>) -> bool {
        self.uids.is_empty() || uid.is_some_and(|u| self.uids.contains(&u))
    }

    /// `--comm`: one of `names` (comm, executable file names; raw kernel bytes,
    /// read as UTF-8 with replacement) matches the regex.
    pub fn comm_matches<'a>(&self, names: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let Some(re) = &self.comm else {
            return true;
        };
        names
            .into_iter()
            .any(|n| re.is_match(&String::from_utf8_lossy(n)))
    }

    /// `--cgroup`: `path` is the prefix or below it, by whole path components
    /// (`/system.slice` covers `/system.slice/x.service`, not `/system.slice2`).
    /// An unknown cgroup never matches.
    pub fn cgroup_matches(&self, path: Option<&str>) -> bool {
        let Some(prefix) = &self.cgroup else {
            return true;
        };
        let Some(path) = path else {
            return false;
        };
        under(path, prefix)
    }
}

/// `path` is `prefix` or lies below it (both absolute, `prefix` without a trailing
/// `/` unless it is the root).
fn under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The last component of a path: an executable's file name.
pub fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// `--comm REGEX`: a regular expression (Rust `regex` syntax).
pub fn parse_comm_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        let why = e.to_string();
        // The regex crate's message spans lines (a caret under the error); keep its last.
        let why = why.lines().last().unwrap_or("").trim();
        format!("{s:?} is not a regular expression ({why}): e.g. '^nginx$' or 'python3?'")
    })
}

/// `--cgroup PATH`: a cgroup v2 path as `/proc/PID/cgroup` shows it
/// (`/system.slice`), relative to the cgroup2 mount; a trailing `/` is dropped.
pub fn parse_cgroup_prefix(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.starts_with("/sys/fs/cgroup") {
        return Err(format!(
            "{s:?} is a file system path: give the cgroup as /proc/PID/cgroup shows it, without the cgroup2 mount point, e.g. /system.slice/nginx.service"
        ));
    }
    if !t.starts_with('/') {
        return Err(format!(
            "{s:?} is not a cgroup path: give it from the root, as /proc/PID/cgroup shows it, e.g. /system.slice/nginx.service"
        ));
    }
    let trimmed = t.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comm(re: &str) -> ProcFilter {
        ProcFilter {
            comm: Some(parse_comm_regex(re).unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn empty_filter_keeps_all() {
        let f = ProcFilter::default();
        assert!(f.is_empty());
        assert!(f.uid_matches(None) && f.uid_matches(Some(0)));
        assert!(f.comm_matches([]) && f.cgroup_matches(None));
    }

    #[test]
    fn uids() {
        let f = ProcFilter {
            uids: vec![1000, 65534],
            ..Default::default()
        };
        assert!(!f.is_empty());
        assert!(f.uid_matches(Some(65534)) && f.uid_matches(Some(1000)));
        assert!(!f.uid_matches(Some(0)));
        assert!(!f.uid_matches(None), "an unknown uid is no match");
    }

    #[test]
    fn comm_regex_on_any_name() {
        let f = comm("^python3?$");
        assert!(f.comm_matches([&b"python3"[..]]));
        assert!(f.comm_matches([&b"myscript"[..], b"python"]));
        assert!(!f.comm_matches([&b"python3.11"[..], b"bash"]));
        assert!(!f.comm_matches([]));
        // Unanchored, as grep: a part of the name is enough.
        assert!(comm("ngin").comm_matches([&b"nginx"[..]]));
        // Bytes that are not UTF-8 do not stop the match of the rest.
        assert!(comm("^caf.x$").comm_matches([&b"caf\xe9x"[..]]));
    }

    #[test]
    fn cgroup_prefix_by_components() {
        let f = ProcFilter {
            cgroup: Some(parse_cgroup_prefix("/system.slice/").unwrap()),
            ..Default::default()
        };
        assert!(f.cgroup_matches(Some("/system.slice")));
        assert!(f.cgroup_matches(Some("/system.slice/x.service")));
        assert!(!f.cgroup_matches(Some("/system.slice2/x.service")));
        assert!(!f.cgroup_matches(Some("/user.slice")));
        assert!(!f.cgroup_matches(None));
        let root = ProcFilter {
            cgroup: Some(parse_cgroup_prefix("/").unwrap()),
            ..Default::default()
        };
        assert!(root.cgroup_matches(Some("/a/b")) && root.cgroup_matches(Some("/")));
    }

    #[test]
    fn cgroup_paths_parse() {
        assert_eq!(parse_cgroup_prefix("/a/b").unwrap(), "/a/b");
        assert_eq!(parse_cgroup_prefix("/a/b/").unwrap(), "/a/b");
        let e = parse_cgroup_prefix("/sys/fs/cgroup/a").unwrap_err();
        assert!(e.contains("without the cgroup2 mount point"), "{e}");
        assert_eq!(parse_cgroup_prefix("//").unwrap(), "/");
        let e = parse_cgroup_prefix("system.slice").unwrap_err();
        assert!(e.contains("from the root") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn bad_regex_is_one_line() {
        let e = parse_comm_regex("a(b").unwrap_err();
        assert!(e.starts_with("\"a(b\" is not a regular expression"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(b"/usr/bin/python3"), b"python3");
        assert_eq!(file_name(b"python3"), b"python3");
        assert_eq!(file_name(b"/"), b"");
    }
}
