//! The real control plane that `.ci/cluster.sh` starts on loopback (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok nodes), real helm 4 and helm 3 with the real
//! helm-diff plugin, and the pinned upstream charts served as a chart repository. Tests that use
//! it take a `Session`, which holds a process-wide lock: the cluster (cluster-scoped
//! TracingPolicies, Tetragon's namespace) is shared, so these tests run one at a time, and each
//! leaves the cluster as it found it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::Run;
use crate::support::{kovenant, service};

mod clusters;
mod dashboard;
mod external;
mod faults;
mod lifecycle;
mod parts;
mod preflight;
mod prompt;
mod recovery;
mod security;
mod status;
mod tokens;
mod top;
mod truth;
mod validity;

static LOCK: Mutex<()> = Mutex::new(());

/// Which helm the session's kovenant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmMajor {
    V4,
    V3,
}

pub struct Session {
    _guard: MutexGuard<'static, ()>,
    pub kubeconfig: PathBuf,
    pub cluster_dir: PathBuf,
    pub chart_repo: String,
    pub helm: PathBuf,
    pub plugins: PathBuf,
    pub kubectl: PathBuf,
    pub influxdb: String,
    /// A fresh laptop: helm's config, cache and data homes, the .env, the working folder.
    pub home: tempfile::TempDir,
    pub env_file: PathBuf,
    /// The InfluxDB bucket (a database of the test InfluxDB) this session's stack reads.
    pub bucket: String,
}

fn unique() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("t{n}")
}

impl Session {
    pub fn new(major: HelmMajor) -> Session {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let helm = PathBuf::from(service(match major {
            HelmMajor::V4 => "KOVENANT_TEST_HELM4",
            HelmMajor::V3 => "KOVENANT_TEST_HELM3",
        }));
        let cluster_dir = PathBuf::from(service("KOVENANT_TEST_CLUSTER_DIR"));
        let kubectl = PathBuf::from(service("KOVENANT_TEST_KUBECTL"));
        let home = tempfile::tempdir().expect("temp dir");
        let env_file = home.path().join(".env");
        let chart_repo = service("KOVENANT_TEST_CHART_REPO");
        let bucket = unique();
        let s = Session {
            _guard: guard,
            kubeconfig: PathBuf::from(service("KOVENANT_TEST_KUBECONFIG")),
            cluster_dir,
            chart_repo,
            helm,
            plugins: PathBuf::from(service("KOVENANT_TEST_HELM_PLUGINS")),
            kubectl,
            influxdb: service("KOVENANT_TEST_INFLUXDB2"),
            home,
            env_file,
            bucket,
        };
        // What the InfluxDB pod's postStart hook makes on a real cluster: the session's bucket
        // and its pod-level bucket (tests/it/cluster/tokens.rs runs the hook itself).
        for name in [s.bucket.clone(), format!("{}/pods", s.bucket)] {
            create_bucket(&s.influxdb, &name);
        }
        s.write_env(&[]);
        s.cleanup();
        s
    }

    /// The .env every session starts from (the charts from the loopback repository, its own
    /// bucket), plus `extra` lines.
    pub fn write_env(&self, extra: &[&str]) {
        let mut text = String::new();
        for chart in ["TETRAGON", "PROMETHEUS", "GRAFANA"] {
            text.push_str(&format!(
                "KOVENANT_{chart}_CHART_REPO={}\n",
                self.chart_repo
            ));
        }
        if !extra
            .iter()
            .any(|l| l.starts_with("DOCKER_INFLUXDB_INIT_BUCKET="))
        {
            text.push_str(&format!("DOCKER_INFLUXDB_INIT_BUCKET={}\n", self.bucket));
        }
        // The credentials the test InfluxDB was set up with (.ci/cluster.sh), as the InfluxDB
        // pod would have been set up from the Secret install makes of them.
        // (unless `extra` sets them).
        for (key, var) in [
            (
                "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN",
                "KOVENANT_TEST_INFLUXDB2_TOKEN",
            ),
            (
                "DOCKER_INFLUXDB_INIT_PASSWORD",
                "KOVENANT_TEST_INFLUXDB2_PASSWORD",
            ),
        ] {
            if !extra.iter().any(|l| l.starts_with(&format!("{key}="))) {
                text.push_str(&format!("{key}={}\n", service(var)));
            }
        }
        for l in extra {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&self.env_file, text).expect("write .env");
    }

