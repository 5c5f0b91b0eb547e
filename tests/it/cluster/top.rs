//! `kovenant top` on the real control plane: points of the agent's output (tests/it/flow_points.rs,
//! the last minutes) are written into the session's bucket of the real InfluxDB behind kwok's
//! port-forward of kovenant-influxdb-0, and top's figures equal the points' own totals.
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{HelmMajor, Session};
use crate::dashboards_influx::Point;

/// (src_release, peer_type, peer_namespace, peer_name, port) -> the `tcp_flow` fields top sums.
type Key = (String, String, String, String, String);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Flow {
    sent: i64,
    received: i64,
    retrans: i64,
    connects: i64,
    accepts: i64,
    rtt_us_sum: i64,
    rtt_samples: i64,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn flow_field(f: &Flow, name: &str) -> i64 {
    match name {
        "bytes_sent" => f.sent,
        "bytes_received" => f.received,
        "retrans_bytes" => f.retrans,
        "connects" => f.connects,
        "accepts" => f.accepts,
        "rtt_us_sum" => f.rtt_us_sum,
        _ => f.rtt_samples,
    }
}

fn flow_of(get: impl Fn(&str) -> i64) -> Flow {
    Flow {
        sent: get("bytes_sent"),
        received: get("bytes_received"),
        retrans: get("retrans_bytes"),
        connects: get("connects"),
        accepts: get("accepts"),
        rtt_us_sum: get("rtt_us_sum"),
        rtt_samples: get("rtt_samples"),
    }
}

/// Bytes as the table prints them (issue 23): IEC units with one decimal from 1 KiB, as
/// `ls -lh` does; `-o json` keeps the exact numbers.
fn human(n: i64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let (mut v, mut u) = (n as f64 / 1024.0, 0);
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

#[test]
fn top_by_release_prints_the_totals_written() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    let env = s.env_arg();

    // Twelve windows ending a minute ago, so `--since 15m` holds all of them.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let start = now_ms - 180_000;
    // The agent's points as the chart's agent writes them (`--pod-activity`): tcp_flow and
    // pod_io per workload to the bucket, pod_activity to the pod-level bucket `<bucket>/pods`.
    let pod_level = crate::flow_points::generate(start - start % 10_000, 12, 7);
    let points = crate::flow_points::as_installed(&pod_level);
    let (pods, rest): (Vec<Point>, Vec<Point>) = points
        .iter()
        .cloned()
        .partition(|p| p.measurement == crate::flow_points::POD_ACTIVITY);
    for (bucket, points) in [
        (s.bucket.clone(), rest),
        (format!("{}/pods", s.bucket), pods),
    ] {
        assert!(!points.is_empty(), "points for {bucket}");
        super::influx(
            &s.influxdb,
            "/api/v2/write",
            &[
                ("org", "kovenant"),
                ("bucket", &bucket),
                ("precision", "ns"),
            ],
            &crate::flow_points::line_protocol(&points),
        );
    }
    let of = |m: &'static str| points.iter().filter(move |p: &&Point| p.measurement == m);
    let mut truth: BTreeMap<Key, Flow> = BTreeMap::new();
    for p in of("tcp_flow") {
        let k = (
            p.tag("src_release").to_string(),
            p.tag("peer_type").to_string(),
            p.tag("peer_namespace").to_string(),
            p.tag("peer_name").to_string(),
            p.tag("port").to_string(),
        );
        let add = flow_of(|f| p.fields[f]);
        let e = truth.entry(k).or_default();
        *e = flow_of(|f| {
            let (a, b) = (flow_field(e, f), flow_field(&add, f));
            a + b
        });
    }
    let mut io: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for p in of("pod_io") {
        let e = io.entry(p.tag("release").to_string()).or_default();
        for (i, f) in [
            "read_bytes",
            "write_bytes",
            "disk_read_bytes",
            "disk_write_bytes",
        ]
        .iter()
        .enumerate()
        {
            e[i] += p.fields[*f];
        }
    }

    let run = s.run(&[
        "top",
        "--env-file",
        &env,
        "--since",
        "15m",
        "--by",
        "release",
        "--limit",
        "100000",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    let mut got: BTreeMap<Key, Flow> = BTreeMap::new();
    for r in v["flows"].as_array().expect("flows") {
        let k = (
            text(&r["src_release"]),
            text(&r["peer_type"]),
            text(&r["peer_namespace"]),
            text(&r["peer_name"]),
            text(&r["port"]),
        );
        let flow = flow_of(|f| r[f].as_i64().unwrap_or_else(|| panic!("{f} in {r}")));
        assert_eq!(
            r["total_bytes"].as_i64().unwrap(),
            flow.sent + flow.received
        );
        // The mean RTT of the group: its sum over its count, never a mean of means.
        let mean = (flow.rtt_samples > 0).then(|| flow.rtt_us_sum / flow.rtt_samples);
        assert_eq!(r["rtt_us"].as_i64(), mean, "{r}");
        assert!(got.insert(k, flow).is_none());
    }
    assert_eq!(got, truth);
    let got_io: BTreeMap<String, [i64; 4]> = v["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_i64().unwrap_or_else(|| panic!("{k} in {r}"));
            (
                text(&r["release"]),
                [
                    f("read_bytes"),
                    f("write_bytes"),
                    f("disk_read_bytes"),
                    f("disk_write_bytes"),
                ],
            )
        })
        .collect();
    assert_eq!(got_io, io);
    // Busiest first.
    let totals: Vec<i64> = v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total_bytes"].as_i64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");

    // The table prints the busiest flow's exact figures on stdout.
    let run = s.run(&["top", "--env-file", &env, "--by", "release", "--limit", "3"]);
    assert_eq!(run.code, 0, "{run}");
    let (k, flow) = truth
        .iter()
        .max_by(|a, b| {
            (a.1.sent + a.1.received)
                .cmp(&(b.1.sent + b.1.received))
                .then_with(|| b.0.cmp(a.0))
        })
        .expect("a flow");
    let row = run
        .stdout
        .lines()
        .nth(2)
        .unwrap_or_else(|| panic!("no first row: {run}"));
    let cells = row.split_whitespace().collect::<Vec<_>>().join(" ");
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let rtt = match flow.rtt_samples {
        0 => "-".to_string(),
        n => (flow.rtt_us_sum / n).to_string(),
    };
    let want = [
        dash(&k.0),
        dash(&k.1),
        dash(&k.2),
        dash(&k.3),
        dash(&k.4),
        human(flow.sent),
        human(flow.received),
        human(flow.retrans),
        flow.connects.to_string(),
        flow.accepts.to_string(),
        rtt,
        human(flow.sent + flow.received),
    ]
    .join(" ");
    assert_eq!(cells, want, "{run}");
    assert_eq!(
        run.stdout.lines().next(),
        Some("FLOWS (last 15m, by release)"),
        "{run}"
    );

    // Per pod: every pod's figures add up to the totals, and pods are named.
    let run = s.run(&[
        "top",
        "--env-file",
        &env,
        "--since",
        "15m",
        "--by",
        "pod",
        "--limit",
        "100000",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    let sum = |rows: &Value, f: &str| -> i64 {
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| r[f].as_i64().unwrap_or(0))
            .sum()
    };
    // Pods only: the node's host processes have no pod (and no pod_activity).
    let of_pods = |m: &'static str, pod: &'static str| {
        pod_level
            .iter()
            .filter(move |p| p.measurement == m && !p.tag(pod).is_empty())
    };
    let want = |m: &'static str, pod: &'static str, f: &'static str| -> i64 {
        of_pods(m, pod).map(|p| p.fields[f]).sum()
    };
    assert_eq!(
        sum(&v["flows"], "bytes_sent"),
        want("tcp_flow", "src_pod", "bytes_sent"),
        "{run}"
    );
    assert_eq!(
        sum(&v["flows"], "bytes_received"),
        want("tcp_flow", "src_pod", "bytes_received"),
        "{run}"
    );
    assert_eq!(
        sum(&v["pods"], "read_bytes"),
        want("pod_io", "pod", "read_bytes"),
        "{run}"
    );
    let pods: std::collections::BTreeSet<(String, String)> = v["flows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (text(&r["namespace"]), text(&r["pod"])))
        .collect();
    let written: std::collections::BTreeSet<(String, String)> = of_pods("tcp_flow", "src_pod")
        .map(|p| {
            (
                p.tag("src_namespace").to_string(),
                p.tag("src_pod").to_string(),
            )
        })
        .collect();
    assert!(pods.iter().all(|(_, pod)| !pod.is_empty()), "{run}");
    assert_eq!(pods, written, "{run}");
    s.cleanup();
}
