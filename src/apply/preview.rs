//! The preview: what each step of the plan would change, from helm-diff and server-side dry runs.
use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use super::diff;
use super::objects;
use super::secrets;
use crate::backend::helm::{Diff, Helm, Release};
use crate::backend::kube::Kube;
use crate::cli::DiffMode;
use crate::error::Result;
use crate::plan::steps::{Chart, Plan, ReleaseStep};
use crate::ui::Printer;

/// What a step does to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Unchanged,
    /// A retired object that is still there.
    Delete,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
            Change::Delete => "delete",
        })
    }
}

/// One change per step of the plan, index for index.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub namespaces: Vec<Change>,
    pub secrets: Vec<Change>,
    pub releases: Vec<Change>,
    pub objects: Vec<Change>,
    /// `Delete` for each retired object still in the cluster, else `Unchanged`.
    pub retired: Vec<Change>,
    /// helm-diff's output for releases that change.
    pub diffs: BTreeMap<String, String>,
    /// Releases a helm left pending, and how converge unlocks them first.
    pub pending: BTreeMap<String, String>,
}

impl Preview {
    pub fn is_noop(&self) -> bool {
        [
            &self.namespaces,
            &self.secrets,
            &self.releases,
            &self.objects,
            &self.retired,
        ]
        .iter()
        .all(|v| v.iter().all(|c| *c == Change::Unchanged))
    }
}

/// The releases helm already has in the plan's namespaces (any status), listed once.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    by_namespace: BTreeMap<String, Vec<Release>>,
}

