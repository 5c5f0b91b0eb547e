//! Registry credentials, found as the docker CLI finds them: `credHelpers`, then `credsStore`, then `auths`.
use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

use super::env::{ConfigFile, DockerEnv};
use crate::error::{Error, Result};

/// What a `docker-credential-*` helper answers to `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HelperAnswer {
    pub username: String,
    pub secret: String,
}

/// The key a registry is filed under: its host[:port], without scheme or path. Docker Hub is
/// filed under its historical `https://index.docker.io/v1/`.
pub fn registry_key(registry: &str) -> String {
    let rest = registry.split_once("://").map_or(registry, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        _ => host.to_string(),
    }
}

/// The credentials for `registry` from the docker CLI's config file and helpers, or `None`.
pub fn find(env: &DockerEnv, registry: &str) -> Result<Option<DockerCredentials>> {
    lookup(&env.config_file(), registry, run_helper)
}

/// The lookup itself, with the helper call injected (tests drive it without helpers).
pub fn lookup(
    file: &ConfigFile,
    registry: &str,
    helper: impl Fn(&str, &str) -> Result<Option<HelperAnswer>>,
) -> Result<Option<DockerCredentials>> {
    let key = registry_key(registry);
    let helper_name = file
        .cred_helpers
        .iter()
        .find(|(k, _)| registry_key(k) == key)
        .map(|(_, v)| v.as_str())
        .or(file.creds_store.as_deref())
        .filter(|h| !h.is_empty());
    if let Some(name) = helper_name
        && let Some(answer) = helper(name, &key)?
    {
        let mut creds = DockerCredentials {
            serveraddress: Some(key),
            ..Default::default()
        };
        // Helpers return identity tokens (OAuth refresh tokens) with the user name "<token>".
        if answer.username == "<token>" {
            creds.identitytoken = Some(answer.secret);
        } else {
            creds.username = Some(answer.username);
            creds.password = Some(answer.secret);
        }
        return Ok(Some(creds));
    }
    let Some(entry) = file
        .auths
        .iter()
        .find(|(k, _)| registry_key(k) == key)
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                Error::step(
                    "registry credentials",
                    format!(
                        "the docker config's auths entry for {key} is not base64 of user:password"
                    ),
                )
                .with_hint(format!("run `docker login {key}` again"))
            })?;
        if let Some((u, p)) = decoded.split_once(':') {
            username = Some(u.to_string());
            password = Some(p.to_string());
        }
    }
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken: entry.identitytoken.clone().filter(|t| !t.is_empty()),
        serveraddress: Some(key),
        ..Default::default()
    }))
}

/// Runs `docker-credential-<name> get` with the server address on stdin. "Not found" is `None`.
fn run_helper(name: &str, server: &str) -> Result<Option<HelperAnswer>> {
    let program = format!("docker-credential-{name}");
    let fail = |why: String| {
        Error::step("registry credentials", format!("`{program} get` {why}")).with_hint(format!(
            "check the credential helper named in the docker config (credHelpers/credsStore), or run `docker login {server}`"
        ))
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("did not take its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("failed: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // The helper's stderr/stdout carry its own error words, never the secret.
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("failed: {} {}", stdout.trim(), stderr.trim())));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|_| fail("answered something that is not credentials JSON".into()))
}
