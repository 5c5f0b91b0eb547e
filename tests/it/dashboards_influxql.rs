//! Every InfluxQL panel query, substituted as Grafana does, returns the corpus's exact totals.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::dashboards::Query;
use crate::dashboards_influx::{Fixture, Point, fixture, influx};
use crate::dashboards_scenarios::{
    INTERVAL_MS, Scenario, influx_queries, measurement, predicate, scenarios, substitute,
};

/// What a value column of a query means, as a sum of the point's fields.
fn column_value(measurement: &str, column: &str, p: &Point) -> i64 {
    let f = |k: &str| p.fields.get(k).copied().unwrap_or(0);
    match (measurement, column) {
        ("tcp_flow", "bytes" | "mainstat") => f("send_bytes") + f("recv_bytes"),
        ("tcp_flow", "secondarystat") => f("connects"),
        ("pod_io", "bytes") => f("read_bytes") + f("write_bytes"),
        ("pod_io", "calls") => f("reads") + f("writes"),
        ("pod_activity", "bytes") => f("read_bytes") + f("write_bytes"),
        ("pod_activity", "calls") => f("reads") + f("writes"),
        ("pod_activity", "tcp_bytes") => f("send_bytes") + f("recv_bytes"),
        (_, field) if p.fields.contains_key(field) => f(field),
        other => panic!("value column {other:?} means nothing the test knows"),
    }
}

/// Per series (its GROUP BY tags), per value column: the total of a query's result. Rates
/// (`* 1000 / $__interval_ms`) are turned back into totals.
pub type Totals = BTreeMap<Vec<(String, String)>, BTreeMap<String, i64>>;

