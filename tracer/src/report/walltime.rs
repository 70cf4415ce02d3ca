//! Wall-clock times for the report: reading the `ts` of records back and writing
//! times for people and for JSON.
//!
//! Records are placed in time by `ktime_ns` (CLOCK_BOOTTIME), which is exact; `ts` is
//! `ktime_ns` plus one offset per tracer run (docs/events.md, Clocks), so the report
//! takes that offset from a record's `ts` and turns any `ktime_ns` of the same run
//! into wall time with it.

use crate::output::time::push_rfc3339;

const NS_PER_SEC: i128 = 1_000_000_000;

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), the inverse
/// of `civil_from_days` (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')))
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time
/// (`2026-11-22T04:13:22.123456789Z`, or with a `+HH:MM`/`-HH:MM` offset).
/// `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = u32::try_from(digits(&b[5..7])?).ok()?;
    let day = u32::try_from(digits(&b[8..10])?).ok()?;
    let (h, mi, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = &b[start..i];
        if frac.is_empty() {
            return None;
        }
        // Up to 9 digits count; further ones are below a nanosecond.
        for k in 0..9 {
            nanos = nanos * 10 + frac.get(k).map_or(0, |&d| i128::from(d - b'0'));
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let off = digits(&rest[0..2])? * 3600 + digits(&rest[3..5])? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(i128::from(secs) * NS_PER_SEC + nanos)
}

/// RFC 3339 UTC with nanoseconds, as in the records.
pub fn rfc3339(wall_ns: i128) -> String {
    let mut out = Vec::with_capacity(30);
    push_rfc3339(&mut out, wall_ns);
    String::from_utf8_lossy(&out).into_owned()
}

/// `2026-11-22 04:13:22.123` (UTC, milliseconds): for people.
pub fn short(wall_ns: i128) -> String {
    let full = rfc3339(wall_ns);
    // `YYYY-MM-DDTHH:MM:SS.mmm` is the first 23 characters of the RFC 3339 form.
    full.get(..23).unwrap_or(&full).replacen('T', " ", 1)
}

/// `04:13:22.123`: the time of day only, for spans within one day.
pub fn time_of_day(wall_ns: i128) -> String {
    let s = short(wall_ns);
    s.get(11..).unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_writer_writes() {
        for wall in [
            0i128,
            1_795_000_000_123_456_789,
            951_782_400_000_000_000, // 2000-02-29
            -1_000_000_000,
        ] {
            assert_eq!(
                parse_rfc3339(&rfc3339(wall)),
                Some(wall),
                "{}",
                rfc3339(wall)
            );
        }
    }

    #[test]
    fn offsets_and_fractions() {
        let z = parse_rfc3339("2026-11-22T04:13:22.5Z").unwrap();
        assert_eq!(
            parse_rfc3339("2026-11-22T05:13:22.500+01:00"),
            Some(z),
            "+01:00 is an hour ahead of UTC"
        );
        assert_eq!(parse_rfc3339("2026-11-22T03:43:22.5-00:30"), Some(z));
        assert_eq!(parse_rfc3339("2026-11-22T04:13:22Z"), Some(z - 500_000_000));
        assert_eq!(
            parse_rfc3339("2026-11-22T04:13:22.1234567891Z"),
            Some(z - 500_000_000 + 123_456_789)
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-11-22",
            "2026-13-22T04:13:22Z",
            "2026-11-22T04:13:22",
            "2026-11-22T04:13:22.Z",
            "2026-11-22T04:13:22+0100",
            "2026-11-22T24:13:22Z",
            "2026-11-22T04:13:22Zjunk",
            "２０26-11-22T04:13:22Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn short_forms() {
        let t = parse_rfc3339("2026-11-22T04:13:22.123456789Z").unwrap();
        assert_eq!(short(t), "2026-11-22 04:13:22.123");
        assert_eq!(time_of_day(t), "04:13:22.123");
    }
}
