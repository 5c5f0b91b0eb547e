//! The traffic map's node graph frame, and the InfluxDB variables' values, on real data.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::dashboards::{panels, rendered};
use crate::dashboards_influx::{fixture, influx};
use crate::dashboards_scenarios::{
    Scenario, influx_queries, measurement, predicate, scenarios, substitute,
};

/// A data frame as Grafana holds it: ordered field names and rows.
#[derive(Debug, Clone, Default)]
struct Frame {
    fields: Vec<String>,
    rows: Vec<BTreeMap<String, Value>>,
}

/// What Grafana's InfluxDB datasource makes of a table-format result: one frame, a Time column,
/// the GROUP BY tags as columns, then the value columns.
fn table_frame(result: &Value) -> Frame {
    let mut frame = Frame::default();
    for series in result["series"].as_array().into_iter().flatten() {
        let tags = series["tags"].as_object().cloned().unwrap_or_default();
        let columns: Vec<String> = series["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                if c == "time" {
                    "Time".to_string()
                } else {
                    c.as_str().unwrap_or_default().to_string()
                }
            })
            .collect();
        if frame.fields.is_empty() {
            frame.fields.push("Time".into());
            frame.fields.extend(tags.keys().cloned());
            frame
                .fields
                .extend(columns.iter().filter(|c| *c != "Time").cloned());
        }
        for values in series["values"].as_array().expect("values") {
            let mut row: BTreeMap<String, Value> = tags.clone().into_iter().collect();
            for (i, c) in columns.iter().enumerate() {
                row.insert(c.clone(), values[i].clone());
            }
            frame.rows.push(row);
        }
    }
    frame
}

