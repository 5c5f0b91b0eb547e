//! Whether a pod is of its workload's current revision, and whether that workload's controller
//! has caught up with its spec: the pods of an old ReplicaSet (or StatefulSet / DaemonSet
//! revision) are being replaced, so their failures are not the release's.
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::workloads::Observed;

/// The annotation the Deployment controller puts on a Deployment and each of its ReplicaSets.
const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";
/// The label the StatefulSet controller puts on each pod: the revision it was made from.
const STATEFULSET_REVISION: &str = "controller-revision-hash";
/// The label the DaemonSet controller puts on each pod: the DaemonSet generation it was made from.
const DAEMONSET_GENERATION: &str = "pod-template-generation";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Made from a revision its workload is replacing.
    Old,
    /// Of the current revision (or of no workload kovenant knows). `settled`: the controller has
    /// observed the workload's latest spec; `generation`: the workload's.
    Current {
        settled: bool,
        generation: Option<i64>,
    },
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

fn named<'a, K: kube::Resource>(list: &'a [K], name: &str) -> Option<&'a K> {
    list.iter().find(|o| o.meta().name.as_deref() == Some(name))
}

/// The controller has seen the latest spec (`status.observedGeneration >= metadata.generation`).
fn settled(meta: &ObjectMeta, observed: Option<i64>) -> Standing {
    let generation = meta.generation;
    let settled = match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        (Some(_), None) => false,
        (None, _) => true,
    };
    Standing::Current {
        settled,
        generation,
    }
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    meta.annotations.as_ref()?.get(key)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    meta.labels.as_ref()?.get(key)
}

fn differ(a: Option<&String>, b: Option<&String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

/// Where a pod stands, from the lists of one look (no request of its own).
pub fn standing(seen: &Observed, pod: &Pod) -> Standing {
    let unknown = Standing::Current {
        settled: true,
        generation: None,
    };
    let Some(owner) = controller(&pod.metadata) else {
        return unknown;
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let Some(rs) = named(&seen.replica_sets, &owner.name) else {
                return unknown;
            };
            if rs.spec.replicas == Some(0) {
                return Standing::Old;
            }
            let deployment = controller(&rs.metadata)
                .filter(|o| o.kind == "Deployment")
                .and_then(|o| named(&seen.deployments, &o.name));
            let Some(d) = deployment else {
                return unknown;
            };
            if differ(
                annotation(&rs.metadata, DEPLOYMENT_REVISION),
                annotation(&d.metadata, DEPLOYMENT_REVISION),
            ) {
                return Standing::Old;
            }
            settled(
                &d.metadata,
                d.status.as_ref().and_then(|s| s.observed_generation),
            )
        }
        "StatefulSet" => {
            let Some(s) = named(&seen.stateful_sets, &owner.name) else {
                return unknown;
            };
            let status = s.status.as_ref();
            if differ(
                label(&pod.metadata, STATEFULSET_REVISION),
                status.and_then(|s| s.update_revision.as_ref()),
            ) {
                return Standing::Old;
            }
            settled(&s.metadata, status.and_then(|s| s.observed_generation))
        }
        "DaemonSet" => {
            let Some(d) = named(&seen.daemon_sets, &owner.name) else {
                return unknown;
            };
            let generation = d.metadata.generation.map(|g| g.to_string());
            if differ(
                label(&pod.metadata, DAEMONSET_GENERATION),
                generation.as_ref(),
            ) {
                return Standing::Old;
            }
            settled(
                &d.metadata,
                d.status.as_ref().and_then(|s| s.observed_generation),
            )
        }
        _ => unknown,
    }
}
