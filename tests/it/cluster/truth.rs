//! What the command line says on the real control plane: the status table on stdout with the
//! reason on each failing row, exit 3 naming a node whose agent stopped; `-v` tracing helm
//! command lines, API calls and step times; a dry run that fails where the install would.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{HelmMajor, Session};
use crate::support::service;

/// A `kovenant_agent` point for `node`, `age` ago, in the session's bucket.
fn agent_point(s: &Session, node: &str, age: Duration) {
    super::influx_delete(
        &s.influxdb,
        &s.bucket,
        "kovenant_agent",
        &format!("node=\"{node}\""),
    );
    let ts = SystemTime::now()
        .checked_sub(age)
        .expect("clock")
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    super::influx(
        &s.influxdb,
        "/write",
        &[("db", &s.bucket)],
        &format!("kovenant_agent,node={node} keys=1i {ts}\n"),
    );
}

#[test]
fn status_table_is_on_stdout_with_the_reason_on_each_failing_row() {
    let s = Session::new(HelmMajor::V4);
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    let env = s.env_arg();
    s.write_points(Duration::from_secs(1));

    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("policies    ok   kovenant-tcp\n"),
        "{run}"
    );
    assert!(!run.stdout.contains("FAIL"), "{run}");
    assert!(run.stderr.contains("√ the stack is healthy"), "{run}");

    // One node's agent stops writing: exit 3, the row names the node and why.
    agent_point(&s, "kwok-node-1", Duration::from_secs(95));
    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 3, "{run}");
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("influxdb "))
        .unwrap_or_else(|| panic!("no influxdb row: {run}"));
    assert!(
        row.starts_with(
            "influxdb    FAIL no kovenant_agent point newer than 30s (three agent windows) from node kwok-node-1 ("
        ) && !row.contains("kwok-node-0"),
        "{row}"
    );
    assert!(
        run.stderr.contains("× the stack is not healthy: influxdb"),
        "{run}"
    );
    s.write_points(Duration::from_secs(1));

    // A missing policy: the row says which one is missing, and how to put it back.
    s.kubectl(&["delete", "tracingpolicies.cilium.io", "kovenant-tcp"]);
    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stdout.contains(
            "policies    FAIL missing kovenant-tcp (none present); kovenant install --only policies puts them back\n"
        ),
        "{run}"
    );

    // -v: each helm command line, each API call with its status and time, each step's time.
    let run = s.run(&[
        "-v",
        "install",
        "--yes",
        "--skip-image",
        "--only",
        "policies",
        "--env-file",
        &env,
    ]);
    assert_eq!(run.code, 0, "{run}");
    let traces: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("[trace]"))
        .collect();
    let has = |p: &dyn Fn(&str) -> bool| traces.iter().any(|l| p(l));
    assert!(
        has(&|l| l.starts_with("  [trace] helm version --short -> exit 0 in ")),
        "{run}"
    );
    assert!(
        has(&|l| l.starts_with("  [trace] API GET /version -> 200 OK in ")),
        "{run}"
    );
    assert!(
        has(&|l| l.starts_with(
            "  [trace] API PATCH /apis/cilium.io/v1alpha1/tracingpolicies/kovenant-tcp?"
        ) && l.contains(" -> 20")),
        "{run}"
    );
    assert!(
        has(&|l| l.starts_with("  [trace] step `") && l.contains("` took ")),
        "{run}"
    );
    let secret = s.kubectl(&[
        "get",
        "secret",
        "-n",
        "kovenant",
        "kovenant-grafana",
        "-o",
        "jsonpath={.data.admin-password}",
    ]);
    assert!(
        !secret.is_empty() && !run.stderr.contains(&secret),
        "a secret in the trace"
    );
    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 0, "{run}");
    s.cleanup();
}

#[test]
fn dry_run_fails_where_the_install_would() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    // No registry, and the test cluster is not kind, k3d or minikube: the image has no way in.
    let run = crate::support::Run::from(
        s.kovenant(&["install", "--dry-run", "--env-file", &env])
            .env("DOCKER_HOST", service("KOVENANT_TEST_DOCKER_HOST"))
            .output()
            .expect("run kovenant"),
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("× the image has a way into the cluster: the telegraf-tetragon image has no way into cluster context"),
        "{run}"
    );
    assert!(
        run.stdout.contains("   ensure  image telegraf-tetragon:"),
        "{run}"
    );
    assert!(
        !run.stderr.contains("dry run: nothing was changed"),
        "{run}"
    );
    assert_eq!(s.releases(), Vec::new());
}
