//! How far the VM got, read from its console: which kernel tests finished, which were
//! running, and the kernel's own verdict (a panic, a soft lockup), so that a VM that
//! was killed or died says in one line where it was.

/// What the console has shown so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// The tests in the order libtest starts them (the order of `--list`: libtest sorts
    /// the filtered tests by name, then starts them front to back, `threads` at a time).
    order: Vec<String>,
    threads: usize,
    /// `running N tests` was printed: the test executable started.
    started: bool,
    finished: Vec<String>,
    /// The first `Kernel panic` line, and the first soft lockup report (`BUG: soft
    /// lockup - CPU#1 stuck for 63s! [tracer:412]`), kernel timestamps removed.
    panic: Option<String>,
    lockup: Option<String>,
    /// The init script's own failure (`vm-init: failed: ...`), before the tests ran.
    init: Option<String>,
}

impl Progress {
    pub fn new(order: Vec<String>, threads: usize) -> Self {
        Progress {
            order,
            threads: threads.max(1),
            ..Progress::default()
        }
    }

    /// Takes in one console line (without the prefix and line end).
    pub fn line(&mut self, line: &str) {
        let text = without_timestamp(line);
        if text.starts_with("running ") && text.ends_with(" tests") || text == "running 1 test" {
            self.started = true;
        } else if let Some(rest) = text.strip_prefix("test ") {
            // `test NAME ... ok` (or FAILED, ignored); libtest prints it when NAME ends.
            if let Some((name, _)) = rest.split_once(" ... ")
                && self.order.iter().any(|t| t == name)
                && !self.finished.iter().any(|t| t == name)
            {
                self.finished.push(name.to_string());
            }
        } else if self.init.is_none()
            && let Some(message) = text.strip_prefix("vm-init: ")
            && !message.contains("running the kernel tests")
        {
            self.init = Some(message.to_string());
        } else if self.panic.is_none() && text.starts_with("Kernel panic") {
            self.panic = Some(text.to_string());
        } else if self.lockup.is_none()
            && let Some(at) = text.find("BUG: soft lockup")
        {
            self.lockup = Some(text[at..].to_string());
        }
    }

    /// The tests that had started and not finished, in the order they started: the
    /// first `threads` unfinished ones, as libtest starts a test only when a slot frees.
    pub fn running(&self) -> Vec<&str> {
        if !self.started {
            return Vec::new();
        }
        self.order
            .iter()
            .filter(|t| !self.finished.contains(t))
            .take(self.threads)
            .map(String::as_str)
            .collect()
    }

    /// One clause for an error message: where the tests were and what the kernel said.
    pub fn summary(&self) -> String {
        let mut s = if !self.started {
            "before the tests started".to_string()
        } else {
            let running = self.running();
            match running.last() {
                None => format!("after all {} tests finished", self.finished.len()),
                Some(last) => format!(
                    "{} of {} tests finished; running: {} (last started: {last})",
                    self.finished.len(),
                    self.order.len(),
                    running.join(", ")
                ),
            }
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

/// `[   12.345678] text` -> `text`; other lines unchanged.
fn without_timestamp(line: &str) -> &str {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix('[')
        && let Some((stamp, text)) = rest.split_once(']')
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
        let order = ["a", "b", "c", "d"].map(String::from).to_vec();
        Progress::new(order, 2)
    }

    #[test]
    fn running_tests_are_the_first_unfinished_ones_once_the_tests_started() {
        let mut p = progress();
        p.line("[    4.8] Unstable clock detected");
        assert!(p.running().is_empty());
        assert_eq!(p.summary(), "before the tests started");
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
            "2 of 4 tests finished; running: a, d (last started: d)"
        );
        p.line("test a ... ok");
        p.line("test d ... ignored");
        assert_eq!(p.summary(), "after all 4 tests finished");
    }

    #[test]
    fn keeps_the_first_soft_lockup_and_panic() {
        let mut p = progress();
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
    fn reads_the_test_list() {
        let list = "fork_exit: test\nstorm: test\n\n2 tests, 0 benchmarks\n";
        assert_eq!(listed_tests(list), ["fork_exit", "storm"]);
    }
}
