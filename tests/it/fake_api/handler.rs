//! Request handling: path parsing, then get/list/watch/create/replace/patch/delete on the store.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::store::{Key, Res, Store, Watcher};
use super::{apply, discovery, proxy, selector};

pub enum Body {
    Bytes(Vec<u8>),
    /// A watch: events until the sender side goes away or the timeout passes.
    Watch(std::sync::mpsc::Receiver<Vec<u8>>, std::time::Duration),
}

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
}

fn reply(status: u16, v: Value) -> Reply {
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

fn not_found(res: &str, name: &str) -> Reply {
    status(404, "NotFound", &format!("{res} \"{name}\" not found"))
}

/// What a resource path names.
struct Target {
    res: Res,
    namespace: Option<String>,
    name: Option<String>,
    sub: Vec<String>,
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

fn key(t: &Target, name: &str) -> Key {
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

fn parse_body(body: &[u8]) -> Result<Value, Reply> {
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
        ("GET", Some(name), Some("log")) if kind == "pods" => {
            let ns = t.namespace.clone().unwrap_or_default();
            if !store.objects.contains_key(&key(t, name)) {
                return not_found("pods", name);
            }
            let text = store
                .logs
                .get(&(ns, name.clone()))
                .cloned()
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let n = q
                .get("tailLines")
                .and_then(|v| v.parse().ok())
                .unwrap_or(lines.len());
            let tail = lines[lines.len().saturating_sub(n)..].join("\n");
            Reply {
                status: 200,
                content_type: "text/plain",
                body: Body::Bytes(tail.into_bytes()),
            }
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
            let Ok(mut review) = parse_body(body) else {
                return status(400, "BadRequest", "bad review");
            };
            let attrs = &review["spec"]["resourceAttributes"];
            let pair = (
                attrs["verb"].as_str().unwrap_or_default().to_string(),
                attrs["resource"].as_str().unwrap_or_default().to_string(),
            );
            review["status"] = json!({"allowed": !store.denied.contains(&pair)});
            reply(201, review)
        }
        ("POST", None, _) => {
            let obj = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(r) = check_namespace(store, t) {
                return r;
            }
            if store.objects.contains_key(&key(t, &name)) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{kind} \"{name}\" already exists"),
                );
            }
            write(
                store,
                t,
                &name,
                obj,
                q.get("fieldManager").map_or("unknown", String::as_str),
                dry_run,
                201,
            )
        }
        ("PUT", Some(name), _) => {
            let obj = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let Some(cur) = store.objects.get(&key(t, name)) else {
                return not_found(kind, name);
            };
            let want = obj["metadata"]["resourceVersion"].as_str();
            if want.is_some_and(|w| Some(w) != cur["metadata"]["resourceVersion"].as_str()) {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified"
                    ),
                );
            }
            write(
                store,
                t,
                name,
                obj,
                q.get("fieldManager").map_or("unknown", String::as_str),
                dry_run,
                200,
            )
        }
        ("PATCH", Some(name), _) if content_type.starts_with("application/apply-patch") => {
            let config = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let Some(manager) = q.get("fieldManager") else {
                return status(
                    400,
                    "BadRequest",
                    "fieldManager is required for apply requests",
                );
            };
            if let Some(r) = check_namespace(store, t) {
                return r;
            }
            let k = key(t, name);
            let owners = store.managed.get(&k).cloned().unwrap_or_default();
            let force = q.get("force").is_some_and(|f| f == "true");
            match apply::apply(store.objects.get(&k), &owners, &config, manager, force) {
                Ok((mut obj, owners)) => {
                    let existed = store.objects.contains_key(&k);
                    obj["metadata"]["managedFields"] =
                        apply::managed_fields(&owners, &config["apiVersion"]);
                    if dry_run {
                        let mut shown = obj;
                        if let Some(cur) = store.objects.get(&k) {
                            for f in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
                                shown["metadata"][f] = cur["metadata"][f].clone();
                            }
                        }
                        return reply(if existed { 200 } else { 201 }, shown);
                    }
                    if store.objects.get(&k) == Some(&obj) {
                        return reply(200, obj);
                    }
                    store.managed.insert(k.clone(), owners);
                    reply(
                        if existed { 200 } else { 201 },
                        store.insert(k, obj, "apply"),
                    )
                }
                Err(msg) => status(409, "Conflict", &msg),
            }
        }
        ("PATCH", Some(name), _) => {
            let patch = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let Some(mut obj) = store.objects.get(&key(t, name)).cloned() else {
                return not_found(kind, name);
            };
            merge(&mut obj, &patch);
            write(
                store,
                t,
                name,
                obj,
                q.get("fieldManager").map_or("unknown", String::as_str),
                dry_run,
                200,
            )
        }
        ("DELETE", Some(name), _) => match if dry_run {
            store.objects.get(&key(t, name)).cloned()
        } else {
            store.remove(&key(t, name))
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

fn clone_target(t: &Target) -> Target {
    Target {
        res: t.res.clone(),
        namespace: t.namespace.clone(),
        name: t.name.clone(),
        sub: t.sub.clone(),
    }
}

fn check_namespace(store: &Store, t: &Target) -> Option<Reply> {
    let ns = t.namespace.as_deref().filter(|_| t.res.namespaced)?;
    (!store.namespace_exists(ns)).then(|| not_found("namespaces", ns))
}

/// JSON merge patch (RFC 7386).
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn write(
    store: &mut Store,
    t: &Target,
    name: &str,
    mut obj: Value,
    manager: &str,
    dry_run: bool,
    code: u16,
) -> Reply {
    obj["apiVersion"] = json!(t.res.api_version());
    obj["kind"] = json!(t.res.kind);
    if t.res.namespaced {
        obj["metadata"]["namespace"] = json!(t.namespace.clone().unwrap_or_default());
    }
    if dry_run {
        return reply(code, obj);
    }
    let k = key(t, name);
    let mut owners = store.managed.get(&k).cloned().unwrap_or_default();
    owners.insert(manager.to_string(), ("Update".into(), apply::leaves(&obj)));
    obj["metadata"]["managedFields"] = apply::managed_fields(&owners, &obj["apiVersion"]);
    store.managed.insert(k.clone(), owners);
    reply(code, store.insert(k, obj, "write"))
}

fn matching<'a>(store: &'a Store, t: &Target, q: &BTreeMap<String, String>) -> Vec<&'a Value> {
    store
        .objects
        .iter()
        .filter(|((g, p, ns, _), _)| {
            *g == t.res.group && *p == t.res.plural && t.namespace.as_ref().is_none_or(|n| n == ns)
        })
        .map(|(_, o)| o)
        .filter(|o| {
            q.get("labelSelector")
                .is_none_or(|s| selector::labels_match(s, o))
        })
        .filter(|o| {
            q.get("fieldSelector")
                .is_none_or(|s| selector::fields_match(s, o))
        })
        .collect()
}

fn list(store: &Store, t: &Target, q: &BTreeMap<String, String>) -> Value {
    let items: Vec<Value> = matching(store, t, q).into_iter().cloned().collect();
    json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(),
           "metadata": {"resourceVersion": store.rv.to_string()}, "items": items})
}

fn watch(store: &mut Store, t: &Target, q: &BTreeMap<String, String>) -> Reply {
    let (tx, rx) = std::sync::mpsc::channel();
    // Without a resourceVersion (or with 0) a watch starts with the current objects.
    if q.get("resourceVersion")
        .is_none_or(|rv| rv == "0" || rv.is_empty())
    {
        for o in matching(store, t, q) {
            let _ = tx.send(format!("{}\n", json!({"type": "ADDED", "object": o})).into_bytes());
        }
    }
    let secs = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    store.watchers.push(Watcher {
        group: t.res.group.clone(),
        plural: t.res.plural.clone(),
        namespace: t.namespace.clone(),
        labels: q.get("labelSelector").cloned(),
        fields: q.get("fieldSelector").cloned(),
        tx,
    });
    Reply {
        status: 200,
        content_type: "application/json",
        body: Body::Watch(rx, std::time::Duration::from_secs(secs)),
    }
}
