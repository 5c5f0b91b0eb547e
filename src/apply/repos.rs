//! Chart repositories: added under kovenant's names, and fetched only when helm's cache lacks
//! what the plan pins, before the first helm call that reads a chart from them (a diff of an
//! existing release, or an upgrade).
//!
//! Every chart version is pinned, so a cached index that lists it is as good as a fresh one: a
//! re-run does not re-fetch three indexes (`helm repo update` is the slowest call of a no-op
//! install against a remote repository). A repository that is missing or points elsewhere is
//! added (`helm repo add` fetches its index); one whose cached index lacks the pinned version is
//! updated.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::helm::Helm;
use crate::error::{Error, Result};
use crate::plan::steps::{Chart, Plan, ReleaseStep};
use crate::ui::Printer;
use crate::ui::progress::Step;

use super::preview::Existing;

/// Whether the preview needs the repositories: a release from one already exists, so helm-diff
/// reads its chart (a new release is not diffed).
pub fn needed_for_diff(plan: &Plan, existing: &Existing) -> bool {
    plan.releases
        .iter()
        .any(|r| from_repo(r) && existing.get(r).is_some())
}

/// Whether a release's chart comes from a repository (not kovenant's own chart).
pub fn from_repo(r: &ReleaseStep) -> bool {
    matches!(r.chart, Chart::Repo { .. })
}

/// What helm's configuration and cache lack of the plan's repositories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// Repositories helm does not have under that name and URL: `helm repo add --force-update`.
    pub add: Vec<(String, String)>,
    /// Repositories whose cached index does not list a pinned chart version: `helm repo update`.
    pub update: Vec<String>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty()
    }
}

/// Reads, without touching the network, what helm has of the plan's repositories (`helm env`
/// says where its repositories file and index cache are).
pub async fn check(helm: &Helm, plan: &Plan) -> Result<Missing> {
    let wanted = wanted(plan);
    if wanted.is_empty() {
        return Ok(Missing::default());
    }
    let env = helm.env().await?;
    let setting = |name: &str| {
        env.get(name).map(PathBuf::from).ok_or_else(|| {
            Error::step("helm env", format!("{name} is not in its output"))
                .with_hint("check that KOVENANT_HELM names helm 3 or 4")
        })
    };
    let config = setting("HELM_REPOSITORY_CONFIG")?;
    let cache = setting("HELM_REPOSITORY_CACHE")?;
    tokio::task::spawn_blocking(move || missing(&config, &cache, &wanted))
        .await
        .map_err(|e| Error::step("chart repositories", e.to_string()))?
}

/// Adds and updates what [`check`] found missing; nothing when nothing is.
pub async fn fetch(helm: &Helm, missing: &Missing, printer: &Printer) -> Result<()> {
    if missing.is_empty() {
        printer.debug("chart repositories: helm's cached indexes list every pinned chart version");
        return Ok(());
    }
    let mut names: Vec<&str> = missing.add.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(missing.update.iter().map(String::as_str));
    let step = Step::start(
        printer,
        format!("Fetching chart repositories {}", names.join(", ")),
    );
    let out = async {
        let adds = missing
            .add
            .iter()
            .map(|(name, url)| helm.repo_add(name, url));
        futures::future::try_join_all(adds).await?;
        if missing.update.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.update.iter().map(String::as_str).collect();
        helm.repo_update(&names).await
    }
    .await;
    match out {
        Ok(()) => {
            step.finish("done");
            Ok(())
        }
        Err(e) => {
            step.fail();
            Err(e)
        }
    }
}

/// A repository of the plan: its name, URL, and the (chart, version) pairs pinned from it.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    url: String,
    pins: Vec<(String, String)>,
}

fn wanted(plan: &Plan) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    for r in &plan.releases {
        let Chart::Repo {
            repo,
            url,
            chart,
            version,
        } = &r.chart
        else {
            continue;
        };
        let pin = (chart.clone(), version.clone());
        match out.iter_mut().find(|w| &w.name == repo) {
            Some(w) => w.pins.push(pin),
            None => out.push(Wanted {
                name: repo.clone(),
                url: url.clone(),
                pins: vec![pin],
            }),
        }
    }
    out
}

#[derive(Deserialize, Default)]
struct RepoFile {
    #[serde(default)]
    repositories: Vec<RepoEntry>,
}

#[derive(Deserialize)]
struct RepoEntry {
    name: String,
    url: String,
}

/// The part of a repository index kovenant reads: each chart's versions.
#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    entries: HashMap<String, Vec<IndexEntry>>,
}

