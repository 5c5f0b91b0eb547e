//! helm as a subprocess: every call kovenant makes, with helm's own message in any error.
pub mod children;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::Command;

use crate::error::{Error, Result};

/// The helm executable and the cluster it talks to (passed through helm's own environment, so that
/// plugins such as helm-diff see the same context).
#[derive(Debug, Clone)]
pub struct Helm {
    exe: PathBuf,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    /// When each helm process ran, to tell helm's time from kovenant's own (`--verbose`).
    spans: Arc<Mutex<Vec<(Instant, Instant)>>>,
    /// helm's major version, asked once: helm 3 and 4 differ in a few flags.
    major: Arc<tokio::sync::OnceCell<u32>>,
}

/// One row of `helm list -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    /// helm prints the revision as a string.
    pub revision: String,
    pub status: String,
    /// `<chart name>-<version>`.
    pub chart: String,
    #[serde(default)]
    pub app_version: String,
}

/// What `helm diff upgrade --detailed-exitcode` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    Unchanged,
    Changed(String),
}

/// A chart and how helm finds it.
#[derive(Debug, Clone)]
pub struct ChartArgs<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    /// `repo/chart` or a local directory.
    pub chart: &'a str,
    pub version: Option<&'a str>,
    pub values: &'a Path,
}

impl Helm {
    pub fn new(exe: &Path, kubeconfig: Option<&Path>, context: Option<&str>) -> Self {
        Helm {
            exe: exe.to_path_buf(),
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: context.map(str::to_owned),
            spans: Arc::default(),
            major: Arc::default(),
        }
    }

    /// How long at least one helm process was running (the union of their spans).
    pub fn busy(&self) -> Duration {
        let mut spans = self.spans.lock().map(|s| s.clone()).unwrap_or_default();
        spans.sort();
        let (mut total, mut end) = (Duration::ZERO, None::<Instant>);
        for (s, e) in spans {
            let s = end.map_or(s, |end| s.max(end));
            if e > s {
                total += e - s;
                end = Some(e);
            }
        }
        total
    }

    /// The command line as shown to a user (values come from files, so nothing secret is in it).
    pub fn display(&self, args: &[OsString]) -> String {
        let mut out = String::from("helm");
        for a in args {
            out.push(' ');
            out.push_str(&a.to_string_lossy());
        }
        out
    }

