//! A fast path for the common line: a hand-rolled JSON scanner that fills the same `Envelope`
//! as serde, checking but not keeping what the agent does not read (strings are searched
//! sixteen bytes at a time). Anything unusual (escapes in a field it reads, duplicate fields,
//! odd types, control bytes, deep nesting) makes it give up, and serde decides; so the two
//! always agree (property tests check it, with and without the pod memo).
use std::borrow::Cow;

use wide::u8x16;

use crate::agent::tetragon::event::Envelope;
use crate::agent::tetragon::scalars::{FlexI64, FlexU64, Str};
use crate::agent::tetragon::scan_cache::PodMemo;

type R<T> = Option<T>;

/// Fills `env` from a line of the usual shape; `None` when the line is not of that shape
/// (serde then parses it, into a fresh `Envelope`: `env` may be half-filled).
pub fn scan_into<'a>(line: &'a str, env: &mut Envelope<'a>, memo: &mut PodMemo) -> Option<()> {
    (scan_prefix(line, env, memo)? == line.len()).then_some(())
}

/// `scan_into` on the line at the start of `text`, which may go on past the line: where the
/// event and the spaces after it end. The scanner never takes a newline (it is neither a
/// space nor allowed raw in a string), so it cannot read past the end of the line; the caller
/// checks that a newline is what comes next.
pub fn scan_prefix<'a>(text: &'a str, env: &mut Envelope<'a>, memo: &mut PodMemo) -> Option<usize> {
    let mut p = P {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    p.envelope(env, memo)?;
    p.ws();
    Some(p.i)
}

/// `scan_into` for the tests that compare the scanner with serde.
#[cfg(test)]
pub fn scan(line: &str) -> Option<Envelope<'_>> {
    let mut env = Envelope::default();
    scan_into(line, &mut env, &mut PodMemo::default()).map(|()| env)
}

/// How deep a skipped value may nest (the bit stack of `skip_value`).
const MAX_SKIP_DEPTH: u32 = 64;

pub(super) struct P<'a> {
    pub(super) s: &'a str,
    pub(super) b: &'a [u8],
    pub(super) i: usize,
}

/// Position of the first byte a string scan must stop at: `"`, `\\`, or a control byte
/// (JSON forbids those raw in strings; the line then goes to serde). Sixteen bytes at a time
/// (SSE2 through `wide`); the last few through a padded copy.
#[inline]
fn find_special(b: &[u8]) -> Option<usize> {
    let hits = |v: u8x16| {
        let quote = v.simd_eq(u8x16::splat(b'"'));
        let backslash = v.simd_eq(u8x16::splat(b'\\'));
        let control = v.min(u8x16::splat(0x1f)).simd_eq(v);
        (quote | backslash | control).to_bitmask()
    };
    let mut chunks = b.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        let m = hits(u8x16::new(chunk.try_into().ok()?));
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 16;
    }
    let rest = chunks.remainder();
    let mut pad = [b' '; 16];
    pad[..rest.len()].copy_from_slice(rest);
    let m = hits(u8x16::new(pad));
    (m != 0).then(|| at + m.trailing_zeros() as usize)
}

/// The common integer: an optional `-` and 1 to 18 digits (no overflow possible); else `None`
/// and `str::parse` decides.
#[inline]
fn small_int(t: &[u8]) -> Option<i128> {
    let (neg, digits) = match t.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(i128::from(if neg { -v } else { v }))
}

pub(super) fn once(seen: &mut u8, bit: u8) -> R<()> {
    let first = *seen & bit == 0;
    *seen |= bit;
    first.then_some(())
}

