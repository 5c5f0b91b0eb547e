//! `kovenant uninstall`: remove, in reverse order, only what install created or its releases own.
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret};
use kube::api::{Api, DeleteParams, ListParams};

use crate::backend::kube::{Kube, describe, is_not_found};
use crate::cli::{GlobalArgs, UninstallArgs};
use crate::cluster::wait::Deadline;
use crate::cluster::{lease, session, tracing_policy_gvk, wait};
use crate::error::{Error, Result};
use crate::plan::names::POLICY_KIND;
use crate::plan::steps::{DASHBOARD_LABEL, MANAGED_BY, MANAGED_SELECTOR, release};
use crate::ui::Printer;
use crate::ui::progress::Step;

/// One thing to remove, in the order of removal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Object {
        kind: &'static str,
        namespace: Option<String>,
        name: String,
    },
    Release {
        namespace: String,
        name: String,
    },
}

impl Item {
    fn label(&self) -> String {
        match self {
            Item::Object {
                kind,
                namespace: Some(ns),
                name,
            } => format!("{kind} {ns}/{name}"),
            Item::Object {
                kind,
                namespace: None,
                name,
            } => format!("{kind} {name}"),
            Item::Release { namespace, name } => format!("helm release {namespace}/{name}"),
        }
    }
}

fn names<K: kube::Resource>(list: Vec<K>) -> Vec<String> {
    list.iter().filter_map(|o| o.meta().name.clone()).collect()
}

fn err(what: &str) -> impl Fn(kube::Error) -> Error + '_ {
    move |e| Error::step(format!("list {what}"), describe(&e))
}

/// What uninstall removes, and what it leaves without `--purge` (InfluxDB's volume, the
/// credentials its data answers to, the namespace), so a run can say both.
#[derive(Debug, Default)]
struct Inventory {
    remove: Vec<Item>,
    kept: Vec<Item>,
}

