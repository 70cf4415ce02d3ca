//! Hand-written event sequences, no kernel, no sleeps. `Sim` applies one event at a
//! time, checks the tree invariants after it, and returns the records it produced.

use super::*;
use crate::event::{Exec, ExecFailed, Exit, ExitStatus, Fork, Wait};
use crate::record::NS_PER_TICK;
use tracer_common::{kind, wait_options};

/// A task as events describe it. `start` is in clock ticks; events carry it in ns
/// with an offset inside the tick, as the kernel does.
#[derive(Clone, Copy, Debug)]
struct P {
    pid: u32,
    tid: u32,
    ppid: u32,
    start: u64,
    comm: Comm,
    subreaper: bool,
}

fn p(pid: u32, ppid: u32, start: u64) -> P {
    P {
        pid,
        tid: pid,
        ppid,
        start,
        comm: Comm::new(format!("p{pid}").as_bytes()),
        subreaper: false,
    }
}

impl P {
    /// The same process seen from thread `tid`.
    fn t(self, tid: u32) -> P {
        P { tid, ..self }
    }
    fn ppid(self, ppid: u32) -> P {
        P { ppid, ..self }
    }
    fn subreaper(self) -> P {
        P {
            subreaper: true,
            ..self
        }
    }
    fn comm(self, comm: &str) -> P {
        P {
            comm: Comm::new(comm.as_bytes()),
            ..self
        }
    }
    fn start_ns(&self) -> u64 {
        self.start * NS_PER_TICK + 1234
    }
    fn id(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            start_ticks: self.start,
        }
    }
    fn task(&self) -> Task {
        Task {
            pid: self.pid,
            tid: self.tid,
            ppid: self.ppid,
            start_ns: self.start_ns(),
            uid: 1000,
            cgroup_id: 77,
            comm: self.comm,
            subreaper: self.subreaper,
        }
    }
    /// The /proc view of this process.
    fn seed(&self, state: char) -> SeedProc {
        SeedProc {
            pid: self.pid,
            ppid: self.ppid,
            start_ticks: self.start,
            comm: self.comm,
            state,
            filename: Some(
                format!("/bin/{}", String::from_utf8_lossy(self.comm.as_bytes())).into_bytes(),
            ),
            argv: vec![self.comm.as_bytes().to_vec()],
            uid: Some(0),
            cgroup_id: 5,
            subreaper: self.subreaper,
        }
    }
}

const SIGCHLD: u64 = 17;

struct Sim {
    m: Model,
    now: u64,
    events: u64,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            m: Model::new(ModelConfig::default()),
            now: 1_000 * 1_000_000_000,
            events: 0,
        }
    }
    fn threads() -> Sim {
        Sim {
            m: Model::new(ModelConfig { threads: true }),
            ..Sim::new()
        }
    }
    /// A model holding init (pid 1) and a shell (pid 10) from the /proc scan.
    fn with_shell() -> Sim {
        let mut s = Sim::new();
        s.seed(vec![INIT.seed('S'), SH.seed('S')]);
        s
    }
    fn tick(&mut self) -> u64 {
        self.now += 1_000_000;
        self.now
    }
    fn ev(&mut self, who: P, kind: EventKind) -> Vec<Record> {
        let ev = Event {
            ktime_ns: self.tick(),
            task: who.task(),
            kind,
        };
        let mut out = Vec::new();
        self.m.apply(ev, &mut out);
        // The check walks the whole model: on big ones, not after every event.
        self.events += 1;
        if self.m.len() <= 64 || self.events.is_multiple_of(64) {
            self.m.check_invariants();
        }
        out
    }
    fn seed(&mut self, procs: Vec<SeedProc>) -> Vec<Record> {
        let mut out = Vec::new();
        let t = self.tick();
        self.m.seed(procs, t, &mut out);
        self.m.check_invariants();
        out
    }
    /// `parent` forks `child` (whose ppid is set to the parent).
    fn fork(&mut self, child: P, parent: P) -> Vec<Record> {
        let fork = Fork {
            clone_flags: SIGCHLD,
            parent_start_ns: parent.start_ns(),
            creator_pid: parent.pid,
            creator_tid: parent.tid,
        };
        self.ev(child.ppid(parent.pid), EventKind::Fork(fork))
    }
    /// A new thread `tid` in process `p`.
    fn thread(&mut self, p: P, tid: u32) -> Vec<Record> {
        let fork = Fork {
            clone_flags: 0x3d0f00,
            parent_start_ns: 0,
            creator_pid: p.pid,
            creator_tid: p.tid,
        };
        self.ev(p.t(tid), EventKind::Fork(fork))
    }
    fn exec(&mut self, p: P, file: &str) -> Vec<Record> {
        let exec = Exec {
            old_tid: p.tid,
            filename: file.as_bytes().to_vec(),
            argv: vec![file.as_bytes().to_vec(), b"-x".to_vec()],
            argv_truncated: false,
        };
        self.ev(p.t(p.pid), EventKind::Exec(exec))
    }
    fn exit_with(&mut self, p: P, status: u32, group_dead: bool, autoreap: bool) -> Vec<Record> {
        self.ev(
            p,
            EventKind::Exit(Exit {
                status,
                group_dead,
                autoreap,
            }),
        )
    }
    /// The whole process exits with `code` (from thread `p.tid`).
    fn exit(&mut self, p: P, code: u8) -> Vec<Record> {
        self.exit_with(p, u32::from(code) << 8, true, false)
    }
    /// Thread `p.tid` exits, others remain.
    fn exit_thread(&mut self, p: P) -> Vec<Record> {
        self.exit_with(p, 0, false, false)
    }
    fn wait(&mut self, reaper: P, child_pid: u32) -> Vec<Record> {
        self.ev(
            reaper,
            EventKind::Wait(Wait {
                child_pid,
                options: 0,
            }),
        )
    }
    /// A blocking waitid(P_ALL, NULL infop, WEXITED | `extra`) that returned 0.
    fn wait_null_infop(&mut self, reaper: P, extra: u32) -> Vec<Record> {
        self.ev(
            reaper,
            EventKind::Wait(Wait {
                child_pid: 0,
                options: wait_options::WEXITED | extra,
            }),
        )
    }
    fn free(&mut self, p: P) -> Vec<Record> {
        self.ev(p, EventKind::Free)
    }
    /// fork, exit 0, reaped by the parent.
    fn run(&mut self, child: P, parent: P) {
        self.fork(child, parent);
        self.exit(child.ppid(parent.pid), 0);
        self.wait(parent, child.pid);
    }
    fn proc(&self, p: P) -> &Proc {
        self.m
            .get(p.id())
            .unwrap_or_else(|| panic!("{} not held", p.id()))
    }
    fn parent_of(&self, p: P) -> Option<u32> {
        self.proc(p).parent.map(|q| q.pid)
    }
}

