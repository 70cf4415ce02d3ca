//! `--flamegraph FILE.svg`: an ancestry flame graph, drawn by the `inferno` crate
//! from folded stacks ([`folded`]).
//!
//! A stack is the chain of programs from a root of the process tree down to one
//! process: each process contributes the frames of its exec chain
//! ([`Proc::chain`](super::history::Proc::chain), as in `--tree`: what it exec'd,
//! by file name; a forked process that never exec'd is named by its comm; a process
//! from the start-up snapshot starts with what it was running then). So a shell
//! that ran `make` which ran `cc` which ran `cc1` is `…;bash;make;cc;cc1`, and a
//! process that exec'd twice (`sh` then `python`) is two nested frames `sh;python`.
//! Each process whose fork was recorded adds 1 to its own full stack: a frame's
//! width is the number of processes spawned at or below it. Processes that were
//! already there (snapshot) or whose fork was not seen add nothing themselves but
//! appear as the ancestors of those that were spawned. A child sits under the
//! program its parent was running when it forked it: a `run.sh` that starts helpers
//! and then execs `server` is `run.sh;helper` for the helpers and `run.sh;server`
//! for itself ([`Proc::chain_at`](super::history::Proc::chain_at)). With several hosts or
//! boots, each stack starts with a `host NAME (boot ID)` frame.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::rc::Rc;

use inferno::flamegraph::{self, Options};

use super::fmt::text;
use super::history::{History, Origin, ProcIdx};

/// Stacks are cut after this many frames; what is deeper is counted in a `…` frame.
pub const MAX_FRAMES: usize = 1000;

pub const TITLE: &str = "tracer: processes spawned by ancestry";
pub const COUNT_NAME: &str = "processes";

/// The folded stacks of a flame graph, as `inferno` reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// `frame;frame;... COUNT`, one per distinct stack, sorted.
    pub lines: Vec<String>,
    /// Processes counted (the sum of the counts).
    pub processes: u64,
    /// Of those, processes deeper than [`MAX_FRAMES`], counted in a `…` frame.
    pub cut: u64,
}

/// A frame name: the bytes made printable (`\xNN`), and `;`, which separates
/// frames, written `\x3b`.
fn frame_name(bytes: &[u8]) -> String {
    let s = text(bytes).replace(';', "\\x3b");
    if s.trim().is_empty() {
        "?".to_string()
    } else {
        s
    }
}

/// The current stack while walking the tree.
#[derive(Clone)]
struct Stack {
    buf: String,
    frames: usize,
    cut: bool,
}

impl Stack {
    fn push(&mut self, name: &str) {
        if self.cut {
            return;
        }
        if !self.buf.is_empty() {
            self.buf.push(';');
        }
        if self.frames == MAX_FRAMES {
            self.buf.push('…');
            self.cut = true;
        } else {
            self.buf.push_str(name);
            self.frames += 1;
        }
    }
}

/// The folded stacks of the processes under `roots` (all of them:
/// [`History::roots`]).
pub fn folded(h: &History, roots: &[ProcIdx]) -> Folded {
    let many_runs = h.runs.len() > 1;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Folded::default();
    for &root in roots {
        let mut stack = Stack {
            buf: String::new(),
            frames: 0,
            cut: false,
        };
        if many_runs {
            let run = &h.runs[h.procs[root].run];
            let boot: String = run.boot_id.chars().take(8).collect();
            stack.push(&frame_name(
                format!("host {} (boot {boot})", run.host).as_bytes(),
            ));
        }
        // Each process with the stack of its parent as it was when it was forked.
        let mut steps: Vec<(ProcIdx, Rc<Stack>)> = vec![(root, Rc::new(stack))];
        while let Some((i, parent_stack)) = steps.pop() {
            let p = &h.procs[i];
            let mut own = (*parent_stack).clone();
            for name in p.chain() {
                own.push(&frame_name(&name));
            }
            if p.origin == Origin::Fork {
                out.processes += 1;
                out.cut += u64::from(own.cut);
                *counts.entry(own.buf.clone()).or_default() += 1;
            }
            // A child sits under the program its parent ran when it forked it, not
            // under what the parent exec'd later: keyed by the execs done by then.
            let own = Rc::new(own);
            let mut at: HashMap<usize, Rc<Stack>> = HashMap::new();
            for &c in p.children.iter().rev() {
                let t = h.procs[c].start_ns();
                let n = p.execs.partition_point(|e| e.ktime_ns <= t);
                let s = at.entry(n).or_insert_with(|| {
                    if n == p.execs.len() {
                        return Rc::clone(&own);
                    }
                    let mut s = (*parent_stack).clone();
                    for name in p.chain_at(t) {
                        s.push(&frame_name(&name));
                    }
                    Rc::new(s)
                });
                steps.push((c, Rc::clone(s)));
            }
        }
    }
    out.lines = counts
        .into_iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect();
    out
}

/// Draws the flame graph of `folded` as SVG. `folded` must count at least one
/// process (`inferno` refuses an empty graph).
pub fn write(out: impl Write, folded: &Folded) -> io::Result<()> {
    let mut opts = Options::default();
    opts.title = TITLE.to_string();
    opts.count_name = COUNT_NAME.to_string();
    opts.name_type = "Program:".to_string();
    opts.subtitle = Some(subtitle(folded));
    // Colours from the frame names, so the same recording gives the same file.
    opts.hash = true;
    flamegraph::from_lines(&mut opts, folded.lines.iter().map(String::as_str), out)
}

fn subtitle(folded: &Folded) -> String {
    let mut s = "width: processes spawned (forks recorded) below each program, root at the bottom"
        .to_string();
    if folded.cut > 0 {
        s.push_str(&format!(
            "; {} deeper than {MAX_FRAMES} frames are counted in '…'",
            folded.cut
        ));
    }
    s
}