async fn inventory(
    kube: &Kube,
    helm: &crate::backend::helm::Helm,
    config: &crate::config::Config,
    args: &UninstallArgs,
) -> Result<Inventory> {
    let ns = config.namespace.as_str();
    let c = kube.client.clone();
    let mut items = Vec::new();
    let mut kept = Vec::new();
    let obj = |kind, namespace: Option<&str>, name: String| Item::Object {
        kind,
        namespace: namespace.map(str::to_owned),
        name,
    };
    let dash = ListParams::default().labels(&format!(
        "{MANAGED_SELECTOR},{}={}",
        DASHBOARD_LABEL.0, DASHBOARD_LABEL.1
    ));
    let cms = Api::<ConfigMap>::namespaced(c.clone(), ns)
        .list(&dash)
        .await;
    match cms {
        Ok(l) => items.extend(
            names(l.items)
                .into_iter()
                .map(|n| obj("ConfigMap", Some(ns), n)),
        ),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(err("dashboards")(e)),
    }
    if let Some(ar) = kube
        .resource(&tracing_policy_gvk())
        .await
        .map_err(|e| Error::step(format!("discover {POLICY_KIND}"), e))?
    {
        let list = kube
            .list(&ar, None, MANAGED_SELECTOR)
            .await
            .map_err(|e| Error::step("list TracingPolicies", e))?;
        items.extend(
            list.into_iter()
                .filter_map(|o| o.metadata.name)
                .map(|n| obj(POLICY_KIND, None, n)),
        );
    }
    let mut ours = vec![
        (ns, release::PIPELINE),
        (ns, release::GRAFANA),
        (ns, release::PROMETHEUS),
    ];
    // A Tetragon kovenant did not install (KOVENANT_TETRAGON=existing, or a user's release of
    // the same name) is never removed.
    if !args.keep_tetragon && !config.existing_tetragon {
        let found = super::coexist::tetragons(kube, helm, config)
            .await
            .map_err(|e| Error::step("list Tetragon DaemonSets", e))?;
        let theirs = found.iter().any(|t| {
            !t.ours
                && t.namespace == config.tetragon_namespace
                && t.release.as_deref() == Some(release::TETRAGON)
        });
        if !theirs {
            ours.push((config.tetragon_namespace.as_str(), release::TETRAGON));
        }
    }
    let mut namespaces: Vec<&str> = ours.iter().map(|(rns, _)| *rns).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let lists = futures::future::try_join_all(namespaces.iter().map(|rns| helm.list(rns))).await?;
    let listed: std::collections::BTreeMap<&str, Vec<crate::backend::helm::Release>> =
        namespaces.into_iter().zip(lists).collect();
    for (rns, name) in &ours {
        if listed[rns].iter().any(|r| r.name == *name) {
            items.push(Item::Release {
                namespace: rns.to_string(),
                name: name.to_string(),
            });
        }
    }
    let managed = ListParams::default().labels(MANAGED_SELECTOR);
    match Api::<Secret>::namespaced(c.clone(), ns)
        .list(&managed)
        .await
    {
        Ok(l) => {
            for n in names(l.items) {
                // InfluxDB's volume outlives an uninstall without --purge, and its data answers
                // only the operator token it was set up with: that Secret stays with the volume,
                // so the next install finds both.
                let keep = !args.purge && n == crate::plan::secrets::INFLUXDB_SECRET;
                let item = obj("Secret", Some(ns), n);
                if keep {
                    kept.push(item)
                } else {
                    items.push(item)
                }
            }
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(err("Secrets")(e)),
    }
    {
        // Claims of the charts' own volumes carry their release's instance label; those of
        // InfluxDB's StatefulSet (a volumeClaimTemplate) carry part-of=kovenant instead.
        let selectors = [
            format!(
                "app.kubernetes.io/instance in ({},{},{})",
                release::PIPELINE,
                release::GRAFANA,
                release::PROMETHEUS
            ),
            "app.kubernetes.io/part-of=kovenant".to_string(),
        ];
        let mut claims = Vec::new();
        for sel in &selectors {
            match Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns)
                .list(&ListParams::default().labels(sel))
                .await
            {
                Ok(l) => claims.extend(names(l.items)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(err("PersistentVolumeClaims")(e)),
            }
        }
        claims.sort();
        claims.dedup();
        let claims = claims
            .into_iter()
            .map(|n| obj("PersistentVolumeClaim", Some(ns), n));
        if args.purge {
            items.extend(claims);
        } else {
            kept.extend(claims);
        }
        let nsobj = Api::<Namespace>::all(c)
            .get_opt(ns)
            .await
            .map_err(err("namespaces"))?;
        let created_by_us = nsobj
            .and_then(|n| n.metadata.labels)
            .is_some_and(|l| l.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1));
        if created_by_us {
            let namespace = obj("Namespace", None, ns.to_string());
            if args.purge {
                items.push(namespace);
            } else {
                kept.push(namespace);
            }
        }
    }
    Ok(Inventory {
        remove: items,
        kept,
    })
}

/// "kept (`--purge` removes them): ..." for what stays, or `None` when nothing does.
fn kept_line(kept: &[Item]) -> Option<String> {
    (!kept.is_empty()).then(|| {
        let list: Vec<String> = kept.iter().map(Item::label).collect();
        format!(
            "kept: {} (InfluxDB's data, the credentials it answers to, and their namespace; \
             `kovenant uninstall --purge` removes them)",
            list.join(", ")
        )
    })
}

