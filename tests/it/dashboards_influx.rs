//! A real InfluxDB filled with the agent's points for a generated corpus, and those points.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{kovenant, service, shared};

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
        // The chart's "<bucket>/pods" bucket, as InfluxQL sees it (DESIGN.md section 3).
        influx(
            &url,
            "",
            "CREATE RETENTION POLICY \"pods\" ON kovenant_dashboards_test DURATION 0s REPLICATION 1",
        );
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

/// Writes the agent's output for the corpus in `dir` to `db` and returns the line protocol: the
/// real `kovenant agent --source stdin --cluster-snapshot cluster.json < events.jsonl`.
/// `pod_activity` goes to retention policy `pods`, as telegraf routes it to `<bucket>/pods`.
pub fn fill_influx(url: &str, db: &str, dir: &Path) -> String {
    let events = std::fs::File::open(dir.join("events.jsonl")).expect("open events.jsonl");
    let out = kovenant()
        .args([
            "agent",
            "--no-kernel",
            "--source",
            "stdin",
            "--cluster-snapshot",
        ])
        .arg(dir.join("cluster.json"))
        .stdin(events)
        .output()
        .expect("run kovenant agent");
    assert!(
        out.status.success(),
        "kovenant agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).expect("line protocol is UTF-8");
    let (pods, rest): (Vec<&str>, Vec<&str>) =
        lines.lines().partition(|l| l.starts_with("pod_activity,"));
    for (rp, part) in [("pods", pods), ("autogen", rest)] {
        let body = part.join("\n");
        let resp =
            ureq::post(format!("{url}/write?db={db}&rp={rp}&precision=ns")).send(body.as_bytes());
        if let Err(e) = resp {
            panic!("writing the agent's line protocol to {url} ({rp}): {e}");
        }
    }
    lines
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
            let text = r
                .body_mut()
                .read_to_string()
                .expect("read InfluxDB response");
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
