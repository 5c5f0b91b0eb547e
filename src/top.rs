//! `kovenant top`: the busiest flows and pods of the last minutes, summed in InfluxDB (InfluxQL,
//! through the same port-forward as `status`), grouped by workload, pod, release or external peer.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{GlobalArgs, OutputFormat, TopArgs, TopBy};
use crate::cluster::{runtime, session};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::names;
use crate::status::collect::influx_query;
use crate::ui::Printer;

/// The `tcp_flow` fields summed per group (DESIGN.md section 3); the mean RTT is
/// `rtt_us_sum / rtt_samples` of the group, never a mean of means.
const FLOW_FIELDS: [&str; 7] = [
    "bytes_sent",
    "bytes_received",
    "retrans_bytes",
    "connects",
    "accepts",
    "rtt_us_sum",
    "rtt_samples",
];
/// What the text table shows of them, before the mean RTT and the total.
const FLOW_SHOWN: [&str; 5] = [
    "bytes_sent",
    "bytes_received",
    "retrans_bytes",
    "connects",
    "accepts",
];
/// System-call bytes (`rchar`, `wchar`) and storage bytes (`read_bytes`, `write_bytes` of
/// `/proc/<pid>/io`).
const IO_FIELDS: [&str; 4] = [
    "read_bytes",
    "write_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
];
const PEER: [&str; 4] = ["peer_type", "peer_namespace", "peer_name", "port"];

/// The fields whose sum is a row's `total_bytes`: the payload moved, not retransmissions or
/// storage bytes, which the system-call bytes already hold.
const TOTAL: [&str; 4] = ["bytes_sent", "bytes_received", "read_bytes", "write_bytes"];

/// One row: the group's tags and its sums; `total_bytes` orders the rows.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub tags: BTreeMap<String, String>,
    #[serde(flatten)]
    pub sums: BTreeMap<String, i64>,
    pub total_bytes: i64,
    /// Mean smoothed round-trip time of the flows' sockets, in µs (flows only; null without a
    /// live-socket sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<Option<i64>>,
}

/// `kovenant top -o json`.
#[derive(Debug, Serialize)]
pub struct Top {
    pub since_seconds: u64,
    pub by: String,
    pub flows: Vec<Row>,
    /// Reads and writes per group (none for `--by external`).
    pub pods: Vec<Row>,
    pub errors: Vec<String>,
}

/// What each table reads: the series (`FROM`) and its tag columns, per `by`.
struct Tables {
    flow_from: String,
    flow_tags: Vec<&'static str>,
    io: Option<(String, Vec<&'static str>)>,
}

fn tables(by: TopBy) -> Tables {
    let quoted = |m: &str| format!("\"{m}\"");
    let with_peer = |src: &[&'static str]| {
        let mut tags = src.to_vec();
        tags.extend(PEER);
        tags
    };
    match by {
        TopBy::Workload => Tables {
            flow_from: quoted("tcp_flow"),
            flow_tags: with_peer(&["src_namespace", "src_workload"]),
            io: Some((quoted("pod_io"), vec!["namespace", "workload"])),
        },
        // Pods live in the pod-level bucket (InfluxQL: retention policy "pods"), one
        // pod_activity point per pod and window with both its traffic and its I/O
        // (docs/series-budget.md); tcp_flow and pod_io are per workload.
        TopBy::Pod => {
            let pods = format!("\"pods\".{}", quoted("pod_activity"));
            Tables {
                flow_from: pods.clone(),
                flow_tags: vec!["namespace", "workload", "pod"],
                io: Some((pods, vec!["namespace", "workload", "pod"])),
            }
        }
        TopBy::Release => Tables {
            flow_from: quoted("tcp_flow"),
            flow_tags: with_peer(&["src_release"]),
            io: Some((quoted("pod_io"), vec!["release"])),
        },
        TopBy::External => Tables {
            flow_from: quoted("tcp_flow"),
            flow_tags: with_peer(&["src_namespace", "src_workload"]),
            io: None,
        },
    }
}

fn by_name(by: TopBy) -> &'static str {
    match by {
        TopBy::Workload => "workload",
        TopBy::Pod => "pod",
        TopBy::Release => "release",
        TopBy::External => "external",
    }
}

fn query(from: &str, fields: &[&str], tags: &[&str], since: u64, only_external: bool) -> String {
    let sums: Vec<String> = fields
        .iter()
        .map(|f| format!("sum(\"{f}\") AS \"{f}\""))
        .collect();
    let group: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    let external = if only_external {
        " AND \"peer_type\" = 'external'"
    } else {
        ""
    };
    format!(
        "SELECT {} FROM {from} WHERE time > now() - {since}s{external} GROUP BY {}",
        sums.join(", "),
        group.join(", ")
    )
}

