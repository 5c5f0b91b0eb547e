//! Kubernetes objects as the agent reads them: serde skips every field attribution does not
//! use (managedFields, the spec's containers, env, most labels and annotations, conditions) as
//! it parses, so a full object is never held. The same shapes serve the snapshot file and the
//! live watches (`Lean<K, META>` implements kube's `Resource`; with `META` the API server sends
//! `PartialObjectMetadata`, not the object).
use std::borrow::Cow;
use std::marker::PhantomData;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;

use super::cluster::{
    CONTROLLER_KINDS, ControllerInfo, Info, NodeInfo, OwnerRef, PodInfo, ServiceInfo,
};
use super::owners::release_from_labels;

/// The fields of any of the kinds, as one shape: the kinds' field names do not collide.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawObject {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: Option<RawLabels>,
    #[serde(default)]
    annotations: Option<RawAnnotations>,
    #[serde(default)]
    owner_references: Option<Vec<RawOwner>>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
}

/// The labels attribution reads; the others are skipped unparsed.
#[derive(Debug, Clone, Default, Deserialize)]
struct RawLabels {
    #[serde(default, rename = "app.kubernetes.io/instance")]
    instance: Option<String>,
    #[serde(default, rename = "app.kubernetes.io/managed-by")]
    managed_by: Option<String>,
    #[serde(default, rename = "pod-template-hash")]
    template_hash: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawAnnotations {
    #[serde(default, rename = "meta.helm.sh/release-name")]
    release: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawOwner {
    kind: String,
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(default, rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(default, rename = "clusterIPs")]
    cluster_ips: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawStatus {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pod_ips: Option<Vec<RawIp>>,
    #[serde(default)]
    addresses: Option<Vec<RawAddress>>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawIp {
    #[serde(default)]
    ip: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawAddress {
    #[serde(default)]
    address: String,
}

/// A pod UID (`8f0e...-...`, or with the underscores systemd's slice names use) as a number:
/// 16 bytes a pod instead of a 36-byte string, and the cgroup path parser gives the same.
pub fn parse_uid(s: &str) -> Option<u128> {
    let mut v: u128 = 0;
    let mut digits = 0;
    for c in s.bytes() {
        let d = match c {
            b'-' | b'_' => continue,
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        digits += 1;
        if digits > 32 {
            return None;
        }
        v = (v << 4) | u128::from(d);
    }
    (digits == 32).then_some(v)
}

fn boxed(s: Option<String>) -> Box<str> {
    s.unwrap_or_default().into_boxed_str()
}

fn non_empty(s: Option<String>) -> Option<Box<str>> {
    s.filter(|s| !s.is_empty()).map(String::into_boxed_str)
}

fn ns_time(t: Option<&Time>) -> Option<i64> {
    t.and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
}

fn ips<'a>(all: impl Iterator<Item = &'a str>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in all.filter_map(|s| s.parse::<IpAddr>().ok()) {
        let ip = ip.to_canonical();
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

impl RawMeta {
    fn controller(&mut self) -> Option<OwnerRef> {
        let refs = self.owner_references.take()?;
        let pos = refs.iter().position(|r| r.controller == Some(true));
        let r = refs.into_iter().nth(pos.unwrap_or(0))?;
        Some(OwnerRef {
            kind: r.kind.into(),
            name: r.name.into(),
        })
    }
}

impl RawObject {
    /// What attribution keeps of an object of the kind it names; `None` for other kinds.
    pub fn into_info(mut self) -> Option<Info> {
        let kind = self.kind.take()?;
        self.into_info_as(&kind)
    }

    /// The same, for an object known to be of `kind` (watch items carry no kind).
    pub fn into_info_as(self, kind: &str) -> Option<Info> {
        let RawObject {
            mut metadata,
            spec,
            status,
            ..
        } = self;
        let owner = metadata.controller();
        let release = metadata
            .annotations
            .take()
            .and_then(|a| non_empty(a.release));
        let namespace = boxed(metadata.namespace.take());
        let name = boxed(metadata.name.take());
        Some(match kind {
            "Pod" => {
                let labels = metadata.labels.take().unwrap_or_default();
                let label_release =
                    release_from_labels(labels.instance.as_deref(), labels.managed_by.as_deref());
                let listed = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
                let single = status.pod_ip.as_deref().into_iter();
                Info::Pod(PodInfo {
                    uid: metadata.uid.as_deref().and_then(parse_uid),
                    namespace,
                    name,
                    node: boxed(spec.node_name),
                    host_network: spec.host_network == Some(true),
                    ips: ips(listed.chain(single)),
                    running: matches!(status.phase.as_deref(), Some("Running" | "Pending")),
                    created: ns_time(metadata.creation_timestamp.as_ref()),
                    deleting: ns_time(metadata.deletion_timestamp.as_ref()),
                    owner,
                    release,
                    label_release: label_release.map(String::into_boxed_str),
                    template_hash: non_empty(labels.template_hash),
                })
            }
            "Service" => {
                let listed = spec.cluster_ips.iter().flatten().map(String::as_str);
                let single = spec.cluster_ip.as_deref().into_iter();
                Info::Service(ServiceInfo {
                    namespace,
                    name,
                    ips: ips(listed.chain(single)),
                })
            }
            "Node" => {
                let addrs = status.addresses.iter().flatten();
                Info::Node(NodeInfo {
                    name,
                    ips: ips(addrs.map(|a| a.address.as_str())),
                })
            }
            k if CONTROLLER_KINDS.contains(&k) => Info::Controller(ControllerInfo {
                kind: k.into(),
                namespace,
                name,
                owner,
                release,
            }),
            _ => return None,
        })
    }
}

/// A watched object of kind `K`, parsed as `RawObject`. Only name, namespace and
/// resourceVersion are kept as metadata for kube's watcher.
#[derive(Debug, Clone)]
pub struct Lean<K, const META_ONLY: bool = false> {
    meta: ObjectMeta,
    raw: RawObject,
    _kind: PhantomData<fn() -> K>,
}

impl<'de, K, const M: bool> Deserialize<'de> for Lean<K, M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(d)?;
        let meta = ObjectMeta {
            name: raw.metadata.name.clone(),
            namespace: raw.metadata.namespace.clone(),
            resource_version: raw.metadata.resource_version.clone(),
            ..ObjectMeta::default()
        };
        Ok(Lean {
            meta,
            raw,
            _kind: PhantomData,
        })
    }
}

impl<K: k8s_openapi::Resource, const M: bool> Lean<K, M> {
    pub fn into_info(self) -> Option<Info> {
        self.raw.into_info_as(K::KIND)
    }
}

impl<K: k8s_openapi::Resource, const M: bool> kube::Resource for Lean<K, M> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::VERSION)
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::URL_PATH_SEGMENT)
    }
    fn metadata_api() -> bool {
        M
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}
