//! Configuration: example.env and the README table kept true, precedence, every key reaching Config.
mod binary;
mod errors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kovenant::config::{
    self, AgentSource, Charts, Config, EnvFile, Grafana, Influxdb, Secret, keys,
};

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Builds a Config from file text (a private file named `t.env`) and an environment.
fn build(text: &str, environment: &[(&str, &str)]) -> Config {
    let file = EnvFile {
        path: Path::new("t.env"),
        bytes: text.as_bytes(),
        mode: Some(0o600),
    };
    config::build(Some(file), &env(environment)).expect("valid configuration")
}

#[test]
fn example_env_is_what_the_key_table_says() {
    let text = std::fs::read_to_string(repo_file("example.env")).expect("read example.env");
    assert_eq!(
        text,
        keys::example_env(),
        "example.env is out of date: regenerate it from kovenant::config::keys::example_env()"
    );
}

/// example.env pins nothing as it is (`cp example.env .env` keeps following the binary's
/// defaults), and every key, uncommented, is its default.
#[test]
fn example_env_sets_nothing_and_uncommented_lists_every_default_once() {
    let path = repo_file("example.env");
    let text = std::fs::read_to_string(&path).expect("read example.env");
    let as_is = config::parse_bytes(&path, text.as_bytes()).expect("example.env parses");
    assert_eq!(as_is, Vec::new(), "example.env must set no key as it is");
    let loaded = config::load_from(Some(&path), &BTreeMap::new()).expect("example.env loads");
    assert_eq!(loaded, Config::default());

    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if keys::lookup(rest.split('=').next().unwrap_or("")).is_some() => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let every = dir.path().join(".env");
    std::fs::write(&every, &uncommented).expect("write");
    let entries = config::parse_bytes(&every, uncommented.as_bytes()).expect("parses");
    let listed: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let known: Vec<&str> = keys::KEYS.iter().map(|k| k.name).collect();
    assert_eq!(listed, known);
    let loaded = config::load_from(Some(&every), &BTreeMap::new()).expect("it loads");
    assert_eq!(loaded, Config::default());
}

#[test]
fn readme_holds_the_generated_key_table() {
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("read README.md");
    let (Some(start), Some(end)) = (
        readme.find("<!-- keys:start -->\n"),
        readme.find("<!-- keys:end -->"),
    ) else {
        panic!(
            "README.md has no <!-- keys:start --> / <!-- keys:end --> markers around its key table"
        );
    };
    let table = &readme[start + "<!-- keys:start -->\n".len()..end];
    assert_eq!(
        table.trim(),
        keys::markdown_table().trim(),
        "README.md's key table is out of date: paste kovenant::config::keys::markdown_table()"
    );
}

#[test]
fn the_environment_overrides_the_file_and_is_never_written() {
    let c = build(
        "GRAFANA_PORT=3001\nKOVENANT_CLUSTER_NAME=from-file\nKOVENANT_NAMESPACE=Bad_Value\n",
        &[
            ("GRAFANA_PORT", "3002"),
            ("KOVENANT_NAMESPACE", "monitoring"),
        ],
    );
    assert_eq!(c.grafana.port, 3002);
    assert_eq!(c.cluster_name, "from-file");
    // The file's bad namespace is shadowed by the environment, so it does not count.
    assert_eq!(c.namespace, "monitoring");
    assert_eq!(std::env::var_os("KOVENANT_CLUSTER_NAME"), None);
}

#[test]
fn foreign_keys_are_ignored_and_obsolete_ones_warned_about() {
    let c = build(
        "COMPOSE_PROJECT_NAME=x\nDOCKER_INFLUXDB_INIT_MODE=setup\nHELM_MOUNT_PATH=/helm\n",
        &[
            ("PATH", "/usr/bin"),
            ("GRAFANA_PROT", "1"),
            ("KOVENANT_TEST_REGISTRY", "127.0.0.1:5000"),
            ("TELEGRAF_KUBECONFIG", "/kube"),
        ],
    );
    assert_eq!(
        c.warnings,
        [
            "t.env line 3: HELM_MOUNT_PATH: obsolete and ignored: kovenant no longer mounts \
             credentials into pods; delete the line",
            "environment variable TELEGRAF_KUBECONFIG: obsolete and ignored: kovenant no longer \
             mounts credentials into pods; unset it",
        ]
    );
    assert_eq!(
        Config {
            warnings: vec![],
            ..c
        },
        Config::default()
    );
}