/// InfluxQL's answer (one series per group) -> rows, busiest first.
fn rows(body: &str, tags: &[&str], fields: &[&str], limit: usize) -> Result<Vec<Row>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("InfluxDB did not answer JSON: {e}"))?;
    if let Some(e) = v["results"][0]["error"].as_str().or(v["error"].as_str()) {
        return Err(format!("InfluxDB: {e}"));
    }
    let mut out: Vec<Row> = Vec::new();
    for s in v["results"][0]["series"].as_array().into_iter().flatten() {
        let columns: Vec<&str> = s["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let values = &s["values"][0];
        let mut sums = BTreeMap::new();
        for f in fields {
            let at = columns.iter().position(|c| c == f);
            let n = at.and_then(|i| values[i].as_i64()).unwrap_or(0);
            sums.insert((*f).to_string(), n);
        }
        let tags = tags
            .iter()
            .map(|t| {
                let value = s["tags"][*t].as_str().unwrap_or_default().to_string();
                ((*t).to_string(), value)
            })
            .collect();
        let total_bytes = TOTAL.iter().filter_map(|f| sums.get(*f)).sum();
        let rtt_us = fields.contains(&"rtt_samples").then(|| {
            let samples = sums.get("rtt_samples").copied().unwrap_or(0);
            (samples > 0).then(|| sums.get("rtt_us_sum").copied().unwrap_or(0) / samples)
        });
        out.push(Row {
            tags,
            sums,
            total_bytes,
            rtt_us,
        });
    }
    out.sort_by(|a, b| {
        b.total_bytes
            .cmp(&a.total_bytes)
            .then_with(|| a.tags.cmp(&b.tags))
    });
    out.truncate(limit);
    Ok(out)
}

pub fn run(global: &GlobalArgs, args: &TopArgs, printer: &Printer) -> Result<()> {
    let out = runtime::block_on(printer, collect(global, args, printer));
    match (out, args.output) {
        (Ok(top), OutputFormat::Json) => {
            let text = serde_json::to_string_pretty(&top)
                .map_err(|e| Error::step("top", e.to_string()))?;
            printer.stdout(text);
            Ok(())
        }
        (Ok(top), OutputFormat::Text) => {
            print_text(printer, &top);
            Ok(())
        }
        // `-o json` prints JSON whatever happens, the error inside.
        (Err(e), OutputFormat::Json) => {
            let top = Top {
                since_seconds: args.since.as_secs(),
                by: by_name(args.by).into(),
                flows: Vec::new(),
                pods: Vec::new(),
                errors: vec![e.to_string()],
            };
            if let Ok(text) = serde_json::to_string_pretty(&top) {
                printer.stdout(text);
            }
            Err(e)
        }
        (Err(e), OutputFormat::Text) => Err(e),
    }
}

async fn collect(global: &GlobalArgs, args: &TopArgs, printer: &Printer) -> Result<Top> {
    let config = session::config(global, &args.env, printer)?;
    let kube = session::connect(global).await?;
    let since = args.since.as_secs().max(1);
    let Tables {
        flow_from,
        flow_tags,
        io,
    } = tables(args.by);
    let ask = |q: String| {
        let kube = &kube;
        let config = &config;
        async move {
            influx_query(kube, config, &q)
                .await
                .map_err(|e| Error::step("top: read InfluxDB", e.message()))
        }
    };
    let q = query(
        &flow_from,
        &FLOW_FIELDS,
        &flow_tags,
        since,
        args.by == TopBy::External,
    );
    let body = match ask(q).await {
        Ok(body) => body,
        Err(e) => return Err(not_installed(&kube, &config).await.unwrap_or(e)),
    };
    let flows =
        rows(&body, &flow_tags, &FLOW_FIELDS, args.limit).map_err(|e| Error::step("top", e))?;
    let pods = match &io {
        Some((from, tags)) => {
            let body = ask(query(from, &IO_FIELDS, tags, since, false)).await?;
            rows(&body, tags, &IO_FIELDS, args.limit).map_err(|e| Error::step("top", e))?
        }
        None => Vec::new(),
    };
    Ok(Top {
        since_seconds: since,
        by: by_name(args.by).into(),
        flows,
        pods,
        errors: Vec::new(),
    })
}

/// Bytes in IEC units, as `ls -lh` and `du -h` show them: `512 B`, `1.5 KiB`, `12.0 MiB`.
fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n.unsigned_abs() < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A sum as the table shows it: bytes in human units (`-o json` keeps the raw numbers).
fn cell(field: &str, n: i64) -> String {
    if field.ends_with("_bytes") || field.starts_with("bytes_") {
        human_bytes(n)
    } else {
        n.to_string()
    }
}