impl Existing {
    /// `helm list` of every namespace a release of the plan lives in.
    pub async fn list(helm: &Helm, plan: &Plan) -> Result<Existing> {
        let mut namespaces: Vec<&str> =
            plan.releases.iter().map(|r| r.namespace.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let lists =
            futures::future::try_join_all(namespaces.iter().map(|ns| helm.list(ns))).await?;
        let by_namespace = namespaces
            .iter()
            .map(|ns| ns.to_string())
            .zip(lists)
            .collect();
        Ok(Existing { by_namespace })
    }

    /// helm's record of a release of the plan, when it exists.
    pub fn get(&self, step: &ReleaseStep) -> Option<&Release> {
        self.by_namespace
            .get(&step.namespace)
            .and_then(|l| l.iter().find(|x| x.name == step.name))
    }
}

/// The chart argument helm takes for a release.
pub fn chart_arg(step: &ReleaseStep, tree: &std::path::Path) -> (String, Option<String>) {
    match &step.chart {
        Chart::Repo {
            repo,
            chart,
            version,
            ..
        } => (format!("{repo}/{chart}"), Some(version.clone())),
        Chart::Local { dir } => (tree.join(dir).to_string_lossy().into_owned(), None),
    }
}

/// Whether a release from a repository is exactly what helm last deployed: the same pinned
/// chart version and the same values, its last revision deployed. Rendering is a function of
/// the chart, the values and the cluster's capabilities, so helm-diff would find nothing
/// either; skipping it saves a render of the chart (about 1.3 s of a core each) on a no-op
/// install, as the Terraform helm provider compares values and chart version instead of
/// rendering. kovenant's own chart is always diffed: its templates can change under one version
/// (`--assets`). What this does not see is a cluster upgrade that changes what a chart renders
/// (a `.Capabilities` check); any change to the configuration or the chart version diffs again.
async fn same_as_deployed(
    helm: &Helm,
    step: &ReleaseStep,
    existing: &Release,
    values_file: &std::path::Path,
) -> Result<bool> {
    let Chart::Repo { chart, version, .. } = &step.chart else {
        return Ok(false);
    };
    if existing.status != "deployed" || existing.chart != format!("{chart}-{version}") {
        return Ok(false);
    }
    let ours: serde_json::Value = match std::fs::read(values_file)
        .ok()
        .and_then(|b| serde_yaml::from_slice(&b).ok())
    {
        Some(v) => v,
        None => return Ok(false),
    };
    Ok(helm.values(&step.name, &step.namespace).await? == ours)
}

/// A release is skipped only when it is what helm last deployed (see [`same_as_deployed`]) or
/// helm-diff sees no change, and its last revision is deployed (a failed revision is retried).
pub async fn release(
    helm: &Helm,
    step: &ReleaseStep,
    existing: Option<&Release>,
    tree: &std::path::Path,
) -> Result<(Change, Option<String>)> {
    let Some(existing) = existing else {
        return Ok((Change::Create, None));
    };
    let (chart, version) = chart_arg(step, tree);
    let values = tree.join(&step.values);
    if same_as_deployed(helm, step, existing, &values).await? {
        return Ok((Change::Unchanged, None));
    }
    let args = crate::backend::helm::ChartArgs {
        release: &step.name,
        namespace: &step.namespace,
        chart: &chart,
        version: version.as_deref(),
        values: &values,
    };
    Ok(match helm.diff(&args).await? {
        Diff::Unchanged if existing.status == "deployed" => (Change::Unchanged, None),
        Diff::Unchanged => (Change::Update, None),
        Diff::Changed(text) => (Change::Update, Some(text)),
    })
}

/// Computes the whole preview from what helm has (`existing`); no change is made to the cluster.
pub async fn run(
    kube: &Kube,
    helm: &Helm,
    plan: &Plan,
    existing: &Existing,
    tree: &std::path::Path,
) -> Result<Preview> {
    let mut p = Preview::default();
    for ns in &plan.namespaces {
        p.namespaces
            .push(secrets::preview_namespace(kube, ns, &plan.namespace_labels).await?);
    }
    for s in &plan.secrets {
        p.secrets.push(secrets::preview(kube, s).await?);
    }
    let futures = plan
        .releases
        .iter()
        .map(|r| release(helm, r, existing.get(r), tree));
    for (r, out) in plan
        .releases
        .iter()
        .zip(futures::future::join_all(futures).await)
    {
        let (mut change, diff) = out?;
        if let Some(existing) = existing.get(r)
            && let Some(how) = super::unlock::needed(existing)
        {
            p.pending
                .insert(r.name.clone(), super::unlock::describe(existing, how));
            // Uninstalled first, so installed afresh: the summary says "created", not "updated".
            if how == super::unlock::Unlock::Uninstall {
                change = Change::Create;
            }
        }
        p.releases.push(change);
        if let Some(d) = diff {
            p.diffs.insert(r.name.clone(), d);
        }
    }
    for o in &plan.objects {
        p.objects.push(objects::preview(kube, o).await?);
    }
    for o in &plan.retired {
        p.retired.push(objects::preview_retired(kube, o).await?);
    }
    Ok(p)
}

/// A release's helm-diff: every line (`full`), else a line per object and, unless `summary`,
/// each change with [`diff::CONTEXT`] lines around it.
fn print_diff(printer: &Printer, release: &str, text: &str, mode: DiffMode) {
    let objects = diff::parse(text);
    if mode == DiffMode::Full || objects.is_empty() {
        for line in text.lines() {
            printer.info(format!("      {line}"));
        }
        return;
    }
    for o in &objects {
        printer.info(format!("      {}", o.summary(release)));
        if mode == DiffMode::Context {
            for line in o.with_context(diff::CONTEXT) {
                printer.info(format!("          {line}"));
            }
        }
    }
}

/// The plan and its preview as JSON (`install --dry-run -o json`): every step with its change,
/// and each release's full helm-diff, to be saved and read later.
pub fn json(plan: &Plan, preview: Option<&Preview>) -> serde_json::Value {
    let change = |list: Option<&Vec<Change>>, i: usize| {
        list.and_then(|l| l.get(i))
            .map_or("apply".to_string(), |c| c.to_string())
    };
    let namespaces: Vec<_> = plan
        .namespaces
        .iter()
        .enumerate()
        .map(|(i, ns)| json!({"name": ns, "change": change(preview.map(|p| &p.namespaces), i)}))
        .collect();
    // Key names only: a Secret's values never leave the cluster.
    let secrets: Vec<_> = plan
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let keys: Vec<&str> = s.keys.iter().map(|k| k.key).collect();
            json!({
                "namespace": s.namespace,
                "name": s.name,
                "keys": keys,
                "change": change(preview.map(|p| &p.secrets), i),
            })
        })
        .collect();
    let releases: Vec<_> = plan
        .releases
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (repo, chart, version) = match &r.chart {
                Chart::Repo {
                    repo,
                    chart,
                    version,
                    ..
                } => (Some(repo.as_str()), chart.as_str(), Some(version.as_str())),
                Chart::Local { dir } => (None, dir.as_str(), None),
            };
            let text = preview.and_then(|p| p.diffs.get(&r.name));
            let objects: Vec<_> = text
                .map(|t| diff::parse(t))
                .unwrap_or_default()
                .iter()
                .map(|o| {
                    let (added, removed) = o.counts();
                    json!({
                        "namespace": o.namespace, "name": o.name, "kind": o.kind,
                        "change": o.change, "lines_added": added, "lines_removed": removed,
                    })
                })
                .collect();
            json!({
                "namespace": r.namespace,
                "name": r.name,
                "repo": repo,
                "chart": chart,
                "version": version,
                "change": change(preview.map(|p| &p.releases), i),
                "objects": objects,
                "diff": text,
            })
        })
        .collect();
    let objects: Vec<_> = plan
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "kind": o.kind(),
                "namespace": o.namespace(),
                "name": o.name(),
                "change": change(preview.map(|p| &p.objects), i),
            })
        })
        .collect();
    json!({
        "previewed": preview.is_some(),
        "namespaces": namespaces,
        "secrets": secrets,
        "releases": releases,
        "objects": objects,
    })
}

