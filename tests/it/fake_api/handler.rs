//! Request handling: path parsing, then get/list/watch/create/replace/patch/delete on the store.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::store::{Key, Res, Store};
use super::verbs::{clone_target, create, list, merge_patch, replace, server_side_apply, watch};
use super::{discovery, portforward, proxy, subresources};

pub enum Body {
    Bytes(Vec<u8>),
    /// A watch: events until the sender side goes away or the timeout passes.
    Watch(std::sync::mpsc::Receiver<Vec<u8>>, std::time::Duration),
    /// A WebSocket: after the `101 Switching Protocols`, the connection is this function's.
    Upgrade(Box<dyn FnOnce(std::net::TcpStream) + Send>),
}

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
}

pub(super) fn reply(status: u16, v: Value) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: Body::Bytes(v.to_string().into_bytes()),
    }
}

pub fn status(code: u16, reason: &str, message: &str) -> Reply {
    reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}),
    )
}

pub(super) fn not_found(res: &str, name: &str) -> Reply {
    status(404, "NotFound", &format!("{res} \"{name}\" not found"))
}

/// What a resource path names.
pub(super) struct Target {
    pub res: Res,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Vec<String>,
}

fn parse_path(store: &Store, path: &str) -> Result<Target, Reply> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => {
            (Some(ns.to_string()), [&[*plural][..], rest].concat())
        }
        other => (None, other.to_vec()),
    };
    let plural = rest.first().copied().unwrap_or_default();
    let res = store.find(group, version, plural).ok_or_else(|| {
        status(
            404,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({group}/{version} {plural})"
            ),
        )
    })?;
    Ok(Target {
        res,
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.iter().skip(2).map(|s| s.to_string()).collect(),
    })
}

pub(super) fn key(t: &Target, name: &str) -> Key {
    let ns = if t.res.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    (
        t.res.group.clone(),
        t.res.plural.clone(),
        ns,
        name.to_string(),
    )
}

pub(super) fn parse_body(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| status(400, "BadRequest", &format!("cannot decode body: {e}")))
}

pub fn handle(
    shared: &Arc<Mutex<Store>>,
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut store = match shared.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    match path.trim_end_matches('/') {
        "/version" => return reply(200, discovery::version(&store)),
        "/api" => return reply(200, discovery::core_versions()),
        "/apis" => return reply(200, discovery::groups(&store)),
        p => {
            let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
            let gv = match segs.as_slice() {
                ["api", v] => Some(("", *v)),
                ["apis", g, v] => Some((*g, *v)),
                _ => None,
            };
            if let Some((g, v)) = gv {
                return match discovery::resources(&store, g, v) {
                    Some(doc) => reply(200, doc),
                    None => status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                };
            }
        }
    }
    store.finish_terminations();
    let t = match parse_path(&store, path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let mutating = !matches!(method, "GET");
    let out = route(
        &mut store,
        shared,
        method,
        &t,
        &q,
        content_type,
        body,
        dry_run,
    );
    if mutating && !dry_run && out.status < 300 && t.res.plural != "selfsubjectaccessreviews" {
        store.writes.push(format!("{method} {path}"));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn route(
    store: &mut Store,
    shared: &Arc<Mutex<Store>>,
    method: &str,
    t: &Target,
    q: &BTreeMap<String, String>,
    content_type: &str,
    body: &[u8],
    dry_run: bool,
) -> Reply {
    let kind = &t.res.plural;
    match (method, &t.name, t.sub.first().map(String::as_str)) {
        ("GET", Some(name), Some("proxy")) if kind == "services" => proxy::forward(
            store,
            t.namespace.as_deref().unwrap_or_default(),
            name,
            &t.sub[1..],
            q,
            shared,
        ),
        ("GET", Some(name), Some("portforward")) if kind == "pods" => {
            portforward::open(store, t.namespace.as_deref().unwrap_or_default(), name, q)
        }
        ("GET", Some(name), Some("log")) if kind == "pods" => {
            subresources::pod_log(store, t, name, q)
        }
        ("GET", Some(name), _) => match store.objects.get(&key(t, name)) {
            Some(o) => reply(200, o.clone()),
            None => not_found(kind, name),
        },
        ("GET", None, _) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(store, t, q)
        }
        ("GET", None, _) => reply(200, list(store, t, q)),
        ("POST", None, _) if kind == "selfsubjectaccessreviews" => {
            subresources::access_review(store, body)
        }
        ("POST", None, _) => create(store, t, q, body, dry_run),
        ("PUT", Some(name), _) => replace(store, t, name, q, body, dry_run),
        ("PATCH", Some(name), _) if content_type.starts_with("application/apply-patch") => {
            server_side_apply(store, t, name, q, body, dry_run)
        }
        ("PATCH", Some(name), _) => merge_patch(store, t, name, q, body, dry_run),
        ("DELETE", Some(name), _) => match match store.namespace_grace {
            _ if dry_run => store.objects.get(&key(t, name)).cloned(),
            Some(grace) if kind == "namespaces" && t.res.group.is_empty() => {
                store.terminate_namespace(&key(t, name), grace)
            }
            _ => store.remove(&key(t, name)),
        } {
            Some(o) => reply(200, o),
            None => not_found(kind, name),
        },
        ("DELETE", None, _) => {
            let items = list(store, t, q)["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for o in &items {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                if !dry_run {
                    store.remove(&key(
                        &Target {
                            namespace: o["metadata"]["namespace"].as_str().map(str::to_owned),
                            ..clone_target(t)
                        },
                        name,
                    ));
                }
            }
            reply(
                200,
                json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(), "metadata": {}, "items": items}),
            )
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("{method} is not supported here"),
        ),
    }
}
