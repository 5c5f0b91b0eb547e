//! A release a helm left pending (killed, or the machine lost power, mid-operation): helm refuses
//! to upgrade it ("another operation (install/upgrade/rollback) is in progress") until something
//! records an outcome. kovenant does that with the helm CLI alone, then upgrades as usual.
use crate::backend::helm::{Helm, Release};
use crate::error::Result;
use crate::ui::Printer;

/// How a pending release is unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlock {
    /// `helm rollback` to the previous revision (helm's rollback does not refuse a pending
    /// release), which records a new, deployed revision.
    Rollback,
    /// `helm uninstall`: a first install has no revision to roll back to; the upgrade then
    /// installs it afresh.
    Uninstall,
}

/// Whether (and how) a release must be unlocked before `helm upgrade` will take it.
pub fn needed(release: &Release) -> Option<Unlock> {
    let revision: u32 = release.revision.parse().unwrap_or(0);
    match release.status.as_str() {
        "pending-install" => Some(Unlock::Uninstall),
        "pending-upgrade" | "pending-rollback" if revision > 1 => Some(Unlock::Rollback),
        "pending-upgrade" | "pending-rollback" => Some(Unlock::Uninstall),
        _ => None,
    }
}

/// What the preview says it will do.
pub fn describe(release: &Release, how: Unlock) -> String {
    let then = match how {
        Unlock::Rollback => "roll it back, then upgrade",
        Unlock::Uninstall => "uninstall it, then install",
    };
    format!(
        "left {} at revision {} by a helm that did not finish: kovenant will {then}",
        release.status, release.revision
    )
}

/// Unlocks the release, saying what it did.
pub async fn run(
    helm: &Helm,
    release: &Release,
    how: Unlock,
    timeout: std::time::Duration,
    printer: &Printer,
) -> Result<()> {
    let (name, ns) = (release.name.as_str(), release.namespace.as_str());
    let what = format!(
        "release {ns}/{name} was left {} at revision {} by a helm that did not finish",
        release.status, release.revision
    );
    match how {
        Unlock::Rollback => {
            if let Err(e) = helm.rollback(name, ns).await {
                // A rollback that fails still records its revision as failed, which unlocks the
                // release as well; only a release still pending is an error.
                let still = helm.list(ns).await?;
                if still
                    .iter()
                    .any(|r| r.name == name && r.status.starts_with("pending-"))
                {
                    return Err(e.with_hint(format!(
                        "helm history {name} -n {ns}; helm rollback {name} -n {ns} records \
                         an outcome so that helm upgrades it again"
                    )));
                }
            }
            let previous = release
                .revision
                .parse::<u32>()
                .unwrap_or(1)
                .saturating_sub(1);
            printer.warn(format!(
                "{what}; kovenant rolled it back to revision {previous} to unlock it, and upgrades it now"
            ));
        }
        Unlock::Uninstall => {
            helm.uninstall(name, ns, timeout).await.map_err(|e| {
                e.with_hint(format!(
                    "helm uninstall {name} -n {ns} removes the half-installed release"
                ))
            })?;
            printer.warn(format!(
                "{what}; kovenant uninstalled it (there is no earlier revision to roll back to) and installs it again now"
            ));
        }
    }
    Ok(())
}
