//! What the VM's console shows, turned into what the user reads: one line per test
//! executable with its pass/fail counts, a failed executable's failures in full, the
//! kernel's warnings as they come; and, for a VM that was killed or died, one line
//! saying where it was (which executable, which tests were running, the kernel's own
//! verdict: a panic, a soft lockup). The whole console goes to the log file regardless.

use super::init::{END_MARK, START_MARK};

/// One test executable the VM runs: its name (the file in tests/tests/) and the tests
/// it will start, in the order libtest starts them (that of its `--list`: libtest sorts
/// the filtered tests by name, then starts them front to back, `threads` at a time).
#[derive(Clone, Debug, Default)]
pub struct Binary {
    pub name: String,
    pub tests: Vec<String>,
}

/// How one executable's run ended, from its end marker and libtest's `test result:` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub name: String,
    /// The executable's exit code as the init script saw it.
    pub code: i32,
    /// (passed, failed, ignored) from `test result:`; None if it never printed one.
    pub counts: Option<(u32, u32, u32)>,
    /// libtest's `finished in 12.34s`.
    pub seconds: Option<f64>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// What the console has shown so far.
#[derive(Debug, Default)]
pub struct Progress {
    binaries: Vec<Binary>,
    threads: usize,
    /// How long the init script lets one executable run before killing it (`timeout`).
    limit_minutes: u64,
    /// Index in `binaries` of the executable running now.
    current: Option<usize>,
    /// `running N tests` was printed by the current executable.
    started: bool,
    finished: Vec<String>,
    /// The current executable's output, shown in part if it fails.
    output: Vec<String>,
    counts: Option<(u32, u32, u32)>,
    seconds: Option<f64>,
    outcomes: Vec<Outcome>,
    /// The first `Kernel panic` line, and the first soft lockup report (`BUG: soft
    /// lockup - CPU#1 stuck for 63s! [tracer:412]`), kernel timestamps removed.
    panic: Option<String>,
    lockup: Option<String>,
    /// The init script's own failure (`vm-init: failed: ...`), before the tests ran.
    init: Option<String>,
}

impl Progress {
    pub fn new(binaries: Vec<Binary>, threads: usize, limit_minutes: u64) -> Self {
        Progress {
            binaries,
            threads: threads.max(1),
            limit_minutes,
            ..Progress::default()
        }
    }

    /// The executables that ended, in order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Takes in one console line (without the line end) and returns what to show of it
    /// now: kernel and init lines at once, an executable's output only as its summary
    /// line when it ends (and its failures, if any).
    pub fn line(&mut self, line: &str) -> Vec<String> {
        let text = without_timestamp(line);
        let kernel = text.len() != line.trim_end().len();
        if kernel {
            if self.panic.is_none() && text.starts_with("Kernel panic") {
                self.panic = Some(text.to_string());
            } else if self.lockup.is_none()
                && let Some(at) = text.find("BUG: soft lockup")
            {
                self.lockup = Some(text[at..].to_string());
            }
            if self.current.is_some() {
                self.output.push(line.to_string());
            }
            return vec![line.to_string()];
        }
        if let Some(name) = text.strip_prefix(START_MARK) {
            self.start(name.trim());
            return Vec::new();
        }
        if let Some(rest) = text.strip_prefix(END_MARK)
            && let Some((name, code)) = rest.trim().rsplit_once(' ')
            && let Ok(code) = code.parse()
        {
            return self.end(name, code);
        }
        if self.current.is_none() {
            if self.init.is_none()
                && let Some(message) = text.strip_prefix("vm-init: ")
                && message.starts_with("failed")
            {
                self.init = Some(message.to_string());
            }
            return vec![line.to_string()];
        }
        self.output.push(line.to_string());
        if text.starts_with("running ") && text.ends_with(" tests") || text == "running 1 test" {
            self.started = true;
        } else if let Some(rest) = text.strip_prefix("test result: ") {
            self.counts = counts(rest);
            self.seconds = rest
                .rsplit_once("finished in ")
                .and_then(|(_, s)| s.trim_end_matches('s').parse().ok());
        } else if let Some(rest) = text.strip_prefix("test ") {
            // `test NAME ... ok` (or FAILED, ignored); libtest prints it when NAME ends.
            if let Some((name, _)) = rest.split_once(" ... ")
                && self.order().iter().any(|t| t == name)
                && !self.finished.iter().any(|t| t == name)
            {
                self.finished.push(name.to_string());
            }
        }
        Vec::new()
    }

    fn order(&self) -> &[String] {
        self.current
            .map(|i| self.binaries[i].tests.as_slice())
            .unwrap_or_default()
    }

    fn start(&mut self, name: &str) {
        self.current = self.binaries.iter().position(|b| b.name == name);
        if self.current.is_none() {
            // Not planned (cannot happen with the script xtask writes): still tracked.
            self.binaries.push(Binary {
                name: name.to_string(),
                tests: Vec::new(),
            });
            self.current = Some(self.binaries.len() - 1);
        }
        self.started = false;
        self.finished.clear();
        self.output.clear();
        self.counts = None;
        self.seconds = None;
    }

