//! What the agent knows of the cluster: only what attribution needs of each object (names, IPs,
//! lifetimes, the owner chain, the release), taken from a snapshot file (a Kubernetes `List`,
//! read as a stream) or from the live watches. Full objects are never kept.
use std::fmt;
use std::io::Read;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::objects::RawObject;

/// (kind, name) of an object's controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub kind: Box<str>,
    pub name: Box<str>,
}

/// A pod, as attribution sees it.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// metadata.uid, as `objects::parse_uid` reads it: what cgroup paths name.
    pub uid: Option<u128>,
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub node: Box<str>,
    pub host_network: bool,
    pub ips: Vec<IpAddr>,
    /// Phase Running or Pending.
    pub running: bool,
    /// creationTimestamp and deletionTimestamp, ns since the epoch.
    pub created: Option<i64>,
    pub deleting: Option<i64>,
    pub owner: Option<OwnerRef>,
    /// The `meta.helm.sh/release-name` annotation.
    pub release: Option<Box<str>>,
    /// The release its labels name (`app.kubernetes.io/instance` of a Helm-managed pod).
    pub label_release: Option<Box<str>>,
    /// The `pod-template-hash` label: names the Deployment of an unknown ReplicaSet.
    pub template_hash: Option<Box<str>>,
}

/// A controller (ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob): one link of the
/// owner chain.
#[derive(Debug, Clone)]
pub struct ControllerInfo {
    pub kind: Box<str>,
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub owner: Option<OwnerRef>,
    pub release: Option<Box<str>>,
}

#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub ips: Vec<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: Box<str>,
    pub ips: Vec<IpAddr>,
}

/// One object of a kind the agent attributes with.
#[derive(Debug, Clone)]
pub enum Info {
    Pod(PodInfo),
    Service(ServiceInfo),
    Node(NodeInfo),
    Controller(ControllerInfo),
}

/// The kinds that are links of the owner chain.
pub const CONTROLLER_KINDS: [&str; 6] = [
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
];

/// The objects an index is built from. Order does not matter.
#[derive(Debug, Default, Clone)]
pub struct ClusterObjects {
    pub pods: Vec<PodInfo>,
    pub services: Vec<ServiceInfo>,
    pub nodes: Vec<NodeInfo>,
    pub controllers: Vec<ControllerInfo>,
    /// Pods that were deleted, with the time (ns) they went away: IP reuse and late events.
    pub deleted_pods: Vec<(PodInfo, i64)>,
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Kubernetes List: {0}")]
    NotAList(serde_json::Error),
}

impl ClusterObjects {
    pub fn push(&mut self, info: Info) {
        match info {
            Info::Pod(p) => self.pods.push(p),
            Info::Service(s) => self.services.push(s),
            Info::Node(n) => self.nodes.push(n),
            Info::Controller(c) => self.controllers.push(c),
        }
    }

    /// Reads a `List` (as `kubectl get -o json` writes it) one item at a time, keeping only what
    /// attribution needs of each. Items of other kinds are skipped; an item that does not fit
    /// its schema is an error naming its position.
    pub fn from_list_reader(r: impl Read) -> Result<Self, SnapshotError> {
        let mut out = ClusterObjects::default();
        let mut de = serde_json::Deserializer::from_reader(r);
        ListSeed(&mut out)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(SnapshotError::NotAList)?;
        Ok(out)
    }
}

/// The top-level object: `items` is streamed, every other key skipped.
struct ListSeed<'a>(&'a mut ClusterObjects);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an `items` list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(ItemsSeed(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ItemsSeed<'a>(&'a mut ClusterObjects);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let item = seq
                .next_element::<RawObject>()
                .map_err(|e| de::Error::custom(format!("item {index}: {e}")))?;
            let Some(item) = item else { return Ok(()) };
            if let Some(info) = item.into_info() {
                self.0.push(info);
            }
            index += 1;
        }
    }
}