const INIT: P = P {
    pid: 1,
    tid: 1,
    ppid: 0,
    start: 1,
    comm: Comm(*b"init\0\0\0\0\0\0\0\0\0\0\0\0"),
    subreaper: false,
};
const SH: P = P {
    pid: 10,
    tid: 10,
    ppid: 1,
    start: 50,
    comm: Comm(*b"sh\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
    subreaper: false,
};

fn types(recs: &[Record]) -> Vec<&'static str> {
    recs.iter().map(|r| r.body.type_name()).collect()
}

fn subj(r: &Record) -> &Subject {
    r.subject.as_ref().expect("record has a subject")
}

fn reap_of(r: &Record) -> (Option<u64>, Option<u32>, Option<Comm>, bool) {
    match &r.body {
        Body::Reap {
            zombie_ns,
            reaper_pid,
            reaper_comm,
            autoreap,
            ..
        } => (*zombie_ns, *reaper_pid, *reaper_comm, *autoreap),
        other => panic!("not a reap: {other:?}"),
    }
}

/// Process (not thread) exit records.
fn process_exits(recs: &[Record]) -> usize {
    recs.iter()
        .filter(|r| matches!(r.body, Body::Exit { thread: false, .. }))
        .count()
}

#[test]
fn fork_exec_exit_wait_records() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60);
    let r = s.fork(c, SH);
    assert_eq!(types(&r), ["fork"]);
    assert_eq!(
        r[0].body,
        Body::Fork {
            parent_proc_id: Some(SH.id()),
            thread: false,
            clone_flags: Some(SIGCHLD)
        }
    );
    let sub = subj(&r[0]);
    assert_eq!(
        (sub.pid, sub.tid, sub.ppid, sub.proc_id, sub.uid),
        (100, 100, 10, c.id(), Some(1000))
    );
    assert_eq!(s.parent_of(c), Some(10));
    assert_eq!(s.proc(c).creator, Some(SH.id()));
    assert_eq!(s.proc(c).start_ns, Some(c.start_ns()));

    let r = s.exec(c.comm("ls"), "/bin/ls");
    assert_eq!(
        r[0].body,
        Body::Exec {
            filename: b"/bin/ls".to_vec(),
            argv: vec![b"/bin/ls".to_vec(), b"-x".to_vec()],
            argv_truncated: false,
            old_tid: None,
            argv_redacted: false,
        }
    );
    assert_eq!(s.proc(c).comm.as_bytes(), b"ls");

    let r = s.ev(
        c,
        EventKind::ExecFailed(ExecFailed {
            filename: b"/nope".to_vec(),
            errno: 2,
        }),
    );
    assert_eq!(
        r[0].body,
        Body::ExecFailed {
            filename: b"/nope".to_vec(),
            errno: 2
        }
    );

    let exit_t = s.now + 1_000_000;
    let r = s.exit_with(c, 9 | 0x80, true, false);
    assert_eq!(
        r[0].body,
        Body::Exit {
            exit_code: None,
            signal: Some(9),
            core_dumped: true,
            lifetime_ns: Some(exit_t - c.start_ns()),
            thread: false
        }
    );
    assert!(s.proc(c).is_zombie());
    assert_eq!(s.m.zombie_count(), 1);
    assert_eq!(
        s.proc(c).exit.unwrap().status,
        Some(ExitStatus::from_wait_status(9 | 0x80))
    );

    let r = s.wait(SH, 100);
    assert_eq!(types(&r), ["reap"]);
    assert_eq!(
        reap_of(&r[0]),
        (Some(1_000_000), Some(10), Some(SH.comm), false)
    );
    assert_eq!(subj(&r[0]).proc_id, c.id());
    assert_eq!(subj(&r[0]).ppid, 10);
    // Reaped and without descendants: dropped.
    assert!(s.m.get(c.id()).is_none());
    assert!(s.m.by_pid(100).is_none());
    assert_eq!(s.m.len(), 2);
}

#[test]
fn unknown_parent_makes_a_root() {
    let mut s = Sim::new();
    // Fork from a parent never seen: the record still names it, the tree cannot.
    let c = p(100, 50, 60);
    let r = s.fork(c, p(50, 1, 5));
    assert_eq!(
        r[0].body,
        Body::Fork {
            parent_proc_id: Some(p(50, 1, 5).id()),
            thread: false,
            clone_flags: Some(SIGCHLD)
        }
    );
    assert_eq!(s.proc(c).parent, None);
    assert_eq!(s.proc(c).ppid, 50);
    assert_eq!(subj(&r[0]).ppid, 50);

    // An exec from a process never seen: created on the fly, under its known parent.
    let g = p(101, 100, 61);
    let r = s.exec(g, "/bin/true");
    assert_eq!(types(&r), ["exec"]);
    assert_eq!(s.parent_of(g), Some(100));
    assert_eq!(s.proc(g).creator, Some(c.id()));

    // An exit from a process never seen, whose parent is unknown too: a root.
    let o = p(200, 199, 62);
    let r = s.exit(o, 3);
    assert_eq!(types(&r), ["exit"]);
    assert_eq!(s.proc(o).parent, None);
    // Its parent shows up later (created by its own event) and reaps it.
    let r = s.wait(p(199, 1, 2), 200);
    assert_eq!(types(&r), ["reap"]);
    assert_eq!(reap_of(&r[0]).1, Some(199));
}

#[test]
fn events_before_their_fork() {
    let mut s = Sim::with_shell();
    // Exec overtakes the fork.
    let c = p(100, 10, 60);
    assert_eq!(types(&s.exec(c, "/bin/ls")), ["exec"]);
    assert_eq!(s.parent_of(c), Some(10));
    let r = s.fork(c, SH);
    assert_eq!(types(&r), ["fork"]);
    // The fork does not bring back the parent's image over the exec'd one.
    assert_eq!(s.proc(c).filename.as_deref(), Some(&b"/bin/ls"[..]));
    assert_eq!(s.proc(c).execs.len(), 1);

    // Exit overtakes the fork; the reap still works.
    let d = p(101, 10, 61);
    assert_eq!(types(&s.exit(d, 1)), ["exit"]);
    assert_eq!(types(&s.fork(d, SH)), ["fork"]);
    assert_eq!(types(&s.wait(SH, 101)), ["reap"]);

    // A wait before the exit is not a reap.
    let e = p(102, 10, 62);
    s.fork(e, SH);
    assert!(s.wait(SH, 102).is_empty());
    assert!(s.proc(e).is_alive());
    assert_eq!(types(&s.exit(e, 0)), ["exit"]);
    assert_eq!(types(&s.wait(SH, 102)), ["reap"]);
    // Repeats and late events change nothing and bring nothing back.
    assert!(s.wait(SH, 102).is_empty());
    assert!(s.exit(e, 0).is_empty());
    assert!(s.exec(e, "/bin/late").is_empty());
    assert!(s.m.get(e.id()).is_none());

    // An autoreaped child whose fork comes last: the fork is still reported.
    let f = p(103, 10, 63);
    assert_eq!(types(&s.exit_with(f, 0, true, true)), ["exit", "reap"]);
    assert_eq!(types(&s.fork(f, SH)), ["fork"]);
    assert!(s.m.get(f.id()).is_none());
    assert_eq!(s.m.len(), 3);
}