    /// helm's own environment: a fresh config/cache/data home, and the helm-diff plugin.
    fn helm_env(&self, cmd: &mut Command) {
        let h = self.home.path();
        cmd.env("HELM_CONFIG_HOME", h.join("helm/config"))
            .env("HELM_CACHE_HOME", h.join("helm/cache"))
            .env("HELM_DATA_HOME", h.join("helm/data"))
            .env("HELM_PLUGINS", &self.plugins)
            .env("KUBECONFIG", &self.kubeconfig);
    }

    /// kovenant pointed at the cluster, with real helm; stdin is not a terminal.
    pub fn kovenant(&self, args: &[&str]) -> Command {
        self.kovenant_with(&self.kubeconfig, args)
    }

    /// kovenant with another kubeconfig (another user, or a server that is not there).
    pub fn kovenant_with(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut cmd = kovenant();
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("KOVENANT_HELM", &self.helm)
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        self.helm_env(&mut cmd);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.kovenant(args).output().expect("run kovenant"))
    }

    pub fn env_arg(&self) -> String {
        self.env_file.to_string_lossy().into_owned()
    }

    /// `kovenant install --yes --skip-image` with the session's .env, and `extra` flags.
    pub fn install(&self, extra: &[&str]) -> Run {
        let env = self.env_arg();
        let mut args = vec!["install", "--yes", "--skip-image", "--env-file", &env];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn uninstall(&self, extra: &[&str]) -> Run {
        let env = self.env_arg();
        let mut args = vec!["uninstall", "--yes", "--env-file", &env];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// kubectl against the cluster; panics unless it succeeds.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_run(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).expect("kubectl JSON")
    }

    /// The sorted names of what `kubectl get ARGS` lists.
    pub fn names(&self, args: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = self.get(args)["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Every pod of the stack: kovenant's namespace, and Tetragon's pods in kube-system.
    pub fn stack_pods(&self) -> Vec<Value> {
        let mut pods = self.get(&["pods", "-n", "kovenant"])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        pods.extend(
            self.get(&[
                "pods",
                "-n",
                "kube-system",
                "-l",
                "app.kubernetes.io/instance=tetragon",
            ])["items"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        pods
    }

    /// Whether `kubectl get` finds the object.
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        self.kubectl_run(&a).status.success()
    }

    /// The session's helm, on the cluster.
    pub fn helm(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&self.helm);
        cmd.args(args).stdin(Stdio::null());
        self.helm_env(&mut cmd);
        cmd.output().expect("run helm")
    }

    /// `helm list -A -o json` of every live state: (namespace/name, revision, status).
    pub fn releases(&self) -> Vec<(String, u32, String)> {
        let out = self.helm(&[
            "list",
            "-A",
            "-o",
            "json",
            "--deployed",
            "--failed",
            "--pending",
            "--uninstalling",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("helm list JSON");
        let mut list: Vec<(String, u32, String)> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    format!(
                        "{}/{}",
                        r["namespace"].as_str().unwrap_or_default(),
                        r["name"].as_str().unwrap_or_default()
                    ),
                    r["revision"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    r["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        list.sort();
        list
    }

    /// Polls `check` every 250 ms until it holds or `timeout` passes.
    pub fn eventually(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Writes `kovenant_agent` (one point per node) and `tcp_flow` points `age` ago into the
    /// session's bucket of the real InfluxDB, which kwok's port-forward puts behind
    /// kovenant-influxdb-0:8086.
    pub fn write_points(&self, age: Duration) {
        let ts = SystemTime::now()
            .checked_sub(age)
            .expect("clock")
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let body = format!(
            "kovenant_agent,node=kwok-node-0 keys=10i,tetragon_events=10i,netns=6i,sockets=48i,processes=31i {ts}\n\
             kovenant_agent,node=kwok-node-1 keys=4i,tetragon_events=4i,netns=3i,sockets=17i,processes=22i {ts}\n\
             tcp_flow,node=kwok-node-0,src_namespace=shop,src_workload=web,peer_type=service connects=1i {ts}\n"
        );
        influx(&self.influxdb, "/write", &[("db", &self.bucket)], &body);
    }

    /// Removes whatever a test left behind: kovenant's uninstall, then, whatever it missed,
    /// every release and kovenant's namespace, waiting until the namespace is gone.
    pub fn cleanup(&self) {
        let _ = self.uninstall(&["--purge"]);
        for (release, _, _) in self.releases() {
            let (ns, name) = release.split_once('/').expect("ns/name");
            let _ = self.helm(&["uninstall", name, "-n", ns, "--no-hooks"]);
        }
        let _ = self.kubectl_run(&[
            "delete",
            "tracingpolicies.cilium.io",
            "-l",
            "app.kubernetes.io/managed-by=kovenant",
            "--ignore-not-found",
        ]);
        let _ = self.kubectl_run(&[
            "delete",
            "namespace",
            "kovenant",
            "--ignore-not-found",
            "--wait=false",
        ]);
        let start = Instant::now();
        while self.exists(&["namespace", "kovenant"]) {
            if start.elapsed() > Duration::from_secs(300) {
                let ns = self.kubectl_run(&["get", "namespace", "kovenant", "-o", "yaml"]);
                panic!(
                    "namespace kovenant is not gone after 300s:\n{}",
                    String::from_utf8_lossy(&ns.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.cleanup();
        }
    }
}

/// The operator token the test InfluxDB 2.7 was set up with.
pub fn operator_token() -> String {
    service("KOVENANT_TEST_INFLUXDB2_TOKEN")
}

/// One JSON request to the test InfluxDB 2.7's own API with the operator token; the answer.
pub fn influx_api(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let url = format!("{base}{path}");
    let auth = format!("Token {}", operator_token());
    let res = match (method, body) {
        ("GET", _) => ureq::get(&url).header("Authorization", &auth).call(),
        ("DELETE", _) => ureq::delete(&url).header("Authorization", &auth).call(),
        (_, Some(b)) => ureq::post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(b.to_string().as_bytes()),
        (_, None) => ureq::post(&url)
            .header("Authorization", &auth)
            .send(&[] as &[u8]),
    };
    match res {
        Ok(mut r) => {
            let code = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            (code, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(ureq::Error::StatusCode(code)) => (code, Value::Null),
        Err(e) => panic!("InfluxDB {method} {path}: {e}"),
    }
}

/// The ID of organisation `kovenant` of the test InfluxDB.
pub fn org_id(base: &str) -> String {
    let (_, v) = influx_api(base, "GET", "/api/v2/orgs?org=kovenant", None);
    v["orgs"][0]["id"]
        .as_str()
        .expect("org kovenant")
        .to_owned()
}

/// Creates bucket `name` (kept forever) in the test InfluxDB.
pub fn create_bucket(base: &str, name: &str) {
    let body = serde_json::json!({"orgID": org_id(base), "name": name, "retentionRules": []});
    let (code, v) = influx_api(base, "POST", "/api/v2/buckets", Some(&body));
    assert_eq!(code, 201, "create bucket {name}: {v}");
}

/// Deletes the points of `measurement` (with `predicate`, InfluxDB's delete syntax, if given)
/// from `bucket`: InfluxDB 2's InfluxQL has no DROP SERIES.
pub fn influx_delete(base: &str, bucket: &str, measurement: &str, predicate: &str) {
    let mut p = format!("_measurement=\"{measurement}\"");
    if !predicate.is_empty() {
        p.push_str(" AND ");
        p.push_str(predicate);
    }
    let body = serde_json::json!({"start": "1970-01-01T00:00:00Z", "stop": "2100-01-01T00:00:00Z", "predicate": p});
    let path = format!(
        "/api/v2/delete?org=kovenant&bucket={}",
        url::form_urlencoded::byte_serialize(bucket.as_bytes()).collect::<String>()
    );
    let (code, v) = influx_api(base, "POST", &path, Some(&body));
    assert_eq!(code, 204, "delete from {bucket}: {v}");
}

/// One request to the test InfluxDB's v1 API (`/write`, `/query`) with the operator token
/// (form-encoded parameters, a body); panics unless 2xx. A just-started InfluxDB can refuse its
/// first requests for a moment, so this tries for 10 s.
pub fn influx(base: &str, path: &str, params: &[(&str, &str)], body: &str) {
    let url = format!("{base}{path}");
    let auth = format!("Token {}", operator_token());
    let mut last = String::new();
    for _ in 0..40 {
        let mut req = ureq::post(&url).header("Authorization", &auth);
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        match req.send(body.as_bytes()) {
            Ok(res) if res.status().is_success() => return,
            Ok(res) => last = format!("HTTP {}", res.status()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("InfluxDB {path} did not answer: {last}");
}

/// Asserts that the run's stderr holds `text`, showing the whole run when it does not.
pub fn says(run: &Run, text: &str) {
    assert!(run.stderr.contains(text), "no `{text}` in:\n{}", both(run));
}

/// A run's stdout and stderr, for messages.
pub fn both(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
