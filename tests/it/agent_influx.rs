//! The agent's line protocol through a real InfluxDB 1.x: written with /write, summed with
//! InfluxQL per key, compared with the corpus's ground truth.
use std::collections::BTreeMap;

use serde_json::Value;

use crate::agent_support::*;

fn query(base: &str, db: &str, q: &str) -> Value {
    let mut resp = ureq::post(format!("{base}/query"))
        .send_form([("db", db), ("q", q)])
        .unwrap_or_else(|e| panic!("InfluxQL {q}: {e}"));
    let text = resp.body_mut().read_to_string().expect("query body");
    serde_json::from_str(&text).expect("InfluxDB answers JSON")
}

/// `SELECT sum(f)... GROUP BY key` as the same shape as `sum` over parsed points.
fn influx_sums(base: &str, db: &str, measurement: &str, key: &[&str], fields: &[&str]) -> Sums {
    let select: Vec<String> = fields
        .iter()
        .map(|f| format!("sum(\"{f}\") AS \"{f}\""))
        .collect();
    let group: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
    let mut q = format!("SELECT {} FROM \"{measurement}\"", select.join(","));
    if !group.is_empty() {
        q += &format!(" GROUP BY {}", group.join(","));
    }
    let v = query(base, db, &q);
    let mut out = Sums::new();
    for s in v["results"][0]["series"].as_array().expect("series") {
        let k = key
            .iter()
            .map(|t| s["tags"][*t].as_str().unwrap_or("").to_string())
            .collect();
        let row = &s["values"][0];
        let f: BTreeMap<String, i64> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.to_string(), row[i + 1].as_i64().expect("integer sum")))
            .collect();
        out.insert(k, f);
    }
    out
}

#[test]
fn agent_output_is_accepted_and_summed_by_real_influxdb() {
    let base = crate::support::service("KOVENANT_TEST_INFLUXDB");
    let c = Corpus::generate(15_000, 13, 0.02);
    let snap = c.path("cluster.json").display().to_string();
    let out = run_agent(
        &["--cluster-snapshot", &snap],
        Some(&c.path("events.jsonl")),
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let db = format!("kovenant_agent_{}_{nanos}", std::process::id());
    query(&base, &db, &format!("CREATE DATABASE \"{db}\""));
    let write = ureq::post(format!("{base}/write?db={db}&precision=ns")).send(out.as_bytes());
    if let Err(e) = write {
        panic!("InfluxDB rejected the agent's line protocol: {e}");
    }
    let expected = c.expected();
    let flows = influx_sums(&base, &db, "tcp_flow", &FLOW_KEY, &FLOW_FIELDS);
    assert_eq!(
        flows,
        expected_sums(&expected, "flows", &FLOW_KEY, &FLOW_FIELDS)
    );
    let io = influx_sums(&base, &db, "pod_io", &IO_KEY, &IO_FIELDS);
    assert_eq!(io, expected_sums(&expected, "io", &IO_KEY, &IO_FIELDS));
    let agent = influx_sums(
        &base,
        &db,
        "kovenant_agent",
        &[],
        &["lines", "bad_lines", "ignored"],
    );
    let totals = &agent[&Vec::<String>::new()];
    assert_eq!(
        totals["lines"],
        expected["counts"]["lines"].as_i64().unwrap()
    );
    assert_eq!(
        totals["bad_lines"],
        expected["counts"]["bad_lines"].as_i64().unwrap()
    );
    assert_eq!(
        totals["ignored"],
        expected["counts"]["ignored_events"].as_i64().unwrap()
    );
    query(&base, &db, &format!("DROP DATABASE \"{db}\""));
}
