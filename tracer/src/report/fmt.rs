//! Small formatting helpers shared by the text report and the tree.

use crate::output::escape::escape_text_into;
pub use crate::units::{duration, plural, rate, thousands};

/// `512 B`, `1.5 KiB`, `312.0 MiB`, `1.2 GiB`.
pub fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Kernel bytes for a terminal: printable UTF-8 as it is, anything else `\xNN`,
/// so nothing in the data can move the cursor or change colours.
pub fn text(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_text_into(&mut out, bytes);
    String::from_utf8_lossy(&out).into_owned()
}

/// Kernel bytes for JSON: lossy UTF-8 (U+FFFD for bad bytes). Scripts that need the
/// exact bytes read the JSON Lines records.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last path component of a file name: `/usr/bin/make` → `make`.
pub fn basename(path: &[u8]) -> &[u8] {
    let trimmed = path.strip_suffix(b" (deleted)").unwrap_or(path);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) if i + 1 < trimmed.len() => &trimmed[i + 1..],
        _ => trimmed,
    }
}

/// Cuts `s` to at most `max` characters, ending in `…` when cut.
pub fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

/// Cuts a path to at most `max` characters keeping its end (the file name), with
/// `…` in front when cut.
pub fn fit_left(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let skip = n - max.saturating_sub(1);
    let mut out = String::from("…");
    out.extend(s.chars().skip(skip));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4812), "4,812");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes_size(512), "512 B");
        assert_eq!(bytes_size(1536), "1.5 KiB");
        assert_eq!(bytes_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn strings() {
        assert_eq!(text(b"caf\xe9 \x1b[31m"), "caf\\xe9 \\x1b[31m");
        assert_eq!(lossy(b"caf\xe9"), "caf\u{fffd}");
        assert_eq!(basename(b"/usr/bin/make"), b"make");
        assert_eq!(basename(b"make"), b"make");
        assert_eq!(basename(b"/opt/x (deleted)"), b"x");
        assert_eq!(basename(b"/"), b"/");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit_left("/usr/lib/thing", 8), "…b/thing");
        assert_eq!(duration(1_600_000), "1.6ms");
    }
}
