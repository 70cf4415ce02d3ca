//! Kernel strings (file names, argv, comm, cgroup names) are bytes, not text.
//!
//! JSON strings must be Unicode, so we write them losslessly this way:
//! - valid UTF-8 is written as it is, with the usual JSON escapes;
//! - each byte of an invalid UTF-8 sequence becomes the four characters `\xNN`
//!   (lower-case hex), which in the JSON text reads `\\xNN`;
//! - a literal backslash that is followed by `x` and two hex digits (either case)
//!   becomes `\x5c`, so that every `\xNN` in the decoded string means byte NN and
//!   every other backslash is literal. [`unescape`] applies that rule.
//!
//! The terminal gets a simpler, lossy form ([`escape_text_into`]): nothing that
//! could move the cursor or change colours reaches it.

const HEX: &[u8; 16] = b"0123456789abcdef";

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// `\xNN` in the decoded string, as JSON text (the backslash itself escaped).
fn push_json_byte_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\\\x");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

/// Writes `bytes` as a JSON string, quotes included.
pub fn escape_bytes_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    // Nearly every comm, path and argument is printable ASCII without quotes or
    // backslashes: it is its own JSON text, copied after one scan.
    if bytes
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(bytes);
    } else {
        for chunk in bytes.utf8_chunks() {
            escape_valid_into(out, chunk.valid().as_bytes());
            for &b in chunk.invalid() {
                push_json_byte_escape(out, b);
            }
        }
    }
    out.push(b'"');
}

