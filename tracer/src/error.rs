//! How errors reach the user: one line, each cause said once, and the exit
//! statuses other than 1.
//!
//! The convention for the error types of this crate: an error's `Display` is the
//! whole one-line story, its cause included, and it does not also return that cause
//! from `source()` (no `#[source]`, no field named `source`). A printer that walks
//! the chain (anyhow's `{:#}`) would print the cause a second time. Errors of other
//! crates (aya, io) may do both; [`one_line`] leaves out a cause whose text the line
//! already holds, so the edges print every cause once whatever the error.

use std::error::Error;

/// An error that ends tracer with a status of its own: 2 for bad usage (as clap
/// gives), 126 for a command that cannot be run and 127 for one that is not found
/// (as env, timeout and shells give).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    /// Exit status for arguments that contradict each other or the file system.
    pub const USAGE: u8 = 2;
    pub const NOT_EXECUTABLE: u8 = 126;
    pub const NOT_FOUND: u8 = 127;

    pub fn usage(message: impl Into<String>) -> Exit {
        Exit {
            code: Exit::USAGE,
            message: message.into(),
        }
    }
}

/// The error and its causes, joined by `: `, leaving out a cause whose text is
/// already in the line (aya's `map error: failed to create map X` wraps `failed to
/// create map X`; a context that quotes its error).
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    join(std::iter::successors(Some(e), |&e| e.source()))
}

/// [`one_line`] for an anyhow error: its contexts and causes.
pub fn anyhow_line(e: &anyhow::Error) -> String {
    join(e.chain())
}

fn join<'a>(chain: impl Iterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for e in chain {
        let text = e.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// The exit status for an error: [`Exit::code`] if one is in the chain, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|e| e.downcast_ref::<Exit>())
        .map_or(1, |x| x.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{btf::BtfError, loader::LoadError, tracefs::TracefsError};
    use crate::{kconfig::KconfigError, procfs::ProcfsError, report::reader::ReadError};
    use std::io;

    fn enoent() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOENT)
    }

    /// One sample of every variant of this crate's error types that holds another
    /// error: the cause must come out once, however the error is printed.
    fn samples() -> Vec<anyhow::Error> {
        let tracefs_read = || TracefsError::Read {
            path: "/sys/kernel/tracing/x".into(),
            error: enoent(),
        };
        vec![
            ReadError::Open {
                name: "/nope.jsonl".into(),
                error: enoent(),
            }
            .into(),
            ReadError::Read {
                name: "a.jsonl".into(),
                error: enoent(),
            }
            .into(),
            ProcfsError::List {
                path: "/proc".into(),
                error: enoent(),
            }
            .into(),
            ProcfsError::Read {
                path: "/proc/1/stat".into(),
                error: enoent(),
            }
            .into(),
            BtfError::Read {
                path: "/sys/kernel/btf/vmlinux".into(),
                error: enoent(),
            }
            .into(),
            TracefsError::Mount {
                path: "/sys/kernel/tracing".into(),
                error: enoent(),
            }
            .into(),
            tracefs_read().into(),
            TracefsError::InFile {
                path: "format".into(),
                error: Box::new(tracefs_read()),
            }
            .into(),
            KconfigError::Field {
                event: "sched/sched_process_exec".into(),
                error: tracefs_read(),
            }
            .into(),
            KconfigError::Tracefs(tracefs_read()).into(),
            LoadError::Layout(KconfigError::Field {
                event: "x/y".into(),
                error: tracefs_read(),
            })
            .into(),
            LoadError::Tracefs(tracefs_read()).into(),
            LoadError::Btf(BtfError::Read {
                path: "b".into(),
                error: enoent(),
            })
            .into(),
            anyhow::Error::from(ReadError::Open {
                name: "x".into(),
                error: enoent(),
            })
            .context("reading the recording"),
        ]
    }

    #[test]
    fn every_cause_is_printed_once() {
        let cause = enoent().to_string();
        for e in samples() {
            for (how, line) in [
                ("anyhow {:#}", format!("{e:#}")),
                ("Display", e.to_string()),
                ("one_line", anyhow_line(&e)),
                ("dyn Error", one_line(e.as_ref())),
            ] {
                if how == "Display" && e.chain().count() > 1 {
                    // A context alone: its cause follows in the chain.
                    continue;
                }
                assert_eq!(line.matches(&cause).count(), 1, "{how}: {line}");
                assert!(!line.contains('\n'), "{how}: {line}");
            }
        }
    }

    #[test]
    fn one_line_leaves_out_a_cause_already_said() {
        let e = anyhow::Error::from(io::Error::other("disk on fire"))
            .context("writing t.json: disk on fire")
            .context("cannot write the report");
        assert_eq!(
            anyhow_line(&e),
            "cannot write the report: writing t.json: disk on fire"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
        let e = anyhow::Error::from(Exit::usage("bad")).context("around it");
        assert_eq!(exit_code(&e), 2);
    }
}
