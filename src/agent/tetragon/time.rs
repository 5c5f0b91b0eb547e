//! RFC 3339 timestamps (Tetragon's `time`, Kubernetes' metadata times) to Unix nanoseconds.

/// Parses `2026-01-01T00:00:00.123456789Z` (any number of fraction digits, `Z` or `±hh:mm`)
/// into nanoseconds since the Unix epoch. `None` for anything else; never panics.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                frac = frac * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            frac *= 10;
        }
    }
    let offset_s: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            let v = h * 3600 + m * 60;
            if *sign == b'+' { v } else { -v }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ns;

    #[test]
    fn parses_tetragon_and_kubernetes_times() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2026-01-01T00:00:00.123456789Z"),
            Some(1_767_225_600_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns("2022-08-10T19:20:11.689Z"),
            Some(1_660_159_211_689_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-01-01T01:00:00+01:00"),
            Some(1_767_225_600_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-01-01T00:00:00.1234567891Z"),
            Some(1_767_225_600_123_456_789)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2026",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zx",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ns(s), None, "{s}");
        }
    }
}
