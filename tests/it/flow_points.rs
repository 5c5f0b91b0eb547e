//! The agent's output (DESIGN.md section 3: `tcp_flow`, `pod_io`, `kovenant_agent`) for a small
//! made-up cluster, as line protocol and as points: what the dashboards' queries and `kovenant top`
//! are proven against on the real InfluxDB. Made up, not produced by the agent, because the
//! agent's figures come from the live kernel (sockets and processes of the moment), which a query
//! test cannot replay at will; the agent's own tests prove on real sockets that it writes this
//! shape with exact totals (tests/it/agent*). Deterministic: the same seed gives the same points.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::agent_support::{FLOW_FIELDS, IO_FIELDS};
use crate::dashboards_influx::Point;

/// The agent's window.
pub const WINDOW_MS: i64 = 10_000;

/// xorshift64*: enough to vary figures, with no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)) as i64
    }
}

/// Who sends: a workload's pods (with their nodes), or a node's host processes.
struct Source {
    namespace: &'static str,
    workload: &'static str,
    kind: &'static str,
    release: &'static str,
    pods: &'static [(&'static str, &'static str)],
}

const SOURCES: &[Source] = &[
    Source {
        namespace: "team-1",
        workload: "api",
        kind: "Deployment",
        release: "shop",
        pods: &[("api-7d9f8-x2kq", "node-1"), ("api-7d9f8-p9wz", "node-2")],
    },
    Source {
        namespace: "team-1",
        workload: "db",
        kind: "StatefulSet",
        release: "shop",
        pods: &[("db-0", "node-1")],
    },
    Source {
        namespace: "team-2",
        workload: "billing",
        kind: "Deployment",
        release: "billing",
        pods: &[
            ("billing-5c6b-aa1", "node-1"),
            ("billing-5c6b-bb2", "node-2"),
        ],
    },
    Source {
        namespace: "team-2",
        workload: "report",
        kind: "CronJob",
        release: "",
        pods: &[("report-29170-kq7", "node-2")],
    },
    Source {
        namespace: "team-3",
        workload: "web",
        kind: "Deployment",
        release: "",
        pods: &[("web-6f7-aaaa", "node-1"), ("web-6f7-bbbb", "node-2")],
    },
    Source {
        namespace: "",
        workload: "node-1",
        kind: "Node",
        release: "",
        pods: &[("", "node-1")],
    },
    Source {
        namespace: "",
        workload: "node-2",
        kind: "Node",
        release: "",
        pods: &[("", "node-2")],
    },
];

/// (peer_type, peer_namespace, peer_name, port, role): every kind of peer, both roles.
const PEERS: &[(&str, &str, &str, &str, &str)] = &[
    ("pod", "team-1", "db", "5432", "client"),
    ("service", "team-1", "api", "8080", "client"),
    ("pod", "team-2", "billing", "8080", "server"),
    ("pod", "team-3", "web", "80", "client"),
    ("node", "", "node-2", "10250", "client"),
    ("external", "", "203.0.113.7", "443", "client"),
    ("external", "", "198.51.100.20", "443", "client"),
    ("unresolved", "", "10.99.0.4", "9000", "client"),
    ("loopback", "", "localhost", "8080", "server"),
];

const NODES: [&str; 2] = ["node-1", "node-2"];

/// `windows` windows of points from `start_ms` (window starts, as the agent stamps them).
pub fn generate(start_ms: i64, windows: i64, seed: u64) -> Vec<Point> {
    let mut rng = Rng(seed | 1);
    let mut points = Vec::new();
    for w in 0..windows {
        let time_ms = start_ms + w * WINDOW_MS;
        for s in SOURCES {
            for (pod, node) in s.pods {
                let src = [
                    ("node", *node),
                    ("src_namespace", s.namespace),
                    ("src_workload", s.workload),
                    ("src_kind", s.kind),
                    ("src_pod", *pod),
                    ("src_release", s.release),
                ];
                for peer in PEERS {
                    // About two peers in three have traffic in a window.
                    if rng.below(3) == 0 {
                        continue;
                    }
                    let (peer_type, peer_ns, peer_name, port, role) = *peer;
                    let mut tags = tags(&src);
                    for (k, v) in [
                        ("peer_type", peer_type),
                        ("peer_namespace", peer_ns),
                        ("peer_name", peer_name),
                        ("port", port),
                        ("role", role),
                    ] {
                        if !v.is_empty() {
                            tags.insert(k.into(), v.into());
                        }
                    }
                    let opened = rng.below(6);
                    let (connects, accepts) = if role == "server" {
                        (0, opened)
                    } else {
                        (opened, 0)
                    };
                    let samples = rng.below(4);
                    let fields = [
                        ("connects", connects),
                        ("accepts", accepts),
                        ("closes", rng.below(opened as u64 + 2)),
                        ("bytes_sent", rng.below(2_000_000)),
                        ("bytes_received", rng.below(2_000_000)),
                        (
                            "retrans_bytes",
                            if rng.below(4) == 0 {
                                rng.below(20_000)
                            } else {
                                0
                            },
                        ),
                        ("rtt_us_sum", samples * (50 + rng.below(8_000))),
                        ("rtt_samples", samples),
                    ];
                    points.push(point("tcp_flow", tags, &fields, time_ms));
                }
                let io = [
                    ("node", *node),
                    ("namespace", s.namespace),
                    ("workload", s.workload),
                    ("kind", s.kind),
                    ("pod", *pod),
                    ("release", s.release),
                ];
                let read_bytes = rng.below(5_000_000);
                let write_bytes = rng.below(3_000_000);
                let fields = [
                    ("reads", rng.below(4_000)),
                    ("read_bytes", read_bytes),
                    ("writes", rng.below(3_000)),
                    ("write_bytes", write_bytes),
                    (
                        "disk_read_bytes",
                        rng.below(read_bytes as u64 / 4 + 1) & !4095,
                    ),
                    (
                        "disk_write_bytes",
                        rng.below(write_bytes as u64 + 1) & !4095,
                    ),
                ];
                points.push(point("pod_io", tags(&io), &fields, time_ms));
            }
        }
        for node in NODES {
            let lines = 20 + rng.below(200);
            let bad = i64::from(rng.below(5) == 0);
            let fields = [
                ("netns", 5 + rng.below(8)),
                ("sockets", 100 + rng.below(400)),
                ("processes", 150 + rng.below(250)),
                ("destroy_events", rng.below(50)),
                ("destroys_lost", if w == 3 { 2 } else { 0 }),
                ("closed_flows", rng.below(20)),
                ("sample_us", 2_000 + rng.below(7_000)),
                ("tetragon_lines", lines),
                ("tetragon_events", lines - bad - 3),
                ("bad_lines", bad),
                ("ignored", 3),
                ("unresolved_peers", rng.below(3)),
                ("keys", 10 + rng.below(40)),
                ("dropped_keys", if w == 5 { 7 } else { 0 }),
                ("lag_ms", rng.below(900)),
                ("rotated_files_read", 0),
                ("rotated_files_lost", i64::from(w == 8)),
                ("truncations", 0),
            ];
            points.push(point(
                "kovenant_agent",
                tags(&[("node", node)]),
                &fields,
                time_ms,
            ));
        }
    }
    points
}

