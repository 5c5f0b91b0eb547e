//! Live cluster knowledge: one reflector per kind; whenever one changes, a fresh `Index` is
//! built (debounced) and handed to the driver. Deleted pods are kept a while, for late events
//! and IP reuse.
use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::cluster::ClusterObjects;
use super::index::Index;
use super::pipeline::wall_ns;

/// How many deleted pods, and for how long, are remembered.
const TOMBSTONES: usize = 10_000;
const TOMBSTONE_NS: i64 = 600 * 1_000_000_000;

type Tombstones = Arc<Mutex<VecDeque<(Pod, i64)>>>;

/// The newest error any watch met, for the message when the first listing does not finish.
type LastError = Arc<Mutex<Option<String>>>;

fn reflect<K>(
    client: &Client,
    changed: &Arc<Notify>,
    last: &LastError,
    tombs: Option<Tombstones>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let changed = Arc::clone(changed);
    let last = Arc::clone(last);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(ev)) => {
                    if let (watcher::Event::Delete(obj), Some(t)) = (&ev, &tombs) {
                        let any: &dyn std::any::Any = obj;
                        if let (Some(pod), Ok(mut q)) = (any.downcast_ref::<Pod>(), t.lock()) {
                            q.push_back((pod.clone(), wall_ns()));
                            let horizon = wall_ns() - TOMBSTONE_NS;
                            while q.len() > TOMBSTONES
                                || q.front().is_some_and(|(_, at)| *at < horizon)
                            {
                                q.pop_front();
                            }
                        }
                    }
                    changed.notify_one();
                }
                Ok(None) => return,
                // The backoff retries; errors are transient by the watcher's own contract.
                Err(e) => {
                    if let Ok(mut l) = last.lock() {
                        *l = Some(format!(
                            "{}: {}",
                            K::plural(&()),
                            crate::backend::kube::chain(&e)
                        ));
                    }
                }
            }
        }
    });
    reader
}

fn snapshot<K: Resource<DynamicType = ()> + Clone>(s: &Store<K>) -> Vec<K> {
    s.state().iter().map(|o| (**o).clone()).collect()
}

/// Starts the watches on the current runtime; waits until every kind is listed once, then
/// returns the first index and a channel of newer ones.
pub async fn start(client: Client) -> Result<(Arc<Index>, mpsc::Receiver<Arc<Index>>), String> {
    let changed = Arc::new(Notify::new());
    let tombs: Tombstones = Arc::default();
    let last: LastError = Arc::default();
    let pods = reflect::<Pod>(&client, &changed, &last, Some(Arc::clone(&tombs)));
    let services = reflect::<Service>(&client, &changed, &last, None);
    let nodes = reflect::<Node>(&client, &changed, &last, None);
    let rs = reflect::<ReplicaSet>(&client, &changed, &last, None);
    let deploys = reflect::<Deployment>(&client, &changed, &last, None);
    let sts = reflect::<StatefulSet>(&client, &changed, &last, None);
    let ds = reflect::<DaemonSet>(&client, &changed, &last, None);
    let jobs = reflect::<Job>(&client, &changed, &last, None);
    let crons = reflect::<CronJob>(&client, &changed, &last, None);
    let ready = async {
        let waits = [
            pods.wait_until_ready().await.is_ok(),
            services.wait_until_ready().await.is_ok(),
            nodes.wait_until_ready().await.is_ok(),
            rs.wait_until_ready().await.is_ok(),
            deploys.wait_until_ready().await.is_ok(),
            sts.wait_until_ready().await.is_ok(),
            ds.wait_until_ready().await.is_ok(),
            jobs.wait_until_ready().await.is_ok(),
            crons.wait_until_ready().await.is_ok(),
        ];
        waits.iter().all(|ok| *ok)
    };
    match tokio::time::timeout(Duration::from_secs(60), ready).await {
        Ok(true) => {}
        Ok(false) => return Err("a watch ended before listing its objects".into()),
        Err(_) => {
            let why = last
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .map(|e| format!("; the last error was {e}"))
                .unwrap_or_default();
            return Err(format!(
                "the cluster's objects were not listed within 60 s{why}"
            ));
        }
    }
    let build = move || {
        let deleted_pods = tombs
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        Arc::new(Index::build(&ClusterObjects {
            pods: snapshot(&pods),
            services: snapshot(&services),
            nodes: snapshot(&nodes),
            replica_sets: snapshot(&rs),
            deployments: snapshot(&deploys),
            stateful_sets: snapshot(&sts),
            daemon_sets: snapshot(&ds),
            jobs: snapshot(&jobs),
            cron_jobs: snapshot(&crons),
            deleted_pods,
        }))
    };
    let first = build();
    let (tx, rx) = mpsc::channel();
    tokio::spawn(async move {
        loop {
            changed.notified().await;
            // Debounce: a rollout changes many objects at once.
            tokio::time::sleep(Duration::from_secs(1)).await;
            if tx.send(build()).is_err() {
                return;
            }
        }
    });
    Ok((first, rx))
}
