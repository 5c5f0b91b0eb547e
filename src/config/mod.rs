//! `.env` + environment -> one validated `Config`. Nothing below this module reads env vars or files
//! for configuration.
mod apply;
mod dotenv;
pub mod duration;
mod error;
pub mod keys;
mod load;
mod names;
mod secret;
pub mod validate;

use std::path::PathBuf;
use std::time::Duration;

pub use dotenv::{Entry, parse_bytes};
pub use error::{ConfigError, Source};
pub use load::{EnvFile, build, load, load_from, no_env_file};
pub use secret::Secret;

/// The configuration a command runs with: `env_file` (or `./.env`) overlaid by the environment,
/// then the global `--namespace`. Every command that needs configuration calls this first, before
/// it changes anything; the caller prints `config.warnings` through its Printer.
pub fn resolve(
    global: &crate::cli::GlobalArgs,
    env_file: Option<&std::path::Path>,
) -> crate::error::Result<Config> {
    let mut config = load(env_file)?;
    if let Some(ns) = &global.namespace {
        config.namespace = validate::dns_label(ns).map_err(|problem| {
            ConfigError::invalid(&Source::Flag("--namespace"), "", Some(ns), &problem, "")
        })?;
    }
    Ok(config)
}

/// Pinned versions and images: the one place they live (DESIGN.md section 1).
pub mod pins {
    pub const TETRAGON_CHART: &str = "1.7.0";
    pub const TETRAGON_REPO: &str = "https://helm.cilium.io";
    pub const PROMETHEUS_CHART: &str = "29.27.0";
    pub const PROMETHEUS_REPO: &str = "https://prometheus-community.github.io/helm-charts";
    pub const GRAFANA_CHART: &str = "12.11.1";
    pub const GRAFANA_REPO: &str = "https://grafana-community.github.io/helm-charts";
    /// Base of the telegraf-tetragon image.
    pub const TELEGRAF_IMAGE: &str = "telegraf:1.36.4";
    pub const INFLUXDB_IMAGE: &str = "influxdb:2.7.12";
    pub const IMAGE_REPOSITORY: &str = "telegraf-tetragon";
}

/// Everything kovenant needs to know, validated. Built once by `config::load`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Namespace of Prometheus, Grafana and the pipeline.
    pub namespace: String,
    /// Namespace of Tetragon.
    pub tetragon_namespace: String,
    /// Name shown in dashboards for this cluster.
    pub cluster_name: String,
    /// External base URL; Grafana is served under `<url>/grafana`.
    pub external_url: Option<url::Url>,
    /// Ingress class; `None` disables the Grafana ingress.
    pub ingress_class: Option<String>,
    /// The TLS Secret the Grafana ingress serves (only with an https:// external URL).
    pub ingress_tls_secret: Option<String>,
    /// Registry to push the telegraf-tetragon image to (`host[:port][/path]`).
    pub image_registry: Option<String>,
    /// Allow plain-HTTP / untrusted TLS for `image_registry`.
    pub image_registry_insecure: bool,
    /// Repository name of the built image (without registry).
    pub image_repository: String,
    /// Base image of the telegraf-tetragon image.
    pub telegraf_image: String,
    /// InfluxDB 2.x image of the pipeline chart.
    pub influxdb_image: String,
    /// helm executable.
    pub helm: PathBuf,
    pub charts: Charts,
    pub grafana: Grafana,
    pub influxdb: Influxdb,
    /// Prometheus scrape interval.
    pub scrape_interval: Duration,
    /// Agent aggregation window.
    pub agent_window: Duration,
    /// Agent cap on live keys per window.
    pub agent_max_keys: usize,
    /// Agent: IP-named peers kept by address per window and workload (0: all).
    pub agent_top_peers: usize,
    /// Where the agent reads Tetragon's events (and so which rights it has).
    pub agent_source: AgentSource,
    /// A Secret in kovenant's namespace the nodes pull the agent image with.
    pub image_pull_secret: Option<String>,
    /// Use the Tetragon already in the cluster (`KOVENANT_TETRAGON=existing`): install, upgrade
    /// and uninstall never touch it.
    pub existing_tetragon: bool,
    /// Host port of kovenant's node-exporter.
    pub node_exporter_port: u16,
    /// Warnings met while loading (obsolete keys, world-readable file), shown once by the caller.
    pub warnings: Vec<String>,
    /// No `.env` was found in the current folder and no `--env-file` was given: `warnings`
    /// starts with the warning that says so, which commands that change no cluster leave out.
    pub no_env_file: bool,
}