fn actual_totals(result: &Value, is_rate: bool) -> Totals {
    let mut out = Totals::new();
    for series in result["series"].as_array().into_iter().flatten() {
        let tags: Vec<(String, String)> = series["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let columns: Vec<&str> = series["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let entry = out.entry(tags).or_default();
        for row in series["values"].as_array().expect("values") {
            for (i, col) in columns.iter().enumerate().filter(|(_, c)| **c != "time") {
                let v = row[i].as_f64().unwrap_or(0.0);
                let v = if is_rate {
                    v * INTERVAL_MS as f64 / 1000.0
                } else {
                    v
                };
                *entry.entry(col.to_string()).or_insert(0) += (v * 1000.0).round() as i64;
            }
        }
    }
    for cols in out.values_mut() {
        for v in cols.values_mut() {
            assert_eq!(*v % 1000, 0, "a total that is not a whole number");
            *v /= 1000;
        }
    }
    out
}

fn expected_totals(q: &str, points: &[Point], scenario: &Scenario, columns: &[String]) -> Totals {
    let m = measurement(q);
    let keep = predicate(q, &m, scenario);
    let group: Vec<String> = q
        .split(" GROUP BY ")
        .nth(1)
        .unwrap_or_default()
        .split(", ")
        .map(|g| g.trim().split(' ').next().unwrap_or_default().to_string())
        .filter(|g| g.starts_with('"'))
        .map(|g| g.trim_matches('"').to_string())
        .collect();
    let mut out = Totals::new();
    for p in points.iter().filter(|p| keep(p)) {
        let mut key: Vec<(String, String)> = group
            .iter()
            .map(|g| (g.clone(), p.tag(g).to_string()))
            .collect();
        key.sort();
        let entry: &mut BTreeMap<String, i64> = out.entry(key).or_default();
        for c in columns {
            *entry.entry(c.clone()).or_insert(0) += column_value(&m, c, p);
        }
    }
    out
}

#[test]
fn every_influxql_panel_query_returns_the_corpus_totals() {
    let fx: &Fixture = fixture();
    let panel_queries: Vec<Query> = influx_queries()
        .into_iter()
        .filter(|q| !q.is_variable)
        .collect();
    assert!(
        panel_queries.len() >= 25,
        "{} InfluxQL panel queries",
        panel_queries.len()
    );
    for (name, scenario) in scenarios(&fx.points) {
        for q in &panel_queries {
            let text = substitute(&q.text, &scenario);
            let result = influx(&fx.url, &fx.db, &text);
            let actual = actual_totals(&result, q.text.contains("$__interval_ms"));
            let columns: BTreeSet<String> =
                actual.values().flat_map(|c| c.keys().cloned()).collect();
            let columns: Vec<String> = columns.into_iter().collect();
            if name == "all" {
                assert!(!actual.is_empty(), "{}: no data for {text}", q.origin);
            }
            let expected = expected_totals(&q.text, &fx.points, &scenario, &columns);
            assert_eq!(actual, expected, "{} under {name}: {text}", q.origin);
        }
    }
}

#[test]
fn headline_panels_show_exactly_the_totals_of_expected_json() {
    let fx = fixture();
    let totals = &fx.expected["totals"];
    let stat = |title: &str, scenario: &Scenario| -> i64 {
        let q = influx_queries()
            .into_iter()
            .find(|q| q.panel_title == title)
            .expect("panel");
        let result = influx(&fx.url, &fx.db, &substitute(&q.text, scenario));
        actual_totals(&result, false)
            .values()
            .flat_map(|c| c.values())
            .sum()
    };
    let all = Scenario::new();
    assert_eq!(
        stat("Bytes sent", &all),
        totals["send_bytes"].as_i64().expect("send_bytes")
    );
    assert_eq!(
        stat("Bytes received", &all),
        totals["recv_bytes"].as_i64().expect("recv_bytes")
    );
    assert_eq!(
        stat("Bytes read", &all),
        totals["read_bytes"].as_i64().expect("read_bytes")
    );
    assert_eq!(
        stat("Bytes written", &all),
        totals["write_bytes"].as_i64().expect("write_bytes")
    );
    let counts = &fx.expected["counts"];
    assert_eq!(
        stat("Events the agent read", &all),
        counts["events"].as_i64().expect("events")
    );
    let bad = counts["bad_lines"].as_i64().expect("bad_lines");
    assert!(bad > 0, "the corpus has bad lines");
    assert_eq!(stat("Lines the agent could not parse", &all), bad);
    // Per namespace, straight from expected.json's keys.
    let flows = fx.expected["flows"].as_array().expect("flows");
    let io = fx.expected["io"].as_array().expect("io");
    let ns = "team-1";
    let sum = |rows: &[Value], key: &str, field: &str| -> i64 {
        rows.iter()
            .filter(|r| r[key] == ns)
            .map(|r| r[field].as_i64().unwrap_or(0))
            .sum()
    };
    let one: Scenario = [("namespace", vec![ns.to_string()])].into_iter().collect();
    assert_eq!(
        stat("Bytes sent", &one),
        sum(flows, "src_namespace", "send_bytes")
    );
    assert_eq!(
        stat("Connections opened", &one),
        sum(flows, "src_namespace", "connects")
    );
    assert_eq!(stat("Read calls", &one), sum(io, "namespace", "reads"));
    assert_eq!(stat("Write calls", &one), sum(io, "namespace", "writes"));
    assert!(sum(flows, "src_namespace", "send_bytes") > 0 && sum(io, "namespace", "reads") > 0);
}

#[test]
fn the_written_points_sum_to_expected_json() {
    let fx = fixture();
    let check = |m: &str, section: &str, keys: &[&str], fields: &[&str]| {
        let mut sums: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
        for p in fx.points.iter().filter(|p| p.measurement == m) {
            let key = keys.iter().map(|k| p.tag(k).to_string()).collect();
            let e = sums.entry(key).or_insert_with(|| vec![0; fields.len()]);
            for (i, f) in fields.iter().enumerate() {
                e[i] += p.fields.get(*f).copied().unwrap_or(0);
            }
        }
        let mut want: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
        for row in fx.expected[section].as_array().expect("section") {
            let key = keys
                .iter()
                .map(|k| match &row[*k] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect();
            want.insert(
                key,
                fields
                    .iter()
                    .map(|f| row[*f].as_i64().unwrap_or(0))
                    .collect(),
            );
        }
        sums.retain(|_, v| v.iter().any(|x| *x != 0));
        want.retain(|_, v| v.iter().any(|x| *x != 0));
        assert_eq!(sums, want, "{m}");
    };
    check(
        "tcp_flow",
        "flows",
        &crate::agent_support::FLOW_KEY,
        &crate::agent_support::FLOW_FIELDS,
    );
    check(
        "pod_io",
        "io",
        &crate::agent_support::IO_KEY,
        &crate::agent_support::IO_FIELDS,
    );
}

#[test]
fn series_aliases_name_only_tags_the_query_groups_by() {
    let mut aliased = 0;
    for (_, json) in crate::dashboards::rendered() {
        for panel in crate::dashboards::panels(&json) {
            for t in panel["targets"].as_array().into_iter().flatten() {
                let (alias, query) = (
                    t["alias"].as_str().unwrap_or_default(),
                    t["query"].as_str().unwrap_or_default(),
                );
                let group = query.split(" GROUP BY ").nth(1).unwrap_or_default();
                for tag in alias.split("$tag_").skip(1) {
                    let tag: String = tag
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        group.contains(&format!("\"{tag}\"")),
                        "{}: alias {alias} but {query}",
                        panel["title"]
                    );
                    aliased += 1;
                }
            }
        }
    }
    assert!(aliased >= 10, "{aliased} aliased tags");
}
