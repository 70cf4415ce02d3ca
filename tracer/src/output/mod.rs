//! Turning [`Record`]s into output: JSON Lines for machines ([`JsonlWriter`],
//! schema in docs/events.md) and one readable line per event for people
//! ([`TextWriter`]), and Parquet files for SQL engines ([`parquet::ParquetSink`]).
//!
//! Both writers own the sink and add the per-run fields (wall clock, host, boot
//! id). They resolve nothing: the cgroup path is in the record before they see it
//! ([`crate::cgroup::CgroupResolver::fill`]).

pub mod escape;
pub mod file;
pub mod jsonl;
pub mod parquet;
#[cfg(test)]
mod parquet_tests;
pub mod text;
pub mod time;

use std::io::{self, Write};

pub use jsonl::JsonlWriter;
pub use text::TextWriter;

use crate::record::Record;

/// What every record of one run shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    pub host: String,
    /// /proc/sys/kernel/random/boot_id: with `ktime_ns` it pins an event to one boot.
    pub boot_id: String,
    /// Wall clock ns since the Unix epoch = CLOCK_BOOTTIME ns + this offset.
    pub realtime_offset_ns: i128,
}

impl RunInfo {
    /// This machine's host name, boot id and clock offset, as of now.
    pub fn current() -> io::Result<RunInfo> {
        Ok(RunInfo {
            host: crate::procfs::hostname()?,
            boot_id: crate::procfs::boot_id()?,
            realtime_offset_ns: realtime_offset_ns()?,
        })
    }
}

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// CLOCK_REALTIME - CLOCK_BOOTTIME, in ns. The eBPF programs stamp events with
/// bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME, which keeps counting in suspend);
/// adding this offset gives wall-clock time. We read REALTIME between two
/// BOOTTIME reads and keep the tightest of a few tries, so the offset is good to
/// well under a microsecond even when we are preempted once.
///
/// The offset is taken once per run: if the wall clock is stepped later (NTP,
/// `date -s`), `ts` keeps the old offset and `ktime_ns` stays the truth.
pub fn realtime_offset_ns() -> io::Result<i128> {
    let mut best: Option<(i128, i128)> = None; // (bracket width, offset)
    for _ in 0..5 {
        let b1 = clock_ns(libc::CLOCK_BOOTTIME)?;
        let real = clock_ns(libc::CLOCK_REALTIME)?;
        let b2 = clock_ns(libc::CLOCK_BOOTTIME)?;
        let width = b2 - b1;
        let offset = real - (b1 + width / 2);
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, offset));
        }
    }
    Ok(best.map_or(0, |(_, offset)| offset))
}

/// Either output format, so the agent can hold one without generics or boxes.
pub enum Writer<W: Write> {
    Text(TextWriter<W>),
    Jsonl(JsonlWriter<W>),
}

impl<W: Write> Writer<W> {
    pub fn write(&mut self, rec: &Record) -> io::Result<()> {
        match self {
            Writer::Text(w) => w.write(rec),
            Writer::Jsonl(w) => w.write(rec),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Writer::Text(w) => w.flush(),
            Writer::Jsonl(w) => w.flush(),
        }
    }

    /// Time is `now` (CLOCK_BOOTTIME ns): lines held back for a while are due.
    pub fn tick(&mut self, now: u64) -> io::Result<()> {
        match self {
            Writer::Text(w) => w.tick(now),
            Writer::Jsonl(_) => Ok(()),
        }
    }

    /// The end: lines still held back are written.
    pub fn release_held(&mut self) -> io::Result<()> {
        match self {
            Writer::Text(w) => w.release_held(),
            Writer::Jsonl(_) => Ok(()),
        }
    }

    pub fn records_written(&self) -> u64 {
        match self {
            Writer::Text(w) => w.records_written(),
            Writer::Jsonl(w) => w.records_written(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_offset_is_plausible() {
        let offset = realtime_offset_ns().unwrap();
        let boot = clock_ns(libc::CLOCK_BOOTTIME).unwrap();
        let real = clock_ns(libc::CLOCK_REALTIME).unwrap();
        // Boot time (wall clock of ktime 0) lies between the epoch and now.
        assert!(offset > 0 && offset <= real, "offset {offset}");
        // boot + offset is the wall clock; allow a generous 1 s for a preempted test.
        assert!((boot + offset - real).abs() < 1_000_000_000);
    }
}
