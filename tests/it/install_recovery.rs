//! Install stopped part way (helm failing, a crash-looping pod, Ctrl-C), and the re-run that completes it.
use crate::fake_helm::{release, upgrades};
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
    // The watcher won: helm was sent SIGTERM (not killed) and recorded the release as failed.
    assert!(
        run.stderr
            .contains("waiting for helm to record the interruption"),
        "{run}"
    );
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("failed".into(), 1))
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
    // Wait until grafana's upgrade is under way (helm has stored its pending revision), then
    // press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while release(&stack.helm_state, "kovenant/grafana") != Some(("pending-install".into(), 1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "grafana's upgrade never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = crate::stack::Run::from(child.wait_with_output().expect("kovenant ends"));
    assert_eq!(out.code, 130, "{out}");
    assert!(out.stderr.contains("error: interrupted"), "{out}");
    // helm got SIGTERM, cancelled, and recorded the release as failed before kovenant exited.
    assert!(
        out.stderr
            .contains("waiting for helm to record the interruption"),
        "{out}"
    );
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("failed".into(), 1))
    );
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

/// The fake helm, as a user would run it by hand against the stack's helm storage.
fn helm_by_hand(stack: &Stack, args: &[&str]) -> crate::stack::Run {
    let out = std::process::Command::new(crate::fake_helm::dir().join("helm"))
        .args(args)
        .env("FAKE_HELM_STATE", &stack.helm_state)
        .env("FAKE_HELM_API", &stack.api.url)
        .env_remove("FAKE_HELM_LOG")
        .output()
        .expect("run the fake helm");
    crate::stack::Run::from(out)
}

#[test]
fn a_release_left_pending_by_a_helm_that_died_is_unlocked_on_the_next_run() {
    // helm dies (SIGKILL) during a first install: grafana is left pending-install, revision 1.
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_DIE".into(), "grafana".into()));
    let run = stack.install();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("helm was killed by signal 9"), "{run}");
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("pending-install".into(), 1))
    );
    // What a bare re-run would meet.
    let by_hand = helm_by_hand(
        &stack,
        &[
            "upgrade",
            "--install",
            "grafana",
            "kovenant-grafana-community/grafana",
            "-n",
            "kovenant",
        ],
    );
    assert_eq!(by_hand.code, 1, "{by_hand}");
    assert_eq!(
        by_hand.stderr,
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"
    );

    stack.env.clear();
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("left pending-install at revision 1 by a helm that did not finish: kovenant will uninstall it, then install"),
        "the preview says so: {run}"
    );
    assert!(
        run.stderr.contains("warning: release kovenant/grafana was left pending-install at revision 1 by a helm that did not finish; kovenant uninstalled it"),
        "{run}"
    );
    let calls: Vec<String> = stack
        .helm_calls()
        .iter()
        .filter(|c| matches!(c.verb(), "uninstall" | "rollback" | "upgrade"))
        .map(|c| format!("{} {}", c.verb(), c.argv[1..3].join(" ")))
        .collect();
    assert_eq!(calls, ["uninstall grafana -n", "upgrade --install grafana"]);
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("deployed".into(), 1))
    );

    // helm dies during an upgrade: pending-upgrade at revision 2, rolled back, then upgraded.
    std::fs::write(&stack.env_file, "GRAFANA_PORT=3100\n").expect("write .env");
    stack.env.push(("FAKE_HELM_DIE".into(), "grafana".into()));
    let run = stack.install();
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("pending-upgrade".into(), 2))
    );
    stack.env.clear();
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("warning: release kovenant/grafana was left pending-upgrade at revision 2 by a helm that did not finish; kovenant rolled it back to revision 1"),
        "{run}"
    );
    let calls: Vec<String> = stack
        .helm_calls()
        .iter()
        .filter(|c| matches!(c.verb(), "uninstall" | "rollback" | "upgrade"))
        .map(|c| c.line())
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "rollback grafana -n kovenant");
    assert!(
        calls[1].starts_with("upgrade --install grafana "),
        "{calls:?}"
    );
    // Revision 3 is the rollback, 4 the upgrade.
    assert_eq!(
        release(&stack.helm_state, "kovenant/grafana"),
        Some(("deployed".into(), 4))
    );
    let again = stack.install();
    assert!(again.stderr.contains("nothing to do"), "{again}");
}
