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
        ("tcp_flow", "bytes" | "mainstat") => f("bytes_sent") + f("bytes_received"),
        ("tcp_flow", "secondarystat") => f("connects"),
        ("pod_io", "bytes") => f("read_bytes") + f("write_bytes"),
        ("pod_io", "disk_bytes") => f("disk_read_bytes") + f("disk_write_bytes"),
        ("pod_io" | "pod_activity", "calls") => f("reads") + f("writes"),
        ("pod_activity", "bytes") => f("bytes_sent") + f("bytes_received"),
        ("pod_activity", "io_bytes") => f("read_bytes") + f("write_bytes"),
        ("pod_activity", "disk_bytes") => f("disk_read_bytes") + f("disk_write_bytes"),
        (_, field) if p.fields.contains_key(field) => f(field),
        other => panic!("value column {other:?} means nothing the test knows"),
    }
}

/// The mean RTT of DESIGN.md section 3: a sum over a count, per series and time bucket.
const MEAN_RTT: &str = r#"sum("rtt_us_sum") / sum("rtt_samples") AS "rtt_us""#;

/// The GROUP BY tags of a query (not `time(...)`).
fn group_tags(q: &str) -> Vec<String> {
    q.split(" GROUP BY ")
        .nth(1)
        .unwrap_or_default()
        .split(", ")
        .map(|g| g.trim().split(' ').next().unwrap_or_default().to_string())
        .filter(|g| g.starts_with('"'))
        .map(|g| g.trim_matches('"').to_string())
        .collect()
}