    /// Runs helm; `Ok((exit code, stdout, stderr))`, or an error when it cannot be started. A
    /// caller that stops waiting makes it SIGTERM helm (see [`children`]), which helm answers by
    /// recording the release as failed.
    async fn run(&self, args: &[OsString]) -> Result<(i32, String, String)> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args);
        if let Some(k) = &self.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        if let Some(c) = &self.context {
            cmd.env("HELM_KUBECONTEXT", c);
        }
        let started = Instant::now();
        let out = children::output(cmd).await;
        if let Ok(mut spans) = self.spans.lock() {
            spans.push((started, Instant::now()));
        }
        // helm's arguments hold file names and flags, never a secret (values go in files).
        crate::ui::trace::line(format!(
            "{} -> {} in {}",
            self.display(args),
            match &out {
                Ok(o) => o
                    .status
                    .code()
                    .map_or("killed".to_string(), |c| format!("exit {c}")),
                Err(e) => format!("not started ({e})"),
            },
            crate::ui::trace::took(started.elapsed())
        ));
        let out = out.map_err(|e| {
            let hint = "install helm 3 (https://helm.sh/docs/intro/install/) or set KOVENANT_HELM";
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{}` was not found", self.exe.display())
            } else {
                format!("cannot run `{}`: {e}", self.exe.display())
            };
            Error::step("helm", message).with_hint(hint)
        })?;
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Some(signal) = out.status.signal() {
            stderr.push_str(&format!("\nhelm was killed by signal {signal}"));
        }
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        ))
    }

    /// Runs helm and fails with its own message on a non-zero exit.
    async fn run_ok(&self, args: Vec<OsString>) -> Result<String> {
        let (code, stdout, stderr) = self.run(&args).await?;
        if code == 0 {
            return Ok(stdout);
        }
        Err(self.failure(&args, &stderr))
    }

    fn failure(&self, args: &[OsString], stderr: &str) -> Error {
        let words: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = words[words.len().saturating_sub(5)..].join("\n");
        Error::step(self.display(args), tail)
    }

    /// `helm version --short`, e.g. `v3.19.0+gabc`; also remembers the major version.
    pub async fn version(&self) -> Result<String> {
        let out = self.run_ok(args(&["version", "--short"])).await?;
        let v = out.trim().to_string();
        let _ = self.major.set(major_of(&v));
        Ok(v)
    }

    /// helm's major version (3 or 4), from `helm version --short`, asked once.
    pub async fn major(&self) -> Result<u32> {
        self.major
            .get_or_try_init(|| async { self.version().await.map(|v| major_of(&v)) })
            .await
            .copied()
    }

    /// Whether `helm plugin list` shows the diff plugin.
    pub async fn has_diff_plugin(&self) -> Result<bool> {
        let out = self.run_ok(args(&["plugin", "list"])).await?;
        Ok(out
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some("diff")))
    }

    /// `helm env`: where helm keeps its repositories and their cached indexes, and the rest of
    /// its settings, as NAME -> value.
    pub async fn env(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let out = self.run_ok(args(&["env"])).await?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect())
    }

    pub async fn repo_add(&self, name: &str, url: &str) -> Result<()> {
        self.run_ok(args(&["repo", "add", "--force-update", name, url]))
            .await
            .map(drop)
    }

    pub async fn repo_update(&self, names: &[&str]) -> Result<()> {
        let mut a = args(&["repo", "update"]);
        a.extend(names.iter().map(OsString::from));
        self.run_ok(a).await.map(drop)
    }

    /// Every release (any status) in a namespace.
    pub async fn list(&self, namespace: &str) -> Result<Vec<Release>> {
        let out = self
            .run_ok(args(&[
                "list",
                "-n",
                namespace,
                "-o",
                "json",
                // Every state a release can be left in. helm 4 has no `--all` (it lists every
                // state by default); helm 3 lists only deployed and failed by default. These
                // flags mean the same in both.
                "--deployed",
                "--failed",
                "--pending",
                "--uninstalling",
            ]))
            .await?;
        serde_json::from_str(&out).map_err(|e| {
            Error::step(
                format!("helm list -n {namespace}"),
                format!("unexpected output: {e}"),
            )
        })
    }

    /// `helm get values RELEASE -o json`: the values the release's last revision was given (the
    /// user-supplied ones, as kovenant passed them), read from helm's release record.
    pub async fn values(&self, release: &str, namespace: &str) -> Result<serde_json::Value> {
        let out = self
            .run_ok(args(&[
                "get", "values", release, "-n", namespace, "-o", "json",
            ]))
            .await?;
        serde_json::from_str(&out).map_err(|e| {
            Error::step(
                format!("helm get values {release} -n {namespace}"),
                format!("unexpected output: {e}"),
            )
        })
    }

    fn chart_args(verb: &[&str], c: &ChartArgs<'_>) -> Vec<OsString> {
        let mut a = args(verb);
        a.extend(args(&[c.release, c.chart, "-n", c.namespace]));
        if let Some(v) = c.version {
            a.extend(args(&["--version", v]));
        }
        a.push("-f".into());
        a.push(c.values.as_os_str().to_owned());
        a
    }

    /// `helm diff upgrade --install`: exit 0 means no change, 2 means changes.
    pub async fn diff(&self, c: &ChartArgs<'_>) -> Result<Diff> {
        let mut a = Self::chart_args(&["diff", "upgrade"], c);
        a.extend(args(&[
            "--install",
            "--detailed-exitcode",
            "--suppress-secrets",
            "--normalize-manifests",
        ]));
        // helm-diff renders with `helm template --validate --dry-run=client`, a pair of flags
        // helm 4 refuses together. With helm 4, `--dry-run=server` alone renders against the
        // cluster (its version and API versions, so a chart's kubeVersion and Capabilities
        // checks see what upgrade sees); helm 3's template does that only with --validate.
        if self.major().await? >= 4 {
            a.extend(args(&["--disable-validation", "--dry-run=server"]));
        }
        match self.run(&a).await? {
            (0, _, _) => Ok(Diff::Unchanged),
            (2, out, _) => Ok(Diff::Changed(out)),
            (_, _, stderr) => Err(self.failure(&a, &stderr)),
        }
    }

    /// `helm upgrade --install --wait`.
    pub async fn upgrade(&self, c: &ChartArgs<'_>, timeout: Duration) -> Result<()> {
        let mut a = Self::chart_args(&["upgrade", "--install"], c);
        let t = format!("{}s", timeout.as_secs().max(1));
        a.extend(args(&["--create-namespace", "--wait", "--timeout", &t]));
        self.run_ok(a).await.map(drop)
    }

    /// `helm rollback RELEASE -n NS` to the previous revision, without waiting for its resources
    /// (the default of helm 3 and 4 alike; helm 4 deprecates `--wait=false`). Used only to unlock
    /// a release a dead helm left pending.
    pub async fn rollback(&self, release: &str, namespace: &str) -> Result<()> {
        self.run_ok(args(&["rollback", release, "-n", namespace]))
            .await
            .map(drop)
    }

    /// `helm uninstall`; `Ok(false)` when the release was already absent.
    pub async fn uninstall(
        &self,
        release: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<bool> {
        let t = format!("{}s", timeout.as_secs().max(1));
        let a = args(&[
            "uninstall",
            release,
            "-n",
            namespace,
            "--wait",
            "--timeout",
            &t,
        ]);
        match self.run(&a).await? {
            (0, _, _) => Ok(true),
            (_, _, stderr) if stderr.contains("not found") => Ok(false),
            (_, _, stderr) => Err(self.failure(&a, &stderr)),
        }
    }
}

/// The major version in `v3.19.0+gabc`; 3 when it cannot be read.
fn major_of(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3)
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}