async fn remove(
    kube: &Kube,
    helm: &crate::backend::helm::Helm,
    item: &Item,
    deadline: Deadline,
) -> Result<bool> {
    let c = kube.client.clone();
    let dp = DeleteParams::background();
    let gone = |r: std::result::Result<(), kube::Error>| match r {
        Ok(()) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::step(
            format!("delete {}", item.label()),
            describe(&e),
        )),
    };
    match item {
        Item::Release { namespace, name } => helm.uninstall(name, namespace, deadline.left()).await,
        Item::Object {
            kind: POLICY_KIND,
            name,
            ..
        } => {
            match kube
                .resource(&tracing_policy_gvk())
                .await
                .map_err(|e| Error::step(format!("discover {POLICY_KIND}"), e))?
            {
                Some(ar) => kube
                    .delete(&ar, None, name)
                    .await
                    .map_err(|e| Error::step(format!("delete {}", item.label()), e)),
                None => Ok(false),
            }
        }
        Item::Object {
            kind,
            namespace,
            name,
        } => {
            let ns = namespace.as_deref().unwrap_or_default();
            gone(match *kind {
                "ConfigMap" => Api::<ConfigMap>::namespaced(c, ns)
                    .delete(name, &dp)
                    .await
                    .map(drop),
                "Secret" => Api::<Secret>::namespaced(c, ns)
                    .delete(name, &dp)
                    .await
                    .map(drop),
                "PersistentVolumeClaim" => Api::<PersistentVolumeClaim>::namespaced(c, ns)
                    .delete(name, &dp)
                    .await
                    .map(drop),
                _ => Api::<Namespace>::all(c).delete(name, &dp).await.map(drop),
            })
        }
    }
}

/// `--timeout` bounds the whole run (but the time the user takes to answer the prompt).
pub async fn run(global: &GlobalArgs, args: &UninstallArgs, printer: &Printer) -> Result<()> {
    let deadline = Deadline::after(args.timeout);
    deadline
        .bound(
            "uninstall",
            wait::HELM_OVERRUN,
            within(global, args, printer, deadline),
            || session::probe(global),
        )
        .await
}

async fn within(
    global: &GlobalArgs,
    args: &UninstallArgs,
    printer: &Printer,
    deadline: Deadline,
) -> Result<()> {
    let config = session::config(global, &args.env, printer)?;
    let helm = session::helm(global, &config);
    helm.stop_at(move || deadline.at());
    let kube = session::connect(global).await?;
    helm.version().await?;
    // The same lock install takes: no release is removed under a run that is changing it.
    let mut locked = vec![config.namespace.as_str()];
    if !args.keep_tetragon {
        locked.push(&config.tetragon_namespace);
    }
    let take = if args.force_unlock {
        lease::Take::Force
    } else if args.no_lock_wait {
        lease::Take::Refuse
    } else {
        lease::Take::Wait
    };
    lease::acquire(&kube, &locked, "uninstall", take, deadline, printer).await?;
    let Inventory {
        remove: items,
        kept,
    } = inventory(&kube, &helm, &config, args).await?;
    if items.is_empty() {
        printer.success(format!(
            "nothing to remove: no release, policy or dashboard of kovenant in context {}",
            kube.context
        ));
        if let Some(line) = kept_line(&kept) {
            printer.info(line);
        }
        return Ok(());
    }
    printer.info(format!(
        "Will remove from context {} ({}):",
        kube.context, kube.server
    ));
    for i in &items {
        printer.info(format!("  {}", i.label()));
    }
    if let Some(line) = kept_line(&kept) {
        printer.info(line);
    }
    let question = "Remove these?";
    let asked = std::time::Instant::now();
    let answer = crate::ui::prompt::confirm(printer, question, args.yes).await;
    wait::paused(asked.elapsed());
    if !answer? {
        // A "no" is the user's answer, not a failure: exit 0 (README, exit codes).
        printer.always("cancelled: nothing was removed");
        return Ok(());
    }
    for i in &items {
        let step = Step::wait(printer, format!("Removing {}", i.label()));
        match remove(&kube, &helm, i, deadline).await {
            Ok(true) => step.finish_as(format!("{} removed", i.label())),
            Ok(false) => step.finish_as(format!("{} already absent", i.label())),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
    }
    // The namespace is Terminating until its content is finalized: an install started before
    // it is gone could not create its Secrets.
    if let Some(Item::Object {
        kind: "Namespace",
        name,
        ..
    }) = items.last()
    {
        let step = Step::start(printer, format!("Waiting for namespace {name} to be gone"));
        match wait::namespace_gone(&kube, name, deadline.left()).await {
            Ok(()) => step.finish_as(format!("namespace {name} is gone")),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
    }
    printer.success("kovenant is uninstalled");
    Ok(())
}
