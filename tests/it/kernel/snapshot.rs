//! The cluster snapshot (`--cluster-snapshot`, a Kubernetes List) of a scenario: its node, its
//! namespace, each pod with its ReplicaSet and Deployment (a Helm release on the Deployment),
//! its Services.
use std::path::PathBuf;

use serde_json::{Value, json};

use super::net::Scenario;

/// The Helm release every scenario's Deployments belong to.
pub fn release(s: &Scenario) -> String {
    format!("rel-{}", s.namespace)
}

/// The machine's own global addresses (the node's InternalIPs besides the test's).
fn host_addresses() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-j", "addr", "show", "scope", "global"])
        .output()
        .expect("ip -j addr");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut ips = Vec::new();
    for link in v.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or_default();
        // Other tests' links hold their own scenario's node address.
        if name.starts_with("kt") {
            continue;
        }
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(ip) = a["local"].as_str() {
                ips.push(ip.to_string());
            }
        }
    }
    ips
}

impl Scenario {
    /// Writes the snapshot into the scenario's folder; returns its path.
    pub fn snapshot(&self) -> PathBuf {
        let ns = &self.namespace;
        let rel = release(self);
        let meta = |name: &str, uid: String| json!({"name": name, "namespace": ns, "uid": uid});
        let mut addresses = vec![
            json!({"type": "InternalIP", "address": self.node_ip4()}),
            json!({"type": "InternalIP", "address": self.node_ip6()}),
        ];
        for ip in host_addresses() {
            addresses.push(json!({"type": "InternalIP", "address": ip}));
        }
        addresses.push(json!({"type": "Hostname", "address": self.node}));
        let mut items = vec![
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "uid": format!("node-{}", self.n)},
                "status": {"addresses": addresses}}),
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": format!("ns-{}", self.n)}}),
        ];
        let mut workloads: Vec<&str> = Vec::new();
        for p in &self.pods {
            let rs = format!("{}-{}", p.workload, &p.container_id[..10]);
            let deploy_uid = format!("deploy-{}-{}", self.n, p.workload);
            let rs_uid = format!("rs-{}-{}", self.n, p.uid);
            if !workloads.contains(&p.workload.as_str()) {
                workloads.push(&p.workload);
                let mut m = meta(&p.workload, deploy_uid.clone());
                m["annotations"] = json!({"meta.helm.sh/release-name": rel,
                    "meta.helm.sh/release-namespace": ns});
                m["labels"] = json!({"app.kubernetes.io/managed-by": "Helm"});
                items.push(
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": m,
                    "spec": {"selector": {"matchLabels": {"app": p.workload}}}}),
                );
            }
            let mut m = meta(&rs, rs_uid.clone());
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": p.workload, "uid": deploy_uid, "controller": true}]);
            items.push(
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m,
                "spec": {"selector": {"matchLabels": {"app": p.workload}}}}),
            );
            let mut m = meta(&p.name, p.uid.clone());
            m["labels"] = json!({"app": p.workload});
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": rs, "uid": rs_uid, "controller": true}]);
            let host = p.netns.is_none();
            items.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": m,
                "spec": {"nodeName": self.node, "hostNetwork": host,
                    "containers": [{"name": "main", "image": "kovload"}]},
                "status": {"phase": "Running", "podIP": p.ip4,
                    "podIPs": [{"ip": p.ip4}, {"ip": p.ip6}], "hostIP": self.node_ip4(),
                    "containerStatuses": [{"name": "main", "ready": true,
                        "containerID": format!("containerd://{}", p.container_id)}]}}));
        }
        for s in &self.services {
            items.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": meta(&s.name, format!("svc-{}-{}", self.n, s.name)),
                "spec": {"type": "ClusterIP", "clusterIP": s.cluster_ip,
                    "clusterIPs": [s.cluster_ip], "ports": [{"port": s.port, "protocol": "TCP"}]}}));
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        let path = self.file("cluster.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&list).expect("json"))
            .expect("write snapshot");
        path
    }
}
