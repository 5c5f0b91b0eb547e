//! `install --only PART`: exactly the selected parts are previewed and applied, nothing else.
use crate::fake_helm::upgrades;
use crate::stack::Stack;

const DASHBOARDS: [&str; 4] = [
    "cluster-health",
    "namespaces-workloads",
    "pod-io",
    "traffic-map",
];

fn only(stack: &Stack, parts: &[&str]) -> crate::stack::Run {
    let env = stack.env_file.to_string_lossy().into_owned();
    let mut args = vec![
        "install",
        "--yes",
        "--skip-image",
        "--env-file",
        env.as_str(),
    ];
    for part in parts {
        args.extend(["--only", part]);
    }
    stack.run(&args)
}

fn dashboard_patches() -> Vec<String> {
    DASHBOARDS
        .iter()
        .map(|d| format!("PATCH /api/v1/namespaces/kovenant/configmaps/kovenant-dashboard-{d}"))
        .collect()
}

fn helm_lines(stack: &Stack) -> Vec<String> {
    stack.helm_calls().iter().map(|c| c.line()).collect()
}

#[test]
fn only_dashboards_applies_the_dashboard_configmaps_and_nothing_else() {
    let stack = Stack::new();
    let run = only(&stack, &["dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    // The namespace (kovenant's, labelled) and the four ConfigMaps; no Secret, policy or release.
    let mut want = vec!["POST /api/v1/namespaces".to_string()];
    want.extend(dashboard_patches());
    assert_eq!(stack.api.take_writes(), want);
    assert_eq!(helm_lines(&stack), ["version --short", "plugin list"]);
    let ns = stack
        .api
        .get("/api/v1/namespaces/kovenant")
        .expect("namespace");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kovenant"
    );
    assert!(
        stack
            .api
            .get("/api/v1/namespaces/kovenant/secrets/kovenant-grafana")
            .is_none()
    );
    for d in DASHBOARDS {
        assert!(
            run.stderr.contains(&format!(
                "\n  ConfigMap kovenant/kovenant-dashboard-{d} created\n"
            )),
            "{run}"
        );
    }
    assert!(!run.stderr.contains("release"), "{run}");
    assert!(!run.stderr.contains("TracingPolicy"), "{run}");
}

#[test]
fn only_dashboards_after_a_config_change_rewrites_just_the_dashboards() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    std::fs::write(&stack.env_file, "KOVENANT_CLUSTER_NAME=prod-eu\n").expect("write .env");
    stack.reset_records();
    let run = only(&stack, &["dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(stack.api.take_writes(), dashboard_patches());
    assert_eq!(helm_lines(&stack), ["version --short", "plugin list"]);
    let cm = stack
        .api
        .get("/api/v1/namespaces/kovenant/configmaps/kovenant-dashboard-namespaces-workloads")
        .expect("ConfigMap");
    let dashboard: serde_json::Value = serde_json::from_str(
        cm["data"]["namespaces-workloads.json"]
            .as_str()
            .expect("data"),
    )
    .expect("JSON");
    assert_eq!(dashboard["title"], "Namespaces and workloads · prod-eu");
    // The dashboards are what a whole install wants now: it leaves them alone and upgrades only
    // Tetragon, whose values carry the cluster name too.
    stack.reset_records();
    let again = stack.install();
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(upgrades(&stack.helm_calls()), ["tetragon"]);
    let writes = stack.api.take_writes();
    assert!(
        !writes
            .iter()
            .any(|w| w.contains("configmaps/kovenant-dashboard-")),
        "{writes:?}"
    );
    for d in DASHBOARDS {
        assert!(
            again.stderr.contains(&format!(
                "\n  ConfigMap kovenant/kovenant-dashboard-{d} unchanged\n"
            )),
            "{again}"
        );
    }
}

#[test]
fn only_some_releases_adds_only_their_repositories_and_upgrades_only_them() {
    let stack = Stack::new();
    let run = only(&stack, &["secrets", "grafana", "dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    let calls = stack.helm_calls();
    assert_eq!(upgrades(&calls), ["grafana"]);
    let repos: Vec<String> = calls
        .iter()
        .filter(|c| c.verb() == "repo")
        .map(|c| c.line())
        .collect();
    assert_eq!(
        repos,
        [
            "repo add --force-update kovenant-grafana-community https://grafana-community.github.io/helm-charts",
            "repo update kovenant-grafana-community"
        ]
    );
    for secret in ["kovenant-grafana", "kovenant-influxdb"] {
        let path = format!("/api/v1/namespaces/kovenant/secrets/{secret}");
        assert!(stack.api.get(&path).is_some(), "{secret}");
    }
    assert!(
        stack
            .api
            .get("/apis/cilium.io/v1alpha1/tracingpolicies/kovenant-tcp")
            .is_none()
    );
    assert!(
        stack
            .api
            .get("/api/v1/namespaces/kovenant/configmaps/kovenant-dashboard-pod-io")
            .is_some()
    );
    assert!(
        run.stderr
            .contains("\n  release grafana                created\n"),
        "{run}"
    );
    assert!(!run.stderr.contains("release tetragon"), "{run}");
    assert!(!run.stderr.contains("release prometheus"), "{run}");
}
