//! Pod -> top workload (ReplicaSet -> Deployment, Job -> CronJob, ...) and its Helm release.
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cluster::ClusterObjects;

const RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The identity of a pod as the flow contract tags it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub release: String,
}

/// (kind, name) of a controller.
type Ref = (String, String);

/// A controller's own controller and its release annotation.
type Controller = (Option<Ref>, Option<String>);

/// Controllers by (kind, namespace, name): their own controller and their release annotation.
#[derive(Default)]
pub struct Owners {
    objects: HashMap<(String, String, String), Controller>,
}

fn controller_of(meta: &ObjectMeta) -> Option<Ref> {
    let refs = meta.owner_references.as_deref()?;
    let r = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())?;
    Some((r.kind.clone(), r.name.clone()))
}

fn release_of(meta: &ObjectMeta) -> Option<String> {
    let v = meta.annotations.as_ref()?.get(RELEASE_ANNOTATION)?;
    (!v.is_empty()).then(|| v.clone())
}

/// The release a Helm-managed pod names in its labels (the contract's fallback).
pub fn release_from_labels(instance: Option<&str>, managed_by: Option<&str>) -> Option<String> {
    match (instance, managed_by) {
        (Some(i), Some(m)) if !i.is_empty() && m.eq_ignore_ascii_case("helm") => Some(i.into()),
        _ => None,
    }
}

impl Owners {
    pub fn new(c: &ClusterObjects) -> Self {
        let mut o = Owners::default();
        let metas = c
            .replica_sets
            .iter()
            .map(|x| ("ReplicaSet", &x.metadata))
            .chain(c.deployments.iter().map(|x| ("Deployment", &x.metadata)))
            .chain(c.stateful_sets.iter().map(|x| ("StatefulSet", &x.metadata)))
            .chain(c.daemon_sets.iter().map(|x| ("DaemonSet", &x.metadata)))
            .chain(c.jobs.iter().map(|x| ("Job", &x.metadata)))
            .chain(c.cron_jobs.iter().map(|x| ("CronJob", &x.metadata)));
        for (kind, meta) in metas {
            let key = (
                kind.to_string(),
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            );
            o.objects
                .insert(key, (controller_of(meta), release_of(meta)));
        }
        o
    }

    /// Follows the controller chain of a pod to its top workload (at most a few hops, so a
    /// cycle in bad data cannot hang the agent). Unknown ReplicaSets of pods with a
    /// `pod-template-hash` label are taken to belong to the Deployment their name implies.
    pub fn workload_of(&self, pod: &Pod) -> Workload {
        let meta = &pod.metadata;
        let ns = meta.namespace.clone().unwrap_or_default();
        let pod_name = meta.name.clone().unwrap_or_default();
        let labels = meta.labels.as_ref();
        let label_release = labels.and_then(|l| {
            release_from_labels(
                l.get(INSTANCE_LABEL).map(String::as_str),
                l.get(MANAGED_BY_LABEL).map(String::as_str),
            )
        });
        let Some((mut kind, mut name)) = controller_of(meta) else {
            let release = release_of(meta).or(label_release).unwrap_or_default();
            return Workload {
                kind: "Pod".into(),
                name: pod_name,
                release,
            };
        };
        let mut release = None;
        for _ in 0..4 {
            match self.objects.get(&(kind.clone(), ns.clone(), name.clone())) {
                Some((owner, rel)) => {
                    release = rel.clone();
                    match owner {
                        Some((k, n)) => (kind, name) = (k.clone(), n.clone()),
                        None => break,
                    }
                }
                None => {
                    let hash = labels.and_then(|l| l.get("pod-template-hash"));
                    let base = hash.and_then(|h| name.strip_suffix(h.as_str()));
                    if kind == "ReplicaSet"
                        && let Some(base) = base.and_then(|b| b.strip_suffix('-'))
                    {
                        (kind, name) = ("Deployment".into(), base.to_string());
                    }
                    break;
                }
            }
        }
        Workload {
            kind,
            name,
            release: release.or(label_release).unwrap_or_default(),
        }
    }
}
