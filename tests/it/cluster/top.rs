//! `kovenant top` on the real control plane: the agent's line protocol for a generated corpus
//! (events of the last minutes) is written into the session's bucket of the real InfluxDB behind
//! kwok's port-forward of kovenant-influxdb-0, and top's totals equal the corpus's ground truth.
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{HelmMajor, Session};

/// Ground truth: expected.json's flows summed by (src_release, peer_type, peer_namespace,
/// peer_name, port) -> (send_bytes, recv_bytes, connects).
type Key = (String, String, String, String, String);

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[test]
fn top_by_release_prints_the_ground_truth_totals() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    let env = s.env_arg();

    // A corpus of the last two minutes, so `--since 15m` holds all of it.
    let dir = tempfile::tempdir().expect("tempdir");
    let start = SystemTime::now()
        .checked_sub(Duration::from_secs(300))
        .expect("clock")
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let start = k8s_openapi::jiff::Timestamp::from_second(start as i64)
        .expect("time")
        .to_string();
    let ok = Command::new("python3")
        .env("PYTHONHASHSEED", "0")
        .arg(crate::support::shared().join("tools/tetragon_corpus.py"))
        .args([
            "--out",
            &dir.path().to_string_lossy(),
            "--events",
            "3000",
            "--seed",
            "7",
        ])
        .args(["--start", &start, "--duration-s", "120"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs the corpus generator");
    assert!(ok.success());
    let snapshot = dir.path().join("cluster.json");
    let lp = crate::agent_support::run_agent(
        &["--cluster-snapshot", &snapshot.to_string_lossy()],
        Some(&dir.path().join("events.jsonl")),
    );
    // telegraf's routing: pod_activity into the bucket "<bucket>/pods", which InfluxDB's v1
    // API reaches as retention policy "pods" of database "<bucket>" (the session made both).
    let (pods, rest): (Vec<&str>, Vec<&str>) =
        lp.lines().partition(|l| l.starts_with("pod_activity,"));
    let pods_rp = [("db", s.bucket.as_str()), ("rp", "pods")];
    super::influx(&s.influxdb, "/write", &pods_rp, &pods.join("\n"));
    super::influx(
        &s.influxdb,
        "/write",
        &[("db", &s.bucket)],
        &rest.join("\n"),
    );

    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap())
            .unwrap();
    let mut truth: BTreeMap<Key, (i64, i64, i64)> = BTreeMap::new();
    for f in expected["flows"].as_array().expect("flows") {
        let k = (
            text(&f["src_release"]),
            text(&f["peer_type"]),
            text(&f["peer_namespace"]),
            text(&f["peer_name"]),
            text(&f["port"]),
        );
        let e = truth.entry(k).or_default();
        e.0 += f["send_bytes"].as_i64().unwrap();
        e.1 += f["recv_bytes"].as_i64().unwrap();
        e.2 += f["connects"].as_i64().unwrap();
    }
    let mut io: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in expected["io"].as_array().expect("io") {
        let e = io.entry(text(&r["release"])).or_default();
        e.0 += r["read_bytes"].as_i64().unwrap();
        e.1 += r["write_bytes"].as_i64().unwrap();
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
    let mut got: BTreeMap<Key, (i64, i64, i64)> = BTreeMap::new();
    for r in v["flows"].as_array().expect("flows") {
        let k = (
            text(&r["src_release"]),
            text(&r["peer_type"]),
            text(&r["peer_namespace"]),
            text(&r["peer_name"]),
            text(&r["port"]),
        );
        let sums = (
            r["send_bytes"].as_i64().unwrap(),
            r["recv_bytes"].as_i64().unwrap(),
            r["connects"].as_i64().unwrap(),
        );
        assert_eq!(r["total_bytes"].as_i64().unwrap(), sums.0 + sums.1);
        assert!(got.insert(k, sums).is_none());
    }
    assert_eq!(got, truth);
    let got_io: BTreeMap<String, (i64, i64)> = v["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|r| {
            (
                text(&r["release"]),
                (
                    r["read_bytes"].as_i64().unwrap(),
                    r["write_bytes"].as_i64().unwrap(),
                ),
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
    let (k, (send, recv, connects)) = truth
        .iter()
        .max_by(|a, b| {
            (a.1.0 + a.1.1)
                .cmp(&(b.1.0 + b.1.1))
                .then_with(|| b.0.cmp(a.0))
        })
        .expect("a flow");
    let row = run
        .stdout
        .lines()
        .nth(2)
        .unwrap_or_else(|| panic!("no first row: {run}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let want = [
        dash(&k.0),
        dash(&k.1),
        dash(&k.2),
        dash(&k.3),
        dash(&k.4),
        send.to_string(),
        recv.to_string(),
        connects.to_string(),
        (send + recv).to_string(),
    ];
    assert_eq!(cells, want, "{run}");
    assert_eq!(
        run.stdout.lines().next(),
        Some("FLOWS (last 15m, by release)"),
        "{run}"
    );

    // Per pod, from the pod-level series: every pod's figures add up to the ground truth.
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
    let want_send: i64 = truth.values().map(|t| t.0).sum();
    let want_recv: i64 = truth.values().map(|t| t.1).sum();
    let want_read: i64 = io.values().map(|t| t.0).sum();
    assert_eq!(sum(&v["flows"], "send_bytes"), want_send, "{run}");
    assert_eq!(sum(&v["flows"], "recv_bytes"), want_recv, "{run}");
    assert_eq!(sum(&v["pods"], "read_bytes"), want_read, "{run}");
    assert!(
        v["flows"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["pod"].as_str().is_some_and(|p| !p.is_empty())),
        "{run}"
    );
    s.cleanup();
}
