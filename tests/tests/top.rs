//! `tracer top` on a real terminal: the real binary in a tmux pane (driven with
//! `send-keys`, read with `capture-pane`), during a small storm made by
//! `tracer-storm`. Needs root and tmux (`cargo xtask setup` installs it).

use std::path::PathBuf;
use std::process::Command;

use tracer_tests::{Proc, STEP_DEADLINE, ancestors_of_self, poll_until, require_root, tracer_bin};

/// A tmux session of its own, with a plain shell, killed when dropped.
struct Tmux {
    name: String,
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
    fn start(w: u16, h: u16) -> Tmux {
        let name = format!("tracer-top-test-{}", std::process::id());
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
        Tmux { name }
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
    let term = Tmux::start(100, 30);
    term.wait_for("the shell's prompt", |s| {
        s.lines().any(|l| l.trim_end() == "$")
    });
    // How the terminal is before: its modes, and a line on the screen.
    term.type_text("stty -g > /tmp/tracer-top-test-stty-before; echo BEFORE-TOP");
    term.keys(&["Enter"]);
    term.wait_for("the marker line", |s| s.matches("BEFORE-TOP").count() >= 2);
    let before = term.screen();

    term.type_text(&format!("{} top", tracer_bin().display()));
    term.keys(&["Enter"]);
    term.wait_for("top's header", |s| {
        s.contains("forks/s") && s.contains("F/10s")
    });

    // A small storm: one worker forking children that exit at once.
    let storm = Proc::spawn(
        Command::new(storm_bin()).args(["fork-exit", "--count", "100000000", "--workers", "1"]),
        false,
    );
    let launcher = format!("← tracer-storm {}", storm.pid());
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
    let after = term.wait_for("the summary after q", |s| {
        s.contains("BEFORE-TOP") && s.contains("records (") && s.trim_end().ends_with('$')
    });
    let kept: Vec<&str> = before.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &kept {
        assert!(after.contains(line), "line {line:?} gone after q:\n{after}");
    }
    assert!(
        !after.contains("F/10s"),
        "top's table is still on screen:\n{after}"
    );
    term.type_text(
        "stty -g | cmp -s - /tmp/tracer-top-test-stty-before && echo MODES-SAME || echo MODES-DIFFER",
    );
    term.keys(&["Enter"]);
    let modes = term.wait_for("the terminal's modes compared", |s| {
        s.lines().any(|l| l == "MODES-SAME" || l == "MODES-DIFFER")
    });
    assert!(modes.lines().any(|l| l == "MODES-SAME"), "{modes}");
    let _ = std::fs::remove_file("/tmp/tracer-top-test-stty-before");
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