/// `${field}` of a template expression, replaced by the row's values.
fn interpolate(expression: &str, row: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = expression;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = &rest[start + 2..end];
        match row.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => panic!("template field {name} is not in the frame"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Applies the panel's transformations; any kind the test cannot simulate fails the test.
fn transform(mut frame: Frame, transformations: &[Value]) -> Frame {
    for t in transformations {
        assert!(
            t.get("filter").is_none(),
            "per-query filters are not simulated"
        );
        let o = &t["options"];
        match t["id"].as_str() {
            Some("organize") => {
                let excluded = |f: &String| o["excludeByName"][f.as_str()] == json!(true);
                frame.fields.retain(|f| !excluded(f));
                let index = |f: &String| o["indexByName"][f.as_str()].as_u64().unwrap_or(u64::MAX);
                frame.fields.sort_by_key(index);
                for row in &mut frame.rows {
                    row.retain(|k, _| !excluded(k));
                }
            }
            Some("calculateField") if o["mode"] == "templateExpression" => {
                let alias = o["alias"].as_str().expect("alias").to_string();
                let expression = o["template"]["expression"].as_str().expect("expression");
                for row in &mut frame.rows {
                    let value = interpolate(expression, row);
                    row.insert(alias.clone(), Value::String(value));
                }
                frame.fields.push(alias);
            }
            other => panic!("transformation {other:?} is not simulated"),
        }
    }
    frame
}

#[test]
fn node_graph_queries_give_the_edges_frame_grafana_needs() {
    let fx = fixture();
    let all = rendered();
    let panel = all
        .iter()
        .flat_map(|(_, j)| panels(j))
        .find(|p| p["type"] == "nodeGraph")
        .expect("node graph")
        .clone();
    let target = &panel["targets"][0];
    assert_eq!(
        (target["refId"].as_str(), target["resultFormat"].as_str()),
        (Some("edges"), Some("table"))
    );
    let query = target["query"].as_str().expect("query");
    let transformations = panel["transformations"]
        .as_array()
        .expect("transformations");
    // Grafana resolves `${name}` to a dashboard variable before a field of that name.
    let (_, traffic) = all
        .iter()
        .find(|(d, _)| d.uid == "kovenant-traffic-map")
        .expect("traffic map");
    let variables: BTreeSet<&str> = traffic["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for t in transformations {
        if let Some(expression) = t["options"]["template"]["expression"].as_str() {
            for name in expression
                .split("${")
                .skip(1)
                .filter_map(|r| r.split('}').next())
            {
                assert!(
                    !variables.contains(name),
                    "{expression}: ${{{name}}} is also a variable"
                );
            }
        }
    }
    for (name, scenario) in scenarios(&fx.points) {
        let frame = transform(
            table_frame(&influx(&fx.url, &fx.db, &substitute(query, &scenario))),
            transformations,
        );
        assert_eq!(
            frame.fields,
            ["id", "source", "target", "mainstat", "secondarystat"],
            "{name}"
        );
        let ids: BTreeSet<&str> = frame
            .rows
            .iter()
            .map(|r| r["id"].as_str().expect("string id"))
            .collect();
        assert_eq!(ids.len(), frame.rows.len(), "{name}: edge ids are unique");
        let kinds = ["pod:", "service:", "node:", "external:", "unresolved:"];
        for row in &frame.rows {
            let (source, target) = (
                row["source"].as_str().unwrap_or_default(),
                row["target"].as_str().unwrap_or_default(),
            );
            assert!(
                source.starts_with("pod:") && source.len() > 5,
                "{name}: source {source}"
            );
            assert!(
                kinds.iter().any(|k| target.starts_with(k)),
                "{name}: target {target}"
            );
            assert!(
                row["mainstat"].is_number() && row["secondarystat"].is_number(),
                "{name}: {row:?}"
            );
        }
        // Edges weighted by bytes: their sum is every byte the selection moved, loopback and host
        // processes aside.
        let keep = predicate(query, &measurement(query), &scenario);
        let want: i64 = fx
            .points
            .iter()
            .filter(|p| keep(p))
            .map(|p| p.fields["bytes_sent"] + p.fields["bytes_received"])
            .sum();
        let got: i64 = frame
            .rows
            .iter()
            .map(|r| r["mainstat"].as_i64().expect("integer bytes"))
            .sum();
        assert_eq!(got, want, "{name}");
        if name == "all" {
            let sources: BTreeSet<&str> = frame
                .rows
                .iter()
                .filter_map(|r| r["source"].as_str())
                .collect();
            let targets: BTreeSet<&str> = frame
                .rows
                .iter()
                .filter_map(|r| r["target"].as_str())
                .collect();
            assert!(
                sources.intersection(&targets).count() >= 3,
                "workloads are the same node as source and as pod peer"
            );
            for kind in kinds {
                assert!(
                    targets.iter().any(|t| t.starts_with(kind)),
                    "no {kind} node"
                );
            }
        }
    }
}

#[test]
fn variables_list_exactly_the_tag_values_in_the_data() {
    let fx = fixture();
    let vars: Vec<_> = influx_queries()
        .into_iter()
        .filter(|q| q.is_variable)
        .collect();
    assert_eq!(
        vars.len(),
        7,
        "four traffic variables, three pod I/O variables"
    );
    for (name, scenario) in scenarios(&fx.points) {
        for q in &vars {
            let key = q
                .text
                .split("WITH KEY = \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("key");
            let result = influx(&fx.url, &fx.db, &substitute(&q.text, &scenario));
            let got: BTreeSet<String> = result["series"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                .map(|kv| kv[1].as_str().unwrap_or_default().to_string())
                .collect();
            let keep = predicate(&q.text, &measurement(&q.text), &scenario as &Scenario);
            let want: BTreeSet<String> = fx
                .points
                .iter()
                .filter(|p| keep(p))
                .map(|p| p.tag(key).to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if name == "all" {
                assert!(!got.is_empty(), "{}: no values", q.origin);
            }
            assert_eq!(got, want, "{} under {name}", q.origin);
        }
    }
}
