//! install from nothing, status, a no-op re-install, a one-key change, uninstall twice, purge and
//! install again: on the real control plane, with real helm and helm-diff and the real charts.
use std::time::Duration;

use serde_json::Value;

use super::{HelmMajor, Session, says};

const RELEASES: [&str; 4] = [
    "kovenant/grafana",
    "kovenant/kovenant-pipeline",
    "kovenant/prometheus",
    "kube-system/tetragon",
];

/// Every release at `revisions` (in RELEASES order), deployed. A first install leaves the pipeline
/// at revision 2: InfluxDB alone first, then, once kovenant made its scoped tokens, the agent.
fn assert_releases(s: &Session, revisions: [u32; 4]) {
    let want: Vec<(String, u32, String)> = RELEASES
        .iter()
        .zip(revisions)
        .map(|(r, n)| (r.to_string(), n, "deployed".to_string()))
        .collect();
    assert_eq!(s.releases(), want);
}

/// Every pod of the stack is Ready on a kwok node, and there is at least one of each workload.
pub fn assert_all_ready(s: &Session) {
    let pods = s.stack_pods();
    let ready = |p: &Value| {
        p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| !ready(p))
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert!(not_ready.is_empty(), "pods not ready: {not_ready:?}");
    let mut names: Vec<String> = pods
        .iter()
        .filter_map(|p| p["metadata"]["labels"]["app.kubernetes.io/name"].as_str())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    for want in [
        "grafana",
        "kovenant-agent",
        "kovenant-influxdb",
        "kube-state-metrics",
        "prometheus",
        "prometheus-node-exporter",
        "tetragon",
        "tetragon-operator",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "no pod of {want}: {names:?}"
        );
    }
}

fn policy_names(s: &Session) -> Vec<String> {
    s.names(&["tracingpolicies.cilium.io"])
}

/// A `kovenant-io` TracingPolicy as kovenant before issue 21 applied it (one `sys_read` hook
/// here: what matters is its name and, when `ours`, kovenant's label), written to a file.
fn retired_policy(s: &Session, ours: bool) -> String {
    let labels = if ours {
        serde_json::json!({"app.kubernetes.io/managed-by": "kovenant"})
    } else {
        serde_json::json!({"team": "security"})
    };
    let policy = serde_json::json!({
        "apiVersion": "cilium.io/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "kovenant-io", "labels": labels},
        "spec": {"kprobes": [{
            "call": "sys_read",
            "syscall": true,
            "return": true,
            "args": [{"index": 0, "type": "int"}, {"index": 2, "type": "size_t"}],
            "returnArg": {"index": 0, "type": "long"},
        }]},
    });
    let path = s.home.path().join("kovenant-io.json");
    std::fs::write(&path, policy.to_string()).expect("write the retired policy");
    path.to_string_lossy().into_owned()
}

fn dashboard_configmaps(s: &Session) -> Vec<String> {
    s.names(&["configmaps", "-n", "kovenant", "-l", "grafana_dashboard=1"])
}

