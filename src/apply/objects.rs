//! Objects kovenant applies itself (TracingPolicies, dashboard ConfigMaps): server-side apply with
//! field manager `kovenant`, previewed by a server-side dry run.
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::Change;
use crate::backend::kube::Kube;
use crate::error::{Error, Result};
use crate::plan::names;
use crate::plan::steps::{MANAGED_BY, ObjectStep};

fn gvk(step: &ObjectStep) -> GroupVersionKind {
    let (group, version) = match step.api_version().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", step.api_version()),
    };
    GroupVersionKind::gvk(group, version, step.kind())
}

/// Its display name: `TracingPolicy kovenant-tcp`, `ConfigMap kovenant/kovenant-dashboard-x`.
pub fn label(step: &ObjectStep) -> String {
    match step.namespace() {
        Some(ns) => format!("{} {ns}/{}", step.kind(), step.name()),
        None => format!("{} {}", step.kind(), step.name()),
    }
}

/// The served resource; `None` when the API does not serve the kind yet (CRD not installed).
pub async fn resource(kube: &Kube, step: &ObjectStep) -> Result<Option<ApiResource>> {
    kube.resource(&gvk(step))
        .await
        .map_err(|e| Error::step(format!("discover {}", step.kind()), e))
}

fn dynamic(step: &ObjectStep) -> Result<DynamicObject> {
    serde_json::from_value(step.object.clone())
        .map_err(|e| Error::step(label(step), format!("not a Kubernetes object: {e}")))
}

/// The parts of an object that say what it is, without what the server adds on each write.
fn essence(obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            meta.remove(k);
        }
    }
    v
}

/// Create, Update or Unchanged, by asking the server what an apply would produce.
pub async fn preview(kube: &Kube, step: &ObjectStep) -> Result<Change> {
    let Some(ar) = resource(kube, step).await? else {
        return Ok(Change::Create);
    };
    let existing = kube
        .get(&ar, step.namespace(), step.name())
        .await
        .map_err(|e| Error::step(format!("get {}", label(step)), e))?;
    let Some(existing) = existing else {
        // A namespace that does not exist yet makes the dry run fail; the object is new either way.
        return Ok(Change::Create);
    };
    let after = kube
        .apply(&ar, &dynamic(step)?, true)
        .await
        .map_err(|e| Error::step(format!("dry-run apply {}", label(step)), e))?;
    Ok(if essence(&after) == essence(&existing) {
        Change::Unchanged
    } else {
        Change::Update
    })
}

/// Applies when the preview says it changes; unchanged objects are not written at all.
pub async fn apply(kube: &Kube, step: &ObjectStep) -> Result<Change> {
    let change = preview(kube, step).await?;
    if change == Change::Unchanged {
        return Ok(change);
    }
    let ar = resource(kube, step).await?.ok_or_else(|| {
        Error::step(
            label(step),
            format!("the API server does not serve {}", step.api_version()),
        )
        .with_hint(format!(
            "is Tetragon installed? its CRD {} defines {}",
            names::POLICY_CRD,
            names::POLICY_KIND
        ))
    })?;
    kube.apply(&ar, &dynamic(step)?, false)
        .await
        .map_err(|e| Error::step(format!("apply {}", label(step)), e))?;
    Ok(change)
}

/// `Delete` when a retired object is still there and kovenant made it (its `managed-by` label);
/// anything else, including an object of that name that someone else made, is left alone.
pub async fn preview_retired(kube: &Kube, step: &ObjectStep) -> Result<Change> {
    let Some(ar) = resource(kube, step).await? else {
        return Ok(Change::Unchanged);
    };
    let existing = kube
        .get(&ar, step.namespace(), step.name())
        .await
        .map_err(|e| Error::step(format!("get {}", label(step)), e))?;
    let ours = existing.is_some_and(|o| {
        o.metadata
            .labels
            .is_some_and(|l| l.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1))
    });
    Ok(if ours {
        Change::Delete
    } else {
        Change::Unchanged
    })
}

/// Deletes a retired object; already gone is done.
pub async fn delete_retired(kube: &Kube, step: &ObjectStep) -> Result<()> {
    if let Some(ar) = resource(kube, step).await? {
        kube.delete(&ar, step.namespace(), step.name())
            .await
            .map_err(|e| Error::step(format!("delete {}", label(step)), e))?;
    }
    Ok(())
}
