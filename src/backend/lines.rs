//! Splits a byte stream into lines without copying complete lines.
//!
//! Network chunks rarely align with lines. Whole lines inside a chunk are handed out as
//! slices of that chunk; only a line split across chunks is assembled in a carry buffer,
//! which is reused for the whole stream.

/// Longest line accepted; a longer one means the server is not speaking the protocol.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// The line was longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Incremental line splitter.
#[derive(Debug, Default)]
pub struct LineSplitter {
    carry: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` that starts the next one belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    /// A splitter with an empty carry buffer.
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Feeds one network chunk and calls `on_line` for every complete line, without its end:
    /// `\n`, `\r\n` or a lone `\r`, as the SSE specification allows. Stops early and
    /// returns `Ok(false)` when `on_line` does.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_line: impl FnMut(&[u8]) -> bool,
    ) -> Result<bool, LineTooLong> {
        let mut rest = chunk;
        if std::mem::take(&mut self.after_cr) {
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let head = &rest[..pos];
            let mut next = pos + 1;
            if rest[pos] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            rest = &rest[next..];
            let keep_going = if self.carry.is_empty() {
                on_line(head)
            } else {
                self.carry.extend_from_slice(head);
                let line = std::mem::take(&mut self.carry);
                let go = on_line(&line);
                self.carry = line;
                self.carry.clear();
                go
            };
            if !keep_going {
                return Ok(false);
            }
        }
        if self.carry.len() + rest.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.carry.extend_from_slice(rest);
        Ok(true)
    }

    /// Bytes of an unfinished last line (a stream that ends here was cut mid-line).
    pub fn pending(&self) -> &[u8] {
        &self.carry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (Vec<String>, Vec<u8>) {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| {
                out.push(String::from_utf8_lossy(l).into_owned());
                true
            })
            .unwrap();
        }
        (out, s.pending().to_vec())
    }

    #[test]
    fn lines_across_chunk_boundaries() {
        let (lines, pending) = split(&[b"a\nb", b"c\r\n", b"\nd", b"e"]);
        assert_eq!(lines, ["a", "bc", ""]);
        assert_eq!(pending, b"de");
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_crlf_split_across_chunks_ends_one() {
        let (lines, pending) = split(&[b"a\rb\r", b"\nc\r\r", b"d"]);
        assert_eq!(lines, ["a", "b", "c", ""]);
        assert_eq!(pending, b"d");
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut s = LineSplitter::new();
        let big = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(s.feed(&big, |_| true), Err(LineTooLong));
    }

    #[test]
    fn stop_early() {
        let mut s = LineSplitter::new();
        let mut n = 0;
        assert_eq!(
            s.feed(b"1\n2\n3\n", |_| {
                n += 1;
                n < 2
            }),
            Ok(false)
        );
        assert_eq!(n, 2);
    }
}
