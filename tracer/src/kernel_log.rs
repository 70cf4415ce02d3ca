//! The kernel programs' own diagnostics (aya-log), shown on stderr with `-vv`:
//! a read the programs could not make (argv, a file name, waitid's infop) or a
//! kernel object that did not look as expected. Each names the record it affects.
//!
//! Off by default, and then free: the loader sets aya-log-ebpf's `AYA_LOG_LEVEL`
//! to 0 in the programs' read-only data, which is frozen before the programs are
//! verified, so the verifier knows every log statement's level check is false and
//! drops the statement (kernel/bpf/verifier.c opt_hard_wire_dead_code_branches,
//! opt_remove_dead_code). aya-log's own level filtering would only happen here,
//! after the kernel had paid for formatting and sending every message.

use aya_log::EbpfLogger;

/// The kernel programs' log ring, read in the agent's event loop.
pub type KernelLog = EbpfLogger<Stderr>;

/// The level the programs log at when diagnostics are on (`-vv`), else none.
pub fn level(diagnostics: bool) -> u8 {
    if diagnostics {
        aya_log::Level::Warn as u8
    } else {
        0
    }
}

/// Writes each diagnostic as one line on stderr, where the agent's own messages go.
pub struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("{}", line(record.level(), record.args()));
    }

    fn flush(&self) {}
}

fn line(level: log::Level, message: &std::fmt::Arguments<'_>) -> String {
    format!(
        "tracer: kernel {}: {message}",
        level.as_str().to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_one_prefixed_line() {
        assert_eq!(
            line(log::Level::Warn, &format_args!("exec of pid {}: x", 7)),
            "tracer: kernel warn: exec of pid 7: x"
        );
    }

    #[test]
    fn off_means_no_level_passes_in_the_kernel() {
        // aya-log-ebpf logs a statement when `level as u8 <= AYA_LOG_LEVEL`;
        // its levels start at Error = 1.
        assert_eq!(level(false), 0);
        assert!(aya_log::Level::Error as u8 > level(false));
        assert_eq!(level(true), aya_log::Level::Warn as u8);
        assert!(aya_log::Level::Info as u8 > level(true));
    }
}
