//! `kovenant status` on the real control plane: exit 3 naming the component and the reason for a
//! pod that is not ready, a missing policy, and an agent that stopped writing.
use std::time::Duration;

use serde_json::Value;

use super::{HelmMajor, Session};
use crate::support::Run;

fn status(s: &Session, env: &str) -> (i32, Value, String) {
    let run = s.run(&["status", "--env-file", env, "-o", "json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    (run.code, v, run.stderr)
}

fn component<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}: {v:#}"))
}

#[test]
fn status_exits_3_naming_what_is_unhealthy_and_why() {
    let s = Session::new(HelmMajor::V4);
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    let env = s.env_arg();
    s.write_points(Duration::from_secs(1));
    let (code, v, err) = status(&s, &env);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let agents: Vec<&str> = v["influxdb"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["node"].as_str())
        .collect();
    assert_eq!(agents, ["kwok-node-0", "kwok-node-1"]);
    assert_eq!(v["influxdb"]["stale_after_seconds"], 30);

    // An agent that stopped writing: kwok-node-1's newest point is older than three windows.
    super::influx_delete(
        &s.influxdb,
        &s.bucket,
        "kovenant_agent",
        "node=\"kwok-node-1\"",
    );
    let old = std::time::SystemTime::now()
        .checked_sub(Duration::from_secs(95))
        .expect("clock")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    super::influx(
        &s.influxdb,
        "/write",
        &[("db", &s.bucket)],
        &format!("kovenant_agent,node=kwok-node-1 keys=1i {old}\n"),
    );
    let (code, v, _) = status(&s, &env);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["influxdb"]["healthy"], false);
    let e = v["influxdb"]["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("newer than 30s") && e.contains("kwok-node-1") && !e.contains("kwok-node-0"),
        "{e}"
    );
    s.write_points(Duration::from_secs(1));

    // A missing policy.
    s.kubectl(&["delete", "tracingpolicies.cilium.io", "kovenant-tcp"]);
    let (code, v, _) = status(&s, &env);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["policies"]["healthy"], false);
    assert_eq!(v["policies"]["present"], serde_json::json!([]));
    let back = s.install(&["--only", "policies"]);
    assert_eq!(back.code, 0, "{back}");
    let (code, v, _) = status(&s, &env);
    assert_eq!(code, 0, "{v:#}");

    // A pod that is not ready: Grafana's readiness probe fails (what the kubelet would write).
    let pods = s.get(&[
        "pods",
        "-n",
        "kovenant",
        "-l",
        "app.kubernetes.io/name=grafana",
    ]);
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .expect("a Grafana pod")
        .to_string();
    let patch = r#"{"status":{"conditions":[
        {"type":"Ready","status":"False","reason":"ContainersNotReady","message":"containers with unready status: [grafana]"},
        {"type":"ContainersReady","status":"False","reason":"ContainersNotReady","message":"containers with unready status: [grafana]"}]}}"#;
    s.kubectl(&[
        "patch",
        "pod",
        "-n",
        "kovenant",
        &pod,
        "--subresource=status",
        "--type=strategic",
        "-p",
        patch,
    ]);
    s.eventually(
        "the Deployment counts the pod unready",
        Duration::from_secs(30),
        || {
            let d = s.get(&["deployment", "-n", "kovenant", "grafana"]);
            d["status"]["readyReplicas"].as_i64().unwrap_or(0) == 0
        },
    );
    let (code, v, _) = status(&s, &env);
    assert_eq!(code, 3, "{v:#}");
    let g = component(&v, "grafana");
    assert_eq!(g["healthy"], false, "{g:#}");
    assert_eq!(g["workloads"][0]["ready"], 0, "{g:#}");
    assert_eq!(g["problems"][0]["pod"], pod.as_str(), "{g:#}");
    assert_eq!(g["problems"][0]["reason"], "ContainersNotReady", "{g:#}");
    assert_eq!(component(&v, "prometheus")["healthy"], true, "{v:#}");
}

