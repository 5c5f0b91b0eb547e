//! Helpers of the agent tests: corpora with ground truth, a strict line-protocol reader, and
//! sums keyed the way the flow contract's `expected.json` is.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const FLOW_KEY: [&str; 9] = [
    "src_namespace",
    "src_workload",
    "src_kind",
    "src_release",
    "peer_type",
    "peer_namespace",
    "peer_name",
    "port",
    "role",
];
/// `tcp_flow`'s fields (DESIGN.md section 3).
pub const FLOW_FIELDS: [&str; 8] = [
    "connects",
    "accepts",
    "closes",
    "bytes_sent",
    "bytes_received",
    "retrans_bytes",
    "rtt_us_sum",
    "rtt_samples",
];
/// The `tcp_flow` fields a replay of Tetragon's events fills (`--no-kernel`): the others come
/// from the kernel's counters only.
pub const REPLAY_FLOW_FIELDS: [&str; 2] = ["connects", "accepts"];
pub const IO_KEY: [&str; 4] = ["namespace", "workload", "kind", "release"];
/// `pod_io`'s fields; only the kernel's counters fill them.
pub const IO_FIELDS: [&str; 6] = [
    "reads",
    "read_bytes",
    "writes",
    "write_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
];
/// `kovenant_agent`'s fields.
pub const AGENT_FIELDS: [&str; 20] = [
    "netns",
    "netns_quiet",
    "netns_looked_up",
    "sockets",
    "processes",
    "destroy_events",
    "destroys_lost",
    "closed_flows",
    "sample_us",
    "tetragon_lines",
    "tetragon_events",
    "bad_lines",
    "ignored",
    "unresolved_peers",
    "keys",
    "dropped_keys",
    "rotated_files_read",
    "rotated_files_lost",
    "truncations",
    "lag_ms",
];
/// The `kovenant_agent` fields only the kernel's readers fill: zero in every replay.
pub const KERNEL_AGENT_FIELDS: [&str; 9] = [
    "netns",
    "netns_quiet",
    "netns_looked_up",
    "sockets",
    "processes",
    "destroy_events",
    "destroys_lost",
    "closed_flows",
    "sample_us",
];

/// A generated corpus: cluster.json, events.jsonl, expected.json in a temporary folder.
pub struct Corpus {
    pub dir: tempfile::TempDir,
}

impl Corpus {
    pub fn generate(events: u32, seed: u32, bad_lines: f64) -> Corpus {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = crate::support::shared().join("tools/tetragon_corpus.py");
        // The generator uses Python's hash() of strings: without a fixed seed its output differs
        // from run to run, and a failure could not be reproduced.
        let status = Command::new("python3")
            .env("PYTHONHASHSEED", "0")
            .arg(tool)
            .args(["--out", dir.path().to_str().expect("utf-8 path")])
            .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
            .args(["--bad-lines", &bad_lines.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3 runs the corpus generator");
        assert!(status.success(), "corpus generator failed");
        Corpus { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn expected(&self) -> Value {
        read_json(&self.path("expected.json"))
    }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("valid json")
}

/// One point of line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, i64>,
    pub time: i64,
}

/// Splits at unescaped `sep`, keeping escapes in the parts.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let last = parts.last_mut().expect("one part");
            last.push(c);
            last.extend(chars.next());
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("one part").push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.extend(if c == '\\' { chars.next() } else { Some(c) });
    }
    out
}

/// Parses line protocol strictly: integer fields only, a timestamp on every line, no empty
/// tag values. Panics (failing the test) on anything else.
pub fn parse_lp(text: &str) -> Vec<Point> {
    text.lines()
        .map(|line| {
            let parts = split_unescaped(line, ' ');
            assert_eq!(parts.len(), 3, "three sections: {line}");
            let series = split_unescaped(&parts[0], ',');
            let mut tags = BTreeMap::new();
            for kv in &series[1..] {
                let kv = split_unescaped(kv, '=');
                assert_eq!(kv.len(), 2, "tag k=v: {line}");
                assert!(!kv[1].is_empty(), "empty tag value: {line}");
                tags.insert(unescape(&kv[0]), unescape(&kv[1]));
            }
            let fields = parts[1]
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("field k=v");
                    let v = v.strip_suffix('i').expect("integer field");
                    (k.to_string(), v.parse::<i64>().expect("integer"))
                })
                .collect();
            Point {
                measurement: unescape(&series[0]),
                tags,
                fields,
                time: parts[2].parse().expect("timestamp"),
            }
        })
        .collect()
}

pub type Sums = BTreeMap<Vec<String>, BTreeMap<String, i64>>;