    fn end(&mut self, name: &str, code: i32) -> Vec<String> {
        let outcome = Outcome {
            name: name.to_string(),
            code,
            counts: self.counts,
            seconds: self.seconds,
        };
        let mut shown = vec![self.summary_line(&outcome)];
        if !outcome.ok() {
            // libtest's own report of the failed tests (their captured output and
            // panic messages) starts at `failures:`; without it (the harness itself
            // died, or was killed) all the executable printed is shown.
            let from = self
                .output
                .iter()
                .position(|l| l.trim_end() == "failures:")
                .unwrap_or(0);
            shown.extend(self.output[from..].iter().cloned());
        }
        self.outcomes.push(outcome);
        self.current = None;
        self.output.clear();
        shown
    }

    /// `kernel: 47 passed, 0 failed, 1 ignored (183.2s)`, or why it has no counts.
    fn summary_line(&self, o: &Outcome) -> String {
        let verdict = if o.ok() { "ok" } else { "FAILED" };
        match o.counts {
            Some((passed, failed, ignored)) => {
                let time = o
                    .seconds
                    .map(|s| format!(" in {s:.1}s"))
                    .unwrap_or_default();
                format!(
                    "{}: {verdict}, {passed} passed, {failed} failed, {ignored} ignored{time}",
                    o.name
                )
            }
            // busybox timeout sends SIGKILL: the shell sees 128 + 9.
            None if o.code == 137 => format!(
                "{}: FAILED, killed after {} minutes (the VM's limit per test executable); {}",
                o.name,
                self.limit_minutes,
                self.where_tests_were()
            ),
            None => format!(
                "{}: FAILED, exit code {} without a test result; {}",
                o.name,
                o.code,
                self.where_tests_were()
            ),
        }
    }

    /// Where the current executable's tests were.
    fn where_tests_were(&self) -> String {
        if !self.started {
            return "before its tests started".to_string();
        }
        let running = self.running();
        match running.last() {
            None => format!("after all {} tests finished", self.finished.len()),
            Some(last) => format!(
                "{} of {} tests finished; running: {} (last started: {last})",
                self.finished.len(),
                self.order().len(),
                running.join(", ")
            ),
        }
    }

    /// The tests that had started and not finished, in the order they started: the
    /// first `threads` unfinished ones, as libtest starts a test only when a slot frees.
    pub fn running(&self) -> Vec<&str> {
        if !self.started {
            return Vec::new();
        }
        self.order()
            .iter()
            .filter(|t| !self.finished.contains(t))
            .take(self.threads)
            .map(String::as_str)
            .collect()
    }

    /// One clause for an error message: where the tests were and what the kernel said.
    pub fn summary(&self) -> String {
        let mut s = match self.current {
            Some(i) => format!("in {}: {}", self.binaries[i].name, self.where_tests_were()),
            None if self.outcomes.is_empty() => "before the tests started".to_string(),
            None => format!(
                "after {} of {} test executables",
                self.outcomes.len(),
                self.binaries.len()
            ),
        };
        if let Some(init) = &self.init {
            s.push_str(&format!("; init: {init}"));
        }
        if let Some(lockup) = &self.lockup {
            s.push_str(&format!("; kernel: {lockup}"));
        } else if let Some(panic) = &self.panic {
            s.push_str(&format!("; kernel: {panic}"));
        }
        s
    }
}

/// (passed, failed, ignored) of `ok. 3 passed; 1 failed; 0 ignored; 0 measured; ...`.
fn counts(result: &str) -> Option<(u32, u32, u32)> {
    let (_, rest) = result.split_once(". ")?;
    let field = |word: &str| {
        rest.split(';')
            .find_map(|part| part.trim().strip_suffix(word)?.trim().parse().ok())
    };
    Some((field("passed")?, field("failed")?, field("ignored")?))
}

/// `[   12.345678] text` -> `text`; other lines unchanged (line end removed).
fn without_timestamp(line: &str) -> &str {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix('[')
        && let Some((stamp, text)) = rest.split_once(']')
        && !stamp.trim().is_empty()
        && stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return text.trim_start();
    }
    line
}

