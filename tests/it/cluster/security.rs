//! docs/security.md's promises, checked on the real control plane against the RBAC, pods and
//! ingresses that the real charts and kovenant's own chart create: the real API server's
//! authorizer answers every SubjectAccessReview.
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{HelmMajor, Session, both};

/// Namespaces every access question is asked in; "" is the whole cluster (a list or watch of
/// every namespace at once).
const NAMESPACES: [&str; 4] = ["kovenant", "kube-system", "default", ""];

/// One access question: may `subject` `verb` `resource` (`group/resource[/sub]`) in `namespace`?
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    subject: String,
    verb: String,
    resource: String,
    namespace: String,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = if self.namespace.is_empty() {
            "(all namespaces)"
        } else {
            &self.namespace
        };
        write!(
            f,
            "{} {} {} in {ns}",
            self.subject, self.verb, self.resource
        )
    }
}

/// `kubectl create -o json` of a manifest (a List of SubjectAccessReviews): what the API server
/// returned for each item, in order (kubectl prints one JSON document per created object).
fn create(s: &Session, manifest: &Value) -> Vec<Value> {
    let mut child = Command::new(&s.kubectl)
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["create", "-o", "json", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.to_string().as_bytes())
        .expect("write manifest");
    let out = child.wait_with_output().expect("kubectl output");
    assert!(
        out.status.success(),
        "kubectl create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("kubectl JSON");
    match docs.as_slice() {
        [one] if one["kind"] == "List" => one["items"].as_array().cloned().unwrap_or_default(),
        _ => docs,
    }
}

/// The user and groups the API server gives a subject of a binding.
fn identity(subject: &str) -> (String, Vec<String>) {
    match subject.split_once(':') {
        Some(("Group", g)) => (String::from("nobody-but-the-group"), vec![g.to_owned()]),
        Some(("User", u)) => (u.to_owned(), vec!["system:authenticated".to_owned()]),
        Some(("ServiceAccount", sa)) => {
            let (ns, _) = sa.split_once('/').expect("ns/name");
            (
                format!("system:serviceaccount:{}", sa.replace('/', ":")),
                vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{ns}"),
                    "system:authenticated".to_owned(),
                ],
            )
        }
        _ => panic!("subject {subject}"),
    }
}

/// Which of `questions` the real authorizer allows, in one round trip.
fn allowed(s: &Session, questions: &[Access]) -> BTreeSet<Access> {
    let items: Vec<Value> = questions
        .iter()
        .map(|q| {
            let (user, groups) = identity(&q.subject);
            let (group, rest) = q.resource.split_once('/').expect("group/resource");
            let (resource, sub) = rest.split_once('/').unwrap_or((rest, ""));
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user,
                    "groups": groups,
                    "resourceAttributes": {
                        "namespace": q.namespace,
                        "verb": q.verb,
                        "group": group,
                        "resource": resource,
                        "subresource": sub,
                    },
                },
            })
        })
        .collect();
    let answers = create(
        s,
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    );
    assert_eq!(answers.len(), questions.len(), "one answer per question");
    questions
        .iter()
        .zip(answers)
        .filter(|(_, a)| a["status"]["allowed"] == true)
        .map(|(q, _)| q.clone())
        .collect()
}

/// The bindings the releases made (the API server's own bootstrap ones, `system:*`, aside), each
/// as (binding kind, namespace, role kind, role name, subjects as `Kind:ns/name`).
fn release_bindings(s: &Session) -> Vec<(String, String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (kind, args) in [
        ("ClusterRoleBinding", vec!["clusterrolebindings"]),
        ("RoleBinding", vec!["rolebindings", "-A"]),
    ] {
        for b in s.get(&args)["items"].as_array().into_iter().flatten() {
            let name = b["metadata"]["name"].as_str().unwrap_or_default();
            if name.starts_with("system:") || name == "cluster-admin" {
                continue;
            }
            let subjects = b["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    let k = x["kind"].as_str().unwrap_or_default();
                    let n = x["name"].as_str().unwrap_or_default();
                    match x["namespace"].as_str() {
                        Some(ns) if k == "ServiceAccount" => format!("{k}:{ns}/{n}"),
                        _ => format!("{k}:{n}"),
                    }
                })
                .collect();
            out.push((
                kind.to_owned(),
                b["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                b["roleRef"]["kind"].as_str().unwrap_or_default().to_owned(),
                b["roleRef"]["name"].as_str().unwrap_or_default().to_owned(),
                subjects,
            ));
        }
    }
    out.sort();
    out
}

