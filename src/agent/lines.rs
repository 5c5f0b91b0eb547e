//! Splits a byte stream into lines with bounded memory: a line longer than the limit is
//! reported once as too long and discarded up to its newline, never buffered whole.

/// What the splitter hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    TooLong,
}

/// Default longest line kept: far above any Tetragon event, far below a memory problem.
pub const MAX_LINE: usize = 1 << 20;

/// Push-based splitter: complete lines inside a chunk are handed on without copying; only a
/// line that spans chunks is copied, into a buffer of at most `max_line` bytes.
pub struct Splitter {
    partial: Vec<u8>,
    max_line: usize,
    discarding: bool,
}

impl Splitter {
    pub fn new(max_line: usize) -> Self {
        Splitter {
            partial: Vec::new(),
            max_line,
            discarding: false,
        }
    }

    /// Feeds a chunk; `f` sees every line it completes. Stops at the first error of `f`.
    pub fn push<E>(
        &mut self,
        mut chunk: &[u8],
        f: &mut dyn FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let head = &chunk[..nl];
            chunk = &chunk[nl + 1..];
            if self.discarding {
                self.discarding = false;
                f(Line::TooLong)?;
            } else if self.partial.is_empty() {
                if head.len() > self.max_line {
                    f(Line::TooLong)?;
                } else {
                    f(Line::Text(head))?;
                }
            } else if self.partial.len() + head.len() > self.max_line {
                self.reset_partial();
                f(Line::TooLong)?;
            } else {
                self.partial.extend_from_slice(head);
                let r = f(Line::Text(&self.partial));
                self.reset_partial();
                r?;
            }
        }
        if !chunk.is_empty() && !self.discarding {
            if self.partial.len() + chunk.len() > self.max_line {
                self.reset_partial();
                self.discarding = true;
            } else {
                self.partial.extend_from_slice(chunk);
            }
        }
        Ok(())
    }

    /// Ends the stream: an unterminated last line is handed on as it is.
    pub fn finish<E>(&mut self, f: &mut dyn FnMut(Line<'_>) -> Result<(), E>) -> Result<(), E> {
        if self.discarding {
            self.discarding = false;
            return f(Line::TooLong);
        }
        if self.partial.is_empty() {
            return Ok(());
        }
        let r = f(Line::Text(&self.partial));
        self.reset_partial();
        r
    }

    fn reset_partial(&mut self) {
        self.partial.clear();
        // Give back the memory of an unusually long line.
        if self.partial.capacity() > 64 * 1024 {
            self.partial = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut s = Splitter::new(max);
        let mut out = Vec::new();
        let mut f = |l: Line<'_>| -> Result<(), ()> {
            out.push(match l {
                Line::Text(t) => Some(t.to_vec()),
                Line::TooLong => None,
            });
            Ok(())
        };
        for c in chunks {
            s.push(c, &mut f).unwrap();
        }
        s.finish(&mut f).unwrap();
        out
    }

    #[test]
    fn splits_across_chunks_and_keeps_the_last_line() {
        let got = split(&[b"ab\nc", b"d\n\ne", b"f"], 10);
        let want: Vec<Option<Vec<u8>>> = vec![
            Some(b"ab".to_vec()),
            Some(b"cd".to_vec()),
            Some(vec![]),
            Some(b"ef".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn long_lines_are_one_bad_line_each() {
        let got = split(
            &[b"0123", b"456789abc", b"def\nok\n", b"0123456789abcdef\nx"],
            8,
        );
        let want: Vec<Option<Vec<u8>>> =
            vec![None, Some(b"ok".to_vec()), None, Some(b"x".to_vec())];
        assert_eq!(got, want);
        assert_eq!(split(&[b"0123456789"], 8), vec![None]);
    }
}
