//! Preflight checks, reported like `linkerd check`: cluster, permissions, helm, Docker, nodes.
use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::backend::docker::AgentBinary;
use crate::backend::helm::Helm;
use crate::backend::kube::{self, Kube, describe};
use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::error::Result;
use crate::plan::image::Delivery;
use crate::plan::{names, pod_security};
use crate::ui::Printer;
use crate::ui::checks::Checklist;

/// What preflight found: the client when the cluster answered, how many checks failed, and how
/// the image reaches the cluster (when the Docker checks ran and passed).
pub struct Preflight {
    pub kube: Option<Kube>,
    pub failures: usize,
    pub delivery: Option<Delivery>,
}

pub async fn run(
    global: &GlobalArgs,
    config: &Config,
    helm: &Helm,
    check_docker: bool,
    binary: &AgentBinary,
    printer: &Printer,
) -> Preflight {
    let mut list = Checklist::new(printer);
    // helm answers from its own files while the cluster checks run (they print as they go).
    let helm_facts = async { tokio::join!(helm.version(), helm.diff_plugin()) };
    let cluster_checks = async {
        list.section("kubernetes-api");
        let kube = cluster(global, &mut list).await;
        if let Some(k) = &kube {
            permissions(k, config, &mut list).await;
            list.section("cluster-setup");
            pod_security(k, config, &mut list).await;
            storage(k, config, &mut list).await;
            kernels(k, &mut list).await;
            super::platforms::check(k, binary, &mut list).await;
            if let Some(secret) = &config.image_pull_secret {
                pull_secret(k, config, secret, &mut list).await;
            }
        }
        if let Some(url) = &config.influxdb.url {
            list.section("influxdb");
            external_influxdb(url, config, &mut list).await;
        }
        kube
    };
    let (kube, (version, diff_plugin)) = tokio::join!(cluster_checks, helm_facts);
    list.section("helm");
    tools(version, diff_plugin, &mut list);
    if let Some(k) = &kube {
        list.section("alongside");
        super::coexist::check(k, helm, config, &mut list).await;
    }
    let delivery = if check_docker {
        list.section("docker");
        // Before the question, so a debug build is caught before it is pushed to every node.
        if let Some(w) = binary.debug_warning() {
            list.warn(
                "the agent binary is a release build",
                &w,
                crate::plan::image::profile::DEBUG_HINT,
            );
        }
        super::image::preflight(config, kube.as_ref(), &mut list).await
    } else {
        None
    };
    printer.info("");
    Preflight {
        kube,
        failures: list.failures,
        delivery,
    }
}

/// The oldest Kubernetes kovenant installs onto: the agent watches `batch/v1` CronJobs (GA in
/// 1.21; 1.19 and 1.20 serve only `batch/v1beta1`).
pub const MIN_KUBERNETES: (u32, u32) = (1, 21);

async fn cluster(global: &GlobalArgs, list: &mut Checklist) -> Option<Kube> {
    let k = match kube::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await {
        Ok(k) => k,
        Err(e) => {
            list.fail("can read the kubeconfig", &e, kube::load_hint(&e));
            return None;
        }
    };
    list.ok(
        "kubeconfig context",
        &format!("{} ({})", k.context, k.server),
    );
    let wait =
        crate::ui::progress::Step::wait(list.printer(), format!("Connecting to {}", k.server));
    let version = k.version().await;
    wait.clear();
    let (major, minor) = MIN_KUBERNETES;
    match version {
        Ok((ma, mi, git)) if (ma, mi) >= MIN_KUBERNETES => {
            list.ok(
                &format!("can reach the API server; version is at least v{major}.{minor}"),
                &git,
            );
            Some(k)
        }
        Ok((_, _, git)) => {
            list.fail(
                &format!("API server version is at least v{major}.{minor}"),
                &format!(
                    "{git}: the agent watches batch/v1 CronJobs, which Kubernetes serves from 1.21"
                ),
                &format!("upgrade the cluster to Kubernetes {major}.{minor} or later"),
            );
            None
        }
        Err(e) => {
            let why = e
                .strip_prefix("cannot reach the API server: ")
                .unwrap_or(&e);
            list.fail(
                "can reach the API server",
                &format!("{}: {why}", k.server),
                &format!("check that context {} is the right one and the cluster is up: kubectl cluster-info", k.context),
            );
            None
        }
    }
}