/// Every rule a subject holds through the releases' bindings, as
/// (namespace or "" for the cluster, apiGroup/resource, verb), one entry per combination.
fn rules_of(s: &Session, subject: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (_, ns, role_kind, role, subjects) in release_bindings(s) {
        if !subjects.iter().any(|x| x == subject) {
            continue;
        }
        let obj = if role_kind == "ClusterRole" {
            s.get(&["clusterrole", &role])
        } else {
            s.get(&["role", "-n", &ns, &role])
        };
        for rule in obj["rules"].as_array().into_iter().flatten() {
            let strs = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            for group in strs("apiGroups") {
                for resource in strs("resources") {
                    for verb in strs("verbs") {
                        out.insert((ns.clone(), format!("{group}/{resource}"), verb));
                    }
                }
            }
            assert!(
                rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
                "{subject}: a rule of a shape this test does not read: {rule}"
            );
        }
    }
    out
}

/// Every subject of the releases' bindings, plus every ServiceAccount the releases made.
fn subjects(s: &Session) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = release_bindings(s).into_iter().flat_map(|b| b.4).collect();
    for ns in ["kovenant", "kube-system"] {
        for sa in s.names(&["serviceaccounts", "-n", ns]) {
            if sa != "default" {
                out.insert(format!("ServiceAccount:{ns}/{sa}"));
            }
        }
    }
    out
}

fn questions(subjects: &BTreeSet<String>, resource: &str, verbs: &[&str]) -> Vec<Access> {
    let mut out = Vec::new();
    for subject in subjects {
        for ns in NAMESPACES {
            for verb in verbs {
                out.push(Access {
                    subject: subject.clone(),
                    verb: (*verb).to_owned(),
                    resource: resource.to_owned(),
                    namespace: ns.to_owned(),
                });
            }
        }
    }
    out
}

fn shown(set: &BTreeSet<Access>) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

/// Every Secret each workload's pods name, as `workload -> {secret/key or secret/* (all keys)}`:
/// volumes (secret, projected), env `secretKeyRef`, `envFrom` secretRef, of every container and
/// init container. A workload is its pods' controller (a ReplicaSet's hash dropped).
fn secret_refs(s: &Session) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let pods = s.stack_pods();
    let mut out = std::collections::BTreeMap::new();
    for pod in pods {
        let owner = &pod["metadata"]["ownerReferences"][0];
        let name = owner["name"].as_str().unwrap_or_default();
        let workload = match owner["kind"].as_str() {
            Some("ReplicaSet") => name.rsplit_once('-').map_or(name, |(w, _)| w),
            _ => name,
        };
        let refs: &mut BTreeSet<String> = out.entry(workload.to_owned()).or_default();
        let spec = &pod["spec"];
        for v in spec["volumes"].as_array().into_iter().flatten() {
            if let Some(n) = v["secret"]["secretName"].as_str() {
                refs.insert(format!("{n}/*"));
            }
            for src in v["projected"]["sources"].as_array().into_iter().flatten() {
                if let Some(n) = src["secret"]["name"].as_str() {
                    refs.insert(format!("{n}/*"));
                }
            }
        }
        let containers = spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten();
        for c in containers {
            for e in c["env"].as_array().into_iter().flatten() {
                let r = &e["valueFrom"]["secretKeyRef"];
                if let (Some(n), Some(k)) = (r["name"].as_str(), r["key"].as_str()) {
                    refs.insert(format!("{n}/{k}"));
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(n) = e["secretRef"]["name"].as_str() {
                    refs.insert(format!("{n}/*"));
                }
            }
        }
    }
    out
}

const AGENT: &str = "ServiceAccount:kovenant/kovenant-agent";

/// What attribution reads, cluster-wide, and the only verbs it uses (watchers list and watch).
fn agent_rules() -> BTreeSet<(String, String, String)> {
    let mut want = BTreeSet::new();
    for resource in [
        "/pods",
        "/services",
        "/nodes",
        "apps/replicasets",
        "apps/deployments",
        "apps/statefulsets",
        "apps/daemonsets",
        "batch/jobs",
        "batch/cronjobs",
    ] {
        for verb in ["list", "watch"] {
            want.insert((String::new(), resource.to_owned(), verb.to_owned()));
        }
    }
    want
}

