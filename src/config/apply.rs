//! One key's text -> its field of `Config`: the table of which check each key gets.
use super::validate::{self, Checked, Problem};
use super::{Config, Secret};

/// Keys whose empty value means "none" (or, for secrets, "generate one").
pub fn empty_allowed(key: &str) -> bool {
    matches!(
        key,
        "KOVENANT_EXTERNAL_URL"
            | "KOVENANT_IMAGE_REGISTRY"
            | "KOVENANT_STORAGE_CLASS"
            | "KOVENANT_IMAGE_PULL_SECRET"
            | "KOVENANT_INGRESS_TLS_SECRET"
            | "KOVENANT_INFLUXDB_URL"
    ) || super::keys::lookup(key).is_some_and(|k| k.secret)
}

/// Sets the field of `key` (a canonical name from `keys::KEYS`) from `value`.
pub fn apply(c: &mut Config, key: &str, v: &str) -> Checked<()> {
    use validate::*;
    match key {
        "KOVENANT_NAMESPACE" => c.namespace = dns_label(v)?,
        "KOVENANT_TETRAGON_NAMESPACE" => c.tetragon_namespace = dns_label(v)?,
        "KOVENANT_CLUSTER_NAME" => c.cluster_name = text(v)?,
        "KOVENANT_EXTERNAL_URL" => c.external_url = optional(v, external_url)?,
        "KOVENANT_INGRESS_CLASS" => c.ingress_class = ingress_class(v)?,
        "KOVENANT_INGRESS_TLS_SECRET" => c.ingress_tls_secret = optional(v, dns_subdomain)?,
        "KOVENANT_IMAGE_REGISTRY" => c.image_registry = optional(v, registry)?,
        "KOVENANT_IMAGE_REGISTRY_INSECURE" => c.image_registry_insecure = boolean(v)?,
        "KOVENANT_IMAGE_REPOSITORY" => c.image_repository = repository(v)?,
        "KOVENANT_TELEGRAF_IMAGE" => c.telegraf_image = image(v)?,
        "KOVENANT_INFLUXDB_IMAGE" => c.influxdb_image = image(v)?,
        "KOVENANT_INFLUXDB_URL" => c.influxdb.url = optional(v, influxdb_url)?,
        "KOVENANT_INFLUXDB_TOKEN" => c.influxdb.external_token = token(v)?,
        "KOVENANT_INFLUXDB_STORAGE_SIZE" => c.influxdb.storage_size = quantity(v)?,
        "KOVENANT_STORAGE_CLASS" => c.influxdb.storage_class = optional(v, dns_subdomain)?,
        "KOVENANT_HELM" => c.helm = executable(v)?,
        "KOVENANT_TETRAGON_CHART_VERSION" => c.charts.tetragon_version = word(v)?,
        "KOVENANT_TETRAGON_CHART_REPO" => c.charts.tetragon_repo = repo_url(v)?,
        "KOVENANT_PROMETHEUS_CHART_VERSION" => c.charts.prometheus_version = word(v)?,
        "KOVENANT_PROMETHEUS_CHART_REPO" => c.charts.prometheus_repo = repo_url(v)?,
        "KOVENANT_GRAFANA_CHART_VERSION" => c.charts.grafana_version = word(v)?,
        "KOVENANT_GRAFANA_CHART_REPO" => c.charts.grafana_repo = repo_url(v)?,
        "KOVENANT_SCRAPE_INTERVAL" => c.scrape_interval = interval(v)?,
        "KOVENANT_AGENT_WINDOW" => c.agent_window = interval(v)?,
        "KOVENANT_AGENT_MAX_KEYS" => c.agent_max_keys = positive(v)?,
        "KOVENANT_AGENT_SOURCE" => c.agent_source = agent_source(v)?,
        "KOVENANT_AGENT_TOP_PEERS" => c.agent_top_peers = count(v)?,
        "KOVENANT_POD_RETENTION" => c.influxdb.pod_retention = pod_retention(v)?,
        "KOVENANT_IMAGE_PULL_SECRET" => c.image_pull_secret = optional(v, dns_subdomain)?,
        "KOVENANT_TETRAGON" => c.existing_tetragon = tetragon_mode(v)?,
        "KOVENANT_NODE_EXPORTER_PORT" => c.node_exporter_port = port(v)?,
        "GRAFANA_PORT" => c.grafana.port = port(v)?,
        "GRAFANA_ADMIN_USER" => c.grafana.admin_user = word(v)?,
        "GRAFANA_ADMIN_PASSWORD" => c.grafana.admin_password = grafana_password(v)?,
        "DOCKER_INFLUXDB_INIT_ORG" => c.influxdb.org = word(v)?,
        "DOCKER_INFLUXDB_INIT_BUCKET" => c.influxdb.bucket = bucket(v)?,
        "DOCKER_INFLUXDB_INIT_RETENTION" => c.influxdb.retention = retention(v)?,
        "DOCKER_INFLUXDB_INIT_USERNAME" => c.influxdb.username = word(v)?,
        "DOCKER_INFLUXDB_INIT_PASSWORD" => c.influxdb.password = influx_password(v)?,
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" => c.influxdb.admin_token = token(v)?,
        "DOCKER_INFLUXDB_INIT_PORT" => c.influxdb.port = port(v)?,
        // keys::KEYS and this table are kept in step by a test.
        _ => {
            return Err(Problem {
                what: "belongs to no setting (a bug in kovenant)".into(),
                expected: "a key from keys::KEYS".into(),
            });
        }
    }
    Ok(())
}

