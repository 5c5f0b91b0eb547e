//! The agent's points of one scenario summed over windows, and the exact comparisons.
use std::collections::BTreeMap;
use std::fmt;

use crate::agent_support::Point;

use super::net::{Pod, Scenario};

/// A `tcp_flow` key of a scenario's pod, the fields the tests care for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    pub src_pod: String,
    pub peer_type: String,
    pub peer_namespace: String,
    pub peer_name: String,
    pub port: String,
    pub role: String,
}

/// The counters of a flow summed over windows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub connects: i64,
    pub accepts: i64,
    pub closes: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    pub retrans_bytes: i64,
    pub rtt_samples: i64,
    /// Windows in which the flow moved bytes.
    pub windows: i64,
}

/// What a test expects of a flow.
pub struct Want {
    pub connects: i64,
    pub accepts: i64,
    pub closes: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    /// Connections whose received bytes may be one more than the data (a received FIN the
    /// agent cannot tell from data): the contract's tolerance.
    pub conns: i64,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}/{}/{} port {} ({})",
            self.src_pod, self.peer_type, self.peer_namespace, self.peer_name, self.port, self.role
        )
    }
}

fn tag(p: &Point, t: &str) -> String {
    p.tags.get(t).cloned().unwrap_or_default()
}

/// Every `tcp_flow` whose source is in the scenario's namespace, summed over windows; every
/// point is also checked for the tags a pod source must carry.
pub fn flows(s: &Scenario, points: &[Point]) -> BTreeMap<Flow, Totals> {
    let mut out: BTreeMap<Flow, Totals> = BTreeMap::new();
    for p in points.iter().filter(|p| p.measurement == "tcp_flow") {
        if tag(p, "src_namespace") != s.namespace {
            continue;
        }
        let pod = source(s, p, "src_");
        let k = Flow {
            src_pod: pod.name.clone(),
            peer_type: tag(p, "peer_type"),
            peer_namespace: tag(p, "peer_namespace"),
            peer_name: tag(p, "peer_name"),
            port: tag(p, "port"),
            role: tag(p, "role"),
        };
        let f = |n: &str| p.fields.get(n).copied().unwrap_or(0);
        let t = out.entry(k).or_default();
        t.connects += f("connects");
        t.accepts += f("accepts");
        t.closes += f("closes");
        t.bytes_sent += f("bytes_sent");
        t.bytes_received += f("bytes_received");
        t.retrans_bytes += f("retrans_bytes");
        t.rtt_samples += f("rtt_samples");
        if f("bytes_sent") + f("bytes_received") > 0 {
            t.windows += 1;
        }
    }
    out
}

/// The scenario's pod a point comes from, its tags checked: by its `pod` tag, or, where the
/// point is kept per workload (no pod tag), by its workload (one pod per workload in a scenario).
fn source<'a>(s: &'a Scenario, p: &Point, prefix: &str) -> &'a Pod {
    let pod_tag = p.tags.get(&format!("{prefix}pod"));
    let workload = tag(p, &format!("{prefix}workload"));
    let pod = s
        .pods
        .iter()
        .find(|x| match pod_tag {
            Some(name) => &x.name == name,
            None => x.workload == workload,
        })
        .unwrap_or_else(|| panic!("a point of an unknown pod: {p:?}"));
    assert_source(s, pod, p, prefix);
    pod
}

/// The node, workload, kind and release tags of a point whose source is `pod`.
fn assert_source(s: &Scenario, pod: &Pod, p: &Point, prefix: &str) {
    let want = [
        ("node".to_string(), s.node.clone()),
        (format!("{prefix}workload"), pod.workload.clone()),
        (format!("{prefix}kind"), "Deployment".to_string()),
        (format!("{prefix}release"), super::snapshot::release(s)),
    ];
    for (t, v) in want {
        assert_eq!(tag(p, &t), v, "tag {t} of {p:?}");
    }
}

/// The `pod_io` fields of `pod` summed over windows.
pub fn io_of(s: &Scenario, points: &[Point], pod: usize) -> BTreeMap<String, i64> {
    let pod = &s.pods[pod];
    let mut out = BTreeMap::new();
    for p in points.iter().filter(|p| p.measurement == "pod_io") {
        if tag(p, "namespace") != s.namespace || source(s, p, "").name != pod.name {
            continue;
        }
        for (k, v) in &p.fields {
            *out.entry(k.clone()).or_insert(0) += v;
        }
    }
    out
}

/// The `kovenant_agent` fields summed over windows.
pub fn agent_totals(points: &[Point]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for p in points.iter().filter(|p| p.measurement == "kovenant_agent") {
        for (k, v) in &p.fields {
            *out.entry(k.clone()).or_insert(0) += v;
        }
    }
    out
}

impl Scenario {
    /// The key of a flow from pod `src` to pod `peer` (as the peer's workload) on `port`.
    pub fn to_pod(&self, src: usize, peer: usize, port: u16, role: &str) -> Flow {
        self.key(
            src,
            "pod",
            &self.namespace,
            &self.pods[peer].workload,
            port,
            role,
        )
    }

    pub fn key(
        &self,
        src: usize,
        peer_type: &str,
        peer_namespace: &str,
        peer_name: &str,
        port: u16,
        role: &str,
    ) -> Flow {
        Flow {
            src_pod: self.pods[src].name.clone(),
            peer_type: peer_type.to_string(),
            peer_namespace: peer_namespace.to_string(),
            peer_name: peer_name.to_string(),
            port: port.to_string(),
            role: role.to_string(),
        }
    }
}

/// Asserts the flows are exactly `want` (no other flow of the scenario), every counter exact
/// but bytes received, which may exceed the data by one byte per connection.
pub fn assert_flows(got: &BTreeMap<Flow, Totals>, want: &[(Flow, Want)]) {
    let keys: Vec<&Flow> = got.keys().collect();
    let want_keys: Vec<&Flow> = want.iter().map(|(k, _)| k).collect();
    let mut sorted = want_keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "the scenario's flows: {got:#?}");
    for (k, w) in want {
        let t = &got[k];
        let exact = (t.connects, t.accepts, t.closes, t.bytes_sent);
        assert_eq!(
            exact,
            (w.connects, w.accepts, w.closes, w.bytes_sent),
            "{k}: (connects, accepts, closes, bytes_sent); all: {t:?}"
        );
        assert!(
            (t.bytes_received - w.bytes_received).abs() <= w.conns,
            "{k}: bytes_received {} where {} were received over {} connections (within one \
             byte each); all: {t:?}",
            t.bytes_received,
            w.bytes_received,
            w.conns
        );
    }
}
