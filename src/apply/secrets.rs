//! Namespaces (with their Pod Security label) and credentials: created when absent, generated
//! once, never rotated.
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rand::RngExt;
use rand::distr::Alphanumeric;

use super::Change;
use crate::backend::kube::{Kube, describe};
use crate::error::{Error, Result};
use crate::plan::steps::{MANAGED_BY, SecretStep};

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])
}

/// Whether the namespace must be created, or its `labels` (the Pod Security level) set.
pub async fn preview_namespace(
    kube: &Kube,
    name: &str,
    labels: &[(String, String)],
) -> Result<Change> {
    let api: Api<Namespace> = Api::all(kube.client.clone());
    match api.get_opt(name).await {
        Ok(Some(ns)) if missing_labels(&ns, labels).is_empty() => Ok(Change::Unchanged),
        Ok(Some(_)) => Ok(Change::Update),
        Ok(None) => Ok(Change::Create),
        Err(e) => Err(Error::step(format!("get namespace {name}"), describe(&e))),
    }
}

fn missing_labels(ns: &Namespace, labels: &[(String, String)]) -> BTreeMap<String, String> {
    let have = ns.metadata.labels.clone().unwrap_or_default();
    labels
        .iter()
        .filter(|(k, v)| have.get(k) != Some(v))
        .cloned()
        .collect()
}

/// Creates the namespace with kovenant's labels, or sets those labels on it when they differ
/// (a merge patch of just those keys: the user's other labels stay).
pub async fn ensure_namespace(
    kube: &Kube,
    name: &str,
    labels: &[(String, String)],
) -> Result<Change> {
    let api: Api<Namespace> = Api::all(kube.client.clone());
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| Error::step(format!("get namespace {name}"), describe(&e)))?;
    if let Some(ns) = existing {
        let missing = missing_labels(&ns, labels);
        if missing.is_empty() {
            return Ok(Change::Unchanged);
        }
        let patch = serde_json::json!({"metadata": {"labels": missing}});
        return match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Change::Update),
            Err(e) => Err(Error::step(format!("label namespace {name}"), describe(&e))),
        };
    }
    let mut all = managed_labels();
    all.extend(labels.iter().cloned());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(all),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(Change::Create),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Change::Unchanged),
        Err(e) => Err(Error::step(
            format!("create namespace {name}"),
            describe(&e),
        )),
    }
}

/// The keys to write: given values that differ, and absent keys (generated). Existing generated
/// values are kept, so a re-install never rotates them.
fn missing(step: &SecretStep, existing: Option<&Secret>) -> BTreeMap<String, ByteString> {
    let data = existing.and_then(|s| s.data.clone()).unwrap_or_default();
    let mut out = BTreeMap::new();
    for k in &step.keys {
        let current = data.get(k.key);
        let wanted = match (&k.value, current) {
            (Some(v), Some(cur)) if cur.0 == v.expose().as_bytes() => continue,
            (Some(v), _) => v.expose().as_bytes().to_vec(),
            (None, Some(_)) => continue,
            (None, None) => generate().into_bytes(),
        };
        out.insert(k.key.to_string(), ByteString(wanted));
    }
    out
}

fn generate() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn get(kube: &Kube, step: &SecretStep) -> Result<Option<Secret>> {
    let api: Api<Secret> = Api::namespaced(kube.client.clone(), &step.namespace);
    match api.get_opt(step.name).await {
        Ok(s) => Ok(s),
        // The namespace does not exist yet: neither does the Secret.
        Err(e) if crate::backend::kube::is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::step(
            format!("get Secret {}/{}", step.namespace, step.name),
            describe(&e),
        )),
    }
}

pub async fn preview(kube: &Kube, step: &SecretStep) -> Result<Change> {
    let existing = get(kube, step).await?;
    Ok(
        match (&existing, missing(step, existing.as_ref()).is_empty()) {
            (None, _) => Change::Create,
            (Some(_), true) => Change::Unchanged,
            (Some(_), false) => Change::Update,
        },
    )
}

pub async fn ensure(kube: &Kube, step: &SecretStep) -> Result<Change> {
    let existing = get(kube, step).await?;
    let data = missing(step, existing.as_ref());
    let what = format!("Secret {}/{}", step.namespace, step.name);
    let api: Api<Secret> = Api::namespaced(kube.client.clone(), &step.namespace);
    if existing.is_none() {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(step.name.into()),
                namespace: Some(step.namespace.clone()),
                labels: Some(managed_labels()),
                ..Default::default()
            },
            data: Some(data),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &secret)
            .await
            .map_err(|e| Error::step(format!("create {what}"), describe(&e)))?;
        return Ok(Change::Create);
    }
    if data.is_empty() {
        return Ok(Change::Unchanged);
    }
    let patch = serde_json::json!({ "data": data });
    api.patch(step.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::step(format!("update {what}"), describe(&e)))?;
    Ok(Change::Update)
}
