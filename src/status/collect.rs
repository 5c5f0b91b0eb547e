//! Collecting the report: every check runs, and one that errors leaves the others' results intact.
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::agents;
use super::drops::{self, Drops};
use super::report::{Component, Endpoint, HelmRelease, Influx, Presence, Report};
use crate::backend::helm::{Helm, Release};
use crate::backend::kube::{Kube, describe};
use crate::cluster::tracing_policy_gvk;
use crate::cluster::workloads::observe;
use crate::config::Config;
use crate::plan::steps::{DASHBOARD_LABEL, MANAGED_SELECTOR, Plan, release, service};
use crate::plan::{names, secrets};

pub async fn collect(kube: &Kube, helm: &Helm, config: &Config, plan: &Plan) -> Report {
    let ns = config.namespace.as_str();
    let parts = [
        (
            "tetragon",
            release::TETRAGON,
            config.tetragon_namespace.as_str(),
        ),
        ("prometheus", release::PROMETHEUS, ns),
        ("grafana", release::GRAFANA, ns),
        ("pipeline", release::PIPELINE, ns),
    ];
    // Every question is independent: ask them all at once (helm's lists, the API, InfluxDB).
    let components = futures::future::join_all(
        parts
            .into_iter()
            .map(|(name, rel, rns)| component(kube, helm, name, rel, rns)),
    );
    let expected = |kind: &str| -> Vec<String> {
        plan.objects
            .iter()
            .filter(|o| o.kind() == kind)
            .map(|o| o.name().to_string())
            .collect()
    };
    let (helm_runs, components, policies, dashboards, grafana, influxdb, tetragon_drops) = tokio::join!(
        helm.version(),
        components,
        policy_names(kube),
        dashboard_names(kube, ns),
        grafana(kube, config),
        influx(kube, config),
        tetragon_drops(kube, config)
    );
    let policies = presence(expected(names::POLICY_KIND), policies);
    let dashboards = presence(expected("ConfigMap"), dashboards);
    let healthy = components.iter().all(|c| c.healthy)
        && policies.healthy
        && dashboards.healthy
        && grafana.healthy
        && influxdb.healthy;
    // A helm that cannot run says nothing of the releases: not "not installed", but unknown.
    let cannot_check = match helm_runs {
        Ok(_) => Vec::new(),
        Err(e) => vec![format!("the releases: {e}")],
    };
    Report {
        healthy: healthy && cannot_check.is_empty(),
        cannot_check,
        errors: Vec::new(),
        context: kube.context.clone(),
        components,
        policies,
        dashboards,
        grafana,
        influxdb,
        tetragon_drops,
    }
}

fn helm_release(r: &Release) -> HelmRelease {
    // helm prints `<chart>-<version>`; the version starts after the first `-` followed by a digit
    // (a pre-release suffix such as `-rc.1` may contain more dashes).
    let split = r
        .chart
        .char_indices()
        .filter(|(i, c)| *c == '-' && r.chart[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next();
    let (chart, version) = match split {
        Some(i) => (r.chart[..i].to_string(), r.chart[i + 1..].to_string()),
        None => (r.chart.clone(), String::new()),
    };
    HelmRelease {
        chart,
        version,
        app_version: r.app_version.clone(),
        revision: r.revision.parse().unwrap_or(0),
        status: r.status.clone(),
    }
}

async fn component(kube: &Kube, helm: &Helm, name: &str, rel: &str, ns: &str) -> Component {
    let mut errors = Vec::new();
    let helm_info = match helm.list(ns).await {
        Ok(list) => list.iter().find(|r| r.name == rel).map(helm_release),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    // One look at the release for both, so they agree.
    let (workloads, problems) = match observe(kube, ns, rel).await {
        Ok(seen) => (seen.workloads(), seen.problems()),
        Err(e) => {
            errors.push(e);
            (Vec::new(), Vec::new())
        }
    };
    let healthy = errors.is_empty()
        && helm_info.as_ref().is_some_and(|h| h.status == "deployed")
        && !workloads.is_empty()
        && workloads.iter().all(|w| w.ready >= w.desired)
        && problems.is_empty();
    Component {
        name: name.into(),
        release: rel.into(),
        namespace: ns.into(),
        healthy,
        helm: helm_info,
        workloads,
        problems,
        errors,
    }
}

fn presence(expected: Vec<String>, found: Result<Vec<String>, String>) -> Presence {
    match found {
        Ok(present) => Presence {
            healthy: expected.iter().all(|e| present.contains(e)),
            expected,
            present,
            errors: vec![],
        },
        Err(e) => Presence {
            healthy: false,
            expected,
            present: vec![],
            errors: vec![e],
        },
    }
}

async fn policy_names(kube: &Kube) -> Result<Vec<String>, String> {
    let Some(ar) = kube.resource(&tracing_policy_gvk()).await? else {
        return Err(format!(
            "the API server does not serve {}/{} {} (is Tetragon installed?)",
            names::POLICY_GROUP,
            names::POLICY_VERSION,
            names::POLICY_KIND
        ));
    };
    let list = kube.list(&ar, None, MANAGED_SELECTOR).await?;
    Ok(list.into_iter().filter_map(|o| o.metadata.name).collect())
}

async fn dashboard_names(kube: &Kube, ns: &str) -> Result<Vec<String>, String> {
    let lp = ListParams::default().labels(&format!(
        "{MANAGED_SELECTOR},{}={}",
        DASHBOARD_LABEL.0, DASHBOARD_LABEL.1
    ));
    let list = Api::<ConfigMap>::namespaced(kube.client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| describe(&e))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect())
}

/// A Ready pod of a release's workload, by its `app.kubernetes.io/name`.
pub(crate) async fn ready_pod(kube: &Kube, ns: &str, release: &str, name: &str) -> Option<String> {
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={release},app.kubernetes.io/name={name}"
    ));
    let pods = Api::<Pod>::namespaced(kube.client.clone(), ns)
        .list(&lp)
        .await
        .ok()?;
    pods.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .and_then(|p| p.metadata.name)
}

