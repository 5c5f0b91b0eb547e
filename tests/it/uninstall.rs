//! `kovenant uninstall`: only what install created goes, in reverse order; absent is success.
use serde_json::Value;

use crate::stack::Stack;

fn uninstall(stack: &Stack, extra: &[&str]) -> crate::stack::Run {
    let env = stack.env_file.to_string_lossy().into_owned();
    let mut args = vec!["uninstall", "--yes", "--env-file", &env];
    args.extend_from_slice(extra);
    stack.run(&args)
}

fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["labels"][key].as_str()
}

const RELEASES: [&str; 4] = ["tetragon", "prometheus", "grafana", "kovenant-pipeline"];

/// Objects kovenant or its releases own, by `Kind name`.
fn owned(stack: &Stack) -> Vec<String> {
    let mut out: Vec<String> = stack
        .api
        .objects()
        .iter()
        .filter(|o| {
            label(o, "app.kubernetes.io/managed-by") == Some("kovenant")
                || label(o, "app.kubernetes.io/instance").is_some_and(|r| RELEASES.contains(&r))
        })
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn uninstall_after_install_leaves_only_volumes_and_namespace() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    let run = uninstall(&stack, &[]);
    assert_eq!(run.code, 0, "{run}");
    // Without --purge the data volume and the namespace stay.
    assert_eq!(
        owned(&stack),
        [
            "Namespace kovenant",
            "PersistentVolumeClaim data-kovenant-influxdb-0"
        ]
    );
    let calls = stack.helm_calls();
    let uninstalls: Vec<String> = calls
        .iter()
        .filter(|c| c.verb() == "uninstall")
        .map(|c| c.argv[1].clone())
        .collect();
    assert_eq!(
        uninstalls,
        ["kovenant-pipeline", "grafana", "prometheus", "tetragon"],
        "reverse order"
    );
    // The CRD belongs to Tetragon's operator, not to kovenant: it stays, as with real helm.
    assert!(
        stack
            .api
            .get(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tracingpolicies.cilium.io"
            )
            .is_some()
    );
    assert!(run.stderr.contains("--purge removes them"), "{run}");
}

#[test]
fn uninstall_twice_succeeds() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    assert_eq!(uninstall(&stack, &[]).code, 0);
    stack.reset_records();
    let run = uninstall(&stack, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("nothing to remove"), "{run}");
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
    // Uninstall on a cluster that never had kovenant is the same success.
    let fresh = Stack::new();
    let run = uninstall(&fresh, &[]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn purge_removes_volumes_and_the_namespace() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    let run = uninstall(&stack, &["--purge"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(owned(&stack), Vec::<String>::new());
    assert!(stack.api.get("/api/v1/namespaces/kovenant").is_none());
    assert!(
        stack.api.get("/api/v1/namespaces/kube-system").is_some(),
        "Tetragon's namespace is not ours"
    );
}

#[test]
fn purge_waits_for_the_namespace_to_be_gone_and_install_waits_for_a_terminating_one() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    // As on a real cluster, the namespace stays Terminating for a while after the delete.
    stack
        .api
        .set_namespace_grace(std::time::Duration::from_secs(3));
    let run = uninstall(&stack, &["--purge"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("Waiting for namespace kovenant to be gone gone"),
        "{run}"
    );
    assert!(
        stack.api.get("/api/v1/namespaces/kovenant").is_none(),
        "gone when uninstall returns"
    );

    // A namespace deleted behind kovenant's back: install waits, then creates it again.
    assert_eq!(stack.install().code, 0);
    stack
        .api
        .set_namespace_grace(std::time::Duration::from_secs(600));
    let (code, _) = stack
        .api
        .request("DELETE", "/api/v1/namespaces/kovenant", None);
    assert_eq!(code, 200);
    let env = stack.env_file.to_string_lossy().into_owned();
    let mut child = stack
        .kovenant(&["install", "--yes", "--skip-image", "--env-file", &env])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start kovenant");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // Once install says it waits, the namespace controller finishes.
    let waiting = rx
        .iter()
        .any(|l| l.contains("Waiting for namespace kovenant to finish terminating"));
    assert!(waiting, "install waits for the namespace");
    stack.api.finish_terminating("kovenant");
    let status = child.wait().expect("kovenant ends");
    let stderr = reader.join().expect("stderr");
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Waiting for namespace kovenant to finish terminating gone"),
        "{stderr}"
    );
    let ns = stack
        .api
        .get("/api/v1/namespaces/kovenant")
        .expect("created again");
    assert_eq!(ns["status"]["phase"], Value::Null, "a new one: {ns}");
    assert!(
        stack
            .api
            .get("/api/v1/namespaces/kovenant/secrets/kovenant-grafana")
            .is_some()
    );
    assert!(
        stack
            .api
            .get("/apis/apps/v1/namespaces/kovenant/deployments/grafana")
            .is_some(),
        "helm's releases went with the namespace, so install made them again"
    );

    // One that stays Terminating: a bounded wait and what to look at.
    stack
        .api
        .request("DELETE", "/api/v1/namespaces/kovenant", None);
    let run = stack.run(&[
        "install",
        "--yes",
        "--skip-image",
        "--timeout",
        "2s",
        "--env-file",
        &env,
    ]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("error: namespace kovenant: still Terminating after 2s"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("kubectl get namespace kovenant -o yaml"),
        "{run}"
    );
}

#[test]
fn keep_tetragon_leaves_its_release() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    let run = uninstall(&stack, &["--keep-tetragon"]);
    assert_eq!(run.code, 0, "{run}");
    let uninstalls: Vec<String> = stack
        .helm_calls()
        .iter()
        .filter(|c| c.verb() == "uninstall")
        .map(|c| c.argv[1].clone())
        .collect();
    assert_eq!(uninstalls, ["kovenant-pipeline", "grafana", "prometheus"]);
    assert!(
        stack
            .api
            .get("/apis/apps/v1/namespaces/kube-system/daemonsets/tetragon")
            .is_some()
    );
}

#[test]
fn uninstall_without_a_terminal_or_yes_touches_nothing() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    stack.reset_records();
    let run = stack.run(&["uninstall", "--env-file", &stack.env_file.to_string_lossy()]);
    assert_eq!(run.code, 2, "{run}");
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
    assert!(!stack.helm_calls().iter().any(|c| c.verb() == "uninstall"));
}
