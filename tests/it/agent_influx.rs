//! The agent's line protocol through a real InfluxDB 1.x: written with /write, summed with
//! InfluxQL per key, compared with the corpus's ground truth.
use std::collections::BTreeMap;

use serde_json::Value;

use crate::agent_support::*;

/// A database of a real InfluxDB 1.x, queried with InfluxQL (with a login when the server has
/// auth on, sent as InfluxDB 1.8 reads it from a v2 client: `Authorization: Token user:password`).
pub struct Influx<'a> {
    pub base: &'a str,
    pub db: &'a str,
    pub login: Option<(&'a str, &'a str)>,
}

impl Influx<'_> {
    pub fn query(&self, q: &str) -> Value {
        let mut req = ureq::post(format!("{}/query", self.base));
        if let Some((user, password)) = self.login {
            req = req.header("Authorization", format!("Token {user}:{password}"));
        }
        let mut resp = req
            .send_form([("db", self.db), ("q", q)])
            .unwrap_or_else(|e| panic!("InfluxQL {q}: {e}"));
        let text = resp.body_mut().read_to_string().expect("query body");
        let v: Value = serde_json::from_str(&text).expect("InfluxDB answers JSON");
        if let Some(e) = v["results"][0].get("error") {
            panic!("InfluxQL {q}: {e}");
        }
        v
    }

    /// `SELECT sum(f)... GROUP BY key` as the same shape as `sum` over parsed points (empty
    /// when the measurement has no points yet, 0 for a field with no value).
    pub fn sums(&self, measurement: &str, key: &[&str], fields: &[&str]) -> Sums {
        self.sums_in("autogen", measurement, key, fields)
    }

    /// As `sums`, from retention policy `rp`.
    pub fn sums_in(&self, rp: &str, measurement: &str, key: &[&str], fields: &[&str]) -> Sums {
        let select: Vec<String> = fields
            .iter()
            .map(|f| format!("sum(\"{f}\") AS \"{f}\""))
            .collect();
        let group: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
        let mut q = format!(
            "SELECT {} FROM \"{rp}\".\"{measurement}\"",
            select.join(",")
        );
        if !group.is_empty() {
            q += &format!(" GROUP BY {}", group.join(","));
        }
        let v = self.query(&q);
        let mut out = Sums::new();
        for s in v["results"][0]["series"].as_array().into_iter().flatten() {
            let k = key
                .iter()
                .map(|t| s["tags"][*t].as_str().unwrap_or("").to_string())
                .collect();
            let row = &s["values"][0];
            let f: BTreeMap<String, i64> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    // null: no value of that field (yet: InfluxDB stores each field of a
                    // point apart, and a query amid a write may see some of them).
                    let v = match &row[i + 1] {
                        Value::Null => 0,
                        v => v
                            .as_i64()
                            .unwrap_or_else(|| panic!("{measurement}: sum({f}) {s}")),
                    };
                    (f.to_string(), v)
                })
                .collect();
            out.insert(k, f);
        }
        out
    }
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
    let influx = Influx {
        base: &base,
        db: &db,
        login: None,
    };
    influx.query(&format!("CREATE DATABASE \"{db}\""));
    let write = ureq::post(format!("{base}/write?db={db}&precision=ns")).send(out.as_bytes());
    if let Err(e) = write {
        panic!("InfluxDB rejected the agent's line protocol: {e}");
    }
    let expected = c.expected();
    let flows = influx.sums("tcp_flow", &FLOW_KEY, &REPLAY_FLOW_FIELDS);
    assert_eq!(flows, replay_flows(&expected));
    // The kernel's counters are absent from a replay: zero in every flow, no pod_io at all.
    let kernel_only = influx.sums("tcp_flow", &[], &FLOW_FIELDS[2..]);
    let kernel_only = &kernel_only[&Vec::<String>::new()];
    assert!(kernel_only.values().all(|v| *v == 0), "{kernel_only:?}");
    assert_eq!(influx.sums("pod_io", &IO_KEY, &IO_FIELDS), Sums::new());
    let counts = replay_counts(&expected);
    let fields: Vec<&str> = counts.keys().map(String::as_str).collect();
    let agent = influx.sums("kovenant_agent", &[], &fields);
    assert_eq!(agent[&Vec::<String>::new()], counts);
    influx.query(&format!("DROP DATABASE \"{db}\""));
}
