//! Wall-clock formatting without a date library: files are UTC, so the calendar
//! is the whole problem, and Howard Hinnant's `civil_from_days` solves it exactly
//! for the proleptic Gregorian calendar. The terminal shows local time: the C
//! library's `localtime_r` gives the zone's offset and name (TZ honoured), and
//! the same calendar does the rest.

const NS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (day 0).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year, and
    // count in 400-year eras of 146097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Splits nanoseconds since the Unix epoch into (days since epoch, second of
/// day, nanosecond of second). Times before 1970 work too.
fn split(wall_ns: i128) -> (i64, u32, u32) {
    let secs = wall_ns.div_euclid(NS_PER_SEC);
    let nanos = wall_ns.rem_euclid(NS_PER_SEC) as u32;
    // Clamp: a wild clock offset must give a wild date, not a panic.
    let secs = secs.clamp(i128::from(i64::MIN / 2), i128::from(i64::MAX / 2)) as i64;
    (
        secs.div_euclid(SECS_PER_DAY),
        secs.rem_euclid(SECS_PER_DAY) as u32,
        nanos,
    )
}

/// `n` in decimal, zero-padded to at least `width` digits (at most 10).
fn push_num(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let i = crate::units::fill_digits(&mut digits, u64::from(n));
    let start = i.min(digits.len() - width.min(digits.len()));
    out.extend_from_slice(&digits[start..]);
}

/// RFC 3339 UTC with nanoseconds: `2026-11-22T04:13:22.123456789Z`.
pub fn push_rfc3339(out: &mut Vec<u8>, wall_ns: i128) {
    let (days, sod, nanos) = split(wall_ns);
    push_date_time(out, days, sod);
    out.push(b'.');
    push_num(out, nanos, 9);
    out.push(b'Z');
}

/// [`push_rfc3339`] for a stream of times, most of them in the same second as
/// the one before (every record of a storm): the date and time of day are
/// rendered once per second, only the nanoseconds for every time.
#[derive(Debug, Default)]
pub struct Rfc3339Cache {
    /// The second (since the epoch) `prefix` renders.
    sec: Option<i128>,
    /// `YYYY-MM-DDTHH:MM:SS`.
    prefix: Vec<u8>,
}

impl Rfc3339Cache {
    /// Appends exactly what [`push_rfc3339`] appends.
    pub fn push(&mut self, out: &mut Vec<u8>, wall_ns: i128) {
        let sec = wall_ns.div_euclid(NS_PER_SEC);
        let (days, sod, nanos) = split(wall_ns);
        if self.sec != Some(sec) {
            self.prefix.clear();
            push_date_time(&mut self.prefix, days, sod);
            self.sec = Some(sec);
        }
        out.extend_from_slice(&self.prefix);
        out.push(b'.');
        push_num(out, nanos, 9);
        out.push(b'Z');
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a day since the epoch and a second of that day.
fn push_date_time(out: &mut Vec<u8>, days: i64, sod: u32) {
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        push_num(out, year as u32, 4);
    } else {
        // Outside RFC 3339's range; still say what we computed.
        out.extend_from_slice(year.to_string().as_bytes());
    }
    out.push(b'-');
    push_num(out, month, 2);
    out.push(b'-');
    push_num(out, day, 2);
    out.push(b'T');
    push_hms(out, sod);
}

fn push_hms(out: &mut Vec<u8>, sod: u32) {
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
}

/// Which clock the terminal's times are in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zone {
    Utc,
    /// The local time zone (TZ, else /etc/localtime), as the C library has it.
    Local,
    /// A fixed offset east of UTC in seconds and its name, for tests.
    Fixed(i64, String),
}

unsafe extern "C" {
    /// POSIX tzset(3): (re)reads TZ. The libc crate does not bind it.
    fn tzset();
}

impl Zone {
    /// The local zone, with TZ read now (localtime_r(3) need not read it itself).
    pub fn local() -> Zone {
        // SAFETY: tzset has no preconditions; it sets the C library's zone globals.
        unsafe { tzset() };
        Zone::Local
    }

    /// The offset east of UTC (seconds) and the zone's abbreviation in force at
    /// `secs` since the epoch: `(3600, "CET")`.
    pub fn at(&self, secs: i64) -> (i64, String) {
        match self {
            Zone::Utc => (0, "UTC".into()),
            Zone::Fixed(offset, name) => (*offset, name.clone()),
            Zone::Local => {
                // SAFETY: an all-zero tm is a valid value (tm_zone null).
                let mut tm: libc::tm = unsafe { std::mem::zeroed() };
                // libc marks musl's time_t deprecated (it will follow musl's 64-bit
                // change); it is 64-bit on x86_64 either way, the only musl target built.
                #[allow(deprecated)]
                let t = secs as libc::time_t;
                // SAFETY: valid pointers to a time_t and a tm for the call.
                if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
                    return (0, "UTC".into());
                }
                let name = if tm.tm_zone.is_null() {
                    String::new()
                } else {
                    // SAFETY: glibc's tm_zone points to a NUL-terminated static string.
                    unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
                        .to_string_lossy()
                        .into_owned()
                };
                #[expect(
                    clippy::useless_conversion,
                    reason = "c_long is i64 here and i32 on 32-bit targets"
                )]
                let offset = i64::from(tm.tm_gmtoff);
                (offset, name)
            }
        }
    }
}

/// `2026-12-02` for the day `days` after 1970-01-01.
pub fn push_date(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = civil_from_days(days);
    out.extend_from_slice(year.to_string().as_bytes());
    out.push(b'-');
    push_num(out, month, 2);
    out.push(b'-');
    push_num(out, day, 2);
}