/// Tags as the agent writes them: empty ones left out.
fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn point(
    measurement: &str,
    tags: BTreeMap<String, String>,
    fields: &[(&str, i64)],
    time_ms: i64,
) -> Point {
    Point {
        measurement: measurement.into(),
        tags,
        fields: fields.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        time_ms,
    }
}

/// The points as InfluxDB line protocol (tag values escaped, integer fields, ns timestamps).
pub fn line_protocol(points: &[Point]) -> String {
    let escape = |v: &str| {
        v.replace(',', "\\,")
            .replace(' ', "\\ ")
            .replace('=', "\\=")
    };
    let mut out = String::new();
    for p in points {
        out.push_str(&p.measurement);
        for (k, v) in &p.tags {
            let _ = write!(out, ",{k}={}", escape(v));
        }
        let fields: Vec<String> = p.fields.iter().map(|(k, v)| format!("{k}={v}i")).collect();
        let _ = writeln!(out, " {} {}", fields.join(","), p.time_ms * 1_000_000);
    }
    out
}

/// The measurement of each pod's own points (`kovenant agent --pod-activity`, as the chart runs
/// it), written to the retention policy [`POD_RP`].
pub const POD_ACTIVITY: &str = "pod_activity";
/// The pod-level retention policy: InfluxQL's name for the bucket `<bucket>/pods`.
pub const POD_RP: &str = "pods";

/// The points as the chart's agent writes them (`--pod-activity`, docs/series-budget.md):
/// `tcp_flow` and `pod_io` summed per workload and node (no pod tag), and one `pod_activity`
/// point per pod and window with its flows' fields summed over peers and its I/O. The node's
/// host processes have no pod and no `pod_activity`.
pub fn as_installed(points: &[Point]) -> Vec<Point> {
    type Key = (String, BTreeMap<String, String>, i64);
    let mut out: BTreeMap<Key, BTreeMap<String, i64>> = BTreeMap::new();
    let mut add = |m: &str, tags: BTreeMap<String, String>, p: &Point| {
        let fields = out.entry((m.to_string(), tags, p.time_ms)).or_default();
        if m == POD_ACTIVITY {
            for f in FLOW_FIELDS.iter().chain(&IO_FIELDS) {
                fields.entry((*f).to_string()).or_insert(0);
            }
        }
        for (k, v) in &p.fields {
            *fields.entry(k.clone()).or_insert(0) += v;
        }
    };
    for p in points {
        let (pod_key, prefix) = match p.measurement.as_str() {
            "tcp_flow" => ("src_pod", "src_"),
            "pod_io" => ("pod", ""),
            _ => {
                add(&p.measurement, p.tags.clone(), p);
                continue;
            }
        };
        let mut workload = p.tags.clone();
        let pod = workload.remove(pod_key).unwrap_or_default();
        add(&p.measurement, workload, p);
        if pod.is_empty() {
            continue;
        }
        let activity = ["namespace", "workload", "kind", "release"]
            .iter()
            .filter_map(|t| {
                let v = p.tag(&format!("{prefix}{t}"));
                (!v.is_empty()).then(|| ((*t).to_string(), v.to_string()))
            })
            .chain([
                ("node".to_string(), p.tag("node").to_string()),
                ("pod".to_string(), pod),
            ])
            .collect();
        add(POD_ACTIVITY, activity, p);
    }
    out.into_iter()
        .map(|((measurement, tags, time_ms), fields)| Point {
            measurement,
            tags,
            fields,
            time_ms,
        })
        .collect()
}