#[test]
fn every_key_reaches_its_setting() {
    let text = "KOVENANT_NAMESPACE=mon\nKOVENANT_TETRAGON_NAMESPACE=tetragon\n\
        KOVENANT_CLUSTER_NAME='prod eu'\nKOVENANT_EXTERNAL_URL=https://mon.example.com/\n\
        KOVENANT_INGRESS_CLASS=traefik\nKOVENANT_INGRESS_TLS_SECRET=mon-tls\n\
        KOVENANT_IMAGE_REGISTRY=127.0.0.1:5000/team/\n\
        KOVENANT_IMAGE_REGISTRY_INSECURE=YES\nKOVENANT_IMAGE_REPOSITORY=team/tt\n\
        KOVENANT_TELEGRAF_IMAGE=telegraf:1.37\nKOVENANT_INFLUXDB_IMAGE=influxdb:2.8\n\
        KOVENANT_INFLUXDB_URL=https://influx.example.com:8443\nKOVENANT_INFLUXDB_TOKEN=ext-tok\n\
        KOVENANT_INFLUXDB_STORAGE_SIZE=500Mi\nKOVENANT_STORAGE_CLASS=fast.ssd\n\
        KOVENANT_HELM=/opt/helm\nKOVENANT_TETRAGON_CHART_VERSION=1.8.0\n\
        KOVENANT_TETRAGON_CHART_REPO=http://charts.local/t\nKOVENANT_PROMETHEUS_CHART_VERSION=30.0.0\n\
        KOVENANT_PROMETHEUS_CHART_REPO=http://charts.local/p\nKOVENANT_GRAFANA_CHART_VERSION=13.0.0\n\
        KOVENANT_GRAFANA_CHART_REPO=http://charts.local/g\nKOVENANT_SCRAPE_INTERVAL=1m\n\
        KOVENANT_AGENT_WINDOW=500ms\nKOVENANT_AGENT_MAX_KEYS=7\nKOVENANT_AGENT_TOP_PEERS=0\n\
        KOVENANT_POD_RETENTION=6h\nKOVENANT_AGENT_SOURCE=kube-logs\nKOVENANT_TETRAGON=existing\n\
        KOVENANT_NODE_EXPORTER_PORT=9101\nKOVENANT_IMAGE_PULL_SECRET=regcred\nGRAFANA_PORT=80\n\
        GRAFANA_ADMIN_USER=root\nGRAFANA_ADMIN_PASSWORD=g-pass\nDOCKER_INFLUXDB_INIT_ORG=o\n\
        DOCKER_INFLUXDB_INIT_BUCKET=b\nDOCKER_INFLUXDB_INIT_RETENTION=0\n\
        DOCKER_INFLUXDB_INIT_USERNAME=u\nDOCKER_INFLUXDB_INIT_PASSWORD='pa ss wo rd'\n\
        DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=tok\nDOCKER_INFLUXDB_INIT_PORT=9999\n";
    assert_eq!(text.lines().count(), keys::KEYS.len());
    let c = build(text, &[]);
    let want = Config {
        namespace: "mon".into(),
        tetragon_namespace: "tetragon".into(),
        cluster_name: "prod eu".into(),
        external_url: Some(url::Url::parse("https://mon.example.com/").expect("url")),
        ingress_class: Some("traefik".into()),
        ingress_tls_secret: Some("mon-tls".into()),
        image_registry: Some("127.0.0.1:5000/team".into()),
        image_registry_insecure: true,
        image_repository: "team/tt".into(),
        telegraf_image: "telegraf:1.37".into(),
        influxdb_image: "influxdb:2.8".into(),
        helm: PathBuf::from("/opt/helm"),
        charts: Charts {
            tetragon_version: "1.8.0".into(),
            tetragon_repo: "http://charts.local/t".into(),
            prometheus_version: "30.0.0".into(),
            prometheus_repo: "http://charts.local/p".into(),
            grafana_version: "13.0.0".into(),
            grafana_repo: "http://charts.local/g".into(),
        },
        grafana: Grafana {
            port: 80,
            admin_user: "root".into(),
            admin_password: Some(Secret::new("g-pass")),
        },
        influxdb: Influxdb {
            org: "o".into(),
            bucket: "b".into(),
            retention: Duration::ZERO,
            pod_retention: Duration::from_secs(6 * 3600),
            username: "u".into(),
            password: Some(Secret::new("pa ss wo rd")),
            admin_token: Some(Secret::new("tok")),
            port: 9999,
            url: Some(url::Url::parse("https://influx.example.com:8443").expect("url")),
            external_token: Some(Secret::new("ext-tok")),
            storage_size: "500Mi".into(),
            storage_class: Some("fast.ssd".into()),
        },
        scrape_interval: Duration::from_secs(60),
        agent_window: Duration::from_millis(500),
        agent_max_keys: 7,
        agent_top_peers: 0,
        agent_source: AgentSource::KubeLogs,
        image_pull_secret: Some("regcred".into()),
        existing_tetragon: true,
        node_exporter_port: 9101,
        warnings: vec![],
        no_env_file: false,
    };
    assert_eq!(c, want);
}

#[test]
fn no_file_means_the_defaults() {
    let c = config::build(None, &BTreeMap::new()).expect("defaults are valid");
    assert_eq!(c, Config::default());
}