/// `UTC+01:00`, `UTC-03:30`, `UTC` for an offset east of UTC in seconds.
pub fn push_utc_offset(out: &mut Vec<u8>, offset_s: i64) {
    out.extend_from_slice(b"UTC");
    if offset_s == 0 {
        return;
    }
    out.push(if offset_s < 0 { b'-' } else { b'+' });
    let m = offset_s.unsigned_abs() / 60;
    push_num(out, (m / 60) as u32, 2);
    out.push(b':');
    push_num(out, (m % 60) as u32, 2);
}

/// The day (since the epoch) of a wall-clock time.
pub fn day_of(wall_ns: i128) -> i64 {
    split(wall_ns).0
}

/// Time of day in UTC with microseconds, for the terminal: `04:13:22.123456`.
pub fn push_time_of_day_us(out: &mut Vec<u8>, wall_ns: i128) {
    let (_, sod, nanos) = split(wall_ns);
    push_hms(out, sod);
    out.push(b'.');
    push_num(out, nanos / 1000, 6);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(wall_ns: i128) -> String {
        let mut v = Vec::new();
        push_rfc3339(&mut v, wall_ns);
        String::from_utf8(v).unwrap()
    }

    const S: i128 = NS_PER_SEC;

    #[test]
    fn known_instants() {
        assert_eq!(rfc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(rfc(-1), "1969-12-31T23:59:59.999999999Z");
        // `date -u -d @951782400` = Tue Feb 29 00:00:00 UTC 2000
        assert_eq!(rfc(951_782_400 * S), "2000-02-29T00:00:00.000000000Z");
        // Values checked with `date -u -d @SECONDS`.
        assert_eq!(
            rfc(1_795_321_902 * S + 123_456_789),
            "2026-11-22T04:31:42.123456789Z"
        );
        // End of a leap year and the first instant of the next.
        assert_eq!(
            rfc(1_735_689_599 * S + 999_999_999),
            "2024-12-31T23:59:59.999999999Z"
        );
        assert_eq!(rfc(1_735_689_600 * S), "2025-01-01T00:00:00.000000000Z");
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(rfc(4_107_456_000 * S), "2100-02-28T00:00:00.000000000Z");
        assert_eq!(rfc(4_107_542_400 * S), "2100-03-01T00:00:00.000000000Z");
        // 1900 neither (before the epoch).
        assert_eq!(rfc(-2_203_977_600 * S), "1900-02-28T00:00:00.000000000Z");
        assert_eq!(rfc(-2_203_891_200 * S), "1900-03-01T00:00:00.000000000Z");
    }

    /// Checks `civil_from_days` against counting days one at a time with the
    /// leap-year rule, over 1600-01-01 .. 2500-01-01 (`python3`: 135140 days
    /// before the epoch, 193579 after).
    #[test]
    fn agrees_with_day_by_day_count() {
        fn leap(y: i64) -> bool {
            (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        }
        fn month_len(y: i64, m: u32) -> u32 {
            match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }
        }
        // 1600-01-01 is 135140 days before 1970-01-01.
        let (mut y, mut m, mut d) = (1600i64, 1u32, 1u32);
        for days in -135_140i64..193_579 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!((y, m, d), (2500, 1, 1));
    }

    #[test]
    fn cache_renders_what_push_rfc3339_does() {
        let mut cache = Rfc3339Cache::default();
        let times = [
            0,
            1,
            -1,
            S - 1,
            S,
            1_795_321_902 * S + 123_456_789,
            1_795_321_902 * S + 999_999_999,
            1_795_321_903 * S,
            1_795_321_902 * S,
            1_735_689_599 * S + 999_999_999,
            1_735_689_600 * S,
            -2_203_977_600 * S + 5,
            253_402_300_800 * S + 7,
            i128::MAX,
            i128::MIN,
            i128::MAX - 1,
        ];
        for &t in times.iter().chain(times.iter().rev()) {
            let mut v = Vec::new();
            cache.push(&mut v, t);
            assert_eq!(String::from_utf8(v).unwrap(), rfc(t), "{t}");
        }
    }

    #[test]
    fn time_of_day() {
        let mut v = Vec::new();
        push_time_of_day_us(&mut v, 951_782_400 * S + 3600 * 13 * S + 62 * S + 1_234_567);
        assert_eq!(String::from_utf8(v).unwrap(), "13:01:02.001234");
    }

    #[test]
    fn zones_dates_and_offsets() {
        let zone = Zone::Fixed(-3 * 3600 - 1800, "NST".into());
        assert_eq!(zone.at(0), (-12_600, "NST".to_string()));
        assert_eq!(Zone::Utc.at(123), (0, "UTC".to_string()));
        let mut v = Vec::new();
        push_date(&mut v, day_of(951_782_400 * S));
        v.push(b' ');
        push_utc_offset(&mut v, 3600);
        v.push(b' ');
        push_utc_offset(&mut v, -12_600);
        v.push(b' ');
        push_utc_offset(&mut v, 0);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "2000-02-29 UTC+01:00 UTC-03:30 UTC"
        );
        // The day of an instant just before the epoch is the last of 1969.
        assert_eq!(day_of(-1), -1);
        // Local time is the C library's: whatever the zone, its offset is within a day.
        let (offset, _) = Zone::local().at(1_795_320_802);
        assert!(offset.abs() < 86_400, "{offset}");
    }

    #[test]
    fn far_years_do_not_panic() {
        assert!(rfc(i128::MAX).contains('T'));
        assert!(rfc(i128::MIN).contains('T'));
        assert_eq!(rfc(253_402_300_800 * S), "10000-01-01T00:00:00.000000000Z");
    }
}