/// Valid UTF-8 to JSON string content. Only ASCII bytes need escaping, so we copy
/// runs of other bytes in one go. A `\x..` pattern after a backslash is all ASCII,
/// so it always lies inside the same valid chunk as the backslash.
fn escape_valid_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => {
                let looks_like_escape = s.get(i + 1) == Some(&b'x')
                    && s.get(i + 2).is_some_and(|&c| is_hex(c))
                    && s.get(i + 3).is_some_and(|&c| is_hex(c));
                if looks_like_escape {
                    push_json_byte_escape(out, b'\\');
                } else {
                    out.extend_from_slice(b"\\\\");
                }
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
    out.extend_from_slice(&s[start..]);
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Turns a decoded JSON string value back into the original bytes: `\xNN` is
/// byte NN, any other backslash is literal.
pub fn unescape(s: &str) -> Vec<u8> {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && s.get(i + 1) == Some(&b'x')
            && s.get(i + 2).is_some_and(|&c| is_hex(c))
            && s.get(i + 3).is_some_and(|&c| is_hex(c))
        {
            out.push(hex_value(s[i + 2]) << 4 | hex_value(s[i + 3]));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// The string value a JSON reader gets for `bytes` written by
/// [`escape_bytes_into`] (`\xNN` for invalid bytes, as text).
pub fn json_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut start = 0;
        for (i, b) in valid.bytes().enumerate() {
            let looks_like_escape = b == b'\\'
                && valid.as_bytes().get(i + 1) == Some(&b'x')
                && valid.as_bytes().get(i + 2).is_some_and(|&c| is_hex(c))
                && valid.as_bytes().get(i + 3).is_some_and(|&c| is_hex(c));
            if looks_like_escape {
                out.push_str(&valid[start..i]);
                out.push_str("\\x5c");
                start = i + 1;
            }
        }
        out.push_str(&valid[start..]);
        for &b in chunk.invalid() {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Writes `bytes` for a human at a terminal: valid, printable UTF-8 as it is;
/// invalid bytes and control characters (C0, DEL, C1) as `\xNN` per byte, so an
/// argument cannot inject escape sequences. Not reversible: backslashes stay as
/// they are.
pub fn escape_text_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut start = 0;
        for (i, c) in valid.char_indices() {
            if !c.is_control() {
                continue;
            }
            out.extend_from_slice(&valid.as_bytes()[start..i]);
            let end = i + c.len_utf8();
            for &b in &valid.as_bytes()[i..end] {
                push_text_byte_escape(out, b);
            }
            start = end;
        }
        out.extend_from_slice(&valid.as_bytes()[start..]);
        for &b in chunk.invalid() {
            push_text_byte_escape(out, b);
        }
    }
}

fn push_text_byte_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\x");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        escape_bytes_into(&mut out, bytes);
        String::from_utf8(out).expect("escaped JSON is UTF-8")
    }

    /// The decoded JSON string value, as a reader would see it.
    fn decoded(bytes: &[u8]) -> String {
        serde_json::from_str::<String>(&json(bytes)).expect("escaped output is a JSON string")
    }

    #[test]
    fn json_text_is_what_a_json_reader_decodes() {
        let cases: [&[u8]; 8] = [
            b"plain",
            b"",
            b"\\xff literal \\x4",
            b"\\x41\\\\x41",
            b"\xff\xfe\xc3",
            "日本 \u{200b}".as_bytes(),
            b"\n\t\"\x01\x7f",
            b"a\\",
        ];
        for c in cases {
            assert_eq!(json_text(c), decoded(c), "{c:?}");
        }
    }

    fn text(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        escape_text_into(&mut out, bytes);
        String::from_utf8(out).expect("text escape is UTF-8")
    }

    #[test]
    fn plain_utf8_is_unchanged() {
        assert_eq!(json(b"/usr/bin/ls"), r#""/usr/bin/ls""#);
        assert_eq!(decoded("grüße 日本".as_bytes()), "grüße 日本");
        assert_eq!(json("é".as_bytes()).as_bytes(), "\"é\"".as_bytes());
    }

    #[test]
    fn json_specials_are_escaped() {
        assert_eq!(json(b"a\"b"), r#""a\"b""#);
        assert_eq!(json(b"a\\b"), r#""a\\b""#);
        assert_eq!(json(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(json(b"\x00\x1b\x1f"), r#""\u0000\u001b\u001f""#);
        assert_eq!(decoded(b"a\\b\"c\x01"), "a\\b\"c\u{1}");
    }

    #[test]
    fn invalid_bytes_become_backslash_x() {
        assert_eq!(json(b"a\xffb"), r#""a\\xffb""#);
        assert_eq!(decoded(b"a\xffb"), "a\\xffb");
        // A truncated 3-byte sequence: each of its bytes is escaped.
        assert_eq!(decoded(b"\xe6\x97"), "\\xe6\\x97");
        assert_eq!(decoded(b"\x80"), "\\x80");
    }

    #[test]
    fn literal_backslash_x_is_protected() {
        assert_eq!(decoded(b"\\x41"), "\\x5cx41");
        assert_eq!(decoded(b"\\xAf"), "\\x5cxAf");
        // Not followed by two hex digits: literal backslash, no protection needed.
        assert_eq!(decoded(b"\\x4"), "\\x4");
        assert_eq!(decoded(b"\\xg1"), "\\xg1");
        assert_eq!(decoded(b"\\"), "\\");
        assert_eq!(unescape("\\x5cx41"), b"\\x41");
    }

    #[test]
    fn unescape_rules() {
        assert_eq!(unescape("plain"), b"plain");
        assert_eq!(unescape("\\xff\\xFE"), b"\xff\xfe");
        assert_eq!(unescape("\\x"), b"\\x");
        assert_eq!(unescape("\\x4"), b"\\x4");
        assert_eq!(unescape("a\\b"), b"a\\b");
        assert_eq!(unescape("日本"), "日本".as_bytes());
    }

    /// splitmix64: a tiny deterministic generator, good enough to shake out cases.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Bytes biased towards the interesting ones: backslashes, `x`, hex digits,
    /// quotes, controls, UTF-8 lead/continuation bytes and whole characters.
    fn random_bytes(rng: &mut Rng) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\\",
            b"x",
            b"a",
            b"F",
            b"0",
            b"9",
            b"g",
            b"\"",
            b"\n",
            b"\x00",
            b"\x7f",
            b"\xc3",
            b"\xa9",
            b"\xe6\x97\xa5",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"\x80",
            b"\xed\xa0\x80",
            b"\\x",
            b"\\x4",
            b"\\x41",
            b" ",
            b"\xc2\x85",
        ];
        let len = rng.below(24);
        let mut v = Vec::new();
        for _ in 0..len {
            if rng.below(4) == 0 {
                v.push(rng.next() as u8);
            } else {
                v.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
            }
        }
        v
    }

    /// The plain-ASCII shortcut writes what the general path would.
    #[test]
    fn plain_ascii_shortcut_agrees_with_the_general_path() {
        fn general(bytes: &[u8]) -> Vec<u8> {
            let mut out = vec![b'"'];
            for chunk in bytes.utf8_chunks() {
                escape_valid_into(&mut out, chunk.valid().as_bytes());
                for &b in chunk.invalid() {
                    push_json_byte_escape(&mut out, b);
                }
            }
            out.push(b'"');
            out
        }
        let mut rng = Rng(0xa5c11);
        let mut cases: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b'a', b, b'z']).collect();
        cases.extend((0..20_000).map(|_| random_bytes(&mut rng)));
        cases.push(b"/usr/bin/true --flag=1 ~ \x7f".to_vec());
        for bytes in cases {
            let mut out = Vec::new();
            escape_bytes_into(&mut out, &bytes);
            assert_eq!(out, general(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn random_round_trips() {
        let mut rng = Rng(0x5eed);
        for _ in 0..20_000 {
            let bytes = random_bytes(&mut rng);
            let s = decoded(&bytes);
            assert_eq!(unescape(&s), bytes, "round trip of {bytes:?} via {s:?}");
            // The text form never carries raw control characters.
            assert!(!text(&bytes).chars().any(char::is_control), "{bytes:?}");
        }
    }

    #[test]
    fn valid_strings_without_backslash_decode_to_themselves() {
        let mut rng = Rng(7);
        for _ in 0..5_000 {
            let bytes = random_bytes(&mut rng);
            if let Ok(s) = std::str::from_utf8(&bytes)
                && !s.contains('\\')
            {
                assert_eq!(decoded(&bytes), s);
            }
        }
    }

    #[test]
    fn text_escapes_controls_and_invalid_bytes() {
        assert_eq!(text(b"ls -la"), "ls -la");
        assert_eq!(text("grüße".as_bytes()), "grüße");
        assert_eq!(text(b"a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(text(b"a\nb\x7f"), "a\\x0ab\\x7f");
        assert_eq!(text(b"\xc2\x85"), "\\xc2\\x85");
        assert_eq!(text(b"a\xffb"), "a\\xffb");
        assert_eq!(text(b"a\\b"), "a\\b");
    }
}
