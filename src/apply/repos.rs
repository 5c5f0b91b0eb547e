//! Chart repositories: added under kovenant's names and updated once per install, before the
//! first helm call that reads a chart from them (a diff of an existing release, or an upgrade).
use crate::backend::helm::Helm;
use crate::error::Result;
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

/// `helm repo add --force-update` for each repository of the selected releases, then one
/// `helm repo update` of those names (never the user's other repositories).
pub async fn update(helm: &Helm, plan: &Plan, printer: &Printer) -> Result<()> {
    let repos = plan.repos();
    let step = Step::start(printer, "Updating chart repositories");
    let out = async {
        for (name, url) in &repos {
            helm.repo_add(name, url).await?;
        }
        let names: Vec<&str> = repos.iter().map(|(n, _)| *n).collect();
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
