//! The fake `helm` (a Python script beside this file): where it is, and what it was asked to do.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The folder holding the fake `helm` executable (prepend it to PATH, or point KOVENANT_HELM at
/// `helm` in it).
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake_helm")
}

/// One recorded call: its arguments and the content of its values files.
#[derive(Debug, Clone)]
pub struct Call {
    pub argv: Vec<String>,
    pub values: Vec<String>,
    pub env: Value,
}

impl Call {
    /// The first words, e.g. `["upgrade", "--install", "kovenant-grafana"]` -> "upgrade".
    pub fn verb(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// Reads the call log.
pub fn calls(log: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line in the fake helm log");
            Call {
                argv: v["argv"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                values: v["values"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, c)| c.as_str().map(str::to_owned))
                    .collect(),
                env: v["env"].clone(),
            }
        })
        .collect()
}

/// The release names of the `upgrade` calls, in order.
pub fn upgrades(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.verb() == "upgrade")
        .map(|c| c.argv[2].clone())
        .collect()
}

/// Forgets the repositories helm was given, keeping the releases: the same cluster seen from a
/// machine that has never run `helm repo add` (helm keeps releases in the cluster, repositories
/// on the machine).
pub fn forget_repos(state_dir: &Path) {
    let path = state_dir.join("state.json");
    let text = std::fs::read_to_string(&path).expect("the fake helm's state");
    let mut state: Value = serde_json::from_str(&text).expect("JSON state");
    state["repos"] = serde_json::json!({});
    std::fs::write(&path, state.to_string()).expect("write the fake helm's state");
}

/// A release's status and revision in the fake helm's storage (`ns/name`), if it exists.
pub fn release(state_dir: &Path, key: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(state_dir.join("state.json")).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    let r = &state["releases"][key];
    Some((r["status"].as_str()?.to_string(), r["revision"].as_u64()?))
}
