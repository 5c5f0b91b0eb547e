//! The install plan as data: which Secrets, releases and objects install converges, in order.
use serde_json::{Value, json};

use super::{Rendered, names};
use crate::cli::Part;
use crate::config::{Config, Secret};
use crate::error::{Error, Result};

/// Release names (the rendered values derive service names from them).
pub mod release {
    use super::names;
    pub const TETRAGON: &str = names::TETRAGON_RELEASE;
    pub const PROMETHEUS: &str = names::PROMETHEUS_RELEASE;
    pub const GRAFANA: &str = names::GRAFANA_RELEASE;
    pub const PIPELINE: &str = names::PIPELINE_RELEASE;
}

/// Services status reaches through the API server's proxy: Grafana's is named after its release.
pub mod service {
    use super::names;
    pub const GRAFANA: &str = names::GRAFANA_RELEASE;
    pub const INFLUXDB: &str = names::INFLUXDB_NAME;
}

/// Secret names (the rendered values reference them).
pub mod secret {
    use super::super::secrets;
    pub const INFLUXDB: &str = secrets::INFLUXDB_SECRET;
    pub const GRAFANA: &str = secrets::GRAFANA_SECRET;
}

/// The labels every object kovenant applies itself carries; uninstall selects on them.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kovenant");
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=kovenant";
/// The label Grafana's dashboard sidecar provisions ConfigMaps by.
pub const DASHBOARD_LABEL: (&str, &str) = (names::DASHBOARD_LABEL, names::DASHBOARD_LABEL_VALUE);

/// Where helm finds a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chart {
    /// A chart from a repository kovenant adds as `repo` (prefixed, so it never clashes with the
    /// user's own repository names).
    Repo {
        repo: String,
        url: String,
        chart: String,
        version: String,
    },
    /// kovenant's own chart: the files under this prefix of the rendered tree.
    Local { dir: String },
}

/// One `helm upgrade --install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStep {
    pub part: Part,
    pub name: String,
    pub namespace: String,
    pub chart: Chart,
    /// Path of its values file in the rendered tree.
    pub values: String,
}

/// One key of a Secret: given by the configuration, or generated once and then kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretKey {
    pub key: &'static str,
    pub value: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecretStep {
    pub name: &'static str,
    pub namespace: String,
    pub keys: Vec<SecretKey>,
}

/// An object kovenant applies itself (server-side apply): a TracingPolicy or a dashboard ConfigMap.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectStep {
    pub part: Part,
    pub object: Value,
}

impl ObjectStep {
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }
}

/// Everything install converges, in the order it does so.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Namespaces that must exist before the Secrets.
    pub namespaces: Vec<String>,
    /// Labels kovenant keeps on those namespaces (the Pod Security level its pods need).
    pub namespace_labels: Vec<(String, String)>,
    pub secrets: Vec<SecretStep>,
    /// Releases in dependency order: Tetragon first (its CRD), then the independent ones.
    pub releases: Vec<ReleaseStep>,
    /// TracingPolicies, then dashboards.
    pub objects: Vec<ObjectStep>,
    /// Objects earlier versions applied that install deletes where it finds them (only when
    /// they carry kovenant's `managed-by` label): `apiVersion`, `kind` and `metadata.name`.
    pub retired: Vec<ObjectStep>,
}

impl Plan {
    /// The repositories the selected releases need, deduplicated.
    pub fn repos(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for r in &self.releases {
            if let Chart::Repo { repo, url, .. } = &r.chart
                && !out.iter().any(|(n, _)| n == repo)
            {
                out.push((repo, url));
            }
        }
        out
    }
}

