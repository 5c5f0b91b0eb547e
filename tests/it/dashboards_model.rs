//! Dashboards as readers and install meet them: stable, described, variables from the data.
use std::collections::BTreeSet;

use kovenant::assets::Assets;
use kovenant::config::Config;
use kovenant::plan::dashboards::{self, ClusterFacts, Dashboard};
use serde_json::{Value, json};

use crate::dashboards::{panels, rendered};

#[test]
fn dashboards_have_stable_uids_and_file_names() {
    let first = rendered();
    let uids: Vec<&str> = first.iter().map(|(d, _)| d.uid.as_str()).collect();
    assert_eq!(
        uids,
        [
            "kovenant-cluster-health",
            "kovenant-namespaces-workloads",
            "kovenant-pod-io",
            "kovenant-traffic-map"
        ]
    );
    let files: Vec<&str> = first.iter().map(|(d, _)| d.file_name.as_str()).collect();
    assert!(
        files.is_sorted(),
        "in the order render lists files: {files:?}"
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
        ..ClusterFacts::default()
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

/// A copy of the embedded dashboards/ in a folder `--assets` could point at, with one file
/// replaced.
fn assets_with(file: &str, text: &str) -> (tempfile::TempDir, Assets) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    std::fs::create_dir(dir.path().join("dashboards")).expect("mkdir");
    for entry in std::fs::read_dir(&src).expect("read dashboards/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name").to_owned();
        std::fs::copy(&path, dir.path().join("dashboards").join(name)).expect("copy");
    }
    std::fs::write(dir.path().join("dashboards").join(file), text).expect("write");
    let assets = Assets::from_dir(dir.path()).expect("assets dir");
    (dir, assets)
}

#[test]
fn a_broken_template_is_an_error_that_names_it() {
    let (_dir, assets) = assets_with(
        "pod-io.json.tera",
        "{% import \"_macros.tera\" as m %}{{ m::nope( }}",
    );
    let err = dashboards::render(&Config::default(), &assets).expect_err("broken template");
    assert!(err.to_string().contains("pod-io.json.tera"), "{err}");

    let (_dir, assets) = assets_with("pod-io.json.tera", "{\"uid\": {{ uid }} }");
    let err = dashboards::render(&Config::default(), &assets).expect_err("not JSON");
    assert!(
        err.to_string()
            .contains("dashboards/pod-io.json.tera does not render to valid JSON"),
        "{err}"
    );
}

#[test]
fn an_assets_folder_without_dashboards_keeps_the_embedded_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
    let assets = Assets::from_dir(dir.path()).expect("assets dir");
    let from_dir = dashboards::render(&Config::default(), &assets).expect("render");
    let embedded = dashboards::render(&Config::default(), &Assets::embedded()).expect("render");
    assert_eq!(from_dir, embedded);
}