/// Grafana's container port (the chart's `service.targetPort`).
pub(crate) const GRAFANA_HTTP_PORT: u16 = 3000;

/// Grafana's `/api/health`, through a port-forward to a Ready Grafana pod (as `kubectl
/// port-forward` reaches it), else through the API server's service proxy.
async fn grafana(kube: &Kube, config: &Config) -> Endpoint {
    let ns = config.namespace.as_str();
    let forwarded = match ready_pod(kube, ns, release::GRAFANA, "grafana").await {
        Some(pod) => kube
            .port_forward_get(ns, &pod, GRAFANA_HTTP_PORT, "/api/health", &[])
            .await
            .and_then(|(code, body)| match code {
                200 => Ok(body),
                _ => Err(format!("HTTP {code} through a port-forward to {pod}")),
            }),
        None => Err("no Grafana pod is ready".to_string()),
    };
    let out = match forwarded {
        Ok(body) => Ok(body),
        Err(forward) => kube
            .proxy_get(ns, service::GRAFANA, config.grafana.port, "api/health")
            .await
            .map_err(|proxy| format!("{forward}; through the service proxy: {proxy}")),
    };
    match out.map(|body| serde_json::from_str::<Value>(&body)) {
        Ok(Ok(v)) if v["database"] == "ok" => Endpoint {
            healthy: true,
            version: v["version"].as_str().map(str::to_owned),
            error: None,
        },
        Ok(Ok(v)) => Endpoint {
            healthy: false,
            version: None,
            error: Some(format!("/api/health says database is {}", v["database"])),
        },
        Ok(Err(e)) => Endpoint {
            healthy: false,
            version: None,
            error: Some(format!("/api/health did not answer JSON: {e}")),
        },
        Err(e) => Endpoint {
            healthy: false,
            version: None,
            error: Some(format!("/api/health: {e}")),
        },
    }
}

/// The Prometheus server's container port (the chart's `prometheus.port`).
const PROMETHEUS_HTTP_PORT: u16 = 9090;

/// Tetragon's drop counters, from Prometheus's query API through a port-forward to a Ready
/// server pod (Prometheus has no auth; the port-forward keeps it off the network). They never
/// make the stack unhealthy: a rise is a warning, and a Prometheus that cannot answer is the
/// prometheus row's business.
async fn tetragon_drops(kube: &Kube, config: &Config) -> Drops {
    let ns = config.namespace.as_str();
    let Some(pod) = ready_pod(kube, ns, release::PROMETHEUS, "prometheus").await else {
        return Drops::failed("no Prometheus server pod is ready to ask".into());
    };
    let ask = |rise: bool| {
        let pod = pod.clone();
        async move {
            let path = format!(
                "/api/v1/query?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", &drops::query(rise))
                    .finish()
            );
            match kube
                .port_forward_get(ns, &pod, PROMETHEUS_HTTP_PORT, &path, &[])
                .await
            {
                // Prometheus answers a bad query with 400 and a JSON error: parse says it.
                Ok((200 | 400 | 422, body)) => drops::parse(&body),
                Ok((code, body)) => Err(format!(
                    "HTTP {code} {}",
                    body.lines().next().unwrap_or_default().trim()
                )),
                Err(e) => Err(e),
            }
        }
    };
    match tokio::join!(ask(false), ask(true)) {
        (Ok(totals), Ok(rises)) => drops::judge(totals, rises),
        (Err(e), _) | (_, Err(e)) => Drops::failed(format!(
            "cannot read Tetragon's counters from Prometheus ({pod}): {e}"
        )),
    }
}

