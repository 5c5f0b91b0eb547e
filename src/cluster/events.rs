//! Pods that are never created: the `FailedCreate` events a release's controllers write when the
//! API server refuses their pods (an admission webhook or policy, a ResourceQuota, the namespace's
//! Pod Security level). No pod exists to show a reason, so waiting would only run out the clock.
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::workloads::Observed;
use crate::backend::kube::Kube;

/// A controller's refusal to create a pod: the workload, and the API server's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCreate {
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// Follows `FailedCreate` events of one release: the first look is the baseline (events of an
/// earlier attempt), and only an event that is new or has counted again since is reported.
#[derive(Debug, Default)]
pub struct FailedCreates {
    baseline: Option<HashMap<String, i32>>,
}

impl FailedCreates {
    /// The newest refusal of a pod of `seen`'s workloads since the baseline, if any.
    pub async fn next(&mut self, kube: &Kube, seen: &Observed) -> Option<FailedCreate> {
        let events = Api::<Event>::namespaced(kube.client.clone(), &seen.namespace)
            .list(&ListParams::default().fields("reason=FailedCreate"))
            .await
            .ok()?
            .items;
        let ours = owned_by(seen);
        let counted = |e: &Event| e.count.unwrap_or(1);
        let baseline = self.baseline.get_or_insert_with(|| {
            events
                .iter()
                .filter_map(|e| Some((e.metadata.uid.clone()?, counted(e))))
                .collect()
        });
        events
            .iter()
            .filter(|e| {
                let o = &e.involved_object;
                ours.iter().any(|(k, n)| {
                    o.kind.as_deref() == Some(k) && o.name.as_deref() == Some(n.as_str())
                })
            })
            .filter(|e| {
                let uid = e.metadata.uid.clone().unwrap_or_default();
                baseline.get(&uid).is_none_or(|was| counted(e) > *was)
            })
            .max_by_key(|e| counted(e))
            .map(|e| FailedCreate {
                kind: e.involved_object.kind.clone().unwrap_or_default(),
                name: e.involved_object.name.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
            })
    }
}

/// The objects whose controllers create the release's pods: its ReplicaSets, StatefulSets and
/// DaemonSets that are short of pods.
fn owned_by(seen: &Observed) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for rs in &seen.replica_sets {
        out.push(("ReplicaSet", rs.metadata.name.clone().unwrap_or_default()));
    }
    for s in &seen.stateful_sets {
        out.push(("StatefulSet", s.metadata.name.clone().unwrap_or_default()));
    }
    for d in &seen.daemon_sets {
        out.push(("DaemonSet", d.metadata.name.clone().unwrap_or_default()));
    }
    out
}
