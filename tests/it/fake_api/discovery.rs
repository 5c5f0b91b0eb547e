//! Discovery documents (/version, /api, /apis, /api/v1, /apis/G/V) built from the served resources.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::store::Store;

pub fn version(store: &Store) -> Value {
    json!({
        "major": "1", "minor": store.minor.to_string(),
        "gitVersion": format!("v1.{}.4", store.minor), "gitCommit": "fake", "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

pub fn groups(store: &Store) -> Value {
    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in store
        .resources()
        .into_iter()
        .filter(|r| !r.group.is_empty())
    {
        let versions = by_group.entry(r.group.clone()).or_default();
        if !versions.contains(&r.version) {
            versions.push(r.version.clone());
        }
    }
    let groups: Vec<Value> = by_group
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The resource list of one group version; `None` when nothing is served there.
pub fn resources(store: &Store, group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = store
        .resources()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| {
            let verbs = if r.plural == "selfsubjectaccessreviews" {
                json!(["create"])
            } else {
                json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"])
            };
            let singular = r.kind.to_lowercase();
            let mut out = vec![json!({"name": r.plural, "singularName": singular, "namespaced": r.namespaced,
                                       "kind": r.kind, "verbs": verbs})];
            for sub in match r.plural.as_str() { "pods" => vec!["log", "status"], "services" => vec!["proxy"], _ => vec!["status"] } {
                out.push(json!({"name": format!("{}/{sub}", r.plural), "singularName": "", "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": ["get"]}));
            }
            out
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}
