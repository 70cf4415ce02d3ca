//! Parsers for command-line values that more than one frontend's arguments use:
//! durations (`30s`), sizes (`16M`) and file modes (`0640`). Each returns a
//! one-line error saying what was wrong and what to write instead.

use std::time::Duration;

/// Parses `30s`, `5m`, `1h30m`, `2h 15m`, `250ms`, `1.5s` or a bare number of
/// seconds. Compound forms go to humantime; a bare number (which humantime
/// refuses) is seconds, and a decimal with one unit (`1.5s`, `0.5m`) is taken
/// here, as humantime takes integers only.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let hint = "use e.g. 30s, 5m, 1h30m or 500ms";
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let simple = match unit {
        "" | "s" => Some(1.0),
        "ms" => Some(0.001),
        "m" => Some(60.0),
        "h" => Some(3600.0),
        _ => None,
    };
    let d = match (num.parse::<f64>(), simple) {
        (Ok(n), Some(mult)) => {
            let secs = n * mult;
            if !secs.is_finite() || secs > 1e12 {
                return Err(format!("{s:?} is too long a duration: {hint}"));
            }
            Duration::from_secs_f64(secs.max(0.0))
        }
        _ if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit()) => {
            return Err(format!("{s:?} is not a duration: {hint}"));
        }
        _ => humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("{s:?} has an unknown unit {unit:?}: use ms, s, m, h or d (e.g. 1h30m)")
            }
            _ => format!("{s:?} is not a duration: {hint}"),
        })?,
    };
    if d.is_zero() {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(d)
}

/// A count that must be at least 1 (`--storm-rate`): clap's own range check
/// would say `0 is not in 1..18446744073709551615`.
pub fn parse_at_least_one(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{s:?} is not a whole number: give one of at least 1, e.g. 200"
        )),
    }
}

/// Parses a count from 1 to 100,000 (`--crash-count`, `--fork-fail-count`, `report --top`).
pub fn parse_count(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n @ 1..=100_000) => Ok(n),
        Ok(_) => Err("must be from 1 to 100,000".into()),
        Err(_) => Err(format!(
            "{s:?} is not a whole number: give one from 1 to 100,000, e.g. 5"
        )),
    }
}

/// Parses `16M`, `4096K`, `1G` or bytes; must be a power of two of at least 4 KiB
/// (kernel/bpf/ringbuf.c ringbuf_map_alloc requires a page-aligned power of two).
pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let bad =
        || format!("{s:?}: the ring buffer size must be a power of two from 4K to 1G, e.g. 16M");
    let bytes = parse_bytes(s, "4M, 16M or 64M")?;
    if bytes < 4096 || !bytes.is_power_of_two() || bytes > 1 << 30 {
        return Err(bad());
    }
    Ok(bytes as u32)
}

/// Parses a file size: `100M`, `512K`, `2G` or bytes (K, M, G are powers of 1024);
/// at least 4K.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = parse_bytes(s, "100M, 512K or 1G")?;
    if bytes < 4096 {
        return Err(format!("{s:?}: the size must be at least 4K"));
    }
    Ok(bytes)
}

/// A byte count with an optional K, M or G suffix (powers of 1024); `examples`
/// goes into the error for text that is no size.
fn parse_bytes(s: &str, examples: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use e.g. {examples}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses permission bits in octal (`600`, `0640`, `0o640`). The owner must be able to
/// read and write (tracer reopens its files); no setuid, setgid or sticky bits.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("{s:?} is not an octal mode: use e.g. 0600 or 0640"))?;
    if mode > 0o777 {
        return Err(format!(
            "{s:?}: only permission bits (at most 0777) can be given"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{s:?}: the owner must be able to read and write the file (e.g. 0600 or 0640)"
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        // Compound forms, as humantime reads them.
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h 15m"), Ok(Duration::from_secs(8100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        let e = parse_duration("5x").unwrap_err();
        assert!(e.contains("unknown unit") && e.contains("1h30m"), "{e}");
        assert!(
            parse_duration("1h30x")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("0h0m").unwrap_err().contains("positive"));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1e400").is_err());
    }

    #[test]
    fn counts_of_at_least_one() {
        assert_eq!(parse_at_least_one("200"), Ok(200));
        assert_eq!(parse_at_least_one("1"), Ok(1));
        assert_eq!(parse_at_least_one("0").unwrap_err(), "must be at least 1");
        assert!(parse_at_least_one("-5").unwrap_err().contains("at least 1"));
        assert_eq!(parse_count("5"), Ok(5));
        assert_eq!(parse_count("100000"), Ok(100_000));
        assert_eq!(parse_count("0").unwrap_err(), "must be from 1 to 100,000");
        assert_eq!(
            parse_count("100001").unwrap_err(),
            "must be from 1 to 100,000"
        );
        assert!(parse_count("x").unwrap_err().contains("not a whole number"));
        assert!(
            parse_at_least_one("fast")
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn sizes_and_modes() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("5000"), Ok(5000));
        assert!(parse_size("1K").is_err());
        assert!(parse_size("big").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0400").unwrap_err().contains("owner"));
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("0x1f").is_err());
        assert!(parse_mode("rw-").is_err());
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("4M"), Ok(4 << 20));
        assert_eq!(parse_ring_size("4096k"), Ok(4 << 20));
        assert_eq!(parse_ring_size("65536"), Ok(65536));
        assert!(parse_ring_size("3M").unwrap_err().contains("power of two"));
        assert!(parse_ring_size("1K").is_err());
        assert!(parse_ring_size("lots").is_err());
    }
}
