//! Install stopped part way (helm failing, a crash-looping pod, Ctrl-C), and the re-run that completes it.
use crate::fake_helm::upgrades;
use crate::stack::Stack;

#[test]
fn failed_third_release_is_completed_by_a_rerun() {
    let mut stack = Stack::new();
    stack
        .env
        .push(("FAKE_HELM_FAIL".into(), "upgrade:grafana".into()));
    let run = stack.install();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("UPGRADE FAILED") || run.stderr.contains("INSTALLATION FAILED"),
        "helm's own words: {run}"
    );
    assert!(
        run.stderr.contains("helm upgrade --install grafana"),
        "names the command: {run}"
    );
    stack.env.clear();
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(upgrades(&stack.helm_calls()), ["grafana"]);
    assert!(
        stack
            .api
            .get("/apis/cilium.io/v1alpha1/tracingpolicies/kovenant-tcp")
            .is_some()
    );
}

#[test]
fn a_crash_looping_pod_stops_install_at_once_with_its_log() {
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_CRASH".into(), "grafana".into()));
    // What the crashed run said (the pod has a sidecar too, so the request names the container).
    stack.api.set_log(
        "kovenant",
        "grafana-0",
        "main",
        true,
        "starting\nlogger=sqlstore msg=\"failed to connect\"\nexit 1",
    );
    stack
        .api
        .set_log("kovenant", "grafana-0", "main", false, "starting");
    let start = std::time::Instant::now();
    let run = stack.install();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "fails fast, not after helm's timeout"
    );
    assert!(
        run.stderr.contains("error: release grafana: pod kovenant/grafana-0 is CrashLoopBackOff: back-off 10s restarting failed container\nlast log lines:\n  starting\n  logger=sqlstore msg=\"failed to connect\"\n  exit 1"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("hint: kubectl -n kovenant describe pod grafana-0"),
        "{run}"
    );
}

#[test]
fn a_rerun_that_fixes_a_crash_loop_is_not_stopped_by_the_old_replicaset() {
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_CRASH".into(), "grafana".into()));
    let run = stack.install();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("CrashLoopBackOff"), "{run}");
    // The fix: another configuration, so a new ReplicaSet. While it rolls out the old
    // ReplicaSet's pod keeps crash-looping (then is scaled away and terminates), each step
    // lasting longer than the watcher's poll.
    stack.env = vec![("FAKE_HELM_ROLLOUT_PAUSE".into(), "2.5".into())];
    std::fs::write(&stack.env_file, "GRAFANA_PORT=3100\n").expect("write .env");
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(upgrades(&stack.helm_calls()), ["grafana"]);
    let api = &stack.api;
    assert!(
        api.get("/api/v1/namespaces/kovenant/pods/grafana-0")
            .is_none()
    );
    let new = api
        .get("/api/v1/namespaces/kovenant/pods/grafana-1")
        .expect("the new ReplicaSet's pod");
    assert_eq!(new["metadata"]["ownerReferences"][0]["name"], "grafana-r2");
    let old = api
        .get("/apis/apps/v1/namespaces/kovenant/replicasets/grafana-r1")
        .expect("the old ReplicaSet");
    assert_eq!(old["spec"]["replicas"], 0);
}

#[test]
fn an_interrupted_install_exits_130_and_a_rerun_completes_it() {
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_SLOW".into(), "grafana".into()));
    let env = stack.env_file.to_string_lossy().into_owned();
    let child = stack
        .kovenant(&["install", "--yes", "--skip-image", "--env-file", &env])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kovenant");
    // Wait until grafana's upgrade is running, then press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !upgrades(&stack.helm_calls()).contains(&"grafana".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "grafana's upgrade never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = crate::stack::Run::from(child.wait_with_output().expect("kovenant ends"));
    assert_eq!(out.code, 130, "{out}");
    assert!(out.stderr.contains("error: interrupted"), "{out}");
    assert!(
        stack
            .api
            .get("/apis/apps/v1/namespaces/kovenant/deployments/grafana")
            .is_none(),
        "grafana's upgrade did not finish"
    );

    stack.env.clear();
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert!(upgrades(&stack.helm_calls()).contains(&"grafana".to_string()));
    assert!(
        stack
            .api
            .get("/apis/apps/v1/namespaces/kovenant/deployments/grafana")
            .is_some()
    );
    assert!(
        stack
            .api
            .get("/apis/cilium.io/v1alpha1/tracingpolicies/kovenant-io")
            .is_some()
    );
    let again = stack.install();
    assert!(again.stderr.contains("nothing to do"), "{again}");
}
