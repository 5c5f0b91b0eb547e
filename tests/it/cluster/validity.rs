//! What install creates is valid where it counts: every object of every release is accepted by
//! the real API server with strict field validation, and every pod can start: its init
//! containers end, and every Secret, ConfigMap (with the keys it names) and ServiceAccount it
//! refers to exists.
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::lifecycle::assert_all_ready;
use super::{HelmMajor, Session};

/// `kubectl apply --server-side --dry-run=server --validate=strict` of a manifest.
fn strict_dry_run(s: &Session, manifest: &str) -> std::process::Output {
    let mut child = Command::new(&s.kubectl)
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=strict-validation-test",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("write manifest");
    child.wait_with_output().expect("kubectl output")
}

/// Every reference of a pod that must resolve for its containers to start.
fn missing_references(s: &Session, ns: &str, pod: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let mut need = |kind: &str, name: &str, key: Option<&str>, optional: bool| {
        if optional || name.is_empty() {
            return;
        }
        let found = s.kubectl_run(&["get", kind, "-n", ns, name, "-o", "json"]);
        if !found.status.success() {
            missing.push(format!("{kind} {name}"));
            return;
        }
        if let Some(key) = key {
            let v: Value = serde_json::from_slice(&found.stdout).expect("JSON");
            if v["data"].get(key).is_none() && v["binaryData"].get(key).is_none() {
                missing.push(format!("{kind} {name} key {key}"));
            }
        }
    };
    let spec = &pod["spec"];
    let sa = spec["serviceAccountName"].as_str().unwrap_or("default");
    need("serviceaccount", sa, None, false);
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let opt = |x: &Value| x["optional"].as_bool().unwrap_or(false);
        if let Some(name) = v["secret"]["secretName"].as_str() {
            need("secret", name, None, opt(&v["secret"]));
        }
        if let Some(name) = v["configMap"]["name"].as_str() {
            need("configmap", name, None, opt(&v["configMap"]));
        }
        for src in v["projected"]["sources"].as_array().into_iter().flatten() {
            if let Some(name) = src["secret"]["name"].as_str() {
                need("secret", name, None, opt(&src["secret"]));
            }
            if let Some(name) = src["configMap"]["name"].as_str() {
                need("configmap", name, None, opt(&src["configMap"]));
            }
        }
    }
    let containers = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        for e in c["env"].as_array().into_iter().flatten() {
            let from = &e["valueFrom"];
            for (kind, field) in [("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")] {
                if let Some(name) = from[field]["name"].as_str() {
                    let optional = from[field]["optional"].as_bool().unwrap_or(false);
                    need(kind, name, from[field]["key"].as_str(), optional);
                }
            }
        }
        for e in c["envFrom"].as_array().into_iter().flatten() {
            for (kind, field) in [("secret", "secretRef"), ("configmap", "configMapRef")] {
                if let Some(name) = e[field]["name"].as_str() {
                    let optional = e[field]["optional"].as_bool().unwrap_or(false);
                    need(kind, name, None, optional);
                }
            }
        }
    }
    missing
}

#[test]
fn every_installed_object_passes_strict_validation_and_every_pod_can_start() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");

    for (release, _, _) in s.releases() {
        let (ns, name) = release.split_once('/').expect("ns/name");
        let out = s.helm(&["get", "manifest", name, "-n", ns]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(manifest.contains("kind:"), "{release}: empty manifest");
        let check = strict_dry_run(&s, &manifest);
        assert!(
            check.status.success(),
            "{release} is refused with strict field validation:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let warnings = String::from_utf8_lossy(&check.stderr);
        assert!(
            !warnings.contains("unknown field") && !warnings.contains("duplicate field"),
            "{release}: {warnings}"
        );
    }

    assert_all_ready(&s);
    let mut checked = 0;
    for (ns, selector) in [
        ("kovenant", None),
        ("kube-system", Some("app.kubernetes.io/instance=tetragon")),
    ] {
        let mut args = vec!["pods", "-n", ns];
        if let Some(sel) = selector {
            args.extend_from_slice(&["-l", sel]);
        }
        for pod in s.get(&args)["items"].as_array().into_iter().flatten() {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let missing = missing_references(&s, ns, pod);
            assert!(
                missing.is_empty(),
                "pod {ns}/{name} cannot start: {missing:?}"
            );
            let initialized = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Initialized" && c["status"] == "True");
            assert!(
                initialized,
                "pod {ns}/{name}: its init containers never end"
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} pods checked");
}
