//! The view from hand-written records: the state's rules, the rows, and whole
//! frames drawn into ratatui's TestBackend, compared as text snapshots.

use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, App, render_text};
use super::rows::{self, Key, Options, Sort};
use super::state::State;
use crate::event::Comm;
use crate::record::{Alert, AlertKind, Body, ProcId, Record, Subject};

const S: u64 = 1_000_000_000;

fn subject(pid: u32, ppid: u32, comm: &str, cgroup: &str) -> Subject {
    Subject {
        pid,
        tid: pid,
        ppid,
        proc_id: ProcId {
            pid,
            start_ticks: u64::from(pid),
        },
        comm: Comm::new(comm.as_bytes()),
        uid: Some(0),
        cgroup_id: 1,
        cgroup: Some(Arc::from(cgroup)),
        unit: None,
        container_id: None,
        pod_uid: None,
    }
}

fn rec(t: u64, s: Subject, body: Body) -> Record {
    Record {
        ktime_ns: t,
        subject: Some(s),
        body,
        uncertain: false,
    }
}

fn process(pid: u32, ppid: u32, comm: &str, file: &str, cg: &str) -> Record {
    rec(
        S,
        subject(pid, ppid, comm, cg),
        Body::Process {
            filename: Some(file.as_bytes().to_vec()),
            argv: vec![],
            state: Some('S'),
            argv_redacted: false,
        },
    )
}

fn fork(t: u64, pid: u32, ppid: u32, comm: &str, cg: &str) -> Record {
    rec(
        t,
        subject(pid, ppid, comm, cg),
        Body::Fork {
            parent_proc_id: Some(ProcId {
                pid: ppid,
                start_ticks: u64::from(ppid),
            }),
            thread: false,
            clone_flags: None,
        },
    )
}

fn exec(t: u64, pid: u32, ppid: u32, comm: &str, file: &str, cg: &str) -> Record {
    rec(
        t,
        subject(pid, ppid, comm, cg),
        Body::Exec {
            filename: file.as_bytes().to_vec(),
            argv: vec![],
            argv_truncated: false,
            argv_redacted: false,
            old_tid: None,
        },
    )
}

fn exit(t: u64, pid: u32, ppid: u32, comm: &str, signal: Option<u8>) -> Record {
    let cg = if comm == "cron" { CRON } else { SSH };
    rec(
        t,
        subject(pid, ppid, comm, cg),
        Body::Exit {
            exit_code: signal.is_none().then_some(0),
            signal,
            core_dumped: false,
            lifetime_ns: None,
            thread: false,
        },
    )
}

fn reap(t: u64, pid: u32, ppid: u32, comm: &str) -> Record {
    rec(
        t,
        subject(pid, ppid, comm, "/"),
        Body::Reap {
            zombie_ns: Some(1000),
            reaper_pid: Some(ppid),
            reaper_comm: None,
            autoreap: false,
            inferred: None,
        },
    )
}

const SSH: &str = "/system.slice/ssh.service";
const CRON: &str = "/system.slice/cron.service";

/// A machine: systemd → sshd → bash → storm (forking 40/s for 12 s, its
/// children running /bin/true; three `sleep`s still alive), and cron holding
/// two zombies, one 15 s old, one 12 s old; one crash. Ends at 20 s.
fn storm_records() -> Vec<Record> {
    let mut v = vec![
        process(1, 0, "systemd", "/usr/lib/systemd/systemd", "/init.scope"),
        process(100, 1, "sshd", "/usr/sbin/sshd", SSH),
        process(200, 100, "bash", "/usr/bin/bash", SSH),
        process(300, 1, "cron", "/usr/sbin/cron", CRON),
        fork(2 * S, 250, 200, "bash", SSH),
        exec(2 * S + 1000, 250, 200, "bash", "/usr/local/bin/storm", SSH),
    ];
    // cron's two zombies and one crashed child.
    for (pid, at) in [(400u32, 5 * S), (401, 8 * S)] {
        v.push(fork(at - S, pid, 300, "cron", CRON));
        v.push(exit(at, pid, 300, "cron", None));
    }
    v.push(fork(9 * S, 402, 300, "cron", CRON));
    v.push(exit(9 * S + 5, 402, 300, "cron", Some(11)));
    v.push(reap(9 * S + 10, 402, 300, "cron"));
    // The storm: 40 forks a second from 8 s to 20 s.
    for (i, pid) in (0..12 * 40).zip(1000u32..) {
        let t = 8 * S + i * (S / 40);
        v.push(fork(t, pid, 250, "storm", SSH));
        v.push(exec(t + 10, pid, 250, "storm", "/bin/true", SSH));
        v.push(exit(t + 20, pid, 250, "true", None));
        v.push(reap(t + 30, pid, 250, "storm"));
    }
    for k in 0..3 {
        v.push(fork(19 * S + k, 5000 + k as u32, 250, "storm", SSH));
        v.push(exec(
            19 * S + k + 5,
            5000 + k as u32,
            250,
            "storm",
            "/bin/sleep",
            SSH,
        ));
    }
    v.sort_by_key(|r| r.ktime_ns);
    v
}

