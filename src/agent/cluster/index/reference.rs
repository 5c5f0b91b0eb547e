//! The index as it was built before it took changes (every change rebuilt it from all the
//! objects), kept for the tests to hold the incremental index to: same answers.
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::agent::cluster::ClusterObjects;
use crate::agent::cluster::owners::{Lineage, Owners};

/// A pod as attribution answers with it: namespace, name, workload, kind, release, node, and
/// the (namespace, workload) it appears as when it is a peer.
pub type Answer = (
    String,
    String,
    String,
    String,
    String,
    String,
    (String, String),
);

#[derive(Clone, Copy)]
struct Claim {
    pod: usize,
    from: i64,
    to: i64,
    running: bool,
}

#[derive(Default)]
pub struct Reference {
    pods: Vec<Answer>,
    by_name: HashMap<(String, String), usize>,
    by_ip: HashMap<IpAddr, Vec<Claim>>,
    services: HashMap<IpAddr, (String, String)>,
    nodes: HashMap<IpAddr, String>,
}

impl Reference {
    pub fn build(c: &ClusterObjects) -> Reference {
        let mut owners = Owners::default();
        for ctl in &c.controllers {
            owners.upsert(ctl.clone(), &mut Vec::new());
        }
        let mut r = Reference::default();
        let live = c.pods.iter().map(|p| (p, None));
        let gone = c.deleted_pods.iter().map(|(p, t)| (p, Some(*t)));
        for (pod, deleted_at) in live.chain(gone) {
            let arc = |s: &Option<Box<str>>| s.as_deref().map(Arc::from);
            let lineage = Lineage {
                owner: (pod.owner.as_ref()).map(|o| (Arc::from(&*o.kind), Arc::from(&*o.name))),
                release: arc(&pod.release),
                label_release: arc(&pod.label_release),
                template_hash: arc(&pod.template_hash),
            };
            let w = owners.workload(&pod.namespace, &pod.name, &lineage);
            let id = r.pods.len();
            let (ns, name) = (pod.namespace.to_string(), pod.name.to_string());
            r.pods.push((
                ns.clone(),
                name.clone(),
                w.name.into(),
                w.kind.into(),
                w.release.into(),
                pod.node.to_string(),
                (ns.clone(), w.name.into()),
            ));
            let key = (ns, name);
            // A recreated pod (same name) wins over the one it replaced.
            if deleted_at.is_none() || !r.by_name.contains_key(&key) {
                r.by_name.insert(key, id);
            }
            if pod.host_network {
                continue;
            }
            let running = deleted_at.is_none() && pod.running;
            let from = pod.created.unwrap_or(i64::MIN);
            let to = deleted_at
                .or(pod.deleting)
                .unwrap_or(if running { i64::MAX } else { from });
            for ip in &pod.ips {
                let claim = Claim {
                    pod: id,
                    from,
                    to,
                    running,
                };
                r.by_ip.entry(*ip).or_default().push(claim);
            }
        }
        for s in &c.services {
            for ip in &s.ips {
                r.services
                    .insert(*ip, (s.namespace.to_string(), s.name.to_string()));
            }
        }
        for n in &c.nodes {
            for ip in &n.ips {
                r.nodes.insert(*ip, n.name.to_string());
            }
        }
        r
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Answer> {
        let id = self
            .by_name
            .get(&(namespace.to_string(), name.to_string()))?;
        Some(&self.pods[*id])
    }

    pub fn pod_at(&self, ip: &IpAddr, time: Option<i64>) -> Option<&Answer> {
        let claims = self.by_ip.get(ip)?;
        if let [only] = claims.as_slice() {
            return Some(&self.pods[only.pod]);
        }
        let covers = |c: &&Claim| time.is_some_and(|t| c.from <= t && t < c.to);
        let rank = |c: &&Claim| (covers(c), c.running, c.from);
        claims.iter().max_by_key(rank).map(|c| &self.pods[c.pod])
    }

    pub fn service_at(&self, ip: &IpAddr) -> Option<&(String, String)> {
        self.services.get(ip)
    }

    pub fn node_at(&self, ip: &IpAddr) -> Option<&String> {
        self.nodes.get(ip)
    }
}
