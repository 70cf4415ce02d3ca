//! `--tree`: the reconstructed process tree, like `pstree`, each process with what
//! it ran, how long it lived, how it ended and how long it was a zombie.
//!
//! Identical sibling subtrees (the same exec chains, endings and shape all the way
//! down) are folded into one line, as pstree folds them: `N*[chain]` for leaves,
//! `N*[bash───sleep]` for a subtree with one line per level, with the range of the
//! topmost processes' lifetimes and zombie times; a wider folded subtree is drawn
//! once below its `N*[chain]` line. A child forked while its parent ran an earlier
//! program of its chain says so: `(forked by run.sh)` under `run.sh → server`. Processes still running when the
//! recording stopped are marked. `--pid`/`--comm` root the tree at the matching
//! processes (the topmost ones, when a match lies inside another's subtree).
//! A process that lived through lost events (its records say `uncertain`) ends its
//! line with ` ?`: what the line says of it may be incomplete; it folds only with
//! others like it.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::fmt::{duration, lossy, text, thousands};
use super::history::{Ending, History, Origin, ProcIdx};
use super::stats::{REPORT_VERSION, ending_text};
use super::walltime::rfc3339;
use crate::filter::ProcFilter;

/// Which subtrees to show.
#[derive(Clone, Debug, Default)]
pub struct Select {
    /// Root at processes with one of these pids.
    pub pids: Vec<u32>,
    /// Root at processes these match (`--uid`, `--comm`, `--cgroup`): by comm or an
    /// executable they ran, uid, cgroup ([`super::window::proc_matches`]).
    pub procs: ProcFilter,
}

/// Below this depth lines stop indenting further (a fork bomb can nest thousands
/// deep) and show the depth instead.
const MAX_DEPTH: usize = 40;

impl Select {
    fn is_all(&self) -> bool {
        self.pids.is_empty() && self.procs.is_empty()
    }

    fn matches(&self, h: &History, i: ProcIdx) -> bool {
        let p = &h.procs[i];
        self.pids.contains(&p.pid())
            || (!self.procs.is_empty() && super::window::proc_matches(&self.procs, p))
    }

    /// Rooted at processes whose names match `re` (for tests).
    #[cfg(test)]
    pub fn by_comm(re: &str) -> Select {
        Select {
            pids: Vec::new(),
            procs: ProcFilter {
                comm: Some(regex::Regex::new(re).expect("a test regex")),
                ..Default::default()
            },
        }
    }
}

/// The processes the tree starts from: every root, or the topmost matches.
pub fn roots(h: &History, sel: &Select) -> Vec<ProcIdx> {
    if sel.is_all() {
        return h.roots();
    }
    let mut out = Vec::new();
    let mut stack: Vec<ProcIdx> = h.roots().into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        if sel.matches(h, i) {
            out.push(i);
            continue;
        }
        stack.extend(h.procs[i].children.iter().rev().copied());
    }
    out
}

/// A line of the tree: one process, or several folded.
enum Item {
    Proc(ProcIdx),
    Fold(Vec<ProcIdx>),
}

/// What the tree folds by: identical subtrees get the same number. Identical means
/// the same exec chain, ending and uncertainty, forked by the same program of the
/// parent, and the same children (as a multiset of their own numbers), as pstree
/// compares subtrees. Computed once, leaves first.
fn shapes(h: &History) -> Vec<u32> {
    type Key = (Vec<Vec<u8>>, String, bool, Option<Vec<u8>>, Vec<u32>);
    let mut order = Vec::with_capacity(h.procs.len());
    let mut stack = h.roots();
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(h.procs[i].children.iter().copied());
    }
    let mut ids = vec![u32::MAX; h.procs.len()];
    let mut known: HashMap<Key, u32> = HashMap::new();
    for &i in order.iter().rev() {
        let p = &h.procs[i];
        let mut kids: Vec<u32> = p.children.iter().map(|&c| ids[c]).collect();
        kids.sort_unstable();
        let key = (
            p.chain(),
            fold_ending(p.ending()),
            p.uncertain,
            forked_by(h, i),
            kids,
        );
        let next = known.len() as u32;
        ids[i] = *known.entry(key).or_insert(next);
    }
    ids
}