#[test]
fn nobody_the_stack_creates_can_read_a_secret_and_the_agent_only_reads_what_attribution_needs() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{}", both(&run));

    // Who the releases' RBAC names: exactly the stack's own ServiceAccounts (a chart that binds
    // a group or a user, or a new account, shows here first).
    let who = subjects(&s);
    assert_eq!(
        who.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "ServiceAccount:kovenant/grafana",
            "ServiceAccount:kovenant/kovenant-agent",
            "ServiceAccount:kovenant/prometheus-kube-state-metrics",
            "ServiceAccount:kovenant/prometheus-prometheus-node-exporter",
            "ServiceAccount:kovenant/prometheus-server",
            "ServiceAccount:kube-system/tetragon",
            "ServiceAccount:kube-system/tetragon-operator-service-account",
        ]
    );

    // Secrets: nobody may get, list or watch one, in kovenant's namespace, Tetragon's, another,
    // or the whole cluster. (The chart defaults gave Grafana's sidecar and kube-state-metrics
    // every Secret of the cluster.)
    let secrets = allowed(&s, &questions(&who, "/secrets", &["get", "list", "watch"]));
    assert!(
        secrets.is_empty(),
        "may read Secrets: {:#?}",
        shown(&secrets)
    );

    // Grafana: ConfigMaps (its dashboards) in kovenant's namespace only, list and watch.
    let grafana = BTreeSet::from(["ServiceAccount:kovenant/grafana".to_owned()]);
    let cms = allowed(
        &s,
        &questions(&grafana, "/configmaps", &["get", "list", "watch", "update"]),
    );
    assert_eq!(
        shown(&cms),
        [
            "ServiceAccount:kovenant/grafana list /configmaps in kovenant",
            "ServiceAccount:kovenant/grafana watch /configmaps in kovenant",
        ]
    );
    assert_eq!(
        rules_of(&s, "ServiceAccount:kovenant/grafana"),
        BTreeSet::from([
            ("kovenant".into(), "/configmaps".into(), "list".into()),
            ("kovenant".into(), "/configmaps".into(), "watch".into()),
        ])
    );

    // The agent: exactly the list and watch of what attribution reads, nothing else bound to it,
    // and the authorizer agrees on what lies beside it.
    assert_eq!(rules_of(&s, AGENT), agent_rules());
    let agent = BTreeSet::from([AGENT.to_owned()]);
    let mut asked = questions(
        &agent,
        "/pods",
        &["list", "watch", "get", "create", "delete"],
    );
    asked.extend(questions(&agent, "/pods/log", &["get"]));
    asked.extend(questions(&agent, "/namespaces", &["get", "list", "watch"]));
    asked.extend(questions(&agent, "apps/deployments", &["list", "patch"]));
    let may: Vec<String> = shown(&allowed(&s, &asked))
        .into_iter()
        .filter(|a| a.ends_with("(all namespaces)"))
        .collect();
    assert_eq!(
        may,
        [
            "ServiceAccount:kovenant/kovenant-agent list /pods in (all namespaces)",
            "ServiceAccount:kovenant/kovenant-agent list apps/deployments in (all namespaces)",
            "ServiceAccount:kovenant/kovenant-agent watch /pods in (all namespaces)",
        ]
    );

    // Which pod holds which credential: the operator (all-access) token only InfluxDB's pod;
    // telegraf its write token, Grafana its read token (made through the real InfluxDB 2.7's
    // authorization API; tests/it/cluster/tokens.rs checks their rights).
    let refs = secret_refs(&s);
    let held: Vec<String> = refs
        .iter()
        .map(|(w, r)| format!("{w}: {}", r.iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect();
    assert_eq!(
        held,
        [
            "grafana: kovenant-grafana/admin-password kovenant-grafana/admin-user kovenant-influxdb-grafana/token",
            "kovenant-agent: kovenant-influxdb-telegraf/token",
            "kovenant-influxdb: kovenant-influxdb/admin-password kovenant-influxdb/admin-token",
            "prometheus-kube-state-metrics: ",
            "prometheus-prometheus-node-exporter: ",
            "prometheus-server: ",
            "tetragon: ",
            "tetragon-operator: ",
        ]
    );

    // With the kube-logs source: pods/log in Tetragon's namespace, and only there.
    s.write_env(&["KOVENANT_AGENT_SOURCE=kube-logs"]);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{}", both(&run));
    let mut want = agent_rules();
    want.insert(("kube-system".into(), "/pods/log".into(), "get".into()));
    assert_eq!(rules_of(&s, AGENT), want);
    let logs = allowed(&s, &questions(&agent, "/pods/log", &["get"]));
    assert_eq!(
        shown(&logs),
        ["ServiceAccount:kovenant/kovenant-agent get /pods/log in kube-system"]
    );
    let secrets = allowed(&s, &questions(&who, "/secrets", &["get", "list", "watch"]));
    assert!(secrets.is_empty(), "{:#?}", shown(&secrets));
}

#[test]
fn the_grafana_ingress_exists_only_with_an_external_url_and_takes_its_host() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&["--only", "secrets", "--only", "grafana"]);
    assert_eq!(run.code, 0, "{}", both(&run));
    assert_eq!(s.names(&["ingresses", "-A"]), Vec::<String>::new());

    s.write_env(&["KOVENANT_EXTERNAL_URL=https://mon.example.com/ops"]);
    let run = s.install(&["--only", "secrets", "--only", "grafana"]);
    assert_eq!(run.code, 0, "{}", both(&run));
    let ingress = s.get(&["ingress", "-n", "kovenant", "grafana"]);
    let rules = &ingress["spec"]["rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{rules}");
    assert_eq!(rules[0]["host"], "mon.example.com");
    assert_eq!(rules[0]["http"]["paths"][0]["path"], "/ops/grafana");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert!(
        run.stderr
            .contains("Grafana: https://mon.example.com/ops/grafana"),
        "{}",
        run.stderr
    );
}

