//! The clusters people really have (issue 22): no default StorageClass, an old API server, nodes
//! of another architecture, a Tetragon or node-exporter already there, pods that are never
//! created, and a status that judges only the nodes there are now.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{HelmMajor, Session, says};
use crate::support::{Run, kovenant};

/// A kubeconfig for `server`, no credentials.
fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("stub.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: old\n  cluster:\n    server: {server}\n\
             users:\n- name: old\n  user: {{}}\ncontexts:\n- name: old\n  context:\n    cluster: old\n    \
             user: old\ncurrent-context: old\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

/// The real API server here reports the version it is, so an API server of Kubernetes 1.20 is a
/// stand-in: a loopback HTTP server that answers `/version` as a 1.20 API server does, and 404 to
/// anything else. Preflight asks nothing else before it stops.
#[test]
fn an_api_server_older_than_1_21_is_refused_naming_cronjobs() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let (code, body) = if head.starts_with("GET /version") {
                (
                    "200 OK",
                    r#"{"major":"1","minor":"20+","gitVersion":"v1.20.15-eks-1","platform":"linux/amd64"}"#,
                )
            } else {
                ("404 Not Found", r#"{"kind":"Status","code":404}"#)
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let config = kubeconfig(dir.path(), &format!("http://{addr}"));
    let env = dir.path().join(".env");
    std::fs::write(&env, "").expect("write .env");
    let out = Run::from(
        kovenant()
            .args(["install", "--yes", "--skip-image", "--env-file"])
            .arg(&env)
            .arg("--kubeconfig")
            .arg(&config)
            .env("KOVENANT_HELM", "/nonexistent/helm")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run kovenant"),
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "× API server version is at least v1.21: v1.20.15-eks-1: the agent watches batch/v1 \
             CronJobs, which Kubernetes serves from 1.21\n"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("hint: upgrade the cluster to Kubernetes 1.21 or later"),
        "{out}"
    );
}

/// Objects a test made on the shared cluster, deleted when it ends (also when it fails).
struct Made<'a> {
    s: &'a Session,
    objects: Vec<Vec<String>>,
}

impl<'a> Made<'a> {
    fn new(s: &'a Session) -> Made<'a> {
        Made {
            s,
            objects: Vec::new(),
        }
    }

    /// `kubectl apply` of `yaml`; every object in it is deleted at the end.
    fn apply(&mut self, yaml: &str) {
        let path = self
            .s
            .home
            .path()
            .join(format!("made-{}.yaml", self.objects.len()));
        std::fs::write(&path, yaml).expect("write manifest");
        let file = path.to_string_lossy().into_owned();
        self.s.kubectl(&["apply", "-f", &file]);
        self.objects.push(vec![
            "delete".into(),
            "--ignore-not-found".into(),
            "--wait=false".into(),
            "-f".into(),
            file,
        ]);
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        for args in self.objects.iter().rev() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = self.s.kubectl_run(&args);
        }
    }
}

/// A kwok node (kwok keeps it Ready and runs its pods) of `arch`.
fn node_yaml(name: &str, arch: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  annotations:\n    \
         node.alpha.kubernetes.io/ttl: \"0\"\n    kwok.x-k8s.io/node: fake\n  labels:\n    \
         kubernetes.io/hostname: {name}\n    kubernetes.io/os: linux\n    kubernetes.io/arch: {arch}\n    \
         type: kwok\n"
    )
}

fn status_json(s: &Session, extra: &[&str]) -> (i32, Value, Run) {
    let env = s.env_arg();
    let mut args = vec!["status", "-o", "json", "--env-file", &env];
    args.extend_from_slice(extra);
    let run = s.run(&args);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    (run.code, v, run)
}

/// A `kovenant_agent` point for `node`, `age` ago, with these fields.
fn agent_point(s: &Session, node: &str, age: Duration, fields: &str) {
    super::influx_delete(
        &s.influxdb,
        &s.bucket,
        "kovenant_agent",
        &format!("node=\"{node}\""),
    );
    let ts = SystemTime::now()
        .checked_sub(age)
        .expect("clock")
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    super::influx(
        &s.influxdb,
        "/write",
        &[("db", &s.bucket)],
        &format!("kovenant_agent,node={node} {fields} {ts}\n"),
    );
}

