//! Grafana's side of an InfluxQL query: variable selections, interpolation, WHERE as a predicate.
use std::collections::BTreeMap;

use crate::dashboards::{Query, queries, rendered};
use crate::dashboards_influx::{CORPUS_SPAN_MS, CORPUS_START_MS, Point};

/// Grafana's `$__interval` in the tests; panels' minimum interval is the agent window (10 s).
pub const INTERVAL_MS: i64 = 10_000;

/// Dashboard variable -> the tag it filters, per measurement.
pub fn variable_tag(measurement: &str, var: &str) -> &'static str {
    match (measurement, var) {
        ("tcp_flow", "namespace") => "src_namespace",
        ("tcp_flow", "workload") => "src_workload",
        ("tcp_flow", "release") => "src_release",
        ("tcp_flow", "peer") => "peer_type",
        ("pod_io", "namespace") => "namespace",
        ("pod_io", "workload") => "workload",
        ("pod_io", "pod") => "pod",
        ("pod_activity", var @ ("namespace" | "workload" | "release" | "pod")) => match var {
            "namespace" => "namespace",
            "workload" => "workload",
            "release" => "release",
            _ => "pod",
        },
        other => panic!("no tag for variable {other:?}"),
    }
}

/// A selection of variable values; an absent variable is "All" (`.*`).
pub type Scenario = BTreeMap<&'static str, Vec<String>>;

/// The selections every query runs under, picked from the data so each one selects something.
pub fn scenarios(points: &[Point]) -> Vec<(String, Scenario)> {
    let most = |m: &str, key: &str, filter: &dyn Fn(&Point) -> bool| -> Vec<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in points
            .iter()
            .filter(|p| p.measurement == m && !p.tag(key).is_empty() && filter(p))
        {
            *counts.entry(p.tag(key)).or_default() += 1;
        }
        let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(k, _)| k.to_string()).collect()
    };
    let namespaces = most("tcp_flow", "src_namespace", &|_| true);
    let ns = namespaces[0].clone();
    let workload = most("tcp_flow", "src_workload", &|p| {
        p.tag("src_namespace") == ns
    })[0]
        .clone();
    let release = most("tcp_flow", "src_release", &|_| true)[0].clone();
    let pod = most("pod_activity", "pod", &|p| p.tag("namespace") == ns)[0].clone();
    let s = |pairs: &[(&'static str, Vec<String>)]| pairs.iter().cloned().collect::<Scenario>();
    vec![
        ("all".into(), Scenario::new()),
        (
            format!("namespace {ns}"),
            s(&[("namespace", vec![ns.clone()])]),
        ),
        (
            format!("namespace {ns}, workload {workload}"),
            s(&[
                ("namespace", vec![ns.clone()]),
                ("workload", vec![workload]),
            ]),
        ),
        (
            "two namespaces".into(),
            s(&[("namespace", namespaces[..2].to_vec())]),
        ),
        (
            format!("release {release}"),
            s(&[("release", vec![release])]),
        ),
        (
            "peer type external".into(),
            s(&[("peer", vec!["external".into()])]),
        ),
        (
            format!("pod {pod}"),
            s(&[("namespace", vec![ns]), ("pod", vec![pod])]),
        ),
    ]
}

/// Grafana's interpolation of an InfluxQL query: regex-escaped values, `(a|b)` for several.
pub fn substitute(text: &str, scenario: &Scenario) -> String {
    let escape = |v: &str| {
        v.chars().fold(String::new(), |mut s, c| {
            if "\\^$*+?.()|{}[]/".contains(c) {
                s.push('\\');
            }
            s.push(c);
            s
        })
    };
    let from = CORPUS_START_MS - 60_000;
    let to = CORPUS_START_MS + CORPUS_SPAN_MS + 120_000;
    let mut out = text
        .replace(
            "$timeFilter",
            &format!("time >= {from}ms and time <= {to}ms"),
        )
        .replace("$__interval_ms", &INTERVAL_MS.to_string())
        .replace("$__interval", &format!("{}s", INTERVAL_MS / 1000));
    for var in ["namespace", "workload", "release", "peer", "pod"] {
        let value = match scenario.get(var).map(Vec::as_slice) {
            None => ".*".to_string(),
            Some([one]) => escape(one),
            Some(many) => format!(
                "({})",
                many.iter().map(|v| escape(v)).collect::<Vec<_>>().join("|")
            ),
        };
        out = out.replace(&format!("${var}"), &value);
    }
    let unresolved = out.match_indices('$').any(|(i, _)| {
        out[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '{')
    });
    assert!(!unresolved, "unsubstituted variable in {out}");
    out
}

/// The conditions of a query's WHERE clause as a predicate on points.
pub fn predicate(
    text: &str,
    measurement: &str,
    scenario: &Scenario,
) -> impl Fn(&Point) -> bool + use<> {
    let clause = text.split(" WHERE ").nth(1).unwrap_or_default();
    let clause = clause.split(" GROUP BY ").next().unwrap_or_default();
    let mut conds: Vec<(String, bool, Vec<String>)> = Vec::new(); // tag, equal?, values
    let mut positive: Vec<String> = Vec::new(); // fields that must be > 0
    for c in clause.split(" AND ") {
        let c = c.trim();
        if c.is_empty() || c == "$timeFilter" {
            continue;
        }
        let (tag, rest) = c
            .trim_start_matches('"')
            .split_once('"')
            .unwrap_or_else(|| panic!("condition {c}"));
        let rest = rest.trim();
        if let Some(var) = rest
            .strip_prefix("=~ /^$")
            .and_then(|r| r.strip_suffix("$/"))
        {
            assert_eq!(variable_tag(measurement, var), tag, "{var} filters {tag}");
            if let Some(values) = scenario.get(var) {
                conds.push((tag.to_string(), true, values.clone()));
            }
        } else if let Some(v) = rest.strip_prefix("= '").and_then(|r| r.strip_suffix('\'')) {
            conds.push((tag.to_string(), true, vec![v.to_string()]));
        } else if let Some(v) = rest.strip_prefix("!= '").and_then(|r| r.strip_suffix('\'')) {
            conds.push((tag.to_string(), false, vec![v.to_string()]));
        } else if rest == "> 0" {
            // A field, not a tag: the point counts only when that field is positive.
            positive.push(tag.to_string());
        } else {
            panic!("the test cannot evaluate the condition {c}");
        }
    }
    let measurement = measurement.to_string();
    move |p: &Point| {
        p.measurement == measurement
            && conds
                .iter()
                .all(|(tag, eq, values)| values.iter().any(|v| v == p.tag(tag)) == *eq)
            && positive
                .iter()
                .all(|f| p.fields.get(f).is_some_and(|v| *v > 0))
    }
}

/// The measurement of a query's `FROM "m"` or `FROM "rp"."m"`.
pub fn measurement(text: &str) -> String {
    let after = text
        .split("FROM \"")
        .nth(1)
        .unwrap_or_else(|| panic!("no FROM in {text}"));
    let (first, rest) = after.split_once('"').unwrap_or_default();
    match rest.strip_prefix(".\"") {
        Some(m) => m.split('"').next().unwrap_or_default().to_string(),
        None => first.to_string(),
    }
}

/// Every InfluxQL query of every dashboard.
pub fn influx_queries() -> Vec<Query> {
    rendered()
        .iter()
        .flat_map(|(_, j)| queries(j))
        .filter(|q| q.datasource == "influxdb")
        .collect()
}