fn status_json(s: &Session) -> (i32, Value) {
    let env = s.env_arg();
    let run = s.run(&[
        "status",
        "--env-file",
        &env,
        "--wait",
        "--timeout",
        "90s",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    (run.code, v)
}

fn lifecycle(major: HelmMajor) {
    let s = Session::new(major);
    s.write_points(Duration::from_secs(1));

    let run = s.install(&[]);
    assert_eq!(run.code, 0, "first install: {run}");
    // The summary names everything install made: the namespace and the token Secrets too.
    for made in [
        "  namespace kovenant             created\n",
        "  Secret  kovenant-influxdb-telegraf created\n",
        "  Secret  kovenant-influxdb-grafana created\n",
    ] {
        assert!(run.stderr.contains(made), "{made:?}: {run}");
    }
    assert_releases(&s, [1, 2, 1, 1]);
    assert_all_ready(&s);
    assert_eq!(policy_names(&s), ["kovenant-tcp"]);
    assert_eq!(
        dashboard_configmaps(&s),
        [
            "kovenant-dashboard-cluster-health",
            "kovenant-dashboard-namespaces-workloads",
            "kovenant-dashboard-pod-io",
            "kovenant-dashboard-traffic-map"
        ]
    );
    let crd = s.get(&["crd", "tracingpolicies.cilium.io"]);
    assert!(
        crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True"),
        "{crd}"
    );

    s.write_points(Duration::from_secs(1));
    let (code, status) = status_json(&s);
    assert_eq!(code, 0, "status after install: {status:#}");
    assert_eq!(status["healthy"], true, "{status:#}");
    assert_eq!(status["influxdb"]["healthy"], true, "{status:#}");
    assert!(
        status["influxdb"]["age_seconds"]
            .as_i64()
            .is_some_and(|a| a < 30)
    );
    assert_eq!(status["grafana"]["version"], "13.2.0", "{status:#}");

    let credentials = |s: &Session| {
        ["kovenant-influxdb", "kovenant-grafana"]
            .map(|n| s.get(&["secret", "-n", "kovenant", n])["data"].clone())
    };
    let generated = credentials(&s);

    // A second install changes nothing, and helm-diff is what says so.
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "no-op install: {again}");
    assert!(
        again.stderr.contains("nothing to do"),
        "no-op install: {again}"
    );
    assert_releases(&s, [1, 2, 1, 1]);

    // The per-call policy an earlier version installed: the preview names it, install deletes
    // it, and then there is nothing to do. A policy of the same name that kovenant did not make
    // is left alone.
    s.kubectl(&["apply", "-f", &retired_policy(&s, true)]);
    assert_eq!(policy_names(&s), ["kovenant-io", "kovenant-tcp"]);
    let dry = s.install(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout
            .lines()
            .any(|l| l == "     delete  TracingPolicy kovenant-io (retired)"),
        "{dry}"
    );
    assert_eq!(policy_names(&s), ["kovenant-io", "kovenant-tcp"]);
    let retire = s.install(&[]);
    assert_eq!(retire.code, 0, "{retire}");
    says(&retire, "TracingPolicy kovenant-io deleted (retired)");
    assert_eq!(policy_names(&s), ["kovenant-tcp"]);
    let again = s.install(&[]);
    assert!(again.stderr.contains("nothing to do"), "{again}");
    s.kubectl(&["apply", "-f", &retired_policy(&s, false)]);
    let theirs = s.install(&["--dry-run"]);
    assert!(theirs.stderr.contains("nothing to do"), "{theirs}");
    assert!(!theirs.stdout.contains("kovenant-io"), "{theirs}");
    s.kubectl(&["delete", "tracingpolicies.cilium.io", "kovenant-io"]);

    // One key of one release: exactly that release is upgraded.
    s.write_env(&["GRAFANA_PORT=3001"]);
    let changed = s.install(&["-q"]);
    assert_eq!(changed.code, 0, "install after a .env change: {changed}");
    // The plan is on stdout even with -q, and a one-key change is a few lines: one per changed
    // object and its change in context, not the whole object (`--diff full` shows that).
    assert!(
        changed
            .stdout
            .contains("      ~ grafana: Service grafana (+1 -1 lines)\n"),
        "{changed}"
    );
    assert!(changed.stdout.contains("3001"), "{changed}");
    assert!(
        changed.stdout.lines().count() < 40,
        "a one-key change floods the screen: {changed}"
    );
    assert_releases(&s, [2, 2, 1, 1]);
    let svc = s.get(&["service", "-n", "kovenant", "grafana"]);
    assert_eq!(svc["spec"]["ports"][0]["port"], 3001, "{svc}");
    assert_eq!(
        credentials(&s),
        generated,
        "generated credentials are kept, never rotated"
    );

    // uninstall, and again: both succeed; PVCs and the namespace stay. The retired policy goes
    // too, where an earlier version left it.
    s.kubectl(&["apply", "-f", &retired_policy(&s, true)]);
    let un = s.uninstall(&[]);
    assert_eq!(un.code, 0, "uninstall: {un}");
    assert_eq!(s.releases(), []);
    assert_eq!(policy_names(&s), Vec::<String>::new());
    assert_eq!(dashboard_configmaps(&s), Vec::<String>::new());
    assert!(s.exists(&["namespace", "kovenant"]));
    // InfluxDB's credentials stay with its volume: its data answers only that operator token.
    assert_eq!(
        s.names(&[
            "secrets",
            "-n",
            "kovenant",
            "-l",
            "app.kubernetes.io/managed-by=kovenant"
        ]),
        ["kovenant-influxdb"]
    );
    // The CRD belongs to Tetragon's operator, not to kovenant or helm: it stays.
    assert!(s.exists(&["crd", "tracingpolicies.cilium.io"]));
    let pvcs = s.get(&["pvc", "-n", "kovenant"]);
    assert!(
        !pvcs["items"].as_array().is_none_or(Vec::is_empty),
        "PVCs survive uninstall: {pvcs}"
    );
    // Each removal is one sentence, not the spinner's label plus an outcome.
    assert!(
        un.stderr
            .contains("√ ConfigMap kovenant/kovenant-dashboard-pod-io removed\n"),
        "{un}"
    );
    assert!(!un.stderr.contains("Removing"), "{un}");
    let env = s.env_arg();
    let un2 = s.uninstall(&[]);
    assert_eq!(un2.code, 0, "second uninstall: {un2}");
    // The second run says what it keeps and why, not "no kovenant object".
    let claims: Vec<String> = s
        .names(&["pvc", "-n", "kovenant"])
        .iter()
        .map(|n| format!("PersistentVolumeClaim kovenant/{n}"))
        .collect();
    assert!(
        un2.stderr.contains(&format!(
            "nothing to remove: no release, policy or dashboard of kovenant in context \
             kovenant-test\n\
             kept: Secret kovenant/kovenant-influxdb, {}, Namespace kovenant (InfluxDB's data, the \
             credentials it answers to, and their namespace; `kovenant uninstall --purge` removes \
             them)\n",
            claims.join(", ")
        )),
        "{un2}"
    );

    // Nothing installed: status and top say so, with what to run, not a part to put back or a
    // port-forward's error.
    let status = s.run(&["status", "--env-file", &env]);
    assert_eq!(status.code, 3, "{status}");
    assert!(
        status.stderr.contains(
            "× kovenant is not installed in context kovenant-test: run kovenant install\n"
        ),
        "{status}"
    );
    assert!(!status.stdout.contains("--only"), "{status}");
    let top = s.run(&["top", "--env-file", &env]);
    assert_eq!(top.code, 1, "{top}");
    assert!(
        top.stderr.contains(
            "error: top: kovenant is not installed in namespace kovenant of context kovenant-test: \
             there is no InfluxDB (StatefulSet kovenant-influxdb) to read\nhint: run kovenant install"
        ),
        "{top}"
    );

    // Install over the kept volumes, purge, and install on the same cluster at once.
    let back = s.install(&[]);
    assert_eq!(back.code, 0, "install after uninstall: {back}");
    assert_all_ready(&s);
    let purge = s.uninstall(&["--purge"]);
    assert_eq!(purge.code, 0, "uninstall --purge: {purge}");
    assert!(
        !s.exists(&["namespace", "kovenant"]),
        "--purge waits until the namespace is gone: {purge}"
    );
    let fresh = s.install(&[]);
    assert_eq!(fresh.code, 0, "install right after --purge: {fresh}");
    assert_releases(&s, [1, 2, 1, 1]);
    assert_all_ready(&s);
}

#[test]
fn helm4_install_status_noop_change_uninstall_purge_reinstall() {
    lifecycle(HelmMajor::V4);
}

#[test]
fn helm3_install_status_noop_change_uninstall_purge_reinstall() {
    lifecycle(HelmMajor::V3);
}
