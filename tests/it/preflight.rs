//! What install does when something is missing or changes: one clear message and the right exit
//! code, dry runs that change nothing, and secrets that never leave their Secrets.
use serde_json::Value;

use crate::fake_helm::upgrades;
use crate::stack::Stack;

fn install_args(stack: &Stack) -> Vec<String> {
    ["install", "--yes", "--skip-image", "--env-file"]
        .iter()
        .map(|s| s.to_string())
        .chain([stack.env_file.to_string_lossy().into_owned()])
        .collect()
}

fn run(stack: &Stack, args: &[String]) -> crate::stack::Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    stack.run(&refs)
}

/// A stack whose kubeconfig points at a port nothing listens on.
fn unreachable() -> Stack {
    let stack = Stack::new();
    let text = std::fs::read_to_string(&stack.kubeconfig)
        .expect("kubeconfig")
        .replace(&stack.api.url, "http://127.0.0.1:1");
    std::fs::write(&stack.kubeconfig, text).expect("kubeconfig");
    stack
}

#[test]
fn unreachable_api_server_fails_preflight_once() {
    let stack = unreachable();
    let out = run(&stack, &install_args(&stack));
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("√ kubeconfig context: fake (http://127.0.0.1:1)"),
        "{out}"
    );
    // The check's title says what was tried; the detail is the address and the root cause,
    // not kube's wrappers ("ServiceError: client error (Connect)") nor the title again.
    assert!(
        out.stderr.contains(
            "× can reach the API server: http://127.0.0.1:1: tcp connect error\n"
        ) || out
            .stderr
            .contains("× can reach the API server: http://127.0.0.1:1: Connection refused (os error 111)\n"),
        "{out}"
    );
    assert!(!out.stderr.contains("cannot reach the API server"), "{out}");
    assert!(!out.stderr.contains("ServiceError"), "{out}");
    assert!(
        out.stderr
            .contains("error: preflight: 1 check(s) failed (see above)"),
        "{out}"
    );
    assert_eq!(upgrades(&stack.helm_calls()), Vec::<String>::new());

    let env = stack.env_file.to_string_lossy().into_owned();
    let out = stack.run(&["status", "--env-file", &env]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("error: context fake (http://127.0.0.1:1): cannot reach the API server"),
        "{out}"
    );
}

