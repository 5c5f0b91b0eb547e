//! What the agent knows of the cluster: the objects of the kinds it attributes with, from a
//! snapshot file (a Kubernetes `List`) or from the live watches.
use std::io::Read;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use serde::Deserialize;

/// The objects an index is built from. Order does not matter.
#[derive(Debug, Default, Clone)]
pub struct ClusterObjects {
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    pub replica_sets: Vec<ReplicaSet>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
    /// Pods that were deleted, with the time (ns) they went away: IP reuse and late events.
    pub deleted_pods: Vec<(Pod, i64)>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    items: Vec<serde_json::Value>,
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Kubernetes List: {0}")]
    NotAList(serde_json::Error),
    #[error("item {index} ({kind} {name}): {source}")]
    Item {
        index: usize,
        kind: String,
        name: String,
        source: serde_json::Error,
    },
}

impl ClusterObjects {
    /// Reads a `List` (as `kubectl get -o json` writes it). Items of other kinds are skipped;
    /// an item of a known kind that does not fit its schema is an error naming it.
    pub fn from_list_reader(r: impl Read) -> Result<Self, SnapshotError> {
        let list: List = serde_json::from_reader(r).map_err(SnapshotError::NotAList)?;
        let mut out = ClusterObjects::default();
        for (index, item) in list.items.into_iter().enumerate() {
            let kind = item
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or("")
                .to_string();
            let name = item
                .pointer("/metadata/name")
                .and_then(|k| k.as_str())
                .unwrap_or("")
                .to_string();
            let err = |source| SnapshotError::Item {
                index,
                kind: kind.clone(),
                name: name.clone(),
                source,
            };
            match kind.as_str() {
                "Pod" => out.pods.push(serde_json::from_value(item).map_err(err)?),
                "Service" => out
                    .services
                    .push(serde_json::from_value(item).map_err(err)?),
                "Node" => out.nodes.push(serde_json::from_value(item).map_err(err)?),
                "ReplicaSet" => out
                    .replica_sets
                    .push(serde_json::from_value(item).map_err(err)?),
                "Deployment" => out
                    .deployments
                    .push(serde_json::from_value(item).map_err(err)?),
                "StatefulSet" => out
                    .stateful_sets
                    .push(serde_json::from_value(item).map_err(err)?),
                "DaemonSet" => out
                    .daemon_sets
                    .push(serde_json::from_value(item).map_err(err)?),
                "Job" => out.jobs.push(serde_json::from_value(item).map_err(err)?),
                "CronJob" => out
                    .cron_jobs
                    .push(serde_json::from_value(item).map_err(err)?),
                _ => {}
            }
        }
        Ok(out)
    }
}
