//! Tetragon's JSON export: where it comes from (`source`), lines (`lines`, `driver`), and the
//! parse of an event (a fast scanner for the usual shape, serde for the rest).
pub(crate) mod driver;
pub(crate) mod event;
pub(crate) mod lines;
#[cfg(test)]
mod props;
pub(crate) mod scalars;
pub(crate) mod scan;
pub(crate) mod scan_cache;
mod scan_event;
pub mod source;
pub(crate) mod time;

use self::event::Envelope;
use self::scan_cache::PodMemo;

/// Parses one line into `env` (a fresh `Envelope::default()`, filled in place: it is large,
/// and moving it costs); false when the line is not UTF-8, not JSON or not an object.
pub fn parse_line<'a>(line: &'a [u8], env: &mut Envelope<'a>, memo: &mut PodMemo) -> bool {
    // simdutf8 agrees with std on what is UTF-8, and is much faster on ASCII.
    let Ok(text) = simdutf8::basic::from_utf8(line) else {
        return false;
    };
    if scan::scan_into(text, env, memo).is_some() {
        return true;
    }
    match serde_json::from_str(text) {
        Ok(parsed) => {
            *env = parsed;
            true
        }
        Err(_) => false,
    }
}

/// serde alone, for the property test that holds the fast scanner to the same answers.
#[cfg(test)]
pub fn parse_line_serde(line: &[u8]) -> Option<Envelope<'_>> {
    serde_json::from_str(std::str::from_utf8(line).ok()?).ok()
}
