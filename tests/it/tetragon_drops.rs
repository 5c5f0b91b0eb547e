//! Tetragon's drop counters, evaluated by the real Prometheus engine (`promtool test rules`) on
//! series shaped as the prometheus chart's kubernetes-pods job stores them: status's two queries
//! and every dashboard panel of the "Pipeline health" row that reads them give exact values.
use std::process::Command;

use kovenant::status::drops;

use crate::dashboards::{queries, rendered};
use crate::support::service;

/// One hour of one-minute scrapes (61 samples, 0m..60m) of two nodes' Tetragons. Node n0 lost 7
/// events from its ring-buffer queue long ago and 2 in the kernel, and its export rate limit
/// drops one event a minute; node n1 lost 5 from its queue in the last ten minutes.
const SERIES: &[(&str, &str, &str)] = &[
    (
        "tetragon_observer_ringbuf_queue_events_lost_total",
        "n0",
        "7x60",
    ),
    (
        "tetragon_observer_ringbuf_queue_events_lost_total",
        "n1",
        "0x50 1 2 3 4 5 5 5 5 5 5",
    ),
    ("tetragon_notify_overflowed_events_total", "n0", "0x60"),
    ("tetragon_notify_overflowed_events_total", "n1", "0x60"),
    (
        "tetragon_export_ratelimit_events_dropped_total",
        "n0",
        "0+1x60",
    ),
    (
        "tetragon_export_ratelimit_events_dropped_total",
        "n1",
        "0x60",
    ),
];

