//! `kovenant agent` on real Tetragon output: every line read, the attributable ones attributed.
use serde_json::json;

use crate::agent_support::*;

/// The objects behind the fixture events, as the API would list them.
fn snapshot(dir: &std::path::Path) -> String {
    let owner = |kind: &str, name: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "mgmt"},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.168.248.1"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "keycloak-operator", "namespace": "kcos-sso",
                      "annotations": {"meta.helm.sh/release-name": "sso"}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "keycloak-operator-5bc7649f79", "namespace": "kcos-sso",
                      "ownerReferences": owner("Deployment", "keycloak-operator")}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "keycloak-operator-5bc7649f79-nnpjh", "namespace": "kcos-sso",
                      "ownerReferences": owner("ReplicaSet", "keycloak-operator-5bc7649f79")},
         "spec": {"nodeName": "mgmt", "containers": []},
         "status": {"phase": "Running", "podIP": "10.1.0.7"}},
        // Its ReplicaSet is not listed: the pod-template-hash names the Deployment.
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "elasticsearch-56f8fc6988-sh8rm", "namespace": "tenant-jobs",
                      "labels": {"pod-template-hash": "56f8fc6988", "app.kubernetes.io/instance": "jobs",
                                 "app.kubernetes.io/managed-by": "Helm"},
                      "ownerReferences": owner("ReplicaSet", "elasticsearch-56f8fc6988")},
         "spec": {"containers": []}},
    ]});
    let p = dir.join("cluster.json");
    std::fs::write(&p, list.to_string()).unwrap();
    p.display().to_string()
}

fn run_fixture(name: &str) -> Vec<Point> {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(dir.path());
    let input = crate::support::shared()
        .join("fixtures/tetragon-events")
        .join(name);
    parse_lp(&run_agent(&["--cluster-snapshot", &snap], Some(&input)))
}

/// Neither fixture has a `tcp_connect` or `inet_csk_accept` event: every one of them (the
/// 2022 cluster's `tcp_recvmsg`, the docs' `sys_read`/`sys_write` and others) is read, parsed and
/// ignored, and nothing is counted.
#[test]
fn agent_reads_every_fixture_event() {
    for (name, lines) in [
        ("tetragon-docs.jsonl", 58),
        ("kovenant-2022-cluster.jsonl", 4),
    ] {
        let points = run_fixture(name);
        let t = agent_totals(&points);
        assert_eq!(t["tetragon_lines"], lines, "{name}");
        assert_eq!(t["tetragon_events"], lines, "{name}");
        assert_eq!(t["bad_lines"], 0, "{name}");
        assert_eq!(t["ignored"], lines, "{name}");
        assert!(
            points.iter().all(|p| p.measurement == "kovenant_agent"),
            "{name}: {points:?}"
        );
    }
}

/// The 2022 cluster's real `tcp_recvmsg` event reshaped into the two events `kovenant-tcp`
/// makes: `tcp_connect` (the socket is argument 0) and `inet_csk_accept` (the socket is the
/// return value's `sock_arg`, as Tetragon exports a kretprobe's `returnArg`). Tetragon's docs
/// and the 2022 capture have no such event of their own.
fn reshaped(function: &str, policy: Option<&str>) -> String {
    let path =
        crate::support::shared().join("fixtures/tetragon-events/kovenant-2022-cluster.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let k = &mut event["process_kprobe"];
    let sock = k["args"][0].clone();
    k["function_name"] = json!(function);
    if let Some(policy) = policy {
        k["policy_name"] = json!(policy);
    }
    if function == "inet_csk_accept" {
        k["args"] = json!([]);
        k["return"] = sock;
        k["return_action"] = json!("KPROBE_ACTION_POST");
    } else {
        k["args"] = json!([sock]);
    }
    event.to_string()
}

fn run_lines(lines: &[String]) -> Vec<Point> {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(dir.path());
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    parse_lp(&run_agent(&["--cluster-snapshot", &snap], Some(&input)))
}

fn flow_tags(p: &Point) -> Vec<(&str, &str)> {
    let mut tags: Vec<_> = p
        .tags
        .iter()
        .filter(|(k, _)| *k != "node")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tags.sort_unstable();
    tags
}

#[test]
fn agent_attributes_a_real_shaped_connect_and_accept() {
    let points = run_lines(&[
        reshaped("tcp_connect", Some("kovenant-tcp")),
        reshaped("inet_csk_accept", Some("kovenant-tcp")),
        reshaped("inet_csk_accept", None),
    ]);
    let t = agent_totals(&points);
    assert_eq!(
        (
            t["tetragon_lines"],
            t["tetragon_events"],
            t["bad_lines"],
            t["ignored"]
        ),
        (3, 3, 0, 0)
    );
    let flows: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "tcp_flow")
        .collect();
    assert_eq!(flows.len(), 2, "{flows:?}");
    fn tags(role: &'static str, port: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut t = vec![
            ("peer_name", "mgmt"),
            ("peer_type", "node"),
            ("port", port),
            ("role", role),
            ("src_kind", "Deployment"),
            ("src_namespace", "kcos-sso"),
            ("src_pod", "keycloak-operator-5bc7649f79-nnpjh"),
            ("src_release", "sso"),
            ("src_workload", "keycloak-operator"),
        ];
        t.sort_unstable();
        t
    }
    // tcp_connect: a client of the remote port (dport).
    let client = flows
        .iter()
        .find(|p| p.tags["role"] == "client")
        .expect("the connect");
    assert_eq!(flow_tags(client), tags("client", "443"));
    assert_eq!(client.tags["node"], "mgmt");
    // inet_csk_accept: a server of its local port (sport); Tetragon before 1.0 names no policy
    // and its events are taken too.
    let server = flows
        .iter()
        .find(|p| p.tags["role"] == "server")
        .expect("the accept");
    assert_eq!(flow_tags(server), tags("server", "11929"));
    let fields = |p: &Point| FLOW_FIELDS.map(|f| p.fields[f]);
    assert_eq!(fields(client), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(fields(server), [0, 2, 0, 0, 0, 0, 0, 0]);
}

/// An `inet_csk_accept` whose socket is not in its return value (arg 0, where `tcp_connect`
/// has it) is a bad line: the agent does not guess the socket.
#[test]
fn agent_takes_the_accepted_socket_from_the_return_value_only() {
    let mut event: serde_json::Value =
        serde_json::from_str(&reshaped("tcp_connect", Some("kovenant-tcp"))).unwrap();
    event["process_kprobe"]["function_name"] = json!("inet_csk_accept");
    let points = run_lines(&[event.to_string()]);
    let t = agent_totals(&points);
    assert_eq!((t["tetragon_lines"], t["bad_lines"]), (1, 1));
    assert!(points.iter().all(|p| p.measurement != "tcp_flow"));
}

/// The same real-shaped connect as kovenant's policy and as a user's own policy on the same
/// function: only kovenant's is counted, the other is `ignored`.
#[test]
fn agent_counts_only_kovenants_own_policies() {
    let points = run_lines(&[
        reshaped("tcp_connect", Some("kovenant-tcp")),
        reshaped("tcp_connect", Some("user-connect-audit")),
    ]);
    let t = agent_totals(&points);
    assert_eq!(
        (t["tetragon_lines"], t["tetragon_events"], t["ignored"]),
        (2, 2, 1)
    );
    let flows: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "tcp_flow")
        .collect();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0].fields["connects"], 1);
    assert_eq!(flows[0].tags["src_workload"], "keycloak-operator");
}
