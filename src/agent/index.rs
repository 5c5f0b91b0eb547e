//! The attribution index: pod names, pod IPs (with lifetimes, for IP reuse), Service
//! ClusterIPs and node addresses. Built once from a snapshot, or kept up to date one change at
//! a time (`Delta`) from the live watches, by the thread that attributes with it.
//!
//! Ids: pods, peer workloads, Services and nodes have ids, positions in the public vectors.
//! An id stays with its object for as long as the object is in the index (a deleted pod's
//! tombstone keeps its pod's id). The per-window tag caches of the aggregator keep references
//! as `Ref` (id, version). When an object leaves the index its id is freed and may be handed
//! out again at once, but its version moves on; a pod's version also moves on when what it is
//! tagged as changes (its owner chain changed under it). So a cached reference only ever
//! matches the object it was taken for: keys already counted keep their tag text (interned
//! when they were counted), and the next event of the id's new occupant, or of the re-labelled
//! pod, misses the cache and is tagged afresh. This was chosen over deferring reuse until the
//! window is written: that would tie the index to the aggregator's windows, and re-labelled
//! pods would still need their references invalidated.
//!
//! Owner changes re-derive only the pods whose owner chain looks the changed controller up
//! (`Owners` keeps the reverse links).
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use self::claims::{Claims, IpClaim};
use self::pods::{NameEntry, Slot};
use self::tables::{ByAddr, Ids, Shared, Strings};
use super::cluster::{ClusterObjects, Info};
use super::owners::Owners;

mod claims;
mod pods;
#[cfg(test)]
mod reference;
mod tables;
#[cfg(test)]
mod tests;

/// How many deleted pods, and for how long (ns), are remembered: late events and IP reuse.
pub const TOMBSTONES: usize = 10_000;
pub const TOMBSTONE_NS: i64 = 600 * 1_000_000_000;

/// A pod as the contract tags it: namespace, name, top workload, kind, release. All but the
/// name are shared with the other pods that have them (`Strings`).
#[derive(Debug, Clone, Default)]
pub struct PodIdentity {
    pub namespace: Arc<str>,
    pub name: Box<str>,
    pub workload: Arc<str>,
    pub kind: Arc<str>,
    pub release: Arc<str>,
    pub node: Arc<str>,
    /// Index into `Index::workloads`: the peer this pod appears as.
    pub peer: u32,
}

/// An id with the version it had when the reference was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ref {
    pub id: u32,
    pub version: u32,
}

/// One change the live watches saw.
#[derive(Debug, Clone)]
pub enum Delta {
    /// An object was added or changed.
    Upsert(Info),
    /// An object was deleted, at a time (ns since the epoch): a pod becomes a tombstone.
    Delete(Info, i64),
    /// A watch listed `kind` afresh: `all` is everything there is of it. Pods not among them
    /// were deleted at `at`.
    Replace {
        kind: &'static str,
        all: Vec<Info>,
        at: i64,
    },
}

/// Lookups for attribution, and the changes that keep them up to date.
#[derive(Default)]
pub struct Index {
    /// Pods by id; a free id holds an empty identity.
    pub pods: Vec<PodIdentity>,
    /// (namespace, workload) pairs that pods appear as when they are a peer.
    pub workloads: Vec<(Box<str>, Box<str>)>,
    /// (namespace, name) of services.
    pub services: Vec<(Box<str>, Box<str>)>,
    pub nodes: Vec<Box<str>>,
    /// Per pod id: what re-deriving and removing the pod needs.
    slots: Vec<Slot>,
    pod_ids: Ids,
    names_hasher: DefaultHashBuilder,
    /// (namespace, name) -> the live pod and the tombstones of that name.
    pod_names: HashTable<NameEntry>,
    pod_by_ip: HashMap<IpAddr, Claims>,
    /// metadata.uid -> the pod (live or tombstone): how processes find their pod.
    pod_by_uid: HashMap<u128, u32>,
    /// Tombstones, oldest first, with the time they were deleted.
    tombstones: VecDeque<(u32, i64)>,
    peers: Shared,
    service_tab: ByAddr,
    node_tab: ByAddr,
    owners: Owners,
    strings: Strings,
}

