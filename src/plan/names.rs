//! Fixed names of the releases and objects that render, install and status agree on.

/// Helm release names (each chart's objects derive their names from these).
pub const TETRAGON_RELEASE: &str = "tetragon";
pub const PROMETHEUS_RELEASE: &str = "prometheus";
pub const GRAFANA_RELEASE: &str = "grafana";
pub const PIPELINE_RELEASE: &str = "kovenant-pipeline";

/// The Prometheus server Service: `<release>-server` in the prometheus chart, port 80.
pub const PROMETHEUS_SERVICE: &str = "prometheus-server";
pub const PROMETHEUS_SERVICE_PORT: u16 = 80;

/// Objects of the pipeline chart. Their names are fixed (not derived from the release name) so
/// the Grafana datasource, status and the dashboards can find them.
pub const INFLUXDB_NAME: &str = "kovenant-influxdb";
pub const AGENT_NAME: &str = "kovenant-agent";
/// The agent pod's port where telegraf's outputs.health answers the kubelet's probes (the port of
/// the telegraf chart's health endpoint); the pod's own network namespace, so no node-wide clash.
pub const AGENT_HEALTH_PORT: u16 = 8888;
/// telegraf's flush_interval in the agent's telegraf.conf.
pub const TELEGRAF_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Grafana datasource UIDs the dashboards refer to.
pub const PROMETHEUS_DATASOURCE_UID: &str = "kovenant-prometheus";
pub const INFLUXDB_DATASOURCE_UID: &str = "kovenant-influxdb";

/// Label the Grafana dashboard sidecar watches: install labels every dashboard ConfigMap with it.
pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
pub const DASHBOARD_LABEL_VALUE: &str = "1";

/// The Role (made by the Grafana release's `extraObjects`) that lets Grafana's dashboard sidecar
/// list and watch ConfigMaps in kovenant's namespace, and nothing else.
pub const GRAFANA_SIDECAR_ROLE: &str = "kovenant-grafana-dashboards";

/// Tetragon's TracingPolicy: group, version, kind and plural, and the CRD that defines it (Tetragon's
/// chart brings it; install waits for it before applying policies, uninstall leaves it).
pub const POLICY_GROUP: &str = "cilium.io";
pub const POLICY_VERSION: &str = "v1alpha1";
pub const POLICY_KIND: &str = "TracingPolicy";
pub const POLICY_PLURAL: &str = "tracingpolicies";
pub const POLICY_CRD: &str = "tracingpolicies.cilium.io";

/// TracingPolicy names (cluster-scoped).
pub const POLICIES: &[&str] = &["kovenant-tcp"];

/// TracingPolicies of earlier versions that install deletes where it finds them: `kovenant-io`
/// hooked every `read(2)` and `write(2)` (one event per call), which the agent now reads from
/// `/proc/<pid>/io` instead.
pub const RETIRED_POLICIES: &[&str] = &["kovenant-io"];

/// Tetragon's JSON export, which the agent follows on every node.
pub const TETRAGON_EXPORT_DIR: &str = "/var/log/tetragon";
pub const TETRAGON_EXPORT_FILE: &str = "tetragon.log";

/// Where the binaries of the pipeline live in their images: the policies exclude them in the
/// kernel so the pipeline does not observe (and feed on) its own reads and writes.
pub const TETRAGON_BINARY: &str = "/usr/bin/tetragon";
pub const TELEGRAF_BINARY: &str = "/usr/bin/telegraf";
pub const AGENT_BINARY: &str = "/usr/local/bin/kovenant";
/// influxd of the official influxdb:2 image: its writes of what telegraf sends are not traffic.
pub const INFLUXDB_BINARY: &str = "/usr/local/bin/influxd";

/// The retention policy (InfluxQL) of the pod-level data, and the measurement it holds.
pub const POD_RP: &str = "pods";
pub const POD_MEASUREMENT: &str = "pod_activity";

/// The pod-level bucket: `<bucket>/pods`, which InfluxDB 2.x's virtual DBRP mapping serves to
/// InfluxQL as database `<bucket>`, retention policy `pods` (and InfluxDB 1.8's v2 write API
/// reads as the same database and retention policy).
pub fn pod_bucket(bucket: &str) -> String {
    format!("{bucket}/{POD_RP}")
}
