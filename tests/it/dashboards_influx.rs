//! A real InfluxDB filled with the agent's points for a generated corpus, and those points.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{service, shared};

/// The corpus tool's default start (2026-01-01T00:00:00Z) and span (120 s), in ms.
pub const CORPUS_START_MS: i64 = 1_767_225_600_000;
pub const CORPUS_SPAN_MS: i64 = 120_000;

/// One point as written: measurement, tags (absent = not written), integer fields.
#[derive(Debug, Clone)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, i64>,
}

impl Point {
    /// A tag's value the way InfluxQL sees it: an absent tag is the empty string.
    pub fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map_or("", String::as_str)
    }
}

pub struct Fixture {
    pub url: String,
    pub db: String,
    pub points: Vec<Point>,
    pub expected: Value,
}

/// Generates the corpus, fills the database once per test run, and returns it.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let url = service("KOVENANT_TEST_INFLUXDB");
        let db = "kovenant_dashboards_test".to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("python3")
            .arg(shared().join("tools/tetragon_corpus.py"))
            .args(["--out"])
            .arg(dir.path())
            .args(["--events", "4000", "--seed", "11", "--bad-lines", "0.01"])
            .output()
            .expect("run tetragon_corpus.py");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let expected: Value = read_json(&dir.path().join("expected.json"));
        influx(&url, "", "DROP DATABASE kovenant_dashboards_test");
        influx(&url, "", "CREATE DATABASE kovenant_dashboards_test");
        let lines = fill_influx(&url, &db, dir.path());
        let points = lines
            .lines()
            .filter(|l| !l.is_empty())
            .map(parse_line)
            .collect();
        Fixture {
            url,
            db,
            points,
            expected,
        }
    })
}

/// Writes the agent's output for the corpus in `dir` to `db` and returns the line protocol.
///
/// Stand-in until the agent lands on this branch: one point per expected.json key carrying its
/// totals (the agent's contract is that its points sum to expected.json), with the pod and node
/// the cluster snapshot gives the key's workload, as the agent would attribute them.
pub fn fill_influx(url: &str, db: &str, dir: &Path) -> String {
    let expected = read_json(&dir.join("expected.json"));
    let placement = pod_placement(&read_json(&dir.join("cluster.json")));
    let ts = CORPUS_START_MS * 1_000_000 + 5_000_000_000;
    let mut out = String::new();
    let place = |ns: &str, wl: &str, kind: &str| -> (String, String) {
        if kind == "Node" {
            return (String::new(), wl.to_string());
        }
        placement
            .get(&(ns.to_string(), wl.to_string()))
            .cloned()
            .expect("workload has a pod")
    };
    for f in expected["flows"].as_array().expect("flows") {
        let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        let (pod, node) = place(&s("src_namespace"), &s("src_workload"), &s("src_kind"));
        let tags = [
            ("node", node),
            ("src_namespace", s("src_namespace")),
            ("src_workload", s("src_workload")),
            ("src_kind", s("src_kind")),
            ("src_pod", pod),
            ("src_release", s("src_release")),
            ("peer_type", s("peer_type")),
            ("peer_namespace", s("peer_namespace")),
            ("peer_name", s("peer_name")),
            ("port", f["port"].to_string()),
            ("role", s("role")),
        ];
        let fields = [
            "connects",
            "closes",
            "sends",
            "send_bytes",
            "recvs",
            "recv_bytes",
        ];
        out.push_str(&line(
            "tcp_flow",
            &tags,
            fields.map(|k| (k, f[k].as_i64().unwrap_or(0))),
            ts,
        ));
    }
    for io in expected["io"].as_array().expect("io") {
        let s = |k: &str| io[k].as_str().unwrap_or_default().to_string();
        let (pod, node) = place(&s("namespace"), &s("workload"), &s("kind"));
        let tags = [
            ("node", node),
            ("namespace", s("namespace")),
            ("workload", s("workload")),
            ("kind", s("kind")),
            ("pod", pod),
            ("release", s("release")),
        ];
        let fields = ["reads", "read_bytes", "writes", "write_bytes"];
        out.push_str(&line(
            "pod_io",
            &tags,
            fields.map(|k| (k, io[k].as_i64().unwrap_or(0))),
            ts,
        ));
    }
    let counts = &expected["counts"];
    let c = |k: &str| counts[k].as_i64().unwrap_or(0);
    let agent = [
        ("lines", c("lines")),
        ("events", c("events")),
        ("bad_lines", c("bad_lines")),
        ("ignored", c("ignored_events")),
        ("dropped_keys", 0),
    ];
    out.push_str(&line("kovenant_agent", &[], agent, ts));
    let resp = ureq::post(format!("{url}/write?db={db}&precision=ns")).send(out.as_bytes());
    if let Err(e) = resp {
        panic!("writing line protocol to {url}: {e}");
    }
    out
}

