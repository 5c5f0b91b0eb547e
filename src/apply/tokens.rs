//! InfluxDB tokens scoped to their use: a write-only token for telegraf, a read-only one for
//! Grafana, each in its own Secret, made through InfluxDB's own API (`/api/v2/authorizations`)
//! with the operator token, reached the way `status` reaches InfluxDB (a port-forward to its
//! pod). The operator token stays in the InfluxDB Secret, which only InfluxDB's pod reads.
//!
//! `inspect` only reads (it runs before the preview); `ensure` changes, after the user agreed.
//! Each token's Secret carries a generation; the pods that read it carry the same number in their
//! template (rendered from [`Tokens::generation`]), so a new token restarts exactly them.
use std::collections::BTreeMap;

use http::Method;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};

use super::Change;
use crate::backend::kube::{Kube, describe};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::names;
use crate::plan::secrets::{
    AUTHORIZATION_ANNOTATION, GENERATION_ANNOTATION, INFLUXDB_PASSWORD_KEY, INFLUXDB_SECRET,
    INFLUXDB_TOKEN_KEY, SCOPED_TOKEN_KEY, SCOPES, Scope,
};
use crate::plan::steps::MANAGED_BY;

/// The InfluxDB container's HTTP port.
const PORT: u16 = 8086;

/// What install will do with one scoped token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its Secret holds a token InfluxDB accepts for exactly its use (or InfluxDB does not run
    /// yet to say otherwise).
    Keep,
    /// No Secret yet, or InfluxDB no longer knows its token, or its rights are not its use.
    Create(String),
    /// `--rotate-credentials`.
    Rotate,
}

#[derive(Debug, Clone)]
pub struct TokenState {
    pub scope: Scope,
    /// The generation of the Secret as it is (0: no Secret).
    pub current: u64,
    pub authorization: Option<String>,
    pub verdict: Verdict,
}

impl TokenState {
    /// The generation the pods are rendered with: the next one when the token changes.
    pub fn generation(&self) -> u64 {
        match self.verdict {
            Verdict::Keep => self.current.max(1),
            _ => self.current + 1,
        }
    }
}

/// The scoped tokens, as install found them.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub states: Vec<TokenState>,
    /// InfluxDB answered the operator token (so the verdicts are InfluxDB's, not guesses).
    pub checked: bool,
}

impl Tokens {
    /// Nothing to manage: an InfluxDB of the user's own (its one token is the configuration's).
    pub fn none() -> Self {
        Tokens::default()
    }

    pub fn generation(&self, scope: &Scope) -> u64 {
        self.states
            .iter()
            .find(|s| s.scope == *scope)
            .map_or(1, TokenState::generation)
    }

    /// Leaves alone the tokens whose holders this install does not touch (`--only`): a new
    /// token for a pod that is not restarted would leave it holding a deleted one.
    pub fn only_for(mut self, touched: impl Fn(&Scope) -> bool) -> Self {
        for s in &mut self.states {
            if !touched(&s.scope) {
                s.verdict = Verdict::Keep;
            }
        }
        self
    }

    pub fn changing(&self) -> impl Iterator<Item = &TokenState> {
        self.states.iter().filter(|s| s.verdict != Verdict::Keep)
    }
}

/// InfluxDB's HTTP API through a port-forward to its pod, with the operator token.
struct Influx<'a> {
    kube: &'a Kube,
    namespace: &'a str,
    pod: String,
    auth: String,
}

