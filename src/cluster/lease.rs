//! One run at a time: a `coordination.k8s.io` Lease per namespace a run writes into, held and
//! renewed for the whole run as controllers hold their leader-election leases. The holder is named
//! (user, host, pid, command) with the time it took the lease; a run that dies stops renewing, and
//! its lease expires by itself after [`DURATION`]. `install` and `uninstall` take the leases of
//! their namespaces; `status` and `--dry-run` only read them.
//!
//! The leases live in `kube-system`, which exists on every cluster before kovenant's namespace
//! does (a first install must be exclusive too), as the control plane's own leader-election
//! leases do; each is named `kovenant-<namespace>` after the namespace it covers.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::wait::Deadline;
use crate::backend::kube::{Kube, describe};
use crate::error::{Error, Result};
use crate::ui::Printer;

/// Where the leases live.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// How long a lease lasts without renewal: how long a run that died blocks the next one.
pub const DURATION: Duration = Duration::from_secs(30);
/// How often a holder renews.
const RENEW: Duration = Duration::from_secs(10);
/// A holder that could not renew for this long stops its run: past it, another run could take
/// the lease while this one still works (client-go's renewDeadline, under the lease duration).
const RENEW_DEADLINE: Duration = Duration::from_secs(25);
/// How often a waiting run looks again.
const POLL: Duration = Duration::from_secs(1);
/// How long one call to the API server may take here.
const CALL: Duration = Duration::from_secs(5);

/// The lease that covers a namespace.
pub fn name(namespace: &str) -> String {
    format!("kovenant-{namespace}")
}

/// How a run takes its leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Wait for a live holder, until the deadline.
    Wait,
    /// Refuse at once when a live run holds one (`--no-lock-wait`).
    Refuse,
    /// Take it whoever holds it (`--force-unlock`: the holder is known dead).
    Force,
}

/// Who holds a lease, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub lease: String,
    pub identity: String,
    pub since: Option<Timestamp>,
    pub renewed: Option<Timestamp>,
    pub duration: Duration,
}

impl Holder {
    fn of(lease: &Lease) -> Option<Holder> {
        let spec = lease.spec.as_ref()?;
        let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
        Some(Holder {
            lease: lease.metadata.name.clone().unwrap_or_default(),
            identity,
            since: spec.acquire_time.as_ref().map(|t| t.0),
            renewed: spec.renew_time.as_ref().map(|t| t.0),
            duration: Duration::from_secs(
                spec.lease_duration_seconds
                    .unwrap_or(30)
                    .max(1)
                    .unsigned_abs() as u64,
            ),
        })
    }

    /// Whether the holder's clock says it renewed within the lease's duration (by this
    /// machine's clock: holders on machines whose clocks disagree by more than the duration
    /// are also told apart by watching the record, see [`Watch`]).
    fn fresh(&self, now: Timestamp) -> bool {
        let Some(renewed) = self.renewed.or(self.since) else {
            return false;
        };
        let age = now.as_millisecond() - renewed.as_millisecond();
        age < self.duration.as_millis() as i64
    }

    /// `root@host pid 42 (kovenant install), since 2026-12-07 16:20:03 UTC (12s ago)`.
    pub fn describe(&self, now: Timestamp) -> String {
        match self.since {
            Some(t) => format!(
                "{}, since {} ({} ago)",
                self.identity,
                t.strftime("%Y-%m-%d %H:%M:%S UTC"),
                ago(now, t)
            ),
            None => self.identity.clone(),
        }
    }
}

