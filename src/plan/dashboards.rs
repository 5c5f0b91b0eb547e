//! Grafana dashboards rendered from the tera templates in dashboards/, with stable UIDs.
mod layout;

use serde_json::Value;
use tera::{Context, Tera};

use crate::assets::Assets;
use crate::config::Config;
use crate::error::{Error, Result};

/// UID of the Prometheus datasource that Grafana's values provision.
pub const PROMETHEUS_UID: &str = "kovenant-prometheus";
/// UID of the InfluxDB (InfluxQL) datasource that Grafana's values provision.
pub const INFLUXDB_UID: &str = "kovenant-influxdb";

/// Namespaces that hold the cluster's own machinery rather than its users' workloads.
const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// One rendered dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Stable Grafana UID.
    pub uid: String,
    /// File name under `dashboards/`, e.g. `traffic-map.json`.
    pub file_name: String,
    pub json: String,
}

/// What install learned from the cluster that the rendering uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// Namespaces that existed at install time.
    pub namespaces: Vec<String>,
    /// The generation of each scoped InfluxDB token install will leave (telegraf's, Grafana's),
    /// rendered into the pod templates of their holders; 1 when unknown.
    pub token_generations: [u64; 2],
    /// The platform of the agent image (the agent binary's architecture): the DaemonSet runs
    /// only on Linux nodes of it. None when the binary is not a Linux build.
    pub agent_arch: Option<super::image::Arch>,
}

impl Default for ClusterFacts {
    fn default() -> Self {
        ClusterFacts {
            namespaces: Vec::new(),
            token_generations: [1, 1],
            agent_arch: None,
        }
    }
}

/// The dashboards kovenant provisions, sorted by file name: UID, template, output file name.
const DASHBOARDS: &[(&str, &str, &str)] = &[
    (
        "kovenant-cluster-health",
        "cluster-health.json.tera",
        "cluster-health.json",
    ),
    (
        "kovenant-namespaces-workloads",
        "namespaces-workloads.json.tera",
        "namespaces-workloads.json",
    ),
    ("kovenant-pod-io", "pod-io.json.tera", "pod-io.json"),
    (
        "kovenant-traffic-map",
        "traffic-map.json.tera",
        "traffic-map.json",
    ),
];

/// Renders every dashboard with no knowledge of the cluster.
pub fn render(config: &Config, assets: &Assets) -> Result<Vec<Dashboard>> {
    render_with(config, assets, &ClusterFacts::default())
}

/// Renders every dashboard; `facts` pick the namespaces a dashboard opens on.
pub fn render_with(
    config: &Config,
    assets: &Assets,
    facts: &ClusterFacts,
) -> Result<Vec<Dashboard>> {
    let tera = load_templates(assets)?;
    let mut out = Vec::with_capacity(DASHBOARDS.len());
    for (uid, template, file_name) in DASHBOARDS {
        let ctx = context(config, facts, uid);
        let text = tera
            .render(template, &ctx)
            .map_err(|e| template_error(&format!("dashboards/{template}"), &e))?;
        let mut json: Value = serde_json::from_str(&text).map_err(|e| {
            Error::step(
                "dashboards",
                format!("dashboards/{template} does not render to valid JSON: {e}"),
            )
        })?;
        layout::arrange(&mut json);
        let mut text = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::step("dashboards", format!("serialising {file_name}: {e}")))?;
        text.push('\n');
        out.push(Dashboard {
            uid: (*uid).to_string(),
            file_name: (*file_name).to_string(),
            json: text,
        });
    }
    Ok(out)
}

/// Every file under dashboards/ (templates and the macros they import), named without the folder.
/// An `--assets` folder without dashboards/ keeps the embedded ones: it overrides what it holds.
fn load_templates(assets: &Assets) -> Result<Tera> {
    let mut paths = assets.list("dashboards")?;
    let embedded = Assets::embedded();
    let assets = if paths.is_empty() {
        paths = embedded.list("dashboards")?;
        &embedded
    } else {
        assets
    };
    let mut files = Vec::new();
    for path in paths {
        let name = path.trim_start_matches("dashboards/").to_string();
        files.push((name, assets.get(&path)?));
    }
    let mut tera = Tera::default();
    // All at once: a template's imports are resolved after every file is known.
    tera.add_raw_templates(files)
        .map_err(|e| template_error("dashboards/", &e))?;
    Ok(tera)
}

fn context(config: &Config, facts: &ClusterFacts, uid: &str) -> Context {
    let mut ctx = Context::new();
    ctx.insert("uid", uid);
    ctx.insert("cluster_name", &config.cluster_name);
    ctx.insert("prometheus_uid", PROMETHEUS_UID);
    ctx.insert("influxdb_uid", INFLUXDB_UID);
    ctx.insert("interval", &grafana_interval(config.agent_window));
    ctx.insert("namespaces", &app_namespaces(config, facts));
    ctx
}

/// The namespaces a dashboard opens on: those seen at install minus the cluster's and kovenant's
/// own. Empty means "All". The variables' options still come from the data.
fn app_namespaces(config: &Config, facts: &ClusterFacts) -> Vec<String> {
    let mut list: Vec<String> = facts
        .namespaces
        .iter()
        .filter(|ns| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
        .filter(|ns| **ns != config.namespace && **ns != config.tetragon_namespace)
        .cloned()
        .collect();
    list.sort();
    list.dedup();
    list
}

/// A panel's minimum interval as Grafana reads it: one number and one unit (`10s`, `1500ms`).
fn grafana_interval(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs().max(1))
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `what` names the template (or the folder, when loading failed) for the message.
fn template_error(what: &str, e: &tera::Error) -> Error {
    // tera keeps the useful part (line, column, what was expected) in the error's sources.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::step("dashboards", format!("{what}: {message}"))
        .with_hint("fix the template, or drop --assets to use the embedded dashboards")
}
