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
#[derive(Clone)]
pub struct Helm {
    exe: PathBuf,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    /// When each helm process ran, to tell helm's time from kovenant's own (`--verbose`).
    spans: Arc<Mutex<Vec<(Instant, Instant)>>>,
    /// helm's major version, asked once: helm 3 and 4 differ in a few flags.
    major: Arc<tokio::sync::OnceCell<u32>>,
    /// When the command's `--timeout` ends (asked at each start: a prompt moves it): a helm
    /// still running then is stopped.
    deadline: Arc<Mutex<Option<DeadlineFn>>>,
}

type DeadlineFn = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How much of the time left helm's own `--timeout` leaves unused. A helm whose wait times out
/// still records its release as failed and exits; doing that before the command's deadline
/// stops it keeps helm's own words (`context deadline exceeded`) and a release that is failed,
/// not left pending. The SIGTERM at the deadline is then only for a helm that hangs outside its
/// own timeout (an API server that stopped answering).
const RECORD: Duration = Duration::from_secs(2);

/// helm's `--timeout` for a wait that must end within `left`: whole seconds, at least 1.
fn own_timeout(left: Duration) -> String {
    format!("{}s", left.saturating_sub(RECORD).as_secs().max(1))
}

/// What a helm run gave: its exit code (-1 when a signal ended it), both streams, and whether
/// the deadline stopped it.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    stopped: Option<children::Stopped>,
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