/// The test names in `cargo test -- --list` output (`NAME: test` lines), in order.
pub fn listed_tests(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        let binary = |name: &str, tests: &[&str]| Binary {
            name: name.into(),
            tests: tests.iter().map(|t| t.to_string()).collect(),
        };
        Progress::new(
            vec![
                binary("kernel", &["a", "b", "c", "d"]),
                binary("zombies", &["z"]),
            ],
            2,
            15,
        )
    }

    fn feed(p: &mut Progress, lines: &[&str]) -> Vec<String> {
        lines.iter().flat_map(|l| p.line(l)).collect()
    }

    #[test]
    fn one_line_per_executable_and_failures_in_full() {
        let mut p = progress();
        let shown = feed(
            &mut p,
            &[
                "vm-init: Linux 6.1.0-57-amd64, running the kernel tests",
                "vm-run: start kernel",
                "running 4 tests",
                "test a ... ok",
                "[   12.5] WARNING: CPU: 1 PID: 9 at kernel/x.c:1",
                "test b ... FAILED",
                "test c ... ok",
                "test d ... ignored",
                "",
                "failures:",
                "",
                "---- b stdout ----",
                "no fork record for process 12",
                "",
                "test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 61.25s",
                "vm-run: end kernel 101",
                "vm-run: start zombies",
                "running 1 test",
                "test z ... ok",
                "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.00s",
                "vm-run: end zombies 0",
            ],
        );
        assert_eq!(
            shown,
            [
                "vm-init: Linux 6.1.0-57-amd64, running the kernel tests",
                "[   12.5] WARNING: CPU: 1 PID: 9 at kernel/x.c:1",
                "kernel: FAILED, 2 passed, 1 failed, 1 ignored in 61.2s",
                "failures:",
                "",
                "---- b stdout ----",
                "no fork record for process 12",
                "",
                "test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 61.25s",
                "zombies: ok, 1 passed, 0 failed, 0 ignored in 3.0s",
            ]
        );
        let codes: Vec<(&str, i32)> = p
            .outcomes()
            .iter()
            .map(|o| (o.name.as_str(), o.code))
            .collect();
        assert_eq!(codes, [("kernel", 101), ("zombies", 0)]);
        assert_eq!(p.summary(), "after 2 of 2 test executables");
    }

    #[test]
    fn an_executable_killed_at_the_limit_says_what_was_running() {
        let mut p = progress();
        let shown = feed(
            &mut p,
            &[
                "vm-run: start kernel",
                "running 4 tests",
                "test b ... ok",
                "vm-run: end kernel 137",
            ],
        );
        assert_eq!(
            shown[0],
            "kernel: FAILED, killed after 15 minutes (the VM's limit per test executable); \
             1 of 4 tests finished; running: a, c (last started: c)"
        );
        assert_eq!(shown[1..], ["running 4 tests", "test b ... ok"]);
    }

    #[test]
    fn running_tests_are_the_first_unfinished_ones_once_the_tests_started() {
        let mut p = progress();
        p.line("[    4.8] Unstable clock detected");
        assert!(p.running().is_empty());
        assert_eq!(p.summary(), "before the tests started");
        p.line("vm-run: start kernel");
        assert_eq!(p.summary(), "in kernel: before its tests started");
        p.line("running 4 tests");
        assert_eq!(p.running(), ["a", "b"]);
        // b ends first: c takes its slot while a goes on.
        p.line("test b ... ok");
        assert_eq!(p.running(), ["a", "c"]);
        p.line("test c ... FAILED");
        p.line("test nonsense ... ok");
        assert_eq!(p.running(), ["a", "d"]);
        assert_eq!(
            p.summary(),
            "in kernel: 2 of 4 tests finished; running: a, d (last started: d)"
        );
        p.line("test a ... ok");
        p.line("test d ... ignored");
        assert_eq!(p.summary(), "in kernel: after all 4 tests finished");
    }

    #[test]
    fn keeps_the_first_soft_lockup_and_panic() {
        let mut p = progress();
        p.line("vm-run: start kernel");
        p.line("running 4 tests");
        p.line("[  301.123456] watchdog: BUG: soft lockup - CPU#1 stuck for 63s! [tracer:412]");
        p.line("[  301.2] watchdog: BUG: soft lockup - CPU#0 stuck for 64s! [kworker:1]");
        p.line("[  301.3] Kernel panic - not syncing: softlockup: hung tasks");
        assert!(
            p.summary()
                .ends_with("running: a, b (last started: b); kernel: BUG: soft lockup - CPU#1 stuck for 63s! [tracer:412]"),
            "{}",
            p.summary()
        );
        let mut p = progress();
        p.line("[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs");
        assert_eq!(
            p.summary(),
            "before the tests started; kernel: Kernel panic - not syncing: VFS: Unable to mount root fs"
        );
    }

    #[test]
    fn names_what_the_init_script_could_not_do() {
        let mut p = progress();
        p.line("vm-init: Linux 6.1.0-56-amd64, running the kernel tests");
        assert_eq!(p.summary(), "before the tests started");
        p.line("vm-init: failed: /vm/busybox mount -t 9p usr /usr");
        assert_eq!(
            p.summary(),
            "before the tests started; init: failed: /vm/busybox mount -t 9p usr /usr"
        );
    }

    #[test]
    fn reads_the_test_list_and_the_result_line() {
        let list = "fork_exit: test\nstorm: test\n\n2 tests, 0 benchmarks\n";
        assert_eq!(listed_tests(list), ["fork_exit", "storm"]);
        assert_eq!(
            counts(
                "ok. 47 passed; 0 failed; 2 ignored; 0 measured; 3 filtered out; finished in 1.0s"
            ),
            Some((47, 0, 2))
        );
        assert_eq!(counts("nonsense"), None);
    }
}
