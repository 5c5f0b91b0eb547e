//! `kovenant install` against the fake API server and the fake helm.
use kovenant::assets::Assets;
use kovenant::config::Config;
use kovenant::plan::dashboards::{ClusterFacts, render_with};
use serde_json::json;

use crate::fake_helm::upgrades;
use crate::stack::Stack;

const RELEASES: [&str; 4] = ["tetragon", "prometheus", "grafana", "kovenant-pipeline"];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn secret_data(stack: &Stack, name: &str) -> serde_json::Value {
    stack
        .api
        .get(&format!("/api/v1/namespaces/kovenant/secrets/{name}"))
        .expect("the Secret exists")["data"]
        .clone()
}

#[test]
fn fresh_install_creates_every_part_in_order() {
    let stack = Stack::new();
    stack.api.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    );
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    let calls = stack.helm_calls();
    let ups = upgrades(&calls);
    assert_eq!(ups[0], "tetragon", "Tetragon goes first: {ups:?}");
    let mut want: Vec<String> = RELEASES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(sorted(ups), want);
    for c in calls.iter().filter(|c| c.verb() == "upgrade") {
        assert!(
            c.argv.contains(&"-f".to_string()),
            "values through a file: {}",
            c.line()
        );
        assert!(
            !c.argv.iter().any(|a| a.starts_with("--set")),
            "no --set: {}",
            c.line()
        );
        assert_eq!(c.values.len(), 1, "{}", c.line());
        assert!(c.argv.contains(&"--wait".to_string()), "{}", c.line());
    }
    let repo_adds: Vec<String> = calls
        .iter()
        .filter(|c| c.argv.starts_with(&["repo".into(), "add".into()]))
        .map(|c| c.argv[3].clone())
        .collect();
    assert_eq!(
        repo_adds,
        [
            "kovenant-cilium",
            "kovenant-prometheus-community",
            "kovenant-grafana-community"
        ]
    );

    let ns = stack
        .api
        .get("/api/v1/namespaces/kovenant")
        .expect("namespace");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kovenant"
    );
    let influx = secret_data(&stack, "kovenant-influxdb");
    let keys: Vec<&String> = influx.as_object().expect("data").keys().collect();
    assert_eq!(keys, ["admin-password", "admin-token"]);
    let grafana = secret_data(&stack, "kovenant-grafana");
    assert_eq!(grafana.as_object().expect("data").len(), 2);

    for name in ["kovenant-tcp", "kovenant-io"] {
        let p = stack
            .api
            .get(&format!("/apis/cilium.io/v1alpha1/tracingpolicies/{name}"))
            .expect("policy applied");
        assert_eq!(
            p["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kovenant"
        );
        assert_eq!(p["metadata"]["managedFields"][0]["manager"], "kovenant");
        assert_eq!(p["metadata"]["managedFields"][0]["operation"], "Apply");
    }
    // Every dashboard is a ConfigMap Grafana's sidecar provisions, rendered with the namespaces
    // install found (the fake cluster has default, kube-system, kube-public and shop).
    let facts = ClusterFacts {
        namespaces: ["default", "kube-system", "kube-public", "shop"]
            .map(String::from)
            .to_vec(),
    };
    let dashboards = render_with(&Config::default(), &Assets::embedded(), &facts).expect("render");
    assert_eq!(dashboards.len(), 4);
    for d in &dashboards {
        let stem = d.file_name.trim_end_matches(".json");
        let cm = stack
            .api
            .get(&format!(
                "/api/v1/namespaces/kovenant/configmaps/kovenant-dashboard-{stem}"
            ))
            .expect("dashboard ConfigMap");
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        assert_eq!(
            cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kovenant"
        );
        assert_eq!(cm["data"][d.file_name.as_str()], d.json.as_str());
    }
    let traffic = stack
        .api
        .get("/api/v1/namespaces/kovenant/configmaps/kovenant-dashboard-traffic-map")
        .expect("traffic map");
    let traffic: serde_json::Value =
        serde_json::from_str(traffic["data"]["traffic-map.json"].as_str().expect("JSON"))
            .expect("dashboard JSON");
    let namespace = traffic["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["name"] == "namespace")
        .expect("a namespace variable");
    assert_eq!(namespace["current"]["value"], json!(["default", "shop"]));

    // --skip-image builds nothing, and the chart names the content tag of this binary's image.
    assert!(!run.stderr.contains("Docker"), "{run}");
    let this = std::fs::read(env!("CARGO_BIN_EXE_kovenant")).expect("read kovenant");
    let image = kovenant::plan::image::reference_for_binary(&Config::default(), &this);
    let pipeline = calls
        .iter()
        .find(|c| c.verb() == "upgrade" && c.argv[2] == "kovenant-pipeline")
        .expect("pipeline upgrade");
    let values: serde_yaml::Value = serde_yaml::from_str(&pipeline.values[0]).expect("YAML");
    assert_eq!(values["agent"]["image"].as_str(), Some(image.as_str()));

    for r in RELEASES {
        assert!(
            run.stderr.contains(&format!("release {r:<22} created")),
            "summary names {r}:\n{run}"
        );
    }
    assert!(
        run.stderr
            .contains("kubectl -n kovenant get secret kovenant-grafana"),
        "{run}"
    );
}

#[test]
fn second_install_changes_nothing() {
    let stack = Stack::new();
    let first = stack.install();
    assert_eq!(first.code, 0, "{first}");
    let before = (
        secret_data(&stack, "kovenant-influxdb"),
        secret_data(&stack, "kovenant-grafana"),
    );
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("nothing to do"), "{run}");
    let calls = stack.helm_calls();
    assert_eq!(upgrades(&calls), Vec::<String>::new());
    // The diffs of existing releases read their charts: the repositories are updated first.
    let first_diff = calls
        .iter()
        .position(|c| c.verb() == "diff")
        .expect("a diff");
    let repo_calls: Vec<String> = calls[..first_diff]
        .iter()
        .filter(|c| c.verb() == "repo")
        .map(|c| c.argv[1].clone())
        .collect();
    assert_eq!(repo_calls, ["add", "add", "add", "update"]);
    assert!(
        !calls[first_diff..].iter().any(|c| c.verb() == "repo"),
        "once: converge does not update them again"
    );
    assert_eq!(calls.iter().filter(|c| c.verb() == "diff").count(), 4);
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
    let after = (
        secret_data(&stack, "kovenant-influxdb"),
        secret_data(&stack, "kovenant-grafana"),
    );
    assert_eq!(
        before, after,
        "generated credentials are kept, never rotated"
    );
}