/// The InfluxDB container's HTTP port (the Service maps the configured port to it).
const INFLUXDB_HTTP_PORT: u16 = 8086;

fn influx_fail(e: String, stale_after_seconds: i64) -> Influx {
    Influx {
        healthy: false,
        newest_tcp_flow: None,
        age_seconds: None,
        error: Some(e),
        agents: Vec::new(),
        stale_after_seconds,
        lookback_seconds: 0,
        url: None,
    }
}

/// Why an InfluxQL query got no answer; `Health` when only `/health` could be read.
pub(crate) enum QueryError {
    Failed(String),
    Health(String),
}

/// One InfluxQL query: through a port-forward with the admin token kovenant generated
/// (InfluxDB 2.x wants it, and only a port-forward carries an `Authorization` header to the
/// pod), else through the API server's service proxy (enough for an InfluxDB without auth),
/// else InfluxDB's unauthenticated `/health`.
pub(crate) async fn influx_query(
    kube: &Kube,
    config: &Config,
    q: &str,
) -> Result<String, QueryError> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("db", &config.influxdb.bucket)
        .append_pair("epoch", "s")
        .append_pair("q", q)
        .finish();
    let ns = config.namespace.as_str();
    // Grafana's read-only token: status and top only read. The operator token only where there
    // is none yet (an install from before scoped tokens).
    let token = match kube
        .secret_value(ns, secrets::GRAFANA_TOKEN.secret, secrets::SCOPED_TOKEN_KEY)
        .await
    {
        Some(t) => Some(t),
        None => {
            kube.secret_value(ns, secrets::INFLUXDB_SECRET, secrets::INFLUXDB_TOKEN_KEY)
                .await
        }
    };
    if let Some(url) = &config.influxdb.url {
        // The user's own InfluxDB: straight there, with the token of the configuration (the
        // one install put in the Secret when the configuration has none).
        let token = config
            .influxdb
            .external_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .or(token)
            .ok_or_else(|| {
                QueryError::Failed(format!(
                    "no token for {}: set KOVENANT_INFLUXDB_TOKEN, or run kovenant install",
                    url.origin().ascii_serialization()
                ))
            })?;
        return external_query(url, &token, &query).await;
    }
    let mut forward_error = None;
    if let Some(token) = token {
        let auth = format!("Token {token}");
        let pod = format!("{}-0", names::INFLUXDB_NAME);
        match kube
            .port_forward_get(
                ns,
                &pod,
                INFLUXDB_HTTP_PORT,
                &format!("/query?{query}"),
                &[("Authorization", auth.as_str())],
            )
            .await
        {
            Ok((200, body)) => return Ok(body),
            Ok((code, body)) => {
                let said = body.lines().next().unwrap_or_default().trim();
                return Err(QueryError::Failed(format!(
                    "query through a port-forward: HTTP {code} {said}"
                )));
            }
            // No right to port-forward, say: the service proxy may still do.
            Err(e) => forward_error = Some(e),
        }
    }
    match kube
        .proxy_get(
            ns,
            service::INFLUXDB,
            config.influxdb.port,
            &format!("query?{query}"),
        )
        .await
    {
        Ok(b) => Ok(b),
        Err(e) if e.contains("unauthorized") || e.contains("401") => {
            // The API server strips the Authorization header from proxied requests (and a
            // token in the URL would land in its audit log): settle for /health.
            let why = match &forward_error {
                Some(f) => format!("answering /health; the newest point needs the token, and {f}"),
                None => "answering /health; the newest point needs a token the API server's proxy does not pass".into(),
            };
            let health = kube
                .proxy_get(ns, service::INFLUXDB, config.influxdb.port, "health")
                .await;
            Err(match health {
                Ok(b) if b.contains("\"pass\"") => QueryError::Health(why),
                Ok(b) => QueryError::Failed(format!("/health: {b}")),
                Err(h) => QueryError::Failed(format!("query: {e}; /health: {h}")),
            })
        }
        Err(e) => Err(QueryError::Failed(match forward_error {
            Some(f) => format!("query: {f}; through the service proxy: {e}"),
            None => format!("query: {e}"),
        })),
    }
}

