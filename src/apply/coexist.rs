//! What is already in the cluster that kovenant must live beside: a Tetragon it did not install,
//! a node-exporter holding the host port kovenant's would take, an ingress class that is not there.
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::api::{Api, ListParams};

use crate::backend::helm::Helm;
use crate::backend::kube::{Kube, describe};
use crate::config::Config;
use crate::plan::names;
use crate::ui::checks::Checklist;

/// The pod annotation kovenant's Tetragon values set: the mark of a Tetragon kovenant installed.
pub const OWNER_ANNOTATION: (&str, &str) = ("kovenant.io/installed-by", "kovenant");
/// kovenant's export deny list (templates/values/tetragon.yaml.tera): how a Tetragon installed
/// by a kovenant from before the owner mark is told from the user's own.
const KOVENANT_DENY_LIST: &str = r#"{"health_check":true}"#;
/// The label the Tetragon chart puts on its DaemonSet.
const TETRAGON_SELECTOR: &str = "app.kubernetes.io/name=tetragon";
const RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";

/// A Tetragon DaemonSet in the cluster, and whether kovenant installed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tetragon {
    pub namespace: String,
    pub daemonset: String,
    /// Its helm release, when helm made it.
    pub release: Option<String>,
    pub ours: bool,
}

impl Tetragon {
    pub fn describe(&self) -> String {
        match &self.release {
            Some(r) => format!(
                "DaemonSet {}/{} of helm release {r}",
                self.namespace, self.daemonset
            ),
            None => format!(
                "DaemonSet {}/{} (not from helm)",
                self.namespace, self.daemonset
            ),
        }
    }
}

/// Every Tetragon DaemonSet in the cluster. Kovenant's is its release in Tetragon's namespace
/// whose pods carry the owner mark, or (an install from before the mark) whose values hold
/// kovenant's export deny list.
pub async fn tetragons(k: &Kube, helm: &Helm, config: &Config) -> Result<Vec<Tetragon>, String> {
    let list = Api::<DaemonSet>::all(k.client.clone())
        .list(&ListParams::default().labels(TETRAGON_SELECTOR))
        .await
        .map_err(|e| describe(&e))?;
    let mut out = Vec::new();
    for ds in list.items {
        let namespace = ds.metadata.namespace.clone().unwrap_or_default();
        let release = ds
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RELEASE_ANNOTATION).cloned());
        let marked = ds
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| {
                a.get(OWNER_ANNOTATION.0).map(String::as_str) == Some(OWNER_ANNOTATION.1)
            });
        let ours_by_name = namespace == config.tetragon_namespace
            && release.as_deref() == Some(names::TETRAGON_RELEASE);
        let ours = ours_by_name
            && (marked
                || helm
                    .values(names::TETRAGON_RELEASE, &namespace)
                    .await
                    .is_ok_and(|v| v["tetragon"]["exportDenyList"] == KOVENANT_DENY_LIST));
        out.push(Tetragon {
            namespace,
            daemonset: ds.metadata.name.unwrap_or_default(),
            release,
            ours,
        });
    }
    Ok(out)
}

