//! Tetragon's drop counters as Prometheus scrapes them (Tetragon's metrics port 2112, the chart's
//! kubernetes-pods job, which labels each series with its pod's `node`): the queries, their
//! answers per node, and the warning when a count rose.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Each counter Tetragon keeps of the events it lost, and the short name status shows.
pub const COUNTERS: [(&str, &str); 4] = [
    // The kernel side could not hand an event to the perf ring buffer.
    ("tetragon_bpf_missed_events_total", "bpf_missed"),
    // Tetragon's queue between the ring buffer and its event handling was full.
    (
        "tetragon_observer_ringbuf_queue_events_lost_total",
        "ringbuf_queue_lost",
    ),
    // A listener (the gRPC stream, the exporter) fell behind and was skipped.
    (
        "tetragon_notify_overflowed_events_total",
        "notify_overflowed",
    ),
    // The export rate limit dropped events before they reached the export file.
    (
        "tetragon_export_ratelimit_events_dropped_total",
        "export_ratelimited",
    ),
];

/// How far back a rise counts: ten minutes, ten of the chart's one-minute scrapes.
pub const RISE_SECONDS: u64 = 600;

/// Every counter, summed per node, each tagged with its short name in the label `counter`: the
/// totals since each Tetragon started (`rise` false), or what they rose by in the last
/// [`RISE_SECONDS`] (`rise` true). One query, so one round trip through the port-forward.
pub fn query(rise: bool) -> String {
    COUNTERS
        .iter()
        .map(|(metric, short)| {
            let series = if rise {
                format!("increase({metric}[{RISE_SECONDS}s])")
            } else {
                (*metric).to_string()
            };
            format!(r#"label_replace(sum by (node) ({series}), "counter", "{short}", "", "")"#)
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Per node: counter short name -> value.
pub type PerNode = BTreeMap<String, BTreeMap<String, f64>>;

/// The answer of Prometheus's `/api/v1/query` to [`query`], per node.
pub fn parse(body: &str) -> Result<PerNode, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("query did not answer JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "query: {}",
            v["error"]
                .as_str()
                .unwrap_or("Prometheus answered no result")
        ));
    }
    let mut out = PerNode::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let (Some(node), Some(counter)) = (
            s["metric"]["node"].as_str(),
            s["metric"]["counter"].as_str(),
        ) else {
            continue;
        };
        let Some(value) = s["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()) else {
            continue;
        };
        out.entry(node.to_string())
            .or_default()
            .insert(counter.to_string(), value);
    }
    Ok(out)
}

/// `kovenant status -o json` → `tetragon_drops`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drops {
    /// One per node Prometheus has Tetragon's counters of, sorted by node.
    pub nodes: Vec<NodeDrops>,
    /// How far back `rise` looks.
    pub rise_seconds: u64,
    /// The nodes where a count rose, and by how much; null when none did. A warning: the stack
    /// still works, but some host sockets' owners go unnamed.
    pub warning: Option<String>,
    /// Why the counters could not be read; null when they were. Not a failure of the stack:
    /// the prometheus row says whether Prometheus itself is healthy.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeDrops {
    pub node: String,
    /// Each counter's total since its Tetragon started (short names of [`COUNTERS`]).
    pub total: BTreeMap<String, u64>,
    /// What each counter rose by in the last `rise_seconds`: Prometheus's `increase`, rounded to
    /// the nearest whole event (it extrapolates to the window's edges, so 5 lost events can read
    /// 5.2; a real rise of one event never reads below 1).
    pub rise: BTreeMap<String, u64>,
}

impl Drops {
    pub fn failed(error: String) -> Drops {
        Drops {
            nodes: Vec::new(),
            rise_seconds: RISE_SECONDS,
            warning: None,
            error: Some(error),
        }
    }
}