/// SelfSubjectAccessReview for each kind of object install creates.
async fn permissions(k: &Kube, config: &Config, list: &mut Checklist) {
    let ns = config.namespace.as_str();
    let tns = config.tetragon_namespace.as_str();
    let wanted: [(&str, &str, &str, Option<&str>); 11] = [
        ("create", "", "namespaces", None),
        ("create", "", "secrets", Some(ns)),
        ("create", "", "configmaps", Some(ns)),
        ("create", "", "serviceaccounts", Some(ns)),
        ("create", "apps", "deployments", Some(ns)),
        ("create", "apps", "statefulsets", Some(ns)),
        ("create", "apps", "daemonsets", Some(tns)),
        ("create", "rbac.authorization.k8s.io", "clusterroles", None),
        (
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        ),
        ("patch", names::POLICY_GROUP, names::POLICY_PLURAL, None),
        // The lock of one run at a time (src/cluster/lease.rs).
        (
            "create",
            "coordination.k8s.io",
            "leases",
            Some(crate::cluster::lease::LEASE_NAMESPACE),
        ),
    ];
    let answers = futures::future::join_all(
        wanted
            .iter()
            .map(|(verb, group, res, n)| k.can_i(verb, group, res, *n)),
    )
    .await;
    let mut denied = Vec::new();
    for ((verb, group, res, n), answer) in wanted.iter().zip(answers) {
        let what = match (group.is_empty(), n) {
            (true, Some(n)) => format!("{verb} {res} in {n}"),
            (true, None) => format!("{verb} {res}"),
            (false, Some(n)) => format!("{verb} {res}.{group} in {n}"),
            (false, None) => format!("{verb} {res}.{group}"),
        };
        match answer {
            Ok(true) => {}
            Ok(false) => denied.push(what),
            Err(e) => denied.push(format!("{what} ({e})")),
        }
    }
    if denied.is_empty() {
        list.ok("can create what install creates", "");
    } else {
        list.fail(
            "can create what install creates",
            &format!("not allowed to {}", denied.join(", ")),
            "use a context with cluster-admin rights (installing Tetragon needs them)",
        );
    }
}

/// Pod Security admission, per namespace kovenant runs pods in: the level its label enforces
/// (none: the API server's default), the level kovenant's pods there need, and which pods set it.
/// kovenant's own namespace is labelled by install, so a stricter label there is a warning;
/// elsewhere (Tetragon's namespace) it is a failure the user must lift.
async fn pod_security(k: &Kube, config: &Config, list: &mut Checklist) {
    let api: Api<Namespace> = Api::all(k.client.clone());
    for need in pod_security::needs(config) {
        let ns = &need.namespace;
        let level = need.level().name();
        let title = format!("Pod Security admission in {ns} admits `{level}` pods");
        let because = need.because();
        let found = match api.get_opt(ns).await {
            Ok(found) => found,
            Err(e) => {
                list.warn(
                    &title,
                    &describe(&e),
                    &format!("check: kubectl get namespace {ns} --show-labels"),
                );
                continue;
            }
        };
        let labels = found
            .as_ref()
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        let enforced = labels.get(pod_security::ENFORCE_LABEL).map(String::as_str);
        let fix = format!(
            "kubectl label namespace {ns} {}={level} --overwrite",
            pod_security::ENFORCE_LABEL
        );
        let by_label = pod_security::admits(enforced, need.level());
        // Tetragon's namespace matters only when kovenant installs Tetragon there; a namespace
        // that is not there yet (kovenant's, made by install) has no admission to ask.
        let ask = by_label.is_ok() && found.is_some() && (need.owned || !config.existing_tetragon);
        match (by_label, need.owned) {
            (Ok(()), true) => list.ok(
                &title,
                &format!(
                    "{}; install labels it {level} ({because})",
                    shown(found.is_some(), enforced)
                ),
            ),
            (Ok(()), false) => list.ok(
                &title,
                &format!("{} ({because})", shown(found.is_some(), enforced)),
            ),
            (Err(e), true) => list.warn(
                &title,
                &format!("{e}; install relabels it {level} ({because})"),
                &fix,
            ),
            (Err(e), false) => list.fail(&title, &format!("{e}; {because}"), &fix),
        }
        if ask {
            admission_dry_run(k, &need, &fix, list).await;
        }
    }
}

