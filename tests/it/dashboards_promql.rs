//! Every PromQL expression passes promtool and reads only the chart's metrics and labels.
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::dashboards::{Query, queries, rendered};
use crate::dashboards_promql_parse::metric_names;
use crate::support::service;

/// Metrics the pinned chart (prometheus 29.27.0) scrapes, with the labels a selector may match on:
/// the kubelet's cAdvisor endpoint (`kubernetes-nodes-cadvisor`: the node name is `instance`),
/// kube-state-metrics 8.4.x and prometheus-node-exporter 4.56.x (`kubernetes-service-endpoints`,
/// which adds `node`, `namespace` and `service`). Only names these exporters export belong here.
const CHART_METRICS: &[(&str, &[&str])] = &[
    ("container_cpu_usage_seconds_total", CADVISOR),
    ("container_memory_working_set_bytes", CADVISOR),
    ("container_fs_reads_bytes_total", CADVISOR),
    ("container_fs_writes_bytes_total", CADVISOR),
    ("container_network_receive_bytes_total", CADVISOR),
    ("container_network_transmit_bytes_total", CADVISOR),
    (
        "kube_node_info",
        &[
            "node",
            "kernel_version",
            "os_image",
            "kubelet_version",
            "internal_ip",
        ],
    ),
    (
        "kube_node_status_condition",
        &["node", "condition", "status"],
    ),
    (
        "kube_pod_info",
        &[
            "namespace",
            "pod",
            "uid",
            "node",
            "host_ip",
            "pod_ip",
            "created_by_kind",
            "created_by_name",
        ],
    ),
    (
        "kube_pod_owner",
        &[
            "namespace",
            "pod",
            "uid",
            "owner_kind",
            "owner_name",
            "owner_is_controller",
        ],
    ),
    (
        "kube_replicaset_owner",
        &[
            "namespace",
            "replicaset",
            "owner_kind",
            "owner_name",
            "owner_is_controller",
        ],
    ),
    (
        "kube_pod_status_ready",
        &["namespace", "pod", "uid", "condition"],
    ),
    (
        "kube_pod_status_phase",
        &["namespace", "pod", "uid", "phase"],
    ),
    (
        "kube_pod_container_status_restarts_total",
        &["namespace", "pod", "uid", "container"],
    ),
    ("node_cpu_seconds_total", NODE_EXPORTER),
    ("node_load1", NODE_EXPORTER),
    ("node_memory_MemAvailable_bytes", NODE_EXPORTER),
    ("node_memory_MemTotal_bytes", NODE_EXPORTER),
    ("node_filesystem_avail_bytes", NODE_EXPORTER),
    ("node_filesystem_size_bytes", NODE_EXPORTER),
    ("node_disk_read_bytes_total", NODE_EXPORTER),
    ("node_disk_written_bytes_total", NODE_EXPORTER),
    ("node_network_receive_bytes_total", NODE_EXPORTER),
    ("node_network_transmit_bytes_total", NODE_EXPORTER),
    ("node_network_receive_drop_total", NODE_EXPORTER),
    ("node_network_transmit_drop_total", NODE_EXPORTER),
    // Tetragon's own metrics port 2112, scraped by the kubernetes-pods job (pod annotations),
    // which adds the pod's `namespace`, `pod` and `node`.
    ("tetragon_bpf_missed_events_total", TETRAGON),
    (
        "tetragon_observer_ringbuf_queue_events_lost_total",
        TETRAGON,
    ),
    ("tetragon_notify_overflowed_events_total", TETRAGON),
    ("tetragon_export_ratelimit_events_dropped_total", TETRAGON),
];
const TETRAGON: &[&str] = &["node", "namespace", "pod", "instance", "msg_op", "error"];
const CADVISOR: &[&str] = &[
    "namespace",
    "pod",
    "container",
    "instance",
    "image",
    "name",
    "id",
    "device",
    "interface",
];
const NODE_EXPORTER: &[&str] = &[
    "node",
    "instance",
    "namespace",
    "service",
    "mode",
    "cpu",
    "device",
    "fstype",
    "mountpoint",
];