#[test]
fn fork_inherits_image_until_exec() {
    let mut s = Sim::new();
    let mut sh = SH.seed('S');
    sh.argv = vec![b"sh".to_vec(), b"-c".to_vec(), b"make".to_vec()];
    s.seed(vec![INIT.seed('S'), sh.clone()]);
    let c = p(100, 10, 60);
    s.fork(c, SH);
    assert_eq!(s.proc(c).filename.as_deref(), sh.filename.as_deref());
    assert_eq!(*s.proc(c).argv, sh.argv[..]);
    assert!(
        Arc::ptr_eq(&s.proc(c).argv, &s.proc(SH).argv),
        "a fork shares its parent's argv"
    );
    s.exec(c, "/usr/bin/make");
    assert_eq!(s.proc(c).filename.as_deref(), Some(&b"/usr/bin/make"[..]));
    assert_eq!(
        s.proc(SH).filename.as_deref(),
        sh.filename.as_deref(),
        "the parent keeps its image"
    );
    assert_eq!(*s.proc(SH).argv, sh.argv[..]);
    let g = p(101, 100, 61);
    s.fork(g, c);
    assert_eq!(s.proc(g).filename.as_deref(), Some(&b"/usr/bin/make"[..]));
    assert_eq!(s.proc(g).argv, s.proc(c).argv);

    // CLONE_PARENT: the parent is sh, the image is the caller's.
    let cp = p(102, 10, 62);
    let fork = Fork {
        clone_flags: 0x8000,
        parent_start_ns: SH.start_ns(),
        creator_pid: 100,
        creator_tid: 100,
    };
    s.ev(cp, EventKind::Fork(fork));
    assert_eq!(s.parent_of(cp), Some(10));
    assert_eq!(s.proc(cp).filename.as_deref(), Some(&b"/usr/bin/make"[..]));
}

#[test]
fn pid_reuse_never_merges() {
    let mut s = Sim::with_shell();
    let old = p(100, 10, 60);
    s.fork(old, SH);
    s.exec(old, "/bin/old");
    let kid = p(200, 100, 61);
    s.fork(kid, old);
    // old's exit and reap are lost; pid 100 comes back with a later start: old's
    // release is told first, uncertain and with no reaper, then the new fork.
    let new = p(100, 10, 90);
    let r = s.fork(new, SH);
    assert_eq!(types(&r), ["reap", "fork"]);
    assert_eq!(r[0].subject.as_ref().map(|s| s.proc_id), Some(old.id()));
    assert_eq!(reap_of(&r[0]), (None, None, None, false));
    assert!(r[0].uncertain && !r[1].uncertain);
    assert_eq!(s.m.by_pid(100).map(|p| p.id), Some(new.id()));
    let o = s.proc(old);
    assert!(
        o.is_released() && o.gone_ns.is_some() && o.exit.is_none(),
        "{o:?}"
    );
    assert_eq!(s.m.stats().presumed_dead, 1);
    // Kept for its descendant's ancestry; the descendant was reparented to init.
    assert_eq!(s.parent_of(kid), Some(1));
    assert_eq!(
        s.m.lineage(kid.id()).map(|p| p.id).collect::<Vec<_>>(),
        [old.id(), SH.id(), INIT.id()]
    );
    assert_eq!(
        s.proc(new).filename,
        s.proc(SH).filename,
        "nothing inherited from the old 100"
    );

    // Late or stale events about the old process leave the new one alone.
    assert!(s.free(old).is_empty());
    assert!(s.exec(old, "/bin/ghost").is_empty());
    assert!(s.proc(new).is_alive());
    assert_eq!(s.m.stats().stale, 1);

    // A seeded process whose pid is reused by a later exec.
    let newer = p(100, 10, 95);
    s.exec(newer, "/bin/newer");
    assert!(s.m.get(new.id()).is_none(), "gone and dropped");
    assert_eq!(s.m.stats().presumed_dead, 2);
    assert_eq!(s.m.by_pid(100).map(|p| p.id), Some(newer.id()));
}

#[test]
fn orphans_go_to_the_nearest_subreaper_then_init() {
    let mut s = Sim::with_shell();
    let sr = p(20, 10, 60).subreaper();
    s.fork(sr, SH);
    // The flag comes with any event of the process (prctl after fork).
    s.exec(sr, "/usr/bin/supervisor");
    assert!(s.proc(sr).subreaper);
    let mid = p(21, 20, 61);
    let dad = p(22, 21, 62);
    let kid = p(23, 22, 63);
    let zom = p(24, 22, 64);
    s.fork(mid, sr);
    s.fork(dad, mid);
    s.fork(kid, dad);
    s.fork(zom, dad);
    s.exit(zom, 0);

    // dad dies: its live and zombie children skip mid (no subreaper) and go to sr.
    let r = s.exit(dad, 0);
    assert_eq!(process_exits(&r), 1);
    assert_eq!(s.parent_of(kid), Some(20));
    assert_eq!(s.parent_of(zom), Some(20));
    assert_eq!(s.proc(kid).ppid, 20);
    assert_eq!(
        s.m.children(sr.id()).map(|p| p.pid()).collect::<Vec<_>>(),
        [21, 23, 24]
    );
    // The zombie is now sr's to reap; its old parent cannot.
    assert!(s.wait(dad, 24).is_empty());
    let r = s.wait(sr, 24);
    assert_eq!(reap_of(&r[0]).1, Some(20));
    s.wait(mid, 22);

    // The subreaper dies: nobody else up the chain is one, so init takes them.
    s.exit(sr, 0);
    assert_eq!(s.parent_of(kid), Some(1));
    assert_eq!(s.parent_of(mid), Some(1));
    assert_eq!(s.proc(kid.ppid(1)).ppid, 1);

    // A subreaper the model is told about before any event of it shows the flag.
    let agent = p(40, 1, 70);
    let (x, y) = (p(41, 40, 71), p(42, 41, 72));
    s.fork(agent, INIT);
    assert!(s.m.set_subreaper(40, true));
    assert!(!s.m.set_subreaper(999, true));
    s.fork(x, agent);
    s.fork(y, x);
    s.exit(x, 0);
    assert_eq!(s.parent_of(y), Some(40));

    // Without init in the model, orphans become roots (ppid 1).
    let mut s = Sim::new();
    let a = p(30, 1, 60);
    let b = p(31, 30, 61);
    s.exec(a, "/bin/a");
    s.fork(b, a);
    s.exit(a, 0);
    assert_eq!(s.proc(b).parent, None);
    assert_eq!(s.proc(b).ppid, 1);
}