fn input_series() -> String {
    let mut out = String::new();
    for (metric, node, values) in SERIES {
        out.push_str(&format!(
            "      - series: '{metric}{{job=\"kubernetes-pods\", namespace=\"kube-system\", \
             pod=\"tetragon-{node}\", node=\"{node}\", instance=\"10.0.0.{}:2112\"}}'\n        \
             values: '{values}'\n",
            &node[1..]
        ));
    }
    // tetragon_bpf_missed_events_total has a series per error and message kind: two on n0.
    for (labels, values) in [
        (r#"error="ENOSPC", msg_op="23""#, "0x55 1 1 1 1 1 1"),
        (r#"error="EBUSY", msg_op="5""#, "1x60"),
    ] {
        out.push_str(&format!(
            "      - series: 'tetragon_bpf_missed_events_total{{job=\"kubernetes-pods\", \
             namespace=\"kube-system\", pod=\"tetragon-n0\", node=\"n0\", {labels}}}'\n        \
             values: '{values}'\n"
        ));
    }
    out
}

/// A `promql_expr_test` of `expr` at 60m expecting `samples` (labels, value).
fn case(expr: &str, samples: &[(&str, f64)]) -> String {
    let mut out = format!(
        "      - expr: '{}'\n        eval_time: 60m\n        exp_samples:\n",
        expr.replace('\'', "''")
    );
    for (labels, value) in samples {
        out.push_str(&format!(
            "          - labels: '{labels}'\n            value: {value}\n"
        ));
    }
    out
}

/// Runs promtool's unit tests of `cases` over `series` (one group), returning its output.
fn promtool(series: &str, cases: &[String]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, "groups: []\n").expect("write rules");
    let file = dir.path().join("test.yml");
    std::fs::write(
        &file,
        format!(
            "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    \
             input_series:\n{series}    promql_expr_test:\n{}",
            cases.concat()
        ),
    )
    .expect("write test");
    Command::new(service("KOVENANT_TEST_PROMTOOL"))
        .args(["test", "rules"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .expect("run promtool")
}

fn assert_passes(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_reads_each_counter_per_node_and_what_it_rose_by_in_ten_minutes() {
    let row = |node: &str, counter: &str, v: f64| {
        (format!(r#"{{counter="{counter}", node="{node}"}}"#), v)
    };
    let totals = [
        row("n0", "bpf_missed", 2.0),
        row("n0", "ringbuf_queue_lost", 7.0),
        row("n1", "ringbuf_queue_lost", 5.0),
        row("n0", "notify_overflowed", 0.0),
        row("n1", "notify_overflowed", 0.0),
        row("n0", "export_ratelimited", 60.0),
        row("n1", "export_ratelimited", 0.0),
    ];
    // In the last 600s (50m..60m): n0's kernel misses rose by 1 (at 56m), its export limit by
    // 10; n1's queue by 5; nothing else.
    let rises = [
        row("n0", "bpf_missed", 1.0),
        row("n0", "ringbuf_queue_lost", 0.0),
        row("n1", "ringbuf_queue_lost", 5.0),
        row("n0", "notify_overflowed", 0.0),
        row("n1", "notify_overflowed", 0.0),
        row("n0", "export_ratelimited", 10.0),
        row("n1", "export_ratelimited", 0.0),
    ];
    let refs = |rows: &[(String, f64)]| -> Vec<(String, f64)> { rows.to_vec() };
    let cases: Vec<String> = [(false, refs(&totals)), (true, refs(&rises))]
        .iter()
        .map(|(rise, rows)| {
            let samples: Vec<(&str, f64)> = rows.iter().map(|(l, v)| (l.as_str(), *v)).collect();
            case(&drops::query(*rise), &samples)
        })
        .collect();
    assert_passes(&promtool(&input_series(), &cases));

    // And what status makes of those answers: a warning naming n0 and n1 and what rose.
    let answer = |rows: &[(String, f64)]| {
        let result: Vec<serde_json::Value> = rows
            .iter()
            .map(|(labels, v)| {
                let node = labels.split("node=\"").nth(1).unwrap_or_default();
                let counter = labels.split("counter=\"").nth(1).unwrap_or_default();
                serde_json::json!({
                    "metric": {
                        "node": &node[..node.find('"').unwrap_or(0)],
                        "counter": &counter[..counter.find('"').unwrap_or(0)],
                    },
                    "value": [3600, v.to_string()],
                })
            })
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    };
    let d = drops::judge(
        drops::parse(&answer(&totals)).expect("totals"),
        drops::parse(&answer(&rises)).expect("rises"),
    );
    assert_eq!(
        d.warning.as_deref(),
        Some(
            "Tetragon lost events in the last 10m on n0 (bpf_missed +1, export_ratelimited +10); \
             n1 (ringbuf_queue_lost +5): the owners of some host-network sockets go unnamed \
             (docs/clusters.md, Status)"
        )
    );
}

#[test]
fn a_wrong_expectation_fails_promtool() {
    let cases = [case(
        &drops::query(false),
        &[(r#"{counter="bpf_missed", node="n0"}"#, 3.0)],
    )];
    assert!(!promtool(&input_series(), &cases).status.success());
}

#[test]
fn the_pipeline_health_row_shows_each_counter_over_the_range_and_per_node() {
    let dashboards = rendered();
    let (_, json) = dashboards
        .iter()
        .find(|(d, _)| d.file_name.contains("traffic-map"))
        .expect("the traffic map");
    let tetragon: Vec<_> = queries(json)
        .into_iter()
        .filter(|q| q.datasource == "prometheus" && q.text.contains("tetragon_"))
        .collect();
    // Grafana's $__range is the dashboard's time range (1h here), $__rate_interval 2m.
    let expr = |title: &str, metric: &str| -> String {
        let q = tetragon
            .iter()
            .find(|q| q.panel_title == title && q.text.contains(metric))
            .unwrap_or_else(|| panic!("no panel {title} reading {metric}"));
        assert_eq!(q.datasource, "prometheus", "{}", q.origin);
        q.text
            .replace("$__range", "1h")
            .replace("$__rate_interval", "2m")
    };
    let per_node = "Tetragon events lost per node";
    let cases = vec![
        case(
            &expr(
                "Tetragon events missed in the kernel",
                "tetragon_bpf_missed_events_total",
            ),
            &[("{}", 1.0)],
        ),
        case(
            &expr(
                "Tetragon events lost from its ring-buffer queue",
                "tetragon_observer_ringbuf_queue_events_lost_total",
            ),
            &[("{}", 5.0)],
        ),
        case(
            &expr(
                "Tetragon events a full listener missed",
                "tetragon_notify_overflowed_events_total",
            ),
            &[("{}", 0.0)],
        ),
        case(
            &expr(
                "Tetragon events dropped by the export rate limit",
                "tetragon_export_ratelimit_events_dropped_total",
            ),
            &[("{}", 60.0)],
        ),
        // The last two minutes (58m..60m): n0's export limit dropped 2, nothing else rose.
        case(
            &expr(per_node, "tetragon_export_ratelimit_events_dropped_total"),
            &[(r#"{node="n0"}"#, 2.0), (r#"{node="n1"}"#, 0.0)],
        ),
        case(
            &expr(
                per_node,
                "tetragon_observer_ringbuf_queue_events_lost_total",
            ),
            &[(r#"{node="n0"}"#, 0.0), (r#"{node="n1"}"#, 0.0)],
        ),
        case(
            &expr(per_node, "tetragon_bpf_missed_events_total"),
            &[(r#"{node="n0"}"#, 0.0)],
        ),
    ];
    assert_eq!(tetragon.len(), 8, "four stats and four per-node series");
    assert_passes(&promtool(&input_series(), &cases));

    // A Prometheus that has none of Tetragon's series (not scraped yet) shows 0, not "No data".
    let empty = "      - series: 'up{job=\"x\"}'\n        values: '1x60'\n";
    let cases = vec![case(
        &expr(
            "Tetragon events a full listener missed",
            "tetragon_notify_overflowed_events_total",
        ),
        &[("{}", 0.0)],
    )];
    assert_passes(&promtool(empty, &cases));
}