/// Grafana's values for one scenario: "All" (`.*`) or a concrete, multi-valued selection.
fn substitute(expr: &str, all: bool) -> String {
    let pick = |concrete: &str| {
        if all {
            ".*".to_string()
        } else {
            concrete.to_string()
        }
    };
    let vars = [
        ("__rate_interval", "2m".to_string()),
        ("__interval", "30s".to_string()),
        ("__range", "1h".to_string()),
        ("node", pick("(node-0|node-1)")),
        ("namespace", pick("team-0")),
        ("workload", pick("(cart|payments)")),
        ("pod", pick("cart-7d4b9c-x2x9z")),
    ];
    let mut out = expr.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), &value);
        out = out.replace(&format!("${name}"), &value);
    }
    out
}

/// The PromQL a query stands for: variables' `label_values(selector, label)` queries select the
/// series, `query_result(expr)` evaluates `expr`.
fn promql(q: &Query) -> String {
    let text = q.text.trim();
    if let Some(inner) = text
        .strip_prefix("label_values(")
        .and_then(|t| t.strip_suffix(')'))
    {
        let (selector, _label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        return selector.trim().to_string();
    }
    if let Some(inner) = text
        .strip_prefix("query_result(")
        .and_then(|t| t.strip_suffix(')'))
    {
        return inner.to_string();
    }
    text.to_string()
}

fn prometheus_queries() -> Vec<Query> {
    let all: Vec<Query> = rendered()
        .iter()
        .flat_map(|(_, json)| queries(json))
        .filter(|q| q.datasource == "prometheus")
        .collect();
    assert!(all.len() >= 40, "found {} PromQL queries", all.len());
    all
}

/// Runs `promtool check rules` on `exprs`, each as a recording rule.
fn promtool_check(exprs: &[String]) -> std::process::Output {
    let mut rules = String::from("groups:\n  - name: kovenant-dashboards\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("quote");
        rules.push_str(&format!(
            "      - record: kovenant:dashboard_check_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).expect("write rules");
    Command::new(service("KOVENANT_TEST_PROMTOOL"))
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool")
}

#[test]
fn every_promql_expression_passes_promtool() {
    let queries = prometheus_queries();
    for all in [true, false] {
        let exprs: Vec<String> = queries
            .iter()
            .map(|q| substitute(&promql(q), all))
            .collect();
        for (q, e) in queries.iter().zip(&exprs) {
            let left = e.replace("$1", "");
            assert!(
                !left.contains('$'),
                "{}: unsubstituted variable in {e}",
                q.origin
            );
        }
        let out = promtool_check(&exprs);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "promtool rejected a dashboard expression:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("SUCCESS: {} rules found", exprs.len())),
            "{stdout}"
        );
    }
}

#[test]
fn promtool_rejects_a_broken_expression() {
    let out = promtool_check(&["sum(rate(node_cpu_seconds_total[5m])".to_string()]);
    assert!(!out.status.success());
}

#[test]
fn promql_uses_only_metrics_and_labels_the_chart_exports() {
    let allowed: BTreeMap<&str, &[&str]> = CHART_METRICS.iter().copied().collect();
    let mut used = BTreeSet::new();
    for q in prometheus_queries() {
        let names = metric_names(&promql(&q));
        assert!(!names.is_empty(), "{}: no metric in {}", q.origin, q.text);
        for (name, labels) in names {
            let known = allowed.get(name.as_str());
            let known = known
                .unwrap_or_else(|| panic!("{}: {name} is not exported by the chart", q.origin));
            for label in labels {
                assert!(
                    known.contains(&label.as_str()),
                    "{}: {name} has no label {label}",
                    q.origin
                );
            }
            used.insert(name);
        }
    }
    // The list documents what the dashboards need; a name nobody uses is stale.
    let unused: Vec<&str> = allowed
        .keys()
        .copied()
        .filter(|m| !used.contains(*m))
        .collect();
    assert!(unused.is_empty(), "listed but unused: {unused:?}");
}