/// (namespace, workload) -> (first pod, its node), following Pod -> ReplicaSet -> Deployment.
fn pod_placement(cluster: &Value) -> BTreeMap<(String, String), (String, String)> {
    let items = cluster["items"].as_array().expect("items");
    let owner = |item: &Value| -> Option<String> {
        item["metadata"]["ownerReferences"][0]["name"]
            .as_str()
            .map(str::to_string)
    };
    let rs_owner: BTreeMap<(String, String), String> = items
        .iter()
        .filter(|i| i["kind"] == "ReplicaSet")
        .filter_map(|i| {
            let key = (
                i["metadata"]["namespace"].as_str()?.to_string(),
                i["metadata"]["name"].as_str()?.to_string(),
            );
            Some((key, owner(i)?))
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut pods: Vec<&Value> = items.iter().filter(|i| i["kind"] == "Pod").collect();
    pods.sort_by_key(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    for p in pods {
        let ns = p["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let workload = match (
            p["metadata"]["ownerReferences"][0]["kind"].as_str(),
            owner(p),
        ) {
            (Some("ReplicaSet"), Some(rs)) => rs_owner
                .get(&(ns.clone(), rs.clone()))
                .cloned()
                .unwrap_or(rs),
            (_, Some(o)) => o,
            (_, None) => name.clone(),
        };
        let node = p["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.entry((ns, workload)).or_insert((name, node));
    }
    out
}

fn line<const N: usize>(
    m: &str,
    tags: &[(&str, String)],
    fields: [(&str, i64); N],
    ts: i64,
) -> String {
    let esc = |v: &str| {
        v.replace(',', "\\,")
            .replace(' ', "\\ ")
            .replace('=', "\\=")
    };
    let tags: String = tags
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!(",{k}={}", esc(v)))
        .collect();
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}i")).collect();
    format!("{m}{tags} {} {ts}\n", fields.join(","))
}

/// Parses one line of line protocol (escaped `,`, ` `, `=` in tag values; integer fields).
fn parse_line(text: &str) -> Point {
    let mut parts = Vec::new();
    let (mut cur, mut escaped) = (String::new(), false);
    let mut seps = Vec::new();
    for c in text.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == ' ' {
            parts.push(std::mem::take(&mut cur));
            seps.push(c);
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    // measurement, tags..., then (after the first space) fields..., then (after the second) time
    let first_space = seps.iter().position(|&c| c == ' ').expect("fields");
    let second_space = seps.iter().rposition(|&c| c == ' ').expect("timestamp");
    let kv = |s: &String| {
        s.split_once('=')
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .expect("key=value")
    };
    Point {
        measurement: parts[0].clone(),
        tags: parts[1..=first_space].iter().map(kv).collect(),
        fields: parts[first_space + 1..=second_space]
            .iter()
            .map(kv)
            .map(|(k, v)| (k, v.trim_end_matches('i').parse().expect("integer field")))
            .collect(),
    }
}

/// Runs InfluxQL against `db` ("" for server statements) and returns the first result.
pub fn influx(url: &str, db: &str, q: &str) -> Value {
    let resp = ureq::post(format!("{url}/query"))
        .query("db", db)
        .query("epoch", "ms")
        .config()
        .http_status_as_error(false)
        .build()
        .send_form([("q", q)]);
    let text = match resp {
        Ok(mut r) => {
            let status = r.status();
            let text = r.body_mut().read_to_string().expect("read InfluxDB response");
            assert!(status.is_success(), "InfluxDB {status} for {q}: {text}");
            text
        }
        Err(e) => panic!("InfluxDB at {url}: {e}"),
    };
    let body: Value = serde_json::from_str(&text).expect("InfluxDB answers JSON");
    let result = body["results"][0].clone();
    assert!(
        result.get("error").is_none(),
        "InfluxDB rejected {q}: {}",
        result["error"]
    );
    result
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read corpus file"))
        .expect("corpus JSON")
}
