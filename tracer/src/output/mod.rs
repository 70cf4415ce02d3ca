//! Turning [`Record`]s into output: JSON Lines for machines ([`JsonlWriter`],
//! schema in docs/events.md) and one readable line per event for people
//! ([`TextWriter`]).
//!
//! Both writers own the sink and add the per-run fields (wall clock, host, boot
//! id). They resolve nothing: the cgroup path is in the record before they see it
//! ([`crate::cgroup::CgroupResolver::fill`]).

pub mod escape;
pub mod file;
pub mod jsonl;
pub mod names;
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

    pub fn records_written(&self) -> u64 {
        match self {
            Writer::Text(w) => w.records_written(),
            Writer::Jsonl(w) => w.records_written(),
        }
    }
}

/// Appends the decimal form of `n` (no allocation, no formatter machinery).
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let i = fill_digits(&mut digits, n);
    out.extend_from_slice(&digits[i..]);
}

/// "00" to "99", for two digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the digits of `n` at the end of `buf` (which must have room for
/// them) and returns where they start. Every record has a dozen numbers, so
/// this takes them two digits at a time.
pub(crate) fn fill_digits(buf: &mut [u8], mut n: u64) -> usize {
    let mut i = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_u64_digits() {
        let around_powers = (0..20).flat_map(|e| {
            let p = 10u64.pow(e);
            [p - 1, p, p + 1, p.saturating_mul(5).saturating_add(7)]
        });
        for n in [0, 1, 9, 10, 99, 100, 1234567890, u64::MAX]
            .into_iter()
            .chain(around_powers)
        {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }

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