/// A mean-RTT query's rows equal, per series and time bucket, the sum of `rtt_us_sum` over the
/// sum of `rtt_samples` of the points there, and there is no row where nothing was sampled (a
/// mean of 0 µs would be drawn for it).
fn check_mean_rtt(q: &str, text: &str, result: &Value, points: &[Point], scenario: &Scenario) {
    let keep = predicate(q, &measurement(q), scenario);
    let group = group_tags(q);
    let by_time = q.contains("GROUP BY time(");
    let bucket = |t: i64| {
        if by_time {
            t - t.rem_euclid(INTERVAL_MS)
        } else {
            0
        }
    };
    // (series tags, time bucket) -> (sum of rtt_us_sum, sum of rtt_samples)
    type Bucket = (Vec<(String, String)>, i64);
    let mut want: BTreeMap<Bucket, (i64, i64)> = BTreeMap::new();
    for p in points.iter().filter(|p| keep(p)) {
        let mut key: Vec<(String, String)> = group
            .iter()
            .map(|g| (g.clone(), p.tag(g).to_string()))
            .collect();
        key.sort();
        let e = want.entry((key, bucket(p.time_ms))).or_default();
        e.0 += p.fields["rtt_us_sum"];
        e.1 += p.fields["rtt_samples"];
    }
    let mut seen = 0;
    for series in result["series"].as_array().into_iter().flatten() {
        let mut key: Vec<(String, String)> = series["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        key.sort();
        let columns: Vec<&str> = series["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let at = |c: &str| columns.iter().position(|x| *x == c);
        for row in series["values"].as_array().expect("values") {
            let t = at("time").map_or(0, |i| row[i].as_i64().expect("time"));
            let (sum, samples) = want
                .get(&(key.clone(), bucket(t)))
                .copied()
                .unwrap_or_else(|| panic!("{text}: a row for nothing written: {key:?} at {t}"));
            let mean = row[at("rtt_us").expect("rtt_us")].as_f64();
            assert!(
                samples > 0,
                "{text}: a mean of nothing sampled, {key:?} at {t}: {mean:?}"
            );
            let expected = sum as f64 / samples as f64;
            let mean = mean.unwrap_or_else(|| panic!("{text}: no mean for {key:?} at {t}"));
            assert!(
                (mean - expected).abs() <= 1e-9 * expected,
                "{text}: {key:?} at {t}: {mean} != {expected}"
            );
            if let Some(i) = at("rtt_samples") {
                assert_eq!(row[i].as_i64(), Some(samples), "{text}: {key:?}");
            }
            seen += 1;
        }
    }
    let sampled = want.values().filter(|(_, n)| *n > 0).count();
    assert_eq!(
        seen, sampled,
        "{text}: every sampled series and bucket has its mean"
    );
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
    let group = group_tags(q);
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
    let means = panel_queries
        .iter()
        .filter(|q| q.text.contains(MEAN_RTT))
        .count();
    assert_eq!(means, 2, "the traffic map's two mean-RTT queries");
    for (name, scenario) in scenarios(&fx.points) {
        for q in &panel_queries {
            let text = substitute(&q.text, &scenario);
            let result = influx(&fx.url, &fx.db, &text);
            if q.text.contains(MEAN_RTT) {
                check_mean_rtt(&q.text, &text, &result, &fx.points, &scenario);
                continue;
            }
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
fn headline_panels_show_exactly_the_totals_written() {
    let fx = fixture();
    let stat = |title: &str, scenario: &Scenario| -> i64 {
        let q = influx_queries()
            .into_iter()
            .find(|q| q.panel_title == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        let result = influx(&fx.url, &fx.db, &substitute(&q.text, scenario));
        actual_totals(&result, false)
            .values()
            .flat_map(|c| c.values())
            .sum()
    };
    let total = |m: &str, field: &str, ns: Option<&str>| -> i64 {
        let ns_tag = if m == "tcp_flow" {
            "src_namespace"
        } else {
            "namespace"
        };
        fx.points
            .iter()
            .filter(|p| p.measurement == m && ns.is_none_or(|ns| p.tag(ns_tag) == ns))
            .map(|p| p.fields[field])
            .sum()
    };
    let all = Scenario::new();
    for (title, m, field) in [
        ("Bytes sent", "tcp_flow", "bytes_sent"),
        ("Bytes received", "tcp_flow", "bytes_received"),
        ("Connections opened", "tcp_flow", "connects"),
        ("Connections accepted", "tcp_flow", "accepts"),
        ("Bytes retransmitted", "tcp_flow", "retrans_bytes"),
        ("Bytes read", "pod_io", "read_bytes"),
        ("Bytes written", "pod_io", "write_bytes"),
        ("Bytes read from storage", "pod_io", "disk_read_bytes"),
        ("Bytes written to storage", "pod_io", "disk_write_bytes"),
        (
            "Tetragon events the agent read",
            "kovenant_agent",
            "tetragon_events",
        ),
        (
            "Lines the agent could not parse",
            "kovenant_agent",
            "bad_lines",
        ),
        ("Socket closes lost", "kovenant_agent", "destroys_lost"),
        ("Socket closes seen", "kovenant_agent", "destroy_events"),
        (
            "Flow keys dropped at the agent's cap",
            "kovenant_agent",
            "dropped_keys",
        ),
        (
            "Export files lost to rotation",
            "kovenant_agent",
            "rotated_files_lost",
        ),
    ] {
        let want = total(m, field, None);
        assert!(want > 0, "{title}: the points hold some {field}");
        assert_eq!(stat(title, &all), want, "{title}");
    }
    let ns = "team-1";
    let one: Scenario = [("namespace", vec![ns.to_string()])].into_iter().collect();
    for (title, m, field) in [
        ("Bytes sent", "tcp_flow", "bytes_sent"),
        ("Connections opened", "tcp_flow", "connects"),
        ("Read calls", "pod_io", "reads"),
        ("Write calls", "pod_io", "writes"),
        ("Bytes written to storage", "pod_io", "disk_write_bytes"),
    ] {
        let want = total(m, field, Some(ns));
        assert!(want > 0 && want < total(m, field, None), "{title}");
        assert_eq!(stat(title, &one), want, "{title} in {ns}");
    }
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
