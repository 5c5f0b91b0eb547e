//! A `.env` file's bytes -> its entries with line numbers, parsed by dotenvy; syntax errors that
//! name the line and key but never echo the line (it may hold a secret).
use std::collections::BTreeMap;
use std::path::Path;

use super::error::{ConfigError, Place, Source};

/// One `KEY=value` of a file, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses a dotenv file's bytes. `path` only names the file in messages. Values are dotenvy's
/// (quotes, escapes, `${VAR}` substitution); dotenvy reports no line numbers, so the file is also
/// split into entries here with the same quoting rules, and the two are zipped.
///
/// dotenvy resolves `$VAR` outside single quotes from the process environment first, then from
/// earlier lines: the one way the process environment reaches into a file's values.
///
/// Every bad line is reported, in one error when there are several (see `parse_all`).
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<Entry>, ConfigError> {
    let (entries, problems) = parse_all(path, bytes)?;
    match ConfigError::combine(problems) {
        Some(e) => Err(e),
        None => Ok(entries),
    }
}

/// Parses a dotenv file's bytes into the entries that could be read and a problem for each line
/// that could not (syntax, a key set twice), so one run names them all: dotenvy goes on with the
/// next logical line after a bad one. Only a file that is not UTF-8 stops at once.
pub fn parse_all(path: &Path, bytes: &[u8]) -> Result<(Vec<Entry>, Vec<ConfigError>), ConfigError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(e) => return Err(not_utf8(path, bytes, e.valid_up_to())),
    };
    // dotenvy rejects a last line that ends in whitespace without a newline; a newline is harmless.
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let spans = split(&text);
    let mut entries: Vec<Entry> = Vec::with_capacity(spans.len());
    let mut problems = Vec::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (item, span) in dotenvy::from_read_iter(text.as_bytes()).zip(&spans) {
        let at = Source::File {
            path: path.to_path_buf(),
            line: span.line,
        };
        let Ok((key, value)) = item else {
            problems.push(syntax_error(&at, span));
            continue;
        };
        if let Some(first) = first_line.insert(key.clone(), span.line) {
            problems.push(ConfigError::new(
                format!(
                    "{}: set twice, on lines {first} and {}; expected each key once",
                    Place(&at, &key),
                    span.line
                ),
                format!(
                    "delete line {first} or line {} of {}",
                    span.line,
                    path.display()
                ),
            ));
            continue;
        }
        entries.push(Entry {
            key,
            value,
            line: span.line,
        });
    }
    Ok((entries, problems))
}

/// One logical entry of the file: a `KEY=value` line, or several when a quote spans lines.
#[derive(Debug)]
struct Span<'a> {
    line: usize,
    text: &'a str,
    /// The file ended inside a quote (or after a trailing backslash) that began in this entry.
    unterminated: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Plain,
    /// After whitespace outside quotes: a `#` here starts a comment.
    Space,
    Escape,
    Single,
    SingleEscape,
    Double,
    DoubleEscape,
    Comment,
}

/// Splits text into the entries dotenvy's line reader yields, skipping blank and comment lines,
/// in the same order, so the n-th span is the n-th item of `dotenvy::from_read_iter`.
fn split(text: &str) -> Vec<Span<'_>> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None; // (line, byte offset) where the entry began
    let mut state = State::Plain;
    let mut offset = 0;
    for (index, physical) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += physical.len();
        if open.is_none() {
            if physical.trim_start().starts_with('#') {
                continue;
            }
            open = Some((index + 1, start));
            state = State::Plain;
        }
        state = physical.chars().fold(state, step);
        if matches!(state, State::Plain | State::Comment)
            && let Some((line, begin)) = open.take()
        {
            spans.push(Span {
                line,
                text: &text[begin..offset],
                unterminated: false,
            });
        }
    }
    if let Some((line, begin)) = open {
        spans.push(Span {
            line,
            text: &text[begin..],
            unterminated: true,
        });
    }
    spans.retain(|s| !s.text.trim().is_empty());
    spans
}

