//! Every values key kovenant sets exists in the pinned chart's own values.yaml.
//!
//! The rule: walk kovenant's values as a tree of maps. Each key must exist at the same place in the
//! upstream values.yaml. Below a key whose upstream value is not a non-empty map (an empty map,
//! a list, a scalar or null: places the chart leaves open, like `env: {}` or `datasources: {}`),
//! kovenant's value is a leaf and is not walked. Keys the chart documents only as a commented-out
//! example are listed in `COMMENTED` with the path they hold, and must appear in the upstream file
//! as `# <key>:`. `grafana.ini` is open too: its keys are Grafana's ini sections, not the chart's.
use serde_yaml::Value;

use crate::render::default_tree;
use crate::support::shared;

/// (values file, dotted path) that upstream documents in a comment, not as a key.
const COMMENTED: &[(&str, &str)] = &[
    ("grafana", "ingress.ingressClassName"),
    ("grafana", "rbac.useExistingRole"),
    // deployment.yaml reads it (`with .Values.podAnnotations`); values.yaml only comments it.
    ("grafana", "podAnnotations"),
];

/// (values file, subchart): Helm gives a subchart the parent's values under the subchart's name,
/// so kovenant's keys there are checked against the subchart's own values.yaml.
const SUBCHARTS: &[(&str, &str, &str)] = &[
    (
        "prometheus",
        "kube-state-metrics",
        "charts/prometheus-29.27.0/charts/kube-state-metrics",
    ),
    (
        "prometheus",
        "prometheus-node-exporter",
        "charts/prometheus-29.27.0/charts/prometheus-node-exporter",
    ),
];

/// (values file, dotted path) whose contents are not the chart's keys.
const OPEN: &[(&str, &str)] = &[("grafana", "grafana.ini")];

const CHARTS: &[(&str, &str)] = &[
    ("tetragon", "tetragon-1.7.0"),
    ("prometheus", "prometheus-29.27.0"),
    ("grafana", "grafana-12.11.1"),
];