#[test]
fn kernel_ppid_corrects_the_model() {
    let mut s = Sim::with_shell();
    let sr = p(20, 10, 60);
    let a = p(21, 20, 61);
    let b = p(22, 21, 62);
    s.fork(sr, SH);
    s.fork(a, sr);
    s.fork(b, a);
    s.exit(a, 0);
    assert_eq!(s.parent_of(b), Some(1));
    // The model did not know sr is a subreaper; the kernel says b's parent is 20.
    s.exec(b.ppid(20), "/bin/x");
    assert_eq!(s.parent_of(b), Some(20));
    assert_eq!(
        s.m.children(sr.id()).map(|p| p.pid()).collect::<Vec<_>>(),
        [21, 22]
    );
    // And to a parent the model does not hold: a root with the number.
    s.exec(b.ppid(777), "/bin/y");
    assert_eq!(s.proc(b).parent, None);
    assert_eq!(s.proc(b).ppid, 777);
}

#[test]
fn threads_and_exactly_one_process_exit() {
    for threads in [true, false] {
        let mut s = if threads { Sim::threads() } else { Sim::new() };
        s.seed(vec![INIT.seed('S'), SH.seed('S')]);
        let pr = p(30, 10, 60);
        let mut all = s.fork(pr, SH);
        all.extend(s.thread(pr, 31));
        all.extend(s.thread(pr, 32));
        assert_eq!(
            s.proc(pr).threads.iter().copied().collect::<Vec<_>>(),
            [31, 32]
        );
        all.extend(s.exit_thread(pr.t(31)));
        // The leader leaves first; the process lives on in 32.
        all.extend(s.exit_thread(pr));
        assert!(s.proc(pr).is_alive());
        assert_eq!(s.proc(pr).threads.iter().copied().collect::<Vec<_>>(), [32]);
        let last = s.exit_with(pr.t(32), 0, true, false);
        assert_eq!(process_exits(&last), 1);
        assert_eq!(subj(&last[0]).tid, 32);
        assert_eq!(subj(&last[0]).pid, 30);
        assert_eq!(s.proc(pr).exit.unwrap().tid, 32);
        all.extend(last);
        if threads {
            assert_eq!(
                types(&all),
                ["fork", "fork", "fork", "exit", "exit", "exit"]
            );
            assert!(
                matches!(all[1].body, Body::Fork { thread: true, parent_proc_id: Some(id), .. } if id == SH.id())
            );
            assert_eq!(subj(&all[1]).tid, 31);
            assert!(matches!(
                all[4].body,
                Body::Exit {
                    thread: true,
                    lifetime_ns: None,
                    ..
                }
            ));
        } else {
            assert_eq!(types(&all), ["fork", "exit"]);
        }
        assert_eq!(process_exits(&all), 1);
        assert_eq!(types(&s.wait(SH, 30)), ["reap"]);
    }
}

#[test]
fn non_leader_exec() {
    let mut s = Sim::threads();
    s.seed(vec![INIT.seed('S'), SH.seed('S')]);
    let pr = p(30, 10, 60);
    s.fork(pr, SH);
    s.thread(pr, 31);
    s.thread(pr, 32);
    // 32 is killed by de_thread; the leader too, then 31 takes pid 30.
    s.exit_thread(pr.t(32));
    s.exit_thread(pr);
    let exec = Exec {
        old_tid: 31,
        filename: b"/bin/new".to_vec(),
        argv: vec![b"new".to_vec()],
        argv_truncated: true,
    };
    let r = s.ev(pr.comm("new"), EventKind::Exec(exec));
    assert_eq!(
        r[0].body,
        Body::Exec {
            filename: b"/bin/new".to_vec(),
            argv: vec![b"new".to_vec()],
            argv_truncated: true,
            old_tid: Some(31),
            argv_redacted: false,
        }
    );
    assert_eq!(subj(&r[0]).tid, 30);
    assert!(s.proc(pr).threads.is_empty());
    assert_eq!(s.proc(pr).execs[0].old_tid, Some(31));
    // The old leader's task is freed under tid 31: not the end of the process.
    assert!(s.free(pr.t(31)).is_empty());
    assert!(s.proc(pr).is_alive());
}

#[test]
fn exited_nodes_kept_while_descendants_live() {
    let mut s = Sim::with_shell();
    let a = p(20, 10, 60);
    let b = p(21, 20, 61);
    let c = p(22, 21, 62);
    s.fork(a, SH);
    s.fork(b, a);
    s.fork(c, b);
    s.exit(b, 0);
    s.wait(a, 21);
    s.exit(a, 0);
    s.wait(SH, 20);
    // a and b are reaped but c, their descendant, lives: both kept.
    assert!(s.proc(a).is_released() && s.proc(b).is_released());
    assert_eq!(s.parent_of(c), Some(1));
    assert_eq!(
        s.m.lineage(c.id()).map(|p| p.pid()).collect::<Vec<_>>(),
        [21, 20, 10, 1]
    );
    assert_eq!(s.m.len(), 5);
    assert_eq!(s.m.live_count(), 3);
    // c ends: the whole dead branch goes.
    s.exit(c.ppid(1), 0);
    assert_eq!(s.m.len(), 5, "c is a zombie, still held");
    s.wait(INIT, 22);
    assert_eq!(s.m.len(), 2);
    assert!(s.m.get(a.id()).is_none() && s.m.get(b.id()).is_none());
}

#[test]
fn autoreap() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60);
    s.fork(c, SH);
    let r = s.exit_with(c, 0, true, true);
    assert_eq!(types(&r), ["exit", "reap"]);
    assert_eq!(reap_of(&r[1]), (Some(0), None, None, true));
    assert_eq!(subj(&r[1]).proc_id, c.id());
    assert!(s.m.get(c.id()).is_none());
    // Its free and a wait that finds nothing change nothing.
    assert!(s.free(c).is_empty());
    assert!(s.wait(SH, 100).is_empty());
    assert_eq!(s.m.len(), 2);
}

