//! A fast path for the common line: a hand-rolled JSON scanner that fills the same `Envelope`
//! as serde, skipping what the agent does not read with memchr. Anything unusual (escapes in
//! a field it reads, duplicate fields, odd types, control bytes, deep nesting) makes it give
//! up, and serde decides; so the two always agree (a property test checks it).
use std::borrow::Cow;

use super::event::Envelope;
use super::scalars::{FlexI64, FlexU64, Str};

type R<T> = Option<T>;

/// `None` when the line is not of the usual shape (serde then parses it).
pub fn scan(line: &str) -> Option<Envelope<'_>> {
    // JSON forbids raw control bytes in strings; rather than check each string, give up on
    // the rare line that has any. (Written as a fold so it vectorises.)
    if line.bytes().fold(false, |a, c| a | (c < 0x20)) {
        return None;
    }
    let mut p = P {
        s: line,
        b: line.as_bytes(),
        i: 0,
    };
    let env = p.envelope()?;
    p.ws();
    (p.i == p.b.len()).then_some(env)
}

pub(super) struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Position of the first `"` or `\\`, eight bytes at a time (SWAR): most strings here are
/// short keys, where memchr's setup costs more than it saves; long values go to memchr.
#[inline]
fn find_quote(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit set in the lowest byte that is zero (higher ones may be false positives).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while i < 64 {
        let Some(chunk) = b.get(i..i + 8) else { break };
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let m = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < 64 {
        return b[i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map(|n| n + i);
    }
    memchr::memchr2(b'"', b'\\', &b[i..]).map(|n| n + i)
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
    #[inline]
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i] == b' ' {
            self.i += 1;
        }
    }

    #[inline]
    pub(super) fn peek(&mut self) -> R<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    pub(super) fn literal(&mut self, lit: &[u8]) -> R<()> {
        self.ws();
        let end = self.i + lit.len();
        (self.b.get(self.i..end)? == lit).then(|| self.i = end)
    }

    /// A string without escapes, borrowed.
    #[inline]
    pub(super) fn string(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let n = find_quote(&self.b[start..])?;
        if self.b[start + n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        self.s.get(start..start + n)
    }

    fn skip_string(&mut self) -> R<()> {
        self.eat(b'"')?;
        loop {
            let n = find_quote(&self.b[self.i..])?;
            self.i += n + 1;
            if self.b[self.i - 1] == b'"' {
                return Some(());
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

    /// A number token, checked against JSON's grammar.
    fn number(&mut self) -> R<&'a str> {
        self.ws();
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

    pub(super) fn skip_value(&mut self, depth: u32) -> R<()> {
        if depth > 100 {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.skip_object(depth + 1),
            b'[' => self.array(|p: &mut Self| p.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    /// An object whose content is not read. Keys with escapes give up (serde checks the
    /// escapes of keys, ignored or not, more strictly than those of ignored values).
    fn skip_object(&mut self, depth: u32) -> R<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.string()?;
            self.eat(b':')?;
            self.skip_value(depth)?;
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