#[test]
fn nothing_installed_reports_every_part_and_exits_3() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    let run = s.run(&[
        "status",
        "--env-file",
        &env,
        "-o",
        "json",
        "--wait",
        "--timeout",
        "1s",
    ]);
    assert_eq!(run.code, 3, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    for name in ["tetragon", "prometheus", "grafana", "pipeline"] {
        let c = component(&v, name);
        assert_eq!(c["helm"], Value::Null, "{c}");
        assert_eq!(c["healthy"], false, "{c}");
    }
    assert_eq!(v["policies"]["healthy"], false, "{v:#}");
    assert_eq!(v["dashboards"]["healthy"], false, "{v:#}");
    assert_eq!(
        v["grafana"]["error"],
        "/api/health: no Grafana pod is ready; through the service proxy: services \"grafana\" not found",
        "{v:#}"
    );
    assert_eq!(v["influxdb"]["healthy"], false, "{v:#}");
    // Its end says the timeout as it was given, not as a float of seconds.
    assert!(
        run.stderr.contains("(--timeout 1s)\n") && !run.stderr.contains(".0s"),
        "{run}"
    );
}

/// `status --wait` ends with a complete report, never one its own deadline cut short: with each
/// `helm list` taking 3 s and `--timeout 2s`, the one check still completes, its helm calls
/// included (the first check gets at least 5 s), so the verdict is "not installed" (exit 3), not
/// "could not check" (exit 1) from a helm stopped at the deadline.
#[test]
fn a_check_slower_than_the_timeout_completes_with_its_helm_calls() {
    use std::os::unix::fs::PermissionsExt;
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    let slow = s.home.path().join("slow-helm");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \"$1\" in list) sleep 3;; esac\nexec '{}' \"$@\"\n",
            s.helm.display()
        ),
    )
    .expect("write the slow helm");
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let started = std::time::Instant::now();
    let run = Run::from(
        s.kovenant(&[
            "status",
            "--env-file",
            &env,
            "-o",
            "json",
            "--wait",
            "--timeout",
            "2s",
        ])
        .env("KOVENANT_HELM", &slow)
        .output()
        .expect("run kovenant"),
    );
    let took = started.elapsed();
    assert_eq!(run.code, 3, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    assert_eq!(v["cannot_check"], serde_json::json!([]), "{v:#}");
    for name in ["tetragon", "prometheus", "grafana", "pipeline"] {
        let c = component(&v, name);
        assert_eq!(c["helm"], Value::Null, "{c}");
        assert_eq!(c["errors"], serde_json::json!([]), "{c}");
    }
    assert!(
        !run.stderr.contains("still running at the end of --timeout"),
        "{run}"
    );
    // Bounded still: the check's 5 s floor, and the time to print and exit.
    assert!(took < Duration::from_secs(7), "--timeout 2s took {took:?}");
}

/// Without helm, status cannot tell whether anything is installed: "could not check", exit 1
/// (README's exit codes), never "not installed" with exit 3.
#[test]
fn status_without_helm_could_not_check() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    for json in [false, true] {
        let mut args = vec!["status", "--env-file", &env];
        if json {
            args.extend(["-o", "json"]);
        }
        let run = Run::from(
            s.kovenant(&args)
                .env("KOVENANT_HELM", "/nonexistent/helm")
                .output()
                .expect("run kovenant"),
        );
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr.contains(
                "error: status: could not check the helm releases: helm: `/nonexistent/helm` was \
                 not found\nhint: install helm 3"
            ),
            "{run}"
        );
        assert!(!run.stdout.contains("not installed"), "{run}");
        if json {
            let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
            assert_eq!(v["healthy"], false);
            assert!(
                v["errors"][0]
                    .as_str()
                    .is_some_and(|e| e.starts_with("status: could not check the helm releases")),
                "{v}"
            );
        }
    }
}