#[test]
fn wait_reaps_only_zombie_children() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60);
    s.fork(c, SH);
    // WUNTRACED report of a stopped child.
    assert!(s.wait(SH, 100).is_empty());
    // A zombie that is not the waiter's child (e.g. a ptrace tracee).
    let other = p(200, 1, 61);
    s.fork(other, INIT);
    s.exit(other, 0);
    assert!(s.wait(SH, 200).is_empty());
    // A pid the model does not hold (another pid namespace's numbering).
    assert!(s.wait(SH, 5).is_empty());
    assert_eq!(s.m.stats().unmatched_waits, 3);
    assert!(s.proc(c).is_alive() && s.proc(other).is_zombie());
}

#[test]
fn free_stands_in_for_an_unseen_wait() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60);
    s.fork(c, SH);
    s.exit(c, 4);
    let r = s.free(c);
    assert_eq!(types(&r), ["reap"]);
    assert_eq!(
        reap_of(&r[0]),
        (Some(1_000_000), Some(10), Some(SH.comm), false)
    );
    assert!(s.m.get(c.id()).is_none());

    // Freed without an exit seen (lost): gone, told by an uncertain reap with no
    // reaper and no zombie time; no exit is invented.
    let d = p(101, 10, 61);
    s.fork(d, SH);
    let g = p(102, 101, 62);
    s.fork(g, d);
    let r = s.free(d);
    assert_eq!(types(&r), ["reap"]);
    assert_eq!(reap_of(&r[0]), (None, None, None, false));
    assert!(r[0].uncertain);
    let held = s.proc(d);
    assert!(held.gone_ns.is_some() && held.reap.is_none());
    assert_eq!(s.parent_of(g), Some(1));
    assert_eq!(s.m.stats().presumed_dead, 1);

    // The free reports the parent at that moment: here init adopted the zombie.
    s.exit(g.ppid(1), 0);
    let r = s.free(g.ppid(1));
    assert_eq!(reap_of(&r[0]).1, Some(1));
    // g's release lets d go too.
    assert!(s.m.get(d.id()).is_none());
    assert_eq!(s.m.len(), 2);
}

#[test]
fn follow_spawned_command() {
    let mut s = Sim::with_shell();
    let agent = p(5, 1, 40);
    s.fork(agent, INIT);
    assert!(!s.m.is_following());
    s.m.follow_spawned(50);
    assert!(s.m.is_following());
    assert_eq!(s.m.followed_remaining(), 1, "pending spawn counts");

    let cmd = p(50, 5, 60);
    let noise = p(60, 10, 61);
    assert!(s.fork(noise, SH).is_empty(), "unfollowed: no record");
    assert_eq!(types(&s.fork(cmd, agent)), ["fork"]);
    assert!(s.proc(cmd).followed);
    assert_eq!(s.m.followed_remaining(), 1);
    let kid = p(51, 50, 62);
    let orphan = p(52, 51, 63);
    s.fork(kid, cmd);
    s.fork(orphan, kid);
    assert_eq!(s.m.followed_remaining(), 3);
    assert!(s.exec(noise, "/bin/noise").is_empty());
    assert!(s.exit(noise, 0).is_empty());
    assert!(s.wait(SH, 60).is_empty());

    s.exit(kid, 0);
    assert_eq!(types(&s.wait(cmd, 51)), ["reap"]);
    s.exit(cmd, 0);
    // The agent is not followed but the record is about the command.
    assert_eq!(types(&s.wait(agent, 50)), ["reap"]);
    // The orphan outlives the command: still followed, under init.
    assert_eq!(s.m.followed_remaining(), 1);
    assert_eq!(s.parent_of(orphan), Some(1));
    let o = orphan.ppid(1);
    let g = p(53, 52, 64);
    assert_eq!(types(&s.fork(g, o)), ["fork"]);
    s.run(p(54, 1, 65), INIT);
    assert_eq!(s.m.followed_remaining(), 2);
    assert_eq!(types(&s.exit(o, 0)), ["exit"]);
    assert_eq!(types(&s.wait(INIT, 52)), ["reap"]);
    s.exit(g.ppid(1), 0);
    assert_eq!(s.m.followed_remaining(), 1, "a zombie still counts");
    s.wait(INIT, 53);
    assert_eq!(s.m.followed_remaining(), 0);
    // Lost records always go out.
    let mut out = Vec::new();
    s.m.lost(kind::EXEC, 1, s.now, &mut out);
    assert_eq!(types(&out), ["lost"]);
}

#[test]
fn follow_spawned_after_its_fork_was_applied() {
    let mut s = Sim::with_shell();
    let cmd = p(50, 10, 60);
    s.fork(cmd, SH);
    s.m.follow_spawned(50);
    assert!(s.proc(cmd).followed);
    assert_eq!(s.m.followed_remaining(), 1);
    assert!(s.exec(SH, "/bin/sh").is_empty());
    assert_eq!(types(&s.exec(cmd, "/bin/cmd")), ["exec"]);
    // Its fork was lost: the first event of the pid marks it all the same.
    s.m.follow_spawned(70);
    assert_eq!(types(&s.exec(p(70, 10, 61), "/bin/other")), ["exec"]);
    assert_eq!(s.m.followed_remaining(), 2);
    // Freed without exit seen: no longer counted.
    s.free(p(70, 10, 61));
    s.exit(cmd, 0);
    s.wait(SH, 50);
    assert_eq!(s.m.followed_remaining(), 0);
}

#[test]
fn follow_pid() {
    let mut s = Sim::new();
    let a = p(20, 1, 60);
    let b = p(21, 20, 61);
    let mut scratch = Vec::new();
    s.m.seed(
        vec![INIT.seed('S'), SH.seed('S'), a.seed('S'), b.seed('S')],
        s.now,
        &mut scratch,
    );
    assert_eq!(scratch.len(), 4);
    assert!(!s.m.follow_pid(99));
    assert!(!s.m.is_following());
    assert!(s.m.follow_pid(20));
    assert_eq!(s.m.followed_remaining(), 2, "current descendants included");
    assert!(s.m.is_followed_pid(21) && !s.m.is_followed_pid(10) && !s.m.is_followed_pid(99));
    let mut out = Vec::new();
    s.m.snapshot(s.now, &mut out);
    assert_eq!(
        out.iter().map(|r| subj(r).pid).collect::<Vec<_>>(),
        [20, 21]
    );
    assert!(s.fork(p(30, 10, 62), SH).is_empty());
    assert_eq!(types(&s.fork(p(22, 21, 62), b)), ["fork"]);
}