/// What `helm plugin list` says of the diff plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plugin {
    Present,
    /// Not listed; `helm_said` is helm's stderr (empty when it said nothing).
    Absent {
        helm_said: String,
    },
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
            deadline: Arc::default(),
        }
    }

    /// Every helm started from now on (by this value or a clone) is stopped at the instant
    /// `at` gives when it starts: SIGTERM, then SIGKILL after [`children::KILL_GRACE`].
    pub fn stop_at(&self, at: impl Fn() -> Instant + Send + Sync + 'static) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Arc::new(at));
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

    /// Runs helm; what it gave, or an error when it cannot be started. A caller that stops
    /// waiting makes it SIGTERM helm (see [`children`]), which helm answers by recording the
    /// release as failed.
    async fn run(&self, args: &[OsString]) -> Result<Ran> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args);
        if let Some(k) = &self.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        if let Some(c) = &self.context {
            cmd.env("HELM_KUBECONTEXT", c);
        }
        let deadline = self
            .deadline
            .lock()
            .ok()
            .and_then(|d| d.as_ref().map(|at| at()));
        let started = Instant::now();
        let out = children::output(cmd, self.label(args), deadline).await;
        if let Ok(mut spans) = self.spans.lock() {
            spans.push((started, Instant::now()));
        }
        // helm's arguments hold file names and flags, never a secret (values go in files).
        crate::ui::trace::line(format!(
            "{} -> {} in {}",
            self.display(args),
            match &out {
                Ok(f) => f
                    .output
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
        let mut stderr = String::from_utf8_lossy(&out.output.stderr).into_owned();
        if let Some(signal) = out.output.status.signal()
            && out.stopped.is_none()
        {
            stderr.push_str(&format!("\nhelm was killed by signal {signal}"));
        }
        Ok(Ran {
            code: out.output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.output.stdout).into_owned(),
            stderr,
            stopped: out.stopped,
        })
    }

    /// What a helm process does, for the messages that wait for it: `helm upgrade --install
    /// grafana`, without flags and file names.
    fn label(&self, args: &[OsString]) -> String {
        let mut out = String::from("helm");
        for a in args.iter().take(4) {
            let a = a.to_string_lossy();
            if a.starts_with('-') && a != "--install" || a.contains('/') {
                break;
            }
            out.push(' ');
            out.push_str(&a);
        }
        out
    }

    /// Runs helm and fails with its own message on a non-zero exit.
    async fn run_ok(&self, args: Vec<OsString>) -> Result<String> {
        let ran = self.run(&args).await?;
        if ran.code == 0 && ran.stopped.is_none() {
            return Ok(ran.stdout);
        }
        Err(self.failure(&args, &ran))
    }

    /// helm's own words for a failure: the lines of either stream that carry the cause (helm
    /// puts some causes on stdout: `helm repo update` says `no space left on device` there), and
    /// what the deadline did.
    fn failure(&self, args: &[OsString], ran: &Ran) -> Error {
        let mut lines = cause_lines(&ran.stdout);
        let errs: Vec<&str> = ran
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        for l in &errs[errs.len().saturating_sub(5)..] {
            if !lines.iter().any(|x| x == l) {
                lines.push((*l).to_string());
            }
        }
        let err = Error::step(self.display(args), lines.join("\n"));
        let Some(how) = ran.stopped else {
            return err;
        };
        let what = match how {
            children::Stopped::Terminated => "stopped with SIGTERM".to_string(),
            children::Stopped::Killed => format!(
                "stopped with SIGTERM, then SIGKILL {}s later",
                children::KILL_GRACE.as_secs()
            ),
        };
        let Error::Step { step, message, .. } = err else {
            return err;
        };
        let message = if message.is_empty() {
            format!("still running at the end of --timeout: {what}")
        } else {
            format!("still running at the end of --timeout: {what}; its last words:\n{message}")
        };
        Error::step(step, message).with_hint(
            "a release helm could not record is left pending: the next kovenant install unlocks \
             it; if the API server was slow, check it (kubectl get --raw /readyz) or give a \
             longer --timeout",
        )
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

    /// Whether `helm plugin list` shows the diff plugin; when it does not, what helm said on
    /// stderr meanwhile (helm lists the plugins it could load and warns of the others, exiting
    /// 0: a plugin folder or cache it cannot read is a reason, not a missing plugin).
    pub async fn diff_plugin(&self) -> Result<Plugin> {
        let a = args(&["plugin", "list"]);
        let ran = self.run(&a).await?;
        if ran.code != 0 || ran.stopped.is_some() {
            return Err(self.failure(&a, &ran));
        }
        let listed = ran
            .stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some("diff"));
        if listed {
            return Ok(Plugin::Present);
        }
        let mut said: Vec<&str> = Vec::new();
        for l in ran.stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
            // helm 4 warns once per look at each plugin: twice for one cause.
            if !said.contains(&l) {
                said.push(l);
            }
        }
        Ok(Plugin::Absent {
            helm_said: said.join("\n"),
        })
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
            Ran {
                code: 0,
                stopped: None,
                ..
            } => Ok(Diff::Unchanged),
            Ran {
                code: 2,
                stopped: None,
                stdout,
                ..
            } => Ok(Diff::Changed(stdout)),
            ran => Err(self.failure(&a, &ran)),
        }
    }

    /// `helm upgrade --install --wait`, to end within `timeout` ([`own_timeout`]).
    pub async fn upgrade(&self, c: &ChartArgs<'_>, timeout: Duration) -> Result<()> {
        let mut a = Self::chart_args(&["upgrade", "--install"], c);
        let t = own_timeout(timeout);
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
        let t = own_timeout(timeout);
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
            Ran {
                code: 0,
                stopped: None,
                ..
            } => Ok(true),
            Ran {
                stopped: None,
                stderr,
                ..
            } if stderr.contains("not found") => Ok(false),
            ran => Err(self.failure(&a, &ran)),
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

/// The lines of helm's stdout that say why it failed: those naming an error, with the indented
/// lines that continue them (`...Unable to get an update from the "x" chart repository:` then
/// `\tfailed to ...: no space left on device`). Progress lines are left out.
fn cause_lines(stdout: &str) -> Vec<String> {
    const MARKS: [&str; 8] = [
        "error",
        "unable",
        "fail",
        "denied",
        "no space",
        "cannot",
        "invalid",
        "read-only",
    ];
    let mut out = Vec::new();
    let mut inside = false;
    for line in stdout.lines() {
        let lower = line.to_ascii_lowercase();
        let continues = inside && line.starts_with([' ', '\t']) && !line.trim().is_empty();
        if MARKS.iter().any(|m| lower.contains(m)) || continues {
            out.push(line.trim_end().to_string());
            inside = true;
        } else {
            inside = false;
        }
    }
    out
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helms_own_timeout_ends_before_the_deadline_to_record_its_release() {
        assert_eq!(own_timeout(Duration::from_millis(20_900)), "18s");
        assert_eq!(own_timeout(Duration::from_secs(600)), "598s");
        assert_eq!(own_timeout(Duration::from_millis(2_500)), "1s");
        assert_eq!(own_timeout(Duration::ZERO), "1s");
    }

    #[test]
    fn the_cause_helm_puts_on_stdout_is_kept_and_progress_is_not() {
        // `helm repo update` on a full disk (helm 4): the cause is on stdout only.
        let stdout = "Hang tight while we grab the latest from your chart repositories...\n\
            ...Unable to get an update from the \"kovenant-cilium\" chart repository (http://127.0.0.1:1):\n\
            \tfailed to write index: write /c/repository/kovenant-cilium-index.yaml: no space left on device\n\
            ...Successfully got an update from the \"kovenant-grafana-community\" chart repository\n\
            Update Complete. ⎈Happy Helming!⎈\n";
        assert_eq!(
            cause_lines(stdout),
            vec![
                "...Unable to get an update from the \"kovenant-cilium\" chart repository (http://127.0.0.1:1):",
                "\tfailed to write index: write /c/repository/kovenant-cilium-index.yaml: no space left on device",
            ]
        );
        assert!(cause_lines("Release \"x\" does not exist. Installing it now.\n").is_empty());
    }

    #[test]
    fn a_failure_shows_stdouts_cause_then_stderr() {
        let helm = Helm::new(Path::new("helm"), None, None);
        let ran = Ran {
            code: 1,
            stdout: "...Unable to get an update from \"r\":\n\tno space left on device\n".into(),
            stderr: "Error: failed to update the following repositories: [r]\n".into(),
            stopped: None,
        };
        let e = helm
            .failure(&args(&["repo", "update", "r"]), &ran)
            .to_string();
        assert_eq!(
            e,
            "helm repo update r: ...Unable to get an update from \"r\":\n\tno space left on device\n\
             Error: failed to update the following repositories: [r]"
        );
    }

    #[test]
    fn what_a_helm_does_is_named_without_its_files_and_flags() {
        let helm = Helm::new(Path::new("helm"), None, None);
        let a = args(&[
            "upgrade",
            "--install",
            "grafana",
            "kovenant-grafana-community/grafana",
            "-n",
            "kovenant",
        ]);
        assert_eq!(helm.label(&a), "helm upgrade --install grafana");
        assert_eq!(helm.label(&args(&["list", "-n", "kovenant"])), "helm list");
    }
}
