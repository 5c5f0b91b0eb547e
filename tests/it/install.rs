//! `kovenant install` against the fake API server and the fake helm.
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
    // Every dashboard `kovenant render` produces is a ConfigMap Grafana's sidecar provisions.
    let out = stack.dir.path().join("rendered");
    let render = stack.run(&["render", "--out", &out.to_string_lossy()]);
    assert_eq!(render.code, 0, "{render}");
    for entry in std::fs::read_dir(out.join("dashboards"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        let stem = file.trim_end_matches(".json");
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
        let text = std::fs::read_to_string(entry.path()).expect("rendered dashboard");
        assert_eq!(cm["data"][file.as_str()], text.as_str());
    }

    // --skip-image builds nothing, and the chart names the content tag of this binary's image.
    assert!(!run.stderr.contains("Docker"), "{run}");
    let this = std::fs::read(env!("CARGO_BIN_EXE_kovenant")).expect("read kovenant");
    let image = kovenant::plan::image::reference_for_binary(&Default::default(), &this);
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
    assert!(
        !calls.iter().any(|c| c.verb() == "repo"),
        "no repo update when nothing changes"
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

#[test]
fn a_crash_looping_pod_stops_install_at_once_with_its_log() {
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_CRASH".into(), "grafana".into()));
    stack.api.set_log(
        "kovenant",
        "grafana-0",
        "starting\nlogger=sqlstore msg=\"failed to connect\"\nexit 1",
    );
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