fn optional<T>(v: &str, check: impl Fn(&str) -> Checked<T>) -> Checked<Option<T>> {
    if v.is_empty() {
        Ok(None)
    } else {
        check(v).map(Some)
    }
}

/// `install` (false) or `existing` (true).
fn tetragon_mode(v: &str) -> Checked<bool> {
    match v {
        "install" => Ok(false),
        "existing" => Ok(true),
        _ => Err(Problem {
            what: "is not a Tetragon mode".into(),
            expected:
                "install (kovenant manages Tetragon) or existing (use the one in the cluster)"
                    .into(),
        }),
    }
}

fn ingress_class(v: &str) -> Checked<Option<String>> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    validate::dns_subdomain(v).map(Some).map_err(|p| Problem {
        expected: format!("{}, or none to disable the ingress", p.expected),
        ..p
    })
}

fn agent_source(v: &str) -> Checked<super::AgentSource> {
    match v {
        "file" => Ok(super::AgentSource::File),
        "kube-logs" => Ok(super::AgentSource::KubeLogs),
        _ => Err(Problem {
            what: "is not an agent source".into(),
            expected: "file (Tetragon's export file on each node) or kube-logs (its log, \
                       through the API)"
                .into(),
        }),
    }
}

fn repository(v: &str) -> Checked<String> {
    let ok = !v.is_empty()
        && v.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if ok {
        Ok(v.to_string())
    } else {
        Err(Problem {
            what: "is not a repository name".into(),
            expected: "lowercase letters, digits, '.', '_', '-' and '/', e.g. telegraf-tetragon"
                .into(),
        })
    }
}

/// Helm repositories are http(s) URLs.
fn repo_url(v: &str) -> Checked<String> {
    validate::http_url(v).map(|_| v.to_string())
}

fn grafana_password(v: &str) -> Checked<Option<Secret>> {
    // DESIGN.md section 8: Grafana's admin password is never `admin`.
    if v == "admin" {
        return Err(Problem {
            what: "is the well-known default password".into(),
            expected: "a password of your own, or empty to have one generated".into(),
        });
    }
    token(v)
}

/// InfluxDB 2.x refuses to set up with a password shorter than 8 characters.
fn influx_password(v: &str) -> Checked<Option<Secret>> {
    if !v.is_empty() && v.chars().count() < 8 {
        return Err(Problem {
            what: "is shorter than 8 characters, which InfluxDB refuses".into(),
            expected: "at least 8 characters, or empty to have one generated".into(),
        });
    }
    token(v)
}

fn token(v: &str) -> Checked<Option<Secret>> {
    Ok((!v.is_empty()).then(|| Secret::new(v)))
}