impl Influx<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or_default());
        let (code, text) = self
            .kube
            .port_forward_request(
                self.namespace,
                &self.pod,
                PORT,
                method,
                path,
                &[("Authorization", self.auth.as_str())],
                body,
            )
            .await
            .map_err(|e| Error::step(format!("InfluxDB {what}"), e))?;
        if !(200..300).contains(&code) {
            let said: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = said["message"].as_str().unwrap_or(text.trim()).to_owned();
            return Err(Error::step(
                format!("InfluxDB {what}"),
                format!("HTTP {code}: {message}"),
            ));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The organisation's ID and the two buckets' IDs.
    async fn ids(&self, config: &Config) -> Result<(String, Vec<String>)> {
        let org = &config.influxdb.org;
        let orgs = self
            .call(Method::GET, &format!("/api/v2/orgs?org={}", enc(org)), None)
            .await?;
        let org_id = orgs["orgs"][0]["id"]
            .as_str()
            .ok_or_else(|| {
                Error::step(
                    "InfluxDB organisation",
                    format!("InfluxDB has no organisation {org}"),
                )
            })?
            .to_owned();
        let mut buckets = Vec::new();
        for name in [
            config.influxdb.bucket.clone(),
            names::pod_bucket(&config.influxdb.bucket),
        ] {
            let found = self
                .call(
                    Method::GET,
                    &format!("/api/v2/buckets?orgID={org_id}&name={}", enc(&name)),
                    None,
                )
                .await?;
            let id = found["buckets"][0]["id"].as_str().ok_or_else(|| {
                Error::step(
                    "InfluxDB buckets",
                    format!(
                        "InfluxDB has no bucket {name} yet (its pod's postStart hook makes the \
                         pod-level one when it starts)"
                    ),
                )
            })?;
            buckets.push(id.to_owned());
        }
        Ok((org_id, buckets))
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The permissions a scope's token should have: its action on each bucket, nothing else.
fn wanted(scope: &Scope, org_id: &str, buckets: &[String]) -> Vec<Value> {
    buckets
        .iter()
        .map(|id| {
            json!({"action": scope.action,
                   "resource": {"type": "buckets", "id": id, "orgID": org_id}})
        })
        .collect()
}

fn same_rights(have: &Value, want: &[Value]) -> bool {
    let key = |p: &Value| {
        format!(
            "{}/{}/{}",
            p["action"].as_str().unwrap_or_default(),
            p["resource"]["type"].as_str().unwrap_or_default(),
            p["resource"]["id"].as_str().unwrap_or_default()
        )
    };
    let mut a: Vec<String> = have.as_array().into_iter().flatten().map(key).collect();
    let mut b: Vec<String> = want.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// The operator token: the configuration's when given (install writes it to the Secret before
/// it makes tokens), else the Secret's.
async fn operator_token(kube: &Kube, config: &Config) -> Option<String> {
    match &config.influxdb.admin_token {
        Some(t) => Some(t.expose().to_owned()),
        None => {
            kube.secret_value(&config.namespace, INFLUXDB_SECRET, INFLUXDB_TOKEN_KEY)
                .await
        }
    }
}

async fn connect<'a>(kube: &'a Kube, config: &'a Config) -> Option<Influx<'a>> {
    let token = operator_token(kube, config).await?;
    connect_with(kube, config, &token).await
}

async fn connect_with<'a>(kube: &'a Kube, config: &'a Config, token: &str) -> Option<Influx<'a>> {
    let influx = Influx {
        kube,
        namespace: &config.namespace,
        pod: format!("{}-0", names::INFLUXDB_NAME),
        auth: format!("Token {token}"),
    };
    // No pod, no port-forward, or InfluxDB not set up yet: nothing to check against.
    influx.call(Method::GET, "/api/v2/me", None).await.ok()?;
    Some(influx)
}

async fn secret(kube: &Kube, ns: &str, name: &str) -> Result<Option<Secret>> {
    let api: Api<Secret> = Api::namespaced(kube.client.clone(), ns);
    match api.get_opt(name).await {
        Ok(s) => Ok(s),
        Err(e) if crate::backend::kube::is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::step(format!("get Secret {ns}/{name}"), describe(&e))),
    }
}

fn annotation(s: &Secret, key: &str) -> Option<String> {
    s.metadata.annotations.as_ref()?.get(key).cloned()
}

fn token_of(s: &Secret) -> Option<String> {
    let bytes = s.data.as_ref()?.get(SCOPED_TOKEN_KEY)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// Reads what the scoped tokens are and decides what install does with them; changes nothing.
pub async fn inspect(kube: &Kube, config: &Config, rotate: bool) -> Result<Tokens> {
    if config.influxdb.url.is_some() {
        return Ok(Tokens::none());
    }
    let influx = connect(kube, config).await;
    if influx.is_none()
        && let Some(given) = &config.influxdb.admin_token
        && let Some(kept) = kube
            .secret_value(&config.namespace, INFLUXDB_SECRET, INFLUXDB_TOKEN_KEY)
            .await
        && kept != given.expose()
        && connect_with(kube, config, &kept).await.is_some()
    {
        return Err(Error::usage(
            "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN is not the operator token the running InfluxDB was \
             set up with (the one in Secret kovenant-influxdb); InfluxDB takes a chosen token \
             only at its first setup",
            Some(
                "put the old value back, or delete the line to keep the token InfluxDB has; \
                 `kovenant install --rotate-credentials` replaces telegraf's and Grafana's tokens"
                    .into(),
            ),
        ));
    }
    // InfluxDB's view: every authorization (with its token) and the rights each should have.
    let known = match &influx {
        Some(i) => {
            // No pod-level bucket yet: the rights are judged once it exists.
            let ids = i.ids(config).await.ok();
            let list = i.call(Method::GET, "/api/v2/authorizations", None).await?;
            Some((list, ids))
        }
        None => None,
    };
    let mut states = Vec::new();
    for scope in SCOPES {
        let existing = secret(kube, &config.namespace, scope.secret).await?;
        let current = existing
            .as_ref()
            .and_then(|s| annotation(s, GENERATION_ANNOTATION))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let token = existing.as_ref().and_then(token_of);
        let authorization = existing
            .as_ref()
            .and_then(|s| annotation(s, AUTHORIZATION_ANNOTATION));
        let verdict = match (&token, &known) {
            _ if rotate && token.is_some() => Verdict::Rotate,
            (None, _) => Verdict::Create("no token yet".into()),
            (Some(_), None) => Verdict::Keep,
            (Some(t), Some((list, ids))) => judge(t, &scope, list, ids.as_ref()),
        };
        states.push(TokenState {
            scope,
            current,
            authorization,
            verdict,
        });
    }
    Ok(Tokens {
        states,
        checked: influx.is_some(),
    })
}

/// Whether InfluxDB still accepts `token` for exactly `scope`'s use.
fn judge(token: &str, scope: &Scope, list: &Value, ids: Option<&(String, Vec<String>)>) -> Verdict {
    let found = list["authorizations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["token"].as_str() == Some(token));
    match (found, ids) {
        (None, _) => Verdict::Create("InfluxDB does not know its token".into()),
        (Some(a), _) if a["status"].as_str() != Some("active") => {
            Verdict::Create("its token is inactive in InfluxDB".into())
        }
        (Some(a), Some((org, buckets)))
            if !same_rights(&a["permissions"], &wanted(scope, org, buckets)) =>
        {
            Verdict::Create(format!(
                "its token's rights are not {} on the buckets",
                scope.action
            ))
        }
        _ => Verdict::Keep,
    }
}

/// What `ensure` did: the changes to report, and the authorizations the new tokens replace.
#[derive(Debug, Default)]
pub struct Ensured {
    pub changes: Vec<(String, Change)>,
    pub retired: Vec<String>,
}

/// Makes the tokens `inspect` found missing, wrong or due for rotation and writes their Secrets.
/// InfluxDB must run (install waits for it). Also puts InfluxDB's admin password right when the
/// Secret's is not the one InfluxDB takes.
pub async fn ensure(kube: &Kube, config: &Config, tokens: &Tokens) -> Result<Ensured> {
    let mut done = Vec::new();
    let mut retired = Vec::new();
    if config.influxdb.url.is_some() {
        return Ok(Ensured::default());
    }
    // Just installed, InfluxDB may answer /health before its setup has made the operator.
    let mut influx = None;
    for _ in 0..30 {
        influx = connect(kube, config).await;
        if influx.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let influx = influx.ok_or_else(|| {
        Error::step(
            "InfluxDB tokens",
            format!(
                "InfluxDB ({}-0 in {}) did not answer the operator token of Secret \
                 {INFLUXDB_SECRET} within 60 s",
                names::INFLUXDB_NAME,
                config.namespace
            ),
        )
        .with_hint(format!(
            "if InfluxDB is still starting (kubectl -n {} get pod {}-0), run install again; \
             its volume answers only the operator token it was set up with",
            config.namespace,
            names::INFLUXDB_NAME
        ))
    })?;
    if let Some(change) = password(&influx, kube, config).await? {
        done.push((
            format!("InfluxDB password of {}", config.influxdb.username),
            change,
        ));
    }
    let changing: Vec<&TokenState> = tokens.changing().collect();
    if changing.is_empty() {
        return Ok(Ensured {
            changes: done,
            retired,
        });
    }
    let (org_id, buckets) = influx.ids(config).await?;
    // Authorizations kovenant made before, for the same use and buckets: after an uninstall
    // (which deletes the Secrets, not InfluxDB's data) their tokens are in no Secret any more.
    let before = influx
        .call(Method::GET, "/api/v2/authorizations", None)
        .await?;
    for state in changing {
        let scope = &state.scope;
        let description = format!(
            "kovenant {}: {} {} and {}",
            scope.holder,
            scope.action,
            config.influxdb.bucket,
            names::pod_bucket(&config.influxdb.bucket)
        );
        let made = influx
            .call(
                Method::POST,
                "/api/v2/authorizations",
                Some(&json!({
                    "orgID": org_id,
                    "description": description,
                    "permissions": wanted(scope, &org_id, &buckets),
                })),
            )
            .await?;
        let (Some(id), Some(token)) = (made["id"].as_str(), made["token"].as_str()) else {
            return Err(Error::step(
                "InfluxDB POST /api/v2/authorizations",
                "the answer holds no id and token",
            ));
        };
        let generation = state.generation();
        write_secret(kube, &config.namespace, scope, token, id, generation).await?;
        // The old token keeps working until its holders run with the new one: `retire`. So do
        // older ones of the same use that no Secret holds.
        let same_use = before["authorizations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["description"].as_str() == Some(description.as_str()))
            .filter_map(|a| a["id"].as_str().map(str::to_owned));
        for old in state.authorization.iter().cloned().chain(same_use) {
            if old != id && !retired.contains(&old) {
                retired.push(old);
            }
        }
        let change = if state.current == 0 {
            Change::Create
        } else {
            Change::Update
        };
        done.push((
            format!("Secret {}/{}", config.namespace, scope.secret),
            change,
        ));
    }
    Ok(Ensured {
        changes: done,
        retired,
    })
}

/// Deletes the authorizations of replaced tokens, once their holders run with the new ones.
pub async fn retire(kube: &Kube, config: &Config, retired: &[String]) -> Result<()> {
    if retired.is_empty() {
        return Ok(());
    }
    let influx = connect(kube, config).await.ok_or_else(|| {
        Error::step(
            "InfluxDB tokens",
            "InfluxDB no longer answers the operator token",
        )
    })?;
    for id in retired {
        match influx
            .call(
                Method::DELETE,
                &format!("/api/v2/authorizations/{id}"),
                None,
            )
            .await
        {
            Ok(_) => {}
            // Deleted already (by hand, say): nothing to take away.
            Err(e) if e.to_string().contains("HTTP 404") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// InfluxDB keeps the password it was set up with; a new one in the Secret is set through the
/// API (`POST /api/v2/users/{id}/password`) once sign-in with it fails.
async fn password(influx: &Influx<'_>, kube: &Kube, config: &Config) -> Result<Option<Change>> {
    let Some(password) = kube
        .secret_value(&config.namespace, INFLUXDB_SECRET, INFLUXDB_PASSWORD_KEY)
        .await
    else {
        return Ok(None);
    };
    let user = &config.influxdb.username;
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{password}")
        )
    );
    let (code, _) = influx
        .kube
        .port_forward_request(
            influx.namespace,
            &influx.pod,
            PORT,
            Method::POST,
            "/api/v2/signin",
            &[("Authorization", basic.as_str())],
            None,
        )
        .await
        .map_err(|e| Error::step("InfluxDB POST /api/v2/signin", e))?;
    if (200..300).contains(&code) {
        return Ok(None);
    }
    let users = influx
        .call(
            Method::GET,
            &format!("/api/v2/users?name={}", enc(user)),
            None,
        )
        .await?;
    let id = users["users"][0]["id"]
        .as_str()
        .ok_or_else(|| Error::step("InfluxDB users", format!("InfluxDB has no user {user}")))?;
    influx
        .call(
            Method::POST,
            &format!("/api/v2/users/{id}/password"),
            Some(&json!({"password": password})),
        )
        .await?;
    Ok(Some(Change::Update))
}

async fn write_secret(
    kube: &Kube,
    ns: &str,
    scope: &Scope,
    token: &str,
    authorization: &str,
    generation: u64,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(kube.client.clone(), ns);
    let object = Secret {
        metadata: ObjectMeta {
            name: Some(scope.secret.to_owned()),
            namespace: Some(ns.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([
                (GENERATION_ANNOTATION.to_owned(), generation.to_string()),
                (
                    AUTHORIZATION_ANNOTATION.to_owned(),
                    authorization.to_owned(),
                ),
            ])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            SCOPED_TOKEN_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let what = format!("write Secret {ns}/{}", scope.secret);
    match api.get_opt(scope.secret).await {
        Ok(Some(old)) => {
            let object = Secret {
                metadata: ObjectMeta {
                    resource_version: old.metadata.resource_version,
                    ..object.metadata
                },
                ..object
            };
            api.replace(scope.secret, &PostParams::default(), &object)
                .await
                .map(|_| ())
                .map_err(|e| Error::step(what, describe(&e)))
        }
        Ok(None) => api
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| Error::step(what, describe(&e))),
        Err(e) => Err(Error::step(what, describe(&e))),
    }
}
