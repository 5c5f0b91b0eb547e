//! The pipeline chart, rendered by the real helm (`helm template`), is valid Kubernetes objects
//! of known kinds, and says what kovenant means it to.
use std::collections::BTreeMap;

use k8s_openapi::api::{apps, core, rbac};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::render::{IMAGE, default_tree};

const CHART: &str = "charts/kovenant-pipeline";
const NAMESPACE: &str = "kovenant";
const RELEASE: &str = "kovenant-pipeline";

/// Every object of the chart rendered with its default values, by template file.
pub fn objects() -> Vec<(String, Json)> {
    objects_of(&default_tree())
}

/// As `objects`, for the tree rendered from `config`.
pub(crate) fn objects_with(config: &kovenant::config::Config) -> Vec<(String, Json)> {
    let tree = kovenant::plan::render_all(config, &kovenant::assets::Assets::embedded(), IMAGE)
        .expect("renders")
        .files;
    objects_of(&tree)
}

fn text(tree: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(tree[path].clone()).expect("UTF-8")
}

/// The chart of `tree` rendered by the real helm (`helm template`), by template file.
fn objects_of(tree: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Json)> {
    let helm = crate::support::tool("KOVENANT_TEST_HELM4", "helm4");
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, bytes) in tree.range(format!("{CHART}/")..) {
        if !path.starts_with(&format!("{CHART}/")) {
            break;
        }
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, bytes).expect("write");
    }
    let out = std::process::Command::new(helm)
        .args(["template", RELEASE, "--namespace", NAMESPACE])
        .arg(dir.path().join(CHART))
        .output()
        .expect("run helm template");
    let rendered = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut objects = Vec::new();
    // helm writes `# Source: <chart>/templates/<file>` above each object.
    for doc in rendered.split("\n---\n") {
        let Some(source) = doc
            .lines()
            .find_map(|l| l.strip_prefix("# Source: kovenant-pipeline/"))
        else {
            continue;
        };
        let path = format!("{CHART}/{source}");
        let value: Yaml = serde_yaml::from_str(doc)
            .unwrap_or_else(|e| panic!("{path} does not render to YAML: {e}\n{doc}"));
        if !value.is_null() {
            objects.push((path, serde_json::to_value(value).expect("JSON")));
        }
    }
    objects
}

fn drop_nulls(value: &mut Json) {
    match value {
        Json::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Json::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Deserializes into the typed object and back: a field k8s-openapi does not know (a misspelt or
/// misplaced one, which the API server would drop or reject) is lost on the way and fails.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(path: &str, object: &Json) {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{path}: not a valid {}: {e}", std::any::type_name::<T>()));
    let mut back = serde_json::to_value(typed).expect("serializes");
    let mut original = object.clone();
    drop_nulls(&mut back);
    drop_nulls(&mut original);
    if let Some(at) = difference(&original, &back, String::new()) {
        panic!(
            "{path}: {at}: a field the Kubernetes API does not know, or a value it reads differently"
        );
    }
}

/// The first place where `a` and `b` differ, as a JSON pointer.
fn difference(a: &Json, b: &Json, at: String) -> Option<String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => difference(v, w, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}")),
                })
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| difference(v, w, format!("{at}/{i}"))),
        _ => (a != b).then_some(at),
    }
}

#[test]
fn chart_templates_render_to_valid_objects_of_known_kinds() {
    assert_eq!(
        kinds_of(objects()),
        [
            "ClusterRole/kovenant-agent",
            "ClusterRoleBinding/kovenant-agent",
            "ConfigMap/kovenant-agent",
            "DaemonSet/kovenant-agent",
            "Service/kovenant-influxdb",
            "ServiceAccount/kovenant-agent",
            "StatefulSet/kovenant-influxdb",
        ]
    );
    let kube_logs = kovenant::config::Config {
        agent_source: kovenant::config::AgentSource::KubeLogs,
        ..Default::default()
    };
    assert_eq!(
        kinds_of(objects_with(&kube_logs)),
        [
            "ClusterRole/kovenant-agent",
            "ClusterRoleBinding/kovenant-agent",
            "ConfigMap/kovenant-agent",
            "DaemonSet/kovenant-agent",
            "Role/kovenant-agent-logs",
            "RoleBinding/kovenant-agent-logs",
            "Service/kovenant-influxdb",
            "ServiceAccount/kovenant-agent",
            "StatefulSet/kovenant-influxdb",
        ]
    );
}