/// An InfluxQL query to the user's own InfluxDB (its v1 query API, which InfluxDB 1.8, 2.x,
/// Cloud and 3 all serve), the token in the header.
async fn external_query(url: &url::Url, token: &str, query: &str) -> Result<String, QueryError> {
    let auth = format!("Token {token}");
    match crate::backend::http::get(
        url,
        &format!("/query?{query}"),
        &[("Authorization", auth.as_str())],
    )
    .await
    {
        Ok((200, body)) => Ok(body),
        Ok((code @ (401 | 403), _)) => Err(QueryError::Failed(format!(
            "{}/query: HTTP {code}: the token was refused; check KOVENANT_INFLUXDB_TOKEN \
             (it needs read on the bucket)",
            url.origin().ascii_serialization()
        ))),
        Ok((code, body)) => {
            let said = body.lines().next().unwrap_or_default().trim();
            Err(QueryError::Failed(format!(
                "{}/query: HTTP {code} {said}",
                url.origin().ascii_serialization()
            )))
        }
        Err(e) => Err(QueryError::Failed(e)),
    }
}

impl QueryError {
    pub(crate) fn message(self) -> String {
        match self {
            QueryError::Failed(m) | QueryError::Health(m) => m,
        }
    }
}

/// Data flows when every node's agent wrote its `kovenant_agent` point within three windows:
/// it writes one every window, traffic or not. The newest `tcp_flow` point is shown beside it.
async fn influx(kube: &Kube, config: &Config) -> Influx {
    Influx {
        url: config
            .influxdb
            .url
            .as_ref()
            .map(|u| u.origin().ascii_serialization()),
        ..influx_points(kube, config).await
    }
}

async fn influx_points(kube: &Kube, config: &Config) -> Influx {
    let window = config.agent_window.as_secs();
    let stale = (3 * window).max(1) as i64;
    let lookback = agents::lookback_seconds(window);
    let fail = |e: String| Influx {
        lookback_seconds: lookback,
        ..influx_fail(e, stale)
    };
    let query = agents::query(lookback);
    let (answer, nodes) = tokio::join!(influx_query(kube, config, &query), node_names(kube));
    let body = match answer {
        Ok(b) => b,
        Err(QueryError::Failed(e)) => return fail(e),
        // Only /health answered: InfluxDB is up, but whether data flows is unknown.
        Err(QueryError::Health(why)) => return fail(why),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let points = match agents::parse(&body, now) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let flow = "SELECT * FROM \"tcp_flow\" ORDER BY time DESC LIMIT 1";
    let newest_flow = match influx_query(kube, config, flow).await {
        Ok(b) => series_values(&b)
            .ok()
            .and_then(|v| v.first().and_then(|row| row[0].as_i64())),
        Err(_) => None,
    };
    // Without the node list (no right to list nodes), every node with a point is judged, and the
    // row says why nodes without one are not.
    let judged = agents::judge(points, nodes.as_deref().ok(), stale, lookback);
    let error = match (judged.error, nodes) {
        (e, Ok(_)) => e,
        (Some(e), Err(n)) => Some(format!("{e}; cannot list nodes: {n}")),
        (None, Err(_)) => None,
    };
    Influx {
        healthy: error.is_none(),
        newest_tcp_flow: newest_flow.map(rfc3339),
        age_seconds: newest_flow.map(|ts| now - ts),
        error,
        agents: judged.agents,
        stale_after_seconds: stale,
        lookback_seconds: lookback,
        url: None,
    }
}

/// The names of the nodes the cluster has now.
async fn node_names(kube: &Kube) -> Result<Vec<String>, String> {
    let list = Api::<Node>::all(kube.client.clone())
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| describe(&e))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

/// The rows of the first series of InfluxQL's answer; an error for an error answer.
fn series_values(body: &str) -> Result<Vec<Value>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("query did not answer JSON: {e}"))?;
    if let Some(e) = v["results"][0]["error"].as_str().or(v["error"].as_str()) {
        return Err(format!("query: {e}"));
    }
    Ok(v["results"][0]["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

pub(crate) fn rfc3339(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}
