//! What attribution keeps of each kind of object (the records the index is built from).
use std::net::IpAddr;

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