/// A table's lines: tags left-aligned, sums right-aligned, columns as wide as their cells.
/// After an uninstall there is no InfluxDB to forward to: say that, not the port-forward's error.
/// `None` when the pipeline's InfluxDB is there (or is the user's own), or the API cannot say.
async fn not_installed(kube: &crate::backend::kube::Kube, config: &Config) -> Option<Error> {
    if config.influxdb.url.is_some() {
        return None;
    }
    let ns = config.namespace.as_str();
    let sets = kube::Api::<StatefulSet>::namespaced(kube.client.clone(), ns);
    match sets.get_opt(names::INFLUXDB_NAME).await {
        Ok(None) => Some(
            Error::step(
                "top",
                format!(
                    "kovenant is not installed in namespace {ns} of context {}: there is no \
                     InfluxDB (StatefulSet {}) to read",
                    kube.context,
                    names::INFLUXDB_NAME
                ),
            )
            .with_hint("run kovenant install (or pass -n NAMESPACE where it is installed)"),
        ),
        _ => None,
    }
}

fn table(title: &str, rows: &[Row], tags: &[&str], fields: &[&str]) -> Vec<String> {
    let with_rtt = rows.iter().any(|r| r.rtt_us.is_some());
    let mut header: Vec<String> = tags.iter().map(|t| t.to_uppercase()).collect();
    header.extend(fields.iter().map(|f| f.to_uppercase()));
    if with_rtt {
        header.push("RTT_US".into());
    }
    header.push("TOTAL_BYTES".into());
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in rows {
        let mut line: Vec<String> = tags
            .iter()
            .map(|t| match r.tags.get(*t).map(String::as_str) {
                None | Some("") => "-".to_string(),
                Some(v) => v.to_string(),
            })
            .collect();
        line.extend(
            fields
                .iter()
                .map(|f| cell(f, r.sums.get(*f).copied().unwrap_or(0))),
        );
        if with_rtt {
            line.push(match r.rtt_us {
                Some(Some(us)) => us.to_string(),
                _ => "-".to_string(),
            });
        }
        line.push(human_bytes(r.total_bytes));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = vec![title.to_string()];
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < tags.len() {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push(cells.join("  ").trim_end().to_string());
    }
    out
}

fn print_text(printer: &Printer, top: &Top) {
    let by = match top.by.as_str() {
        "pod" => TopBy::Pod,
        "release" => TopBy::Release,
        "external" => TopBy::External,
        _ => TopBy::Workload,
    };
    let Tables { flow_tags, io, .. } = tables(by);
    let since = match top.since_seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    if top.flows.is_empty() {
        printer.info(format!(
            "no {} point in the last {since}",
            tables(by).flow_from
        ));
    } else {
        let lines = table(
            &format!("FLOWS (last {since}, by {})", top.by),
            &top.flows,
            &flow_tags,
            &FLOW_SHOWN,
        );
        lines.iter().for_each(|l| printer.stdout(l));
    }
    if let Some((from, tags)) = io {
        if top.pods.is_empty() {
            printer.info(format!("no {from} point in the last {since}"));
        } else {
            printer.stdout("");
            let lines = table(
                &format!("POD I/O (last {since}, by {})", top.by),
                &top.pods,
                &tags,
                &IO_FIELDS,
            );
            lines.iter().for_each(|l| printer.stdout(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_human_units() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (5 * 1024 * 1024 + 300 * 1024, "5.3 MiB"),
            (3 << 30, "3.0 GiB"),
        ];
        for (n, shown) in cases {
            assert_eq!(human_bytes(n), shown, "{n}");
        }
    }

    #[test]
    fn the_table_shows_human_bytes_and_counts_as_they_are() {
        let row = |workload: &str, sent: i64, received: i64, connects: i64| Row {
            tags: [("src_workload".to_string(), workload.to_string())].into(),
            sums: [
                ("bytes_sent".to_string(), sent),
                ("bytes_received".to_string(), received),
                ("connects".to_string(), connects),
            ]
            .into(),
            total_bytes: sent + received,
            rtt_us: None,
        };
        let lines = table(
            "FLOWS",
            &[row("api", 2_500_000, 1000, 12), row("db", 10, 0, 1)],
            &["src_workload"],
            &["bytes_sent", "bytes_received", "connects"],
        );
        assert_eq!(
            lines,
            [
                "FLOWS",
                "SRC_WORKLOAD  BYTES_SENT  BYTES_RECEIVED  CONNECTS  TOTAL_BYTES",
                "api              2.4 MiB          1000 B        12      2.4 MiB",
                "db                  10 B             0 B         1         10 B",
            ]
        );
    }
}
