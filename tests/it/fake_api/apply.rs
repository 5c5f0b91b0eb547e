//! Server-side apply as the API server does it, to the degree kovenant relies on: create or merge,
//! field ownership per manager (fields a manager stops applying are removed), conflicts with other
//! managers unless `force`, managedFields in the result.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

pub type Path = Vec<String>;
pub type Owners = BTreeMap<String, (String, BTreeSet<Path>)>;

/// Leaf paths of an applied configuration (maps recurse; lists and scalars are leaves), without
/// the identity fields every object carries.
pub fn leaves(v: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out.retain(|p| {
        let first = p.first().map(String::as_str);
        let identity = matches!(first, Some("apiVersion" | "kind" | "status"));
        let meta_kept = first != Some("metadata")
            || matches!(p.get(1).map(String::as_str), Some("labels" | "annotations"));
        !identity && meta_kept
    });
    out
}

fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn set(v: &mut Value, path: &[String], value: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        if !cur.get(k).is_some_and(Value::is_object) {
            cur[k.as_str()] = json!({});
        }
        cur = &mut cur[k.as_str()];
    }
    cur[path[path.len() - 1].as_str()] = value;
}

fn unset(v: &mut Value, path: &[String]) {
    let (last, parents) = match path.split_last() {
        Some(x) => x,
        None => return,
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Applies `config` as `manager` onto `current` (None: create). Returns the new object and
/// ownership, or the conflict message.
pub fn apply(
    current: Option<&Value>,
    owners: &Owners,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<(Value, Owners), String> {
    let applied = leaves(config);
    let mut obj = current.cloned().unwrap_or_else(|| {
        json!({"apiVersion": config["apiVersion"], "kind": config["kind"], "metadata": {
            "name": config["metadata"]["name"], "namespace": config["metadata"]["namespace"]}})
    });
    if obj["metadata"]["namespace"].is_null()
        && let Some(m) = obj["metadata"].as_object_mut()
    {
        m.remove("namespace");
    }
    let mut owners = owners.clone();
    let mut conflicts = Vec::new();
    for path in &applied {
        let new = get(config, path);
        for (other, (_, fields)) in owners.iter_mut().filter(|(m, _)| m.as_str() != manager) {
            if fields.contains(path) && get(&obj, path) != new {
                if force {
                    fields.remove(path);
                } else {
                    conflicts.push(format!("conflict with \"{other}\": .{}", path.join(".")));
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(format!(
            "Apply failed with {} conflict(s): {}",
            conflicts.len(),
            conflicts.join("; ")
        ));
    }
    let previous = owners
        .get(manager)
        .map(|(_, f)| f.clone())
        .unwrap_or_default();
    for path in previous.difference(&applied) {
        let shared = owners
            .iter()
            .any(|(m, (_, f))| m != manager && f.contains(path));
        if !shared {
            unset(&mut obj, path);
        }
    }
    for path in &applied {
        if let Some(v) = get(config, path) {
            set(&mut obj, path, v.clone());
        }
    }
    owners.insert(manager.to_string(), ("Apply".into(), applied));
    owners.retain(|_, (_, f)| !f.is_empty());
    Ok((obj, owners))
}

/// `metadata.managedFields` in the API's FieldsV1 shape.
pub fn managed_fields(owners: &Owners, api_version: &Value) -> Value {
    let entries: Vec<Value> = owners
        .iter()
        .map(|(manager, (op, fields))| {
            let mut tree = Map::new();
            for path in fields {
                let mut cur = &mut tree;
                for k in path {
                    let entry = cur.entry(format!("f:{k}")).or_insert_with(|| json!({}));
                    cur = match entry.as_object_mut() {
                        Some(m) => m,
                        None => break,
                    };
                }
            }
            json!({"manager": manager, "operation": op, "apiVersion": api_version,
                   "fieldsType": "FieldsV1", "fieldsV1": tree})
        })
        .collect();
    Value::Array(entries)
}
