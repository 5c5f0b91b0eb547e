//! Waiting: for Tetragon's CRD to be established, and for releases to become ready, failing fast
//! on pods that will not recover by waiting.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;

use super::events::{FailedCreate, FailedCreates};
use super::workloads::{PodProblem, observe};
use crate::backend::kube::{Kube, describe};
use crate::error::{Error, Result};

const POLL: Duration = Duration::from_millis(500);

/// The end of a command's `--timeout`: helm's own `--timeout` and every wait get what is left,
/// helm processes still running then are stopped, and [`Deadline::bound`] ends whatever else
/// still waits (an API server that stopped answering holds a request for a minute). Time spent
/// waiting for the user's answer at a prompt ([`paused`]) does not count.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Instant,
    total: Duration,
}

/// Milliseconds the command spent waiting for the user (the confirmation prompt).
static PAUSED_MS: AtomicU64 = AtomicU64::new(0);

/// Records time spent waiting for the user: every deadline moves that much later.
pub fn paused(d: Duration) {
    PAUSED_MS.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
}

/// How long past the deadline [`Deadline::bound`] lets work that runs helm go on: a helm stopped
/// at the deadline gets SIGTERM, then SIGKILL after its grace, and its own error (helm's words)
/// is better than the bound's.
pub const HELM_OVERRUN: Duration =
    Duration::from_secs(crate::backend::helm::children::KILL_GRACE.as_secs() + 1);

impl Deadline {
    pub fn after(total: Duration) -> Deadline {
        Deadline {
            end: Instant::now() + total,
            total,
        }
    }

    /// The instant it ends.
    pub fn at(&self) -> Instant {
        self.end + Duration::from_millis(PAUSED_MS.load(Ordering::SeqCst))
    }

    /// The same deadline, but not before `floor` from now: for a step that must get the chance
    /// to finish once (status's first check under a `--timeout` shorter than a check takes).
    pub fn at_least(self, floor: Duration) -> Deadline {
        let paused = Duration::from_millis(PAUSED_MS.load(Ordering::SeqCst));
        Deadline {
            end: self.end.max(Instant::now() + floor - paused.min(floor)),
            total: self.total,
        }
    }

    /// What is left (zero once it has passed).
    pub fn left(&self) -> Duration {
        self.at().saturating_duration_since(Instant::now())
    }

    /// The whole `--timeout`.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Runs `work`, ending it once the deadline (and `overrun`) has passed; the error says
    /// that `what` did not finish in time, and why when `probe` can tell (the API server does
    /// not answer).
    pub async fn bound<T, P>(
        &self,
        what: &str,
        overrun: Duration,
        work: impl std::future::Future<Output = Result<T>>,
        probe: impl FnOnce() -> P,
    ) -> Result<T>
    where
        P: std::future::Future<Output = Option<String>>,
    {
        tokio::pin!(work);
        loop {
            let at = self.at() + overrun;
            tokio::select! {
                // Work that ends as the deadline passes (a wait that stops itself then) gives
                // its own result, which says more than the bound's.
                biased;
                out = &mut work => {
                    // A failure at the deadline (helm stopped, say): add why, when the API
                    // server is the cause.
                    return match out {
                        Err(Error::Step { step, message, hint }) if self.left().is_zero() => {
                            let cause = tokio::time::timeout(Duration::from_secs(3), probe())
                                .await
                                .ok()
                                .flatten();
                            Err(Error::Step {
                                message: match cause {
                                    // Not twice: a wait that ended itself on the API server's
                                    // error already says it.
                                    Some(c) if !message.contains(&c) => {
                                        format!("{message}\nmeanwhile: {c}")
                                    }
                                    _ => message,
                                },
                                step,
                                hint,
                            })
                        }
                        out => out,
                    };
                }
                _ = tokio::time::sleep_until(at.into()) => {
                    // A prompt may have moved the deadline while this slept.
                    if self.at() + overrun > Instant::now() {
                        continue;
                    }
                    break;
                }
            }
        }
        let mut message = format!(
            "not finished at the end of --timeout {}s",
            self.total.as_secs()
        );
        if let Ok(Some(cause)) = tokio::time::timeout(Duration::from_secs(3), probe()).await {
            message.push_str(&format!(": {cause}"));
        }
        Err(Error::step(what, message).with_hint(
            "run the same command again once the cause is fixed (install unlocks a release \
             left pending then), or give a longer --timeout",
        ))
    }
}