/// The program its parent was running when it forked it, when the parent exec'd
/// something else later (so the parent's line, which names its last program too,
/// does not tell).
fn forked_by(h: &History, i: ProcIdx) -> Option<Vec<u8>> {
    let p = &h.procs[i];
    let (pi, t) = (p.parent?, p.fork_ns?);
    let parent = &h.procs[pi];
    if parent.execs.last().is_none_or(|e| e.ktime_ns <= t) {
        return None;
    }
    parent.chain_at(t).pop()
}

/// The children of a process as lines, identical subtrees folded at the place of
/// the first of them.
fn items(shapes: &[u32], children: &[ProcIdx]) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut groups: HashMap<u32, usize> = HashMap::new();
    for &c in children {
        match groups.get(&shapes[c]) {
            Some(&at) => match &mut out[at] {
                Item::Fold(v) => v.push(c),
                Item::Proc(first) => out[at] = Item::Fold(vec![*first, c]),
            },
            None => {
                groups.insert(shapes[c], out.len());
                out.push(Item::Proc(c));
            }
        }
    }
    out
}

/// A folded subtree in one line, as pstree writes it (`bash───2*[sleep]`), when
/// every process in it has one line of children at most; `None` otherwise.
fn inline(h: &History, shapes: &[u32], first: ProcIdx) -> Option<String> {
    let mut text = String::new();
    let mut closing = String::new();
    let mut cur = first;
    loop {
        text.push_str(&chain_text(&h.procs[cur].chain()));
        if let Some(by) = forked_by(h, cur) {
            text.push_str(&format!(" (forked by {})", super::fmt::text(&by)));
        }
        let kids = items(shapes, &h.procs[cur].children);
        match kids.as_slice() {
            [] => break,
            [Item::Proc(c)] => {
                text.push_str("───");
                cur = *c;
            }
            [Item::Fold(g)] => {
                text.push_str(&format!("───{}*[", g.len()));
                closing.push(']');
                cur = g[0];
            }
            _ => return None,
        }
    }
    text.push_str(&closing);
    Some(text)
}

/// Endings that fold together: the same status (alive ones fold too).
fn fold_ending(e: Ending) -> String {
    ending_text(e)
}

