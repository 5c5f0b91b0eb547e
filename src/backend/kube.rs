//! The Kubernetes API through kube-rs: connecting from a kubeconfig, and the few calls kovenant makes.
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, discovery};

/// The field manager of every object kovenant applies.
pub const FIELD_MANAGER: &str = "kovenant";

/// A connected client and where it points.
#[derive(Clone)]
pub struct Kube {
    pub client: Client,
    /// The kubeconfig context in use.
    pub context: String,
    /// The API server's URL.
    pub server: String,
}

/// A kubeconfig loaded for one context: the client configuration, the context's name, its server.
pub struct Loaded {
    pub config: kube::Config,
    pub context: String,
    pub server: String,
}

/// How [`load`]'s message starts when there is no kubeconfig at all.
const NO_KUBECONFIG: &str = "no kubeconfig";

/// The hint for an error of [`load`]: `--context` helps only when there is a kubeconfig.
pub fn load_hint(message: &str) -> &'static str {
    if message.starts_with(NO_KUBECONFIG) {
        "pass --kubeconfig PATH or set KUBECONFIG to the cluster's kubeconfig file"
    } else if message.starts_with("context `") || message.contains("no current context") {
        "pass --context NAME with one of `kubectl config get-contexts -o name`"
    } else {
        "pass --kubeconfig PATH naming a readable kubeconfig file"
    }
}

/// Loads the kubeconfig (`path`, else `$KUBECONFIG`, else `~/.kube/config`) for `context` (else
/// the current context). Makes no request.
pub async fn load(path: Option<&Path>, context: Option<&str>) -> Result<Loaded, String> {
    // kube's own message quotes the path twice over (`'"/root/.kube/config"'`): the innermost
    // cause and our own wording of the path say it once.
    let kubeconfig = match path {
        Some(p) => Kubeconfig::read_from(p)
            .map_err(|e| format!("cannot read kubeconfig {}: {}", p.display(), root_cause(&e)))?,
        None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(v) => Kubeconfig::read().map_err(|e| {
                format!(
                    "cannot read the kubeconfig $KUBECONFIG names ({}): {}",
                    v.to_string_lossy(),
                    root_cause(&e)
                )
            })?,
            None => {
                let default = std::env::var_os("HOME")
                    .map(|h| Path::new(&h).join(".kube/config"))
                    .unwrap_or_else(|| ".kube/config".into());
                if !default.exists() {
                    return Err(format!(
                        "{NO_KUBECONFIG}: no --kubeconfig, $KUBECONFIG is not set, and {} does \
                         not exist",
                        default.display()
                    ));
                }
                Kubeconfig::read_from(&default).map_err(|e| {
                    format!(
                        "cannot read kubeconfig {}: {}",
                        default.display(),
                        root_cause(&e)
                    )
                })?
            }
        },
    };
    let name = context
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or("the kubeconfig has no current context; pass --context NAME")?;
    let server = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .and_then(|ctx| kubeconfig.clusters.iter().find(|c| c.name == ctx.cluster))
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| format!("context `{name}` is not in the kubeconfig (or has no server)"))?;
    let options = KubeConfigOptions {
        context: Some(name.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| format!("context `{name}`: {}", chain(&e)))?;
    Ok(Loaded {
        config,
        context: name,
        server,
    })
}

/// Loads the kubeconfig as [`load`] does and builds a client for a command line: short connect
/// and read timeouts, no retries. Makes no request.
pub async fn connect(path: Option<&Path>, context: Option<&str>) -> Result<Kube, String> {
    let Loaded {
        mut config,
        context,
        server,
    } = load(path, context).await?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(60));
    // kube retries 429/503/504 with backoff up to 1000s; a command line should say what failed
    // (a service proxy answers 503 while the service has no ready endpoint).
    config.default_retry = false;
    let client = client(config).map_err(|e| describe(&e))?;
    Ok(Kube {
        client,
        context,
        server,
    })
}

/// kube's client for `config`, with each API call traced under `-v`.
pub fn client(config: kube::Config) -> Result<Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&super::kube_trace::TraceLayer)
        .build())
}

/// An error's message and its causes, joined.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The API's own words for an error: the Status message, or why the server could not be reached.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        // kube's wrappers ("ServiceError: client error (Connect)") say nothing a user can act
        // on: the innermost cause ("Connection refused (os error 111)") does.
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!("cannot reach the API server: {}", root_cause(err))
        }
        other => chain(other),
    }
}

/// The innermost cause of an error: what actually went wrong.
pub fn root_cause(err: &dyn std::error::Error) -> String {
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        last = cause.to_string();
        source = cause.source();
    }
    last
}

/// Whether an error is the API's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