/// Where the in-cluster agent reads Tetragon's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentSource {
    /// Tetragon's export file on each node, through a read-only hostPath mount.
    #[default]
    File,
    /// The export-stdout container log of the Tetragon pod on the agent's node, through the API
    /// (`get pods/log` in Tetragon's namespace); no hostPath.
    KubeLogs,
}

/// Chart versions and repositories, overridable.
#[derive(Debug, Clone, PartialEq)]
pub struct Charts {
    pub tetragon_version: String,
    pub tetragon_repo: String,
    pub prometheus_version: String,
    pub prometheus_repo: String,
    pub grafana_version: String,
    pub grafana_repo: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grafana {
    /// Service port.
    pub port: u16,
    pub admin_user: String,
    /// `None`: generated once and kept in a Secret.
    pub admin_password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Influxdb {
    pub org: String,
    pub bucket: String,
    /// `Duration::ZERO` means keep forever.
    pub retention: Duration,
    /// Retention of the pod-level bucket `<bucket>/pods`.
    pub pod_retention: Duration,
    pub username: String,
    /// `None`: generated once and kept in a Secret.
    pub password: Option<Secret>,
    /// `None`: generated once and kept in a Secret.
    pub admin_token: Option<Secret>,
    /// Service port.
    pub port: u16,
    /// An InfluxDB of the user's own (`KOVENANT_INFLUXDB_URL`): none is installed, telegraf,
    /// Grafana, `status` and `top` use this one.
    pub url: Option<url::Url>,
    /// The token for `url` (`KOVENANT_INFLUXDB_TOKEN`); required with it, ignored without.
    pub external_token: Option<Secret>,
    /// Size of InfluxDB's persistent volume claim.
    pub storage_size: String,
    /// Storage class of that claim; `None` uses the cluster default.
    pub storage_class: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: "kovenant".into(),
            tetragon_namespace: "kube-system".into(),
            cluster_name: "kubernetes".into(),
            external_url: None,
            ingress_class: Some("nginx".into()),
            ingress_tls_secret: None,
            image_registry: None,
            image_registry_insecure: false,
            image_repository: pins::IMAGE_REPOSITORY.into(),
            telegraf_image: pins::TELEGRAF_IMAGE.into(),
            influxdb_image: pins::INFLUXDB_IMAGE.into(),
            helm: PathBuf::from("helm"),
            charts: Charts {
                tetragon_version: pins::TETRAGON_CHART.into(),
                tetragon_repo: pins::TETRAGON_REPO.into(),
                prometheus_version: pins::PROMETHEUS_CHART.into(),
                prometheus_repo: pins::PROMETHEUS_REPO.into(),
                grafana_version: pins::GRAFANA_CHART.into(),
                grafana_repo: pins::GRAFANA_REPO.into(),
            },
            grafana: Grafana {
                port: 3000,
                admin_user: "admin".into(),
                admin_password: None,
            },
            influxdb: Influxdb {
                org: "kovenant".into(),
                bucket: "tetragon".into(),
                retention: Duration::from_secs(7 * 86_400),
                pod_retention: Duration::from_secs(86_400),
                username: "admin".into(),
                password: None,
                admin_token: None,
                port: 8086,
                url: None,
                external_token: None,
                storage_size: "10Gi".into(),
                storage_class: None,
            },
            scrape_interval: Duration::from_secs(30),
            agent_window: Duration::from_secs(10),
            agent_max_keys: 50_000,
            agent_top_peers: 20,
            agent_source: AgentSource::File,
            image_pull_secret: None,
            existing_tetragon: false,
            node_exporter_port: 9100,
            warnings: Vec::new(),
            no_env_file: false,
        }
    }
}