#[test]
fn a_machine_without_the_repositories_can_install_over_an_existing_release() {
    let stack = Stack::new();
    let first = stack.install();
    assert_eq!(first.code, 0, "{first}");
    // Another machine: the releases are in the cluster, the repositories are not on it.
    crate::fake_helm::forget_repos(&stack.helm_state);
    std::fs::write(&stack.env_file, "GRAFANA_PORT=3100\n").expect("write .env");
    stack.reset_records();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("Updating chart repositories done"),
        "{run}"
    );
    let calls = stack.helm_calls();
    let first_diff = calls
        .iter()
        .position(|c| c.verb() == "diff")
        .expect("a diff");
    let repo_adds: Vec<String> = calls[..first_diff]
        .iter()
        .filter(|c| c.argv.starts_with(&["repo".into(), "add".into()]))
        .map(|c| c.argv[3].clone())
        .collect();
    assert_eq!(
        repo_adds,
        [
            "kovenant-cilium",
            "kovenant-prometheus-community",
            "kovenant-grafana-community"
        ]
    );
    assert_eq!(upgrades(&calls), ["grafana"]);
}

/// The seconds of a helm call's `--timeout` (helm takes `90s`).
fn helm_timeout(c: &crate::fake_helm::Call) -> u64 {
    let i = c
        .argv
        .iter()
        .position(|a| a == "--timeout")
        .unwrap_or_else(|| panic!("no --timeout: {}", c.line()));
    c.argv[i + 1]
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("--timeout in seconds: {}", c.line()))
}

#[test]
fn install_timeout_bounds_helms_own_timeout() {
    let stack = Stack::new();
    let env = stack.env_file.to_string_lossy().into_owned();
    let run = stack.run(&[
        "install",
        "--yes",
        "--skip-image",
        "--timeout",
        "90s",
        "--env-file",
        &env,
    ]);
    assert_eq!(run.code, 0, "{run}");
    let calls = stack.helm_calls();
    let ups: Vec<_> = calls.iter().filter(|c| c.verb() == "upgrade").collect();
    assert_eq!(ups.len(), 4);
    for c in ups {
        // What is left of the 90 s when helm starts: never more (and, here, well above zero).
        let t = helm_timeout(c);
        assert!((30..=90).contains(&t), "{t}s: {}", c.line());
    }
    // The default --timeout (10m) is what helm gets, not a fixed 300s per release.
    let stack = Stack::new();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    let first = stack
        .helm_calls()
        .into_iter()
        .find(|c| c.verb() == "upgrade")
        .expect("an upgrade");
    assert!(helm_timeout(&first) > 300, "{}", first.line());
}

#[test]
fn without_a_terminal_or_yes_nothing_is_touched() {
    let stack = Stack::new();
    let run = stack.run(&[
        "install",
        "--skip-image",
        "--env-file",
        &stack.env_file.to_string_lossy(),
    ]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("--yes"), "{run}");
    assert_eq!(upgrades(&stack.helm_calls()), Vec::<String>::new());
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
}

/// Measures what kovenant itself adds to an install and to a no-op re-install (fake helm): the
/// `--verbose` timing line (wall time minus the union of the helm processes' spans, as kovenant
/// measures them). `cargo test --test it bench_install -- --ignored --nocapture`.
#[test]
#[ignore]
#[allow(clippy::print_stderr)] // the figures are this test's output
fn bench_install_overhead() {
    let stack = Stack::new();
    let env = stack.env_file.to_string_lossy().into_owned();
    let args = [
        "install",
        "--yes",
        "--skip-image",
        "--verbose",
        "--env-file",
        &env,
    ];
    for label in ["fresh install", "no-op re-install", "no-op re-install"] {
        let run = stack.run(&args);
        assert_eq!(run.code, 0, "{run}");
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with("took "))
            .unwrap_or_default()
            .to_string();
        eprintln!("{label}: {line}, {} helm calls", stack.helm_calls().len());
        stack.reset_records();
    }
    let run = crate::stack::Stack::new().install();
    eprintln!(
        "--- install as a user sees it (not a terminal)\n{}",
        run.stderr
    );
}