/// Takes a label off kube-system when dropped, so a failing test leaves the cluster as it was.
struct Relabel<'a>(&'a Session);

impl Drop for Relabel<'_> {
    fn drop(&mut self) {
        let _ = self.0.kubectl_run(&[
            "label",
            "namespace",
            "kube-system",
            "pod-security.kubernetes.io/enforce-",
        ]);
    }
}

#[test]
fn preflight_reports_pod_security_per_namespace_and_install_labels_its_own() {
    let s = Session::new(HelmMajor::V4);
    let env = s.env_arg();
    // Tetragon's namespace enforcing baseline: Tetragon's privileged pods would be refused, and
    // kovenant does not own that namespace, so preflight fails and says which label to set.
    let _undo = Relabel(&s);
    s.kubectl(&[
        "label",
        "namespace",
        "kube-system",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    // kovenant's own namespace, made beforehand with a stricter level than its pods need.
    s.kubectl(&["create", "namespace", "kovenant"]);
    s.kubectl(&[
        "label",
        "namespace",
        "kovenant",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let run = s.run(&["install", "--check-only", "--env-file", &env]);
    assert_ne!(run.code, 0, "{}", both(&run));
    let text = both(&run);
    for line in [
        "Pod Security admission in kube-system admits `privileged` pods",
        "the namespace enforces `baseline`; tetragon: privileged container, hostPID, hostNetwork, hostPath (BPF, /proc)",
        "kubectl label namespace kube-system pod-security.kubernetes.io/enforce=privileged --overwrite",
        "Pod Security admission in kovenant admits `privileged` pods",
        "the namespace enforces `restricted`; install relabels it privileged (prometheus-node-exporter: hostNetwork, hostPID, hostPath / (node metrics); kovenant-agent: hostPID, capabilities SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, NET_ADMIN (kernel counters), hostPath /var/log/tetragon (Tetragon's export file))",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }

    drop(_undo);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{}", both(&run));
    let ns = s.get(&["namespace", "kovenant"]);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    // The real admission let node-exporter's host pods in.
    let exporters = s.names(&[
        "pods",
        "-n",
        "kovenant",
        "-l",
        "app.kubernetes.io/name=prometheus-node-exporter",
    ]);
    assert_eq!(exporters.len(), 2, "{exporters:?}");
    // A re-run finds the label right and changes nothing.
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{}", both(&run));
    let text = both(&run);
    assert!(
        text.contains("enforces `privileged`; install labels it privileged"),
        "{text}"
    );
}
