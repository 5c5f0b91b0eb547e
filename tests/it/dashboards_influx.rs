//! A real InfluxDB filled with points of the agent's output (tests/it/flow_points.rs), and those
//! points.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::flow_points;
use crate::support::service;

/// Where the points start (2026-01-01T00:00:00Z) and the time they span (12 windows), in ms.
pub const CORPUS_START_MS: i64 = 1_767_225_600_000;
pub const CORPUS_SPAN_MS: i64 = 120_000;

/// One point as written: measurement, tags (absent = not written), integer fields, time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, i64>,
    pub time_ms: i64,
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
}

/// Generates the points, fills the database once per test run, and returns it.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let url = service("KOVENANT_TEST_INFLUXDB");
        let db = "kovenant_dashboards_test".to_string();
        let points = flow_points::as_installed(&flow_points::generate(
            CORPUS_START_MS,
            CORPUS_SPAN_MS / 10_000,
            11,
        ));
        influx(&url, "", "DROP DATABASE kovenant_dashboards_test");
        influx(&url, "", "CREATE DATABASE kovenant_dashboards_test");
        write_installed(&url, &db, &points);
        Fixture { url, db, points }
    })
}

/// Writes points as the chart's telegraf does: `pod_activity` to the pod-level retention policy
/// (the bucket `<bucket>/pods`, made here as the InfluxDB pod's postStart hook makes it, but
/// kept forever: the corpus's points are older than any real pod-level retention), the rest to
/// the database's default one.
pub fn write_installed(url: &str, db: &str, points: &[Point]) {
    influx(
        url,
        "",
        &format!(
            "CREATE RETENTION POLICY \"{}\" ON \"{db}\" DURATION INF REPLICATION 1",
            flow_points::POD_RP
        ),
    );
    let (pods, rest): (Vec<Point>, Vec<Point>) = points
        .iter()
        .cloned()
        .partition(|p| p.measurement == flow_points::POD_ACTIVITY);
    for (rp, points) in [("", rest), (flow_points::POD_RP, pods)] {
        let lines = flow_points::line_protocol(&points);
        // What InfluxDB is sent is what the tests reckon with.
        let parsed: Vec<Point> = lines.lines().map(parse_line).collect();
        assert_eq!(parsed, points, "the line protocol round-trips");
        let resp = ureq::post(format!("{url}/write"))
            .query("db", db)
            .query("rp", rp)
            .query("precision", "ns")
            .send(lines.as_bytes());
        if let Err(e) = resp {
            panic!("writing {} points to {url} ({db}.{rp}): {e}", points.len());
        }
    }
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
    let time_ns: i64 = parts[second_space + 1].parse().expect("timestamp");
    Point {
        measurement: parts[0].clone(),
        tags: parts[1..=first_space].iter().map(kv).collect(),
        fields: parts[first_space + 1..=second_space]
            .iter()
            .map(kv)
            .map(|(k, v)| (k, v.trim_end_matches('i').parse().expect("integer field")))
            .collect(),
        time_ms: time_ns / 1_000_000,
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