fn state_of(records: &[Record], now: u64) -> State {
    let mut st = State::default();
    for r in records {
        st.apply(r);
    }
    st.tick(now);
    st
}

fn app_of(records: &[Record], now: u64) -> App {
    let mut app = App::new(false, None);
    app.state = state_of(records, now);
    app
}

#[test]
fn rates_zombies_and_reaps_follow_the_records() {
    let st = state_of(&storm_records(), 20 * S);
    let storm = &st.procs[&ProcId {
        pid: 250,
        start_ticks: 250,
    }];
    assert_eq!(storm.name, "storm");
    // 40 in the last full second (19 s), and the 3 sleeps on top.
    assert_eq!(storm.rate_1s(st.now_ns), 43);
    assert_eq!(storm.rate_10s(st.now_ns), 41);
    assert_eq!(storm.child_exits, 480);
    assert_eq!(storm.child_crashes, 0);
    // The reaped are forgotten: systemd, sshd, bash, storm, cron, 2 zombies, 3 sleeps.
    assert_eq!(st.procs.len(), 10);
    let (n, oldest) = st.zombies();
    assert_eq!((n, oldest), (2, Some(15 * S)));
    let cron = &st.procs[&ProcId {
        pid: 300,
        start_ticks: 300,
    }];
    assert_eq!((cron.child_exits, cron.child_crashes), (3, 1));
    assert_eq!(st.forks.rate_1s(st.now_ns), 43);
    assert_eq!(st.execs.rate_1s(st.now_ns), 43);
    assert_eq!(st.exits.rate_1s(st.now_ns), 40);
}

#[test]
fn a_forker_falls_quiet_and_its_rate_memory_goes() {
    let mut st = state_of(&storm_records(), 20 * S);
    st.tick(40 * S);
    let storm = &st.procs[&ProcId {
        pid: 250,
        start_ticks: 250,
    }];
    assert_eq!(
        (storm.rate_1s(st.now_ns), storm.rate_10s(st.now_ns)),
        (0, 0)
    );
    assert!(storm.forks.is_none());
}

#[test]
fn threads_count_as_their_process_forks_and_lost_events_add_up() {
    let mut st = State::default();
    st.apply(&process(10, 1, "java", "/usr/bin/java", "/"));
    for i in 0..5 {
        let mut s = subject(10, 1, "java", "/");
        s.tid = 11 + i;
        st.apply(&rec(
            2 * S + u64::from(i),
            s,
            Body::Fork {
                parent_proc_id: None,
                thread: true,
                clone_flags: None,
            },
        ));
    }
    for n in [3, 4] {
        st.apply(&Record {
            ktime_ns: 2 * S,
            subject: None,
            body: Body::Lost {
                kind: "fork".into(),
                count: n,
            },
            uncertain: false,
        });
    }
    st.tick(3 * S);
    let java = st.procs.values().find(|p| p.name == "java").unwrap();
    assert_eq!(java.rate_1s(st.now_ns), 5);
    assert_eq!(st.procs.len(), 1, "a thread is not a process row");
    assert_eq!(st.lost, vec![("fork".to_string(), 7)]);
}

#[test]
fn a_reused_pid_replaces_the_process_whose_end_was_lost() {
    let mut st = State::default();
    st.apply(&process(10, 1, "old", "/bin/old", "/"));
    let mut s = subject(10, 1, "new", "/");
    s.proc_id.start_ticks = 999;
    st.apply(&rec(
        2 * S,
        s,
        Body::Exec {
            filename: b"/bin/new".to_vec(),
            argv: vec![],
            argv_truncated: false,
            argv_redacted: false,
            old_tid: None,
        },
    ));
    let names: Vec<&str> = st.procs.values().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["new"]);
}

#[test]
fn the_storm_culprit_heads_the_rows_with_its_parent_named() {
    let st = state_of(&storm_records(), 20 * S);
    let rows = rows::rows(&st, &Options::default());
    assert_eq!(rows[0].pid, Some(250));
    assert_eq!(rows[0].label, "storm ← bash 200");
    // Its three sleeping children fold into one line.
    assert_eq!(rows[1].label, "3*[sleep]");
    assert_eq!(rows[1].count, 3);
    // It is not shown twice.
    assert_eq!(rows.iter().filter(|r| r.pid == Some(250)).count(), 1);
    // Its parent, which forked it once 18 s ago, is in the tree, not lifted.
    assert!(rows.iter().any(|r| r.label == "bash" && r.depth == 2));
    // By pid there is no lifting: systemd first.
    let by_pid = rows::rows(
        &st,
        &Options {
            sort: Sort::Pid,
            ..Options::default()
        },
    );
    assert_eq!(by_pid[0].label, "systemd");
    assert!(by_pid.iter().any(|r| r.label == "storm" && r.depth == 3));
}

#[test]
fn filter_keeps_matches_and_their_ancestors() {
    let st = state_of(&storm_records(), 20 * S);
    let opts = Options {
        filter: "CRON".into(),
        sort: Sort::Pid,
        ..Options::default()
    };
    let labels: Vec<String> = rows::rows(&st, &opts)
        .into_iter()
        .map(|r| r.label)
        .collect();
    assert_eq!(labels, ["systemd", "cron", "2*[cron]"]);
}

