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

/// Where the splitter hands lines on.
pub trait Sink {
    type Error;

    /// One line (without its newline), or a line that was too long.
    fn line(&mut self, line: Line<'_>) -> Result<(), Self::Error>;

    /// The fast way in: `text` is valid UTF-8 and ends with a newline; the sink takes the line
    /// at its start if it can, and says how many bytes that line had with its newline (at most
    /// `max + 1`: a longer line must not be taken). `None`: `line` gets it instead.
    fn prefix(&mut self, text: &str, max: usize) -> Result<Option<usize>, Self::Error> {
        let _ = (text, max);
        Ok(None)
    }
}

/// A closure as a sink that takes every line through `line`.
struct Each<'f, E>(&'f mut dyn FnMut(Line<'_>) -> Result<(), E>);

impl<E> Sink for Each<'_, E> {
    type Error = E;

    fn line(&mut self, line: Line<'_>) -> Result<(), E> {
        (self.0)(line)
    }
}

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
        chunk: &[u8],
        f: &mut dyn FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.split(chunk, &mut Each(f), false)
    }

    /// `push`, with the chunk's whole lines offered to `sink.prefix` first: when they are
    /// valid UTF-8 (checked once for all of them), the sink can read each line where it
    /// starts, and find its end as it reads, without a search for the newline first.
    pub fn push_to<S: Sink>(&mut self, chunk: &[u8], sink: &mut S) -> Result<(), S::Error> {
        self.split(chunk, sink, true)
    }

    fn split<S: Sink>(
        &mut self,
        mut chunk: &[u8],
        sink: &mut S,
        fast: bool,
    ) -> Result<(), S::Error> {
        // First the end of a line that began in an earlier chunk.
        if self.discarding || !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                self.keep(chunk);
                return Ok(());
            };
            let head = &chunk[..nl];
            chunk = &chunk[nl + 1..];
            if self.discarding {
                self.discarding = false;
                sink.line(Line::TooLong)?;
            } else if self.partial.len() + head.len() > self.max_line {
                self.reset_partial();
                sink.line(Line::TooLong)?;
            } else {
                self.partial.extend_from_slice(head);
                let r = sink.line(Line::Text(&self.partial));
                self.reset_partial();
                r?;
            }
        }
        // Then the chunk's whole lines.
        if let Some(last) = memchr::memrchr(b'\n', chunk) {
            let (whole, tail) = chunk.split_at(last + 1);
            match fast.then(|| simdutf8::basic::from_utf8(whole)) {
                Some(Ok(text)) => self.offer(text, sink)?,
                _ => self.lines(whole, sink)?,
            }
            chunk = tail;
        }
        self.keep(chunk);
        Ok(())
    }

    /// Whole lines, each found by its newline.
    fn lines<S: Sink>(&self, mut whole: &[u8], sink: &mut S) -> Result<(), S::Error> {
        while let Some(nl) = memchr::memchr(b'\n', whole) {
            let head = &whole[..nl];
            whole = &whole[nl + 1..];
            sink.line(self.text(head))?;
        }
        Ok(())
    }

    /// Whole lines of valid UTF-8, offered to the sink where each starts.
    fn offer<S: Sink>(&self, mut text: &str, sink: &mut S) -> Result<(), S::Error> {
        while !text.is_empty() {
            let n = match sink.prefix(text, self.max_line)? {
                Some(n) => n,
                None => {
                    // `text` ends with a newline.
                    let nl = memchr::memchr(b'\n', text.as_bytes()).unwrap_or(text.len() - 1);
                    sink.line(self.text(&text.as_bytes()[..nl]))?;
                    nl + 1
                }
            };
            text = &text[n..];
        }
        Ok(())
    }

    fn text<'l>(&self, head: &'l [u8]) -> Line<'l> {
        if head.len() > self.max_line {
            Line::TooLong
        } else {
            Line::Text(head)
        }
    }

    /// The start of a line that ends in a later chunk.
    fn keep(&mut self, rest: &[u8]) {
        if rest.is_empty() || self.discarding {
            return;
        }
        if self.partial.len() + rest.len() > self.max_line {
            self.reset_partial();
            self.discarding = true;
        } else {
            self.partial.extend_from_slice(rest);
        }
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

    /// Takes the lines that start with `+` through `prefix` (as the agent's scanner takes the
    /// usual events), the others through `line`; records which way each came.
    struct Plus(Vec<(bool, Option<Vec<u8>>)>);

    impl Sink for Plus {
        type Error = ();

        fn line(&mut self, l: Line<'_>) -> Result<(), ()> {
            self.0.push((
                false,
                match l {
                    Line::Text(t) => Some(t.to_vec()),
                    Line::TooLong => None,
                },
            ));
            Ok(())
        }

        fn prefix(&mut self, text: &str, max: usize) -> Result<Option<usize>, ()> {
            let nl = text.find('\n').expect("offered text ends with a newline");
            if !text.starts_with('+') || nl > max {
                return Ok(None);
            }
            self.0.push((true, Some(text.as_bytes()[..nl].to_vec())));
            Ok(Some(nl + 1))
        }
    }

    #[test]
    fn whole_utf8_lines_are_offered_in_order_and_the_rest_split_as_before() {
        let mut s = Splitter::new(8);
        let mut sink = Plus(Vec::new());
        let chunks: [&[u8]; 4] = [
            b"+a\nb\n+c",
            b"d\n+0123456789\n+e\n\xff\n+f\n",
            b"+g\n+h",
            b"",
        ];
        for c in chunks {
            s.push_to(c, &mut sink).unwrap();
        }
        s.finish(&mut |l| sink.line(l)).unwrap();
        let t = |fast, l: &[u8]| (fast, Some(l.to_vec()));
        let want = vec![
            t(true, b"+a"),
            t(false, b"b"),
            // Began in the chunk before: through `line`.
            t(false, b"+cd"),
            // Longer than the limit: not taken, too long.
            (false, None),
            // The chunk's lines are not all UTF-8: every one through `line`.
            t(false, b"+e"),
            t(false, b"\xff"),
            t(false, b"+f"),
            t(true, b"+g"),
            // No newline at the end: through `line` when the stream ends.
            t(false, b"+h"),
        ];
        assert_eq!(sink.0, want);
    }
}
