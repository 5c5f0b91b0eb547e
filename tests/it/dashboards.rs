//! Rendered dashboards: valid against Grafana's schemas, stable, and complete for a reader.
use std::collections::BTreeSet;

use kovenant::assets::Assets;
use kovenant::config::Config;
use kovenant::plan::dashboards::{self, ClusterFacts, Dashboard};
use serde_json::{Value, json};

use crate::support::shared;

/// Every dashboard rendered with the default configuration, parsed.
pub fn rendered() -> Vec<(Dashboard, Value)> {
    dashboards::render(&Config::default(), &Assets::embedded())
        .expect("render dashboards")
        .into_iter()
        .map(|d| {
            let json = serde_json::from_str(&d.json).expect("dashboard JSON parses");
            (d, json)
        })
        .collect()
}

/// The panels of a dashboard, rows' nested panels included, rows themselves left out.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels array") {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}

/// One query a dashboard sends: a panel target or a template variable's query.
#[derive(Debug, Clone)]
pub struct Query {
    /// `"<dashboard uid> / <panel title or variable name>"`, for messages.
    pub origin: String,
    pub panel_title: String,
    /// `prometheus` or `influxdb`.
    pub datasource: String,
    pub text: String,
    pub is_variable: bool,
}

/// Every query of a dashboard, panels first, then variables.
pub fn queries(dashboard: &Value) -> Vec<Query> {
    let uid = dashboard["uid"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        let ds = panel["datasource"]["type"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let text = target["expr"].as_str().or(target["query"].as_str());
            out.push(Query {
                origin: format!("{uid} / {title} / {}", target["refId"]),
                panel_title: title.clone(),
                datasource: ds.to_string(),
                text: text.expect("every target has a query").to_string(),
                is_variable: false,
            });
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push(Query {
            origin: format!("{uid} / variable {}", var["name"]),
            panel_title: String::new(),
            datasource: var["datasource"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            text: var["query"].as_str().expect("variable query").to_string(),
            is_variable: true,
        });
    }
    out
}

fn validator(file: &str, definition: Option<&str>) -> jsonschema::Validator {
    let path = shared().join("upstream/grafana-foundation-sdk").join(file);
    let text = std::fs::read_to_string(&path).expect("read schema");
    let mut schema: Value = serde_json::from_str(&text).expect("schema parses");
    if let Some(def) = definition {
        schema["$ref"] = json!(format!("#/definitions/{def}"));
    }
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn dashboards_validate_against_grafana_schemas() {
    let dashboard = validator("dashboard.jsonschema.json", None);
    let nodegraph = validator("nodegraph.jsonschema.json", Some("Options"));
    let ts_options = validator("timeseries.jsonschema.json", Some("Options"));
    let ts_custom = validator("timeseries.jsonschema.json", Some("FieldConfig"));
    let mut node_graphs = 0;
    for (d, json) in rendered() {
        assert_eq!(errors(&dashboard, &json), Vec::<String>::new(), "{}", d.uid);
        for panel in panels(&json) {
            let where_ = format!("{} / {}", d.uid, panel["title"]);
            match panel["type"].as_str() {
                Some("nodeGraph") => {
                    node_graphs += 1;
                    assert_eq!(
                        errors(&nodegraph, &panel["options"]),
                        Vec::<String>::new(),
                        "{where_}"
                    );
                }
                Some("timeseries") => {
                    assert_eq!(
                        errors(&ts_options, &panel["options"]),
                        Vec::<String>::new(),
                        "{where_}"
                    );
                    let custom = &panel["fieldConfig"]["defaults"]["custom"];
                    assert_eq!(errors(&ts_custom, custom), Vec::<String>::new(), "{where_}");
                }
                _ => {}
            }
        }
    }
    assert_eq!(node_graphs, 1, "the traffic map has exactly one node graph");
}

#[test]
fn the_schemas_reject_a_broken_dashboard_and_node_graph() {
    // The validation above must be able to fail: a panel without a type, options Grafana's
    // node graph does not know.
    let (_, mut json) = rendered().remove(0);
    json["panels"][1]["type"] = json!("");
    assert!(!errors(&validator("dashboard.jsonschema.json", None), &json).is_empty());
    let bad = json!({"nodes": {"mainStatUnit": 1}, "layoutAlgorithm": "circle"});
    assert_eq!(
        errors(
            &validator("nodegraph.jsonschema.json", Some("Options")),
            &bad
        )
        .len(),
        2
    );
}

#[test]
fn dashboards_have_stable_uids_and_file_names() {
    let first = rendered();
    let uids: Vec<&str> = first.iter().map(|(d, _)| d.uid.as_str()).collect();
    assert_eq!(
        uids,
        [
            "kovenant-cluster-health",
            "kovenant-namespaces-workloads",
            "kovenant-traffic-map",
            "kovenant-pod-io"
        ]
    );
    for (d, json) in &first {
        assert_eq!(json["uid"], json!(d.uid));
        assert_eq!(
            d.file_name,
            format!("{}.json", d.uid.trim_start_matches("kovenant-"))
        );
        assert!(d.uid.len() <= 40, "Grafana UIDs are at most 40 characters");
    }
    let second = rendered();
    let texts =
        |r: &[(Dashboard, Value)]| r.iter().map(|(d, _)| d.json.clone()).collect::<Vec<_>>();
    assert_eq!(
        texts(&first),
        texts(&second),
        "rendering twice gives the same bytes"
    );
    // Another cluster name changes titles, never UIDs.
    let config = Config {
        cluster_name: "prod-eu".into(),
        ..Config::default()
    };
    let other = dashboards::render(&config, &Assets::embedded()).expect("render");
    assert_eq!(
        other.iter().map(|d| d.uid.as_str()).collect::<Vec<_>>(),
        uids
    );
    assert!(other[0].json.contains("Cluster health · prod-eu"));
}

#[test]
fn every_panel_says_what_it_shows_with_units_and_a_description() {
    let mut titles = BTreeSet::new();
    for (d, json) in rendered() {
        for panel in panels(&json) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(
                title.len() >= 8,
                "{}: panel title {title:?} is too short",
                d.uid
            );
            assert!(
                titles.insert(format!("{}/{title}", d.uid)),
                "{}: duplicate title {title}",
                d.uid
            );
            let description = panel["description"].as_str().unwrap_or_default();
            assert!(
                description.len() >= 30,
                "{} / {title}: description {description:?}",
                d.uid
            );
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default();
            assert!(!unit.is_empty(), "{} / {title}: no unit", d.uid);
            let uid = panel["datasource"]["uid"].as_str().unwrap_or_default();
            assert!(
                ["kovenant-prometheus", "kovenant-influxdb"].contains(&uid),
                "{} / {title}: datasource {uid}",
                d.uid
            );
            assert!(
                !panel["targets"].as_array().is_none_or(Vec::is_empty),
                "{} / {title}",
                d.uid
            );
        }
        // Panel ids are unique and every panel sits on the grid.
        let ids: BTreeSet<u64> = json["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(
            ids.len(),
            json["panels"].as_array().map_or(0, Vec::len),
            "{}",
            d.uid
        );
    }
}

#[test]
fn variables_come_from_the_data_and_chain() {
    for (d, json) in rendered() {
        let vars = json["templating"]["list"].as_array().expect("variables");
        assert!(!vars.is_empty(), "{}", d.uid);
        for var in vars {
            assert_eq!(var["type"], "query", "{} / {}", d.uid, var["name"]);
            assert!(
                var.get("options").is_none(),
                "{} / {}: hard-coded options",
                d.uid,
                var["name"]
            );
            let q = var["query"].as_str().unwrap_or_default();
            let from_data = match var["datasource"]["type"].as_str() {
                Some("prometheus") => {
                    q.starts_with("label_values(") || q.starts_with("query_result(")
                }
                Some("influxdb") => q.starts_with("SHOW TAG VALUES FROM "),
                other => panic!("{}: variable datasource {other:?}", d.uid),
            };
            assert!(from_data, "{} / {}: {q}", d.uid, var["name"]);
        }
    }
    // Chains: each later variable's query is narrowed by the ones before it.
    let by_uid = rendered();
    let query = |uid: &str, name: &str| -> String {
        let (_, json) = by_uid
            .iter()
            .find(|(d, _)| d.uid == uid)
            .expect("dashboard");
        let list = json["templating"]["list"].as_array().expect("list");
        let var = list.iter().find(|v| v["name"] == name).expect("variable");
        var["query"].as_str().expect("query").to_string()
    };
    assert!(
        query("kovenant-namespaces-workloads", "workload").contains(r#"namespace=~"$namespace""#)
    );
    assert!(query("kovenant-namespaces-workloads", "pod").contains(r#"owner_name=~"$workload""#));
    assert!(
        query("kovenant-traffic-map", "workload")
            .ends_with(r#"WHERE "src_namespace" =~ /^$namespace$/"#)
    );
    assert!(query("kovenant-pod-io", "pod").ends_with(r#"AND "workload" =~ /^$workload$/"#));
}

#[test]
fn namespaces_seen_at_install_preselect_the_namespace_variables() {
    let facts = ClusterFacts {
        namespaces: ["team-b", "kube-system", "kovenant", "team-a", "kube-public"]
            .map(String::from)
            .to_vec(),
    };
    let config = Config::default();
    let with = dashboards::render_with(&config, &Assets::embedded(), &facts).expect("render");
    let without = dashboards::render(&config, &Assets::embedded()).expect("render");
    let current = |d: &Dashboard| -> Vec<Value> {
        let json: Value = serde_json::from_str(&d.json).expect("json");
        let list = json["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.iter()
            .filter(|v| v["name"] == "namespace")
            .map(|v| v["current"]["value"].clone())
            .collect()
    };
    let selected: Vec<Vec<Value>> = with.iter().map(current).collect();
    let all: Vec<Vec<Value>> = without.iter().map(current).collect();
    let teams = json!(["team-a", "team-b"]);
    assert_eq!(
        selected,
        vec![
            vec![],
            vec![teams.clone()],
            vec![teams.clone()],
            vec![teams]
        ]
    );
    let everything = json!(["$__all"]);
    assert_eq!(
        all,
        vec![
            vec![],
            vec![everything.clone()],
            vec![everything.clone()],
            vec![everything]
        ]
    );
}

#[test]
fn influx_panels_never_group_finer_than_the_agent_window() {
    let config = Config {
        agent_window: std::time::Duration::from_secs(30),
        ..Config::default()
    };
    for d in dashboards::render(&config, &Assets::embedded()).expect("render") {
        let json: Value = serde_json::from_str(&d.json).expect("json");
        for panel in panels(&json) {
            let interval = panel["interval"].as_str();
            match panel["datasource"]["type"].as_str() {
                Some("influxdb") => {
                    assert_eq!(interval, Some("30s"), "{} / {}", d.uid, panel["title"])
                }
                _ => assert_eq!(interval, None, "{} / {}", d.uid, panel["title"]),
            }
        }
    }
}
