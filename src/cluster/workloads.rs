//! Workloads and pods of a release: ready/desired, and why a pod is not ready.
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::revision::{self, Standing};
use crate::backend::kube::{Kube, describe};

/// Reasons that will not go away by waiting: install stops on them at once. `Unschedulable` is
/// not one: the scheduler says it while a claim waits for its volume to bind (seconds) or a
/// cluster autoscaler adds a node (minutes), so it is left to `--timeout`, whose message names
/// it (see [`super::wait::not_ready_pods`]).
pub const FATAL: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
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
    /// The reason will not go away by waiting, and the pod's workload is settled (its controller
    /// has caught up with its spec), so install stops on it.
    #[serde(skip)]
    pub fatal: bool,
    #[serde(skip)]
    pub uid: String,
    /// `metadata.generation` of the workload the pod belongs to, when known.
    #[serde(skip)]
    pub workload_generation: Option<i64>,
}

/// One look at a release: one list per kind (Deployments, their ReplicaSets, StatefulSets,
/// DaemonSets, pods), all by the release's instance label.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub namespace: String,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub pods: Vec<Pod>,
}

fn selector(release: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"))
}

/// Lists everything of the release that `workloads` and `problems` judge.
pub async fn observe(kube: &Kube, ns: &str, release: &str) -> Result<Observed, String> {
    let lp = selector(release);
    let c = &kube.client;
    let (dep, rs, sts, ds, pod) = (
        Api::<Deployment>::namespaced(c.clone(), ns),
        Api::<ReplicaSet>::namespaced(c.clone(), ns),
        Api::<StatefulSet>::namespaced(c.clone(), ns),
        Api::<DaemonSet>::namespaced(c.clone(), ns),
        Api::<Pod>::namespaced(c.clone(), ns),
    );
    let (deployments, replica_sets, stateful_sets, daemon_sets, pods) = futures::try_join!(
        dep.list(&lp),
        rs.list(&lp),
        sts.list(&lp),
        ds.list(&lp),
        pod.list(&lp),
    )
    .map_err(|e| describe(&e))?;
    Ok(Observed {
        namespace: ns.into(),
        deployments: deployments.items,
        replica_sets: replica_sets.items,
        stateful_sets: stateful_sets.items,
        daemon_sets: daemon_sets.items,
        pods: pods.items,
    })
}

impl Observed {
    /// Deployments, StatefulSets and DaemonSets, ready against desired.
    pub fn workloads(&self) -> Vec<Workload> {
        let w = |kind: &str, name: &Option<String>, ready: Option<i32>, desired: i32| Workload {
            kind: kind.into(),
            name: name.clone().unwrap_or_default(),
            namespace: self.namespace.clone(),
            ready: ready.unwrap_or(0),
            desired,
        };
        let mut out = Vec::new();
        for d in &self.deployments {
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas);
            let desired = d.spec.replicas.unwrap_or(1);
            out.push(w("Deployment", &d.metadata.name, ready, desired));
        }
        for s in &self.stateful_sets {
            let ready = s.status.as_ref().and_then(|s| s.ready_replicas);
            let desired = s.spec.replicas.unwrap_or(1);
            out.push(w("StatefulSet", &s.metadata.name, ready, desired));
        }
        for d in &self.daemon_sets {
            let status = d.status.clone().unwrap_or_default();
            out.push(w(
                "DaemonSet",
                &d.metadata.name,
                Some(status.number_ready),
                status.desired_number_scheduled,
            ));
        }
        out
    }

    /// Pods that are not ready, with the most telling reason. Pods on their way out are not
    /// counted: terminating ones, and those of a revision their workload is replacing.
    pub fn problems(&self) -> Vec<PodProblem> {
        self.pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| match revision::standing(self, p) {
                Standing::Old => None,
                Standing::Current {
                    settled,
                    generation,
                } => problem(&self.namespace, p).map(|mut problem| {
                    problem.fatal = settled && FATAL.contains(&problem.reason.as_str());
                    problem.workload_generation = generation;
                    problem
                }),
            })
            .collect()
    }
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
        fatal: false,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        workload_generation: None,
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
    // Running containers whose readiness probe fails: the kubelet says why on the Ready
    // condition (e.g. ContainersNotReady: containers with unready status: [grafana]).
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason.is_some())
    {
        return Some(mk(
            c.reason.as_deref().unwrap_or("NotReady"),
            c.message.as_deref().unwrap_or(""),
            None,
        ));
    }
    Some(mk("NotReady", status.phase.as_deref().unwrap_or(""), None))
}
