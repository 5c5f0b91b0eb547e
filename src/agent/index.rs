//! The attribution index: pod names, pod IPs (with lifetimes, for IP reuse), Service
//! ClusterIPs and node addresses, built from the small records of `cluster` and then only read.
use std::net::IpAddr;

use super::cluster::{ClusterObjects, NodeInfo, PodInfo, ServiceInfo};
use super::owners::Owners;
use hashbrown::{Equivalent, HashMap};

/// A pod as the contract tags it: namespace, name, top workload, kind, release.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub workload: Box<str>,
    pub kind: Box<str>,
    pub release: Box<str>,
    pub node: Box<str>,
    /// Index into `Index::workloads`: the peer this pod appears as.
    pub peer: u32,
}

#[derive(Debug, Clone, Copy)]
struct IpClaim {
    pod: u32,
    from: i64,
    to: i64,
    running: bool,
}

#[derive(Hash)]
struct NameRef<'a>(&'a str, &'a str);

impl Equivalent<(Box<str>, Box<str>)> for NameRef<'_> {
    fn equivalent(&self, key: &(Box<str>, Box<str>)) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1
    }
}

/// Read-only lookups for attribution. Ids are positions in the public vectors.
#[derive(Default)]
pub struct Index {
    pub pods: Vec<PodIdentity>,
    /// (namespace, workload) pairs that pods appear as when they are a peer.
    pub workloads: Vec<(Box<str>, Box<str>)>,
    /// (namespace, name) of services.
    pub services: Vec<(Box<str>, Box<str>)>,
    pub nodes: Vec<Box<str>>,
    pod_by_name: HashMap<(Box<str>, Box<str>), u32>,
    pod_by_ip: HashMap<IpAddr, Vec<IpClaim>>,
    service_by_ip: HashMap<IpAddr, u32>,
    node_by_ip: HashMap<IpAddr, u32>,
}

impl Index {
    /// The index of a snapshot's objects.
    pub fn build(c: &ClusterObjects) -> Index {
        let owners = Owners::new(&c.controllers);
        let live = c.pods.iter().map(|p| (p, None));
        let gone = c.deleted_pods.iter().map(|(p, t)| (p, Some(*t)));
        Index::from_parts(live.chain(gone), &c.services, &c.nodes, &owners)
    }

    /// The index of pods (with the time they were deleted, for deleted ones), services, nodes
    /// and the owner chain.
    pub fn from_parts<'a>(
        pods: impl Iterator<Item = (&'a PodInfo, Option<i64>)>,
        services: impl IntoIterator<Item = &'a ServiceInfo>,
        nodes: impl IntoIterator<Item = &'a NodeInfo>,
        owners: &Owners,
    ) -> Index {
        let mut ix = Index::default();
        let mut workload_ids: HashMap<(Box<str>, Box<str>), u32> = HashMap::new();
        for (pod, deleted_at) in pods {
            let w = owners.workload_of(pod);
            let namespace = pod.namespace.clone();
            let wkey = (namespace.clone(), Box::<str>::from(w.name.as_str()));
            let next = workload_ids.len() as u32;
            let peer = *workload_ids.entry(wkey.clone()).or_insert_with(|| {
                ix.workloads.push(wkey);
                next
            });
            let id = ix.pods.len() as u32;
            let running = deleted_at.is_none() && pod.running;
            let from = pod.created.unwrap_or(i64::MIN);
            let to = deleted_at
                .or(pod.deleting)
                .unwrap_or(if running { i64::MAX } else { from });
            ix.pods.push(PodIdentity {
                name: pod.name.clone(),
                workload: w.name.into(),
                kind: w.kind.into(),
                release: w.release.into(),
                node: pod.node.clone(),
                namespace,
                peer,
            });
            let key = (pod.namespace.clone(), pod.name.clone());
            // A recreated pod (same name) wins over the one it replaced.
            match ix.pod_by_name.get(&key) {
                Some(&old) if deleted_at.is_some() && old != id => {}
                _ => {
                    ix.pod_by_name.insert(key, id);
                }
            }
            if pod.host_network {
                continue;
            }
            for ip in &pod.ips {
                let claim = IpClaim {
                    pod: id,
                    from,
                    to,
                    running,
                };
                ix.pod_by_ip.entry(*ip).or_default().push(claim);
            }
        }
        for svc in services {
            let id = ix.services.len() as u32;
            ix.services.push((svc.namespace.clone(), svc.name.clone()));
            for ip in &svc.ips {
                ix.service_by_ip.insert(*ip, id);
            }
        }
        for node in nodes {
            let id = ix.nodes.len() as u32;
            ix.nodes.push(node.name.clone());
            for ip in &node.ips {
                ix.node_by_ip.insert(*ip, id);
            }
        }
        ix
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<u32> {
        self.pod_by_name.get(&NameRef(namespace, name)).copied()
    }

    pub fn service_at(&self, ip: &IpAddr) -> Option<u32> {
        self.service_by_ip.get(ip).copied()
    }

    pub fn node_at(&self, ip: &IpAddr) -> Option<u32> {
        self.node_by_ip.get(ip).copied()
    }

    /// The non-hostNetwork pod that held `ip` at `time`: one whose lifetime covers the time
    /// (running ones first), else a running one, else the most recently created.
    pub fn pod_at(&self, ip: &IpAddr, time: Option<i64>) -> Option<u32> {
        let claims = self.pod_by_ip.get(ip)?;
        if let [only] = claims.as_slice() {
            return Some(only.pod);
        }
        let covers = |c: &&IpClaim| time.is_some_and(|t| c.from <= t && t < c.to);
        let rank = |c: &&IpClaim| (covers(c), c.running, c.from);
        claims.iter().max_by_key(rank).map(|c| c.pod)
    }
}
