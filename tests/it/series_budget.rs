//! The series budget (issue 11, docs/series-budget.md): a simulated day of a 1,000-pod cluster
//! whose Deployments all roll every hour, written as the chart's agents write it (`kovenant agent
//! --pod-activity --top-peers 20`, one agent per node) into the real InfluxDB, with pod-level
//! points in their own retention policy as telegraf routes them. The series InfluxDB holds
//! afterwards are counted and must be exactly what the budget allows, under 50,000; the
//! pod-level data must still say which pods were busy in the last hour.
//!
//! The day (each Deployment keeps its name; its pods and their nodes change every hour): 20
//! nodes, 10 namespaces x 10 Deployments x 10 replicas, 24 generations of pods. Once an hour each
//! pod sends to its Deployment's Service and to a pod of the next Deployment, receives from the
//! three external APIs of its Deployment, gets a few bytes from a one-off external address (a
//! scanner, a new client: a different address every time), and writes to a file.
//!
//! What is simulated: the agent's kernel pass and attribution. A day of 24,000 pods cannot be
//! made on this machine, and the bytes do not matter here, only the keys: the test hands each
//! node's real aggregator (`kovenant::agent::aggregate`, the code every agent writes its windows
//! with) the attributed counters a pass would add, and writes what it prints. The kernel tests
//! (tests/it/kernel*.rs) prove on real sockets that the attributed counters are right.
use std::collections::BTreeSet;

use kovenant::agent::aggregate::tags::{SrcValues, peer_tags};
use kovenant::agent::aggregate::{Aggregator, FlowCounts, FlowKey, IoCounts, ROLE_CLIENT};

use crate::dashboards_influx::influx;
use crate::support::service;

const NODES: u32 = 20;
const NAMESPACES: u32 = 10;
const DEPLOYMENTS: u32 = 10;
const REPLICAS: u32 = 10;
const GENERATIONS: u32 = 24;
/// The chart's default (KOVENANT_AGENT_TOP_PEERS in example.env).
const TOP_PEERS: usize = 20;
/// The chart's default (KOVENANT_AGENT_MAX_KEYS).
const MAX_KEYS: usize = 50_000;
const WINDOW_NS: i64 = 10_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;
const DB: &str = "kovenant_series_budget";

fn node_of(generation: u32, ns: u32, d: u32, r: u32) -> u32 {
    (generation * 3 + ns * DEPLOYMENTS + d + r) % NODES
}

fn pod_name(generation: u32, d: u32, r: u32) -> String {
    format!(
        "app-{d}-{:010x}-{:05x}",
        0x5f00_0000 + generation,
        0xa000 + r
    )
}

/// What one pod's hour adds: (peer type, peer namespace, peer name, port, bytes received, bytes
/// sent), and its writes.
fn pod_traffic(
    ns: u32,
    d: u32,
    scanner: &str,
) -> Vec<(&'static str, String, String, u16, u64, u64)> {
    let team = format!("team-{ns}");
    let mut peers = vec![
        ("service", team.clone(), format!("app-{d}"), 8080, 0, 4096),
        (
            "pod",
            team,
            format!("app-{}", (d + 1) % DEPLOYMENTS),
            9090,
            0,
            1024,
        ),
    ];
    for api in 0..3u32 {
        let ip = format!("140.82.{}.{}", ns * DEPLOYMENTS + d, api + 1);
        peers.push((
            "external",
            String::new(),
            ip,
            443,
            65_536 * u64::from(api + 1),
            0,
        ));
    }
    peers.push(("external", String::new(), scanner.to_string(), 443, 64, 0));
    peers
}

