//! A test cluster: the fake API server, the fake helm with its own state, a kubeconfig and a .env,
//! and the kovenant binary pointed at them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::fake_api::FakeApi;
use crate::fake_helm::{self, Call};
use crate::support::kovenant;

pub struct Stack {
    pub api: FakeApi,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub env_file: PathBuf,
    pub helm_log: PathBuf,
    pub helm_state: PathBuf,
    /// Extra environment for kovenant (and so for the fake helm), e.g. FAKE_HELM_FAIL.
    pub env: Vec<(String, String)>,
}

impl Stack {
    /// A one-node cluster with a default StorageClass.
    pub fn new() -> Stack {
        let api = FakeApi::start();
        api.create("/api/v1/nodes", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"nodeInfo": {"kernelVersion": "6.8.0-45-generic", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
            "kubeProxyVersion": "", "kubeletVersion": "v1.31.4", "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""}}}));
        api.create("/apis/storage.k8s.io/v1/storageclasses", json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"}));
        api.take_writes();
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = api.kubeconfig(dir.path());
        let env_file = dir.path().join(".env");
        std::fs::write(&env_file, "").expect("write .env");
        let helm_log = dir.path().join("helm.log");
        let helm_state = dir.path().join("helm-state");
        Stack {
            api,
            dir,
            kubeconfig,
            env_file,
            helm_log,
            helm_state,
            env: Vec::new(),
        }
    }

    /// kovenant with the kubeconfig, the .env, the fake helm; stdin is not a terminal.
    pub fn kovenant(&self, args: &[&str]) -> Command {
        let mut cmd = kovenant();
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            fake_helm::dir().display()
        );
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("PATH", path)
            .env("KOVENANT_HELM", fake_helm::dir().join("helm"))
            .env("FAKE_HELM_LOG", &self.helm_log)
            .env("FAKE_HELM_STATE", &self.helm_state)
            .env("FAKE_HELM_API", &self.api.url)
            .env_remove("KUBECONFIG")
            .env_remove("FAKE_HELM_FAIL")
            .env_remove("FAKE_HELM_NO_DIFF")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.kovenant(args).output().expect("run kovenant");
        Run::from(out)
    }

    pub fn install(&self) -> Run {
        self.run(&[
            "install",
            "--yes",
            "--skip-image",
            "--env-file",
            &self.env_file.to_string_lossy(),
        ])
    }

    pub fn helm_calls(&self) -> Vec<Call> {
        fake_helm::calls(&self.helm_log)
    }

    /// Forgets the recorded helm calls and API writes.
    pub fn reset_records(&self) {
        let _ = std::fs::remove_file(&self.helm_log);
        self.api.take_writes();
    }
}

/// A finished run of kovenant.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
