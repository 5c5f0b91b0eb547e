//! The series budget (issue 11, docs/series-budget.md): a simulated day of a 1,000-pod cluster
//! whose Deployments all roll every hour, through the real agent into the real InfluxDB, with
//! pod-level points in their own retention policy as telegraf routes them. The series InfluxDB
//! holds afterwards are counted and must be exactly what the budget allows, under 50,000; the
//! pod-level data must still say which pods were busy in the last hour.
//!
//! The day (each Deployment keeps its name; its pods, their IPs and nodes change every hour):
//! 20 nodes, 10 namespaces x 10 Deployments x 10 replicas, 24 generations of pods. Once an hour
//! each pod sends to its Deployment's Service and to a pod of the next Deployment, receives from
//! the three external APIs of its Deployment, gets a few bytes from a one-off external address
//! (a scanner, a new client: a different address every time), and writes to a file.
use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::dashboards_influx::influx;
use crate::support::{kovenant, service};

const NODES: u32 = 20;
const NAMESPACES: u32 = 10;
const DEPLOYMENTS: u32 = 10;
const REPLICAS: u32 = 10;
const GENERATIONS: u32 = 24;
/// The chart's default (KOVENANT_AGENT_TOP_PEERS in example.env).
const TOP_PEERS: &str = "20";
const DB: &str = "kovenant_series_budget";

fn node_of(generation: u32, ns: u32, d: u32, r: u32) -> u32 {
    (generation * 3 + ns * DEPLOYMENTS + d + r) % NODES
}

fn rs_name(generation: u32, d: u32) -> String {
    format!("app-{d}-{:010x}", 0x5f00_0000 + generation)
}

fn pod_name(generation: u32, d: u32, r: u32) -> String {
    format!("{}-{:05x}", rs_name(generation, d), 0xa000 + r)
}

fn pod_ip(generation: u32, ns: u32, d: u32, r: u32) -> String {
    format!("10.{}.{}.{}", 100 + generation, ns * DEPLOYMENTS + d, r + 1)
}

fn meta(name: &str, ns: Option<&str>, owner: Option<(&str, &str)>) -> Value {
    let mut m = json!({"name": name, "uid": format!("uid-{}-{name}", ns.unwrap_or(""))});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    if let Some((kind, owner)) = owner {
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
            "uid": format!("uid-{}-{owner}", ns.unwrap_or("")), "controller": true}]);
    }
    m
}

/// Every object of the day at once: the agent attributes each hour's pods by their own IPs,
/// which no two generations share.
fn snapshot() -> Value {
    let mut items = Vec::new();
    for n in 0..NODES {
        items.push(json!({"apiVersion": "v1", "kind": "Node", "metadata": meta(&format!("node-{n}"), None, None),
            "status": {"addresses": [{"type": "InternalIP", "address": format!("172.20.0.{}", n + 10)}]}}));
    }
    for ns in 0..NAMESPACES {
        let namespace = format!("team-{ns}");
        for d in 0..DEPLOYMENTS {
            let app = format!("app-{d}");
            let ip = format!("10.96.{ns}.{}", d + 1);
            items.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(&app, Some(&namespace), None),
                "spec": {"clusterIP": ip, "clusterIPs": [ip]}}));
            items.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(&app, Some(&namespace), None)}));
            for g in 0..GENERATIONS {
                let rs = rs_name(g, d);
                items.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": meta(&rs, Some(&namespace), Some(("Deployment", &app)))}));
                for r in 0..REPLICAS {
                    let ip = pod_ip(g, ns, d, r);
                    items.push(json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": meta(&pod_name(g, d, r), Some(&namespace), Some(("ReplicaSet", &rs))),
                        "spec": {"nodeName": format!("node-{}", node_of(g, ns, d, r))},
                        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}));
                }
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// `ns` since the epoch as Tetragon writes times: RFC 3339, UTC, nanoseconds.
fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ns.rem_euclid(1_000_000_000)
    )
}