/// A server-side dry run of a pod asking what kovenant's pods in the namespace ask: the
/// cluster's own answer (its Pod Security defaults and exemptions for an unlabelled namespace,
/// admission policies, webhooks), not a reading of labels. Reported only when it refuses, or
/// cannot be asked; in kovenant's own namespace a Pod Security refusal is not reported, since
/// install labels the namespace with the level its pods need.
async fn admission_dry_run(k: &Kube, need: &pod_security::Need, fix: &str, list: &mut Checklist) {
    let ns = need.namespace.as_str();
    let title = format!(
        "the API server admits kovenant's {} pods in {ns} (a server-side dry run)",
        need.level().name()
    );
    // Asked first, so a refusal below is admission's, not RBAC's (both answer 403). Install
    // itself creates no pod (its controllers do), so the right may well be missing.
    match k.can_i("create", "", "pods", Some(ns)).await {
        Ok(true) => {}
        Ok(false) => {
            return list.warn(
                &title,
                &format!("cannot ask: not allowed to create pods in {ns}, even as a dry run"),
                "run install as a user who may create pods there to have admission checked first",
            );
        }
        Err(e) => {
            return list.warn(
                &title,
                &e,
                &format!("kubectl auth can-i create pods -n {ns}"),
            );
        }
    }
    let pod: Pod = match serde_json::from_value(pod_security::probe(need)) {
        Ok(p) => p,
        Err(e) => return list.warn(&title, &format!("cannot build the probe pod: {e}"), fix),
    };
    let params = ::kube::api::PostParams {
        dry_run: true,
        field_manager: Some(kube::FIELD_MANAGER.into()),
    };
    match Api::<Pod>::namespaced(k.client.clone(), ns)
        .create(&params, &pod)
        .await
    {
        Ok(_) => {}
        Err(::kube::Error::Api(s)) if s.code == 403 || s.code == 400 || s.code == 422 => {
            let psa = pod_security::refused_by_pod_security(&s.message);
            if psa && need.owned {
                return;
            }
            let hint = if psa {
                fix.to_string()
            } else {
                format!(
                    "the namespace's admission refuses them (a ResourceQuota, an admission \
                     policy or a webhook: the API server's words say which): ask the cluster's \
                     admins to let them into namespace {ns}, or choose another namespace \
                     (KOVENANT_NAMESPACE, KOVENANT_TETRAGON_NAMESPACE)"
                )
            };
            list.fail(
                &title,
                &format!("refused ({}): {}", need.because(), s.message),
                &hint,
            );
        }
        Err(e) => list.warn(
            &title,
            &describe(&e),
            &format!("kubectl auth can-i create pods -n {ns}"),
        ),
    }
}

/// The enforce label as preflight shows it.
fn shown(exists: bool, enforced: Option<&str>) -> String {
    match (exists, enforced) {
        (false, _) => "namespace will be created".to_owned(),
        (true, None) => "no enforce label (the API server's default)".to_owned(),
        (true, Some(l)) => format!("enforces `{l}`"),
    }
}

/// The volumes install claims: Prometheus's always, InfluxDB's unless the user brings one; both
/// take KOVENANT_STORAGE_CLASS, else the cluster's default class. Without either, the claims stay
/// Pending and install waits out its timeout.
async fn storage(k: &Kube, config: &Config, list: &mut Checklist) {
    let volumes = if config.influxdb.url.is_none() {
        "Prometheus's and InfluxDB's volumes"
    } else {
        "Prometheus's volume"
    };
    let title = format!("a StorageClass for {volumes}");
    let api: Api<StorageClass> = Api::all(k.client.clone());
    let classes = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return list.warn(&title, &describe(&e), "set KOVENANT_STORAGE_CLASS");
        }
    };
    let name = |c: &StorageClass| c.metadata.name.clone().unwrap_or_default();
    let is_default = |c: &&StorageClass| {
        c.metadata.annotations.as_ref().is_some_and(|a| {
            a.get("storageclass.kubernetes.io/is-default-class")
                .map(String::as_str)
                == Some("true")
        })
    };
    let known = classes.iter().map(name).collect::<Vec<_>>().join(", ");
    let known = if known.is_empty() {
        "the cluster has none".to_owned()
    } else {
        format!("the cluster has {known}")
    };
    match &config.influxdb.storage_class {
        Some(wanted) => match classes.iter().find(|c| &name(c) == wanted) {
            Some(c) => list.ok(&title, &format!("{} (KOVENANT_STORAGE_CLASS)", name(c))),
            None => list.fail(
                &title,
                &format!("KOVENANT_STORAGE_CLASS={wanted} does not exist ({known})"),
                "set KOVENANT_STORAGE_CLASS to one of `kubectl get storageclass`",
            ),
        },
        None => match classes.iter().find(is_default) {
            Some(c) => list.ok(&title, &format!("{} (the cluster's default)", name(c))),
            None => list.warn(
                &title,
                &format!(
                    "no default StorageClass ({known}): the claims of {volumes} would stay Pending"
                ),
                "set KOVENANT_STORAGE_CLASS to one of `kubectl get storageclass`",
            ),
        },
    }
}