/// Checks every object against its Kubernetes type and kovenant's labels; returns kind/name.
fn kinds_of(objects: Vec<(String, Json)>) -> Vec<String> {
    let mut kinds = Vec::new();
    for (path, object) in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        match (api_version, kind) {
            ("v1", "Service") => round_trip::<core::v1::Service>(&path, &object),
            ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(&path, &object),
            ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(&path, &object),
            ("apps/v1", "StatefulSet") => round_trip::<apps::v1::StatefulSet>(&path, &object),
            ("apps/v1", "DaemonSet") => round_trip::<apps::v1::DaemonSet>(&path, &object),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                round_trip::<rbac::v1::ClusterRole>(&path, &object)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                round_trip::<rbac::v1::ClusterRoleBinding>(&path, &object)
            }
            ("rbac.authorization.k8s.io/v1", "Role") => {
                round_trip::<rbac::v1::Role>(&path, &object)
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                round_trip::<rbac::v1::RoleBinding>(&path, &object)
            }
            other => panic!("{path}: unexpected kind {other:?}"),
        }
        let labels = &object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/part-of"], "kovenant", "{path}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm", "{path}");
        kinds.push(format!(
            "{kind}/{}",
            object["metadata"]["name"].as_str().unwrap_or("")
        ));
    }
    kinds.sort();
    kinds
}

