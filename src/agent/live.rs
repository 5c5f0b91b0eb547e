//! Live cluster knowledge: one watch per kind, each object cut down to what attribution needs
//! as it arrives (controllers through metadata-only watches) and applied to small maps one
//! change at a time; whenever they change, a fresh `Index` is built from them (debounced) and
//! handed to the driver. Deleted pods are kept a while, for late events and IP reuse.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::TryStreamExt;
use hashbrown::HashMap;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use super::cluster::{Info, NodeInfo, PodInfo, ServiceInfo};
use super::index::Index;
use super::objects::Lean;
use super::owners::Owners;
use super::pipeline::wall_ns;
use crate::backend;

/// How many deleted pods, and for how long, are remembered.
const TOMBSTONES: usize = 10_000;
const TOMBSTONE_NS: i64 = 600 * 1_000_000_000;
/// How long the first listing of every kind may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

type Name = (Box<str>, Box<str>);

/// What the watches have seen, as small records.
#[derive(Default)]
struct State {
    pods: HashMap<Name, PodInfo>,
    services: HashMap<Name, ServiceInfo>,
    nodes: HashMap<Box<str>, NodeInfo>,
    owners: Owners,
    tombstones: VecDeque<(PodInfo, i64)>,
}

fn pod_key(p: &PodInfo) -> Name {
    (p.namespace.clone(), p.name.clone())
}

impl State {
    fn apply(&mut self, info: Info) {
        match info {
            Info::Pod(p) => {
                self.pods.insert(pod_key(&p), p);
            }
            Info::Service(s) => {
                self.services
                    .insert((s.namespace.clone(), s.name.clone()), s);
            }
            Info::Node(n) => {
                self.nodes.insert(n.name.clone(), n);
            }
            Info::Controller(c) => self.owners.insert(c),
        }
    }

    fn delete(&mut self, info: Info) {
        match info {
            Info::Pod(p) => {
                self.pods.remove(&pod_key(&p));
                self.bury(p);
            }
            Info::Service(s) => {
                self.services.remove(&(s.namespace, s.name));
            }
            Info::Node(n) => {
                self.nodes.remove(&n.name);
            }
            Info::Controller(c) => self.owners.remove(&c),
        }
    }

    fn bury(&mut self, pod: PodInfo) {
        let now = wall_ns();
        self.tombstones.push_back((pod, now));
        let horizon = now - TOMBSTONE_NS;
        while self.tombstones.len() > TOMBSTONES
            || self.tombstones.front().is_some_and(|(_, at)| *at < horizon)
        {
            self.tombstones.pop_front();
        }
    }

    /// A watch listed its kind afresh: what it lists is all there is of that kind. Pods that
    /// went away while the watch was down become tombstones.
    fn replace(&mut self, kind: &str, all: Vec<Info>) {
        match kind {
            "Pod" => {
                let mut fresh = HashMap::with_capacity(all.len());
                for info in all {
                    if let Info::Pod(p) = info {
                        fresh.insert(pod_key(&p), p);
                    }
                }
                let old = std::mem::replace(&mut self.pods, fresh);
                for (key, pod) in old {
                    if !self.pods.contains_key(&key) {
                        self.bury(pod);
                    }
                }
            }
            "Service" => {
                self.services.clear();
                all.into_iter().for_each(|i| self.apply(i));
            }
            "Node" => {
                self.nodes.clear();
                all.into_iter().for_each(|i| self.apply(i));
            }
            _ => {
                let controllers = all.into_iter().filter_map(|i| match i {
                    Info::Controller(c) => Some(c),
                    _ => None,
                });
                self.owners.replace_kind(kind, controllers.collect());
            }
        }
    }

    fn index(&self) -> Index {
        let live = self.pods.values().map(|p| (p, None));
        let gone = self.tombstones.iter().map(|(p, t)| (p, Some(*t)));
        Index::from_parts(
            live.chain(gone),
            self.services.values(),
            self.nodes.values(),
            &self.owners,
        )
    }
}

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
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
}

/// Watches every object of kind `K` (metadata only when `META`), applying each change to the
/// shared state as it arrives.
fn watch<K, const META: bool>(client: &Client, shared: &Shared, plural: &'static str)
where
    K: k8s_openapi::Resource + Clone + std::fmt::Debug + Send + 'static,
{
    let api: Api<Lean<K, META>> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let (state, changed) = (Arc::clone(&shared.state), Arc::clone(&shared.changed));
    let reports = shared.reports.clone();
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
            let Ok(mut s) = state.lock() else { return };
            match event {
                watcher::Event::Init => pending.clear(),
                watcher::Event::InitApply(o) => pending.extend(o.into_info()),
                watcher::Event::InitDone => {
                    s.replace(K::KIND, std::mem::take(&mut pending));
                    if !listed {
                        listed = true;
                        let _ = reports.send(Report::Listed);
                    }
                }
                watcher::Event::Apply(o) => {
                    if let Some(info) = o.into_info() {
                        s.apply(info);
                    }
                }
                watcher::Event::Delete(o) => {
                    if let Some(info) = o.into_info() {
                        s.delete(info);
                    }
                }
            }
            drop(s);
            changed.notify_one();
        }
    });
}

/// The watches `start` opens: pods, services and nodes in full (cut down as they arrive), the
/// controllers of the owner chain as metadata only.
pub const WATCHES: usize = 9;

/// Starts the watches on the current runtime; waits until every kind is listed once, then
/// returns the first index and a channel of newer ones. The first watch that fails before its
/// kind is listed ends the start with its kind and cause.
pub async fn start(client: Client) -> Result<(Arc<Index>, mpsc::Receiver<Arc<Index>>), String> {
    let (reports, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Shared {
        state: Arc::default(),
        changed: Arc::new(Notify::new()),
        reports,
    };
    watch::<Pod, false>(&client, &shared, "pods");
    watch::<Service, false>(&client, &shared, "services");
    watch::<Node, false>(&client, &shared, "nodes");
    watch::<ReplicaSet, true>(&client, &shared, "replicasets");
    watch::<Deployment, true>(&client, &shared, "deployments");
    watch::<StatefulSet, true>(&client, &shared, "statefulsets");
    watch::<DaemonSet, true>(&client, &shared, "daemonsets");
    watch::<Job, true>(&client, &shared, "jobs");
    watch::<CronJob, true>(&client, &shared, "cronjobs");
    let Shared { state, changed, .. } = shared;
    let listed = async {
        let mut n = 0;
        while n < WATCHES {
            match rx.recv().await {
                Some(Report::Listed) => n += 1,
                Some(Report::Failed(plural, why)) => return Err(format!("list {plural}: {why}")),
                None => return Err("a watch ended before listing its objects".to_string()),
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
    let build = move || state.lock().map(|s| Arc::new(s.index())).ok();
    let first = build().ok_or("the watches' state is poisoned")?;
    let (tx, rx) = mpsc::channel();
    tokio::spawn(async move {
        loop {
            changed.notified().await;
            // Debounce: a rollout changes many objects at once.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(ix) = build() else { return };
            if tx.send(ix).is_err() {
                return;
            }
        }
    });
    Ok((first, rx))
}
