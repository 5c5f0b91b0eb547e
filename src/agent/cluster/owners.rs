//! Pod -> top workload (ReplicaSet -> Deployment, Job -> CronJob, ...) and its Helm release.
//! The owner chain is kept as a map of small entries, updated one object at a time, with the
//! reverse links that say which pods a change of one controller can re-label: controller ->
//! the controllers it controls, and direct controller -> its pods.
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap, HashSet};

use crate::agent::cluster::info::{ControllerInfo, OwnerRef};

/// The identity of a pod as the flow contract tags it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub release: &'a str,
}

/// What a pod says of its place in the owner chain. The pods of one controller say the same,
/// so the strings are shared (`index` interns them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    pub owner: Option<Owner>,
    /// The `meta.helm.sh/release-name` annotation.
    pub release: Option<Arc<str>>,
    /// `app.kubernetes.io/instance` of a Helm-managed pod.
    pub label_release: Option<Arc<str>>,
    /// The `pod-template-hash` label: names the Deployment of an unknown ReplicaSet.
    pub template_hash: Option<Arc<str>>,
}

/// A controller's own controller and its release annotation.
type Controller = (Option<OwnerRef>, Option<Box<str>>);

/// (kind, namespace, name) of a controller.
type Key = (Box<str>, Box<str>, Box<str>);

#[derive(Hash)]
struct KeyRef<'a>(&'a str, &'a str, &'a str);

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1 && *key.2 == *self.2
    }
}

/// How many links of the chain a pod's walk looks up; a cycle in bad data cannot hang it.
const HOPS: usize = 4;

/// Controllers by (kind, namespace, name), and who depends on them.
#[derive(Default, Clone)]
pub struct Owners {
    objects: HashMap<Key, Controller>,
    /// Controller (present or not) -> the present controllers it is the controller of.
    children: HashMap<Key, Vec<Key>>,
    /// Direct controller (present or not) -> the ids of its pods in the index.
    pods: HashMap<Key, Vec<u32>>,
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

fn parent(namespace: &str, o: &OwnerRef) -> Key {
    (o.kind.clone(), namespace.into(), o.name.clone())
}

/// (kind, name) of a pod's controller.
pub type Owner = (Arc<str>, Arc<str>);

/// Removes one `v` from the list at `k`, and the list when it is empty.
fn unlist<T: PartialEq>(map: &mut HashMap<Key, Vec<T>>, k: KeyRef<'_>, v: &T) {
    if let Some(list) = map.get_mut(&k) {
        if let Some(i) = list.iter().position(|x| x == v) {
            list.swap_remove(i);
        }
        if list.is_empty() {
            map.remove(&k);
        }
    }
}

impl Owners {
    /// Adds or changes a controller; the pods whose workload may change are pushed to
    /// `affected`.
    pub fn upsert(&mut self, c: ControllerInfo, affected: &mut Vec<u32>) {
        let k = key(&c);
        let value = (c.owner, c.release);
        let old_owner = match self.objects.get(&k) {
            Some(old) if *old == value => return,
            Some(old) => old.0.clone(),
            None => None,
        };
        if old_owner != value.0 {
            if let Some(o) = &old_owner {
                unlist(&mut self.children, KeyRef(&o.kind, &k.1, &o.name), &k);
            }
            if let Some(o) = &value.0 {
                let list = self.children.entry(parent(&k.1, o)).or_default();
                list.push(k.clone());
            }
        }
        self.objects.insert(k.clone(), value);
        self.dependents(&k, affected);
    }

    pub fn remove(&mut self, c: &ControllerInfo, affected: &mut Vec<u32>) {
        self.remove_key(key(c), affected);
    }

    fn remove_key(&mut self, k: Key, affected: &mut Vec<u32>) {
        let Some((owner, _)) = self.objects.remove(&k) else {
            return;
        };
        if let Some(o) = &owner {
            unlist(&mut self.children, KeyRef(&o.kind, &k.1, &o.name), &k);
        }
        self.dependents(&k, affected);
    }

    /// Replaces every controller of `kind` (a watch listed its kind afresh).
    pub fn replace_kind(&mut self, kind: &str, all: Vec<ControllerInfo>, affected: &mut Vec<u32>) {
        let fresh: HashSet<Key> = all.iter().map(key).collect();
        let gone: Vec<Key> = (self.objects.keys())
            .filter(|k| &*k.0 == kind && !fresh.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.remove_key(k, affected);
        }
        for c in all {
            self.upsert(c, affected);
        }
    }

    /// Records that pod `id` (in `namespace`) has `owner` as its direct controller.
    pub fn link(&mut self, id: u32, namespace: &str, (kind, name): &Owner) {
        match self.pods.get_mut(&KeyRef(kind, namespace, name)) {
            Some(list) => list.push(id),
            None => {
                let key = ((**kind).into(), namespace.into(), (**name).into());
                self.pods.insert(key, vec![id]);
            }
        }
    }

    pub fn unlink(&mut self, id: u32, namespace: &str, (kind, name): &Owner) {
        unlist(&mut self.pods, KeyRef(kind, namespace, name), &id);
    }

    /// The pods whose walk up the chain looks `k` up: those it directly controls, and those of
    /// the controllers below it, up to the walk's length.
    fn dependents(&self, k: &Key, out: &mut Vec<u32>) {
        let mut seen: HashSet<&Key> = HashSet::new();
        let mut level = vec![k];
        for depth in 0..HOPS {
            let mut next = Vec::new();
            for k in level {
                if !seen.insert(k) {
                    continue;
                }
                out.extend(self.pods.get(k).into_iter().flatten());
                if depth + 1 < HOPS {
                    next.extend(self.children.get(k).into_iter().flatten());
                }
            }
            level = next;
        }
    }

    /// Follows the controller chain of a pod to its top workload (at most a few hops, so a
    /// cycle in bad data cannot hang the agent). Unknown ReplicaSets of pods with a
    /// `pod-template-hash` label are taken to belong to the Deployment their name implies.
    pub fn workload<'a>(&'a self, namespace: &str, name: &'a str, l: &'a Lineage) -> Workload<'a> {
        let label_release = l.label_release.as_deref();
        let Some(first) = &l.owner else {
            return Workload {
                kind: "Pod",
                name,
                release: l.release.as_deref().or(label_release).unwrap_or(""),
            };
        };
        let (mut kind, mut name): (&str, &str) = (&first.0, &first.1);
        let mut release = None;
        for _ in 0..HOPS {
            match self.objects.get(&KeyRef(kind, namespace, name)) {
                Some((owner, rel)) => {
                    release = rel.as_deref();
                    match owner {
                        Some(o) => (kind, name) = (&o.kind, &o.name),
                        None => break,
                    }
                }
                None => {
                    let hash = l.template_hash.as_deref();
                    let base = hash.and_then(|h| name.strip_suffix(h));
                    if kind == "ReplicaSet"
                        && let Some(base) = base.and_then(|b| b.strip_suffix('-'))
                    {
                        (kind, name) = ("Deployment", base);
                    }
                    break;
                }
            }
        }
        Workload {
            kind,
            name,
            release: release.or(label_release).unwrap_or(""),
        }
    }
}