/// The cluster has no default class for kovenant: KOVENANT_STORAGE_CLASS names a second one, and
/// both claims (Prometheus's and InfluxDB's) bind in it. Prometheus's claim outlives a plain
/// uninstall and goes with --purge.
#[test]
fn both_volumes_take_the_storage_class_and_prometheus_keeps_its_claim() {
    let s = Session::new(HelmMajor::V4);
    let class = "kovenant-test-slow";
    let mut made = Made::new(&s);
    let mut yaml = format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {class}\n\
         provisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: Immediate\nreclaimPolicy: Retain\n"
    );
    for i in 0..2 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {class}-{i}\nspec:\n  \
             capacity:\n    storage: 20Gi\n  accessModes: [ReadWriteOnce]\n  \
             persistentVolumeReclaimPolicy: Retain\n  storageClassName: {class}\n  hostPath:\n    \
             path: /tmp/{class}-{i}\n"
        ));
    }
    made.apply(&yaml);
    s.write_env(&[&format!("KOVENANT_STORAGE_CLASS={class}")]);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    says(
        &run,
        &format!(
            "√ a StorageClass for Prometheus's and InfluxDB's volumes: {class} (KOVENANT_STORAGE_CLASS)\n"
        ),
    );
    for claim in ["prometheus-server", "data-kovenant-influxdb-0"] {
        let pvc = s.get(&["pvc", "-n", "kovenant", claim]);
        assert_eq!(pvc["spec"]["storageClassName"], class, "{claim}: {pvc:#}");
        assert_eq!(pvc["status"]["phase"], "Bound", "{claim}: {pvc:#}");
    }

    let run = s.uninstall(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        s.exists(&["pvc", "-n", "kovenant", "prometheus-server"]),
        "{run}"
    );
    let run = s.uninstall(&["--purge"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        !s.exists(&["pvc", "-n", "kovenant", "prometheus-server"]),
        "{run}"
    );

    // A class that does not exist stops preflight: its claims would stay Pending.
    s.write_env(&["KOVENANT_STORAGE_CLASS=no-such-class"]);
    let run = s.install(&[]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× a StorageClass for Prometheus's and InfluxDB's volumes: KOVENANT_STORAGE_CLASS=no-such-class does not exist (the cluster has ",
    );
}

/// A Tetragon installed with plain helm before kovenant: install refuses to adopt it (it would
/// reconfigure the user's release, and uninstall would delete it), then, with
/// KOVENANT_TETRAGON=existing, uses it without touching it; uninstall leaves it.
#[test]
fn a_tetragon_kovenant_did_not_install_is_refused_then_used_as_it_is() {
    let s = Session::new(HelmMajor::V4);
    let out = s.helm(&[
        "install",
        "tetragon",
        "tetragon",
        "--repo",
        &s.chart_repo,
        "--version",
        "1.7.0",
        "-n",
        "kube-system",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = (
        "kube-system/tetragon".to_string(),
        1,
        "deployed".to_string(),
    );

    let run = s.install(&[]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× no Tetragon that kovenant did not install: DaemonSet kube-system/tetragon of helm release tetragon is already running",
    );
    says(
        &run,
        "hint: set KOVENANT_TETRAGON=existing to use it as it is",
    );
    assert_eq!(s.releases(), std::slice::from_ref(&theirs));

    s.write_env(&["KOVENANT_TETRAGON=existing"]);
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    says(
        &run,
        "√ an existing Tetragon to use (KOVENANT_TETRAGON=existing): DaemonSet kube-system/tetragon of helm release tetragon; kovenant neither upgrades nor removes it\n",
    );
    assert!(s.releases().contains(&theirs), "{:?}", s.releases());

    // Without KOVENANT_TETRAGON=existing, uninstall still tells the user's release from its own.
    s.write_env(&[]);
    let run = s.uninstall(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        !run.stderr.contains("release kube-system/tetragon"),
        "{run}"
    );
    assert_eq!(s.releases(), [theirs]);
}

/// Node-exporters of the user's already take host port 9100: one as the prometheus-node-exporter
/// chart renders it (host network, a container port and no hostPort: since Kubernetes 1.28 the API
/// server defaults hostPort from containerPort in Pods only, not in a DaemonSet's template), one
/// with a plain hostPort. Install refuses, naming both, and KOVENANT_NODE_EXPORTER_PORT moves
/// kovenant's: its pods hold the new host port.
#[test]
fn a_node_exporter_on_port_9100_is_refused_then_kovenants_moves() {
    let s = Session::new(HelmMajor::V4);
    let mut made = Made::new(&s);
    made.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kovenant-test-monitoring\n---\n\
         apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: node-exporter\n  namespace: kovenant-test-monitoring\n\
         spec:\n  selector:\n    matchLabels: {app: node-exporter}\n  template:\n    metadata:\n      \
         labels: {app: node-exporter}\n    spec:\n      hostNetwork: true\n      containers:\n      \
         - name: node-exporter\n        image: quay.io/prometheus/node-exporter:v1.8.2\n        \
         ports:\n        - {containerPort: 9100, name: metrics}\n---\n\
         apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: old-exporter\n  namespace: kovenant-test-monitoring\n\
         spec:\n  selector:\n    matchLabels: {app: old-exporter}\n  template:\n    metadata:\n      \
         labels: {app: old-exporter}\n    spec:\n      containers:\n      \
         - name: exporter\n        image: quay.io/prometheus/node-exporter:v1.8.2\n        \
         ports:\n        - {containerPort: 8080, hostPort: 9100, name: metrics}\n",
    );
    let theirs = s.get(&[
        "daemonset",
        "-n",
        "kovenant-test-monitoring",
        "node-exporter",
    ]);
    let port = &theirs["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert_eq!(
        port["hostPort"],
        Value::Null,
        "the API server defaulted it: {theirs:#}"
    );
    let run = s.install(&[]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× host port 9100 is free for kovenant's node-exporter: DaemonSets \
         kovenant-test-monitoring/node-exporter, kovenant-test-monitoring/old-exporter already \
         take host port 9100 on the nodes: kovenant's node-exporter would never become ready\n",
    );
    says(&run, "hint: set KOVENANT_NODE_EXPORTER_PORT to a free port");
    assert_eq!(s.releases(), []);

    s.write_env(&["KOVENANT_NODE_EXPORTER_PORT=9101"]);
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    says(
        &run,
        "√ host port 9101 is free for kovenant's node-exporter\n",
    );
    let ds = s.get(&[
        "daemonset",
        "-n",
        "kovenant",
        "-l",
        "app.kubernetes.io/name=prometheus-node-exporter",
    ]);
    let container = &ds["items"][0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"], 9101, "{ds:#}");
    assert!(
        container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "--web.listen-address=[$(HOST_IP)]:9101"),
        "{ds:#}"
    );
    // The pods (not the template) carry the host port the scheduler reserves on each node.
    let pods = s.get(&[
        "pods",
        "-n",
        "kovenant",
        "-l",
        "app.kubernetes.io/name=prometheus-node-exporter",
    ]);
    let items = pods["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{pods:#}");
    for pod in items {
        assert_eq!(
            pod["spec"]["containers"][0]["ports"][0]["hostPort"], 9101,
            "{pod:#}"
        );
    }
    let svc = s.get(&[
        "service",
        "-n",
        "kovenant",
        "prometheus-prometheus-node-exporter",
    ]);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 9101, "{svc:#}");
}

/// Pods the API server refuses are never created, so no pod shows why: install reads the
/// controllers' FailedCreate events and stops at once, with the API server's words. A
/// ValidatingAdmissionPolicy the real API server enforces refuses Grafana's pods, then a
/// ResourceQuota of no pods (preflight's dry run is refused), then of one pod (the releases'
/// second pod is refused).
#[test]
fn pods_that_are_never_created_stop_install_at_once_with_the_reason() {
    let s = Session::new(HelmMajor::V4);
    let mut made = Made::new(&s);
    made.apply(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  \
         name: kovenant-test-no-grafana\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    \
         resourceRules:\n    - apiGroups: [\"\"]\n      apiVersions: [v1]\n      operations: [CREATE]\n      \
         resources: [pods]\n  validations:\n  - expression: \"!has(object.metadata.labels) || \
         !('app.kubernetes.io/name' in object.metadata.labels) || \
         object.metadata.labels['app.kubernetes.io/name'] != 'grafana'\"\n    \
         message: grafana pods are not allowed here\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  \
         name: kovenant-test-no-grafana\nspec:\n  policyName: kovenant-test-no-grafana\n  \
         validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels:\n        \
         kubernetes.io/metadata.name: kovenant\n",
    );
    // The API server enforces a policy once its informer has it: wait until a dry run is refused.
    s.kubectl(&["create", "namespace", "kovenant"]);
    s.eventually(
        "the policy refuses a Grafana pod",
        Duration::from_secs(30),
        || {
            let out = s.kubectl_run(&[
                "run",
                "probe",
                "-n",
                "kovenant",
                "--image=grafana",
                "--labels=app.kubernetes.io/name=grafana",
                "--dry-run=server",
            ]);
            String::from_utf8_lossy(&out.stderr).contains("grafana pods are not allowed here")
        },
    );
    s.write_points(Duration::from_secs(1));
    let started = Instant::now();
    let run = s.install(&["--timeout", "3m"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}: {run}",
        started.elapsed()
    );
    says(&run, "error: release grafana: ReplicaSet kovenant/grafana-");
    says(&run, "cannot create its pods: ");
    says(&run, "grafana pods are not allowed here");
    says(&run, "--field-selector reason=FailedCreate");
    drop(made);

    // A quota of no pods at all, in a new namespace: preflight's dry run of a pod there is
    // refused by it, before anything changes.
    s.cleanup();
    s.kubectl(&["create", "namespace", "kovenant"]);
    let mut made = Made::new(&s);
    let quota = |pods: &str| {
        format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: kovenant-test-quota\n  \
             namespace: kovenant\nspec:\n  hard:\n    pods: \"{pods}\"\n"
        )
    };
    // Quota admission refuses every pod while the controller has not yet counted the namespace.
    let counted = |pods: &str| {
        let q = s.get(&["resourcequota", "-n", "kovenant", "kovenant-test-quota"]);
        q["status"]["hard"]["pods"] == pods
    };
    made.apply(&quota("0"));
    s.eventually("the quota is counted", Duration::from_secs(30), || {
        counted("0")
    });
    let run = s.install(&["--timeout", "3m"]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× the API server admits kovenant's privileged pods in kovenant (a server-side dry run): \
         refused (",
    );
    says(&run, "exceeded quota: kovenant-test-quota");
    assert_eq!(s.releases(), []);

    // One pod passes the dry run, but not the releases' pods: the first release with more than
    // one pod there stops at once.
    made.apply(&quota("1"));
    s.eventually("the quota is counted", Duration::from_secs(30), || {
        counted("1")
    });
    let started = Instant::now();
    let run = s.install(&["--timeout", "3m"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}: {run}",
        started.elapsed()
    );
    says(&run, "cannot create its pods: ");
    says(&run, "exceeded quota: kovenant-test-quota");
}

/// Nodes come and go: an arm64 node the amd64 agent cannot run on (a warning naming it and the
/// binary it needs; the DaemonSet selects amd64 nodes), status judging only the nodes there are
/// now, an agent that sees one namespace or no socket. (A missing helm: status.rs,
/// `status_without_helm_could_not_check`.)
#[test]
fn status_judges_the_nodes_there_are_now_and_what_their_agents_see() {
    let s = Session::new(HelmMajor::V4);
    let mut made = Made::new(&s);
    made.apply(&node_yaml("kwok-arm-0", "arm64"));
    s.eventually(
        "kwok reports the node arm64",
        Duration::from_secs(30),
        || {
            let n = s.get(&["node", "kwok-arm-0"]);
            n["status"]["nodeInfo"]["architecture"] == "arm64"
        },
    );
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    says(
        &run,
        "‼ the agent binary runs on the nodes: the agent binary is linux/amd64, but kwok-arm-0 is \
         linux/arm64 and needs --agent-binary kovenant-aarch64-unknown-linux-gnu: the agent runs \
         only on the 2 linux/amd64 node(s)\n",
    );
    let ds = s.get(&["daemonset", "-n", "kovenant", "kovenant-agent"]);
    assert_eq!(
        ds["spec"]["template"]["spec"]["nodeSelector"],
        serde_json::json!({"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}),
        "{ds:#}"
    );
    assert_eq!(ds["status"]["desiredNumberScheduled"], 2, "{ds:#}");
    // The agent's probes ask telegraf's health endpoint (outputs.health in telegraf.conf) on the
    // port the container declares: not ready once no agent window has reached telegraf's outputs
    // for three windows and a flush, restarted after five more minutes of it. What the endpoint
    // answers, wedged agent and InfluxDB outage: telegraf_health.rs, on real telegraf.
    let agent = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        agent["ports"],
        serde_json::json!([{"name": "health", "containerPort": 8888, "protocol": "TCP"}]),
        "{agent:#}"
    );
    for (probe, failures) in [("readinessProbe", 1), ("livenessProbe", 30)] {
        assert_eq!(
            agent[probe],
            serde_json::json!({
                "httpGet": {"path": "/", "port": "health", "scheme": "HTTP"},
                "periodSeconds": 10,
                "failureThreshold": failures,
                "timeoutSeconds": 1,
                "successThreshold": 1,
            }),
            "{probe}: {agent:#}"
        );
    }
    let conf = s.get(&["configmap", "-n", "kovenant", "kovenant-agent"]);
    let conf = conf["data"]["telegraf.conf"].as_str().unwrap_or_default();
    assert!(
        conf.contains(
            "[[outputs.health]]\n  service_address = \"http://:8888\"\n  \
             max_time_between_metrics = \"40s\"\n  namepass = [\"kovenant_agent\"]\n"
        ),
        "{conf}"
    );
    // What telegraf holds while InfluxDB is away, as measured to fit the container's memory limit
    // with the agent beside it (docs/clusters.md, "Resources"): 40,000 points for the
    // workload-level bucket, 10,000 for the pod-level one, under Go's soft limit.
    assert_eq!(conf.matches("metric_buffer_limit = ").count(), 2, "{conf}");
    assert!(conf.contains("  metric_batch_size = 5000\n"), "{conf}");
    assert!(conf.contains("\n  metric_buffer_limit = 40000\n"), "{conf}");
    assert!(
        conf.contains("  namepass = [\"pod_activity\"]\n  metric_buffer_limit = 10000\n"),
        "{conf}"
    );
    assert_eq!(agent["resources"]["limits"]["memory"], "256Mi", "{agent:#}");
    assert_eq!(
        agent["env"][2],
        serde_json::json!({"name": "GOMEMLIMIT", "value": "160MiB"}),
        "{agent:#}"
    );
    // InfluxDB's recovery of a big volume is not a crash loop: ten minutes before liveness counts.
    let influxdb = s.get(&["statefulset", "-n", "kovenant", "kovenant-influxdb"]);
    assert_eq!(
        influxdb["spec"]["template"]["spec"]["containers"][0]["startupProbe"],
        serde_json::json!({
            "httpGet": {"path": "/health", "port": "http", "scheme": "HTTP"},
            "periodSeconds": 10,
            "failureThreshold": 60,
            "timeoutSeconds": 1,
            "successThreshold": 1,
        }),
        "{influxdb:#}"
    );

    // No agent runs on the arm64 node, and status says so.
    s.write_points(Duration::from_secs(1));
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 3, "{run}");
    assert_eq!(
        v["influxdb"]["error"], "no kovenant_agent point in the last 1h from node kwok-arm-0",
        "{v:#}"
    );
    // Its last point is old, then the node is replaced: status judges the nodes there are now.
    let written = Instant::now();
    agent_point(
        &s,
        "kwok-arm-0",
        Duration::from_secs(600),
        "netns=4i,sockets=9i,processes=12i",
    );
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 3, "{run}");
    // The age is read when status runs: 600s plus the whole seconds since the point was written.
    let ages: Vec<String> = (0..=written.elapsed().as_secs() + 1)
        .map(|extra| {
            format!(
                "no kovenant_agent point newer than 30s (three agent windows) from node kwok-arm-0 \
                 ({}s ago)",
                600 + extra
            )
        })
        .collect();
    let error = v["influxdb"]["error"].as_str().unwrap_or_default();
    assert!(ages.iter().any(|a| a == error), "{v:#}");
    assert_eq!(v["influxdb"]["agents"][0]["node"], "kwok-arm-0", "{v:#}");
    // Pods the scheduler put on the node (InfluxDB's, Grafana's: nothing keeps them off an arm64
    // node, whose images would be multi-platform) go with it: the pod garbage collector deletes
    // them once the node has been gone for its 40s quarantine, and their controllers make them
    // again elsewhere. Until then status is rightly unhealthy, so the live agents' points are
    // written again before each look, as agents write one every window.
    s.kubectl(&["delete", "node", "kwok-arm-0"]);
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let v = loop {
        s.write_points(Duration::from_secs(1));
        let (code, v, run) = status_json(&s, &[]);
        if code == 0 {
            break v;
        }
        let why = format!("exit {code}: {}", v["influxdb"]["error"]);
        if !seen.contains(&why) {
            seen.push(why);
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "not healthy 240s after the node was deleted; seen: {seen:#?}\n{run}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let nodes: Vec<&str> = v["influxdb"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["node"].as_str())
        .collect();
    assert_eq!(nodes, ["kwok-node-0", "kwok-node-1"], "{v:#}");
    assert_eq!(v["influxdb"]["agents"][0]["netns"], 6, "{v:#}");
    assert_eq!(v["influxdb"]["agents"][0]["sockets"], 48, "{v:#}");

    // A fresh point that entered no namespace, or read no socket, is a blind agent; one
    // namespace is a node whose processes all share the host's (the agent checks hostPID).
    agent_point(
        &s,
        "kwok-node-1",
        Duration::from_secs(1),
        "netns=1i,sockets=5i,processes=3i",
    );
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(v["influxdb"]["agents"][1]["problem"], Value::Null, "{v:#}");
    agent_point(
        &s,
        "kwok-node-1",
        Duration::from_secs(1),
        "netns=0i,sockets=0i,processes=3i",
    );
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 3, "{run}");
    assert_eq!(
        v["influxdb"]["error"],
        "kwok-node-1: the agent entered no network namespace (setns failed: check the agent's log)",
        "{v:#}"
    );
    agent_point(
        &s,
        "kwok-node-1",
        Duration::from_secs(1),
        "netns=5i,sockets=0i,processes=30i",
    );
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 3, "{run}");
    assert_eq!(
        v["influxdb"]["agents"][1]["problem"],
        "the agent read 0 sockets (sock_diag answered nothing: check the agent's log)",
        "{v:#}"
    );
    assert_eq!(
        v["influxdb"]["error"],
        "kwok-node-1: the agent read 0 sockets (sock_diag answered nothing: check the agent's log)",
        "{v:#}"
    );
}

/// One Tetragon's metrics endpoint: what its port 2112 serves (the text format Tetragon's
/// Prometheus registry writes), with the ring-buffer queue's lost count the test sets.
fn tetragon_metrics(lost: std::sync::Arc<std::sync::atomic::AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let lost = lost.load(std::sync::atomic::Ordering::SeqCst);
            let mut body = String::new();
            for (metric, help, value) in [
                (
                    "tetragon_observer_ringbuf_queue_events_lost_total",
                    "Number of perf events Tetragon ring buffer events queue lost.",
                    lost,
                ),
                (
                    "tetragon_notify_overflowed_events_total",
                    "The total number of events dropped because listener buffer was full",
                    0,
                ),
                (
                    "tetragon_export_ratelimit_events_dropped_total",
                    "Number of events dropped on export due to rate limiting",
                    0,
                ),
            ] {
                body.push_str(&format!(
                    "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {value}\n"
                ));
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// A real Prometheus server where kwok forwards the prometheus-server pod's port 9090, scraping
/// `targets` (address, node) every second as the chart's kubernetes-pods job labels a Tetragon
/// pod's series. Stopped when dropped.
struct Prometheus {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(s: &Session, targets: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: kubernetes-pods\n  honor_labels: true\n  static_configs:\n",
        );
        for (addr, node) in targets {
            config.push_str(&format!(
                "  - targets: ['{addr}']\n    labels: {{node: {node}, namespace: kube-system, \
                 pod: tetragon-{node}}}\n"
            ));
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let port = crate::support::service("KOVENANT_TEST_PROMETHEUS_PORT");
        let child = std::process::Command::new(crate::support::service("KOVENANT_TEST_PROMETHEUS"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        s.eventually("Prometheus answers", Duration::from_secs(60), || {
            ureq::get(&format!("{}/-/ready", p.url)).call().is_ok()
        });
        p
    }

    /// The value of `expr` now, per node.
    fn query(&self, expr: &str) -> Vec<(String, String)> {
        let Ok(mut res) = ureq::get(&format!("{}/api/v1/query", self.url))
            .query("query", expr)
            .call()
        else {
            return Vec::new();
        };
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["metric"]["node"].as_str().unwrap_or_default().to_string(),
                    r["value"][1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tetragon's drop counters reach status through a port-forward to the prometheus-server pod and
/// a real Prometheus that scraped them: counts that stand still are reported and are no warning;
/// a count that rises is a warning naming the node and the counter, and status stays healthy.
/// Without a Prometheus to ask, the row says so and status is still healthy.
#[test]
fn status_shows_tetragons_drops_per_node_and_warns_when_they_rise() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let s = Session::new(HelmMajor::V4);
    let (lost0, lost1) = (Arc::new(AtomicU64::new(7)), Arc::new(AtomicU64::new(0)));
    let (addr0, addr1) = (
        tetragon_metrics(lost0.clone()),
        tetragon_metrics(lost1.clone()),
    );
    let prometheus = Prometheus::start(&s, &[(&addr0, "kwok-node-0"), (&addr1, "kwok-node-1")]);
    let lost = "tetragon_observer_ringbuf_queue_events_lost_total";
    s.eventually(
        "Prometheus scraped both Tetragons twice",
        Duration::from_secs(60),
        || {
            prometheus
                .query(&format!("count_over_time({lost}[1m]) >= 2"))
                .len()
                == 2
        },
    );
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");

    s.write_points(Duration::from_secs(1));
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 0, "{run}");
    let drops = &v["tetragon_drops"];
    assert_eq!(drops["error"], Value::Null, "{drops:#}");
    assert_eq!(drops["warning"], Value::Null, "{drops:#}");
    assert_eq!(drops["rise_seconds"], 600, "{drops:#}");
    assert_eq!(
        drops["nodes"],
        serde_json::json!([
            {"node": "kwok-node-0",
             "total": {"ringbuf_queue_lost": 7, "notify_overflowed": 0, "export_ratelimited": 0},
             "rise": {"ringbuf_queue_lost": 0, "notify_overflowed": 0, "export_ratelimited": 0}},
            {"node": "kwok-node-1",
             "total": {"ringbuf_queue_lost": 0, "notify_overflowed": 0, "export_ratelimited": 0},
             "rise": {"ringbuf_queue_lost": 0, "notify_overflowed": 0, "export_ratelimited": 0}},
        ]),
        "{drops:#}"
    );
    let env = s.env_arg();
    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains(
            "\ndrops       ok   Tetragon lost no event in the last 10m (lost in total: \
             kwok-node-0 7, kwok-node-1 0)\n"
        ),
        "{run}"
    );

    // kwok-node-1's Tetragon loses 5 events from its queue.
    lost1.store(5, Ordering::SeqCst);
    s.eventually(
        "Prometheus scraped the new count",
        Duration::from_secs(30),
        || {
            prometheus
                .query(lost)
                .contains(&("kwok-node-1".into(), "5".into()))
        },
    );
    s.write_points(Duration::from_secs(1));
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 0, "a rise is a warning, not unhealthy: {run}");
    let warning = "Tetragon lost events in the last 10m on kwok-node-1 (ringbuf_queue_lost +5): \
                   the owners of some host-network sockets go unnamed (docs/clusters.md, Status)";
    assert_eq!(v["tetragon_drops"]["warning"], warning, "{v:#}");
    assert_eq!(
        v["tetragon_drops"]["nodes"][1]["rise"]["ringbuf_queue_lost"], 5,
        "{v:#}"
    );
    let run = s.run(&["status", "--env-file", &env]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains(&format!("\ndrops       WARN {warning}\n")),
        "{run}"
    );
    says(&run, &format!("warning: {warning}\n"));

    // No Prometheus behind the pod: the row says why, and status is as healthy as before.
    drop(prometheus);
    s.write_points(Duration::from_secs(1));
    let (code, v, run) = status_json(&s, &[]);
    assert_eq!(code, 0, "{run}");
    let error = v["tetragon_drops"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cannot read Tetragon's counters from Prometheus (prometheus-server-"),
        "{v:#}"
    );
    assert_eq!(v["tetragon_drops"]["nodes"], serde_json::json!([]), "{v:#}");
}

/// KOVENANT_INGRESS_TLS_SECRET: preflight warns while the Secret is not there (install goes on:
/// cert-manager, say, may make it), refuses one an ingress controller cannot serve, and with a
/// kubernetes.io/tls Secret the Grafana Ingress serves it for the external URL's host.
#[test]
fn the_ingress_tls_secret_is_checked_then_served_for_the_external_host() {
    let s = Session::new(HelmMajor::V4);
    s.write_env(&[
        "KOVENANT_EXTERNAL_URL=https://mon.example.com/ops",
        "KOVENANT_INGRESS_TLS_SECRET=mon-tls",
    ]);
    let title = "the TLS Secret kovenant/mon-tls for Grafana's ingress";
    let run = s.install(&["--dry-run"]);
    assert_eq!(run.code, 0, "{run}");
    says(
        &run,
        &format!(
            "‼ {title}: does not exist yet: until it does, the ingress controller serves its own \
             default certificate, which browsers refuse\n"
        ),
    );
    says(
        &run,
        "hint: kubectl create secret tls mon-tls -n kovenant --cert=CERT.pem --key=KEY.pem",
    );

    s.kubectl(&["create", "namespace", "kovenant"]);
    let mut made = Made::new(&s);
    made.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mon-tls\n  namespace: kovenant\n\
         type: Opaque\ndata:\n  cert.pem: Y2VydA==\n",
    );
    let run = s.install(&[]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        &format!(
            "× {title}: is of type Opaque, without tls.crt and tls.key: an ingress controller \
             serves only the tls.crt and tls.key of a kubernetes.io/tls Secret\n"
        ),
    );
    assert_eq!(s.releases(), []);
    drop(made);

    let mut made = Made::new(&s);
    made.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mon-tls\n  namespace: kovenant\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: Y2VydA==\n  tls.key: a2V5\n",
    );
    s.write_points(Duration::from_secs(1));
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    says(&run, &format!("√ {title}: kubernetes.io/tls\n"));
    let ingress = s.get(&["ingress", "-n", "kovenant", "grafana"]);
    assert_eq!(
        ingress["spec"]["tls"],
        serde_json::json!([{"hosts": ["mon.example.com"], "secretName": "mon-tls"}]),
        "{ingress:#}"
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["host"], "mon.example.com",
        "{ingress:#}"
    );
    drop(made);
}

/// Preflight asks the API server itself whether kovenant's pods would be admitted: a server-side
/// dry run of a pod that asks what they ask, in each namespace that exists. A namespace whose
/// labels say nothing against them can still refuse them (here a ValidatingAdmissionPolicy the
/// real API server enforces; on other clusters the Pod Security default of the API server's
/// admission configuration, or a webhook): install stops before changing anything, with the API
/// server's words, and the dry run leaves no pod behind.
#[test]
fn preflight_asks_the_api_server_whether_kovenants_pods_are_admitted() {
    let s = Session::new(HelmMajor::V4);
    let mut made = Made::new(&s);
    made.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kovenant-test-psa\n  labels:\n    \
         kovenant-test/no-host-pid: \"true\"\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  \
         name: kovenant-test-no-host-pid\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    \
         resourceRules:\n    - apiGroups: [\"\"]\n      apiVersions: [v1]\n      operations: [CREATE]\n      \
         resources: [pods]\n  validations:\n  - expression: \"!has(object.spec.hostPID) || !object.spec.hostPID\"\n    \
         message: host PID is not allowed here\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  \
         name: kovenant-test-no-host-pid\nspec:\n  policyName: kovenant-test-no-host-pid\n  \
         validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels:\n        \
         kovenant-test/no-host-pid: \"true\"\n",
    );
    s.eventually(
        "the policy refuses a hostPID pod",
        Duration::from_secs(30),
        || {
            let out = s.kubectl_run(&[
                "run",
                "probe",
                "-n",
                "kovenant-test-psa",
                "--image=pause",
                "--overrides={\"spec\":{\"hostPID\":true}}",
                "--dry-run=server",
            ]);
            String::from_utf8_lossy(&out.stderr).contains("host PID is not allowed here")
        },
    );
    s.write_env(&["KOVENANT_TETRAGON_NAMESPACE=kovenant-test-psa"]);
    let run = s.install(&["--check-only"]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "√ Pod Security admission in kovenant-test-psa admits `privileged` pods: no enforce label \
         (the API server's default) (tetragon: privileged container, hostPID, hostNetwork, \
         hostPath (BPF, /proc))\n",
    );
    says(
        &run,
        "× the API server admits kovenant's privileged pods in kovenant-test-psa (a server-side \
         dry run): refused (tetragon: privileged container, hostPID, hostNetwork, hostPath (BPF, \
         /proc)): pods \"kovenant-admission-probe\" is forbidden: ValidatingAdmissionPolicy \
         'kovenant-test-no-host-pid' with binding 'kovenant-test-no-host-pid' denied request: \
         host PID is not allowed here\n",
    );
    says(
        &run,
        "hint: the namespace's admission refuses them (a ResourceQuota, an admission policy or a \
         webhook: the API server's words say which): ask the cluster's admins to let them into \
         namespace kovenant-test-psa, or choose another namespace (KOVENANT_NAMESPACE, \
         KOVENANT_TETRAGON_NAMESPACE)\n",
    );
    assert_eq!(run.stderr.matches("×").count(), 1, "{run}");
    let pods = s.get(&["pods", "-n", "kovenant-test-psa"]);
    assert_eq!(pods["items"], serde_json::json!([]), "{pods:#}");

    // Kovenant's own namespace, already there and under the same policy: refused too, naming
    // the agent's and node-exporter's needs.
    s.kubectl(&["create", "namespace", "kovenant"]);
    s.kubectl(&[
        "label",
        "namespace",
        "kovenant",
        "kovenant-test/no-host-pid=true",
    ]);
    let run = s.install(&["--check-only"]);
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× the API server admits kovenant's privileged pods in kovenant (a server-side dry run): \
         refused (prometheus-node-exporter: hostNetwork, hostPID, hostPath / (node metrics); \
         kovenant-agent: hostPID, capabilities SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, NET_ADMIN \
         (kernel counters), hostPath /var/log/tetragon (Tetragon's export file)): pods \
         \"kovenant-admission-probe\" is forbidden: ValidatingAdmissionPolicy",
    );
    assert_eq!(run.stderr.matches("×").count(), 2, "{run}");

    // Without the policy both are admitted, and preflight says nothing more of it.
    drop(made);
    s.eventually("the policy is gone", Duration::from_secs(30), || {
        let out = s.kubectl_run(&[
            "run",
            "probe",
            "-n",
            "kovenant",
            "--image=pause",
            "--overrides={\"spec\":{\"hostPID\":true}}",
            "--dry-run=server",
        ]);
        out.status.success()
    });
    s.write_env(&[]);
    let run = s.install(&["--check-only"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stderr.contains("a server-side dry run"), "{run}");
}
