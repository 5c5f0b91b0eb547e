//! Finding the Docker daemon (DOCKER_HOST, the docker CLI's context, the usual sockets), connecting, and agreeing on an API version.
use std::path::PathBuf;

use bollard::errors::Error as BollardError;
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use sha2::{Digest, Sha256};

use super::env::DockerEnv;
use crate::error::{Error, Result};

/// Seconds a request may take before bollard gives up; builds and pushes stream for long.
const TIMEOUT_SECS: u64 = 900;
/// The oldest API kovenant speaks: Docker 1.12 (2016). Older daemons are refused by name.
const MIN_API: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 24,
};

/// A connected daemon and what it said about itself.
pub struct Engine {
    pub docker: Docker,
    /// The address, as the user would recognise it (`unix:///var/run/docker.sock`).
    pub host: String,
    /// The API version in use after negotiation, e.g. `1.41`.
    pub api_version: String,
    /// The daemon's own architecture name (`amd64`, `s390x`, ...).
    pub arch_name: String,
}

/// The daemon address: DOCKER_HOST, else the docker CLI's current context, else the first usual
/// socket that exists.
pub fn resolve_host(env: &DockerEnv) -> Result<String> {
    if let Some(host) = env.docker_host.as_deref().filter(|h| !h.is_empty()) {
        if env.tls_verify && !host.starts_with("unix://") {
            return Err(Error::step(
                "docker",
                format!("DOCKER_TLS_VERIFY is set for {host}, and kovenant does not speak TLS to the Docker daemon"),
            )
            .with_hint("reach the daemon over a unix socket or ssh tunnel (e.g. `ssh -L /tmp/docker.sock:/var/run/docker.sock HOST`) and set DOCKER_HOST=unix:///tmp/docker.sock"));
        }
        return Ok(host.to_string());
    }
    if let Some(context) = env.current_context().filter(|c| c != "default") {
        return context_host(env, &context);
    }
    let candidates = socket_candidates(env);
    candidates
        .iter()
        .find(|path| path.exists())
        .map(|path| format!("unix://{}", path.display()))
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            Error::step(
                "docker",
                format!("no Docker daemon socket found (looked at {})", tried.join(", ")),
            )
            .with_hint("start Docker, or set DOCKER_HOST (e.g. unix:///run/user/1000/docker.sock or tcp://HOST:2375)")
        })
}

/// The sockets Docker Engine, rootless Docker, Docker Desktop, Colima, Rancher Desktop and OrbStack use.
pub fn socket_candidates(env: &DockerEnv) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(xdg) = &env.xdg_runtime_dir {
        out.push(xdg.join("docker.sock"));
    }
    if let Some(home) = &env.home {
        for rel in [
            ".docker/run/docker.sock",
            ".docker/desktop/docker.sock",
            ".colima/default/docker.sock",
            ".rd/docker.sock",
            ".orbstack/run/docker.sock",
        ] {
            out.push(home.join(rel));
        }
    }
    out
}

/// The endpoint of a named docker CLI context (`~/.docker/contexts/meta/<sha256(name)>/meta.json`).
fn context_host(env: &DockerEnv, context: &str) -> Result<String> {
    let dir = env.config_dir().unwrap_or_else(|| PathBuf::from(".docker"));
    let meta = dir
        .join("contexts/meta")
        .join(hex::encode(Sha256::digest(context.as_bytes())))
        .join("meta.json");
    let not_found = || {
        Error::step(
            "docker",
            format!(
                "docker context {context:?} has no usable endpoint in {}",
                meta.display()
            ),
        )
        .with_hint("choose another context with `docker context use`, or set DOCKER_HOST")
    };
    let text = std::fs::read_to_string(&meta).map_err(|_| not_found())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| not_found())?;
    value
        .pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .map(str::to_owned)
        .ok_or_else(not_found)
}

fn client(host: &str, version: &ClientVersion) -> Result<Docker, BollardError> {
    if host.starts_with("unix://") {
        Docker::connect_with_unix(host, TIMEOUT_SECS, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, TIMEOUT_SECS, version)
    } else {
        Err(BollardError::UnsupportedURISchemeError {
            uri: host.to_string(),
        })
    }
}

/// Connects and negotiates: the newest API both sides speak. bollard's own `negotiate_version`
/// asks `/v1.53/version`, which older daemons (20.10 speaks 1.41) refuse with "client version is
/// too new. Maximum supported API version is X"; that answer names the version to use.
pub async fn connect(host: &str) -> Result<Engine> {
    let unreachable = |e: BollardError| unreachable(host, &e);
    let mut docker = client(host, API_DEFAULT_VERSION).map_err(unreachable)?;
    let version = match docker.version().await {
        Ok(v) => v,
        Err(BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        }) => {
            let Some(max) = max_supported(&message) else {
                return Err(refused(host, &message));
            };
            if max < MIN_API {
                return Err(refused(host, &message));
            }
            docker = client(host, &max).map_err(unreachable)?;
            docker.version().await.map_err(unreachable)?
        }
        Err(e) => return Err(unreachable(e)),
    };
    let server = version.api_version.as_deref().and_then(parse_version);
    if let Some(server) = &server
        && *server < docker.client_version()
    {
        docker = client(host, server).map_err(unreachable)?;
    }
    let used = docker.client_version();
    let arch_name = version.arch.unwrap_or_default();
    Ok(Engine {
        docker,
        host: host.to_string(),
        api_version: format!("{}.{}", used.major_version, used.minor_version),
        arch_name,
    })
}

/// `1.41` -> ClientVersion.
pub fn parse_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// The version in dockerd's "Maximum supported API version is 1.41".
pub fn max_supported(message: &str) -> Option<ClientVersion> {
    let rest = message.split("Maximum supported API version is").nth(1)?;
    parse_version(rest.trim().trim_end_matches('.'))
}

fn refused(host: &str, message: &str) -> Error {
    Error::step(
        "docker",
        format!("the Docker daemon at {host} refuses kovenant's API version: {message}"),
    )
    .with_hint(format!(
        "kovenant speaks Docker API {}.{} to {}.{}; upgrade the Docker daemon (or kovenant)",
        MIN_API.major_version,
        MIN_API.minor_version,
        API_DEFAULT_VERSION.major_version,
        API_DEFAULT_VERSION.minor_version
    ))
}

/// One clear message for a daemon that cannot be reached: the address and the innermost cause.
pub fn unreachable(host: &str, err: &BollardError) -> Error {
    let cause = match err {
        BollardError::SocketNotFoundError(path) => format!("no socket at {path}"),
        BollardError::UnsupportedURISchemeError { uri } => {
            format!("unsupported address {uri} (kovenant speaks unix:// and tcp://)")
        }
        other => innermost(other),
    };
    let hint = if cause.contains("Permission denied") {
        "add your user to the `docker` group (then log in again), or point DOCKER_HOST at a daemon you may use"
    } else {
        "start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)"
    };
    Error::step(
        "docker",
        format!("cannot reach the Docker daemon at {host}: {cause}"),
    )
    .with_hint(hint)
}

/// The innermost error's words: hyper's outer layers say only "client error (Connect)".
pub fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
