//! Human durations (`90s`, `10m`, `1h30m`, `7d`, `500ms`), as flags and `.env` values use them.
use std::time::Duration;

/// Parses a sequence of `<integer><unit>` parts; units: ms, s, m, h, d, w.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; expected e.g. 30s, 10m, 1h30m, 7d".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration; expected a number and a unit (ms, s, m, h, d, w), e.g. 30s, 10m, 7d"
            ));
        }
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{text}`: the number {num} is too large"))?;
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "w" => Duration::from_secs(n.saturating_mul(604_800)),
            "" => {
                return Err(format!(
                    "`{text}` has no unit; write e.g. {n}s, {n}m, {n}h or {n}d"
                ));
            }
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}`; use ms, s, m, h, d or w"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = tail;
    }
    Ok(total)
}

/// Formats a duration the way `parse` reads it, largest units first (`1h30m`, `7d`, `0s`).
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 && millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(604_800)), "7d");
        assert!(parse("-1d").is_err());
        assert!(parse("10").is_err());
        assert!(parse("ten days").is_err());
        assert!(parse("").is_err());
    }
}