/// The day's line protocol: each node's agent, one window an hour in which its pods of that
/// hour's generation talk, as `--pod-activity --top-peers 20` writes it.
fn day(start_ns: i64) -> String {
    let mut agents: Vec<Aggregator> = (0..NODES)
        .map(|n| {
            Aggregator::new(WINDOW_NS, MAX_KEYS, TOP_PEERS, &format!("node-{n}"))
                .with_pod_activity(true)
        })
        .collect();
    let mut out = Vec::new();
    let mut noise: u32 = 12_345;
    for g in 0..GENERATIONS {
        let t = start_ns + i64::from(g) * HOUR_NS;
        for agg in &mut agents {
            agg.advance(Some(t), || t, &mut out).expect("Vec");
        }
        for ns in 0..NAMESPACES {
            for d in 0..DEPLOYMENTS {
                for r in 0..REPLICAS {
                    let node = node_of(g, ns, d, r);
                    let agg = &mut agents[node as usize];
                    let values = SrcValues {
                        node: &format!("node-{node}"),
                        namespace: &format!("team-{ns}"),
                        workload: &format!("app-{d}"),
                        kind: "Deployment",
                        pod: &pod_name(g, d, r),
                        release: "",
                    };
                    let src = agg.tags.intern_src(values.tags(), None);
                    noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let scanner = format!("203.0.{}.{}", (noise >> 16) & 0xff, (noise >> 8) & 0xff);
                    for (kind, peer_ns, name, port, received, sent) in pod_traffic(ns, d, &scanner)
                    {
                        let tags = peer_tags(kind, &peer_ns, &name);
                        let ip_kind = (kind == "external").then_some("external");
                        let peer = agg.tags.intern_peer_text(tags, ip_kind);
                        let key = FlowKey {
                            src,
                            peer,
                            port,
                            role: ROLE_CLIENT,
                        };
                        let counts = FlowCounts {
                            connects: 1,
                            bytes_sent: sent,
                            bytes_received: received,
                            ..FlowCounts::default()
                        };
                        agg.add_flow(key, &counts);
                    }
                    let io = IoCounts {
                        writes: 1,
                        write_bytes: 512,
                        ..IoCounts::default()
                    };
                    agg.add_io(src, &io);
                }
            }
        }
    }
    for agg in &mut agents {
        let end = start_ns + i64::from(GENERATIONS) * HOUR_NS;
        agg.flush(end, &mut out).expect("Vec");
    }
    String::from_utf8(out).expect("UTF-8")
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
fn a_day_of_hourly_rollouts_stays_within_the_series_budget() {
    let url = service("KOVENANT_TEST_INFLUXDB");
    // The day ends now, so that every point is inside the pod-level retention (one day).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    let start_ns = {
        let s = now_ns - (23 * 3600 + 50 * 60) * 1_000_000_000;
        s - s.rem_euclid(WINDOW_NS)
    };
    let text = day(start_ns);

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
    // The budget first, by InfluxDB's own count, so that a day over it fails with its figures
    // rather than with an answer too large to read. It is only a first check: InfluxDB 1.8
    // counts 21,040 here where SHOW SERIES lists 38,020 keys, which the exact check below uses.
    let cardinality = influx(&url, DB, "SHOW SERIES EXACT CARDINALITY");
    let total: i64 = cardinality["series"]
        .as_array()
        .expect("cardinality")
        .iter()
        .map(|s| s["values"][0][0].as_i64().expect("count"))
        .sum();
    assert!(
        total < 50_000,
        "{total} series after a day, over the budget of 50,000: {cardinality}"
    );
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
    // series per pod; one kovenant_agent series per node.
    assert_eq!(count("pod_activity"), all_pods.len(), "one series per pod");
    assert_eq!(count("tcp_flow"), groups.len() * 6, "tcp_flow series");
    assert_eq!(count("pod_io"), groups.len(), "pod_io series");
    assert_eq!(count("kovenant_agent"), NODES as usize);
    let expected = all_pods.len() + groups.len() * 7 + NODES as usize;
    assert_eq!(keys.len(), expected, "every series is one of the above");
    assert!(
        keys.len() < 50_000,
        "{} series after a day, over the budget of 50,000",
        keys.len()
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("src_pod=") || k.starts_with("pod_io,") && k.contains(",pod=")),
        "no pod tag at full retention"
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
        "SELECT sum(\"bytes_sent\") AS \"sent\", sum(\"bytes_received\") AS \"received\", \
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