/// Builds the plan from the configuration and the rendered tree; `only` selects parts (empty: all).
pub fn build(config: &Config, rendered: &Rendered, only: &[Part]) -> Result<Plan> {
    let wanted = |p: Part| only.is_empty() || only.contains(&p);
    let ns = config.namespace.clone();
    let mut plan = Plan {
        namespaces: Vec::new(),
        namespace_labels: super::pod_security::own_labels(config),
        secrets: Vec::new(),
        releases: Vec::new(),
        objects: Vec::new(),
        retired: Vec::new(),
    };
    // kovenant creates (and labels, so `uninstall --purge` may delete it) its namespace whenever a
    // selected part lives there: `--only dashboards` on a new cluster needs it as much as a full install.
    let in_namespace = [
        Part::Secrets,
        Part::Prometheus,
        Part::Grafana,
        Part::Pipeline,
        Part::Dashboards,
    ];
    if in_namespace.into_iter().any(wanted) {
        plan.namespaces.push(ns.clone());
    }
    if wanted(Part::Secrets) {
        plan.secrets = secrets(config);
    }
    let c = &config.charts;
    let repo = |repo: &str, url: &str, chart: &str, version: &str| Chart::Repo {
        repo: repo.into(),
        url: url.into(),
        chart: chart.into(),
        version: version.into(),
    };
    let candidates = [
        (
            Part::Tetragon,
            release::TETRAGON,
            &config.tetragon_namespace,
            repo(
                "kovenant-cilium",
                &c.tetragon_repo,
                "tetragon",
                &c.tetragon_version,
            ),
            "values/tetragon.yaml",
        ),
        (
            Part::Prometheus,
            release::PROMETHEUS,
            &ns,
            repo(
                "kovenant-prometheus-community",
                &c.prometheus_repo,
                "prometheus",
                &c.prometheus_version,
            ),
            "values/prometheus.yaml",
        ),
        (
            Part::Grafana,
            release::GRAFANA,
            &ns,
            repo(
                "kovenant-grafana-community",
                &c.grafana_repo,
                "grafana",
                &c.grafana_version,
            ),
            "values/grafana.yaml",
        ),
        (
            Part::Pipeline,
            release::PIPELINE,
            &ns,
            Chart::Local {
                dir: "charts/kovenant-pipeline".into(),
            },
            "charts/kovenant-pipeline/values.yaml",
        ),
    ];
    for (part, name, namespace, chart, values) in candidates {
        // KOVENANT_TETRAGON=existing: the user's Tetragon is used as it is, never upgraded.
        if !wanted(part) || (part == Part::Tetragon && config.existing_tetragon) {
            continue;
        }
        if !rendered.files.contains_key(values) {
            return Err(Error::step(
                "plan",
                format!("the rendered tree has no {values}"),
            ));
        }
        plan.releases.push(ReleaseStep {
            part,
            name: name.into(),
            namespace: namespace.clone(),
            chart,
            values: values.into(),
        });
    }
    for (path, bytes) in &rendered.files {
        if wanted(Part::Policies) && path.starts_with("policies/") && path.ends_with(".yaml") {
            for doc in serde_yaml::Deserializer::from_slice(bytes) {
                let value: Value = serde::Deserialize::deserialize(doc)
                    .map_err(|e| Error::step("plan", format!("{path}: {e}")))?;
                if !value.is_null() {
                    plan.objects.push(labelled(Part::Policies, value));
                }
            }
        }
    }
    if wanted(Part::Policies) {
        plan.retired
            .extend(names::RETIRED_POLICIES.iter().map(|name| ObjectStep {
                part: Part::Policies,
                object: json!({
                    "apiVersion": format!("{}/{}", names::POLICY_GROUP, names::POLICY_VERSION),
                    "kind": names::POLICY_KIND,
                    "metadata": { "name": name },
                }),
            }));
    }
    for (path, bytes) in &rendered.files {
        if wanted(Part::Dashboards) && path.starts_with("dashboards/") && path.ends_with(".json") {
            plan.objects.push(dashboard(&ns, path, bytes));
        }
    }
    Ok(plan)
}

/// The credentials Secrets, from the table the rendered values reference.
fn secrets(config: &Config) -> Vec<SecretStep> {
    let mut out: Vec<SecretStep> = Vec::new();
    let external = config.influxdb.url.is_some();
    for k in super::secrets::SECRET_KEYS {
        // With an InfluxDB of the user's own there is nothing to set up and no operator token.
        if external && k.secret == super::secrets::INFLUXDB_SECRET {
            continue;
        }
        let value = match k.config_key {
            "DOCKER_INFLUXDB_INIT_PASSWORD" => config.influxdb.password.clone(),
            "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" => config.influxdb.admin_token.clone(),
            "GRAFANA_ADMIN_USER" => Some(Secret::new(config.grafana.admin_user.clone())),
            "GRAFANA_ADMIN_PASSWORD" => config.grafana.admin_password.clone(),
            _ => None,
        };
        let key = SecretKey { key: k.key, value };
        match out.iter_mut().find(|s| s.name == k.secret) {
            Some(s) => s.keys.push(key),
            None => out.push(SecretStep {
                name: k.secret,
                namespace: config.namespace.clone(),
                keys: vec![key],
            }),
        }
    }
    // Its one token (never generated) is what telegraf and Grafana each read from their own
    // Secret; with the pipeline's InfluxDB, install makes scoped tokens instead (apply::tokens).
    if external {
        for scope in super::secrets::SCOPES {
            out.push(SecretStep {
                name: scope.secret,
                namespace: config.namespace.clone(),
                keys: vec![SecretKey {
                    key: super::secrets::SCOPED_TOKEN_KEY,
                    value: config.influxdb.external_token.clone(),
                }],
            });
        }
    }
    out
}

fn labelled(part: Part, mut value: Value) -> ObjectStep {
    let meta = &mut value["metadata"];
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    meta["labels"][MANAGED_BY.0] = json!(MANAGED_BY.1);
    ObjectStep {
        part,
        object: value,
    }
}

/// A dashboard as a ConfigMap that Grafana's sidecar provisions.
fn dashboard(namespace: &str, path: &str, bytes: &[u8]) -> ObjectStep {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.trim_end_matches(".json");
    let object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("kovenant-dashboard-{stem}"),
            "namespace": namespace,
            "labels": { DASHBOARD_LABEL.0: DASHBOARD_LABEL.1 },
        },
        "data": { file: String::from_utf8_lossy(bytes) },
    });
    labelled(Part::Dashboards, object)
}