/// DaemonSets other than kovenant's own node-exporter whose pods take host port `port` (a
/// `hostPort`, or a container port on the host network): kovenant's node-exporter would never
/// start beside them. `namespace/name` each.
pub async fn host_port_holders(
    k: &Kube,
    config: &Config,
    port: u16,
) -> Result<Vec<String>, String> {
    let list = Api::<DaemonSet>::all(k.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| describe(&e))?;
    let port = i32::from(port);
    let mut out = Vec::new();
    for ds in list.items {
        let namespace = ds.metadata.namespace.clone().unwrap_or_default();
        let release = ds
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RELEASE_ANNOTATION).map(String::as_str));
        if namespace == config.namespace && release == Some(names::PROMETHEUS_RELEASE) {
            continue;
        }
        let Some(pod) = ds.spec.template.spec.as_ref() else {
            continue;
        };
        let host_network = pod.host_network == Some(true);
        let holds = pod.containers.iter().any(|c| {
            c.ports
                .iter()
                .flatten()
                .any(|p| p.host_port == Some(port) || (host_network && p.container_port == port))
        });
        if holds {
            out.push(format!(
                "{namespace}/{}",
                ds.metadata.name.unwrap_or_default()
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// Preflight's checks of what is already there.
pub async fn check(k: &Kube, helm: &Helm, config: &Config, list: &mut Checklist) {
    tetragon(k, helm, config, list).await;
    node_exporter(k, config, list).await;
    ingress_class(k, config, list).await;
    ingress_tls(k, config, list).await;
}

/// KOVENANT_INGRESS_TLS_SECRET (configuration already refused it without an https:// ingress):
/// an ingress controller serves only a `kubernetes.io/tls` Secret's `tls.crt` and `tls.key`, from
/// the ingress's own namespace. A Secret that is not there yet is a warning (cert-manager, say,
/// may make it); one of the wrong shape is refused.
async fn ingress_tls(k: &Kube, config: &Config, list: &mut Checklist) {
    let Some(name) = config
        .ingress_tls_secret
        .as_deref()
        .filter(|_| crate::plan::context::ingress_enabled(config))
    else {
        return;
    };
    let ns = config.namespace.as_str();
    let title = format!("the TLS Secret {ns}/{name} for Grafana's ingress");
    let create = format!("kubectl create secret tls {name} -n {ns} --cert=CERT.pem --key=KEY.pem");
    match Api::<Secret>::namespaced(k.client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(None) => list.warn(
            &title,
            "does not exist yet: until it does, the ingress controller serves its own default \
             certificate, which browsers refuse",
            &create,
        ),
        Ok(Some(s)) => {
            let kind = s.type_.clone().unwrap_or_else(|| "Opaque".into());
            let data = s.data.unwrap_or_default();
            let missing: Vec<&str> = ["tls.crt", "tls.key"]
                .into_iter()
                .filter(|key| !data.contains_key(*key))
                .collect();
            if kind == "kubernetes.io/tls" && missing.is_empty() {
                list.ok(&title, "kubernetes.io/tls");
            } else {
                let why = match missing.is_empty() {
                    true => String::new(),
                    false => format!(", without {}", missing.join(" and ")),
                };
                list.fail(
                    &title,
                    &format!(
                        "is of type {kind}{why}: an ingress controller serves only the tls.crt \
                         and tls.key of a kubernetes.io/tls Secret"
                    ),
                    &format!("recreate it: kubectl delete secret {name} -n {ns} && {create}"),
                );
            }
        }
        Err(e) => list.warn(
            &title,
            &describe(&e),
            &format!("kubectl get secret {name} -n {ns}"),
        ),
    }
}

async fn tetragon(k: &Kube, helm: &Helm, config: &Config, list: &mut Checklist) {
    let title = "no Tetragon that kovenant did not install";
    let found = match tetragons(k, helm, config).await {
        Ok(f) => f,
        Err(e) => {
            return list.warn(
                title,
                &e,
                "kubectl get daemonsets -A -l app.kubernetes.io/name=tetragon",
            );
        }
    };
    let foreign: Vec<String> = found
        .iter()
        .filter(|t| !t.ours)
        .map(Tetragon::describe)
        .collect();
    if config.existing_tetragon {
        let title = "an existing Tetragon to use (KOVENANT_TETRAGON=existing)";
        return match foreign.is_empty() {
            true => list.fail(
                title,
                "no Tetragon DaemonSet other than kovenant's is in the cluster",
                "install Tetragon first, or set KOVENANT_TETRAGON=install to let kovenant install it",
            ),
            false => list.ok(
                title,
                &format!("{}; kovenant neither upgrades nor removes it", foreign.join(", ")),
            ),
        };
    }
    if foreign.is_empty() {
        return list.ok(title, "");
    }
    list.fail(
        title,
        &format!(
            "{} is already running: kovenant would install a second one, or adopt and reconfigure \
             the user's release",
            foreign.join(", ")
        ),
        "set KOVENANT_TETRAGON=existing to use it as it is (install, upgrade and uninstall \
         leave it alone; kovenant's TracingPolicies are applied to it)",
    );
}

async fn node_exporter(k: &Kube, config: &Config, list: &mut Checklist) {
    let port = config.node_exporter_port;
    let title = format!("host port {port} is free for kovenant's node-exporter");
    match host_port_holders(k, config, port).await {
        Ok(held) if held.is_empty() => list.ok(&title, ""),
        Ok(held) => list.fail(
            &title,
            &format!(
                "{} {} already {} host port {port} on the nodes: kovenant's node-exporter would \
                 never become ready",
                if held.len() == 1 {
                    "DaemonSet"
                } else {
                    "DaemonSets"
                },
                held.join(", "),
                if held.len() == 1 { "takes" } else { "take" },
            ),
            "set KOVENANT_NODE_EXPORTER_PORT to a free port (e.g. 9101): kovenant's \
             node-exporter moves there and Prometheus scrapes it there",
        ),
        Err(e) => list.warn(&title, &e, "kubectl get daemonsets -A"),
    }
}

/// Only when there is an ingress (an external URL and a class).
async fn ingress_class(k: &Kube, config: &Config, list: &mut Checklist) {
    let Some(class) = config
        .ingress_class
        .as_deref()
        .filter(|_| crate::plan::context::ingress_enabled(config))
    else {
        return;
    };
    let title = format!("IngressClass {class} exists");
    let api = Api::<IngressClass>::all(k.client.clone());
    match api.get_opt(class).await {
        Ok(Some(_)) => list.ok(&title, ""),
        Ok(None) => {
            let known = api
                .list_metadata(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .into_iter()
                        .filter_map(|c| c.metadata.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let known = if known.is_empty() {
                "the cluster has none".to_owned()
            } else {
                format!("the cluster has {known}")
            };
            list.warn(
                &title,
                &format!("no IngressClass {class} ({known}): no controller would serve Grafana's ingress"),
                "set KOVENANT_INGRESS_CLASS to one of `kubectl get ingressclass` (k3s ships traefik)",
            )
        }
        Err(e) => list.warn(&title, &describe(&e), "kubectl get ingressclass"),
    }
}
