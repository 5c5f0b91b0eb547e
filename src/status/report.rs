//! The status report: a stable JSON shape (documented on each field) and a text table.
use serde::Serialize;

use crate::cluster::workloads::{PodProblem, Workload};
use crate::ui::Printer;

/// `kovenant status -o json`. Fields are never removed or renamed; new ones may be added.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// true when every component below is healthy.
    pub healthy: bool,
    /// Why no check could be made at all (no configuration, no cluster); empty otherwise. Then
    /// `components` is empty and every other part says the same.
    pub errors: Vec<String>,
    /// The kubeconfig context inspected.
    pub context: String,
    /// One per release, in install order: tetragon, prometheus, grafana, pipeline.
    pub components: Vec<Component>,
    pub policies: Presence,
    pub dashboards: Presence,
    pub grafana: Endpoint,
    pub influxdb: Influx,
    /// Tetragon's drop counters per node, from Prometheus; a rise is a warning, never unhealthy.
    pub tetragon_drops: super::drops::Drops,
    /// Checks that could not be made (helm cannot run, say): the stack is then neither called
    /// healthy nor unhealthy, and status exits 1.
    pub cannot_check: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// `tetragon`, `prometheus`, `grafana` or `pipeline`.
    pub name: String,
    pub release: String,
    pub namespace: String,
    pub healthy: bool,
    /// null when the release is not installed.
    pub helm: Option<HelmRelease>,
    pub workloads: Vec<Workload>,
    /// Pods that are not ready, with the reason (e.g. CrashLoopBackOff).
    pub problems: Vec<PodProblem>,
    /// Checks that could not be made (the rest of the report is kept).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelmRelease {
    pub chart: String,
    pub version: String,
    pub app_version: String,
    pub revision: u64,
    /// helm's status: deployed, failed, pending-upgrade, ...
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Presence {
    pub healthy: bool,
    pub expected: Vec<String>,
    pub present: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub healthy: bool,
    /// Grafana's version from /api/health.
    pub version: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Influx {
    /// Every node the cluster has now has an agent whose newest `kovenant_agent` point is within
    /// `stale_after_seconds` and shows a real view of its node (more than one network namespace,
    /// more than zero sockets).
    pub healthy: bool,
    /// RFC 3339 time of the newest `tcp_flow` point; null when there is none.
    pub newest_tcp_flow: Option<String>,
    /// Age of that `tcp_flow` point.
    pub age_seconds: Option<i64>,
    pub error: Option<String>,
    /// The newest `kovenant_agent` point of each node the cluster has now, within
    /// `lookback_seconds` (the agent writes one every window, traffic or not, so a silent node
    /// means a stopped pipeline). Points of nodes that are gone are not judged.
    pub agents: Vec<AgentPoint>,
    /// Three agent windows.
    pub stale_after_seconds: i64,
    /// How far back status reads agent points: older ones neither fail status nor stand in for
    /// a live agent.
    pub lookback_seconds: i64,
    /// The user's own InfluxDB (`KOVENANT_INFLUXDB_URL`); absent for the pipeline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentPoint {
    pub node: String,
    pub newest: String,
    pub age_seconds: i64,
    /// Network namespaces, sockets and processes the agent read in that window; null when the
    /// point does not carry the field (an agent older than this kovenant).
    pub netns: Option<i64>,
    pub sockets: Option<i64>,
    pub processes: Option<i64>,
    /// Why this node's agent is not healthy; null when it is.
    pub problem: Option<String>,
}

impl Report {
    /// The report of a run that could check nothing: `error` says why.
    pub fn unchecked(context: String, error: String) -> Report {
        let presence = || Presence {
            healthy: false,
            expected: Vec::new(),
            present: Vec::new(),
            errors: vec![error.clone()],
        };
        Report {
            healthy: false,
            errors: vec![error.clone()],
            context,
            components: Vec::new(),
            policies: presence(),
            dashboards: presence(),
            grafana: Endpoint {
                healthy: false,
                version: None,
                error: Some(error.clone()),
            },
            influxdb: Influx {
                healthy: false,
                newest_tcp_flow: None,
                age_seconds: None,
                error: Some(error.clone()),
                agents: Vec::new(),
                stale_after_seconds: 0,
                lookback_seconds: 0,
                url: None,
            },
            tetragon_drops: super::drops::Drops::failed(error),
            cannot_check: Vec::new(),
        }
    }

    /// The parts that are not healthy, by name: "grafana, influxdb".
    pub fn summary(&self) -> String {
        let mut bad: Vec<&str> = self
            .components
            .iter()
            .filter(|c| !c.healthy)
            .map(|c| c.name.as_str())
            .collect();
        for (ok, name) in [
            (self.policies.healthy, "policies"),
            (self.dashboards.healthy, "dashboards"),
            (self.grafana.healthy, "grafana-api"),
            (self.influxdb.healthy, "influxdb"),
        ] {
            if !ok {
                bad.push(name);
            }
        }
        bad.join(", ")
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAIL" }
}

impl Report {
    /// No release of kovenant and none of its policies or dashboards, with every check made:
    /// kovenant is not installed in this context (rather than broken).
    pub fn not_installed(&self) -> bool {
        !self.components.is_empty()
            && self
                .components
                .iter()
                .all(|c| c.helm.is_none() && c.errors.is_empty())
            && [&self.policies, &self.dashboards]
                .iter()
                .all(|p| p.present.is_empty() && p.errors.is_empty())
    }
}

/// A presence row: what is there when all is, else what is missing and why. `part` names the
/// `--only` part that puts them back.
fn presence_row(p: &Presence, part: &str, installed: bool) -> String {
    if !p.errors.is_empty() {
        return format!("cannot list: {}", p.errors.join("; "));
    }
    let missing: Vec<&str> = p
        .expected
        .iter()
        .filter(|e| !p.present.contains(e))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return p.present.join(", ");
    }
    if !installed {
        return "none present: not installed, run kovenant install".to_string();
    }
    let present = if p.present.is_empty() {
        "none present".to_string()
    } else {
        format!("present: {}", p.present.join(", "))
    };
    format!(
        "missing {} ({present}); kovenant install --only {part} puts them back",
        missing.join(", ")
    )
}

/// Left-aligned columns as wide as their widest cell, two spaces apart (the last unpadded).
fn columns(rows: &[Vec<String>]) -> Vec<String> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The status table's lines (stdout), without the verdict.
pub fn table(r: &Report) -> Vec<String> {
    let installed = !r.not_installed();
    let mut out = vec![format!("context {}", r.context)];
    let mut rows = vec![
        [
            "COMPONENT",
            "OK?",
            "RELEASE",
            "NAMESPACE",
            "CHART",
            "REV",
            "HELM",
            "READY",
        ]
        .map(String::from)
        .to_vec(),
    ];
    // Pod problems and failed checks go under their component's row.
    let mut under: Vec<Vec<String>> = vec![Vec::new()];
    for c in &r.components {
        let (chart, rev, status) = match &c.helm {
            Some(h) => (h.version.clone(), h.revision.to_string(), h.status.clone()),
            // helm could not say whether the release is there.
            None if !r.cannot_check.is_empty() || !c.errors.is_empty() => {
                ("-".into(), "-".into(), "could not check".into())
            }
            None => ("-".into(), "-".into(), "not installed".into()),
        };
        let ready: Vec<String> = c
            .workloads
            .iter()
            .map(|w| format!("{} {}/{}", w.name, w.ready, w.desired))
            .collect();
        let ready = if ready.is_empty() && c.helm.is_some() {
            "no workload found".to_string()
        } else {
            ready.join(", ")
        };
        rows.push(vec![
            c.name.clone(),
            mark(c.healthy).into(),
            c.release.clone(),
            c.namespace.clone(),
            chart,
            rev,
            status,
            ready,
        ]);
        let mut notes = Vec::new();
        for p in &c.problems {
            let msg = if p.message.is_empty() {
                String::new()
            } else {
                format!(": {}", p.message)
            };
            notes.push(format!("  pod {}/{} {}{msg}", p.namespace, p.pod, p.reason));
        }
        for e in &c.errors {
            notes.push(format!("  cannot check: {e}"));
        }
        under.push(notes);
    }
    for (row, notes) in columns(&rows).into_iter().zip(under) {
        out.push(row);
        out.extend(notes);
    }
    let row = |name: &str, ok: bool, detail: String| format!("{name:<11} {:<4} {detail}", mark(ok));
    out.push(row(
        "policies",
        r.policies.healthy,
        presence_row(&r.policies, "policies", installed),
    ));
    out.push(row(
        "dashboards",
        r.dashboards.healthy,
        presence_row(&r.dashboards, "dashboards", installed),
    ));
    let g = match (&r.grafana.version, &r.grafana.error) {
        (_, Some(e)) => e.clone(),
        (Some(v), None) => format!("answering /api/health (version {v})"),
        (None, None) => "answering /api/health".into(),
    };
    // Not "grafana" again: the release has that row; this one is Grafana's HTTP API.
    out.push(row("grafana-api", r.grafana.healthy, g));
    let i = match &r.influxdb.error {
        Some(e) => e.clone(),
        None => {
            let nodes: Vec<String> = r
                .influxdb
                .agents
                .iter()
                .map(|a| match (a.netns, a.sockets) {
                    (Some(n), Some(s)) => {
                        format!("{} {}s ago, {n} netns, {s} sockets", a.node, a.age_seconds)
                    }
                    _ => format!("{} {}s ago", a.node, a.age_seconds),
                })
                .collect();
            let flow = match (&r.influxdb.newest_tcp_flow, r.influxdb.age_seconds) {
                (Some(t), Some(age)) => format!("newest tcp_flow point {t} ({age}s ago)"),
                _ => "no tcp_flow point yet".into(),
            };
            format!("agents writing ({}); {flow}", nodes.join("; "))
        }
    };
    let i = match &r.influxdb.url {
        Some(url) => format!("{url}: {i}"),
        None => i,
    };
    out.push(row("influxdb", r.influxdb.healthy, i));
    out.push(drops_row(&r.tetragon_drops));
    out
}

/// Tetragon's drops: `ok`, `WARN` when a count rose, `?` when they could not be read (neither
/// makes the stack unhealthy).
fn drops_row(d: &super::drops::Drops) -> String {
    let (mark, detail) = match (&d.error, &d.warning) {
        (Some(e), _) => ("?", e.clone()),
        (None, Some(w)) => ("WARN", w.clone()),
        (None, None) => {
            let nodes: Vec<String> = d
                .nodes
                .iter()
                .map(|n| format!("{} {}", n.node, n.total.values().sum::<u64>()))
                .collect();
            (
                "ok",
                format!(
                    "Tetragon lost no event in the last {}m (lost in total: {})",
                    d.rise_seconds / 60,
                    nodes.join(", ")
                ),
            )
        }
    };
    format!("{:<11} {mark:<4} {detail}", "drops")
}

/// The status table, on stdout: it is the command's data (`kovenant status | grep FAIL`).
/// Each failing row says what is wrong and why; the verdict is a message, on stderr.
pub fn print_text(printer: &Printer, r: &Report) {
    for line in table(r) {
        printer.stdout(line);
    }
    if let Some(w) = &r.tetragon_drops.warning {
        printer.warn(w);
    }
    if r.healthy {
        printer.success("the stack is healthy");
    } else if r.not_installed() {
        printer.always(format!(
            "× kovenant is not installed in context {}: run kovenant install",
            r.context
        ));
    } else {
        printer.always(format!("× the stack is not healthy: {}", r.summary()));
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