/// The first object of `kind` the chart renders with its default values.
pub fn object(kind: &str) -> Json {
    objects()
        .into_iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_agent_daemonset_runs_the_image_with_the_host_pids_and_exactly_its_capabilities() {
    let ds = object("DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // The kernel's counters (docs/security.md): the host's processes, root with exactly the
    // capabilities the reads need, never a privileged container.
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod.get("hostNetwork"), None);
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    // The API server refuses allowPrivilegeEscalation: false together with SYS_ADMIN.
    assert_eq!(sc.get("allowPrivilegeEscalation"), None);
    assert_eq!(
        sc["capabilities"],
        serde_json::json!({
            "drop": ["ALL"],
            "add": ["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "NET_ADMIN"],
        })
    );
    // telegraf itself, as root: the image's entrypoint would drop to the telegraf user.
    assert_eq!(
        container["command"],
        serde_json::json!(["telegraf", "--config", "/etc/telegraf/telegraf.conf"])
    );
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pod["serviceAccountName"], "kovenant-agent");
    let env = &container["env"];
    assert_eq!(env[0]["name"], "NODE_NAME");
    assert_eq!(
        env[0]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(env[1]["name"], "INFLUX_TOKEN");
    let token_ref = &env[1]["valueFrom"]["secretKeyRef"];
    // telegraf's own write token, never the operator's; its generation rolls the pods.
    assert_eq!(token_ref["name"], "kovenant-influxdb-telegraf");
    assert_eq!(token_ref["key"], "token");
    assert_eq!(
        ds["spec"]["template"]["metadata"]["annotations"]["kovenant.io/token-generation"],
        "1"
    );
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/var/log/tetragon");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(pod["volumes"][0]["hostPath"]["path"], "/var/log/tetragon");
}

#[test]
fn telegraf_runs_the_agent_and_writes_to_the_influxdb_service() {
    let cm = object("ConfigMap");
    let conf = cm["data"]["telegraf.conf"].as_str().expect("telegraf.conf");
    for line in [
        r#"command = ["/usr/local/bin/kovenant", "agent", "--source", "file:/var/log/tetragon/tetragon.log", "--tetragon-namespace", "kube-system", "--tetragon-node", "${NODE_NAME}", "--window", "10s", "--max-keys", "50000", "--top-peers", "20", "--pod-activity"]"#,
        r#"signal = "none""#,
        r#"data_format = "influx""#,
        r#"urls = ["http://kovenant-influxdb.kovenant.svc:8086"]"#,
        r#"token = "${INFLUX_TOKEN}""#,
        r#"organization = "kovenant""#,
        r#"bucket = "tetragon""#,
        r#"namedrop = ["pod_activity"]"#,
        r#"bucket = "tetragon/pods""#,
        r#"namepass = ["pod_activity"]"#,
    ] {
        assert!(
            conf.lines().any(|l| l.trim() == line),
            "telegraf.conf lacks `{line}`:\n{conf}"
        );
    }
    // Two outputs: pod_activity only to the pod-level bucket, everything else to the bucket.
    let outputs: Vec<&str> = conf.split("[[outputs.influxdb_v2]]").skip(1).collect();
    assert_eq!(outputs.len(), 2, "{conf}");
    assert!(outputs[0].contains(r#"bucket = "tetragon""#) && outputs[0].contains("namedrop"));
    assert!(outputs[1].contains(r#"bucket = "tetragon/pods""#) && outputs[1].contains("namepass"));
}

#[test]
fn influxdb_keeps_its_data_and_takes_credentials_from_the_secret() {
    let sts = object("StatefulSet");
    let claim = &sts["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "10Gi");
    assert_eq!(claim.get("storageClassName"), Some(&Json::Null));
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .clone();
    let by_name = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    for secret in [
        "DOCKER_INFLUXDB_INIT_PASSWORD",
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN",
    ] {
        let var = by_name(secret).unwrap_or_else(|| panic!("no {secret}"));
        assert_eq!(
            var["valueFrom"]["secretKeyRef"]["name"],
            "kovenant-influxdb"
        );
        assert!(var.get("value").is_none(), "{secret} inlined");
    }
    assert_eq!(
        by_name("DOCKER_INFLUXDB_INIT_MODE").unwrap()["value"],
        "setup"
    );
    assert_eq!(
        by_name("DOCKER_INFLUXDB_INIT_RETENTION").unwrap()["value"],
        "168h"
    );
}

#[test]
fn the_agent_role_lists_and_watches_what_attribution_needs_and_nothing_else() {
    // The kinds the agent attributes with (CronJob too, for Job -> CronJob), through watchers
    // (list and watch; never get); no namespaces, no Secrets, nothing it could write with; no
    // pods/log with the default file source.
    let role = object("ClusterRole");
    let read = ["list", "watch"];
    let rules = serde_json::json!([
        {"apiGroups": [""], "resources": ["pods", "services", "nodes"], "verbs": read},
        {"apiGroups": ["apps"], "resources": ["replicasets", "deployments", "statefulsets", "daemonsets"], "verbs": read},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read},
    ]);
    assert_eq!(role["rules"], rules);
    assert!(
        !objects().iter().any(|(_, o)| o["kind"] == "Role"),
        "a Role without kube-logs"
    );

    // kube-logs: the same ClusterRole, plus get pods/log in Tetragon's namespace only, bound to
    // the agent; the DaemonSet mounts no hostPath and each agent reads its own node's pod.
    let config = kovenant::config::Config {
        agent_source: kovenant::config::AgentSource::KubeLogs,
        tetragon_namespace: "tetragon".into(),
        ..Default::default()
    };
    let objects = objects_with(&config);
    let find = |kind: &str| {
        objects
            .iter()
            .map(|(_, o)| o)
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .clone()
    };
    assert_eq!(find("ClusterRole")["rules"], rules);
    let logs = find("Role");
    assert_eq!(logs["metadata"]["namespace"], "tetragon");
    assert_eq!(
        logs["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}])
    );
    let binding = find("RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "tetragon");
    assert_eq!(binding["roleRef"]["name"], "kovenant-agent-logs");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "kovenant-agent", "namespace": "kovenant"}])
    );
    let pod = &find("DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        serde_json::json!([{"name": "config", "configMap": {"name": "kovenant-agent"}}])
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let conf = find("ConfigMap")["data"]["telegraf.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        conf.contains(r#""--source", "kube-logs", "--tetragon-namespace", "tetragon", "--tetragon-node", "${NODE_NAME}""#),
        "{conf}"
    );
}

#[test]
fn the_chart_is_versioned_with_kovenant() {
    let tree = default_tree();
    let chart: Yaml = serde_yaml::from_str(&text(&tree, &format!("{CHART}/Chart.yaml"))).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "kovenant-pipeline");
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn with_an_influxdb_of_ones_own_none_is_rendered_and_telegraf_writes_there() {
    let config = kovenant::config::Config {
        influxdb: kovenant::config::Influxdb {
            url: Some(url::Url::parse("https://influx.example.com:8443").expect("url")),
            external_token: Some(kovenant::config::Secret::new("ext-token")),
            ..kovenant::config::Config::default().influxdb
        },
        ..Default::default()
    };
    let objects = objects_with(&config);
    let kinds = kinds_of(objects.clone());
    assert!(
        !kinds.iter().any(|k| k.contains("kovenant-influxdb")),
        "{kinds:?}"
    );
    assert_eq!(
        kinds,
        [
            "ClusterRole/kovenant-agent",
            "ClusterRoleBinding/kovenant-agent",
            "ConfigMap/kovenant-agent",
            "DaemonSet/kovenant-agent",
            "ServiceAccount/kovenant-agent",
        ]
    );
    let conf = objects
        .iter()
        .find(|(_, o)| o["kind"] == "ConfigMap")
        .map(|(_, o)| {
            o["data"]["telegraf.conf"]
                .as_str()
                .expect("conf")
                .to_owned()
        })
        .expect("ConfigMap");
    let urls: Vec<&str> = conf
        .lines()
        .filter(|l| l.trim().starts_with("urls"))
        .map(str::trim)
        .collect();
    assert_eq!(
        urls,
        [
            r#"urls = ["https://influx.example.com:8443"]"#,
            r#"urls = ["https://influx.example.com:8443"]"#
        ]
    );
    assert!(!conf.contains("ext-token"), "the token is in telegraf.conf");
    // Grafana's data source reads the same InfluxDB.
    let tree = kovenant::plan::render_all(&config, &kovenant::assets::Assets::embedded(), IMAGE)
        .expect("renders")
        .files;
    let grafana = String::from_utf8(tree["values/grafana.yaml"].clone()).expect("UTF-8");
    assert!(
        grafana.contains(r#"url: "https://influx.example.com:8443""#),
        "{grafana}"
    );
    assert!(!grafana.contains("ext-token"));
}
