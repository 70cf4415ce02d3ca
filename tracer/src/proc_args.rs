//! The process filter's arguments (`--uid`, `--comm`, `--cgroup`), which `watch`
//! and `report` both flatten into their own `Args`. The help text is `watch`'s;
//! `report` words it for counting (see `report::args`).

use regex::Regex;

use crate::filter::{ProcFilter, parse_cgroup_prefix, parse_comm_regex};

#[derive(Debug, Clone, clap::Args)]
pub struct ProcArgs {
    /// Only records of processes running as this user id (the real uid; repeatable).
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<u32>,
    /// Only records of processes whose comm, or the file name of the executable they
    /// run, matches REGEX (unanchored: '^nginx$' for exactly nginx).
    #[arg(long, value_name = "REGEX", value_parser = parse_comm_regex)]
    pub comm: Option<Regex>,
    /// Only records of processes in this cgroup v2 or below it, as /proc/PID/cgroup
    /// names it (e.g. /system.slice/nginx.service).
    #[arg(long, value_name = "PATH", value_parser = parse_cgroup_prefix)]
    pub cgroup: Option<String>,
}

impl ProcArgs {
    /// The filter these say.
    pub fn procs(&self) -> ProcFilter {
        ProcFilter {
            uids: self.uids.clone(),
            comm: self.comm.clone(),
            cgroup: self.cgroup.clone(),
        }
    }
}