/// Writes the day's events, in time order, one hour's generation at a time.
fn write_events(out: &mut impl Write, start_ns: i64) -> std::io::Result<()> {
    let mut noise: u32 = 12_345;
    let mut seq = 0u64;
    for g in 0..GENERATIONS {
        let t0 = start_ns + i64::from(g) * 3_600_000_000_000;
        for ns in 0..NAMESPACES {
            for d in 0..DEPLOYMENTS {
                for r in 0..REPLICAS {
                    let i = i64::from((ns * DEPLOYMENTS + d) * REPLICAS + r);
                    let time = rfc3339(t0 + i * 1_000_000);
                    let node = format!("node-{}", node_of(g, ns, d, r));
                    let me = pod_ip(g, ns, d, r);
                    let process = json!({"pid": 4000 + r, "binary": format!("/app/app-{d}"),
                        "pod": {"namespace": format!("team-{ns}"), "name": pod_name(g, d, r),
                                "workload": format!("app-{d}"), "workload_kind": "Deployment"}});
                    let mut tcp =
                        |f: &str, daddr: &str, dport: u16, size: u64, ret: Option<i64>| {
                            seq += 1;
                            let sock = json!({"family": "AF_INET", "saddr": me, "daddr": daddr,
                            "sport": 40_000 + (seq % 20_000), "dport": dport});
                            let mut k = json!({"process": process, "function_name": f,
                            "args": [{"sock_arg": sock}, {"size_arg": size.to_string()}],
                            "policy_name": "kovenant-tcp"});
                            if let Some(ret) = ret {
                                k["return"] = json!({"int_arg": ret});
                            }
                            json!({"process_kprobe": k, "node_name": node, "time": time})
                        };
                    let next = pod_ip(g, ns, (d + 1) % DEPLOYMENTS, r);
                    let mut lines = vec![
                        tcp(
                            "tcp_sendmsg",
                            &format!("10.96.{ns}.{}", d + 1),
                            8080,
                            4096,
                            None,
                        ),
                        tcp("tcp_sendmsg", &next, 9090, 1024, None),
                    ];
                    for api in 0..3u32 {
                        let ip = format!("140.82.{}.{}", ns * DEPLOYMENTS + d, api + 1);
                        let got = 65_536 * (i64::from(api) + 1);
                        lines.push(tcp("tcp_recvmsg", &ip, 443, 262_144, Some(got)));
                    }
                    noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let scanner = format!("203.0.{}.{}", (noise >> 16) & 0xff, (noise >> 8) & 0xff);
                    lines.push(tcp("tcp_recvmsg", &scanner, 443, 4096, Some(64)));
                    lines.push(json!({"process_kprobe": {"process": process,
                        "function_name": "__x64_sys_write",
                        "args": [{"int_arg": 5}, {"size_arg": "512"}], "return": {"long_arg": "512"},
                        "policy_name": "kovenant-io"}, "node_name": node, "time": time}));
                    for l in lines {
                        serde_json::to_writer(&mut *out, &l)?;
                        out.write_all(b"\n")?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Posts line protocol to `db` (and retention policy `rp`), in batches.
fn write(url: &str, rp: &str, lines: &[&str]) {
    for chunk in lines.chunks(10_000) {
        let body = chunk.join("\n");
        let resp =
            ureq::post(format!("{url}/write?db={DB}&rp={rp}&precision=ns")).send(body.as_bytes());
        if let Err(e) = resp {
            panic!("writing {} points to {DB}.{rp}: {e}", chunk.len());
        }
    }
}

#[test]
#[ignore = "pod_activity is gone (DESIGN.md section 3 puts the pod on tcp_flow and pod_io); the series budget is to be redone; open in issue 21"]
fn a_day_of_hourly_rollouts_stays_within_the_series_budget() {
    let url = service("KOVENANT_TEST_INFLUXDB");
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("cluster.json");
    std::fs::write(&snap, serde_json::to_vec(&snapshot()).expect("json")).expect("snapshot");

    // The day ends now, so that every point is inside the pod-level retention (one day).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    let start_ns = {
        let s = now_ns - (23 * 3600 + 50 * 60) * 1_000_000_000;
        s - s.rem_euclid(10_000_000_000)
    };

    let mut agent = kovenant()
        .args([
            "agent",
            "--no-kernel",
            "--source",
            "stdin",
            "--node-name",
            "agent-node",
        ])
        .args(["--top-peers", TOP_PEERS, "--cluster-snapshot"])
        .arg(&snap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kovenant agent");
    let mut stdin = std::io::BufWriter::new(agent.stdin.take().expect("stdin"));
    let feeder = std::thread::spawn(move || {
        write_events(&mut stdin, start_ns).expect("feed the agent");
        stdin.flush().expect("flush");
    });
    let out = agent.wait_with_output().expect("agent output");
    feeder.join().expect("feeder");
    assert!(
        out.status.success(),
        "kovenant agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");

    influx(&url, "", &format!("DROP DATABASE {DB}"));
    influx(&url, "", &format!("CREATE DATABASE {DB}"));
    // What the chart's InfluxDB makes as bucket "<bucket>/pods": InfluxQL sees it as retention
    // policy "pods" of the database, with the pod-level retention.
    influx(
        &url,
        "",
        &format!(
            "CREATE RETENTION POLICY \"pods\" ON {DB} DURATION 1d REPLICATION 1 SHARD DURATION 1h"
        ),
    );
    // telegraf's routing (agent-configmap.yaml): pod_activity to the pod-level bucket, the rest
    // to the bucket.
    let (pods, rest): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| !l.is_empty())
        .partition(|l| l.starts_with("pod_activity,"));
    write(&url, "pods", &pods);
    write(&url, "autogen", &rest);

    // Every (node, Deployment) pair the day's pods ran on.
    let mut groups = BTreeSet::new();
    let mut all_pods = BTreeSet::new();
    for g in 0..GENERATIONS {
        for ns in 0..NAMESPACES {
            for d in 0..DEPLOYMENTS {
                for r in 0..REPLICAS {
                    groups.insert((node_of(g, ns, d, r), ns, d));
                    all_pods.insert((ns, pod_name(g, d, r)));
                }
            }
        }
    }
    let series = influx(&url, DB, "SHOW SERIES");
    let keys: Vec<String> = series["series"][0]["values"]
        .as_array()
        .expect("series")
        .iter()
        .map(|v| v[0].as_str().expect("key").to_string())
        .collect();
    let count = |m: &str| {
        keys.iter()
            .filter(|k| k.starts_with(&format!("{m},")))
            .count()
    };
    // Per (node, Deployment): its Service, the next Deployment, its three APIs, and one
    // `other` external peer for every one-off address; one pod_io series. One pod_activity
    // series per pod; one kovenant_agent series.
    assert_eq!(count("pod_activity"), all_pods.len(), "one series per pod");
    assert_eq!(count("tcp_flow"), groups.len() * 6, "tcp_flow series");
    assert_eq!(count("pod_io"), groups.len(), "pod_io series");
    assert_eq!(count("kovenant_agent"), 1);
    let expected = all_pods.len() + groups.len() * 7 + 1;
    assert_eq!(keys.len(), expected, "every series is one of the above");
    assert!(
        keys.len() < 50_000,
        "{} series after a day, over the budget of 50,000",
        keys.len()
    );
    assert!(
        keys.iter()
            .any(|k| k.contains("peer_name=other") && k.contains("peer_type=external")),
        "the one-off addresses are folded into peer other"
    );
    assert!(
        !keys.iter().any(|k| k.contains("203.0.")),
        "no one-off address became a series"
    );

    // "Which pod, in the last hour": the pod-level series name exactly the last hour's pods,
    // each with its bytes.
    let last = influx(
        &url,
        DB,
        "SELECT sum(\"send_bytes\") AS \"sent\", sum(\"recv_bytes\") AS \"received\", \
         sum(\"write_bytes\") AS \"written\" FROM \"pods\".\"pod_activity\" \
         WHERE time > now() - 1h GROUP BY \"namespace\", \"pod\"",
    );
    let got: BTreeSet<(String, String, i64, i64, i64)> = last["series"]
        .as_array()
        .expect("pods of the last hour")
        .iter()
        .map(|s| {
            let v = &s["values"][0];
            (
                s["tags"]["namespace"].as_str().unwrap_or_default().into(),
                s["tags"]["pod"].as_str().unwrap_or_default().into(),
                v[1].as_i64().unwrap_or(-1),
                v[2].as_i64().unwrap_or(-1),
                v[3].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let mut want = BTreeSet::new();
    for ns in 0..NAMESPACES {
        for d in 0..DEPLOYMENTS {
            for r in 0..REPLICAS {
                let pod = pod_name(GENERATIONS - 1, d, r);
                want.insert((format!("team-{ns}"), pod, 4096 + 1024, 65_536 * 6 + 64, 512));
            }
        }
    }
    assert_eq!(got, want, "the last hour's pods and their bytes");
}
