//! The verbs behind the routes: create/replace writes, merge patches, list with selectors, watch.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::apply;
use super::handler::{Body, Reply, Target, key, not_found, parse_body, reply, status};
use super::selector;
use super::store::{Store, Watcher};

pub fn clone_target(t: &Target) -> Target {
    Target {
        res: t.res.clone(),
        namespace: t.namespace.clone(),
        name: t.name.clone(),
        sub: t.sub.clone(),
    }
}

pub fn check_namespace(store: &Store, t: &Target) -> Option<Reply> {
    let ns = t.namespace.as_deref().filter(|_| t.res.namespaced)?;
    (!store.namespace_exists(ns)).then(|| not_found("namespaces", ns))
}

/// Like the API server (the NamespaceLifecycle admission plugin): nothing new in a namespace
/// that is being terminated.
pub fn check_not_terminating(store: &Store, t: &Target, name: &str) -> Option<Reply> {
    let ns = t.namespace.as_deref().filter(|_| t.res.namespaced)?;
    store.terminating.contains_key(ns).then(|| {
        let message = format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            t.res.plural
        );
        status(403, "Forbidden", &message)
    })
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

pub fn write(
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

pub fn list(store: &Store, t: &Target, q: &BTreeMap<String, String>) -> Value {
    let items: Vec<Value> = matching(store, t, q).into_iter().cloned().collect();
    json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(),
           "metadata": {"resourceVersion": store.rv.to_string()}, "items": items})
}

pub fn watch(store: &mut Store, t: &Target, q: &BTreeMap<String, String>) -> Reply {
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

/// Server-side apply: create or merge as field manager `fieldManager`, honouring `force` and
/// `dryRun`.
pub fn server_side_apply(
    store: &mut Store,
    t: &Target,
    name: &str,
    q: &BTreeMap<String, String>,
    body: &[u8],
    dry_run: bool,
) -> Reply {
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
    if !store.objects.contains_key(&k)
        && let Some(r) = check_not_terminating(store, t, name)
    {
        return r;
    }
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

/// PUT: replaces an object, refusing a stale `resourceVersion`.
pub fn replace(
    store: &mut Store,
    t: &Target,
    name: &str,
    q: &BTreeMap<String, String>,
    body: &[u8],
    dry_run: bool,
) -> Reply {
    let kind = &t.res.plural;
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
    write(store, t, name, obj, manager(q), dry_run, 200)
}

/// POST: creates an object, refusing one that exists.
pub fn create(
    store: &mut Store,
    t: &Target,
    q: &BTreeMap<String, String>,
    body: &[u8],
    dry_run: bool,
) -> Reply {
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
    if let Some(r) = check_not_terminating(store, t, &name) {
        return r;
    }
    if store.objects.contains_key(&key(t, &name)) {
        let kind = &t.res.plural;
        return status(
            409,
            "AlreadyExists",
            &format!("{kind} \"{name}\" already exists"),
        );
    }
    write(store, t, &name, obj, manager(q), dry_run, 201)
}

/// PATCH with a JSON merge patch.
pub fn merge_patch(
    store: &mut Store,
    t: &Target,
    name: &str,
    q: &BTreeMap<String, String>,
    body: &[u8],
    dry_run: bool,
) -> Reply {
    let patch = match parse_body(body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(mut obj) = store.objects.get(&key(t, name)).cloned() else {
        return not_found(&t.res.plural, name);
    };
    merge(&mut obj, &patch);
    write(store, t, name, obj, manager(q), dry_run, 200)
}

/// The field manager a write names (`unknown` when it names none, as the API server records).
fn manager(q: &BTreeMap<String, String>) -> &str {
    q.get("fieldManager").map_or("unknown", String::as_str)
}