/// The user's own InfluxDB (`KOVENANT_INFLUXDB_URL`): it answers, the token reads the bucket,
/// and both buckets exist (kovenant creates nothing there). Whether the token may write shows
/// only when telegraf writes: `kovenant status` reports each node's agent point.
async fn external_influxdb(url: &url::Url, config: &Config, list: &mut Checklist) {
    let origin = url.origin().ascii_serialization();
    match crate::backend::http::get(url, "/ping", &[]).await {
        Ok((code, _)) if code < 300 => list.ok("InfluxDB answers", &origin),
        Ok((code, body)) => {
            let said = body.lines().next().unwrap_or_default().trim().to_owned();
            return list.fail(
                "InfluxDB answers",
                &format!("{origin}/ping: HTTP {code} {said}"),
                "check that KOVENANT_INFLUXDB_URL is the base URL of an InfluxDB",
            );
        }
        Err(e) => {
            let hint = if e.contains("certificate") {
                "trust its certificate authority: SSL_CERT_FILE=/path/to/ca.pem kovenant ..."
            } else {
                "check KOVENANT_INFLUXDB_URL and that this machine can reach it"
            };
            return list.fail("InfluxDB answers", &e, hint);
        }
    }
    let bucket = &config.influxdb.bucket;
    let pods = names::pod_bucket(bucket);
    let token = config
        .influxdb
        .external_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or_default();
    let checks = [
        (
            format!("bucket {bucket} can be read with KOVENANT_INFLUXDB_TOKEN"),
            // A SELECT, not SHOW: InfluxDB 2 answers SHOW MEASUREMENTS to a write-only token.
            "SELECT * FROM \"kovenant_agent\" LIMIT 1".to_owned(),
            bucket.clone(),
        ),
        (
            format!("bucket {pods} can be read with KOVENANT_INFLUXDB_TOKEN"),
            format!(
                "SELECT * FROM \"{}\".\"{}\" LIMIT 1",
                names::POD_RP,
                names::POD_MEASUREMENT
            ),
            pods.clone(),
        ),
    ];
    for (title, q, name) in checks {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("db", bucket)
            .append_pair("q", &q)
            .finish();
        let auth = format!("Token {token}");
        let answer =
            crate::backend::http::get(url, &format!("/query?{query}"), &[("Authorization", &auth)])
                .await;
        // InfluxDB 2 says "not found" of a bucket the token may not read, too.
        let create = format!(
            "create it in that InfluxDB (influx bucket create -n {name} -r <retention>) and give \
             the token read and write on it, or set DOCKER_INFLUXDB_INIT_BUCKET to the bucket you have"
        );
        match answer {
            Ok((200, body)) => match influxql_error(&body) {
                None => list.ok(&title, &origin),
                Some(e) if e.contains("not found") => {
                    list.fail(&title, &format!("{origin}: {e}"), &create)
                }
                Some(e) => list.fail(
                    &title,
                    &format!("{origin}: {e}"),
                    "check the bucket's name and the token's rights",
                ),
            },
            Ok((code @ (401 | 403), _)) => list.fail(
                &title,
                &format!("{origin}/query: HTTP {code}: the token was refused"),
                "set KOVENANT_INFLUXDB_TOKEN to a token with read and write on both buckets",
            ),
            Ok((404, _)) => list.fail(&title, &format!("{origin}/query: HTTP 404"), &create),
            Ok((code, body)) => list.fail(
                &title,
                &format!(
                    "{origin}/query: HTTP {code} {}",
                    body.lines().next().unwrap_or_default().trim()
                ),
                "check that the InfluxDB serves the v1 query API (/query)",
            ),
            Err(e) => list.fail(&title, &e, "check that this machine can reach it"),
        }
    }
}