/// Why the API server holds a command up, if it does: it does not answer within 2 s, or
/// answers with an error. For [`Deadline::bound`]'s message.
pub async fn api_probe(kube: Kube) -> Option<String> {
    match tokio::time::timeout(Duration::from_secs(2), kube.version()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "the API server {} does not answer (no reply within 2s)",
            kube.server
        )),
    }
}

/// Waits until the CRD reports `Established=True`.
pub async fn crd_established(kube: &Kube, name: &str, timeout: Duration) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(kube.client.clone());
    let start = Instant::now();
    loop {
        let crd = api
            .get_opt(name)
            .await
            .map_err(|e| Error::step(format!("get CRD {name}"), describe(&e)))?;
        let established = crd
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::step(
                format!("wait for CRD {name}"),
                format!("not established after {}s", timeout.as_secs()),
            )
            .with_hint(
                "kubectl get pods -n <tetragon namespace>: the Tetragon operator creates it",
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the namespace exists and is being deleted (`status.phase: Terminating`).
pub async fn namespace_terminating(kube: &Kube, name: &str) -> Result<bool> {
    let api: Api<Namespace> = Api::all(kube.client.clone());
    let ns = api
        .get_opt(name)
        .await
        .map_err(|e| Error::step(format!("get namespace {name}"), describe(&e)))?;
    Ok(ns
        .and_then(|n| n.status)
        .and_then(|s| s.phase)
        .is_some_and(|p| p == "Terminating"))
}

/// Waits until the namespace no longer exists: the namespace controller has removed its content
/// and its finalizer, which takes a while on a real cluster.
pub async fn namespace_gone(kube: &Kube, name: &str, timeout: Duration) -> Result<()> {
    let api: Api<Namespace> = Api::all(kube.client.clone());
    let start = Instant::now();
    loop {
        let ns = api
            .get_opt(name)
            .await
            .map_err(|e| Error::step(format!("get namespace {name}"), describe(&e)))?;
        let Some(ns) = ns else {
            return Ok(());
        };
        if start.elapsed() > timeout {
            let phase = ns
                .status
                .and_then(|s| s.phase)
                .unwrap_or_else(|| "there".into());
            return Err(Error::step(
                format!("namespace {name}"),
                format!("still {phase} after {}s", timeout.as_secs()),
            )
            .with_hint(format!(
                "kubectl get namespace {name} -o yaml shows what it waits for (its conditions \
                 and finalizers); run the command again once it is gone"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The error for a pod that will not become ready: names it, the reason, and its last log lines.
async fn fatal(kube: &Kube, release: &str, p: &PodProblem) -> Error {
    let mut message = format!("pod {}/{} is {}", p.namespace, p.pod, p.reason);
    if !p.message.is_empty() {
        message.push_str(&format!(": {}", p.message));
    }
    // A crash-looping container is waiting to restart: what it said is in its previous run.
    let previous = p.reason == "CrashLoopBackOff";
    if let Some(log) = kube
        .pod_log_tail(&p.namespace, &p.pod, p.container.as_deref(), 10, previous)
        .await
        .filter(|l| !l.trim().is_empty())
    {
        message.push_str("\nlast log lines:");
        for line in log.lines() {
            message.push_str(&format!("\n  {line}"));
        }
    }
    Error::step(format!("release {release}"), message).with_hint(format!(
        "kubectl -n {} describe pod {}; fix the cause and run kovenant install again",
        p.namespace, p.pod
    ))
}

/// The error for pods a controller could not create: the workload and the API server's words.
fn failed_create(release: &str, ns: &str, f: &FailedCreate) -> Error {
    Error::step(
        format!("release {release}"),
        format!(
            "{} {ns}/{} cannot create its pods: {}",
            f.kind, f.name, f.message
        ),
    )
    .with_hint(format!(
        "the API server refused the pods (an admission policy or webhook, a ResourceQuota, the \
         namespace's Pod Security level): kubectl -n {ns} get events \
         --field-selector reason=FailedCreate; fix the cause and run kovenant install again"
    ))
}

/// What a failed `helm upgrade --wait` left unready, for its error message: each pod of the
/// release that is not ready, with its reason and the scheduler's or kubelet's words. Empty
/// when the release's pods cannot be listed or all are ready.
pub async fn not_ready_pods(kube: &Kube, ns: &str, release: &str) -> String {
    let Ok(seen) = observe(kube, ns, release).await else {
        return String::new();
    };
    let mut out = String::new();
    for p in seen.problems() {
        out.push_str(&format!("\n  pod {}/{} {}", p.namespace, p.pod, p.reason));
        if !p.message.is_empty() {
            out.push_str(&format!(": {}", p.message));
        }
    }
    if out.is_empty() {
        out
    } else {
        format!("\npods not ready:{out}")
    }
}

/// How long a pod that was already failing when an upgrade started is left to helm: by then helm
/// has applied the release, so a pod it replaces is of an old revision (and skipped), and one it
/// leaves as it was is this release's failure too.
const BEFORE_UPGRADE_GRACE: Duration = Duration::from_secs(20);

/// Returns (as an error) as soon as a pod of the release hits a fatal reason; never returns
/// otherwise. Run beside `helm upgrade --wait` so install does not sit out helm's timeout.
///
/// Its first look may come before helm has changed anything, when the pods failing are those of
/// the previous attempt (the very failure a re-run fixes). So a pod failing at the first look is
/// not fatal while its workload's generation is what it was then, for [`BEFORE_UPGRADE_GRACE`].
pub async fn watch_for_fatal(kube: &Kube, ns: &str, release: &str) -> Error {
    let start = Instant::now();
    let mut before: Option<HashMap<String, Option<i64>>> = None;
    let mut refusals = FailedCreates::default();
    loop {
        if let Ok(seen) = observe(kube, ns, release).await {
            if let Some(f) = refusals.next(kube, &seen).await {
                return failed_create(release, ns, &f);
            }
            let problems = seen.problems();
            let before = before.get_or_insert_with(|| {
                problems
                    .iter()
                    .map(|p| (p.uid.clone(), p.workload_generation))
                    .collect()
            });
            let from_before = |p: &PodProblem| {
                start.elapsed() < BEFORE_UPGRADE_GRACE
                    && before.get(&p.uid) == Some(&p.workload_generation)
            };
            if let Some(p) = problems.iter().find(|p| p.fatal && !from_before(p)) {
                return fatal(kube, release, p).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Waits until every workload of the release is ready, or a pod fails, or the deadline passes.
pub async fn ready(kube: &Kube, ns: &str, release: &str, deadline: Deadline) -> Result<()> {
    let mut refusals = FailedCreates::default();
    loop {
        let seen = observe(kube, ns, release)
            .await
            .map_err(|e| Error::step(format!("release {release}"), e))?;
        let waiting: Vec<String> = seen
            .workloads()
            .iter()
            .filter(|w| w.ready < w.desired)
            .map(|w| format!("{} {} {}/{} ready", w.kind, w.name, w.ready, w.desired))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let problems = seen.problems();
        if let Some(p) = problems.iter().find(|p| p.fatal) {
            return Err(fatal(kube, release, p).await);
        }
        if let Some(f) = refusals.next(kube, &seen).await {
            return Err(failed_create(release, ns, &f));
        }
        if deadline.left().is_zero() {
            let why: Vec<String> = problems
                .iter()
                .map(|p| format!("pod {} {}", p.pod, p.reason))
                .collect();
            return Err(Error::step(
                format!("release {release}"),
                format!(
                    "not ready within --timeout {}: {}{}",
                    crate::config::duration::format(deadline.total()),
                    waiting.join(", "),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join(", "))
                    }
                ),
            )
            .with_hint(format!(
                "kubectl -n {ns} get pods -l app.kubernetes.io/instance={release}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