impl Index {
    /// The index of a snapshot's objects. Every object listed is one record, even when two
    /// share a name (generated snapshots have such), so each keeps its addresses.
    pub fn build(c: ClusterObjects) -> Index {
        let mut ix = Index::default();
        let mut affected = Vec::new();
        for ctl in c.controllers {
            ix.owners.upsert(ctl, &mut affected);
        }
        for p in c.pods {
            ix.add_pod(p);
        }
        for (p, at) in c.deleted_pods {
            ix.insert_tombstone(p, at);
        }
        for s in c.services {
            let key = (s.namespace, s.name);
            ix.service_tab.add(&mut ix.services, key, s.ips);
        }
        for n in c.nodes {
            ix.node_tab.add(&mut ix.nodes, n.name, n.ips);
        }
        ix
    }

    /// Applies one change.
    pub fn apply(&mut self, d: Delta) {
        let mut affected = Vec::new();
        match d {
            Delta::Upsert(Info::Pod(p)) => {
                self.upsert_pod(p);
            }
            Delta::Upsert(Info::Service(s)) => {
                let key = (s.namespace, s.name);
                self.service_tab.upsert(&mut self.services, key, s.ips);
            }
            Delta::Upsert(Info::Node(n)) => {
                self.node_tab.upsert(&mut self.nodes, n.name, n.ips);
            }
            Delta::Upsert(Info::Controller(c)) => self.owners.upsert(c, &mut affected),
            Delta::Delete(Info::Pod(p), at) => self.delete_pod(p, at),
            Delta::Delete(Info::Service(s), _) => {
                let key = (s.namespace, s.name);
                self.service_tab.remove(&mut self.services, &key);
            }
            Delta::Delete(Info::Node(n), _) => self.node_tab.remove(&mut self.nodes, &n.name),
            Delta::Delete(Info::Controller(c), _) => self.owners.remove(&c, &mut affected),
            Delta::Replace { kind, all, at } => match kind {
                "Pod" => self.replace_pods(all, at),
                "Service" => {
                    let all = all.into_iter().filter_map(|i| match i {
                        Info::Service(s) => Some(((s.namespace, s.name), s.ips)),
                        _ => None,
                    });
                    self.service_tab.replace(&mut self.services, all.collect());
                }
                "Node" => {
                    let all = all.into_iter().filter_map(|i| match i {
                        Info::Node(n) => Some((n.name, n.ips)),
                        _ => None,
                    });
                    self.node_tab.replace(&mut self.nodes, all.collect());
                }
                _ => {
                    let all = all.into_iter().filter_map(|i| match i {
                        Info::Controller(c) => Some(c),
                        _ => None,
                    });
                    self.owners.replace_kind(kind, all.collect(), &mut affected);
                }
            },
        }
        self.relabel_all(affected);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<u32> {
        self.name_entry(namespace, name).map(NameEntry::answer)
    }

    /// The pod of a UID that a process's cgroup path names.
    pub fn pod_by_uid(&self, uid: u128) -> Option<u32> {
        self.pod_by_uid.get(&uid).copied()
    }

    pub fn service_at(&self, ip: &IpAddr) -> Option<u32> {
        self.service_tab.at(ip)
    }

    pub fn node_at(&self, ip: &IpAddr) -> Option<u32> {
        self.node_tab.at(ip)
    }

    /// The non-hostNetwork pod that held `ip` at `time`: one whose lifetime covers the time
    /// (running ones first), else a running one, else the most recently created. Among equals,
    /// the one that lived longer, then the (namespace, name) that sorts last: never the order
    /// the objects came in.
    pub fn pod_at(&self, ip: &IpAddr, time: Option<i64>) -> Option<u32> {
        let claims = self.pod_by_ip.get(ip)?.as_slice();
        if let [only] = claims {
            return Some(only.pod);
        }
        let covers = |c: &IpClaim| time.is_some_and(|t| c.from <= t && t < c.to);
        let rank = |c: &IpClaim| (covers(c), c.running, c.from, c.to);
        let name = |c: &IpClaim| {
            let p = &self.pods[c.pod as usize];
            (&p.namespace, &p.name)
        };
        let best = claims
            .iter()
            .max_by(|a, b| (rank(a).cmp(&rank(b))).then_with(|| name(a).cmp(&name(b))));
        best.map(|c| c.pod)
    }

    pub fn pod_ref(&self, id: u32) -> Ref {
        let version = self.pod_ids.version(id);
        Ref { id, version }
    }

    pub fn workload_ref(&self, id: u32) -> Ref {
        let version = self.peers.ids.version(id);
        Ref { id, version }
    }

    pub fn service_ref(&self, id: u32) -> Ref {
        let version = self.service_tab.ids.version(id);
        Ref { id, version }
    }

    pub fn node_ref(&self, id: u32) -> Ref {
        let version = self.node_tab.ids.version(id);
        Ref { id, version }
    }
}
