//! The docker CLI's own environment and config file, read once: DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG, HOME.
//!
//! These are Docker's variables, not kovenant configuration: kovenant honours them so it finds the
//! daemon and the registry credentials exactly where the docker CLI would.
use std::path::PathBuf;

use serde::Deserialize;

/// The variables the docker CLI reads.
#[derive(Debug, Clone, Default)]
pub struct DockerEnv {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    /// DOCKER_TLS_VERIFY is set: the daemon wants TLS client certificates.
    pub tls_verify: bool,
}

impl DockerEnv {
    /// Reads them from the process environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        DockerEnv {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
        }
    }

    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
    }

    /// The docker CLI's config file, parsed; an absent or unreadable file is an empty one (as
    /// for the docker CLI, which then has no credentials and the default context).
    pub fn config_file(&self) -> ConfigFile {
        self.config_dir()
            .and_then(|dir| std::fs::read_to_string(dir.join("config.json")).ok())
            .map(|text| ConfigFile::parse(&text))
            .unwrap_or_default()
    }

    /// DOCKER_CONTEXT, else `currentContext` of the config file.
    pub fn current_context(&self) -> Option<String> {
        self.docker_context
            .clone()
            .or_else(|| self.config_file().current_context)
    }
}

/// The parts of `~/.docker/config.json` kovenant uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    #[serde(default)]
    pub auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    pub cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub creds_store: Option<String>,
    #[serde(default)]
    pub current_context: Option<String>,
}

/// One `auths` entry: `auth` is base64 of `user:password`. Never printed: Debug is redacted.
#[derive(Clone, Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

impl ConfigFile {
    /// Parses the file's text; a malformed file counts as empty, as the docker CLI warns and goes on.
    pub fn parse(text: &str) -> ConfigFile {
        serde_json::from_str(text).unwrap_or_default()
    }
}
