//! `kovenant agent` against ground truth: generated corpora, real Tetragon output, bad input.
use std::io::Write;

use crate::agent_support::*;

fn snapshot_args(c: &Corpus) -> Vec<String> {
    vec![
        "--cluster-snapshot".into(),
        c.path("cluster.json").display().to_string(),
    ]
}

#[test]
fn agent_stdin_matches_ground_truth_for_several_seeds() {
    for (events, seed, bad) in [(2_000, 1, 0.0), (20_000, 7, 0.02), (8_000, 42, 0.1)] {
        let c = Corpus::generate(events, seed, bad);
        let args = snapshot_args(&c);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_agent(&args, Some(&c.path("events.jsonl")));
        assert_ground_truth(&parse_lp(&out), &c.expected());
    }
}

#[test]
fn agent_file_replay_matches_ground_truth() {
    let c = Corpus::generate(30_000, 11, 0.02);
    let file = format!("file:{}", c.path("events.jsonl").display());
    let snap = c.path("cluster.json").display().to_string();
    let args = [
        "--source",
        &file,
        "--from-start",
        "--no-follow",
        "--cluster-snapshot",
        &snap,
    ];
    let out = run_agent(&args, None);
    let points = parse_lp(&out);
    assert_ground_truth(&points, &c.expected());
    // 120 s of events in 10 s windows: twelve windows, one self-metrics point each.
    let agent: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "kovenant_agent")
        .collect();
    assert_eq!(agent.len(), 12);
    assert_eq!(agent[0].time, 1_767_225_600_000_000_000);
    assert!(
        agent
            .windows(2)
            .all(|w| w[1].time - w[0].time == 10_000_000_000)
    );
}

#[test]
fn agent_writes_one_point_per_key_per_window() {
    let c = Corpus::generate(10_000, 5, 0.0);
    let args = snapshot_args(&c);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut args = args.clone();
    args.extend(["--window", "30s"]);
    let points = parse_lp(&run_agent(&args, Some(&c.path("events.jsonl"))));
    let mut seen = std::collections::BTreeSet::new();
    for p in &points {
        assert!(
            seen.insert((p.measurement.clone(), p.tags.clone(), p.time)),
            "duplicate {p:?}"
        );
        assert_eq!(p.time % 30_000_000_000, 0, "aligned window start");
    }
    assert_eq!(
        points
            .iter()
            .filter(|p| p.measurement == "kovenant_agent")
            .count(),
        4
    );
    assert_ground_truth(&points, &c.expected());
}

#[test]
fn agent_folds_keys_over_the_cap_into_peer_other() {
    let c = Corpus::generate(5_000, 3, 0.0);
    let args = snapshot_args(&c);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--max-keys", "50", "--window", "1h"]);
    let points = parse_lp(&run_agent(&args, Some(&c.path("events.jsonl"))));
    // The cap is on the window's keys: one per source and peer.
    let keys = points
        .iter()
        .filter(|p| p.measurement != "kovenant_agent")
        .count();
    let t = agent_totals(&points);
    assert!(keys <= 50 + 50 / 16 + 16 + 2, "{keys} keys");
    assert!(
        t["keys"] >= keys as i64,
        "{} keys counted, {keys} written",
        t["keys"]
    );
    assert!(t["keys"] <= 50 + 50 / 16 + 16 + 2, "{} keys", t["keys"]);
    assert!(t["dropped_keys"] > 0);
    assert!(
        points
            .iter()
            .any(|p| p.tags.get("peer_type").map(String::as_str) == Some("other"))
    );
    // Nothing is lost: connects still add up.
    let connects: i64 = points
        .iter()
        .filter(|p| p.measurement == "tcp_flow")
        .map(|p| p.fields["connects"])
        .sum();
    let want: i64 = replay_flows(&c.expected())
        .values()
        .map(|v| v["connects"])
        .sum();
    assert_eq!(connects, want);
}

