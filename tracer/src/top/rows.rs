//! The table's rows from the [`State`]: the process tree with each row's
//! figures, identical leaf siblings folded into `N*[name]`, siblings sorted, and
//! under the rate sorts the busiest forkers lifted to the top with their
//! subtrees, so the culprit of a storm is the first line. Pure, as `state` is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::state::{Proc, State};
use crate::record::ProcId;

/// Which figure orders the rows (`s` moves to the next).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Rate1s,
    Rate10s,
    Children,
    Zombies,
    Pid,
    Name,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::Rate1s => Sort::Rate10s,
            Sort::Rate10s => Sort::Children,
            Sort::Children => Sort::Zombies,
            Sort::Zombies => Sort::Pid,
            Sort::Pid => Sort::Name,
            Sort::Name => Sort::Rate1s,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Rate1s => "F/1s",
            Sort::Rate10s => "F/10s",
            Sort::Children => "KIDS",
            Sort::Zombies => "ZOMB",
            Sort::Pid => "PID",
            Sort::Name => "COMMAND",
        }
    }

    fn lifts(self) -> bool {
        matches!(self, Sort::Rate1s | Sort::Rate10s)
    }
}

/// How the user asked the rows to be laid out.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub sort: Sort,
    /// Group by cgroup (`g`).
    pub by_cgroup: bool,
    /// Show only processes whose name or pid contains this (and their ancestors).
    pub filter: String,
    /// Processes whose children are hidden (Enter on a process).
    pub collapsed: HashSet<ProcId>,
    /// Folded sibling groups shown one by one (Enter on an `N*[name]` row): the
    /// parent (`None` for roots) and the name.
    pub unfolded: HashSet<(Option<ProcId>, String)>,
}

/// What a row stands for, to keep the selection on it as rows move, and to fold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Proc(ProcId),
    Fold(Option<ProcId>, String),
    Cgroup(Arc<str>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: Key,
    pub depth: usize,
    /// A pid, or how many processes a folded row stands for.
    pub pid: Option<u32>,
    pub count: u64,
    /// Tree marks and name: `bash`, `3*[sleep]`, `storm ← bash 812`.
    pub label: String,
    pub rate_1s: u64,
    pub rate_10s: u64,
    pub children: u64,
    pub zombies: u64,
    pub oldest_zombie_ns: Option<u64>,
    pub exits: u64,
    pub crashes: u64,
    /// The row is a zombie itself.
    pub zombie: bool,
    /// Its children are hidden (`+`), or shown (`-`), or it has none.
    pub fold: Option<bool>,
}

struct Tree<'a> {
    st: &'a State,
    now: u64,
    children: HashMap<ProcId, Vec<ProcId>>,
    /// Shown: matches the filter or has a descendant that does (all without one).
    shown: Option<HashSet<ProcId>>,
    opts: &'a Options,
}

