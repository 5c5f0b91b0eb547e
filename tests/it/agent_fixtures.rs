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

#[test]
fn agent_reads_every_fixture_event() {
    for (name, lines, ignored) in [
        ("tetragon-docs.jsonl", 58, 56),
        ("kovenant-2022-cluster.jsonl", 4, 2),
    ] {
        let t = agent_totals(&run_fixture(name));
        assert_eq!(t["lines"], lines, "{name}");
        assert_eq!(t["events"], lines, "{name}");
        assert_eq!(t["bad_lines"], 0, "{name}");
        assert_eq!(t["ignored"], ignored, "{name}");
    }
}

#[test]
fn agent_attributes_the_2022_cluster_events() {
    let points = run_fixture("kovenant-2022-cluster.jsonl");
    let flows: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "tcp_flow")
        .collect();
    assert_eq!(flows.len(), 1);
    let f = flows[0];
    let tag = |k: &str| f.tags.get(k).map(String::as_str);
    assert_eq!(tag("node"), Some("mgmt"));
    assert_eq!(tag("src_namespace"), Some("kcos-sso"));
    assert_eq!(tag("src_workload"), Some("keycloak-operator"));
    assert_eq!(tag("src_kind"), Some("Deployment"));
    assert_eq!(tag("src_release"), Some("sso"));
    // The pod is in pod_activity; tcp_flow is kept per workload.
    assert_eq!(tag("src_pod"), None);
    let pods: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "pod_activity")
        .collect();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].tags["pod"], "keycloak-operator-5bc7649f79-nnpjh");
    assert_eq!(pods[0].tags["workload"], "keycloak-operator");
    assert_eq!(pods[0].fields["recv_bytes"], 87_952);
    assert_eq!(tag("peer_type"), Some("node"));
    assert_eq!(tag("peer_name"), Some("mgmt"));
    assert_eq!(tag("port"), Some("443"));
    assert_eq!(tag("role"), Some("client"));
    assert_eq!(f.fields["recvs"], 2);
    assert_eq!(f.fields["recv_bytes"], 87_952);
}

#[test]
fn agent_attributes_the_docs_syscalls() {
    let points = run_fixture("tetragon-docs.jsonl");
    let io: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "pod_io")
        .collect();
    assert_eq!(io.len(), 2);
    let write = io
        .iter()
        .find(|p| p.fields["writes"] == 1)
        .expect("the write");
    assert_eq!(write.tags["workload"], "elasticsearch");
    assert_eq!(write.tags["kind"], "Deployment");
    assert_eq!(write.tags["release"], "jobs");
    assert_eq!(write.fields["write_bytes"], 627);
    // The other pod is not in the snapshot: Tetragon's event is all there is.
    let read = io
        .iter()
        .find(|p| p.fields["reads"] == 1)
        .expect("the read");
    assert_eq!(read.tags.get("pod"), None, "pod_io is kept per workload");
    assert_eq!(read.tags["workload"], "elasticsearch-56f8fc6988-65smb");
    assert_eq!(read.tags["kind"], "Pod");
    assert_eq!(read.tags["node"], "minikube");
    assert_eq!(read.fields["read_bytes"], 65_536);
    let pod = points
        .iter()
        .find(|p| p.measurement == "pod_activity" && p.fields["reads"] == 1)
        .expect("the reading pod");
    assert_eq!(pod.tags["pod"], "elasticsearch-56f8fc6988-65smb");
    assert_eq!(pod.fields["read_bytes"], 65_536);
}

/// Real Tetragon output of a write(2) kprobe, as kovenant's policy and as a user's own policy on
/// the same syscall: only kovenant's is counted, the other is `ignored`.
#[test]
fn agent_counts_only_kovenants_own_policies() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(dir.path());
    let docs = crate::support::shared().join("fixtures/tetragon-events/tetragon-docs.jsonl");
    let docs = std::fs::read_to_string(docs).unwrap();
    let write = docs
        .lines()
        .find(|l| l.contains("\"__x64_sys_write\""))
        .expect("the docs' write event");
    let mut lines = String::new();
    for policy in ["kovenant-io", "user-file-audit"] {
        let mut event: serde_json::Value = serde_json::from_str(write).unwrap();
        event["process_kprobe"]["policy_name"] = json!(policy);
        lines.push_str(&event.to_string());
        lines.push('\n');
    }
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines).unwrap();
    let points = parse_lp(&run_agent(&["--cluster-snapshot", &snap], Some(&input)));
    let t = agent_totals(&points);
    assert_eq!((t["lines"], t["events"], t["ignored"]), (2, 2, 1));
    let io: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "pod_io")
        .collect();
    assert_eq!(io.len(), 1, "{io:?}");
    assert_eq!(io[0].fields["writes"], 1);
    assert_eq!(io[0].fields["write_bytes"], 627);
    assert_eq!(io[0].tags["workload"], "elasticsearch");
}
