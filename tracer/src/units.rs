//! Numbers, rates and durations in words and digits, the one place the alert
//! messages, the terminal lines, watch's summary and the report take them from
//! (so `alerts` and `output` need not import each other, and one window is
//! written one way everywhere): decimal digits without a formatter, `2,310`,
//! `2,310/s`, `3.25s`, `1 record` / `2 records`.

/// Appends the decimal form of `n` (no allocation, no formatter machinery).
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
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
pub fn fill_digits(buf: &mut [u8], mut n: u64) -> usize {
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

/// A short human duration: `850ns`, `12.5us`, `1.2ms`, `3.25s`, `45.2s`, `4m05s`,
/// `2h07m`: three significant digits at most. Truncated, not rounded, so it never
/// claims more time than there was. The one duration format of tracer's text.
pub fn push_duration(out: &mut Vec<u8>, ns: u64) {
    let (whole, frac, frac_digits, unit): (u64, u64, usize, &str) = match ns {
        0..1_000 => (ns, 0, 0, "ns"),
        1_000..1_000_000 => (ns / 1_000, ns / 100 % 10, 1, "us"),
        1_000_000..1_000_000_000 => (ns / 1_000_000, ns / 100_000 % 10, 1, "ms"),
        1_000_000_000..10_000_000_000 => (ns / 1_000_000_000, ns / 10_000_000 % 100, 2, "s"),
        10_000_000_000..60_000_000_000 => (ns / 1_000_000_000, ns / 100_000_000 % 10, 1, "s"),
        _ => {
            let secs = ns / 1_000_000_000;
            let (big, small, units) = if secs < 3600 {
                (secs / 60, secs % 60, ["m", "s"])
            } else {
                (secs / 3600, secs / 60 % 60, ["h", "m"])
            };
            push_u64(out, big);
            out.extend_from_slice(units[0].as_bytes());
            if small < 10 {
                out.push(b'0');
            }
            push_u64(out, small);
            out.extend_from_slice(units[1].as_bytes());
            return;
        }
    };
    push_u64(out, whole);
    if frac_digits > 0 {
        out.push(b'.');
        if frac_digits == 2 && frac < 10 {
            out.push(b'0');
        }
        push_u64(out, frac);
    }
    out.extend_from_slice(unit.as_bytes());
}

/// A short human duration as a string (lifetimes in alert messages, report
/// columns): [`push_duration`]'s `850ns`, `1.2ms`, `3.25s`, `4m05s`.
pub fn duration(ns: u64) -> String {
    let mut out = Vec::new();
    push_duration(&mut out, ns);
    String::from_utf8_lossy(&out).into_owned()
}

/// `2310` as `2,310`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span for a message: the same as [`duration`] (`850.0ms`, `3.00s`, `45.0s`,
/// `12m00s`), so an alert, a line and the summary write one window alike.
pub fn span(ns: u64) -> String {
    duration(ns)
}

/// A rate per second: integers from 10/s up (`12/s`, `2,310/s`), one decimal
/// below (`2.5/s`), two below 1/s (`0.25/s`); `?/s` for no number.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return "?/s".into();
    }
    if per_sec >= 10.0 {
        format!("{}/s", thousands(per_sec as u64))
    } else if per_sec >= 1.0 {
        format!("{:.1}/s", (per_sec * 10.0).floor() / 10.0)
    } else {
        format!("{:.2}/s", (per_sec * 100.0).floor() / 100.0)
    }
}

/// `1 child` / `2 children`, `1,200 records`: the count with the word that fits it.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
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
    fn durations() {
        let cases = [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.0us"),
            (12_345, "12.3us"),
            (999_999, "999.9us"),
            (1_000_000, "1.0ms"),
            (999_999_999, "999.9ms"),
            (1_000_000_000, "1.00s"),
            (3_050_000_000, "3.05s"),
            (9_999_999_999, "9.99s"),
            (10_000_000_000, "10.0s"),
            (45_250_000_000, "45.2s"),
            (59_999_999_999, "59.9s"),
            (60_000_000_000, "1m00s"),
            (245_000_000_000, "4m05s"),
            (3_600_000_000_000, "1h00m"),
            (7_620_000_000_000, "2h07m"),
        ];
        for (ns, want) in cases {
            let mut v = Vec::new();
            push_duration(&mut v, ns);
            assert_eq!(String::from_utf8(v).unwrap(), want, "{ns} ns");
        }
    }

    #[test]
    fn numbers_and_spans() {
        const MS: u64 = 1_000_000;
        const S: u64 = 1_000_000_000;
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2310), "2,310");
        assert_eq!(thousands(4812), "4,812");
        assert_eq!(thousands(1_234_567), "1,234,567");
        // A window is written the same way as a lifetime on an event line.
        assert_eq!(span(800 * MS), "800.0ms");
        assert_eq!(span(10 * MS), "10.0ms");
        assert_eq!(span(3 * S), "3.00s");
        assert_eq!(span(45 * S), "45.0s");
        assert_eq!(span(720 * S), "12m00s");
        assert_eq!(span(3 * 3600 * S + 1800 * S), "3h30m");
        assert_eq!(duration(1_600_000), "1.6ms");
    }

    #[test]
    fn rates_and_plurals() {
        assert_eq!(rate(2310.4), "2,310/s");
        assert_eq!(rate(12.54), "12/s");
        assert_eq!(rate(10.0), "10/s");
        assert_eq!(rate(9.99), "9.9/s");
        assert_eq!(rate(2.5), "2.5/s");
        assert_eq!(rate(0.25), "0.25/s");
        assert_eq!(rate(0.0), "0.00/s");
        assert_eq!(rate(f64::NAN), "?/s");
        assert_eq!(rate(-1.0), "?/s");
        assert_eq!(plural(0, "record", "records"), "0 records");
        assert_eq!(plural(1, "record", "records"), "1 record");
        assert_eq!(plural(2, "process", "processes"), "2 processes");
        assert_eq!(plural(1200, "child", "children"), "1,200 children");
    }
}