#[test]
fn seeding_parents_first_with_zombies() {
    let mut s = Sim::new();
    let z = p(11, 10, 55);
    let r = s.seed(vec![z.seed('Z'), SH.seed('S'), INIT.seed('S')]);
    assert_eq!(
        r.iter().map(|r| subj(r).pid).collect::<Vec<_>>(),
        [1, 10, 11]
    );
    assert!(r.iter().all(|r| r.ktime_ns == s.now));
    let Body::Process {
        state,
        ref filename,
        ref argv,
        ..
    } = r[2].body
    else {
        panic!("{:?}", r[2])
    };
    assert_eq!(
        (state, filename.as_deref(), argv.len()),
        (Some('Z'), Some(&b"/bin/p11"[..]), 1)
    );
    let sub = subj(&r[1]);
    assert_eq!(
        (sub.ppid, sub.uid, sub.cgroup_id, sub.comm),
        (1, Some(0), 5, SH.comm)
    );
    assert_eq!(s.parent_of(SH), Some(1));
    assert!(s.proc(z).is_zombie());
    assert_eq!(s.proc(z).start_ns, None);
    assert_eq!(s.m.zombie_count(), 1);
    assert_eq!(s.m.live_count(), 2);
    // Reaped later: when it exited is unknown.
    let r = s.wait(SH, 11);
    assert_eq!(reap_of(&r[0]), (None, Some(10), Some(SH.comm), false));

    // Start-up race: an exit event for a process the scan saw as a zombie is news.
    let y = p(12, 10, 56);
    s.seed(vec![y.seed('Z')]);
    let r = s.exit(y, 7);
    assert!(matches!(
        r[0].body,
        Body::Exit {
            exit_code: Some(7),
            lifetime_ns: Some(_),
            ..
        }
    ));
    assert!(s.exit(y, 7).is_empty(), "the second one is a repeat");
    // A seeded process's exit: the event gives its exact start.
    let w = p(13, 10, 57);
    s.seed(vec![w.seed('S')]);
    let t = s.now + 1_000_000;
    let r = s.exit(w, 0);
    assert!(matches!(r[0].body, Body::Exit { lifetime_ns: Some(l), .. } if l == t - w.start_ns()));
    // An event without a start time is matched by pid; the lifetime then comes from
    // the /proc ticks (10 ms precision).
    let v = p(14, 10, 58);
    s.seed(vec![v.seed('S')]);
    let mut task = v.task();
    task.start_ns = 0;
    let ev = Event {
        ktime_ns: t + 5,
        task,
        kind: EventKind::Exit(Exit {
            status: 0,
            group_dead: true,
            autoreap: false,
        }),
    };
    let mut r = Vec::new();
    s.m.apply(ev, &mut r);
    assert_eq!(subj(&r[0]).proc_id, v.id());
    assert!(
        matches!(r[0].body, Body::Exit { lifetime_ns: Some(l), .. } if l == t + 5 - 58 * NS_PER_TICK)
    );
}

#[test]
fn fork_of_a_seeded_process_in_the_start_up_race() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60).comm("sleep");
    s.seed(vec![c.seed('S')]);
    // Seeding again what is held repeats nothing.
    assert!(s.seed(vec![c.seed('S'), SH.seed('S')]).is_empty());
    let r = s.fork(c, SH);
    assert_eq!(types(&r), ["fork"]);
    assert_eq!(s.proc(c).start_ns, Some(c.start_ns()));
    assert_eq!(s.proc(c).filename.as_deref(), Some(&b"/bin/sleep"[..]));
    assert_eq!(s.m.len(), 3);
}

#[test]
fn lost_events() {
    let mut s = Sim::with_shell();
    assert_eq!(s.m.uncertain_since(), None);
    let mut out = Vec::new();
    s.m.lost(kind::FORK, 3, 500, &mut out);
    s.m.lost(kind::WAIT, 0, 600, &mut out);
    s.m.lost(99, 2, 700, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        Record {
            ktime_ns: 500,
            subject: None,
            body: Body::Lost {
                kind: "fork".into(),
                count: 3
            },
            uncertain: false
        }
    );
    assert_eq!(
        out[1].body,
        Body::Lost {
            kind: "unknown".into(),
            count: 2
        }
    );
    assert_eq!(s.m.uncertain_since(), Some(500));
    assert_eq!(s.m.stats().lost, 5);
}

#[test]
fn losses_mark_the_processes_they_may_concern() {
    let mut s = Sim::with_shell();
    // Without losses nothing is marked.
    let a = p(100, 10, 60);
    s.fork(a, SH);
    let r = s.exit(a, 0);
    assert!(!r[0].uncertain);
    let r = s.wait(SH, 100);
    assert_eq!(types(&r), ["reap"]);
    assert!(!r[0].uncertain);

    let b = p(101, 10, 61);
    s.fork(b, SH);
    let t = s.tick();
    let mut out = Vec::new();
    s.m.lost(kind::EXIT, 1, t, &mut out);
    s.m.lost(kind::FORK, 2, t, &mut out);
    assert!(out.iter().all(|r| !r.uncertain));
    // Alive at the loss: marked, and so are init and the shell.
    assert!(s.proc(b).uncertain && s.proc(SH).uncertain && s.proc(INIT).uncertain);
    assert_eq!(s.m.uncertain_count(), 3);
    // Started before the loss but applied after it (its fork was still in the
    // ring): marked too.
    let c = p(102, 10, 62);
    s.fork(c, SH);
    assert!(s.proc(c).uncertain);
    // Started after the loss: its whole life is seen.
    let d = p(103, 10, t / NS_PER_TICK + 1);
    let r = s.fork(d, SH);
    assert!(!r[0].uncertain && !s.proc(d).uncertain);

    // The ends of a marked process say so; a fork or exec is one event, whole.
    let r = s.exec(b, "/bin/b");
    assert!(!r[0].uncertain);
    let r = s.exit(b, 0);
    assert_eq!(types(&r), ["exit"]);
    assert!(r[0].uncertain);
    let r = s.wait(SH, 101);
    assert_eq!(types(&r), ["reap"]);
    assert!(r[0].uncertain);
    let r = s.exit(d, 0);
    assert!(!r[0].uncertain);
    let r = s.wait(SH, 103);
    assert!(!r[0].uncertain);

    // The snapshot a new output file starts with marks the held ones.
    let mut snap = Vec::new();
    s.m.snapshot(s.now, &mut snap);
    let marked: Vec<(u32, bool)> = snap.iter().map(|r| (subj(r).pid, r.uncertain)).collect();
    assert_eq!(marked, [(1, true), (10, true), (102, true)]);

    // A later loss marks what lives then, and only that.
    let e = p(104, 10, t / NS_PER_TICK + 2);
    s.fork(e, SH);
    let t2 = s.tick();
    s.m.lost(kind::WAIT, 1, t2, &mut out);
    assert!(s.proc(e).uncertain);
    assert_eq!(s.m.uncertain_since(), Some(t));
}

