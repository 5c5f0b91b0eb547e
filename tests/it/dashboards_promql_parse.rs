//! A small PromQL reader: the metrics an expression reads and the labels its selectors match.
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn metric_names_skip_functions_labels_and_keywords() {
    let expr = concat!(
        r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="", pod=~"a|b"}[5m])"#,
        r#" * on (namespace, pod) group_left (workload) max by (namespace, pod, workload) (label_replace("#,
        r#"kube_pod_owner{owner_kind="ReplicaSet"}, "workload", "$1", "owner_name", "(.+)"))) > 0"#,
        r#" or vector(0) unless node_load1 offset 5m"#
    );
    let names: Vec<(String, Vec<String>)> = metric_names(expr)
        .into_iter()
        .map(|(m, l)| (m, l.into_iter().collect()))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names,
        [
            (
                "container_cpu_usage_seconds_total".into(),
                s(&["container", "pod"])
            ),
            ("kube_pod_owner".into(), s(&["owner_kind"])),
            ("node_load1".into(), s(&[])),
        ]
    );
}

/// Metric names in a PromQL expression (identifiers outside strings, label matchers, ranges and
/// `by`/`on`-style label lists that are neither functions nor keywords), each with the label
/// names its selectors match on.
pub fn metric_names(expr: &str) -> BTreeMap<String, BTreeSet<String>> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut i, mut braces, mut parens) = (0, 0usize, 0usize);
    let mut label_list_at: Option<usize> = None;
    let mut expect_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '{' {
            braces += 1;
        } else if c == '}' {
            braces = braces.saturating_sub(1);
        } else if c == '(' {
            parens += 1;
            if expect_label_list {
                label_list_at = Some(parens);
                expect_label_list = false;
            }
        } else if c == ')' {
            if label_list_at == Some(parens) {
                label_list_at = None;
            }
            parens = parens.saturating_sub(1);
        } else if c.is_ascii_digit() {
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric() || chars[i + 1] == '.')
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric()
                    || chars[i + 1] == '_'
                    || chars[i + 1] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..=i].iter().collect();
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if braces > 0 || label_list_at.is_some() {
                // a label name
            } else if LABEL_LISTS.contains(&word.as_str()) {
                expect_label_list = next == Some(&'(');
            } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                let labels = out.entry(word).or_default();
                if next == Some(&'{') {
                    let open = i + 1 + chars[i + 1..].iter().position(|c| *c == '{').unwrap_or(0);
                    labels.extend(matcher_labels(&chars[open + 1..]));
                }
            }
        }
        i += 1;
    }
    out
}

/// Label names of the matchers in `chars`, which start just after a selector's `{`.
fn matcher_labels(chars: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() && chars[i] != '}' {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
        }
        i += 1;
    }
    out
}
