//! Tests of the `.env` reader: line numbers, syntax errors that echo nothing, agreement with dotenvy.
use std::path::Path;

use proptest::prelude::*;

use super::*;

fn entries(text: &[u8]) -> Vec<(String, String, usize)> {
    parse_bytes(Path::new(".env"), text)
        .expect("parses")
        .into_iter()
        .map(|e| (e.key, e.value, e.line))
        .collect()
}

fn error(text: &[u8]) -> (String, String) {
    let e = parse_bytes(Path::new("x.env"), text).expect_err("is rejected");
    (e.message, e.hint.unwrap_or_default())
}

fn owned(list: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
    list.iter()
        .map(|(k, v, l)| (k.to_string(), v.to_string(), *l))
        .collect()
}

#[test]
fn finds_the_line_of_every_entry() {
    let text = b"# comment\n\nA=1\n  export B = 'two words'\nC=\"multi\nline\"\nD=x # it's fine\r\nE=\n   \nF=${A}2";
    assert_eq!(
        entries(text),
        owned(&[
            ("A", "1", 3),
            ("B", "two words", 4),
            ("C", "multi\nline", 5),
            ("D", "x", 7),
            ("E", "", 8),
            ("F", "12", 10),
        ])
    );
}

#[test]
fn single_quotes_keep_a_value_as_written() {
    assert_eq!(
        entries(b"K='a b#c$d\\n'\n"),
        owned(&[("K", "a b#c$d\\n", 1)])
    );
}

#[test]
fn strips_a_byte_order_mark_and_tolerates_trailing_space_at_the_end() {
    assert_eq!(
        entries(b"\xEF\xBB\xBFA=1\nB=2 "),
        owned(&[("A", "1", 1), ("B", "2", 2)])
    );
    assert_eq!(entries(b""), Vec::new());
}

#[test]
fn a_quote_left_open_names_the_line_and_key_only() {
    let (message, hint) = error(b"A=1\nGRAFANA_ADMIN_PASSWORD=\"hunter22\nB=2\n");
    assert_eq!(
        message,
        "x.env line 2: GRAFANA_ADMIN_PASSWORD: the value opens a quote (' or \") that is never \
         closed; expected the closing quote"
    );
    assert_eq!(
        hint,
        "close the quote; note that a quote inside a comment after the value counts too"
    );
}

#[test]
fn a_quote_inside_a_value_says_to_quote_or_escape_it() {
    let (message, hint) = error(b"A=1\nKOVENANT_CLUSTER_NAME=it's\nB=2\n");
    assert_eq!(
        message,
        "x.env line 2: KOVENANT_CLUSTER_NAME: a quote (' or \") inside the value opens a quoted \
         string that is never closed; expected a quote to be quoted or escaped"
    );
    assert_eq!(
        hint,
        "put the whole value in the other kind of quotes (KEY=\"it's\" or KEY='say \"hi\"'), or \
         escape the quote with a backslash (KEY=it\\'s)"
    );
}

#[test]
fn describes_other_syntax_errors_without_echoing_the_line() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"A=1\nDOCKER_INFLUXDB_INIT_PASSWORD=two words\n",
            "x.env line 2: DOCKER_INFLUXDB_INIT_PASSWORD: the value cannot be read: it has \
             whitespace outside quotes or an unknown backslash escape; expected a single word, or \
             the value in quotes",
        ),
        (
            b"GRAFANA_PORT 3000\n",
            "x.env line 1: GRAFANA_PORT: no '=' after the key; expected KEY=VALUE",
        ),
        (
            b"\n\n= secret\n",
            "x.env line 3: not a KEY=VALUE line; expected a key of letters, digits and '_' (not \
             starting with a digit), then '=', then the value",
        ),
        (
            b"A=${B\n",
            "x.env line 1: A: the value opens a ${ substitution that is never closed; expected ${NAME}",
        ),
        (
            b"A=\\q\n",
            "x.env line 1: A: the value cannot be read: it has whitespace outside quotes or an \
             unknown backslash escape; expected a single word, or the value in quotes",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text).0, expected);
    }
}

#[test]
fn a_duplicate_names_both_lines() {
    assert_eq!(
        error(b"A=1\nGRAFANA_PORT=1\n\nexport GRAFANA_PORT=2\n"),
        (
            "x.env line 4: GRAFANA_PORT: set twice, on lines 2 and 4; expected each key once"
                .to_string(),
            "delete line 2 or line 4 of x.env".to_string()
        )
    );
}

#[test]
fn bytes_that_are_not_utf8_name_their_line_and_key() {
    assert_eq!(
        error(b"A=1\nGRAFANA_ADMIN_PASSWORD=caf\xE9\n").0,
        "x.env line 2: GRAFANA_ADMIN_PASSWORD: the value is not valid UTF-8; expected a UTF-8 text file"
    );
    assert_eq!(
        error(b"A=1\n\xFF\n").0,
        "x.env line 2 is not valid UTF-8; expected a UTF-8 text file"
    );
}

proptest! {
    /// The split here and dotenvy's reader agree entry for entry, whatever the quoting.
    #[test]
    fn split_agrees_with_dotenvy(text in "[AB= '\"\\\\#\\n\\t${}x]{0,40}") {
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let spans = split(&text);
        let items: Vec<_> = dotenvy::from_read_iter(text.as_bytes()).collect();
        prop_assert_eq!(items.len(), spans.len(), "{:?} {:?}", text, spans);
        for (item, span) in items.iter().zip(&spans) {
            if let Ok((key, _)) = item {
                prop_assert_eq!(leading_key(span.text), Some((key.as_str(), true)));
            }
        }
    }
}