#[test]
fn a_process_found_gone_gets_an_uncertain_reap() {
    let mut s = Sim::with_shell();
    let a = p(100, 10, 60);
    s.fork(a, SH);
    s.exec(a, "/bin/a");
    let t = s.tick();
    s.m.lost(kind::EXIT, 1, t, &mut Vec::new());
    // The agent found it gone from /proc: released, with a reap record that
    // names no reaper and no zombie time, and no invented exit.
    let mut out = Vec::new();
    s.m.vanished(a.id(), t + 5, &mut out);
    assert_eq!(types(&out), ["reap"]);
    assert_eq!(subj(&out[0]).proc_id, a.id());
    assert_eq!(out[0].ktime_ns, t + 5);
    assert_eq!(reap_of(&out[0]), (None, None, None, false));
    assert!(out[0].uncertain);
    assert!(s.m.get(a.id()).is_none_or(|p| p.is_released()));
    assert_eq!(s.m.stats().presumed_dead, 1);
    s.m.check_invariants();
    // Found gone twice: told once.
    let mut again = Vec::new();
    s.m.vanished(a.id(), t + 6, &mut again);
    assert!(again.is_empty());
}

#[test]
fn exec_history_is_bounded() {
    let mut s = Sim::with_shell();
    let c = p(100, 10, 60);
    s.fork(c, SH);
    for i in 0..EXEC_HISTORY_MAX + 5 {
        s.exec(c, &format!("/bin/{i}"));
    }
    let pr = s.proc(c);
    assert_eq!(pr.execs.len(), EXEC_HISTORY_MAX);
    assert_eq!(pr.execs_dropped, 5);
    assert_eq!(
        *pr.execs.last().unwrap().filename,
        *format!("/bin/{}", EXEC_HISTORY_MAX + 4).as_bytes()
    );
}

#[test]
fn memory_stays_bounded_over_many_cycles() {
    let mut s = Sim::with_shell();
    let mut most = 0;
    for i in 0..10_000u32 {
        // Pids wrap as the kernel's do; starts only grow.
        let pid = 1000 + i % 3000;
        let start = 100 + u64::from(i) * 3;
        let c = p(pid, 10, start);
        s.fork(c, SH);
        s.exec(c, "/bin/true");
        if i % 10 == 0 {
            // A double fork: the grandchild outlives its parent, then init reaps it.
            let g = p(10_000 + i % 3000, pid, start + 1);
            s.fork(g, c);
            s.exit(c, 0);
            s.wait(SH, pid);
            most = most.max(s.m.len());
            s.exit(g.ppid(1), 0);
            s.wait(INIT, g.pid);
        } else {
            s.exit(c, 0);
            s.wait(SH, pid);
        }
        most = most.max(s.m.len());
    }
    assert_eq!(s.m.len(), 2);
    assert!(most <= 4, "held up to {most} processes");
    assert_eq!(s.m.stats().presumed_dead, 0);
}

#[test]
fn memory_stays_bounded_when_ends_are_lost() {
    // Exits and waits all lost: pid reuse and frees are what clean up.
    let mut s = Sim::with_shell();
    for i in 0..10_000u32 {
        let c = p(1000 + i % 500, 10, 100 + u64::from(i));
        s.fork(c, SH);
        if i % 2 == 0 {
            s.free(c);
        }
    }
    assert!(s.m.len() <= 2 + 500, "held {}", s.m.len());
}

/// Random sequences over a small pid space: no panic, invariants hold after every event.
#[test]
fn random_event_sequences_keep_the_tree_sound() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..20 {
        let mut s = if round % 2 == 0 {
            Sim::threads()
        } else {
            Sim::new()
        };
        if round % 3 == 0 {
            s.seed(vec![INIT.seed('S'), SH.seed('S'), p(3, 1, 2).seed('Z')]);
        }
        if round % 4 == 0 {
            s.m.follow_spawned(1 + rnd(12) as u32);
        }
        for _ in 0..2_000 {
            let pid = 1 + rnd(12) as u32;
            let mut who = p(pid, rnd(13) as u32, rnd(6));
            if rnd(4) == 0 {
                who = who.t(100 + rnd(3) as u32);
            }
            if rnd(5) == 0 {
                who = who.subreaper();
            }
            let kind = match rnd(7) {
                0 | 1 => EventKind::Fork(Fork {
                    clone_flags: rnd(2),
                    parent_start_ns: rnd(6) * NS_PER_TICK,
                    creator_pid: rnd(13) as u32,
                    creator_tid: 0,
                }),
                2 => EventKind::Exec(Exec {
                    old_tid: rnd(104) as u32,
                    ..Exec::default()
                }),
                3 => EventKind::ExecFailed(ExecFailed::default()),
                4 => EventKind::Exit(Exit {
                    status: rnd(0x10000) as u32,
                    group_dead: rnd(3) != 0,
                    autoreap: rnd(4) == 0,
                }),
                5 => EventKind::Wait(Wait {
                    child_pid: rnd(13) as u32,
                    options: wait_options::WEXITED,
                }),
                _ => EventKind::Free,
            };
            s.ev(who, kind);
            if rnd(200) == 0 {
                let mut out = Vec::new();
                s.m.lost(rnd(8) as u32, 1, s.now, &mut out);
            }
        }
    }
}

fn window_of(r: &Record) -> Option<crate::record::ReapWindow> {
    match &r.body {
        Body::Reap { inferred, .. } => *inferred,
        other => panic!("not a reap: {other:?}"),
    }
}