#[test]
fn dry_run_without_a_cluster_prints_the_plan() {
    let stack = unreachable();
    let env = stack.env_file.to_string_lossy().into_owned();
    // -q keeps the plan: it is the command's data, on stdout.
    let out = stack.run(&["-q", "install", "--dry-run", "--env-file", &env]);
    // The real install would fail, so the dry run does too, after printing the plan.
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(
            "    apply  helm release kube-system/tetragon (kovenant-cilium/tetragon 1.7.0"
        ),
        "{out}"
    );
    assert!(
        out.stdout.contains("    apply  TracingPolicy kovenant-tcp"),
        "{out}"
    );
    // The image step is part of the plan without a cluster too.
    assert!(
        out.stdout
            .contains("   ensure  image telegraf-tetragon:0.1.0-"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("without the preview of changes (it needs every preflight check to pass)"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("preflight check(s) failed, so the install would fail (see above)"),
        "{out}"
    );
    assert!(
        !out.stderr.contains("dry run: nothing was changed"),
        "{out}"
    );
}

#[test]
fn dry_run_with_a_cluster_previews_and_changes_nothing() {
    let stack = Stack::new();
    let env = stack.env_file.to_string_lossy().into_owned();
    let out = stack.run(&["install", "--dry-run", "--skip-image", "--env-file", &env]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("   create  helm release kovenant/grafana"),
        "{out}"
    );
    assert!(out.stdout.contains("   create  Secret kovenant/kovenant-grafana [admin-user, admin-password (generated once)]"), "{out}");
    assert!(out.stderr.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(upgrades(&stack.helm_calls()), Vec::<String>::new());
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
}

#[test]
fn missing_helm_is_one_clear_failure() {
    let mut stack = Stack::new();
    stack
        .env
        .push(("KOVENANT_HELM".into(), "/nonexistent/helm".into()));
    let out = run(&stack, &install_args(&stack));
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("× helm is at least v3: helm: `/nonexistent/helm` was not found"),
        "{out}"
    );
    assert_eq!(out.stderr.matches("was not found").count(), 1, "{out}");
    assert!(out.stderr.contains("hint: install helm 3"), "{out}");
}

#[test]
fn missing_helm_diff_is_one_clear_failure() {
    let mut stack = Stack::new();
    stack.env.push(("FAKE_HELM_NO_DIFF".into(), "1".into()));
    let out = run(&stack, &install_args(&stack));
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("× the helm-diff plugin is installed: `helm plugin list` does not show diff"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("hint: helm plugin install https://github.com/databus23/helm-diff"),
        "{out}"
    );
    assert_eq!(upgrades(&stack.helm_calls()), Vec::<String>::new());
}

#[test]
fn denied_permissions_name_what_is_missing() {
    let stack = Stack::new();
    stack.api.deny("create", "clusterroles");
    let out = stack.run(&["install", "--check-only", "--skip-image"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("× can create what install creates: not allowed to create clusterroles.rbac.authorization.k8s.io"), "{out}");
}

#[test]
fn a_changed_env_upgrades_only_the_affected_release() {
    let stack = Stack::new();
    assert_eq!(stack.install().code, 0);
    std::fs::write(&stack.env_file, "GRAFANA_PORT=3001\n").expect("write .env");
    stack.reset_records();
    let out = stack.install();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(upgrades(&stack.helm_calls()), ["grafana"]);
    assert!(
        out.stderr.contains("release grafana                update"),
        "{out}"
    );
}

fn decode(v: &Value) -> String {
    let bytes: k8s_openapi::ByteString = serde_json::from_value(v.clone()).expect("base64");
    String::from_utf8(bytes.0).expect("UTF-8")
}

#[test]
fn no_secret_in_output_helm_arguments_or_configmaps() {
    let stack = Stack::new();
    std::fs::write(
        &stack.env_file,
        "GRAFANA_ADMIN_PASSWORD=given-Pa55word-xyz\n",
    )
    .expect("write .env");
    let out = run(
        &stack,
        &[install_args(&stack), vec!["--verbose".into()]].concat(),
    );
    assert_eq!(out.code, 0, "{out}");
    let env = stack.env_file.to_string_lossy().into_owned();
    let status = stack.run(&["status", "-o", "json", "--env-file", &env]);
    let mut secrets = Vec::new();
    for name in ["kovenant-influxdb", "kovenant-grafana"] {
        let s = stack
            .api
            .get(&format!("/api/v1/namespaces/kovenant/secrets/{name}"))
            .expect("Secret");
        for (key, v) in s["data"].as_object().expect("data") {
            if key != "admin-user" {
                secrets.push(decode(v));
            }
        }
    }
    assert_eq!(secrets.len(), 3);
    assert!(secrets.contains(&"given-Pa55word-xyz".to_string()));
    let helm_log = std::fs::read_to_string(&stack.helm_log).expect("helm log");
    let configmaps: Vec<String> = stack
        .api
        .objects()
        .iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .map(Value::to_string)
        .collect();
    for s in &secrets {
        for (what, text) in [
            ("install output", format!("{}{}", out.stdout, out.stderr)),
            ("status output", status.stdout.clone() + &status.stderr),
            ("helm calls", helm_log.clone()),
            ("ConfigMaps", configmaps.join("\n")),
        ] {
            assert!(!text.contains(s.as_str()), "a secret appears in the {what}");
        }
    }
}

#[test]
fn without_skip_image_docker_and_a_way_into_the_cluster_are_checked() {
    let mut stack = Stack::new();
    let socket = stack.dir.path().join("no-docker.sock");
    let host = format!("unix://{}", socket.display());
    stack.env.push(("DOCKER_HOST".into(), host.clone()));
    let env = stack.env_file.to_string_lossy().into_owned();
    let out = stack.run(&["install", "--yes", "--env-file", &env]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "× Docker is reachable: docker: cannot reach the Docker daemon at {host}: "
        )),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "× the image has a way into the cluster: the telegraf-tetragon image has no way into \
             cluster context \"fake\": no image registry is configured and the context is not a \
             kind, k3d or minikube cluster"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("error: preflight: 2 check(s) failed (see above)"),
        "{out}"
    );
    assert_eq!(upgrades(&stack.helm_calls()), Vec::<String>::new());
    assert_eq!(stack.api.take_writes(), Vec::<String>::new());
}
