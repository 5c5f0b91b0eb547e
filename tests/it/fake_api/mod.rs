//! A stateful fake Kubernetes API server speaking the real API over plain HTTP on loopback, for
//! the real kube client inside the real binary: discovery (CRDs included once created), CRUD,
//! server-side apply with field managers and dry run, label/field selectors, watch,
//! SelfSubjectAccessReview, pod logs and the service proxy. Tests inspect and seed its state.
#![allow(dead_code)]

mod apply;
mod discovery;
mod handler;
mod http;
mod portforward;
mod proxy;
mod selector;
mod store;
mod subresources;
mod verbs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

pub use proxy::http_request;
use store::Store;

/// A stand-in HTTP service on loopback answering `path` with a JSON body (e.g. Grafana's
/// `/api/health`), 404 otherwise; returns its base URL.
pub fn stand_in(path: &'static str, body: &'static str) -> String {
    let routes: &'static [(&'static str, u16, &'static str)] =
        Box::leak(Box::new([(path, 200, body)]));
    stand_in_routes(routes)
}

/// A stand-in answering each `(path, status, JSON body)`, 404 otherwise; returns its base URL.
pub fn stand_in_routes(routes: &'static [(&'static str, u16, &'static str)]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a stand-in");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    http::serve(
        listener,
        Arc::new(move |_m: &str, target: &str, _ct: &str, _b: &[u8]| {
            let p = target.split('?').next().unwrap_or_default();
            match routes.iter().find(|(path, _, _)| *path == p) {
                Some((_, code, body)) => handler::Reply {
                    status: *code,
                    content_type: "application/json",
                    body: handler::Body::Bytes(body.as_bytes().to_vec()),
                },
                None => handler::status(404, "NotFound", "no such path"),
            }
        }),
    );
    url
}

pub struct FakeApi {
    pub url: String,
    state: Arc<Mutex<Store>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let state = Arc::new(Mutex::new(Store::new()));
        let st = state.clone();
        http::serve(
            listener,
            Arc::new(move |method: &str, target: &str, ct: &str, body: &[u8]| {
                handler::handle(&st, method, target, ct, body)
            }),
        );
        FakeApi { url, state }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a kubeconfig whose context `fake` points at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            self.url
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Sends a request as a client would (seeding, inspecting): `(status, JSON body)`.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let out = handler::handle(&self.state, method, path, "application/json", &bytes);
        let v = match out.body {
            handler::Body::Bytes(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            handler::Body::Watch(..) | handler::Body::Upgrade(_) => Value::Null,
        };
        (out.status, v)
    }

    pub fn create(&self, collection: &str, obj: Value) {
        let (code, body) = self.request("POST", collection, Some(&obj));
        assert!(code < 300, "seeding {collection}: {code} {body}");
    }

    /// The object at an API path, if it exists.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.request("GET", path, None) {
            (200, v) => Some(v),
            _ => None,
        }
    }

    /// Changes an object in place (e.g. its status), as a controller would.
    pub fn update(&self, path: &str, change: impl FnOnce(&mut Value)) {
        let mut obj = self
            .get(path)
            .unwrap_or_else(|| panic!("no object at {path}"));
        change(&mut obj);
        let (code, body) = self.request("PUT", path, Some(&obj));
        assert!(code < 300, "updating {path}: {code} {body}");
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.store().objects.values().cloned().collect()
    }

    /// Mutating requests that changed state, as `VERB path`, since the last `take_writes`.
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut self.store().writes)
    }

    pub fn deny(&self, verb: &str, resource: &str) {
        self.store().denied.push((verb.into(), resource.into()));
    }

    /// From now on a deleted namespace stays `Terminating` this long before it is gone.
    pub fn set_namespace_grace(&self, grace: std::time::Duration) {
        self.store().namespace_grace = Some(grace);
    }

    /// Ends a namespace's termination now (the next request finds it gone).
    pub fn finish_terminating(&self, ns: &str) {
        if let Some(at) = self.store().terminating.get_mut(ns) {
            *at = std::time::Instant::now();
        }
    }

    pub fn set_minor_version(&self, minor: u32) {
        self.store().minor = minor;
    }

    /// The log of one container of a pod: of its current run, or (`previous`) of the last one.
    pub fn set_log(&self, ns: &str, pod: &str, container: &str, previous: bool, text: &str) {
        self.store().logs.insert(
            (ns.into(), pod.into(), container.into(), previous),
            text.into(),
        );
    }

    /// Routes port-forwards to `ns/pod:port` to a local `host:port`.
    pub fn port_forward(&self, ns: &str, pod: &str, port: u16, target: &str) {
        self.store()
            .port_forwards
            .insert((ns.into(), pod.into(), port), target.into());
    }

    /// Routes the service proxy for `ns/service:port` to a local base URL.
    pub fn proxy(&self, ns: &str, service: &str, port: u16, base: &str) {
        self.store()
            .proxies
            .insert((ns.into(), service.into(), port.to_string()), base.into());
    }
}