fn chain_text(chain: &[Vec<u8>]) -> String {
    chain
        .iter()
        .map(|c| text(c))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// `1.2s, exit 0, zombie 40us` for one process.
fn facts(h: &History, i: ProcIdx) -> String {
    let p = &h.procs[i];
    let mut parts = Vec::new();
    let ending = p.ending();
    match ending {
        Ending::Alive => {
            let end = h.end_ns(p.run);
            parts.push(format!(
                "alive at end, ≥ {}",
                duration(end.saturating_sub(p.start_ns()))
            ));
        }
        _ => {
            if let Some(l) = p.lifetime_ns() {
                parts.push(duration(l));
            }
            parts.push(ending_text(ending));
        }
    }
    if let Some(z) = p.zombie_ns() {
        parts.push(format!("zombie {}", duration(z)));
    } else if p.zombie_at_end() {
        let since = p.exit.as_ref().map_or(p.first_ns, |e| e.ktime_ns);
        parts.push(format!(
            "zombie at end (unreaped {})",
            duration(h.end_ns(p.run).saturating_sub(since))
        ));
    }
    if p.threads_created > 0 {
        parts.push(format!("{} threads", thousands(p.threads_created)));
    }
    parts.join(", ")
}

fn range(v: &mut [u64]) -> Option<String> {
    v.sort_unstable();
    let (a, b) = (*v.first()?, *v.last()?);
    Some(if duration(a) == duration(b) {
        duration(a)
    } else {
        format!("{}–{}", duration(a), duration(b))
    })
}

/// `exit 0, 0.9ms–2.1ms, zombie 12us–40us` for a folded group.
fn fold_facts(h: &History, group: &[ProcIdx]) -> String {
    let first = &h.procs[group[0]];
    let mut parts = Vec::new();
    let ending = first.ending();
    parts.push(ending_text(ending));
    let mut lifetimes: Vec<u64> = group
        .iter()
        .filter_map(|&i| h.procs[i].lifetime_ns())
        .collect();
    if let Some(r) = range(&mut lifetimes) {
        parts.push(format!("lived {r}"));
    }
    let mut zombies: Vec<u64> = group
        .iter()
        .filter_map(|&i| h.procs[i].zombie_ns())
        .collect();
    if let Some(r) = range(&mut zombies) {
        parts.push(format!("zombie {r}"));
    }
    let unreaped = group
        .iter()
        .filter(|&&i| h.procs[i].zombie_at_end())
        .count();
    if unreaped > 0 {
        parts.push(format!("{unreaped} zombies at end"));
    }
    parts.join(", ")
}

/// The line of `item`, and whether its children are still to be drawn below it.
fn label(h: &History, shapes: &[u32], item: &Item) -> (String, bool) {
    let mark = |i: ProcIdx| if h.procs[i].uncertain { " ?" } else { "" };
    let by = |i: ProcIdx| {
        forked_by(h, i)
            .map(|b| format!(" (forked by {})", text(&b)))
            .unwrap_or_default()
    };
    match item {
        Item::Proc(i) => {
            let p = &h.procs[*i];
            let line = format!(
                "{} {}{}  [{}]{}",
                p.pid(),
                chain_text(&p.chain()),
                by(*i),
                facts(h, *i),
                mark(*i)
            );
            (line, true)
        }
        Item::Fold(g) => match inline(h, shapes, g[0]) {
            Some(tree) => (
                format!("{}*[{tree}]  [{}]{}", g.len(), fold_facts(h, g), mark(g[0])),
                false,
            ),
            // Not one line: the first one's children below stand for each one's.
            None => (
                format!(
                    "{}*[{}{}]  [{}; each with the subtree below]{}",
                    g.len(),
                    chain_text(&h.procs[g[0]].chain()),
                    by(g[0]),
                    fold_facts(h, g),
                    mark(g[0])
                ),
                true,
            ),
        },
    }
}

/// The tree as text.
pub fn render(h: &History, sel: &Select) -> String {
    let mut o = String::new();
    let roots = roots(h, sel);
    let shapes = shapes(h);
    let hosts = h.runs.len() > 1;
    let mut run = None;
    for root in roots {
        let r = h.procs[root].run;
        if hosts && run != Some(r) {
            let _ = writeln!(
                o,
                "host {} (boot {}):",
                h.runs[r].host,
                h.runs[r].boot_id.chars().take(8).collect::<String>()
            );
            run = Some(r);
        }
        // (item, prefix of its line, prefix of its children's lines, depth)
        let mut stack: Vec<(Item, String, String, usize)> =
            vec![(Item::Proc(root), String::new(), String::new(), 0)];
        while let Some((item, line_prefix, child_prefix, depth)) = stack.pop() {
            let (line, below) = label(h, &shapes, &item);
            let _ = writeln!(o, "{line_prefix}{line}");
            if !below {
                continue;
            }
            let i = match &item {
                Item::Proc(i) => *i,
                Item::Fold(g) => g[0],
            };
            let kids = items(&shapes, &h.procs[i].children);
            let n = kids.len();
            for (k, kid) in kids.into_iter().enumerate().rev() {
                let last = k + 1 == n;
                let (branch, cont) = if last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                let d = depth + 1;
                let (lp, cp) = if d > MAX_DEPTH {
                    // Stop indenting; say how deep this is.
                    (
                        format!("{child_prefix}{branch}({d}) "),
                        child_prefix.clone(),
                    )
                } else {
                    (
                        format!("{child_prefix}{branch}"),
                        format!("{child_prefix}{cont}"),
                    )
                };
                stack.push((kid, lp, cp, d));
            }
        }
    }
    o
}

/// One process in the JSON tree.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Position in `processes`.
    pub id: usize,
    /// `id` of the parent, `null` for the roots of the tree shown.
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub host: String,
    pub proc_id: String,
    pub pid: u32,
    /// Parent pid when first seen; `null` for a process known only as a parent.
    pub ppid: Option<u32>,
    pub comm: String,
    pub chain: Vec<String>,
    /// The program its parent was running when it forked this process, when the
    /// parent exec'd something else later; `null` otherwise.
    pub forked_by: Option<String>,
    pub exe: Option<String>,
    pub cgroup: Option<String>,
    /// `snapshot`, `fork` or `inferred`.
    pub origin: &'static str,
    pub start_ktime_ns: u64,
    pub start: Option<String>,
    pub lifetime_ns: Option<u64>,
    pub ending: String,
    pub exit_code: Option<u8>,
    pub signal: Option<u8>,
    pub core_dumped: bool,
    pub zombie_ns: Option<u64>,
    pub alive_at_end: bool,
    pub zombie_at_end: bool,
    pub threads_created: u64,
    /// Events were lost while it lived (one of its records said `uncertain`).
    pub uncertain: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TreeDoc {
    pub report_version: u32,
    /// `id`s of the roots.
    pub roots: Vec<usize>,
    /// Every process of the tree, parents before children (depth first).
    pub processes: Vec<Node>,
}

/// The tree as data, unfolded.
pub fn doc(h: &History, sel: &Select) -> TreeDoc {
    let mut processes: Vec<Node> = Vec::new();
    let mut roots_out = Vec::new();
    let mut stack: Vec<(ProcIdx, Option<usize>)> =
        roots(h, sel).into_iter().rev().map(|r| (r, None)).collect();
    while let Some((i, parent)) = stack.pop() {
        let id = processes.len();
        let p = &h.procs[i];
        let run = &h.runs[p.run];
        let ending = p.ending();
        let (exit_code, signal, core_dumped) = match ending {
            Ending::Exited(c) => (Some(c), None, false),
            Ending::Killed {
                signal,
                core_dumped,
            } => (None, Some(signal), core_dumped),
            _ => (None, None, false),
        };
        processes.push(Node {
            id,
            parent,
            children: Vec::new(),
            host: run.host.clone(),
            proc_id: p.id.to_string(),
            pid: p.pid(),
            ppid: (p.records > 0).then_some(p.ppid),
            comm: lossy(p.comm.as_bytes()),
            chain: p.chain().iter().map(|c| lossy(c)).collect(),
            forked_by: forked_by(h, i).map(|b| lossy(&b)),
            exe: p.exe().map(|e| lossy(e)),
            cgroup: p.cgroup.as_deref().map(str::to_string),
            origin: match p.origin {
                Origin::Snapshot => "snapshot",
                Origin::Fork => "fork",
                Origin::Inferred => "inferred",
            },
            start_ktime_ns: p.start_ns(),
            start: run.wall_ns(p.start_ns()).map(rfc3339),
            lifetime_ns: p.lifetime_ns(),
            ending: ending_text(ending),
            exit_code,
            signal,
            core_dumped,
            zombie_ns: p.zombie_ns(),
            alive_at_end: p.alive_at_end(),
            zombie_at_end: p.zombie_at_end(),
            threads_created: p.threads_created,
            uncertain: p.uncertain,
        });
        match parent {
            Some(pi) => processes[pi].children.push(id),
            None => roots_out.push(id),
        }
        stack.extend(p.children.iter().rev().map(|&c| (c, Some(id))));
    }
    TreeDoc {
        report_version: REPORT_VERSION,
        roots: roots_out,
        processes,
    }
}