fn step(state: State, c: char) -> State {
    use State::*;
    match (state, c) {
        (Comment, _) => Comment,
        (Space, '#') => Comment,
        (Plain | Space, '\\') => Escape,
        (Plain | Space, '"') => Double,
        (Plain | Space, '\'') => Single,
        (Plain, c) if c.is_whitespace() && c != '\n' && c != '\r' => Space,
        (Plain | Space | Escape, _) => Plain,
        (Double, '\\') => DoubleEscape,
        (Double, '"') => Plain,
        (Double, _) | (DoubleEscape, _) => Double,
        (Single, '\\') => SingleEscape,
        (Single, '\'') => Plain,
        (Single, _) | (SingleEscape, _) => Single,
    }
}

/// The key an entry starts with (after an optional `export`), and whether `=` follows it.
fn leading_key(text: &str) -> Option<(&str, bool)> {
    fn take_key(s: &str) -> Option<(&str, &str)> {
        if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(s.len());
        Some(s.split_at(end))
    }
    let (key, rest) = take_key(text.trim_start())?;
    let rest = rest.trim_start();
    if key == "export"
        && !rest.starts_with('=')
        && let Some((key, rest)) = take_key(rest)
    {
        return Some((key, rest.trim_start().starts_with('=')));
    }
    Some((key, rest.starts_with('=')))
}

/// Describes a line dotenvy could not parse, without echoing it.
fn syntax_error(at: &Source, span: &Span<'_>) -> ConfigError {
    let Some((key, has_equals)) = leading_key(span.text) else {
        return ConfigError::new(
            format!(
                "{}: not a KEY=VALUE line; expected a key of letters, digits and '_' (not starting \
                 with a digit), then '=', then the value",
                line_of(at)
            ),
            "fix the line, or turn it into a comment by starting it with #",
        );
    };
    let (problem, hint) = if !has_equals {
        (
            "no '=' after the key; expected KEY=VALUE",
            "write the line as KEY=VALUE",
        )
    } else if span.unterminated && quote_inside(span.text) {
        (
            "a quote (' or \") inside the value opens a quoted string that is never closed; \
             expected a quote to be quoted or escaped",
            "put the whole value in the other kind of quotes (KEY=\"it's\" or KEY='say \"hi\"'), \
             or escape the quote with a backslash (KEY=it\\'s)",
        )
    } else if span.unterminated {
        (
            "the value opens a quote (' or \") that is never closed; expected the closing quote",
            "close the quote; note that a quote inside a comment after the value counts too",
        )
    } else if span.text.contains("${") && !span.text.contains('}') {
        (
            "the value opens a ${ substitution that is never closed; expected ${NAME}",
            "close the substitution with }, or quote the value with '...' to keep $ literally",
        )
    } else {
        (
            "the value cannot be read: it has whitespace outside quotes or an unknown backslash \
             escape; expected a single word, or the value in quotes",
            "quote the value, e.g. KEY=\"two words\" (inside '...' nothing is special)",
        )
    };
    ConfigError::new(format!("{}: {problem}", Place(at, key)), hint)
}

/// Whether the first quote of an entry's value comes after other characters (`it's`): a quote
/// meant as part of the value, not one that opens it.
fn quote_inside(text: &str) -> bool {
    let value = text.split_once('=').map_or("", |(_, v)| v).trim_start();
    value
        .find(['\'', '"'])
        .is_some_and(|i| i > 0 && !value[..i].contains('#'))
}

/// "FILE line N", for lines without a key.
fn line_of(at: &Source) -> String {
    match at {
        Source::File { path, line } => format!("{} line {line}", path.display()),
        other => format!("{}", Place(other, "")),
    }
}

fn not_utf8(path: &Path, bytes: &[u8], valid: usize) -> ConfigError {
    let line_start = bytes[..valid]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let at = Source::File {
        path: path.to_path_buf(),
        line: 1 + bytes[..valid].iter().filter(|&&b| b == b'\n').count(),
    };
    let head = String::from_utf8_lossy(&bytes[line_start..valid]).into_owned();
    let place = match leading_key(&head) {
        Some((key, true)) => format!("{}: the value", Place(&at, key)),
        _ => line_of(&at),
    };
    ConfigError::new(
        format!("{place} is not valid UTF-8; expected a UTF-8 text file"),
        format!(
            "convert {} to UTF-8, e.g. with iconv -f latin1 -t utf-8",
            path.display()
        ),
    )
}

#[cfg(test)]
#[path = "dotenv_tests.rs"]
mod tests;