impl Kube {
    /// `major.minor` and the git version the server reports.
    pub async fn version(&self) -> Result<(u32, u32, String), String> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| describe(&e))?;
        let digits = |s: &str| -> u32 {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        };
        Ok((digits(&info.major), digits(&info.minor), info.git_version))
    }

    /// SelfSubjectAccessReview: may the current user `verb` `resource` in `group` (and namespace)?
    pub async fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<bool, String> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    namespace: namespace.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let out = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| describe(&e))?;
        Ok(out.status.is_some_and(|s| s.allowed))
    }

    /// Discovery of one kind; `Ok(None)` when the server does not serve it (e.g. a CRD not yet
    /// installed).
    pub async fn resource(&self, gvk: &GroupVersionKind) -> Result<Option<ApiResource>, String> {
        match discovery::pinned_kind(&self.client, gvk).await {
            Ok((ar, _)) => Ok(Some(ar)),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(describe(&e)),
        }
    }

    /// An `Api` for a dynamic resource, namespaced or cluster-wide.
    pub fn dynamic(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Server-side apply with field manager `kovenant`; `dry_run` asks the server what it would do.
    pub async fn apply(
        &self,
        ar: &ApiResource,
        obj: &DynamicObject,
        dry_run: bool,
    ) -> Result<DynamicObject, String> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let api = self.dynamic(ar, obj.metadata.namespace.as_deref());
        // Strict: a field the API server does not know is an error, not a warning it drops.
        let mut params = PatchParams::apply(FIELD_MANAGER)
            .force()
            .validation_strict();
        if dry_run {
            params = params.dry_run();
        }
        api.patch(&name, &params, &Patch::Apply(obj))
            .await
            .map_err(|e| describe(&e))
    }

    /// Gets one object; `Ok(None)` when absent.
    pub async fn get(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>, String> {
        self.dynamic(ar, namespace)
            .get_opt(name)
            .await
            .map_err(|e| describe(&e))
    }

    /// The names of the cluster's namespaces.
    pub async fn namespace_names(&self) -> Result<Vec<String>, String> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| describe(&e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect())
    }

    /// Lists objects matching a label selector.
    pub async fn list(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, String> {
        let params = ListParams::default().labels(selector);
        self.dynamic(ar, namespace)
            .list(&params)
            .await
            .map(|l| l.items)
            .map_err(|e| describe(&e))
    }

    /// Deletes one object; `Ok(false)` when it was already absent.
    pub async fn delete(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, String> {
        match self
            .dynamic(ar, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(describe(&e)),
        }
    }

    /// A GET through the API server's service proxy: `(HTTP status, body)`.
    pub async fn proxy_get(
        &self,
        namespace: &str,
        service: &str,
        port: u16,
        path_and_query: &str,
    ) -> Result<String, String> {
        let uri = format!(
            "/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{}",
            path_and_query.trim_start_matches('/')
        );
        let request = http::Request::get(uri)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(20), self.client.request_text(request)).await
        {
            Ok(out) => out.map_err(|e| describe(&e)),
            Err(_) => Err(format!("no answer from {service}:{port} within 20s")),
        }
    }

    /// GET `path_and_query` from a pod's port through a port-forward (the API server's
    /// WebSocket to the kubelet). Unlike the service proxy, the request reaches the pod as sent,
    /// so an `Authorization` header survives it; nothing of the request shows in a URL the API
    /// server logs. `(HTTP status, body)`.
    pub async fn port_forward_get(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        self.port_forward_request(
            namespace,
            pod,
            port,
            http::Method::GET,
            path_and_query,
            headers,
            None,
        )
        .await
    }

    /// As [`Kube::port_forward_get`], any method, with a JSON body when given one.
    #[allow(clippy::too_many_arguments)]
    pub async fn port_forward_request(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
        method: http::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        json: Option<&serde_json::Value>,
    ) -> Result<(u16, String), String> {
        use http_body_util::BodyExt;

        let work = async {
            let api: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(self.client.clone(), namespace);
            let mut forward = api
                .portforward(pod, &[port])
                .await
                .map_err(|e| format!("port-forward to {pod}:{port}: {}", describe(&e)))?;
            let stream = forward
                .take_stream(port)
                .ok_or_else(|| format!("port-forward to {pod}:{port} gave no stream"))?;
            let http = |e: hyper::Error| format!("HTTP through the port-forward to {pod}: {e}");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(http)?;
            let driver = tokio::spawn(connection);
            let mut request = http::Request::builder()
                .method(method)
                .uri(path_and_query)
                .header(http::header::HOST, "localhost");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let body = match json {
                Some(v) => {
                    request = request.header(http::header::CONTENT_TYPE, "application/json");
                    hyper::body::Bytes::from(v.to_string())
                }
                None => hyper::body::Bytes::new(),
            };
            let request = request
                .body(http_body_util::Full::new(body))
                .map_err(|e| e.to_string())?;
            let response = sender.send_request(request).await.map_err(http)?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(http)?
                .to_bytes();
            driver.abort();
            forward.abort();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        match tokio::time::timeout(Duration::from_secs(20), work).await {
            Ok(out) => out,
            Err(_) => Err(format!(
                "no answer through the port-forward to {pod}:{port} within 20s"
            )),
        }
    }

    /// One key of a Secret, decoded; `None` when the Secret or the key is missing.
    pub async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let secret = api.get_opt(name).await.ok()??;
        let bytes = secret.data?.remove(key)?;
        String::from_utf8(bytes.0).ok()
    }

    /// The last `lines` lines of a container's log (`None`: the pod's only container; the API
    /// server refuses that for a pod with more); `previous`: of the container's last run (what a
    /// crash-looping container said before it died).
    pub async fn pod_log_tail(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        lines: i64,
        previous: bool,
    ) -> Option<String> {
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::LogParams {
            container: container.map(str::to_owned),
            tail_lines: Some(lines),
            previous,
            ..Default::default()
        };
        api.logs(pod, &params).await.ok()
    }
}
