//! Every PromQL expression in the dashboards passes promtool and uses only metrics that the
//! pinned Prometheus chart's cAdvisor, kube-state-metrics and node-exporter produce.
use std::collections::BTreeSet;
use std::process::Command;

use crate::dashboards::{Query, queries, rendered};
use crate::support::service;

/// Metrics the pinned chart (prometheus 29.27.0) scrapes: the kubelet's cAdvisor endpoint
/// (`kubernetes-nodes-cadvisor`), kube-state-metrics 8.4.x and prometheus-node-exporter 4.56.x
/// (`kubernetes-service-endpoints`). Only names these exporters export belong here.
const CHART_METRICS: &[&str] = &[
    // cAdvisor (labels: namespace, pod, container, instance = node name, device/interface)
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_fs_reads_bytes_total",
    "container_fs_writes_bytes_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    // kube-state-metrics
    "kube_node_info",
    "kube_node_status_condition",
    "kube_pod_info",
    "kube_pod_owner",
    "kube_replicaset_owner",
    "kube_pod_status_ready",
    "kube_pod_status_phase",
    "kube_pod_container_status_restarts_total",
    // node-exporter (labels: node, instance, device, mountpoint, fstype, mode)
    "node_cpu_seconds_total",
    "node_load1",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
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
fn promql_uses_only_metrics_the_chart_exports() {
    let allowed: BTreeSet<&str> = CHART_METRICS.iter().copied().collect();
    let mut used = BTreeSet::new();
    for q in prometheus_queries() {
        let names = metric_names(&promql(&q));
        assert!(!names.is_empty(), "{}: no metric in {}", q.origin, q.text);
        for name in names {
            assert!(
                allowed.contains(name.as_str()),
                "{}: {name} is not exported by the chart",
                q.origin
            );
            used.insert(name);
        }
    }
    // The list documents what the dashboards need; a name nobody uses is stale.
    let unused: Vec<&&str> = CHART_METRICS
        .iter()
        .filter(|m| !used.contains(**m))
        .collect();
    assert!(unused.is_empty(), "listed but unused: {unused:?}");
}

#[test]
fn metric_names_skip_functions_labels_and_keywords() {
    let expr = r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="", pod=~"a|b"}[5m]) * on (namespace, pod) group_left (workload) max by (namespace, pod, workload) (label_replace(kube_pod_owner{owner_kind="ReplicaSet"}, "workload", "$1", "owner_name", "(.+)"))) > 0 or vector(0) unless node_load1 offset 5m"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "container_cpu_usage_seconds_total",
            "kube_pod_owner",
            "node_load1"
        ]
    );
}

/// Metric names in a PromQL expression: identifiers outside strings, label matchers, ranges and
/// `by`/`on`-style label lists that are neither functions nor keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let (mut i, mut braces, mut parens) = (0, 0usize, 0usize);
    let mut label_list_at: Option<usize> = None;
    let mut expect_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '{' {
            braces += 1;
        } else if c == '}' {
            braces = braces.saturating_sub(1);
        } else if c == '(' {
            parens += 1;
            if expect_label_list {
                label_list_at = Some(parens);
                expect_label_list = false;
            }
        } else if c == ')' {
            if label_list_at == Some(parens) {
                label_list_at = None;
            }
            parens = parens.saturating_sub(1);
        } else if c.is_ascii_digit() {
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric() || chars[i + 1] == '.')
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric()
                    || chars[i + 1] == '_'
                    || chars[i + 1] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..=i].iter().collect();
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if braces > 0 || label_list_at.is_some() {
                // a label name
            } else if LABEL_LISTS.contains(&word.as_str()) {
                expect_label_list = next == Some(&'(');
            } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                out.insert(word);
            }
        }
        i += 1;
    }
    out
}
