//! The paths around the main cycle, on the real control plane with real helm and helm-diff:
//! `--only`, `--dry-run`, confirmation, `--keep-tetragon`, `--timeout`, preflight's refusals, a
//! second machine, and where secrets must never appear.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{HelmMajor, Session, both};
use crate::support::Run;

const DASHBOARDS: [&str; 4] = [
    "kovenant-dashboard-cluster-health",
    "kovenant-dashboard-namespaces-workloads",
    "kovenant-dashboard-pod-io",
    "kovenant-dashboard-traffic-map",
];

fn with_only(s: &Session, parts: &[&str]) -> Run {
    let mut extra = Vec::new();
    for p in parts {
        extra.extend(["--only", p]);
    }
    s.install(&extra)
}

fn secrets(s: &Session) -> Vec<String> {
    s.names(&[
        "secrets",
        "-n",
        "kovenant",
        "-l",
        "app.kubernetes.io/managed-by=kovenant",
    ])
}

/// The names of the repositories the session's helm has.
fn repo_names(s: &Session) -> Vec<String> {
    let out = s.helm(&["repo", "list", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut names: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn only_installs_exactly_the_selected_parts() {
    let s = Session::new(HelmMajor::V4);
    // The dashboards alone: kovenant's namespace and the four ConfigMaps; no helm release, no
    // Secret, no policy, no repository.
    let run = with_only(&s, &["dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        s.names(&["configmaps", "-n", "kovenant", "-l", "grafana_dashboard=1"]),
        DASHBOARDS
    );
    assert_eq!(s.releases(), []);
    assert_eq!(secrets(&s), Vec::<String>::new());
    assert!(!s.exists(&["tracingpolicies.cilium.io", "kovenant-tcp"]));
    assert_eq!(repo_names(&s), Vec::<String>::new());
    assert!(!run.stderr.contains("release"), "{run}");

    // Secrets, Grafana and the dashboards: only Grafana's repository is added, only Grafana is
    // released; the dashboards are unchanged.
    let run = with_only(&s, &["secrets", "grafana", "dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        s.releases(),
        [("kovenant/grafana".to_string(), 1, "deployed".to_string())]
    );
    assert_eq!(repo_names(&s), ["kovenant-grafana-community"]);
    assert_eq!(secrets(&s), ["kovenant-grafana", "kovenant-influxdb"]);
    assert!(!s.exists(&["tracingpolicies.cilium.io", "kovenant-tcp"]));
    for d in DASHBOARDS {
        assert!(
            run.stderr
                .contains(&format!("  ConfigMap kovenant/{d} unchanged\n")),
            "{run}"
        );
    }

    // A changed cluster name, dashboards only: their titles change, Grafana stays at revision 1.
    s.write_env(&["KOVENANT_CLUSTER_NAME=prod-eu"]);
    let run = with_only(&s, &["dashboards"]);
    assert_eq!(run.code, 0, "{run}");
    let cm = s.get(&[
        "configmap",
        "-n",
        "kovenant",
        "kovenant-dashboard-namespaces-workloads",
    ]);
    let dashboard: Value = serde_json::from_str(
        cm["data"]["namespaces-workloads.json"]
            .as_str()
            .expect("the dashboard's JSON"),
    )
    .expect("JSON");
    assert_eq!(dashboard["title"], "Namespaces and workloads · prod-eu");
    assert_eq!(
        s.releases(),
        [("kovenant/grafana".to_string(), 1, "deployed".to_string())]
    );
}

#[test]
fn dry_run_confirmation_keep_tetragon_and_a_second_machine() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    // --dry-run previews against the cluster and changes nothing.
    let dry = s.run(&["install", "--dry-run", "--skip-image", "--env-file", &env]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout
            .contains("   create  helm release kovenant/grafana"),
        "{dry}"
    );
    assert!(
        dry.stdout.contains(
            "   create  Secret kovenant/kovenant-grafana [admin-user, admin-password (generated once)]"
        ),
        "{dry}"
    );
    assert!(dry.stderr.contains("dry run: nothing was changed"), "{dry}");
    // Without a terminal and without --yes: refused, exit 2, nothing touched.
    let asked = s.run(&["install", "--skip-image", "--env-file", &env]);
    assert_eq!(asked.code, 2, "{asked}");
    assert!(asked.stderr.contains("re-run with --yes"), "{asked}");
    assert_eq!(s.releases(), []);
    assert!(!s.exists(&["namespace", "kovenant"]));

    let first = s.install(&[]);
    assert_eq!(first.code, 0, "{first}");
    assert!(
        first.stderr.contains("Fetching chart repositories"),
        "{first}"
    );
    // The same machine again: helm's cached indexes list the pinned versions, so no repository
    // is fetched, and nothing changes.
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stderr.contains("nothing to do"), "{again}");
    assert!(!again.stderr.contains("Fetching chart"), "{again}");
    // Another machine (no helm repositories, no cache) with one changed value: the repositories
    // are added before helm-diff reads the existing releases' charts; only Grafana is upgraded.
    std::fs::remove_dir_all(s.home.path().join("helm")).expect("forget helm's homes");
    s.write_env(&["GRAFANA_PORT=3100"]);
    let other = s.install(&[]);
    assert_eq!(other.code, 0, "{other}");
    let fetched = other
        .stderr
        .find("Fetching chart repositories")
        .expect("repositories fetched");
    let previewed = other.stderr.find("Previewing changes").expect("a preview");
    assert!(fetched < previewed, "{other}");
    let want: Vec<(String, u32, String)> = [
        ("kovenant/grafana", 2),
        ("kovenant/kovenant-pipeline", 2),
        ("kovenant/prometheus", 1),
        ("kube-system/tetragon", 1),
    ]
    .iter()
    .map(|(r, n)| (r.to_string(), *n, "deployed".to_string()))
    .collect();
    assert_eq!(s.releases(), want);

    // A release changed by hand (a value kovenant does not give): helm's record differs from
    // the configuration, so helm-diff runs, shows it, and install puts it back.
    let by_hand = s.helm(&[
        "upgrade",
        "grafana",
        "kovenant-grafana-community/grafana",
        "-n",
        "kovenant",
        "--version",
        "12.11.1",
        "--reuse-values",
        "--set",
        "podLabels.handmade=yes",
    ]);
    assert!(
        by_hand.status.success(),
        "{}",
        String::from_utf8_lossy(&by_hand.stderr)
    );
    // The saved plan (--dry-run -o json) keeps helm-diff's whole text, and the objects it names.
    let env = s.env_arg();
    let saved = s.run(&[
        "install",
        "--dry-run",
        "--skip-image",
        "-o",
        "json",
        "--env-file",
        &env,
    ]);
    assert_eq!(saved.code, 0, "{saved}");
    let plan: serde_json::Value = serde_json::from_str(&saved.stdout).expect("JSON plan");
    assert_eq!(plan["previewed"], true, "{plan:#}");
    let grafana = plan["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "grafana")
        .unwrap_or_else(|| panic!("no grafana release: {plan:#}"));
    assert_eq!(grafana["change"], "update", "{grafana:#}");
    let diff = grafana["diff"].as_str().unwrap_or_default();
    assert!(
        diff.contains("kovenant, grafana, Deployment (") && diff.contains("handmade"),
        "{diff}"
    );
    assert!(
        grafana["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["kind"] == "Deployment"
                && o["name"] == "grafana"
                && o["change"] == "changed"),
        "{grafana:#}"
    );
    let back = s.install(&[]);
    assert_eq!(back.code, 0, "{back}");
    assert!(
        back.stdout
            .contains("update  helm release kovenant/grafana"),
        "{back}"
    );
    assert!(
        back.stdout.contains("~ grafana: Deployment grafana ("),
        "one line per changed object: {back}"
    );
    assert!(
        back.stdout.contains("handmade"),
        "helm-diff's lines: {back}"
    );
    let deployment = s.get(&["deployment", "-n", "kovenant", "grafana"]);
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["handmade"],
        Value::Null,
        "{deployment}"
    );
    assert_eq!(
        s.releases()[0],
        ("kovenant/grafana".to_string(), 4, "deployed".to_string())
    );

    // uninstall without --yes off a terminal touches nothing; --keep-tetragon keeps Tetragon.
    let asked = s.run(&["uninstall", "--env-file", &env]);
    assert_eq!(asked.code, 2, "{asked}");
    assert_eq!(s.releases().len(), 4);
    let kept = s.uninstall(&["--keep-tetragon"]);
    assert_eq!(kept.code, 0, "{kept}");
    assert_eq!(
        s.releases(),
        [(
            "kube-system/tetragon".to_string(),
            1,
            "deployed".to_string()
        )]
    );
    assert!(s.exists(&["daemonset", "-n", "kube-system", "tetragon"]));
}

/// `--timeout` bounds the whole run (issue 24) and reaches helm: helm's own `--timeout` is the
/// time left less a reserve, so helm gives up by itself before the run's deadline (its own
/// words, its release recorded as failed, not left pending); the run ends within the timeout
/// plus a few seconds with exit 1, naming the command and what is not ready; the next run
/// converges.
#[test]
fn the_install_timeout_reaches_helm_and_a_rerun_converges() {
    let s = Session::new(HelmMajor::V4);
    let first = s.install(&[]);
    assert_eq!(first.code, 0, "{first}");
    // The agent's image "pulls" for 30 s (kwok stage pod-ready): with --timeout 20s, helm gives
    // up on the pipeline release, which helm's default of 5 minutes would not.
    s.write_env(&["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let started = Instant::now();
    let run = s.install(&["--timeout", "20s"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        took < Duration::from_secs(23),
        "--timeout 20s took {took:?}: {run}"
    );
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: helm upgrade --install kovenant-pipeline "))
        .unwrap_or_else(|| panic!("no error naming helm's command: {run}"));
    // helm got the time left (less than the 20 s, less its 2 s to record the release).
    let own: u64 = error
        .split(" --wait --timeout ")
        .nth(1)
        .and_then(|t| t.split_once("s:"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no helm --timeout in {error:?}"));
    assert!((1..=18).contains(&own), "helm's --timeout {own}s: {error}");
    // helm timed out by itself: not stopped at the deadline, and its release failed, not pending.
    assert!(
        !run.stderr.contains("still running at the end of --timeout"),
        "{run}"
    );
    assert!(both(&run).contains("context deadline exceeded"), "{run}");
    // helm's words are followed by what is not ready, and why.
    assert!(
        run.stderr
            .contains("\npods not ready:\n  pod kovenant/kovenant-agent-"),
        "{run}"
    );
    let pipeline: Vec<_> = s
        .releases()
        .into_iter()
        .filter(|(r, _, _)| r == "kovenant/kovenant-pipeline")
        .collect();
    assert_eq!(
        pipeline,
        [(
            "kovenant/kovenant-pipeline".to_string(),
            3,
            "failed".to_string()
        )],
        "{run}"
    );
    s.write_env(&[]);
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "{again}");
    super::lifecycle::assert_all_ready(&s);
}

/// A kubeconfig for a ServiceAccount bound to the built-in `view` ClusterRole.
fn viewer_kubeconfig(s: &Session) -> PathBuf {
    let _ = s.kubectl_run(&["delete", "serviceaccount", "-n", "default", "kv-viewer"]);
    let _ = s.kubectl_run(&["delete", "clusterrolebinding", "kv-viewer"]);
    s.kubectl(&["create", "serviceaccount", "-n", "default", "kv-viewer"]);
    s.kubectl(&[
        "create",
        "clusterrolebinding",
        "kv-viewer",
        "--clusterrole",
        "view",
        "--serviceaccount",
        "default:kv-viewer",
    ]);
    let token = s.kubectl(&["create", "token", "-n", "default", "kv-viewer"]);
    let server =
        std::fs::read_to_string(s.cluster_dir.join("server")).expect("the API server's URL");
    let ca = s.cluster_dir.join("pki/ca.crt");
    let path = s.home.path().join("viewer.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: viewer\n  user:\n    token: {}\ncontexts:\n- name: viewer\n  context:\n    cluster: c\n    user: viewer\ncurrent-context: viewer\n",
            server.trim(),
            ca.display(),
            token.trim()
        ),
    )
    .expect("write kubeconfig");
    path
}

#[test]
fn preflight_names_missing_rights_and_a_missing_helm_diff() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    let viewer = viewer_kubeconfig(&s);
    let run = Run::from(
        s.kovenant_with(
            &viewer,
            &[
                "install",
                "--check-only",
                "--skip-image",
                "--env-file",
                &env,
            ],
        )
        .output()
        .expect("run kovenant"),
    );
    s.kubectl(&["delete", "clusterrolebinding", "kv-viewer"]);
    s.kubectl(&["delete", "serviceaccount", "-n", "default", "kv-viewer"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(
            "× can create what install creates: not allowed to create namespaces, create secrets in kovenant"
        ),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("create clusterroles.rbac.authorization.k8s.io, create customresourcedefinitions.apiextensions.k8s.io"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("error: preflight: 1 check(s) failed (see above)"),
        "{run}"
    );

    // A helm without the diff plugin: one failed check, with the command that installs it.
    let empty = s.home.path().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let run = Run::from(
        s.kovenant(&[
            "install",
            "--check-only",
            "--skip-image",
            "--env-file",
            &env,
        ])
        .env("HELM_PLUGINS", &empty)
        .output()
        .expect("run kovenant"),
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("× the helm-diff plugin is installed: `helm plugin list` does not show diff"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("hint: helm plugin install https://github.com/databus23/helm-diff"),
        "{run}"
    );
    assert_eq!(run.stderr.matches("×").count(), 1, "{run}");
    assert_eq!(s.releases(), []);
}

/// A helm that appends its command line to `log`, then runs the real helm: what kovenant puts
/// in helm's arguments, seen from outside.
fn recording_helm(s: &Session, log: &Path) -> PathBuf {
    let path = s.home.path().join("helm-recording");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            s.helm.display()
        ),
    )
    .expect("write helm wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn decoded_secret_values(s: &Session, name: &str) -> Vec<(String, String)> {
    let v = s.get(&["secret", "-n", "kovenant", name]);
    v["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let bytes: k8s_openapi::ByteString = serde_json::from_value(v.clone()).expect("base64");
            (k.clone(), String::from_utf8(bytes.0).expect("UTF-8"))
        })
        .collect()
}

#[test]
fn no_secret_reaches_output_helm_arguments_configmaps_or_the_influxdb_url() {
    let s = Session::new(HelmMajor::V4);
    s.write_env(&["GRAFANA_ADMIN_PASSWORD=given-Pa55word-xyz"]);
    s.write_points(Duration::from_secs(1));
    let log = s.home.path().join("helm-calls.log");
    let helm = recording_helm(&s, &log);
    let env = s.env_arg();
    let requests = s.cluster_dir.join("influxdb-requests.log");
    let before = std::fs::read_to_string(&requests).unwrap_or_default().len();
    let run = |args: &[&str]| {
        Run::from(
            s.kovenant(args)
                .env("KOVENANT_HELM", &helm)
                .output()
                .expect("run kovenant"),
        )
    };
    let install = run(&["install", "--yes", "--skip-image", "-v", "--env-file", &env]);
    assert_eq!(install.code, 0, "{install}");
    let status = run(&["status", "-o", "json", "-v", "--env-file", &env]);
    assert_eq!(status.code, 0, "{status}");
    let mut secrets: Vec<String> = Vec::new();
    for name in [
        "kovenant-influxdb",
        "kovenant-grafana",
        "kovenant-influxdb-telegraf",
        "kovenant-influxdb-grafana",
    ] {
        for (key, value) in decoded_secret_values(&s, name) {
            if key != "admin-user" {
                secrets.push(value);
            }
        }
    }
    let one = |secret: &str, key: &str| {
        decoded_secret_values(&s, secret)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{secret}/{key}"))
    };
    let operator = one("kovenant-influxdb", "admin-token");
    let reader = one("kovenant-influxdb-grafana", "token");
    let uninstall = run(&["uninstall", "--yes", "-v", "--env-file", &env]);
    assert_eq!(uninstall.code, 0, "{uninstall}");
    assert_eq!(
        secrets.len(),
        5,
        "InfluxDB's password and operator token, the two scoped tokens, Grafana's password"
    );
    assert!(secrets.contains(&"given-Pa55word-xyz".to_string()));
    let helm_calls = std::fs::read_to_string(&log).expect("helm was run");
    assert!(
        helm_calls.contains("upgrade --install grafana"),
        "{helm_calls}"
    );
    let configmaps = s.kubectl(&["get", "configmaps", "-A", "-o", "json"]);
    for secret in &secrets {
        for (what, text) in [
            ("install output", both(&install)),
            ("status output", both(&status)),
            ("uninstall output", both(&uninstall)),
            ("helm's arguments", helm_calls.clone()),
            ("ConfigMaps", configmaps.clone()),
        ] {
            assert!(!text.contains(secret.as_str()), "a secret is in the {what}");
        }
    }

    // status reads the newest point through the port-forward with Grafana's read-only token in
    // a header; install made the scoped tokens with the operator token, in a header too; no
    // token is ever in a URL (kwok forwards to an observer in front of the real InfluxDB).
    let seen = std::fs::read_to_string(&requests).expect("InfluxDB's request log");
    let requests: Vec<Value> = seen[before..]
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let queries: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/query")))
        .collect();
    assert!(!queries.is_empty(), "status queried InfluxDB: {seen}");
    for q in &queries {
        assert_eq!(
            q["headers"]["authorization"],
            format!("Token {reader}"),
            "{q}"
        );
    }
    let made: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/api/v2/authorizations")
        .collect();
    assert!(!made.is_empty(), "install made tokens: {seen}");
    for r in &made {
        assert_eq!(
            r["headers"]["authorization"],
            format!("Token {operator}"),
            "{r}"
        );
    }
    for r in &requests {
        let path = r["path"].as_str().unwrap_or_default();
        for secret in &secrets {
            assert!(!path.contains(secret.as_str()), "a secret in a URL: {r}");
        }
    }
}