impl Tree<'_> {
    fn parent(&self, p: &Proc) -> Option<ProcId> {
        self.st
            .by_pid
            .get(&p.ppid)
            .copied()
            .filter(|id| *id != p.id && self.st.procs.contains_key(id))
    }

    fn kids(&self, id: ProcId) -> impl Iterator<Item = ProcId> + '_ {
        self.children
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|c| self.shown.as_ref().is_none_or(|s| s.contains(c)))
            // Grouped by cgroup, a child in another cgroup is under that group's head.
            .filter(move |c| {
                !self.opts.by_cgroup || self.st.procs[c].cgroup == self.st.procs[&id].cgroup
            })
    }

    fn zombies_of(&self, id: ProcId) -> (u64, Option<u64>) {
        let mut n = 0;
        let mut oldest: Option<u64> = None;
        for c in self.children.get(&id).into_iter().flatten() {
            if let Some(t) = self.st.procs[c].exited_ns {
                n += 1;
                oldest = Some(oldest.map_or(t, |o: u64| o.min(t)));
            }
        }
        (n, oldest.map(|t| self.now.saturating_sub(t)))
    }

    fn row(&self, id: ProcId, depth: usize, label_suffix: &str) -> Row {
        let p = &self.st.procs[&id];
        let (zombies, oldest) = self.zombies_of(id);
        let all_kids = self.children.get(&id).map_or(0, |v| v.len() as u64);
        let has_kids = self.kids(id).next().is_some();
        Row {
            key: Key::Proc(id),
            depth,
            pid: Some(id.pid),
            count: 1,
            label: format!("{}{label_suffix}", p.name),
            rate_1s: p.rate_1s(self.now),
            rate_10s: p.rate_10s(self.now),
            children: all_kids - zombies,
            zombies,
            oldest_zombie_ns: oldest,
            exits: p.child_exits,
            crashes: p.child_crashes,
            zombie: p.exited_ns.is_some(),
            fold: has_kids.then(|| self.opts.collapsed.contains(&id)),
        }
    }

    fn sort_key(&self, a: &Row) -> (std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, u32) {
        use std::cmp::Reverse as R;
        let (x, y) = match self.opts.sort {
            Sort::Rate1s => (a.rate_1s, a.rate_10s),
            Sort::Rate10s => (a.rate_10s, a.rate_1s),
            Sort::Children => (a.children, a.rate_1s),
            Sort::Zombies => (a.zombies, a.oldest_zombie_ns.unwrap_or(0)),
            Sort::Pid | Sort::Name => (0, 0),
        };
        (R(x), R(y), a.pid.unwrap_or(0))
    }

    fn sort(&self, rows: &mut [Row]) {
        match self.opts.sort {
            Sort::Name => rows.sort_by(|a, b| {
                a.label
                    .to_lowercase()
                    .cmp(&b.label.to_lowercase())
                    .then(a.pid.cmp(&b.pid))
            }),
            _ => rows.sort_by_key(|r| self.sort_key(r)),
        }
    }

    /// Siblings `ids` under `parent`, each with its subtree, into `out`.
    fn emit(
        &self,
        parent: Option<ProcId>,
        ids: &[ProcId],
        depth: usize,
        skip: &HashSet<ProcId>,
        out: &mut Vec<Row>,
    ) {
        // Leaves with the same name and state fold into one `N*[name]` row.
        let mut folds: HashMap<(String, bool), Vec<Row>> = HashMap::new();
        let mut rows = Vec::new();
        for &id in ids {
            if skip.contains(&id) {
                continue;
            }
            let r = self.row(id, depth, "");
            if r.fold.is_none() {
                folds
                    .entry((r.label.clone(), r.zombie))
                    .or_default()
                    .push(r);
            } else {
                rows.push(r);
            }
        }
        for ((name, zombie), group) in folds {
            if group.len() < 2 || self.opts.unfolded.contains(&(parent, name.clone())) {
                rows.extend(group);
                continue;
            }
            let mut r = Row {
                key: Key::Fold(parent, name.clone()),
                depth,
                pid: None,
                count: group.len() as u64,
                label: format!("{}*[{name}]", group.len()),
                zombie,
                fold: None,
                ..group[0].clone()
            };
            for g in &group[1..] {
                r.rate_1s += g.rate_1s;
                r.rate_10s += g.rate_10s;
                r.children += g.children;
                r.zombies += g.zombies;
                r.exits += g.exits;
                r.crashes += g.crashes;
                r.oldest_zombie_ns = r.oldest_zombie_ns.max(g.oldest_zombie_ns);
            }
            // Ordered among its siblings by its lowest pid.
            r.pid = group.iter().filter_map(|g| g.pid).min();
            rows.push(r);
        }
        self.sort(&mut rows);
        for mut r in rows {
            let id = match &r.key {
                Key::Proc(id) => Some(*id),
                _ => None,
            };
            if matches!(r.key, Key::Fold(..)) {
                r.pid = None;
            }
            let open = r.fold == Some(false);
            out.push(r);
            if let (Some(id), true) = (id, open) {
                let kids: Vec<ProcId> = self.kids(id).collect();
                self.emit(Some(id), &kids, depth + 1, skip, out);
            }
        }
    }
}