/// Sums points of `measurement` over windows, pods and nodes, grouped by `key`.
pub fn sum(points: &[Point], measurement: &str, key: &[&str], fields: &[&str]) -> Sums {
    let mut out = Sums::new();
    for p in points.iter().filter(|p| p.measurement == measurement) {
        let k = key
            .iter()
            .map(|t| p.tags.get(*t).cloned().unwrap_or_default())
            .collect();
        let e = out.entry(k).or_default();
        for f in fields {
            *e.entry(f.to_string()).or_default() += p.fields.get(*f).copied().unwrap_or(0);
        }
    }
    out
}

/// `expected.json`'s `flows` or `io`, keyed like `sum`.
pub fn expected_sums(expected: &Value, list: &str, key: &[&str], fields: &[&str]) -> Sums {
    let mut out = Sums::new();
    for item in expected[list].as_array().expect("list") {
        let k = key
            .iter()
            .map(|t| match &item[*t] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        let f = fields
            .iter()
            .map(|f| (f.to_string(), item[*f].as_i64().expect("integer")))
            .collect();
        assert!(out.insert(k, f).is_none(), "duplicate key in expected.json");
    }
    out
}

/// The self-metrics summed over windows.
pub fn agent_totals(points: &[Point]) -> BTreeMap<String, i64> {
    let all = sum(points, "kovenant_agent", &[], &AGENT_FIELDS);
    all.into_values().next().unwrap_or_default()
}

/// What a replay makes of the corpus' flows: only `tcp_connect` events are counted (the
/// generator's `tcp_sendmsg`, `tcp_recvmsg` and `tcp_close` events are the retired per-call
/// hooks', now ignored), so each flow key with connects has them, and no accepts (the
/// generator writes no `inet_csk_accept`).
pub fn replay_flows(expected: &Value) -> Sums {
    expected_sums(expected, "flows", &FLOW_KEY, &["connects"])
        .into_iter()
        .filter(|(_, v)| v["connects"] > 0)
        .map(|(k, mut v)| {
            v.insert("accepts".to_string(), 0);
            (k, v)
        })
        .collect()
}

/// What a replay counts of the corpus' lines: every event but the `tcp_connect`s is ignored
/// (exec/exit events, and the retired per-call hooks' `sys_read`, `sys_write`, `tcp_sendmsg`,
/// `tcp_recvmsg` and `tcp_close`).
pub fn replay_counts(expected: &Value) -> BTreeMap<String, i64> {
    let c = &expected["counts"];
    let n = |f: &str| c[f].as_i64().unwrap_or_else(|| panic!("counts.{f}"));
    let connects: i64 = replay_flows(expected).values().map(|v| v["connects"]).sum();
    BTreeMap::from([
        ("tetragon_lines".to_string(), n("lines")),
        ("tetragon_events".to_string(), n("events")),
        ("bad_lines".to_string(), n("bad_lines")),
        ("ignored".to_string(), n("events") - connects),
    ])
}

/// Asserts a replay's output equals the ground truth: every flow key with its connects and
/// accepts, nothing in the kernel-only fields, no `pod_io`, and the line counts.
pub fn assert_ground_truth(points: &[Point], expected: &Value) {
    let flows = sum(points, "tcp_flow", &FLOW_KEY, &FLOW_FIELDS);
    let want = replay_flows(expected);
    assert!(!want.is_empty(), "the corpus has connects");
    assert_eq!(flows.len(), want.len(), "number of flow keys");
    for (k, v) in &flows {
        for f in &FLOW_FIELDS[2..] {
            assert_eq!(v[*f], 0, "{f} of {k:?}: a replay has no kernel counters");
        }
        let got: BTreeMap<String, i64> = REPLAY_FLOW_FIELDS
            .iter()
            .map(|f| (f.to_string(), v[*f]))
            .collect();
        assert_eq!(Some(&got), want.get(k), "flow {k:?}");
    }
    assert!(
        points.iter().all(|p| p.measurement != "pod_io"),
        "a replay writes no pod_io"
    );
    let t = agent_totals(points);
    for (f, n) in replay_counts(expected) {
        assert_eq!(t[&f], n, "{f}");
    }
    assert_eq!(t["dropped_keys"], 0);
    for f in KERNEL_AGENT_FIELDS {
        assert_eq!(t[f], 0, "{f} in a replay");
    }
}

/// Runs `kovenant agent --no-kernel ARGS` (a replay) to its end with `stdin` as input;
/// returns stdout.
pub fn run_agent(args: &[&str], stdin: Option<&Path>) -> String {
    let mut cmd = crate::support::kovenant();
    cmd.args(["agent", "--no-kernel"]).args(args);
    cmd.stdin(match stdin {
        Some(p) => std::fs::File::open(p).expect("open input").into(),
        None => std::process::Stdio::null(),
    });
    let out = cmd.output().expect("run kovenant agent");
    assert!(
        out.status.success(),
        "agent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
