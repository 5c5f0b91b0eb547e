//! The table of every configuration key: name, default, help, whether it is secret, its aliases.
//! `example.env` is checked against this table by a test.

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    /// Default as written in `example.env`; empty when there is none (or it is generated).
    pub default: &'static str,
    pub help: &'static str,
    pub secret: bool,
    /// Other names accepted for this key (the seed's names).
    pub aliases: &'static [&'static str],
}

const fn key(name: &'static str, default: &'static str, help: &'static str) -> Key {
    Key {
        name,
        default,
        help,
        secret: false,
        aliases: &[],
    }
}

/// Every key kovenant reads, in the order example.env lists them. The GRAFANA_ and
/// DOCKER_INFLUXDB_INIT_ names are the seed's, kept as they were so an old `.env` still works.
pub const KEYS: &[Key] = &[
    key(
        "KOVENANT_NAMESPACE",
        "kovenant",
        "namespace of Prometheus, Grafana and the pipeline",
    ),
    key(
        "KOVENANT_TETRAGON_NAMESPACE",
        "kube-system",
        "namespace of Tetragon",
    ),
    key(
        "KOVENANT_CLUSTER_NAME",
        "kubernetes",
        "cluster name shown in the dashboards",
    ),
    key(
        "KOVENANT_EXTERNAL_URL",
        "",
        "external base URL (http or https, a DNS host); Grafana is served under /grafana, and only with it is there an ingress",
    ),
    key(
        "KOVENANT_INGRESS_CLASS",
        "nginx",
        "ingress class of the Grafana ingress (made only with KOVENANT_EXTERNAL_URL); `none` disables it",
    ),
    key(
        "KOVENANT_INGRESS_TLS_SECRET",
        "",
        "Secret of type kubernetes.io/tls in KOVENANT_NAMESPACE whose certificate the Grafana ingress serves (needs an https:// KOVENANT_EXTERNAL_URL); empty: no TLS on the ingress",
    ),
    key(
        "KOVENANT_IMAGE_REGISTRY",
        "",
        "registry to push the telegraf-tetragon image to (host[:port][/path])",
    ),
    key(
        "KOVENANT_IMAGE_REGISTRY_INSECURE",
        "false",
        "allow a plain-HTTP registry (true/false)",
    ),
    key(
        "KOVENANT_IMAGE_REPOSITORY",
        "telegraf-tetragon",
        "repository name of the built image",
    ),
    key(
        "KOVENANT_IMAGE_PULL_SECRET",
        "",
        "Secret (in KOVENANT_NAMESPACE) the nodes pull the telegraf-tetragon image with, for a private registry",
    ),
    key(
        "KOVENANT_TELEGRAF_IMAGE",
        "telegraf:1.36.4",
        "base image of the telegraf-tetragon image",
    ),
    key(
        "KOVENANT_INFLUXDB_IMAGE",
        "influxdb:2.7.12",
        "InfluxDB 2.x image of the pipeline",
    ),
    key(
        "KOVENANT_INFLUXDB_URL",
        "",
        "an InfluxDB of your own (http(s)://host[:port]): telegraf and Grafana use it and none is installed in the cluster",
    ),
    Key {
        secret: true,
        ..key(
            "KOVENANT_INFLUXDB_TOKEN",
            "",
            "token for KOVENANT_INFLUXDB_URL (required with it): write and read on the bucket and on <bucket>/pods",
        )
    },
    key(
        "KOVENANT_INFLUXDB_STORAGE_SIZE",
        "10Gi",
        "size of InfluxDB's persistent volume",
    ),
    key(
        "KOVENANT_STORAGE_CLASS",
        "",
        "storage class of Prometheus's and InfluxDB's volumes (empty: the cluster default)",
    ),
    key(
        "KOVENANT_HELM",
        "helm",
        "helm executable (name on PATH or path)",
    ),
    key(
        "KOVENANT_TETRAGON_CHART_VERSION",
        "1.7.0",
        "version of the cilium/tetragon chart",
    ),
    key(
        "KOVENANT_TETRAGON_CHART_REPO",
        "https://helm.cilium.io",
        "repository of the tetragon chart",
    ),
    key(
        "KOVENANT_PROMETHEUS_CHART_VERSION",
        "29.27.0",
        "version of the prometheus-community/prometheus chart",
    ),
    key(
        "KOVENANT_PROMETHEUS_CHART_REPO",
        "https://prometheus-community.github.io/helm-charts",
        "repository of the prometheus chart",
    ),
    key(
        "KOVENANT_GRAFANA_CHART_VERSION",
        "12.11.1",
        "version of the grafana-community/grafana chart",
    ),
    key(
        "KOVENANT_GRAFANA_CHART_REPO",
        "https://grafana-community.github.io/helm-charts",
        "repository of the grafana chart",
    ),
    key(
        "KOVENANT_SCRAPE_INTERVAL",
        "30s",
        "Prometheus scrape interval",
    ),
    key(
        "KOVENANT_AGENT_WINDOW",
        "10s",
        "aggregation window of the agent",
    ),
    key(
        "KOVENANT_AGENT_MAX_KEYS",
        "50000",
        "cap on live flow keys per window in the agent",
    ),
    key(
        "KOVENANT_AGENT_TOP_PEERS",
        "20",
        "per window and workload, external/unresolved peers kept by address; the rest become peer \"other\" (0 keeps all)",
    ),
    key(
        "KOVENANT_POD_RETENTION",
        "1d",
        "retention of the pod-level bucket <bucket>/pods (pod_activity); workload-level data keeps DOCKER_INFLUXDB_INIT_RETENTION",
    ),
    key(
        "KOVENANT_AGENT_SOURCE",
        "file",
        "where the agent reads Tetragon's events: file (hostPath) or kube-logs (pods/log, no hostPath)",
    ),
    key(
        "KOVENANT_TETRAGON",
        "install",
        "install: kovenant installs, upgrades and removes Tetragon; existing: use the Tetragon already in the cluster and never touch it",
    ),
    key(
        "KOVENANT_NODE_EXPORTER_PORT",
        "9100",
        "host port of kovenant's node-exporter (move it when another node-exporter holds 9100)",
    ),
    key("GRAFANA_PORT", "3000", "Grafana service port"),
    key("GRAFANA_ADMIN_USER", "admin", "Grafana admin user"),
    Key {
        secret: true,
        ..key(
            "GRAFANA_ADMIN_PASSWORD",
            "",
            "Grafana admin password (empty: generated once, kept in a Secret)",
        )
    },
    key(
        "DOCKER_INFLUXDB_INIT_ORG",
        "kovenant",
        "InfluxDB organisation",
    ),
    key(
        "DOCKER_INFLUXDB_INIT_BUCKET",
        "tetragon",
        "InfluxDB bucket (and InfluxQL database) of the flow data",
    ),
    key(
        "DOCKER_INFLUXDB_INIT_RETENTION",
        "7d",
        "how long InfluxDB keeps data (e.g. 7d, 12h; 0 keeps forever)",
    ),
    key(
        "DOCKER_INFLUXDB_INIT_USERNAME",
        "admin",
        "InfluxDB admin user",
    ),
    Key {
        secret: true,
        ..key(
            "DOCKER_INFLUXDB_INIT_PASSWORD",
            "",
            "InfluxDB admin password (empty: generated once, kept in a Secret)",
        )
    },
    Key {
        secret: true,
        ..key(
            "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN",
            "",
            "InfluxDB admin token (empty: generated once, kept in a Secret)",
        )
    },
    key("DOCKER_INFLUXDB_INIT_PORT", "8086", "InfluxDB service port"),
];