#[test]
fn agent_counts_and_skips_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    let good = std::fs::read_to_string(
        crate::support::shared().join("fixtures/tetragon-events/kovenant-2022-cluster.jsonl"),
    )
    .unwrap();
    let first = good.lines().next().unwrap();
    f.write_all(first.as_bytes()).unwrap();
    f.write_all(b"\n\xff\xfe not utf-8\n").unwrap();
    f.write_all(&vec![b'x'; 10 * 1024 * 1024]).unwrap(); // a 10 MB line
    f.write_all(b"\n{\"process_kprobe\":null}\n[1,2]\n{}\n\n")
        .unwrap();
    // A counted function with a socket that names no address is bad; the same on a function
    // kovenant does not hook (the retired per-call tcp_sendmsg) is read and ignored.
    f.write_all(b"{\"process_kprobe\":{\"function_name\":\"tcp_connect\",\"args\":[{\"sock_arg\":{\"daddr\":\"nope\"}}]}}\n").unwrap();
    f.write_all(b"{\"process_kprobe\":{\"function_name\":\"tcp_sendmsg\",\"args\":[{\"sock_arg\":{\"daddr\":\"nope\"}},{\"size_arg\":\"1\"}]}}\n").unwrap();
    f.write_all(b"{\"process_exec\":{\"process\":{}}}\n")
        .unwrap();
    f.write_all(first.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(&first.as_bytes()[..100]).unwrap(); // truncated last line, no newline
    drop(f);
    let out = run_agent(
        &["--cluster-snapshot", &empty_snapshot(dir.path())],
        Some(&path),
    );
    let t = agent_totals(&parse_lp(&out));
    assert_eq!(t["tetragon_lines"], 12);
    assert_eq!(t["bad_lines"], 8);
    assert_eq!(t["tetragon_events"], 4);
    // The fixture's tcp_recvmsg twice, tcp_sendmsg and process_exec.
    assert_eq!(t["ignored"], 4);
}

/// A snapshot with nothing in it: attribution from the events alone.
pub fn empty_snapshot(dir: &std::path::Path) -> String {
    let p = dir.join("empty.json");
    std::fs::write(&p, r#"{"apiVersion":"v1","kind":"List","items":[]}"#).unwrap();
    p.display().to_string()
}

#[test]
fn agent_overflow_keys_carry_the_agents_node() {
    let c = Corpus::generate(2_000, 5, 0.0);
    let args = snapshot_args(&c);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend([
        "--max-keys",
        "1",
        "--window",
        "1h",
        "--node-name",
        "agent-node",
    ]);
    let points = parse_lp(&run_agent(&args, Some(&c.path("events.jsonl"))));
    let overflow: Vec<_> = points
        .iter()
        .filter(|p| {
            let w = |t: &str| p.tags.get(t).map(String::as_str) == Some("other");
            w("src_workload") || w("workload")
        })
        .collect();
    assert!(!overflow.is_empty());
    for p in overflow {
        assert_eq!(
            p.tags.get("node").map(String::as_str),
            Some("agent-node"),
            "{p:?}"
        );
    }
}

/// No snapshot and no cluster (no kubeconfig, not in a pod): the agent warns, attributes each
/// source from the event's own pod fields, and exits 0.
#[test]
fn agent_without_cluster_attributes_from_the_events() {
    let c = Corpus::generate(3_000, 9, 0.0);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::kovenant();
    cmd.args(["agent", "--no-kernel", "--window", "1h"])
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("missing"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(std::fs::File::open(c.path("events.jsonl")).unwrap());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("attributing from the events' own pod fields"),
        "{stderr}"
    );
    let points = parse_lp(&String::from_utf8(out.stdout).unwrap());
    // Without the cluster, a pod's workload is the pod's own name (kind Pod): summed per
    // namespace, the connects are the ground truth's.
    let got = sum(&points, "tcp_flow", &["src_namespace"], &["connects"]);
    let mut want = Sums::new();
    for (k, v) in replay_flows(&c.expected()) {
        *want
            .entry(vec![k[0].clone()])
            .or_default()
            .entry("connects".to_string())
            .or_default() += v["connects"];
    }
    assert_eq!(got, want);
}