/// Prints the plan, with each step's change when a preview exists; a release's helm-diff as
/// `mode` says (one line per object, with its changes in context, or all of it).
pub fn print(printer: &Printer, plan: &Plan, preview: Option<&Preview>, mode: DiffMode) {
    let tag = |list: Option<&Vec<Change>>, i: usize| match list.and_then(|l| l.get(i)) {
        Some(c) => format!("{c:>9}"),
        None => format!("{:>9}", "apply"),
    };
    printer.info("Plan:");
    for (i, ns) in plan.namespaces.iter().enumerate() {
        printer.info(format!(
            "  {}  namespace {ns}",
            tag(preview.map(|p| &p.namespaces), i)
        ));
    }
    for (i, s) in plan.secrets.iter().enumerate() {
        let keys: Vec<String> = s
            .keys
            .iter()
            .map(|k| {
                if k.value.is_some() {
                    k.key.to_string()
                } else {
                    format!("{} (generated once)", k.key)
                }
            })
            .collect();
        printer.info(format!(
            "  {}  Secret {}/{} [{}]",
            tag(preview.map(|p| &p.secrets), i),
            s.namespace,
            s.name,
            keys.join(", ")
        ));
    }
    for (i, r) in plan.releases.iter().enumerate() {
        let chart = match &r.chart {
            Chart::Repo {
                repo,
                chart,
                version,
                ..
            } => format!("{repo}/{chart} {version}"),
            Chart::Local { dir } => format!("{dir} (embedded)"),
        };
        printer.info(format!(
            "  {}  helm release {}/{} ({chart}, values {})",
            tag(preview.map(|p| &p.releases), i),
            r.namespace,
            r.name,
            r.values
        ));
        if let Some(note) = preview.and_then(|p| p.pending.get(&r.name)) {
            printer.info(format!("      {note}"));
        }
        if let Some(text) = preview.and_then(|p| p.diffs.get(&r.name)) {
            print_diff(printer, &r.name, text, mode);
        }
    }
    for (i, o) in plan.objects.iter().enumerate() {
        printer.info(format!(
            "  {}  {}",
            tag(preview.map(|p| &p.objects), i),
            objects::label(o)
        ));
    }
    for (i, o) in plan.retired.iter().enumerate() {
        let line = match preview.map(|p| p.retired.get(i)) {
            None => format!(
                "{:>9}  {} (retired), if present",
                "delete",
                objects::label(o)
            ),
            Some(Some(Change::Delete)) => {
                format!("{:>9}  {} (retired)", "delete", objects::label(o))
            }
            Some(_) => continue,
        };
        printer.info(format!("  {line}"));
    }
}
