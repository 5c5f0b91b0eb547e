//! Workloads and pods of a release: ready/desired, and why a pod is not ready.
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::backend::kube::{Kube, describe};

/// Reasons that will not go away by waiting: install stops on them at once.
pub const FATAL: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "Unschedulable",
];

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub ready: i32,
    pub desired: i32,
}

/// A pod that is not ready, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PodProblem {
    pub namespace: String,
    pub pod: String,
    pub reason: String,
    pub message: String,
    /// The container whose state gave the reason, for its log.
    #[serde(skip)]
    pub container: Option<String>,
}

fn selector(release: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"))
}

/// Deployments, StatefulSets and DaemonSets of a release.
pub async fn workloads(kube: &Kube, ns: &str, release: &str) -> Result<Vec<Workload>, String> {
    let c = kube.client.clone();
    let lp = selector(release);
    let w = |kind: &str, name: Option<String>, ready: Option<i32>, desired: i32| Workload {
        kind: kind.into(),
        name: name.unwrap_or_default(),
        namespace: ns.into(),
        ready: ready.unwrap_or(0),
        desired,
    };
    let mut out = Vec::new();
    let deps = Api::<Deployment>::namespaced(c.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| describe(&e))?;
    for d in deps {
        let desired = d.spec.replicas.unwrap_or(1);
        out.push(w(
            "Deployment",
            d.metadata.name,
            d.status.and_then(|s| s.ready_replicas),
            desired,
        ));
    }
    let sts = Api::<StatefulSet>::namespaced(c.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| describe(&e))?;
    for s in sts {
        let desired = s.spec.replicas.unwrap_or(1);
        out.push(w(
            "StatefulSet",
            s.metadata.name,
            s.status.and_then(|s| s.ready_replicas),
            desired,
        ));
    }
    let dss = Api::<DaemonSet>::namespaced(c, ns)
        .list(&lp)
        .await
        .map_err(|e| describe(&e))?;
    for d in dss {
        let status = d.status.unwrap_or_default();
        out.push(w(
            "DaemonSet",
            d.metadata.name,
            Some(status.number_ready),
            status.desired_number_scheduled,
        ));
    }
    Ok(out)
}

/// Pods of a release that are not ready, with the most telling reason.
pub async fn pod_problems(kube: &Kube, ns: &str, release: &str) -> Result<Vec<PodProblem>, String> {
    let pods = Api::<Pod>::namespaced(kube.client.clone(), ns)
        .list(&selector(release))
        .await
        .map_err(|e| describe(&e))?;
    Ok(pods.items.iter().filter_map(|p| problem(ns, p)).collect())
}

fn problem(ns: &str, pod: &Pod) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Succeeded") {
        return None;
    }
    let conditions = status.conditions.clone().unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
    {
        return None;
    }
    let mk = |reason: &str, message: &str, container: Option<String>| PodProblem {
        namespace: ns.into(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        reason: reason.into(),
        message: message.into(),
        container,
    };
    for cs in status.container_statuses.iter().flatten() {
        let state = cs.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_else(|| "Waiting".into());
            return Some(mk(
                &reason,
                w.message.as_deref().unwrap_or(""),
                Some(cs.name.clone()),
            ));
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            let reason = t.reason.clone().unwrap_or_else(|| "Terminated".into());
            return Some(mk(
                &reason,
                t.message.as_deref().unwrap_or(""),
                Some(cs.name.clone()),
            ));
        }
    }
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return Some(mk(
            c.reason.as_deref().unwrap_or("Unschedulable"),
            c.message.as_deref().unwrap_or(""),
            None,
        ));
    }
    Some(mk("NotReady", status.phase.as_deref().unwrap_or(""), None))
}
