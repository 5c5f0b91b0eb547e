//! Live cluster knowledge: one watch per kind, each object cut down to what attribution needs
//! as it arrives (controllers through metadata-only watches) and sent on as one `Delta` to the
//! thread that attributes, which applies it to its index between chunks of input. Deletions
//! carry the time they were seen: deleted pods are kept a while, for late events and IP reuse.
use std::sync::mpsc;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::agent::cluster::Info;
use crate::agent::cluster::index::{Delta, Index};
use crate::agent::cluster::objects::Lean;
use crate::agent::pipeline::wall_ns;
use crate::backend;

/// How long the first listing of every kind may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often, while the kinds are listed, what was listed so far is applied.
const APPLY_EVERY: Duration = Duration::from_millis(50);

/// What a watch tells `start` about its first listing.
enum Report {
    Listed,
    Failed(&'static str, String),
}

fn describe(err: &watcher::Error) -> String {
    match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => backend::kube::describe(e),
        watcher::Error::WatchError(status) if !status.message.is_empty() => status.message.clone(),
        other => backend::kube::chain(other),
    }
}

struct Shared {
    deltas: mpsc::Sender<Delta>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
}

/// Watches every object of kind `K` (metadata only when `META`), sending each change on as it
/// arrives; a listing is sent as one `Delta::Replace` before it is reported.
fn watch<K, const META: bool>(client: &Client, shared: &Shared, plural: &'static str)
where
    K: k8s_openapi::Resource + Clone + std::fmt::Debug + Send + 'static,
{
    let api: Api<Lean<K, META>> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let (deltas, reports) = (shared.deltas.clone(), shared.reports.clone());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut listed = false;
        let mut pending: Vec<Info> = Vec::new();
        loop {
            let event = match stream.try_next().await {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                // Before the first listing, fail at once with the kind and the cause; after it,
                // the backoff retries (errors are transient by the watcher's own contract).
                Err(e) if !listed => {
                    let _ = reports.send(Report::Failed(plural, describe(&e)));
                    return;
                }
                Err(_) => continue,
            };
            let delta = match event {
                watcher::Event::Init => {
                    pending.clear();
                    continue;
                }
                watcher::Event::InitApply(o) => {
                    pending.extend(o.into_info());
                    continue;
                }
                watcher::Event::InitDone => Delta::Replace {
                    kind: K::KIND,
                    all: std::mem::take(&mut pending),
                    at: wall_ns(),
                },
                watcher::Event::Apply(o) => match o.into_info() {
                    Some(info) => Delta::Upsert(info),
                    None => continue,
                },
                watcher::Event::Delete(o) => match o.into_info() {
                    Some(info) => Delta::Delete(info, wall_ns()),
                    None => continue,
                },
            };
            let relisted = matches!(delta, Delta::Replace { .. });
            // The receiver is gone when the agent is stopping.
            if deltas.send(delta).is_err() {
                return;
            }
            if relisted && !listed {
                listed = true;
                let _ = reports.send(Report::Listed);
            }
        }
    });
}

/// The watches `start` opens: pods, services and nodes in full (cut down as they arrive), the
/// controllers of the owner chain as metadata only.
pub const WATCHES: usize = 9;

/// Starts the watches on the current runtime; waits until every kind is listed once, then
/// returns the index of what they listed and the channel of the changes that follow. The first
/// watch that fails before its kind is listed ends the start with its kind and cause.
pub async fn start(client: Client) -> Result<(Index, mpsc::Receiver<Delta>), String> {
    let (reports, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (deltas, changes) = mpsc::channel();
    let shared = Shared { deltas, reports };
    watch::<Pod, false>(&client, &shared, "pods");
    watch::<Service, false>(&client, &shared, "services");
    watch::<Node, false>(&client, &shared, "nodes");
    watch::<ReplicaSet, true>(&client, &shared, "replicasets");
    watch::<Deployment, true>(&client, &shared, "deployments");
    watch::<StatefulSet, true>(&client, &shared, "statefulsets");
    watch::<DaemonSet, true>(&client, &shared, "daemonsets");
    watch::<Job, true>(&client, &shared, "jobs");
    watch::<CronJob, true>(&client, &shared, "cronjobs");
    drop(shared);
    // Each listing is applied as it comes, so the records of one kind are not held twice
    // (as listed, and in the index) for longer than it takes to apply them.
    let mut index = Index::default();
    let listed = async {
        let mut n = 0;
        while n < WATCHES {
            let report = tokio::time::timeout(APPLY_EVERY, rx.recv()).await;
            while let Ok(delta) = changes.try_recv() {
                index.apply(delta);
            }
            match report {
                Err(_) => {}
                Ok(Some(Report::Listed)) => n += 1,
                Ok(Some(Report::Failed(plural, why))) => {
                    return Err(format!("list {plural}: {why}"));
                }
                Ok(None) => return Err("a watch ended before listing its objects".to_string()),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(LIST_TIMEOUT, listed).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(format!(
                "the cluster's objects were not listed within {} s",
                LIST_TIMEOUT.as_secs()
            ));
        }
    }
    // Every watch sent its listing before it reported it: all of them are in the channel.
    while let Ok(delta) = changes.try_recv() {
        index.apply(delta);
    }
    Ok((index, changes))
}