/// Joins the two answers into the per-node report, and warns of every count that rose.
pub fn judge(totals: PerNode, rises: PerNode) -> Drops {
    if totals.is_empty() {
        return Drops::failed(
            "Prometheus has none of Tetragon's counters: its pods are not scraped on their \
             metrics port (2112; a Tetragon kovenant did not install needs the pod annotations \
             prometheus.io/scrape: \"true\" and prometheus.io/port: \"2112\")"
                .into(),
        );
    }
    let whole = |m: &BTreeMap<String, f64>| -> BTreeMap<String, u64> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.max(0.0).round() as u64))
            .collect()
    };
    let mut nodes = Vec::new();
    let mut rising = Vec::new();
    for (node, total) in totals {
        let rise = whole(rises.get(&node).unwrap_or(&BTreeMap::new()));
        let rose: Vec<String> = COUNTERS
            .iter()
            .filter_map(|(_, short)| {
                rise.get(*short)
                    .filter(|n| **n > 0)
                    .map(|n| format!("{short} +{n}"))
            })
            .collect();
        if !rose.is_empty() {
            rising.push(format!("{node} ({})", rose.join(", ")));
        }
        nodes.push(NodeDrops {
            node,
            total: whole(&total),
            rise,
        });
    }
    let warning = (!rising.is_empty()).then(|| {
        format!(
            "Tetragon lost events in the last {}m on {}: the owners of some host-network sockets \
             go unnamed (docs/clusters.md, Status)",
            RISE_SECONDS / 60,
            rising.join("; ")
        )
    });
    Drops {
        nodes,
        rise_seconds: RISE_SECONDS,
        warning,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: &[(&str, &str, &str)]) -> String {
        let result: Vec<Value> = rows
            .iter()
            .map(|(node, counter, v)| {
                serde_json::json!({"metric": {"node": node, "counter": counter}, "value": [1.0, v]})
            })
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    }

    #[test]
    fn every_counter_is_asked_for_by_node_and_tagged_with_its_short_name() {
        let q = query(true);
        assert_eq!(q.matches(" or ").count(), 3);
        assert!(q.starts_with(
            r#"label_replace(sum by (node) (increase(tetragon_bpf_missed_events_total[600s])), "counter", "bpf_missed", "", "")"#
        ));
        assert!(!query(false).contains("increase"));
    }

    #[test]
    fn a_rise_on_one_node_warns_naming_the_node_and_the_counter() {
        let totals = parse(&answer(&[
            ("n0", "ringbuf_queue_lost", "7"),
            ("n0", "bpf_missed", "0"),
            ("n1", "ringbuf_queue_lost", "5"),
            ("n1", "export_ratelimited", "2"),
        ]))
        .expect("parsed");
        let rises = parse(&answer(&[
            ("n0", "ringbuf_queue_lost", "0"),
            ("n1", "ringbuf_queue_lost", "5.2"),
            ("n1", "export_ratelimited", "2"),
        ]))
        .expect("parsed");
        let d = judge(totals, rises);
        assert_eq!(d.error, None);
        assert_eq!(
            d.warning.as_deref(),
            Some(
                "Tetragon lost events in the last 10m on n1 (ringbuf_queue_lost +5, \
                 export_ratelimited +2): the owners of some host-network sockets go unnamed \
                 (docs/clusters.md, Status)"
            )
        );
        assert_eq!(d.nodes[0].node, "n0");
        assert_eq!(d.nodes[0].total["ringbuf_queue_lost"], 7);
        assert_eq!(d.nodes[1].rise["ringbuf_queue_lost"], 5);
    }

    #[test]
    fn counts_that_stand_still_are_no_warning_and_no_counters_at_all_is_an_error() {
        let totals = parse(&answer(&[("n0", "ringbuf_queue_lost", "7")])).expect("parsed");
        let rises = parse(&answer(&[("n0", "ringbuf_queue_lost", "0")])).expect("parsed");
        assert_eq!(judge(totals, rises).warning, None);
        let d = judge(PerNode::new(), PerNode::new());
        assert!(d.error.expect("error").starts_with("Prometheus has none"));
    }

    #[test]
    fn an_error_answer_is_an_error() {
        let e = parse(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#);
        assert_eq!(e, Err("query: parse error".to_string()));
    }
}