#[test]
fn enter_folds_a_process_and_unfolds_a_group() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.refresh();
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    let down = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    // On the culprit: its children fold away.
    assert_eq!(app.key(enter), Action::Redraw);
    assert_eq!(app.screen.rows[0].fold, Some(true));
    assert_ne!(app.screen.rows[1].label, "3*[sleep]");
    app.key(enter);
    app.key(down);
    assert_eq!(app.screen.rows[app.look.selected].label, "3*[sleep]");
    app.key(enter);
    let sleeps = app
        .screen
        .rows
        .iter()
        .filter(|r| r.label == "sleep")
        .count();
    assert_eq!(sleeps, 3);
    assert!(matches!(app.screen.rows[1].key, Key::Proc(_)));
}

#[test]
fn slash_filters_as_typed_and_q_or_ctrl_c_quit() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.refresh();
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    app.key(key('/'));
    for c in "sle".chars() {
        app.key(key(c));
    }
    // While typing, `q` is text, not quit.
    assert_eq!(app.key(key('q')), Action::Redraw);
    app.key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
    app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(app.look.filter, "sle");
    assert!(app.screen.rows.iter().any(|r| r.label == "3*[sleep]"));
    assert!(!app.screen.rows.iter().any(|r| r.label.contains("cron")));
    assert_eq!(app.key(key('q')), Action::Quit);
    assert_eq!(
        app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
}

#[test]
fn pause_freezes_the_screen_while_records_go_on() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.refresh();
    app.key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE));
    let before = app.screen.rows.len();
    app.state.apply(&process(9000, 1, "late", "/bin/late", "/"));
    app.refresh();
    assert_eq!(app.screen.rows.len(), before);
    assert!(app.state.procs.values().any(|p| p.name == "late"));
    app.key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE));
    assert_eq!(app.screen.rows.len(), before + 1);
}

#[test]
fn frame_storm_culprit_on_top_80x24() {
    let mut app = app_of(&storm_records(), 20 * S);
    insta::assert_snapshot!(render_text(&mut app, 80, 24));
}

#[test]
fn frame_zombie_ages_sorted_by_zombies() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE));
    app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE));
    app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE));
    assert_eq!(app.opts.sort, Sort::Zombies);
    insta::assert_snapshot!(render_text(&mut app, 100, 24));
}

#[test]
fn frame_grouped_by_cgroup() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.key(KeyEvent::new(KeyCode::Char('g'), KeyModifiers::NONE));
    insta::assert_snapshot!(render_text(&mut app, 100, 24));
}

#[test]
fn frame_lost_events_banner_and_alerts() {
    let mut v = storm_records();
    v.push(Record {
        ktime_ns: 19 * S,
        subject: None,
        body: Body::Lost {
            kind: "exec".into(),
            count: 1234,
        },
        uncertain: false,
    });
    let storm = subject(250, 200, "storm", SSH);
    v.push(rec(
        18 * S,
        storm,
        Body::Alert(Box::new(Alert {
            kind: AlertKind::ForkStorm,
            end: false,
            scope: "process".into(),
            since_ns: 10 * S,
            filename: Some(b"/usr/local/bin/storm".to_vec()),
            argv: vec![b"storm".to_vec()],
            parent: None,
            figures: vec![],
            executables: vec![],
            exits: vec![],
            errno: None,
            what: "forked 40/s for 8.0s".into(),
            message: None,
        })),
    ));
    v.sort_by_key(|r| r.ktime_ns);
    let mut app = app_of(&v, 20 * S);
    insta::assert_snapshot!(render_text(&mut app, 80, 24));
}

#[test]
fn frame_help_over_the_table() {
    let mut app = app_of(&storm_records(), 20 * S);
    app.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    insta::assert_snapshot!(render_text(&mut app, 80, 24));
}

#[test]
fn a_storm_worker_heads_the_launcher_that_forked_it_once() {
    let mut v = vec![
        process(1, 0, "systemd", "/sbin/init", "/"),
        process(600, 1, "launch", "/bin/launch", "/"),
    ];
    v.push(fork(18 * S, 601, 600, "launch", "/"));
    for i in 0..100u32 {
        let t = 19 * S + u64::from(i) * (S / 200);
        v.push(fork(t, 1000 + i, 601, "launch", "/"));
        v.push(exit(t + 1, 1000 + i, 601, "launch", None));
        v.push(reap(t + 2, 1000 + i, 601, "launch"));
    }
    let st = state_of(&v, 20 * S);
    let rows = rows::rows(&st, &Options::default());
    let labels: Vec<(Option<u32>, &str)> = rows.iter().map(|r| (r.pid, r.label.as_str())).collect();
    assert_eq!(
        labels,
        [
            (Some(601), "launch ← launch 600"),
            (Some(600), "launch ← init 1"),
            (Some(1), "init"),
        ]
    );
    assert_eq!((rows[0].rate_1s, rows[0].exits), (100, 100));
}
