//! Progress on stderr while reading large inputs.
//!
//! Small inputs say nothing: a terminal gets a self-updating line only once reading
//! has taken more than [`TERMINAL_AFTER`], and a final line when it is done; when
//! stderr is not a terminal (a log, a CI job) a plain line is written every
//! [`LINES_EVERY`] lines, and a final line if any was. So a report of a few
//! thousand records prints nothing on stderr, and a multi-gigabyte one shows it is
//! alive without flooding a log.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::fmt::{bytes_size, thousands};

/// A terminal sees progress only when reading takes longer than this.
pub const TERMINAL_AFTER: Duration = Duration::from_secs(1);
/// How often the terminal line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
/// Without a terminal, one line per this many input lines.
pub const LINES_EVERY: u64 = 5_000_000;
/// The clock is looked at once per this many lines.
const CHECK_EVERY: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Quiet,
    Terminal,
    Lines,
}

pub struct Progress {
    mode: Mode,
    out: Box<dyn Write>,
    total: Option<u64>,
    bytes: u64,
    lines: u64,
    started: Instant,
    last_draw: Option<Instant>,
    next_report: u64,
    /// Something was written, so a final line is due.
    shown: bool,
}

impl Progress {
    /// Progress for stderr, in the form that suits what stderr is.
    pub fn stderr() -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        };
        Progress::new(mode, Box::new(std::io::stderr()))
    }

    /// No progress at all.
    pub fn quiet() -> Progress {
        Progress::new(Mode::Quiet, Box::new(std::io::sink()))
    }

    fn new(mode: Mode, out: Box<dyn Write>) -> Progress {
        Progress {
            mode,
            out,
            total: None,
            bytes: 0,
            lines: 0,
            started: Instant::now(),
            last_draw: None,
            next_report: LINES_EVERY,
            shown: false,
        }
    }

    /// Reading begins; `total` bytes are expected if known (not for stdin).
    pub fn start(&mut self, total: Option<u64>) {
        self.total = total;
        self.started = Instant::now();
    }

    /// `bytes` more bytes and `lines` more lines were read.
    pub fn advance(&mut self, bytes: u64, lines: u64) {
        let before = self.lines;
        self.bytes += bytes;
        self.lines += lines;
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => {
                if self.lines >= self.next_report {
                    self.next_report = self.lines - self.lines % LINES_EVERY + LINES_EVERY;
                    let line = self.status();
                    let _ = writeln!(self.out, "tracer report: {line}");
                    self.shown = true;
                }
            }
            Mode::Terminal => {
                if before / CHECK_EVERY == self.lines / CHECK_EVERY {
                    return;
                }
                let now = Instant::now();
                if now.duration_since(self.started) < TERMINAL_AFTER
                    || self
                        .last_draw
                        .is_some_and(|t| now.duration_since(t) < REDRAW)
                {
                    return;
                }
                self.last_draw = Some(now);
                let line = self.status();
                // \r and erase-to-end: redraw in place.
                let _ = write!(self.out, "\r\x1b[Ktracer report: {line}");
                let _ = self.out.flush();
                self.shown = true;
            }
        }
    }

    /// Reading is over: a final line if progress was shown.
    pub fn finish(&mut self) {
        if !self.shown {
            return;
        }
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let line = format!(
            "read {} ({}) in {}",
            crate::units::plural(self.lines, "line", "lines"),
            bytes_size(self.bytes),
            crate::units::duration(ns)
        );
        let _ = match self.mode {
            Mode::Terminal => writeln!(self.out, "\r\x1b[Ktracer report: {line}"),
            _ => writeln!(self.out, "tracer report: {line}"),
        };
        let _ = self.out.flush();
        self.shown = false;
    }

    fn status(&self) -> String {
        status_line(self.bytes, self.total, self.lines)
    }
}

/// `read 312.0 MiB of 1.2 GiB (26%), 2,100,000 lines`.
pub fn status_line(bytes: u64, total: Option<u64>, lines: u64) -> String {
    match total {
        Some(t) if t > 0 => format!(
            "read {} of {} ({}%), {} lines",
            bytes_size(bytes),
            bytes_size(t),
            (u128::from(bytes) * 100 / u128::from(t)).min(100),
            thousands(lines)
        ),
        _ => format!("read {}, {} lines", bytes_size(bytes), thousands(lines)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_line(300 << 20, Some(1200 << 20), 2_100_000),
            "read 300.0 MiB of 1.2 GiB (25%), 2,100,000 lines"
        );
        assert_eq!(status_line(10, None, 1), "read 10 B, 1 lines");
    }

    #[test]
    fn without_a_terminal_one_line_per_five_million_lines_and_a_final_one() {
        let sink = Shared::default();
        let mut p = Progress::new(Mode::Lines, Box::new(sink.clone()));
        p.start(None);
        for _ in 0..11 {
            p.advance(100, 1_000_000);
        }
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("5,000,000 lines"), "{text}");
        assert!(lines[1].contains("10,000,000 lines"), "{text}");
        assert!(
            lines[2].starts_with("tracer report: read 11,000,000 lines"),
            "{text}"
        );
    }

    #[test]
    fn small_inputs_print_nothing() {
        for mode in [Mode::Lines, Mode::Terminal] {
            let sink = Shared::default();
            let mut p = Progress::new(mode, Box::new(sink.clone()));
            p.start(Some(1000));
            p.advance(1000, 10);
            p.finish();
            assert!(sink.0.lock().unwrap().is_empty());
        }
    }
}
