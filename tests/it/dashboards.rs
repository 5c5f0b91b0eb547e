//! Rendered dashboards against Grafana's schemas, and the helpers the other dashboard tests share.
use kovenant::assets::Assets;
use kovenant::config::Config;
use kovenant::plan::dashboards::{self, Dashboard};
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
