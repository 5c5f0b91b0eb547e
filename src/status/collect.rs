//! Collecting the report: every check runs, and one that errors leaves the others' results intact.
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::report::{Component, Endpoint, HelmRelease, Influx, Presence, Report};
use crate::backend::helm::{Helm, Release};
use crate::backend::kube::{Kube, describe};
use crate::cluster::tracing_policy_gvk;
use crate::cluster::workloads::{pod_problems, workloads};
use crate::config::Config;
use crate::plan::steps::{DASHBOARD_LABEL, MANAGED_SELECTOR, Plan, release, service};
use crate::plan::{names, secrets};

/// Newest point older than this makes InfluxDB unhealthy: the pipeline has stopped writing.
const STALE_SECONDS: i64 = 300;

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
    let mut components = Vec::new();
    for (name, rel, rns) in parts {
        components.push(component(kube, helm, name, rel, rns).await);
    }
    let expected = |kind: &str| -> Vec<String> {
        plan.objects
            .iter()
            .filter(|o| o.kind() == kind)
            .map(|o| o.name().to_string())
            .collect()
    };
    let policies = presence(expected(names::POLICY_KIND), policy_names(kube).await);
    let dashboards = presence(expected("ConfigMap"), dashboard_names(kube, ns).await);
    let grafana = grafana(kube, config).await;
    let influxdb = influx(kube, config).await;
    let healthy = components.iter().all(|c| c.healthy)
        && policies.healthy
        && dashboards.healthy
        && grafana.healthy
        && influxdb.healthy;
    Report {
        healthy,
        context: kube.context.clone(),
        components,
        policies,
        dashboards,
        grafana,
        influxdb,
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
    let workloads = workloads(kube, ns, rel).await.unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let problems = pod_problems(kube, ns, rel).await.unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
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

async fn grafana(kube: &Kube, config: &Config) -> Endpoint {
    let out = kube
        .proxy_get(
            &config.namespace,
            service::GRAFANA,
            config.grafana.port,
            "api/health",
        )
        .await;
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

/// The InfluxDB container's HTTP port (the Service maps the configured port to it).
const INFLUXDB_HTTP_PORT: u16 = 8086;

fn influx_fail(e: String) -> Influx {
    Influx {
        healthy: false,
        newest_tcp_flow: None,
        age_seconds: None,
        error: Some(e),
    }
}

/// The newest `tcp_flow` point: through a port-forward with the admin token kovenant generated
/// (InfluxDB 2.x wants it, and only a port-forward carries an `Authorization` header to the
/// pod), else through the API server's service proxy (enough for an InfluxDB without auth),
/// else InfluxDB's unauthenticated `/health`.
async fn influx(kube: &Kube, config: &Config) -> Influx {
    let q = "SELECT * FROM \"tcp_flow\" ORDER BY time DESC LIMIT 1";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("db", &config.influxdb.bucket)
        .append_pair("epoch", "s")
        .append_pair("q", q)
        .finish();
    let ns = config.namespace.as_str();
    let token = kube
        .secret_value(ns, secrets::INFLUXDB_SECRET, secrets::INFLUXDB_TOKEN_KEY)
        .await;
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
            Ok((200, body)) => return newest_point(&body),
            Ok((code, body)) => {
                let said = body.lines().next().unwrap_or_default().trim();
                return influx_fail(format!("query through a port-forward: HTTP {code} {said}"));
            }
            // No right to port-forward, say: the service proxy may still do.
            Err(e) => forward_error = Some(e),
        }
    }
    let body = match kube
        .proxy_get(
            ns,
            service::INFLUXDB,
            config.influxdb.port,
            &format!("query?{query}"),
        )
        .await
    {
        Ok(b) => b,
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
            return match health {
                Ok(b) if b.contains("\"pass\"") => Influx {
                    healthy: true,
                    newest_tcp_flow: None,
                    age_seconds: None,
                    error: Some(why),
                },
                Ok(b) => influx_fail(format!("/health: {b}")),
                Err(h) => influx_fail(format!("query: {e}; /health: {h}")),
            };
        }
        Err(e) => return influx_fail(format!("query: {e}")),
    };
    newest_point(&body)
}

/// Reads InfluxQL's answer to the newest-point query.
fn newest_point(body: &str) -> Influx {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return influx_fail(format!("query did not answer JSON: {e}")),
    };
    if let Some(e) = v["results"][0]["error"].as_str().or(v["error"].as_str()) {
        return influx_fail(format!("query: {e}"));
    }
    let Some(ts) = v["results"][0]["series"][0]["values"][0][0].as_i64() else {
        return influx_fail("no tcp_flow point yet".into());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(ts);
    let age = now - ts;
    Influx {
        healthy: age <= STALE_SECONDS,
        newest_tcp_flow: Some(rfc3339(ts)),
        age_seconds: Some(age),
        error: (age > STALE_SECONDS).then(|| format!("newest tcp_flow point is {age}s old")),
    }
}

fn rfc3339(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}
