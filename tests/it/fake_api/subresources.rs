//! The requests that are not reads or writes of objects: a pod's log, an access review.
use std::collections::BTreeMap;

use serde_json::json;

use super::handler::{Body, Reply, Target, key, not_found, parse_body, reply, status};
use super::store::Store;

/// `pods/NAME/log`, honouring `container`, `previous` and `tailLines`. Like the API server, a pod
/// with more than one container needs `container`.
pub fn pod_log(store: &Store, t: &Target, name: &str, q: &BTreeMap<String, String>) -> Reply {
    let ns = t.namespace.clone().unwrap_or_default();
    let Some(pod) = store.objects.get(&key(t, name)) else {
        return not_found("pods", name);
    };
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match (q.get("container"), containers.as_slice()) {
        (Some(c), _) if containers.contains(&c.as_str()) => c.clone(),
        (Some(c), _) => {
            let message = format!("container {c} is not valid for pod {name}");
            return status(400, "BadRequest", &message);
        }
        (None, [only]) => only.to_string(),
        (None, _) => {
            let message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            return status(400, "BadRequest", &message);
        }
    };
    let previous = q.get("previous").is_some_and(|v| v == "true");
    let text = store
        .logs
        .get(&(ns, name.to_string(), container, previous))
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

/// A SelfSubjectAccessReview: allowed unless the test denied that verb on that resource.
pub fn access_review(store: &Store, body: &[u8]) -> Reply {
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