/// The rows to show, top to bottom.
pub fn rows(st: &State, opts: &Options) -> Vec<Row> {
    let now = st.now_ns;
    let mut t = Tree {
        st,
        now,
        children: HashMap::new(),
        shown: None,
        opts,
    };
    let mut roots = Vec::new();
    for p in st.procs.values() {
        match t.parent(p) {
            Some(parent) => t.children.entry(parent).or_default().push(p.id),
            None => roots.push(p.id),
        }
    }
    let needle = opts.filter.to_lowercase();
    if !needle.is_empty() {
        let mut shown = HashSet::new();
        for p in st.procs.values() {
            if p.name.to_lowercase().contains(&needle) || p.id.pid.to_string() == needle {
                // It and its ancestors (a loop from reparenting ends at `insert`).
                let mut cur = Some(p.id);
                while let Some(id) = cur {
                    if !shown.insert(id) {
                        break;
                    }
                    cur = t.parent(&st.procs[&id]);
                }
            }
        }
        roots.retain(|r| shown.contains(r));
        t.shown = Some(shown);
    }
    let t = t;
    let mut out = Vec::new();
    if opts.by_cgroup {
        let mut groups: HashMap<Arc<str>, Vec<ProcId>> = HashMap::new();
        let unknown: Arc<str> = Arc::from("?");
        let cg = |id: &ProcId| st.procs[id].cgroup.clone().unwrap_or(unknown.clone());
        let ids: Vec<ProcId> = match &t.shown {
            Some(s) => s.iter().copied().collect(),
            None => st.procs.keys().copied().collect(),
        };
        for id in ids {
            // A group's roots: its processes whose parent is in another group.
            let own = cg(&id);
            let parent = t.parent(&st.procs[&id]);
            if parent.is_none_or(|p| cg(&p) != own) {
                groups.entry(own).or_default().push(id);
            }
        }
        // Each group's figures, in one pass over the processes.
        let mut heads: HashMap<Arc<str>, Row> = HashMap::new();
        for p in st.procs.values() {
            let path = cg(&p.id);
            if !groups.contains_key(&path) {
                continue;
            }
            let h = heads.entry(path.clone()).or_insert_with(|| Row {
                label: if &*path == "?" {
                    "(cgroup unknown)".to_string()
                } else {
                    crate::alert_text::cgroup_label(&path)
                },
                key: Key::Cgroup(path),
                depth: 0,
                pid: None,
                count: 0,
                rate_1s: 0,
                rate_10s: 0,
                children: 0,
                zombies: 0,
                oldest_zombie_ns: None,
                exits: 0,
                crashes: 0,
                zombie: false,
                fold: None,
            });
            h.count += 1;
            h.rate_1s += p.rate_1s(now);
            h.rate_10s += p.rate_10s(now);
            match p.exited_ns {
                None => h.children += 1,
                Some(e) => {
                    h.zombies += 1;
                    h.oldest_zombie_ns = h.oldest_zombie_ns.max(Some(now.saturating_sub(e)));
                }
            }
            h.exits += p.child_exits;
            h.crashes += p.child_crashes;
        }
        let mut heads: Vec<(Row, Vec<ProcId>)> = groups
            .into_iter()
            .filter_map(|(path, roots)| heads.remove(&path).map(|h| (h, roots)))
            .collect();
        heads.sort_by(|(a, _), (b, _)| match opts.sort {
            Sort::Name | Sort::Pid => a.label.cmp(&b.label),
            _ => t
                .sort_key(a)
                .cmp(&t.sort_key(b))
                .then(a.label.cmp(&b.label)),
        });
        for (head, roots) in heads {
            let path = match &head.key {
                Key::Cgroup(p) => p.clone(),
                _ => unreachable!("a cgroup head"),
            };
            let closed = opts.collapsed.contains(&cgroup_fold_id(&path));
            out.push(Row {
                fold: Some(closed),
                ..head
            });
            if !closed {
                t.emit(None, &roots, 1, &HashSet::new(), &mut out);
            }
        }
        return out;
    }
    let mut lifted = HashSet::new();
    if opts.sort.lifts() {
        // Every process that forked in the last 10 s heads the table with its
        // subtree, busiest first, its parent named on its line; a forker below
        // another is on its own line, not in the other's subtree (so a storm's
        // worker comes before the launcher that forked it once). Roots (init)
        // stay where they are: the rest of the tree is under them.
        let mut heads: Vec<Row> = st
            .procs
            .values()
            .filter(|p| p.rate_10s(now) > 0 || p.rate_1s(now) > 0)
            .filter(|p| !roots.contains(&p.id))
            .filter(|p| t.shown.as_ref().is_none_or(|s| s.contains(&p.id)))
            .map(|p| {
                let suffix = match t.parent(p) {
                    Some(pp) => format!(" ← {} {}", st.procs[&pp].name, pp.pid),
                    None => String::new(),
                };
                t.row(p.id, 0, &suffix)
            })
            .collect();
        t.sort(&mut heads);
        lifted = heads
            .iter()
            .filter_map(|r| match r.key {
                Key::Proc(id) => Some(id),
                _ => None,
            })
            .collect();
        for r in heads {
            let Key::Proc(id) = r.key else { continue };
            let open = r.fold == Some(false);
            out.push(r);
            if open {
                let kids: Vec<ProcId> = t.kids(id).collect();
                t.emit(Some(id), &kids, 1, &lifted, &mut out);
            }
        }
    }
    t.emit(None, &roots, 0, &lifted, &mut out);
    out
}

/// A cgroup head's fold state is kept with the processes' (a pid no process has).
pub fn cgroup_fold_id(path: &str) -> ProcId {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    ProcId {
        pid: u32::MAX,
        start_ticks: h.finish(),
    }
}