fn upstream_text(dir: &str) -> String {
    let path = shared().join("upstream").join(dir).join("values.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ours(file: &str) -> Value {
    let tree = default_tree();
    let text = std::str::from_utf8(&tree[&format!("values/{file}.yaml")])
        .unwrap()
        .to_owned();
    serde_yaml::from_str(&text).expect("rendered values parse")
}

/// Paths in `ours` that `upstream` does not have.
fn unknown_keys(file: &str, ours: &Value, upstream: &Value, upstream_text: &str) -> Vec<String> {
    let mut missing = Vec::new();
    walk(file, "", ours, Some(upstream), upstream_text, &mut missing);
    missing
}

fn walk(
    file: &str,
    prefix: &str,
    ours: &Value,
    upstream: Option<&Value>,
    text: &str,
    missing: &mut Vec<String>,
) {
    let Value::Mapping(map) = ours else { return };
    for (key, value) in map {
        let key = key.as_str().expect("string keys");
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        if OPEN.contains(&(file, path.as_str())) {
            continue;
        }
        let theirs = upstream.and_then(|u| u.get(key));
        match theirs {
            Some(Value::Mapping(m)) if !m.is_empty() => {
                walk(file, &path, value, theirs, text, missing)
            }
            Some(_) => {}
            None if COMMENTED.contains(&(file, path.as_str())) => {
                assert!(
                    text.contains(&format!("# {key}:")),
                    "{file}: {path} is not even commented upstream"
                );
            }
            None => missing.push(path),
        }
    }
}

#[test]
fn every_key_kovenant_sets_exists_upstream() {
    for (file, dir) in CHARTS {
        let mut text = upstream_text(dir);
        let mut upstream: Value = serde_yaml::from_str(&text).expect("upstream values parse");
        for (_, name, sub) in SUBCHARTS.iter().filter(|(f, _, _)| f == file) {
            let sub_text = upstream_text(sub);
            let sub_values: Value = serde_yaml::from_str(&sub_text).expect("subchart values");
            let Value::Mapping(theirs) = sub_values else {
                panic!("{sub}: values are not a map")
            };
            let slot = upstream
                .get_mut(*name)
                .and_then(Value::as_mapping_mut)
                .unwrap_or_else(|| panic!("{dir}: no {name} section"));
            for (k, v) in theirs {
                slot.entry(k).or_insert(v);
            }
            text.push_str(&sub_text);
        }
        let missing = unknown_keys(file, &ours(file), &upstream, &text);
        assert!(
            missing.is_empty(),
            "{file}: keys the chart does not have: {missing:?}"
        );
    }
}

#[test]
fn the_key_check_catches_a_misspelt_key() {
    let text = upstream_text("grafana-12.11.1");
    let upstream: Value = serde_yaml::from_str(&text).unwrap();
    let bad: Value = serde_yaml::from_str("admin:\n  existingSecrets: x\nsidecar:\n  dashboard:\n    enabled: true\nenv:\n  ANY: thing\n").unwrap();
    assert_eq!(
        unknown_keys("grafana", &bad, &upstream, &text),
        ["admin.existingSecrets", "sidecar.dashboard"]
    );
}

#[test]
fn prometheus_values_validate_against_the_chart_schema() {
    let path = shared().join("upstream/prometheus-29.27.0/values.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let values = serde_json::to_value(ours("prometheus")).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&values)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let bad = serde_json::json!({"server": {"retention": 15}, "alertmanager": {"enabled": "no"}});
    assert!(
        !validator.is_valid(&bad),
        "the schema check accepts anything"
    );
}

#[test]
fn the_values_do_what_kovenant_needs_of_each_chart() {
    let tetragon = ours("tetragon");
    // No deny filter drops a namespace or the host: only health checks.
    assert_eq!(
        tetragon["tetragon"]["exportDenyList"],
        "{\"health_check\":true}"
    );
    // Only kovenant-tcp's kprobe events; the allow list parses as Tetragon's Filter, with field
    // names its events.proto declares.
    let allow = tetragon["tetragon"]["exportAllowList"]
        .as_str()
        .expect("allow list");
    assert_eq!(
        allow,
        "{\"event_set\":[\"PROCESS_KPROBE\"],\"policy_names\":[\"kovenant-tcp\"]}"
    );
    let proto = std::fs::read_to_string(shared().join("upstream/tetragon-1.7.0/events.proto"))
        .expect("events.proto");
    let filter = proto
        .split("message Filter {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("message Filter");
    let allow: serde_json::Value = serde_json::from_str(allow).expect("JSON");
    for key in allow.as_object().expect("an object").keys() {
        assert!(
            filter.contains(&format!(" {key} = ")),
            "Filter has no field {key}"
        );
    }
    assert_eq!(tetragon["exportDirectory"], "/var/log/tetragon");
    // Prometheus's kubernetes-pods job scrapes Tetragon's drop counters on its metrics port.
    assert_eq!(tetragon["podAnnotations"]["prometheus.io/scrape"], "true");
    assert_eq!(
        tetragon["podAnnotations"]["prometheus.io/port"],
        upstream_tetragon_metrics_port().to_string().as_str()
    );
    // No export-stdout container, whose log the runtime would write and Tetragon trace.
    assert_eq!(tetragon["export"]["mode"], "");

    let prometheus = ours("prometheus");
    assert_eq!(prometheus["server"]["global"]["scrape_interval"], "30s");
    assert_eq!(prometheus["kube-state-metrics"]["enabled"], true);
    // kube-state-metrics' ClusterRole follows its collectors: without `secrets` it cannot read
    // any Secret. The rest are the chart's own defaults, so a chart bump that adds one shows here.
    let upstream: Value = serde_yaml::from_str(&upstream_text(SUBCHARTS[0].2)).unwrap();
    let mut defaults: Vec<&str> = upstream["collectors"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(defaults.contains(&"secrets"), "{defaults:?}");
    defaults.retain(|c| *c != "secrets");
    let collectors: Vec<&str> = prometheus["kube-state-metrics"]["collectors"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(collectors, defaults);
    assert_eq!(prometheus["prometheus-node-exporter"]["enabled"], true);
    assert_eq!(prometheus["alertmanager"]["enabled"], false);
    assert_eq!(prometheus["prometheus-pushgateway"]["enabled"], false);

    let grafana = ours("grafana");
    assert_eq!(grafana["admin"]["existingSecret"], "kovenant-grafana");
    assert_eq!(grafana["service"]["port"], 3000);
    let sources = &grafana["datasources"]["datasources.yaml"]["datasources"];
    assert_eq!(sources[0]["uid"], "kovenant-prometheus");
    assert_eq!(
        sources[0]["url"],
        "http://prometheus-server.kovenant.svc:80"
    );
    assert_eq!(sources[1]["uid"], "kovenant-influxdb");
    assert_eq!(sources[1]["jsonData"]["dbName"], "tetragon");
    assert_eq!(
        sources[1]["secureJsonData"]["httpHeaderValue1"],
        "Token ${INFLUX_TOKEN}"
    );
    // Grafana's own read token (optional: Grafana alone still starts), and its generation.
    let token = &grafana["envValueFrom"]["INFLUX_TOKEN"]["secretKeyRef"];
    assert_eq!(token["name"], "kovenant-influxdb-grafana");
    assert_eq!(token["key"], "token");
    assert_eq!(token["optional"], true);
    assert_eq!(
        grafana["podAnnotations"]["kovenant.io/token-generation"],
        "1"
    );
    assert_eq!(
        grafana["sidecar"]["dashboards"]["label"],
        "grafana_dashboard"
    );
    assert_eq!(grafana["sidecar"]["dashboards"]["labelValue"], "1");
    // An init container running the watching sidecar never exits: Grafana would never start.
    assert!(
        grafana["sidecar"]["dashboards"]
            .get("initDashboards")
            .is_none(),
        "{:?}",
        grafana["sidecar"]["dashboards"]
    );
    // Namespaced RBAC: the chart's Role (which adds Secrets) is replaced by kovenant's, made in the
    // same release, that lists and watches ConfigMaps in kovenant's namespace only.
    assert_eq!(grafana["rbac"]["namespaced"], true);
    assert_eq!(
        grafana["rbac"]["useExistingRole"],
        "kovenant-grafana-dashboards"
    );
    let role = &grafana["extraObjects"][0];
    assert_eq!(role["kind"], "Role");
    assert_eq!(role["metadata"]["name"], "kovenant-grafana-dashboards");
    assert_eq!(role["metadata"]["namespace"], "kovenant");
    assert_eq!(
        role["rules"],
        serde_yaml::from_str::<Value>(
            "[{apiGroups: [''], resources: [configmaps], verbs: [list, watch]}]"
        )
        .unwrap()
    );
    assert_eq!(grafana["sidecar"]["dashboards"]["resource"], "configmap");
    assert_eq!(
        grafana["sidecar"]["dashboards"]["searchNamespace"],
        serde_yaml::from_str::<Value>("[kovenant]").unwrap()
    );
    // No KOVENANT_EXTERNAL_URL by default: no ingress.
    assert_eq!(grafana["ingress"]["enabled"], false);
    assert_eq!(grafana["ingress"]["path"], "/grafana");
    assert_eq!(grafana["ingress"]["ingressClassName"], "nginx");
    assert_eq!(
        grafana["grafana.ini"]["server"]["serve_from_sub_path"],
        true
    );
}

/// `tetragon.prometheus.port` of the pinned chart's values.
fn upstream_tetragon_metrics_port() -> u64 {
    let v: Value = serde_yaml::from_str(&upstream_text("tetragon-1.7.0")).expect("upstream values");
    v["tetragon"]["prometheus"]["port"]
        .as_u64()
        .expect("a port")
}

fn render_with(config: &kovenant::config::Config, file: &str) -> Value {
    let tree = kovenant::plan::render_all(config, &kovenant::assets::Assets::embedded(), "i:1")
        .expect("renders");
    serde_yaml::from_slice(tree.get(file).expect("rendered")).expect("parses")
}

#[test]
fn the_grafana_ingress_follows_the_external_url_and_the_class() {
    let mut config = kovenant::config::Config {
        external_url: Some("https://mon.example.com:8443/ops/".parse().unwrap()),
        ingress_class: Some("traefik".into()),
        ..Default::default()
    };
    let grafana = render_with(&config, "values/grafana.yaml");
    assert_eq!(grafana["ingress"]["enabled"], true);
    assert_eq!(grafana["ingress"]["ingressClassName"], "traefik");
    assert_eq!(grafana["ingress"]["hosts"][0], "mon.example.com");
    assert_eq!(grafana["ingress"]["path"], "/ops/grafana");
    let server = &grafana["grafana.ini"]["server"];
    assert_eq!(
        server["root_url"],
        "https://mon.example.com:8443/ops/grafana/"
    );
    assert_eq!(server["domain"], "mon.example.com");

    // A class but no external URL (the defaults): no ingress, which would have no host.
    config.external_url = None;
    let grafana = render_with(&config, "values/grafana.yaml");
    assert_eq!(grafana["ingress"]["enabled"], false);
    assert_eq!(grafana["ingress"]["hosts"], Value::Sequence(Vec::new()));

    config.ingress_class = None;
    let grafana = render_with(&config, "values/grafana.yaml");
    assert_eq!(grafana["ingress"]["enabled"], false);
    assert!(grafana["ingress"].get("ingressClassName").is_none());
    assert_eq!(grafana["ingress"]["hosts"], Value::Sequence(Vec::new()));
    assert_eq!(
        grafana["grafana.ini"]["server"]["root_url"],
        "%(protocol)s://%(domain)s/grafana"
    );
}

#[test]
fn pipeline_values_follow_the_configuration() {
    let mut config = kovenant::config::Config {
        agent_window: std::time::Duration::from_secs(90),
        scrape_interval: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    config.influxdb.retention = std::time::Duration::ZERO;
    config.influxdb.storage_class = Some("fast-ssd".into());
    config.influxdb.org = "team \"ops\"".into();
    let values = render_with(&config, "charts/kovenant-pipeline/values.yaml");
    assert_eq!(values["influxdb"]["retention"], "0");
    assert_eq!(values["influxdb"]["storageClass"], "fast-ssd");
    assert_eq!(values["influxdb"]["org"], "team \"ops\"");
    assert_eq!(values["agent"]["window"], "1m30s");
    assert_eq!(values["agent"]["image"], "i:1");
    let prometheus = render_with(&config, "values/prometheus.yaml");
    assert_eq!(prometheus["server"]["global"]["scrape_interval"], "5s");
    assert_eq!(prometheus["server"]["global"]["scrape_timeout"], "5s");
    // Both volumes take the class; Prometheus's claim outlives a plain uninstall.
    let volume = &prometheus["server"]["persistentVolume"];
    assert_eq!(volume["storageClass"], "fast-ssd");
    assert_eq!(volume["annotations"]["helm.sh/resource-policy"], "keep");
    config.influxdb.storage_class = None;
    let prometheus = render_with(&config, "values/prometheus.yaml");
    assert!(
        prometheus["server"]["persistentVolume"]
            .get("storageClass")
            .is_none(),
        "no class: the chart leaves storageClassName out (the cluster's default)"
    );
}
