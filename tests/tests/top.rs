//! `tracer top` on a real terminal: the real binary in a tmux pane (driven with
//! `send-keys`, read with `capture-pane`), during a small storm made by
//! `tracer-storm`. Needs root and tmux (`cargo xtask setup` installs it).

use std::path::PathBuf;
use std::process::Command;

use tracer_tests::{
    Proc, STEP_DEADLINE, ancestors_of_self, parse_records, poll_until, require_root, run_dir,
    tracer_bin,
};

/// A tmux session of its own, with a plain shell, killed when dropped.
struct Tmux {
    name: String,
    /// Where the terminal's modes are saved before top runs.
    modes: PathBuf,
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tmux ({e}): install it (`cargo xtask setup` does)"));
    assert!(
        out.status.success(),
        "tmux {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Tmux {
    fn start(label: &str, w: u16, h: u16) -> Tmux {
        let name = format!("tracer-top-test-{}-{label}", std::process::id());
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "env PS1='$ ' TERM=xterm-256color bash --norc --noprofile",
        ]);
        let modes = std::env::temp_dir().join(format!("{name}.stty"));
        let t = Tmux { name, modes };
        t.wait_for("the shell's prompt", |s| {
            s.lines().any(|l| l.trim_end() == "$")
        });
        t
    }

    /// Saves the terminal's modes and puts a marker line on the screen; returns
    /// the screen.
    fn mark(&self) -> String {
        self.type_text(&format!(
            "clear; stty -g > {}; echo BEFORE-TOP",
            self.modes.display()
        ));
        self.keys(&["Enter"]);
        self.wait_for("the marker line", |s| {
            s.lines().any(|l| l == "BEFORE-TOP") && s.trim_end().ends_with('$')
        })
    }

    /// After top: the screen before it is back, and the terminal's modes are the same.
    /// `done` is what top prints on its way out (its summary).
    fn assert_restored(&self, before: &str, what: &str, done: &str) {
        let after = self.wait_for(what, |s| {
            s.contains("BEFORE-TOP") && s.contains(done) && s.trim_end().ends_with('$')
        });
        for line in before.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                after.contains(line),
                "line {line:?} gone after top:\n{after}"
            );
        }
        assert!(
            !after.contains("F/10s"),
            "top's table is still on screen:\n{after}"
        );
        self.type_text(&format!(
            "stty -g | cmp -s - {} && echo MODES-SAME || echo MODES-DIFFER",
            self.modes.display()
        ));
        self.keys(&["Enter"]);
        let modes = self.wait_for("the terminal's modes compared", |s| {
            s.lines().any(|l| l == "MODES-SAME" || l == "MODES-DIFFER")
        });
        assert!(modes.lines().any(|l| l == "MODES-SAME"), "{modes}");
    }

    /// The pid of what the pane's shell runs (top).
    fn foreground_pid(&self) -> u32 {
        let shell: u32 = tmux(&["display-message", "-p", "-t", &self.name, "#{pane_pid}"])
            .trim()
            .parse()
            .expect("tmux gives the pane's pid");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the shell runs top")
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    /// Typed as text (no key names).
    fn type_text(&self, text: &str) {
        tmux(&["send-keys", "-t", &self.name, "-l", text]);
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    /// Waits until the screen shows what `cond` looks for; fails with the screen.
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = poll_until(STEP_DEADLINE, || {
            last = self.screen();
            cond(&last)
        });
        assert!(ok, "waited for {what}; the screen is:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.modes);
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn storm_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("test executable in <profile>/deps")
        .join("tracer-storm");
    assert!(
        path.is_file(),
        "{} not found: build it with `cargo build -p tracer-tests`",
        path.display()
    );
    path
}

/// The table's rows: the lines after the column header, up to the panes.
fn rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.contains("PID") || !l.contains("F/1s"))
        .skip(1)
        .take_while(|l| !l.contains("alerts ("))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn top_shows_the_storming_parent_first_filters_and_gives_the_terminal_back() {
    require_root();
    let term = Tmux::start("storm", 100, 30);
    let before = term.mark();
    let dir = run_dir("top");
    let recording = dir.join("top.jsonl");

    term.type_text(&format!(
        "{} top -o {}",
        tracer_bin().display(),
        recording.display()
    ));
    term.keys(&["Enter"]);
    term.wait_for("top's header", |s| {
        s.contains("forks/s") && s.contains("F/10s")
    });

    // A small storm: one worker forking children that exit at once.
    let storm = Proc::spawn(
        Command::new(storm_bin()).args(["fork-exit", "--count", "100000000", "--workers", "1"]),
        false,
    );
    let storm_pid = storm.pid();
    let launcher = format!("← tracer-storm {storm_pid}");
    let screen = term.wait_for("the storm's worker as the first row", |s| {
        rows(s).first().is_some_and(|r| r.contains(&launcher))
    });
    let first = rows(&screen)[0].to_string();
    // Its fork rate is shown, not `·`.
    let rate: Vec<&str> = first.split_whitespace().collect();
    assert!(
        rate[1].replace(',', "").parse::<u64>().is_ok_and(|n| n > 0),
        "{first}"
    );

    // `/` filters by name: only tracer-storm rows (and their ancestors) remain.
    term.keys(&["/"]);
    term.type_text("tracer-stor");
    term.keys(&["Enter"]);
    // Each row names tracer-storm or is one of its ancestors (this test and up).
    let mut ancestors = ancestors_of_self();
    ancestors.push(std::process::id());
    let kept = |r: &&str| {
        r.contains("tracer-storm")
            || r.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| ancestors.contains(&p))
    };
    let screen = term.wait_for("the filter applied", |s| {
        s.contains("filter /tracer-stor") && rows(s).iter().all(kept)
    });
    // tracer top itself (in the tmux pane, not below this test) is filtered out.
    assert!(
        !rows(&screen)
            .iter()
            .any(|r| r.trim_end().ends_with(" tracer") || r.contains(" tracer ←")),
        "{screen}"
    );
    assert!(
        rows(&screen).iter().any(|r| r.contains(&launcher)),
        "{screen}"
    );
    drop(storm);

    // `q`: top ends, the shell's screen and the terminal's modes are as before.
    term.keys(&["q"]);
    term.assert_restored(&before, "the summary after q", "records (");

    // -o recorded as watch -o does (schema-checked): meta first, the storm, the end.
    let text = std::fs::read_to_string(&recording).expect("top -o wrote its file");
    let recs = parse_records(&text).unwrap_or_else(|e| panic!("{}: {e}", recording.display()));
    assert_eq!(recs.first().map(|r| r.ty()), Some("meta"));
    let last = recs.last().expect("records");
    assert_eq!((last.ty(), last.str("reason")), ("end", Some("quit")));
    let worker_forks = recs
        .iter()
        .filter(|r| {
            r.ty() == "fork"
                && r.str("comm") == Some("tracer-storm")
                && r.u64("ppid") != Some(u64::from(storm_pid))
        })
        .count();
    assert!(
        worker_forks > 0,
        "no storm forks in {}",
        recording.display()
    );

    // --replay plays it in the same view: the storm's worker heads the table again.
    let before = term.mark();
    term.type_text(&format!(
        "{} top --replay {} --speed 2",
        tracer_bin().display(),
        recording.display()
    ));
    term.keys(&["Enter"]);
    term.wait_for("the storm's worker as the first row of the replay", |s| {
        s.contains("REPLAY") && rows(s).first().is_some_and(|r| r.contains(&launcher))
    });
    term.wait_for("the replay's end", |s| s.contains("end of recording"));
    term.keys(&["q"]);
    term.assert_restored(&before, "the shell after the replay", "tracer: replayed ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_ends_top_and_gives_the_terminal_back() {
    require_root();
    let term = Tmux::start("sigterm", 80, 24);
    let before = term.mark();
    term.type_text(&format!("{} top", tracer_bin().display()));
    term.keys(&["Enter"]);
    term.wait_for("top's header", |s| {
        s.contains("forks/s") && s.contains("F/10s")
    });
    // At 80×24 the key line is the last one; after a resize it is again.
    let last = |s: &str, n: usize| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == n && lines[n - 1].contains("q quit")
    };
    term.wait_for("the key line at the bottom of 80×24", |s| last(s, 24));
    tmux(&["resize-window", "-t", &term.name, "-x", "120", "-y", "32"]);
    term.wait_for("the view redrawn at 120×32", |s| {
        last(s, 32) && s.lines().next().is_some_and(|l| l.ends_with("60s"))
    });
    let pid = term.foreground_pid();
    // SAFETY: kill with a pid read from /proc just now; the test owns the session.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    term.assert_restored(&before, "the summary after SIGTERM", "records (");
}

#[test]
fn top_refuses_when_stdout_is_not_a_terminal() {
    let ran = Command::new(tracer_bin())
        .arg("top")
        .output()
        .expect("tracer runs");
    assert_eq!(ran.status.code(), Some(2));
    let err = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("needs a terminal") && err.contains("tracer watch"),
        "{err}"
    );
}
