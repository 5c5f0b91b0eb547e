//! The fake API server's state: served resources (built-in and from CRDs), objects, watchers.
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;

use serde_json::{Value, json};

use super::selector;

/// A served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Res {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl Res {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const BUILTIN: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Namespace", "namespaces", false),
    ("", "v1", "Node", "nodes", false),
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    ("", "v1", "Endpoints", "endpoints", true),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("batch", "v1", "Job", "jobs", true),
    ("batch", "v1", "CronJob", "cronjobs", true),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
    ),
];

/// (group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

/// A watch: what it selects and where its events go.
pub struct Watcher {
    pub group: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub labels: Option<String>,
    pub fields: Option<String>,
    pub tx: Sender<Vec<u8>>,
}

#[derive(Default)]
pub struct Store {
    pub objects: BTreeMap<Key, Value>,
    /// Field ownership per object: manager -> (operation, leaf paths).
    pub managed: BTreeMap<Key, super::apply::Owners>,
    pub rv: u64,
    pub watchers: Vec<Watcher>,
    /// Every mutating request that changed state, as `VERB path`.
    pub writes: Vec<String>,
    /// (verb, resource) pairs SelfSubjectAccessReview denies.
    pub denied: Vec<(String, String)>,
    /// Pod logs: (namespace, pod, container, previous run) -> text.
    pub logs: BTreeMap<(String, String, String, bool), String>,
    /// Service proxies: (namespace, service, port) -> base URL.
    pub proxies: BTreeMap<(String, String, String), String>,
    /// Port-forwards: (namespace, pod, port) -> local `host:port`.
    pub port_forwards: BTreeMap<(String, String, u16), String>,
    pub minor: u32,
    /// How long a deleted namespace stays Terminating; `None`: gone at once.
    pub namespace_grace: Option<std::time::Duration>,
    /// Namespaces being terminated, and when they will be gone.
    pub terminating: BTreeMap<String, std::time::Instant>,
}

impl Store {
    pub fn new() -> Self {
        let mut s = Store {
            minor: 31,
            ..Default::default()
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}});
            s.insert(
                ("".into(), "namespaces".into(), String::new(), ns.into()),
                obj,
                "create",
            );
        }
        s
    }

    /// Built-in resources plus those defined by stored CRDs.
    pub fn resources(&self) -> Vec<Res> {
        let mut out: Vec<Res> = BUILTIN
            .iter()
            .map(|(g, v, k, p, n)| Res {
                group: (*g).into(),
                version: (*v).into(),
                kind: (*k).into(),
                plural: (*p).into(),
                namespaced: *n,
            })
            .collect();
        for ((g, p, _, _), crd) in &self.objects {
            if g != "apiextensions.k8s.io" || p != "customresourcedefinitions" {
                continue;
            }
            let spec = &crd["spec"];
            for v in spec["versions"].as_array().into_iter().flatten() {
                if v["served"] == false {
                    continue;
                }
                out.push(Res {
                    group: spec["group"].as_str().unwrap_or_default().into(),
                    version: v["name"].as_str().unwrap_or_default().into(),
                    kind: spec["names"]["kind"].as_str().unwrap_or_default().into(),
                    plural: spec["names"]["plural"].as_str().unwrap_or_default().into(),
                    namespaced: spec["scope"] == "Namespaced",
                });
            }
        }
        out
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Res> {
        self.resources()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&("".into(), "namespaces".into(), String::new(), ns.into()))
    }

    /// Stores an object, stamping what the server stamps, and tells the watchers.
    pub fn insert(&mut self, key: Key, mut obj: Value, verb: &str) -> Value {
        self.rv += 1;
        let old = self.objects.get(&key).cloned();
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        match &old {
            Some(o) => {
                meta["uid"] = o["metadata"]["uid"].clone();
                meta["creationTimestamp"] = o["metadata"]["creationTimestamp"].clone();
                let generation = o["metadata"]["generation"].as_u64().unwrap_or(1);
                let changed = o.get("spec") != obj.get("spec");
                obj["metadata"]["generation"] =
                    json!(if changed { generation + 1 } else { generation });
            }
            None => {
                meta["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", self.rv));
                meta["creationTimestamp"] = json!("2026-11-27T20:00:00Z");
                meta["generation"] = json!(1);
            }
        }
        self.objects.insert(key.clone(), obj.clone());
        self.notify(&key, if old.is_some() { "MODIFIED" } else { "ADDED" }, &obj);
        let _ = verb;
        obj
    }

    /// A namespace deletion with a grace: `Terminating` now (phase, deletionTimestamp), gone (with
    /// its content) once the grace has passed, as the namespace controller does.
    pub fn terminate_namespace(&mut self, key: &Key, grace: std::time::Duration) -> Option<Value> {
        let mut obj = self.objects.get(key)?.clone();
        if !self.terminating.contains_key(&key.3) {
            obj["metadata"]["deletionTimestamp"] = json!("2026-11-27T20:00:00Z");
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"]["phase"] = json!("Terminating");
            obj = self.insert(key.clone(), obj, "delete");
            self.terminating
                .insert(key.3.clone(), std::time::Instant::now() + grace);
        }
        Some(obj)
    }

    /// Removes the namespaces whose termination is over.
    pub fn finish_terminations(&mut self) {
        let now = std::time::Instant::now();
        let done: Vec<String> = self
            .terminating
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in done {
            self.terminating.remove(&ns);
            self.remove(&("".into(), "namespaces".into(), String::new(), ns));
        }
    }

    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let obj = self.objects.remove(key)?;
        self.managed.remove(key);
        self.rv += 1;
        self.notify(key, "DELETED", &obj);
        if key.1 == "namespaces" && key.0.is_empty() {
            // A deleted namespace takes everything in it along.
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.2 == key.3)
                .cloned()
                .collect();
            for k in inside {
                self.remove(&k);
            }
        }
        Some(obj)
    }

    fn notify(&mut self, key: &Key, kind: &str, obj: &Value) {
        let line = format!("{}\n", json!({"type": kind, "object": obj}));
        self.watchers.retain(|w| {
            let matches = w.group == key.0
                && w.plural == key.1
                && w.namespace.as_ref().is_none_or(|n| *n == key.2)
                && w.labels
                    .as_ref()
                    .is_none_or(|l| selector::labels_match(l, obj))
                && w.fields
                    .as_ref()
                    .is_none_or(|f| selector::fields_match(f, obj));
            !matches || w.tx.send(line.clone().into_bytes()).is_ok()
        });
    }
}
