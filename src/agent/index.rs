//! The attribution index: pod names, pod IPs (with lifetimes, for IP reuse), Service
//! ClusterIPs and node addresses, built once from `ClusterObjects` and then only read.
use std::net::IpAddr;

use hashbrown::{Equivalent, HashMap};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::cluster::ClusterObjects;
use super::owners::Owners;

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

fn ns_time(t: Option<&Time>) -> Option<i64> {
    t.and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
}

fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if let Some(ip) = status.pod_ip.as_deref().and_then(|s| s.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    ips
}

impl Index {
    pub fn build(c: &ClusterObjects) -> Index {
        let owners = Owners::new(c);
        let mut ix = Index::default();
        let mut workload_ids: HashMap<(Box<str>, Box<str>), u32> = HashMap::new();
        let live = c.pods.iter().map(|p| (p, None));
        let gone = c.deleted_pods.iter().map(|(p, t)| (p, Some(*t)));
        for (pod, deleted_at) in live.chain(gone) {
            let meta = &pod.metadata;
            let w = owners.workload_of(pod);
            let namespace: Box<str> = meta.namespace.as_deref().unwrap_or("").into();
            let wkey = (namespace.clone(), Box::<str>::from(w.name.as_str()));
            let next = workload_ids.len() as u32;
            let peer = *workload_ids.entry(wkey.clone()).or_insert_with(|| {
                ix.workloads.push(wkey);
                next
            });
            let id = ix.pods.len() as u32;
            let spec = pod.spec.as_ref();
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let running =
                deleted_at.is_none() && matches!(phase, Some("Running") | Some("Pending"));
            let from = ns_time(meta.creation_timestamp.as_ref()).unwrap_or(i64::MIN);
            let to = deleted_at
                .or(ns_time(meta.deletion_timestamp.as_ref()))
                .unwrap_or(if running { i64::MAX } else { from });
            ix.pods.push(PodIdentity {
                name: meta.name.as_deref().unwrap_or("").into(),
                workload: w.name.into(),
                kind: w.kind.into(),
                release: w.release.into(),
                node: spec
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("")
                    .into(),
                namespace,
                peer,
            });
            let key = (
                ix.pods[id as usize].namespace.clone(),
                ix.pods[id as usize].name.clone(),
            );
            // A recreated pod (same name) wins over the one it replaced.
            match ix.pod_by_name.get(&key) {
                Some(&old) if deleted_at.is_some() && old != id => {}
                _ => {
                    ix.pod_by_name.insert(key, id);
                }
            }
            if spec.and_then(|s| s.host_network) == Some(true) {
                continue;
            }
            for ip in pod_ips(pod) {
                let claim = IpClaim {
                    pod: id,
                    from,
                    to,
                    running,
                };
                ix.pod_by_ip
                    .entry(ip.to_canonical())
                    .or_default()
                    .push(claim);
            }
        }
        for svc in &c.services {
            let id = ix.services.len() as u32;
            let meta = &svc.metadata;
            ix.services.push((
                meta.namespace.as_deref().unwrap_or("").into(),
                meta.name.as_deref().unwrap_or("").into(),
            ));
            let spec = svc.spec.as_ref();
            let ips = spec.and_then(|s| s.cluster_ips.clone()).unwrap_or_default();
            let one = spec.and_then(|s| s.cluster_ip.clone());
            for ip in ips.iter().chain(one.iter()) {
                if let Ok(ip) = ip.parse::<IpAddr>() {
                    ix.service_by_ip.insert(ip.to_canonical(), id);
                }
            }
        }
        for node in &c.nodes {
            let id = ix.nodes.len() as u32;
            ix.nodes
                .push(node.metadata.name.as_deref().unwrap_or("").into());
            let addrs = node.status.as_ref().and_then(|s| s.addresses.as_ref());
            for a in addrs.into_iter().flatten() {
                if let Ok(ip) = a.address.parse::<IpAddr>() {
                    ix.node_by_ip.insert(ip.to_canonical(), id);
                }
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