#[derive(Deserialize)]
struct IndexEntry {
    version: String,
}

fn missing(config: &Path, cache: &Path, wanted: &[Wanted]) -> Result<Missing> {
    let known: BTreeMap<String, String> = match std::fs::read(config) {
        Ok(bytes) => serde_yaml::from_slice::<Option<RepoFile>>(&bytes)
            .map_err(|e| {
                Error::step(
                    format!("reading {}", config.display()),
                    format!("not a helm repositories file: {e}"),
                )
                .with_hint("fix or remove that file (helm repo list shows what helm reads)")
            })?
            .unwrap_or_default()
            .repositories
            .into_iter()
            .map(|r| (r.name, r.url))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(Error::io("reading", config, e)),
    };
    let same_url = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let mut out = Missing::default();
    for Wanted { name, url, pins } in wanted {
        if !known.get(name).is_some_and(|u| same_url(u, url)) {
            out.add.push((name.clone(), url.clone()));
        } else if !index_lists(&cache.join(format!("{name}-index.yaml")), pins) {
            out.update.push(name.clone());
        }
    }
    Ok(out)
}

/// Whether a cached index lists every pinned (chart, version); an absent or unreadable index
/// does not (helm fetches it again).
fn index_lists(path: &Path, pins: &[(String, String)]) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Ok(index) = serde_yaml::from_slice::<Index>(&bytes) else {
        return false;
    };
    pins.iter().all(|(chart, version)| {
        index.entries.get(chart).is_some_and(|versions| {
            versions
                .iter()
                .any(|v| v.version.trim_start_matches('v') == version.trim_start_matches('v'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Vec<Wanted> {
        let repo = |name: &str, url: &str, chart: &str, version: &str| Wanted {
            name: name.into(),
            url: url.into(),
            pins: vec![(chart.into(), version.into())],
        };
        vec![
            repo(
                "kovenant-grafana",
                "http://127.0.0.1:1/charts",
                "grafana",
                "12.11.1",
            ),
            repo("kovenant-cilium", "http://127.0.0.1:2", "tetragon", "1.7.0"),
        ]
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn nothing_known_adds_every_repository() {
        let dir = tempfile::tempdir().unwrap();
        let m = missing(&dir.path().join("none.yaml"), dir.path(), &wanted()).unwrap();
        assert_eq!(
            m.add,
            vec![
                (
                    "kovenant-grafana".into(),
                    "http://127.0.0.1:1/charts".into()
                ),
                ("kovenant-cilium".into(), "http://127.0.0.1:2".into())
            ]
        );
        assert!(m.update.is_empty());
    }

    #[test]
    fn a_cached_index_with_the_pinned_version_needs_nothing_and_others_are_fetched() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "repositories.yaml",
            "apiVersion: ''\nrepositories:\n- name: kovenant-grafana\n  url: http://127.0.0.1:1/charts/\n  username: ''\n- name: kovenant-cilium\n  url: http://127.0.0.1:2\n",
        );
        write(
            dir.path(),
            "kovenant-grafana-index.yaml",
            "apiVersion: v1\nentries:\n  grafana:\n  - version: 12.11.0\n    urls: [a]\n  - version: 12.11.1\n    digest: x\n",
        );
        write(
            dir.path(),
            "kovenant-cilium-index.yaml",
            "apiVersion: v1\nentries:\n  tetragon:\n  - version: 1.6.0\n",
        );
        let config = dir.path().join("repositories.yaml");
        let m = missing(&config, dir.path(), &wanted()).unwrap();
        assert_eq!(
            m,
            Missing {
                add: vec![],
                update: vec!["kovenant-cilium".into()],
            }
        );
        // Another URL under kovenant's name is re-added (which fetches its index).
        write(
            dir.path(),
            "repositories.yaml",
            "repositories:\n- name: kovenant-grafana\n  url: http://elsewhere/\n",
        );
        let m = missing(&config, dir.path(), &wanted()).unwrap();
        assert_eq!(
            m.add,
            vec![
                (
                    "kovenant-grafana".into(),
                    "http://127.0.0.1:1/charts".into()
                ),
                ("kovenant-cilium".into(), "http://127.0.0.1:2".into())
            ]
        );
    }

    #[test]
    fn a_garbled_repositories_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "repositories.yaml", "repositories: [:\n");
        let e = missing(&dir.path().join("repositories.yaml"), dir.path(), &wanted())
            .unwrap_err()
            .to_string();
        assert!(e.contains("repositories.yaml"), "{e}");
        assert!(e.contains("not a helm repositories file"), "{e}");
    }
}