#[test]
fn an_orphaned_zombie_found_gone_is_reaped_by_its_adopter_inferred() {
    let mut s = Sim::with_shell();
    let dad = p(100, 10, 60);
    let kid = p(101, 100, 61);
    s.fork(dad, SH);
    s.fork(kid, dad);
    s.exit(kid, 0);
    let exited = s.now;
    // dad dies: init adopts the zombie (kernel/exit.c find_new_reaper) and reaps
    // it with no wait the probes see.
    s.exit(dad, 0);
    s.wait(SH, 100);
    assert_eq!(s.parent_of(kid), Some(1));
    let seen = s.tick();
    let gone = s.tick();
    let mut out = Vec::new();
    s.m.reaped_unseen(kid.id(), Some(seen), gone, &mut out);
    s.m.check_invariants();
    assert_eq!(types(&out), ["reap"]);
    assert_eq!(out[0].ktime_ns, gone);
    assert!(!out[0].uncertain);
    assert_eq!(
        reap_of(&out[0]),
        (Some(gone - exited), Some(1), Some(INIT.comm), false)
    );
    let w = window_of(&out[0]).expect("inferred");
    assert_eq!((w.after_ns, w.before_ns), (Some(seen), gone));
    assert!(s.m.get(kid.id()).is_none_or(|p| p.is_released()));
    assert_eq!(s.m.stats().inferred_reaps, 1);
    assert_eq!(s.m.zombie_count(), 0);

    // Its free, late (an RCU callback), and a repeated finding change nothing.
    assert!(s.free(kid.ppid(1)).is_empty());
    s.m.reaped_unseen(kid.id(), Some(seen), s.now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(s.m.stats().inferred_reaps, 1);
}

#[test]
fn an_inferred_reap_never_overrides_a_reap_event() {
    let mut s = Sim::with_shell();
    let kid = p(100, 10, 60);
    s.fork(kid, SH);
    s.exit(kid, 0);
    // The agent found it gone at `gone`, but its wait was still in the ring; the
    // watch layer applies events up to `gone` and the slack first, so the wait comes
    // first and the finding is moot.
    let gone = s.tick();
    let r = s.wait(SH, 100);
    assert_eq!(window_of(&r[0]), None);
    let mut out = Vec::new();
    s.m.reaped_unseen(kid.id(), None, gone, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.m.stats().inferred_reaps, 0);

    // A zombie whose exit came with the window's start: never seen present, the
    // window opens at its exit.
    let z = p(102, 10, 62);
    s.fork(z, SH);
    s.exit(z, 0);
    let exited = s.now;
    let gone = s.tick();
    s.m.reaped_unseen(z.id(), None, gone, &mut out);
    let w = window_of(&out[0]).expect("inferred");
    assert_eq!((w.after_ns, w.before_ns), (Some(exited), gone));
    assert_eq!(reap_of(&out[0]).1, Some(10));

    // A process the model thinks alive lost its exit: not a zombie reap but a
    // presumed death (uncertain, no reaper), as after losses.
    let a = p(103, 10, 63);
    s.fork(a, SH);
    out.clear();
    s.m.reaped_unseen(a.id(), None, s.now, &mut out);
    assert_eq!(reap_of(&out[0]), (None, None, None, false));
    assert!(out[0].uncertain && window_of(&out[0]).is_none());
    s.m.check_invariants();
}

#[test]
fn zombies_are_listed_with_their_exit_time() {
    let mut s = Sim::with_shell();
    let (a, b) = (p(100, 10, 60), p(101, 10, 61));
    s.fork(a, SH);
    s.fork(b, SH);
    s.exit(a, 0);
    let exited = s.now;
    s.seed(vec![p(102, 10, 62).seed('Z')]);
    let mut z: Vec<_> = s.m.zombies().collect();
    z.sort();
    assert_eq!(z, [(a.id(), Some(exited)), (p(102, 10, 62).id(), None)]);
}

#[test]
fn a_null_infop_wait_reaps_the_only_zombie_child_exactly() {
    let mut s = Sim::with_shell();
    let sr = p(20, 10, 60).subreaper();
    s.fork(sr, SH);
    let (a, b, c) = (p(21, 20, 61), p(22, 20, 62), p(23, 20, 63));
    s.fork(a, sr);
    s.fork(b, sr);
    s.fork(c, sr);
    // One zombie child, two live ones: the wait collected that one, at its time.
    s.exit(a, 0);
    let exited = s.now;
    let r = s.wait_null_infop(sr, 0);
    assert_eq!(types(&r), ["reap"]);
    assert_eq!(subj(&r[0]).pid, 21);
    assert_eq!(r[0].ktime_ns, s.now);
    assert_eq!(
        reap_of(&r[0]),
        (Some(s.now - exited), Some(20), Some(sr.comm), false)
    );
    assert_eq!(window_of(&r[0]), None, "exact, not inferred");
    assert_eq!(s.m.stats().only_child_reaps, 1);
    // One at a time again: the next exit, the next wait.
    s.exit(b, 0);
    let r = s.wait_null_infop(sr, 0);
    assert_eq!(subj(&r[0]).pid, 22);
    // Its late free changes nothing.
    assert!(s.free(b).is_empty());
    assert_eq!(s.m.stats().only_child_reaps, 2);
    assert_eq!(s.m.zombie_count(), 0);
}

#[test]
fn a_null_infop_wait_with_several_zombies_or_odd_options_names_nobody() {
    let mut s = Sim::with_shell();
    let sr = p(20, 10, 60).subreaper();
    s.fork(sr, SH);
    let (a, b) = (p(21, 20, 61), p(22, 20, 62));
    s.fork(a, sr);
    s.fork(b, sr);
    s.exit(a, 0);
    s.exit(b, 0);
    // Two waitable: either one went; the reaps stay for /proc to tell.
    assert!(s.wait_null_infop(sr, 0).is_empty());
    assert_eq!(s.m.zombie_count(), 2);
    assert_eq!(s.m.stats().unnamed_waits, 1);
    // The agent found `a` gone (the first wait took it): the inferred reap. The
    // second wait then can only have taken `b`.
    let mut out = Vec::new();
    let gone = s.tick();
    s.m.reaped_unseen(a.id(), None, gone, &mut out);
    assert!(window_of(&out[0]).is_some());
    let r = s.wait_null_infop(sr, 0);
    assert_eq!(subj(&r[0]).pid, 22);
    assert_eq!(window_of(&r[0]), None);

    // A wait that may have reported a stopped child, or left it waitable, or
    // found nothing, reaps nobody.
    let c = p(23, 20, 63);
    s.fork(c, sr);
    s.exit(c, 0);
    for extra in [
        wait_options::WSTOPPED,
        wait_options::WCONTINUED,
        wait_options::WNOWAIT,
        wait_options::WNOHANG,
    ] {
        assert!(s.wait_null_infop(sr, extra).is_empty(), "{extra:#x}");
    }
    // Without WEXITED it cannot reap at all.
    let r = s.ev(
        sr,
        EventKind::Wait(Wait {
            child_pid: 0,
            options: wait_options::WSTOPPED,
        }),
    );
    assert!(r.is_empty());
    // Another process's zombie is not the waiter's.
    assert!(s.wait_null_infop(SH, 0).is_empty());
    assert_eq!(s.m.zombie_count(), 1);

    // After losses the waiter's zombies may be incomplete: nobody is named.
    let mut out = Vec::new();
    let t = s.tick();
    s.m.lost(kind::EXIT, 1, t, &mut out);
    assert!(s.wait_null_infop(sr, 0).is_empty());
    assert_eq!(s.m.zombie_count(), 1);
}