impl<'a> P<'a> {
    /// Skips spaces: rare between tokens (Tetragon writes compact JSON), so out of line.
    #[cold]
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i] == b' ' {
            self.i += 1;
        }
    }

    /// The next byte that is not a space; one compare when there is none (the usual case).
    #[inline(always)]
    pub(super) fn peek(&mut self) -> R<u8> {
        let c = *self.b.get(self.i)?;
        if c != b' ' {
            return Some(c);
        }
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    pub(super) fn literal(&mut self, lit: &[u8]) -> R<()> {
        self.peek()?;
        let end = self.i + lit.len();
        (self.b.get(self.i..end)? == lit).then(|| self.i = end)
    }

    /// A string without escapes, borrowed.
    #[inline]
    pub(super) fn string(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let n = find_special(&self.b[start..])?;
        if self.b[start + n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        self.s.get(start..start + n)
    }

    fn skip_string(&mut self) -> R<()> {
        self.eat(b'"')?;
        loop {
            let n = find_special(&self.b[self.i..])?;
            self.i += n + 1;
            match self.b[self.i - 1] {
                b'"' => return Some(()),
                b'\\' => {}
                _ => return None,
            }
            match *self.b.get(self.i)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 5;
                }
                _ => return None,
            }
        }
    }

    #[inline]
    fn skip_number(&mut self) -> R<()> {
        self.number().map(|_| ())
    }

    /// A number token, checked against JSON's grammar.
    fn number(&mut self) -> R<&'a str> {
        self.peek()?;
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.i < p.b.len() && p.b[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - s
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            (digits(self) > 0).then_some(())?;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            (digits(self) > 0).then_some(())?;
        }
        self.s.get(start..self.i)
    }

    /// Skips one value of any kind, checking it against JSON's grammar. Iterative: the open
    /// containers are a bit stack (1 = object), at most `MAX_SKIP_DEPTH` deep (deeper lines go
    /// to serde, which has its own limit).
    pub(super) fn skip_value(&mut self) -> R<()> {
        let mut stack: u64 = 0;
        let mut depth = 0u32;
        loop {
            // A value.
            match self.peek()? {
                b'"' => self.skip_string()?,
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    let close = open + 2; // `}` and `]` follow `{` and `[` in ASCII
                    if self.peek()? == close {
                        self.i += 1;
                    } else {
                        if depth == MAX_SKIP_DEPTH {
                            return None;
                        }
                        depth += 1;
                        stack = stack << 1 | u64::from(open == b'{');
                        if open == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.skip_number()?,
            }
            // After a value: close what ends here, then a separator before the next value.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let in_object = stack & 1 == 1;
                match (self.peek()?, in_object) {
                    (b',', true) => {
                        self.i += 1;
                        self.key()?;
                        break;
                    }
                    (b',', false) => {
                        self.i += 1;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.i += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// An object key that is not read, and its colon. Keys with escapes give up (serde checks
    /// the escapes of keys, ignored or not, more strictly than those of ignored values).
    #[inline]
    fn key(&mut self) -> R<()> {
        self.eat(b'"')?;
        let n = find_special(&self.b[self.i..])?;
        (self.b[self.i + n] == b'"').then_some(())?;
        self.i += n + 1;
        self.eat(b':')
    }

    #[inline]
    pub(super) fn object(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            f(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    #[inline]
    pub(super) fn array(&mut self, mut f: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            f(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null` -> None, else the value parsed by `f`.
    #[inline]
    pub(super) fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        f(self).map(Some)
    }

    /// `null` -> `None` in `slot`, else `f` fills a default value in place (no moves).
    #[inline]
    pub(super) fn opt_into<T: Default>(
        &mut self,
        slot: &mut Option<T>,
        f: impl FnOnce(&mut Self, &mut T) -> R<()>,
    ) -> R<()> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            *slot = None;
            return Some(());
        }
        f(self, slot.insert(T::default()))
    }

    #[inline]
    pub(super) fn opt_str(&mut self) -> R<Option<Str<'a>>> {
        self.opt(|p| p.string().map(|s| Str(Cow::Borrowed(s))))
    }

    fn int(&mut self) -> R<Option<i128>> {
        self.opt(|p| {
            let text = if p.peek()? == b'"' {
                p.string()?
            } else {
                p.number()?
            };
            if let Some(v) = small_int(text.as_bytes()) {
                return Some(v);
            }
            if text.len() > 30 || text.contains(['.', 'e', 'E']) {
                return None;
            }
            text.parse::<i128>().ok()
        })
    }

    pub(super) fn u64(&mut self) -> R<Option<FlexU64>> {
        self.int()?
            .map(|v| u64::try_from(v).ok().map(FlexU64))
            .map_or(Some(None), |v| v.map(Some))
    }

    pub(super) fn i64(&mut self) -> R<Option<FlexI64>> {
        self.int()?
            .map(|v| i64::try_from(v).ok().map(FlexI64))
            .map_or(Some(None), |v| v.map(Some))
    }
}
