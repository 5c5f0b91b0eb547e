//! The one tera context every template renders with, built from the configuration.
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{names, secrets};
use crate::config::{AgentSource, Config};

/// Binaries the TracingPolicies skip in the kernel (DESIGN.md section 3).
pub const EXCLUDED_BINARIES: &[&str] = &[
    names::TETRAGON_BINARY,
    names::TELEGRAF_BINARY,
    names::AGENT_BINARY,
    names::INFLUXDB_BINARY,
];

/// kube-state-metrics' default collectors (chart 7.x in prometheus 29.27.0), less `secrets`.
pub const KSM_COLLECTORS: &[&str] = &[
    "certificatesigningrequests",
    "configmaps",
    "cronjobs",
    "daemonsets",
    "deployments",
    "endpointslices",
    "horizontalpodautoscalers",
    "ingresses",
    "jobs",
    "leases",
    "limitranges",
    "mutatingwebhookconfigurations",
    "namespaces",
    "networkpolicies",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "poddisruptionbudgets",
    "pods",
    "replicasets",
    "replicationcontrollers",
    "resourcequotas",
    "services",
    "statefulsets",
    "storageclasses",
    "validatingwebhookconfigurations",
    "volumeattachments",
];

/// Everything the templates may use. Secret values are never put here.
pub fn build(
    config: &Config,
    image_ref: &str,
    facts: &super::dashboards::ClusterFacts,
) -> tera::Context {
    let ns = &config.namespace;
    let influx = &config.influxdb;
    let base_path = config
        .external_url
        .as_ref()
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let host = config
        .external_url
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned));
    // Behind an ingress Grafana's own protocol is not the browser's: use the URL as given.
    let root_url = match &config.external_url {
        Some(url) => format!("{}{base_path}/grafana/", url.origin().ascii_serialization()),
        None => "%(protocol)s://%(domain)s/grafana".to_owned(),
    };
    let scrape_timeout = config.scrape_interval.min(Duration::from_secs(10));
    let retention = if influx.retention.is_zero() {
        "0".to_owned()
    } else {
        duration(influx.retention)
    };
    let agent_window = duration(config.agent_window);
    // The agent's health turns 503 once no window has reached telegraf's outputs for three
    // windows and one flush (a window arrives, then waits up to a flush for outputs.health).
    let agent_silent_after = duration(config.agent_window * 3 + names::TELEGRAF_FLUSH);
    let agent_max_keys = config.agent_max_keys;
    let agent_top_peers = config.agent_top_peers;
    let pod_retention = if influx.pod_retention.is_zero() {
        "0".to_owned()
    } else {
        duration(influx.pod_retention)
    };
    let kube_logs = config.agent_source == AgentSource::KubeLogs;
    let agent_source = if kube_logs {
        "kube-logs".to_owned()
    } else {
        format!(
            "file:{}/{}",
            names::TETRAGON_EXPORT_DIR,
            names::TETRAGON_EXPORT_FILE
        )
    };
    let tetragon_ns = &config.tetragon_namespace;
    // Where telegraf writes and Grafana reads: the user's own InfluxDB, else the pipeline's.
    let influxdb_url = match &influx.url {
        Some(url) => url.origin().ascii_serialization(),
        None => format!("http://{}.{ns}.svc:{}", names::INFLUXDB_NAME, influx.port),
    };
    // telegraf does not reload its configuration: the DaemonSet's pods carry a checksum of what
    // telegraf.conf is made of, so a change rolls them.
    let checksum = hex::encode(Sha256::digest(
        format!(
            "{ns}\n{influxdb_url}\n{}\n{}\n{}\n{agent_window}\n{agent_max_keys}\n{agent_top_peers}\n{image_ref}\n{agent_source}\n{tetragon_ns}",
            influx.port, influx.org, influx.bucket
        )
        .as_bytes(),
    ));
    let mut ctx = tera::Context::new();
    ctx.insert("version", &env!("CARGO_PKG_VERSION"));
    ctx.insert("namespace", &ns);
    ctx.insert("tetragon_namespace", &config.tetragon_namespace);
    ctx.insert("tetragon_release", &names::TETRAGON_RELEASE);
    ctx.insert("cluster_name", &config.cluster_name);
    ctx.insert(
        "charts",
        &json!({
            "tetragon_version": config.charts.tetragon_version,
            "prometheus_version": config.charts.prometheus_version,
            "grafana_version": config.charts.grafana_version,
        }),
    );
    ctx.insert("export_dir", &names::TETRAGON_EXPORT_DIR);
    ctx.insert("export_file", &names::TETRAGON_EXPORT_FILE);
    ctx.insert("excluded_binaries", &EXCLUDED_BINARIES);
    ctx.insert("scrape_interval", &duration(config.scrape_interval));
    ctx.insert("scrape_timeout", &duration(scrape_timeout));
    ctx.insert("prometheus_release", &names::PROMETHEUS_RELEASE);
    ctx.insert("ksm_collectors", &KSM_COLLECTORS);
    ctx.insert("node_exporter_port", &config.node_exporter_port);
    // Both volumes (Prometheus's and InfluxDB's) take KOVENANT_STORAGE_CLASS: a cluster with no
    // default class leaves either claim Pending otherwise.
    ctx.insert(
        "storage_class",
        &influx.storage_class.clone().unwrap_or_default(),
    );
    ctx.insert("prometheus_service", &names::PROMETHEUS_SERVICE);
    ctx.insert("prometheus_port", &names::PROMETHEUS_SERVICE_PORT);
    ctx.insert(
        "prometheus_url",
        &format!(
            "http://{}.{ns}.svc:{}",
            names::PROMETHEUS_SERVICE,
            names::PROMETHEUS_SERVICE_PORT
        ),
    );
    ctx.insert("prometheus_uid", &names::PROMETHEUS_DATASOURCE_UID);
    ctx.insert("influxdb_uid", &names::INFLUXDB_DATASOURCE_UID);
    ctx.insert("influxdb_url", &influxdb_url);
    // Empty: the pipeline chart installs InfluxDB (StatefulSet and Service).
    ctx.insert(
        "influxdb_external_url",
        &influx
            .url
            .as_ref()
            .map(|_| influxdb_url.clone())
            .unwrap_or_default(),
    );
    ctx.insert("influxdb_secret", &secrets::INFLUXDB_SECRET);
    // Each holder reads its own scoped token; its pods carry the token's generation.
    ctx.insert("telegraf_token_secret", &secrets::TELEGRAF_TOKEN.secret);
    ctx.insert("grafana_token_secret", &secrets::GRAFANA_TOKEN.secret);
    ctx.insert("scoped_token_key", &secrets::SCOPED_TOKEN_KEY);
    ctx.insert(
        "token_generation_annotation",
        &secrets::GENERATION_ANNOTATION,
    );
    ctx.insert(
        "telegraf_token_generation",
        &facts.token_generations[0].to_string(),
    );
    ctx.insert(
        "grafana_token_generation",
        &facts.token_generations[1].to_string(),
    );
    ctx.insert("grafana_secret", &secrets::GRAFANA_SECRET);
    ctx.insert("grafana_user_key", &secrets::GRAFANA_USER_KEY);
    ctx.insert("grafana_password_key", &secrets::GRAFANA_PASSWORD_KEY);
    ctx.insert("grafana_port", &config.grafana.port);
    ctx.insert(
        "grafana_domain",
        &host.clone().unwrap_or_else(|| "localhost".to_owned()),
    );
    ctx.insert("grafana_root_url", &root_url);
    ctx.insert("dashboard_label", &names::DASHBOARD_LABEL);
    ctx.insert("dashboard_label_value", &names::DASHBOARD_LABEL_VALUE);
    ctx.insert("grafana_sidecar_role", &names::GRAFANA_SIDECAR_ROLE);
    // No ingress without KOVENANT_EXTERNAL_URL: an ingress with no host would serve Grafana to
    // whatever reaches the ingress controller. `kovenant dashboard` (a port-forward) is the way in.
    ctx.insert("ingress_enabled", &ingress_enabled(config));
    ctx.insert("ingress_class", &config.ingress_class);
    ctx.insert("ingress_host", &host);
    ctx.insert("ingress_tls_secret", &config.ingress_tls_secret);
    ctx.insert("ingress_path", &format!("{base_path}/grafana"));
    ctx.insert("influxdb_image", &config.influxdb_image);
    ctx.insert("influxdb_port", &influx.port);
    ctx.insert("influxdb_org", &influx.org);
    ctx.insert("influxdb_bucket", &influx.bucket);
    ctx.insert("influxdb_retention", &retention);
    ctx.insert("influxdb_pod_bucket", &names::pod_bucket(&influx.bucket));
    ctx.insert("influxdb_pod_retention", &pod_retention);
    ctx.insert("influxdb_username", &influx.username);
    ctx.insert("influxdb_storage_size", &influx.storage_size);
    ctx.insert(
        "influxdb_storage_class",
        &influx.storage_class.clone().unwrap_or_default(),
    );
    ctx.insert("image_ref", &image_ref);
    ctx.insert("pull_policy", &pull_policy(config));
    ctx.insert("agent_window", &agent_window);
    ctx.insert("agent_silent_after", &agent_silent_after);
    ctx.insert("agent_health_port", &names::AGENT_HEALTH_PORT);
    ctx.insert("telegraf_flush", &duration(names::TELEGRAF_FLUSH));

    ctx.insert("agent_max_keys", &agent_max_keys);
    ctx.insert("agent_top_peers", &agent_top_peers);
    ctx.insert("agent_config_checksum", &checksum);
    ctx.insert("agent_source", &agent_source);
    ctx.insert("agent_kube_logs", &kube_logs);
    ctx.insert("pipeline_release", &names::PIPELINE_RELEASE);
    ctx.insert("agent_name", &names::AGENT_NAME);
    ctx.insert("agent_arch", &facts.agent_arch.map(|a| a.as_str()));
    ctx.insert("image_pull_secret", &config.image_pull_secret);
    ctx
}

/// Whether the Grafana ingress is rendered: only with an external URL (its host) and a class.
pub fn ingress_enabled(config: &Config) -> bool {
    config.external_url.is_some() && config.ingress_class.is_some()
}

/// The agent image's pull policy. Its tag names its content, so a tag never changes meaning:
/// `IfNotPresent` is right both for an image pushed to KOVENANT_IMAGE_REGISTRY and for one loaded
/// onto the nodes (a cluster with no registry). `Never` would break clusters that pull through a
/// mirror; `Always` would make every pod start depend on the registry.
pub fn pull_policy(_config: &Config) -> &'static str {
    "IfNotPresent"
}

/// A duration as Go and Prometheus write it: `1h30m`, `45s`, `500ms`.
pub fn duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(duration(Duration::from_secs(30)), "30s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "168h");
        assert_eq!(duration(Duration::from_millis(1_500)), "1s500ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
