//! A line reader that never holds more than a fixed number of bytes of one line.
//!
//! `BufRead::read_until` grows its buffer to the length of the line, so one line of
//! garbage without a newline (a binary file, a corrupted disk block) could take all
//! memory. This reader keeps at most `max` bytes; a longer line is skipped up to its
//! newline and reported as [`Line::TooLong`] with its length.

use std::io::{self, BufRead};

/// One line of input, without its `\n`.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line that ended with `\n`.
    Full(&'a [u8]),
    /// The last line of the input, which has no `\n`: possibly cut short by a crash.
    Unterminated(&'a [u8]),
    /// A line longer than the limit; `len` bytes (without the `\n`) were skipped.
    TooLong { len: u64 },
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    /// Number of the line returned last (1-based).
    line_no: u64,
    /// Bytes consumed from `inner` so far.
    bytes: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            max,
            line_no: 0,
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next line and its number (1-based), or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        // Set once the line is over the limit: from then on bytes are only counted.
        let mut skipped: Option<u64> = None;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                // End of input.
                if let Some(len) = skipped {
                    self.line_no += 1;
                    return Ok(Some((self.line_no, Line::TooLong { len })));
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                self.line_no += 1;
                return Ok(Some((self.line_no, Line::Unterminated(&self.buf))));
            }
            let newline = avail.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(avail.len());
            match &mut skipped {
                Some(len) => *len += take as u64,
                None if self.buf.len() + take > self.max => {
                    skipped = Some((self.buf.len() + take) as u64);
                    self.buf.clear();
                    self.buf.shrink_to(self.max.min(64 * 1024));
                }
                None => self.buf.extend_from_slice(&avail[..take]),
            }
            let consumed = take + usize::from(newline.is_some());
            self.inner.consume(consumed);
            self.bytes += consumed as u64;
            if newline.is_some() {
                self.line_no += 1;
                let line = match skipped {
                    Some(len) => Line::TooLong { len },
                    None => Line::Full(&self.buf),
                };
                return Ok(Some((self.line_no, line)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// All lines, as owned values, reading through a small buffer so that lines
    /// span several `fill_buf` calls.
    fn lines(input: &[u8], max: usize, cap: usize) -> Vec<(u64, String)> {
        let mut r = LineReader::new(BufReader::with_capacity(cap, input), max);
        let mut out = Vec::new();
        while let Some((n, line)) = r.next_line().unwrap() {
            let s = match line {
                Line::Full(b) => format!("full {}", String::from_utf8_lossy(b)),
                Line::Unterminated(b) => format!("unterminated {}", String::from_utf8_lossy(b)),
                Line::TooLong { len } => format!("too long {len}"),
            };
            out.push((n, s));
        }
        assert_eq!(r.bytes_read(), input.len() as u64);
        out
    }

    #[test]
    fn splits_lines_and_numbers_them() {
        for cap in [1, 3, 4096] {
            assert_eq!(
                lines(b"ab\n\ncd\n", 10, cap),
                vec![
                    (1, "full ab".into()),
                    (2, "full ".into()),
                    (3, "full cd".into())
                ]
            );
        }
    }

    #[test]
    fn last_line_without_newline_is_unterminated() {
        assert_eq!(
            lines(b"ab\ncd", 10, 2),
            vec![(1, "full ab".into()), (2, "unterminated cd".into())]
        );
        assert!(lines(b"", 10, 2).is_empty());
    }

    #[test]
    fn long_lines_are_skipped_with_their_length() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\nfine\n");
        input.extend(std::iter::repeat_n(b'y', 50));
        for cap in [1, 7, 4096] {
            assert_eq!(
                lines(&input, 10, cap),
                vec![
                    (1, "full ok".into()),
                    (2, "too long 100".into()),
                    (3, "full fine".into()),
                    (4, "too long 50".into()),
                ]
            );
        }
        // Exactly at the limit is fine.
        assert_eq!(
            lines(b"0123456789\n", 10, 3),
            vec![(1, "full 0123456789".into())]
        );
    }

    #[test]
    fn never_buffers_more_than_the_limit() {
        let input = vec![b'z'; 1 << 20];
        let mut r = LineReader::new(BufReader::with_capacity(4096, &input[..]), 1000);
        let (_, line) = r.next_line().unwrap().unwrap();
        assert_eq!(line, Line::TooLong { len: 1 << 20 });
        assert!(r.buf.capacity() <= 64 * 1024);
    }
}