/// The error of an InfluxQL answer (of the statement, or of the request), if any.
fn influxql_error(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["results"][0]["error"]
        .as_str()
        .or(v["error"].as_str())
        .map(str::to_owned)
}

/// KOVENANT_IMAGE_PULL_SECRET names a Secret of kovenant's namespace that kubelets can pull with.
async fn pull_secret(k: &Kube, config: &Config, name: &str, list: &mut Checklist) {
    let ns = config.namespace.as_str();
    let title = format!("image pull Secret {ns}/{name} exists");
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(k.client.clone(), ns);
    let create = format!(
        "kubectl create namespace {ns}; kubectl create secret docker-registry {name} -n {ns} \
         --docker-server=REGISTRY --docker-username=USER --docker-password=..."
    );
    match api.get_metadata_opt(name).await {
        Ok(Some(_)) => list.ok(&title, ""),
        Ok(None) => list.fail(
            &title,
            "KOVENANT_IMAGE_PULL_SECRET names no Secret there: the nodes could not pull the image",
            &create,
        ),
        Err(e) => list.warn(
            &title,
            &describe(&e),
            &format!("kubectl get secret {name} -n {ns}"),
        ),
    }
}

/// Tetragon needs kernel 4.19+ and BTF; nodes report the kernel, and BTF where node-feature-discovery
/// labels it.
async fn kernels(k: &Kube, list: &mut Checklist) {
    let api: Api<Node> = Api::all(k.client.clone());
    let nodes = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return list.warn(
                "node kernels support Tetragon",
                &describe(&e),
                "kubectl get nodes -o wide",
            );
        }
    };
    let mut old = Vec::new();
    for n in &nodes {
        let name = n.metadata.name.clone().unwrap_or_default();
        let kernel = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kernel_version.clone())
            .unwrap_or_default();
        let mut parts = kernel
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse::<u32>().ok());
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let btf = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("feature.node.kubernetes.io/kernel-config.DEBUG_INFO_BTF"));
        if version < (4, 19) {
            old.push(format!("{name} runs kernel {kernel}"));
        } else if btf.is_some_and(|v| v != "true") {
            old.push(format!("{name} reports no BTF"));
        }
    }
    if old.is_empty() {
        list.ok(
            "node kernels support Tetragon",
            &format!("{} node(s)", nodes.len()),
        );
    } else {
        list.warn(
            "node kernels support Tetragon",
            &old.join(", "),
            "Tetragon needs Linux 4.19+ with BTF; it crash-loops without BTF",
        );
    }
}

fn tools(
    version: Result<String>,
    diff_plugin: Result<crate::backend::helm::Plugin>,
    list: &mut Checklist,
) {
    use crate::backend::helm::Plugin;
    match version {
        Ok(v) if v.trim_start_matches('v').starts_with(['3', '4']) => {
            list.ok("helm is at least v3", &v)
        }
        Ok(v) => {
            return list.fail(
                "helm is at least v3",
                &v,
                "install helm 3: https://helm.sh/docs/intro/install/",
            );
        }
        Err(e) => {
            let hint = e.hint().unwrap_or_default();
            return list.fail("helm is at least v3", &e.to_string(), &hint);
        }
    }
    match diff_plugin {
        Ok(Plugin::Present) => list.ok("the helm-diff plugin is installed", ""),
        Ok(Plugin::Absent { helm_said }) if helm_said.is_empty() => list.fail(
            "the helm-diff plugin is installed",
            "`helm plugin list` does not show diff",
            "helm plugin install https://github.com/databus23/helm-diff",
        ),
        // helm could not read something (its plugins folder, its cache): that is the reason,
        // and installing the plugin again would not help.
        Ok(Plugin::Absent { helm_said }) => list.fail(
            "the helm-diff plugin is installed",
            &format!("`helm plugin list` does not show diff, and helm said:\n{helm_said}"),
            "fix what helm says (`helm env` names its plugins folder and cache), then \
             `helm plugin list` should show diff",
        ),
        // helm failed: its own words are the reason.
        Err(e) => list.fail(
            "the helm-diff plugin is installed",
            &e.to_string(),
            "fix what helm says; `helm plugin list` should then show diff",
        ),
    }
}