/// Seed keys that are accepted and ignored with a warning: kovenant no longer mounts credentials.
pub const OBSOLETE: &[&str] = &[
    "TELEGRAF_KUBECONFIG",
    "KUBECONFIG_MOUNT_PATH",
    "HELM_MOUNT_PATH",
];

/// The key a name (canonical or alias) stands for.
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|k| k.name == name || k.aliases.contains(&name))
}

/// The text of `example.env`: every key in order, a `# help` line, then `KEY=default`.
pub fn example_env() -> String {
    // Every key is commented out: a `.env` copied from here pins nothing, so it keeps following
    // the binary's defaults (chart versions, image tags) as kovenant is upgraded.
    let mut out = String::from(
        "# kovenant configuration: copy to .env, then uncomment (drop the leading '# ') and change\n\
         # only what you need; a commented line shows the default, which kovenant uses without it.\n\
         # The process environment overrides this file. Empty secrets are generated once and kept\n\
         # in Kubernetes Secrets. A .env holding secrets should be private: chmod 600 .env\n\
         # Put values holding spaces, # or $ in single quotes: KEY='a b#c$d' is taken as written.\n",
    );
    for key in KEYS {
        out.push_str(&format!(
            "\n# {}\n# {}={}\n",
            key.help, key.name, key.default
        ));
    }
    out
}

/// The configuration table of README.md, between `<!-- keys:start -->` and `<!-- keys:end -->`.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for key in KEYS {
        let default = match (key.default, key.secret) {
            // The token of the user's own InfluxDB cannot be made up.
            ("", true) if key.name == "KOVENANT_INFLUXDB_TOKEN" => "none".to_string(),
            ("", true) => "generated".to_string(),
            ("", false) => "none".to_string(),
            (d, _) => format!("`{d}`"),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            key.name,
            key.help.replace('|', "\\|")
        ));
    }
    out
}
