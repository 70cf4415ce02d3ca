//! Numbers and durations in words and digits, the one place both the alert
//! messages and the writers take them from (so `alerts` and `output` need not
//! import each other): decimal digits without a formatter, `2,310`, `3.25s`,
//! `45 s`.

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

/// A short human duration: `850ns`, `12.5us`, `1.2ms`, `3.25s`, `4m05s`, `2h07m`.
/// Truncated, not rounded, so it never claims more time than there was.
pub fn push_duration(out: &mut Vec<u8>, ns: u64) {
    let (whole, frac, frac_digits, unit): (u64, u64, usize, &str) = match ns {
        0..1_000 => (ns, 0, 0, "ns"),
        1_000..1_000_000 => (ns / 1_000, ns / 100 % 10, 1, "us"),
        1_000_000..1_000_000_000 => (ns / 1_000_000, ns / 100_000 % 10, 1, "ms"),
        1_000_000_000..60_000_000_000 => (ns / 1_000_000_000, ns / 10_000_000 % 100, 2, "s"),
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

/// A span for a message: `0.8 s`, `45 s`, `12 min`, `3.5 h`.
pub fn span(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 100.0 {
        format!("{} s", s as u64)
    } else if s < 6000.0 {
        format!("{} min", (s / 60.0) as u64)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
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
            (59_999_999_999, "59.99s"),
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
        assert_eq!(span(800 * MS), "0.8 s");
        assert_eq!(span(45 * S), "45 s");
        assert_eq!(span(720 * S), "12 min");
        assert_eq!(span(3 * 3600 * S + 1800 * S), "3.5 h");
        assert_eq!(duration(1_600_000), "1.6ms");
    }
}
