//! Preflight's refusals with real helm: a cluster that is not there, and a helm that is not there.
use super::{HelmMajor, Session};
use crate::support::Run;

/// A kubeconfig whose only context points at a port nothing listens on.
fn unreachable_kubeconfig(s: &Session) -> std::path::PathBuf {
    let path = s.home.path().join("gone.kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: gone\n  user: {}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: gone\ncurrent-context: gone\n",
    )
    .expect("write kubeconfig");
    path
}

#[test]
fn an_unreachable_api_server_fails_preflight_once_and_status_says_so() {
    let s = Session::new(HelmMajor::V4);
    let gone = unreachable_kubeconfig(&s);
    let env = s.env_arg();
    let run =
        |args: &[&str]| Run::from(s.kovenant_with(&gone, args).output().expect("run kovenant"));
    let out = run(&["install", "--yes", "--skip-image", "--env-file", &env]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("√ kubeconfig context: gone (http://127.0.0.1:1)"),
        "{out}"
    );
    // The check's title says what was tried; the detail is the address and the root cause,
    // not kube's wrappers ("ServiceError: client error (Connect)") nor the title again.
    assert!(
        out.stderr
            .contains("× can reach the API server: http://127.0.0.1:1: tcp connect error\n")
            || out.stderr.contains(
                "× can reach the API server: http://127.0.0.1:1: Connection refused (os error 111)\n"
            ),
        "{out}"
    );
    assert!(!out.stderr.contains("cannot reach the API server"), "{out}");
    assert!(!out.stderr.contains("ServiceError"), "{out}");
    assert!(
        out.stderr
            .contains("error: preflight: 1 check(s) failed (see above)"),
        "{out}"
    );

    let out = run(&["status", "--env-file", &env]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("error: context gone (http://127.0.0.1:1): cannot reach the API server"),
        "{out}"
    );

    // --dry-run without a cluster prints the plan from the configuration alone (on stdout: -q
    // keeps it), image step included, and fails as the install would.
    let out = run(&["-q", "install", "--dry-run", "--env-file", &env]);
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
fn a_missing_helm_is_one_clear_failure() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    let out = Run::from(
        s.kovenant(&["install", "--yes", "--skip-image", "--env-file", &env])
            .env("KOVENANT_HELM", "/nonexistent/helm")
            .output()
            .expect("run kovenant"),
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("× helm is at least v3: helm: `/nonexistent/helm` was not found"),
        "{out}"
    );
    assert_eq!(out.stderr.matches("was not found").count(), 1, "{out}");
    assert!(out.stderr.contains("hint: install helm 3"), "{out}");
    assert_eq!(s.releases(), []);
}

#[test]
fn without_skip_image_docker_and_a_way_into_the_cluster_are_checked() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    let host = format!("unix://{}", s.home.path().join("no-docker.sock").display());
    let out = Run::from(
        s.kovenant(&["install", "--yes", "--env-file", &env])
            .env("DOCKER_HOST", &host)
            .output()
            .expect("run kovenant"),
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "× Docker is reachable: docker: cannot reach the Docker daemon at {host}: "
        )),
        "{out}"
    );
    let kubeconfig = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let context = kubeconfig
        .lines()
        .find_map(|l| l.strip_prefix("current-context: "))
        .expect("a current context")
        .trim();
    assert!(
        out.stderr.contains(&format!(
            "× the image has a way into the cluster: the telegraf-tetragon image has no way into \
             cluster context \"{context}\": no image registry is configured and the context is \
             not a kind, k3d or minikube cluster"
        )),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("error: preflight: 2 check(s) failed (see above)"),
        "{out}"
    );
    assert_eq!(s.releases(), []);
    assert!(!s.exists(&["namespace", "kovenant"]));
}
