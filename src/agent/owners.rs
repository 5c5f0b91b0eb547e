//! Pod -> top workload (ReplicaSet -> Deployment, Job -> CronJob, ...) and its Helm release.
//! The owner chain is kept as a map of small entries, updated one object at a time.
use hashbrown::HashMap;

use super::cluster::{ControllerInfo, OwnerRef, PodInfo};

/// The identity of a pod as the flow contract tags it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub release: String,
}

/// A controller's own controller and its release annotation.
type Controller = (Option<OwnerRef>, Option<Box<str>>);

/// (kind, namespace, name) of a controller.
type Key = (Box<str>, Box<str>, Box<str>);

/// Controllers by (kind, namespace, name): their own controller and their release annotation.
#[derive(Default, Clone)]
pub struct Owners {
    objects: HashMap<Key, Controller>,
}

/// The release a Helm-managed pod names in its labels (the contract's fallback).
pub fn release_from_labels(instance: Option<&str>, managed_by: Option<&str>) -> Option<String> {
    match (instance, managed_by) {
        (Some(i), Some(m)) if !i.is_empty() && m.eq_ignore_ascii_case("helm") => Some(i.into()),
        _ => None,
    }
}

fn key(c: &ControllerInfo) -> Key {
    (c.kind.clone(), c.namespace.clone(), c.name.clone())
}

impl Owners {
    pub fn new<'a>(controllers: impl IntoIterator<Item = &'a ControllerInfo>) -> Self {
        let mut o = Owners::default();
        for c in controllers {
            o.insert(c.clone());
        }
        o
    }

    pub fn insert(&mut self, c: ControllerInfo) {
        let k = key(&c);
        self.objects.insert(k, (c.owner, c.release));
    }

    pub fn remove(&mut self, c: &ControllerInfo) {
        self.objects.remove(&key(c));
    }

    /// Replaces every controller of `kind` (a watch listed its kind afresh).
    pub fn replace_kind(&mut self, kind: &str, all: Vec<ControllerInfo>) {
        self.objects.retain(|k, _| &*k.0 != kind);
        for c in all {
            self.insert(c);
        }
    }

    /// Follows the controller chain of a pod to its top workload (at most a few hops, so a
    /// cycle in bad data cannot hang the agent). Unknown ReplicaSets of pods with a
    /// `pod-template-hash` label are taken to belong to the Deployment their name implies.
    pub fn workload_of(&self, pod: &PodInfo) -> Workload {
        let label_release = pod.label_release.as_deref().map(String::from);
        let Some(first) = &pod.owner else {
            let release = pod.release.as_deref().map(String::from);
            return Workload {
                kind: "Pod".into(),
                name: pod.name.to_string(),
                release: release.or(label_release).unwrap_or_default(),
            };
        };
        let (mut kind, mut name) = (first.kind.clone(), first.name.clone());
        let mut release = None;
        for _ in 0..4 {
            let k = (kind.clone(), pod.namespace.clone(), name.clone());
            match self.objects.get(&k) {
                Some((owner, rel)) => {
                    release = rel.clone();
                    match owner {
                        Some(o) => (kind, name) = (o.kind.clone(), o.name.clone()),
                        None => break,
                    }
                }
                None => {
                    let hash = pod.template_hash.as_deref();
                    let base = hash.and_then(|h| name.strip_suffix(h));
                    if &*kind == "ReplicaSet"
                        && let Some(base) = base.and_then(|b| b.strip_suffix('-'))
                    {
                        (kind, name) = ("Deployment".into(), base.into());
                    }
                    break;
                }
            }
        }
        Workload {
            kind: kind.into(),
            name: name.into(),
            release: release
                .map(String::from)
                .or(label_release)
                .unwrap_or_default(),
        }
    }
}