fn ago(now: Timestamp, then: Timestamp) -> String {
    let s = (now.as_second() - then.as_second()).max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The live holder of the lease covering `namespace`, if any (read only: `status`, `--dry-run`).
pub async fn holder(kube: &Kube, namespace: &str) -> Result<Option<Holder>> {
    let api: Api<Lease> = Api::namespaced(kube.client.clone(), LEASE_NAMESPACE);
    let lease = call(api.get_opt(&name(namespace))).await.map_err(|e| {
        Error::step(
            format!("read Lease {LEASE_NAMESPACE}/{}", name(namespace)),
            e,
        )
    })?;
    Ok(lease
        .as_ref()
        .and_then(Holder::of)
        .filter(|h| h.fresh(Timestamp::now())))
}

/// One API call, bounded by [`CALL`].
async fn call<T>(
    fut: impl std::future::Future<Output = std::result::Result<T, kube::Error>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(CALL, fut).await {
        Ok(r) => r.map_err(|e| describe(&e)),
        Err(_) => Err(format!(
            "the API server did not answer within {}s",
            CALL.as_secs()
        )),
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// What this process writes as holder: user, host, pid and command.
pub fn identity(command: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!(
        "{}@{host} pid {} (kovenant {command})",
        user(),
        std::process::id()
    )
}

/// The name of the process's user, from /etc/passwd (its uid when not listed there).
fn user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The leases this process holds, and the task renewing them.
struct Held {
    kube: Kube,
    leases: Arc<Mutex<Vec<Lease>>>,
    renewer: tokio::task::JoinHandle<()>,
}

static HELD: Mutex<Option<Held>> = Mutex::new(None);
/// Why a held lease was lost, once it was.
static LOST: Mutex<Option<String>> = Mutex::new(None);
static LOST_NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn lost_with(why: String) {
    if let Ok(mut l) = LOST.lock()
        && l.is_none()
    {
        *l = Some(why);
    }
    LOST_NOTIFY.notify_waiters();
}

/// Resolves (as the error that stops the run) when a lease this process holds is lost: taken
/// over (`--force-unlock` by another run), deleted, or not renewed in time.
pub async fn lost() -> Error {
    loop {
        let notified = LOST_NOTIFY.notified();
        if let Some(why) = LOST.lock().ok().and_then(|l| l.clone()) {
            return Error::step("lock", why).with_hint(
                "another kovenant run may now change the same releases: let it finish, then run \
                 this command again",
            );
        }
        notified.await;
    }
}

/// Takes the lease of every namespace in `namespaces` (in name order, so two runs never wait for
/// each other), then renews them until [`release`]. Waits for a live holder until `deadline`,
/// refuses at once, or forces, as `how` says.
pub async fn acquire(
    kube: &Kube,
    namespaces: &[&str],
    command: &str,
    how: Take,
    deadline: Deadline,
    printer: &Printer,
) -> Result<()> {
    let mut sorted: Vec<&str> = namespaces.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let me = identity(command);
    let since = Timestamp::now();
    let mut taken = Vec::new();
    for ns in sorted {
        match take(kube, ns, &me, since, how, deadline, printer).await {
            Ok(lease) => taken.push(lease),
            Err(e) => {
                // What was taken goes back at once: no run should wait for a lease no one uses.
                for lease in &taken {
                    let _ = delete_own(kube, lease, &me).await;
                }
                return Err(e);
            }
        }
    }
    let leases = Arc::new(Mutex::new(taken));
    let renewer = tokio::spawn(renew(kube.clone(), leases.clone(), me));
    if let Ok(mut held) = HELD.lock() {
        *held = Some(Held {
            kube: kube.clone(),
            leases,
            renewer,
        });
    }
    Ok(())
}

/// The record a holder writes.
fn record(me: &str, since: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        acquire_time: Some(MicroTime(since)),
        renew_time: Some(MicroTime(Timestamp::now())),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// A record unchanged for longer than its duration, as this machine saw it: expired whatever
/// the holder's clock says.
struct Watch {
    version: Option<String>,
    since: Instant,
}

#[allow(clippy::too_many_arguments)]
async fn take(
    kube: &Kube,
    ns: &str,
    me: &str,
    since: Timestamp,
    how: Take,
    deadline: Deadline,
    printer: &Printer,
) -> Result<Lease> {
    let api: Api<Lease> = Api::namespaced(kube.client.clone(), LEASE_NAMESPACE);
    let lease_name = name(ns);
    let what = format!("lock on namespace {ns} (Lease {LEASE_NAMESPACE}/{lease_name})");
    let mut watch = Watch {
        version: None,
        since: Instant::now(),
    };
    let mut told: Option<String> = None;
    loop {
        let found = call(api.get_opt(&lease_name))
            .await
            .map_err(|e| Error::step(format!("read the {what}"), e))?;
        let Some(mut lease) = found else {
            let new = Lease {
                metadata: ObjectMeta {
                    name: Some(lease_name.clone()),
                    namespace: Some(LEASE_NAMESPACE.to_owned()),
                    labels: Some(
                        [(
                            crate::plan::steps::MANAGED_BY.0.to_owned(),
                            crate::plan::steps::MANAGED_BY.1.to_owned(),
                        )]
                        .into(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: Some(record(me, since, 0)),
            };
            match tokio::time::timeout(CALL, api.create(&PostParams::default(), &new)).await {
                Ok(Ok(lease)) => return Ok(lease),
                // Another run created it first: look again.
                Ok(Err(e)) if status_code(&e) == Some(409) => continue,
                Ok(Err(e)) => {
                    return Err(Error::step(format!("take the {what}"), describe(&e)));
                }
                Err(_) => {
                    return Err(Error::step(
                        format!("take the {what}"),
                        format!("the API server did not answer within {}s", CALL.as_secs()),
                    ));
                }
            }
        };
        let version = lease.metadata.resource_version.clone();
        if version != watch.version {
            watch = Watch {
                version,
                since: Instant::now(),
            };
        }
        let now = Timestamp::now();
        let holder = Holder::of(&lease);
        let live = holder
            .as_ref()
            .is_some_and(|h| h.fresh(now) && watch.since.elapsed() < h.duration);
        if let (true, Some(h)) = (live, &holder) {
            match how {
                Take::Force => printer.warn(format!(
                    "--force-unlock: taking the {what} from {}",
                    h.describe(now)
                )),
                Take::Refuse => {
                    return Err(busy(&what, h, now).with_hint(
                        "wait for that run to finish, or drop --no-lock-wait to wait for it; \
                         --force-unlock only if that run is dead (its lease expires by itself \
                         30s after it died)",
                    ));
                }
                Take::Wait => {
                    if deadline.left() < POLL {
                        return Err(busy(&what, h, now).with_hint(format!(
                            "it was still held at the end of --timeout {}s: wait for that run to \
                             finish, or give a longer --timeout; --force-unlock only if that \
                             run is dead",
                            deadline.total().as_secs()
                        )));
                    }
                    if told.as_deref() != Some(h.identity.as_str()) {
                        printer.info(format!(
                            "waiting for the {what}, held by {} (at most {}s more; Ctrl-C \
                             stops; --force-unlock if that run is dead)",
                            h.describe(now),
                            deadline.left().as_secs()
                        ));
                        told = Some(h.identity.clone());
                    }
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
        }
        let transitions = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0)
            + 1;
        lease.spec = Some(record(me, since, transitions));
        match tokio::time::timeout(
            CALL,
            api.replace(&lease_name, &PostParams::default(), &lease),
        )
        .await
        {
            Ok(Ok(lease)) => {
                if let (false, Some(h)) = (live, &holder) {
                    printer.debug(format!(
                        "took the {what}: the lease of {} had expired",
                        h.describe(now)
                    ));
                }
                return Ok(lease);
            }
            // Someone wrote it since we read it (a holder renewing, a run taking it): again.
            Ok(Err(e)) if status_code(&e) == Some(409) => continue,
            Ok(Err(e)) => return Err(Error::step(format!("take the {what}"), describe(&e))),
            Err(_) => {
                return Err(Error::step(
                    format!("take the {what}"),
                    format!("the API server did not answer within {}s", CALL.as_secs()),
                ));
            }
        }
    }
}

fn busy(what: &str, h: &Holder, now: Timestamp) -> Error {
    Error::step(
        format!("the {what}"),
        format!("another kovenant run holds it: {}", h.describe(now)),
    )
}

/// Whether `lease` is still this run's (same holder, same start).
fn ours(lease: &Lease, me: &str, mine: &Lease) -> bool {
    let spec = |l: &Lease| l.spec.clone().unwrap_or_default();
    spec(lease).holder_identity.as_deref() == Some(me)
        && spec(lease).acquire_time == spec(mine).acquire_time
}

/// Renews every held lease each [`RENEW`]; reports a lease lost when another run took it, it
/// was deleted, or it could not be renewed for [`RENEW_DEADLINE`].
async fn renew(kube: Kube, leases: Arc<Mutex<Vec<Lease>>>, me: String) {
    let api: Api<Lease> = Api::namespaced(kube.client.clone(), LEASE_NAMESPACE);
    let count = leases.lock().map(|l| l.len()).unwrap_or(0);
    let mut renewed = vec![Instant::now(); count];
    loop {
        let all_ok = renewed.iter().all(|r| r.elapsed() < RENEW * 2);
        tokio::time::sleep(if all_ok { RENEW } else { POLL * 2 }).await;
        for (i, last) in renewed.iter_mut().enumerate() {
            let Some(mut lease) = leases.lock().ok().and_then(|l| l.get(i).cloned()) else {
                continue;
            };
            let lease_name = lease.metadata.name.clone().unwrap_or_default();
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            let out = tokio::time::timeout(
                CALL,
                api.replace(&lease_name, &PostParams::default(), &lease),
            )
            .await;
            match out {
                Ok(Ok(new)) => {
                    if let Ok(mut l) = leases.lock()
                        && let Some(slot) = l.get_mut(i)
                    {
                        *slot = new;
                    }
                    *last = Instant::now();
                }
                Ok(Err(e)) if matches!(status_code(&e), Some(404 | 409)) => {
                    let now = call(api.get_opt(&lease_name)).await;
                    match now {
                        Ok(Some(current)) if ours(&current, &me, &lease) => {
                            if let Ok(mut l) = leases.lock()
                                && let Some(slot) = l.get_mut(i)
                            {
                                *slot = current;
                            }
                        }
                        Ok(Some(current)) => {
                            let by = Holder::of(&current)
                                .map(|h| h.describe(Timestamp::now()))
                                .unwrap_or_else(|| "no one".into());
                            return lost_with(format!(
                                "Lease {LEASE_NAMESPACE}/{lease_name} was taken over by {by}"
                            ));
                        }
                        Ok(None) => {
                            return lost_with(format!(
                                "Lease {LEASE_NAMESPACE}/{lease_name} was deleted while this \
                                 run held it"
                            ));
                        }
                        Err(_) => {}
                    }
                }
                _ => {}
            }
            if last.elapsed() >= RENEW_DEADLINE {
                return lost_with(format!(
                    "could not renew Lease {LEASE_NAMESPACE}/{lease_name} for {}s: the API \
                     server {} does not answer, and another run may take the lock",
                    last.elapsed().as_secs(),
                    kube.server
                ));
            }
        }
    }
}

/// Deletes a lease this run holds, unless someone else holds it now.
async fn delete_own(kube: &Kube, mine: &Lease, me: &str) -> std::result::Result<(), String> {
    let api: Api<Lease> = Api::namespaced(kube.client.clone(), LEASE_NAMESPACE);
    let lease_name = mine.metadata.name.clone().unwrap_or_default();
    let Some(current) = call(api.get_opt(&lease_name)).await? else {
        return Ok(());
    };
    if !ours(&current, me, mine) {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: current.metadata.uid.clone(),
            resource_version: current.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    call(api.delete(&lease_name, &params)).await.map(drop)
}

/// Lets go of every lease this process holds: stops renewing and deletes them (a lease that
/// cannot be deleted, the API server gone, expires by itself). Called once the run's helm
/// processes are gone.
pub async fn release() {
    let held = HELD.lock().ok().and_then(|mut h| h.take());
    let Some(held) = held else { return };
    held.renewer.abort();
    let _ = held.renewer.await;
    let leases = held.leases.lock().map(|l| l.clone()).unwrap_or_default();
    let me_of = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default()
    };
    let deletes = leases.iter().map(|l| {
        let me = me_of(l);
        let kube = held.kube.clone();
        async move { delete_own(&kube, l, &me).await }
    });
    // A lease that cannot be deleted now (the API server gone) expires by itself.
    let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(deletes)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(renewed_secs_ago: i64) -> Holder {
        let now = Timestamp::now();
        let t = Timestamp::from_second(now.as_second() - renewed_secs_ago).unwrap();
        Holder {
            lease: "kovenant-kovenant".into(),
            identity: "ann@laptop pid 42 (kovenant install)".into(),
            since: Some(t),
            renewed: Some(t),
            duration: DURATION,
        }
    }

    #[test]
    fn a_lease_renewed_within_its_duration_is_live_and_one_older_is_not() {
        let now = Timestamp::now();
        assert!(holder(5).fresh(now));
        assert!(holder(29).fresh(now));
        assert!(!holder(31).fresh(now));
        assert!(!holder(3600).fresh(now));
    }

    #[test]
    fn a_holder_is_named_with_its_start_and_age() {
        let h = holder(75);
        let now = h.since.unwrap().checked_add(jiff_secs(75)).unwrap();
        let text = h.describe(now);
        assert!(
            text.starts_with("ann@laptop pid 42 (kovenant install), since "),
            "{text}"
        );
        assert!(text.ends_with(" UTC (75s ago)"), "{text}");
    }

    fn jiff_secs(s: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(s)
    }

    #[test]
    fn the_lease_of_a_namespace_is_named_after_it() {
        assert_eq!(name("kovenant"), "kovenant-kovenant");
        assert_eq!(name("kube-system"), "kovenant-kube-system");
    }
}
