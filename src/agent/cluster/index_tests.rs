//! Index tests: IP reuse by pod lifetimes, owner chains, hostNetwork pods, services.
use serde_json::json;

use crate::agent::cluster::index::Index;
use crate::agent::cluster::objects::RawObject;
use crate::agent::cluster::{ClusterObjects, Info, PodInfo};

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

fn pod(
    name: &str,
    ip: &str,
    created: &str,
    owner: Option<(&str, &str)>,
    host: bool,
) -> serde_json::Value {
    let mut meta = json!({"name": name, "namespace": "ns", "creationTimestamp": created});
    if let Some((kind, n)) = owner {
        meta["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": kind, "name": n, "uid": "u", "controller": true}]);
    }
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta,
           "spec": {"containers": [], "hostNetwork": host, "nodeName": "n1"},
           "status": {"phase": "Running", "podIP": ip}})
}

fn index(items: Vec<serde_json::Value>, deleted: Vec<(serde_json::Value, i64)>) -> Index {
    let list = json!({"kind": "List", "apiVersion": "v1", "items": items});
    let mut objects =
        ClusterObjects::from_list_reader(list.to_string().as_bytes()).expect("a valid list");
    for (p, at) in deleted {
        objects.deleted_pods.push((pod_info(p), at));
    }
    Index::build(objects)
}

fn pod_info(p: serde_json::Value) -> PodInfo {
    match serde_json::from_value::<RawObject>(p).map(RawObject::into_info) {
        Ok(Some(Info::Pod(p))) => p,
        other => panic!("not a pod: {other:?}"),
    }
}

fn workload(ix: &Index, id: Option<u32>) -> (String, String, String) {
    let p = &ix.pods[id.expect("a pod") as usize];
    (
        p.workload.to_string(),
        p.kind.to_string(),
        p.release.to_string(),
    )
}

#[test]
fn a_reused_pod_ip_belongs_to_the_pod_alive_at_the_event_time() {
    let old = pod("old", "10.0.0.5", "2026-01-01T00:00:00Z", None, false);
    let new = pod("new", "10.0.0.5", "2026-01-01T00:01:00Z", None, false);
    let ix = index(vec![new], vec![(old, T0 + 50_000_000_000)]);
    let ip = "10.0.0.5".parse().unwrap();
    assert_eq!(
        workload(&ix, ix.pod_at(&ip, Some(T0 + 10_000_000_000))).0,
        "old"
    );
    assert_eq!(
        workload(&ix, ix.pod_at(&ip, Some(T0 + 70_000_000_000))).0,
        "new"
    );
    // Between the two, or without a time: the running one.
    assert_eq!(
        workload(&ix, ix.pod_at(&ip, Some(T0 + 55_000_000_000))).0,
        "new"
    );
    assert_eq!(workload(&ix, ix.pod_at(&ip, None)).0, "new");
    // A deleted pod still names its events' source.
    assert_eq!(workload(&ix, ix.pod("ns", "old")).0, "old");
}

#[test]
fn owner_chains_end_at_the_top_workload_and_its_release() {
    let cron = json!({"kind": "CronJob", "apiVersion": "batch/v1",
        "metadata": {"name": "backup", "namespace": "ns", "annotations": {"meta.helm.sh/release-name": "ops"}}});
    let job = json!({"kind": "Job", "apiVersion": "batch/v1",
        "metadata": {"name": "backup-2900", "namespace": "ns",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup", "uid": "u", "controller": true}]}});
    let lone_job = json!({"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "migrate", "namespace": "ns"}});
    let ds = json!({"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "agent", "namespace": "ns"}});
    let items = vec![
        cron,
        job,
        lone_job,
        ds,
        pod(
            "backup-2900-x",
            "10.0.0.6",
            "2026-01-01T00:00:00Z",
            Some(("Job", "backup-2900")),
            false,
        ),
        pod(
            "migrate-y",
            "10.0.0.7",
            "2026-01-01T00:00:00Z",
            Some(("Job", "migrate")),
            false,
        ),
        pod(
            "agent-z",
            "172.18.0.10",
            "2026-01-01T00:00:00Z",
            Some(("DaemonSet", "agent")),
            true,
        ),
    ];
    let ix = index(items, vec![]);
    let w = |n| workload(&ix, ix.pod("ns", n));
    assert_eq!(
        w("backup-2900-x"),
        ("backup".into(), "CronJob".into(), "ops".into())
    );
    assert_eq!(
        w("migrate-y"),
        ("migrate".into(), "Job".into(), String::new())
    );
    assert_eq!(
        w("agent-z"),
        ("agent".into(), "DaemonSet".into(), String::new())
    );
    // A hostNetwork pod's address is its node's, never a pod peer.
    assert_eq!(ix.pod_at(&"172.18.0.10".parse().unwrap(), None), None);
}

#[test]
fn services_without_selectors_and_ipv6_cluster_ips_resolve() {
    let svc = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1", "fd00:10:96::1"]}});
    let ix = index(vec![svc], vec![]);
    assert_eq!(ix.service_at(&"10.96.0.1".parse().unwrap()), Some(0));
    assert_eq!(ix.service_at(&"fd00:10:96::1".parse().unwrap()), Some(0));
    assert_eq!(&*ix.services[0].1, "kubernetes");
}
