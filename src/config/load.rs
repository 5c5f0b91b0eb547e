//! Reading `.env` and the environment into a `Config`: which file, which keys win, which warn.
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::apply::{apply, empty_allowed};
use super::dotenv::parse_all;
use super::error::{ConfigError, Place, Source};
use super::names::{self, Name};
use super::{Config, keys};

/// A configuration file's contents, as `build` takes them.
#[derive(Debug, Clone, Copy)]
pub struct EnvFile<'a> {
    /// Names the file in messages.
    pub path: &'a Path,
    pub bytes: &'a [u8],
    /// Unix permission bits, to warn when others can read a secret.
    pub mode: Option<u32>,
}

/// Loads the configuration: `env_file` (or `./.env` when it exists) overlaid by the process
/// environment. The process environment is read, never written.
pub fn load(env_file: Option<&Path>) -> Result<Config, ConfigError> {
    let mut env = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        // A name that is not UTF-8 cannot be one of ours; a value that is not must be reported.
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => {
                env.insert(name, value);
            }
            Err(_) if names::in_env(&name) != Name::Foreign => {
                return Err(ConfigError::new(
                    format!(
                        "{}: the value is not valid UTF-8; expected UTF-8 text",
                        Place(&Source::Environment, &name)
                    ),
                    format!("set {name} to a UTF-8 value, or unset it"),
                ));
            }
            Err(_) => {}
        }
    }
    load_from(env_file, &env)
}

/// Loads from a file and an explicit environment map (what tests drive). With no `env_file`,
/// `./.env` is read when it exists; an `env_file` that is given must exist.
pub fn load_from(
    env_file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let (path, explicit) = match env_file {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from(".env"), false),
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let file = EnvFile {
                path: &path,
                bytes: &bytes,
                mode: mode(&path),
            };
            build(Some(file), env)
        }
        Err(e) if e.kind() == ErrorKind::NotFound && !explicit => {
            let mut config = build(None, env)?;
            // Said before anything is done: with --yes, a run from the wrong folder would
            // otherwise quietly put the defaults back over the settings of the right one.
            let folder = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            config.warnings.insert(0, no_env_file(&folder));
            config.no_env_file = true;
            Ok(config)
        }
        Err(e) => Err(unreadable(&path, &e)),
    }
}

/// The warning for a run with no `.env` in the current folder and no `--env-file`.
pub fn no_env_file(folder: &Path) -> String {
    format!(
        "no .env in {}: using the defaults and the KOVENANT_* environment; run from the folder \
         of your .env, or pass --env-file PATH (example.env lists every key)",
        folder.display()
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn mode(_path: &Path) -> Option<u32> {
    None
}

fn unreadable(path: &Path, e: &std::io::Error) -> ConfigError {
    let shown = path.display();
    let (problem, hint) = match e.kind() {
        ErrorKind::NotFound => (
            "no such file".to_string(),
            format!("check the path given to --env-file, or create {shown} from example.env"),
        ),
        ErrorKind::IsADirectory => (
            "it is a directory".to_string(),
            "pass the path of a dotenv file, not of a directory".to_string(),
        ),
        ErrorKind::PermissionDenied => (
            "permission denied".to_string(),
            format!("make {shown} readable to this user (chmod u+r), or pass another --env-file"),
        ),
        _ => (
            e.to_string(),
            format!("check that {shown} is a readable file"),
        ),
    };
    ConfigError::new(
        format!(
            "{shown}: cannot read the configuration file: {problem}; expected a readable dotenv file"
        ),
        hint,
    )
}

/// The pure part: a file's contents (if any) overlaid by `env` -> a validated `Config`.
pub fn build(
    file: Option<EnvFile<'_>>,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    // Every bad key and value of the file and the environment, so one run names them all.
    // canonical key -> (value, where it came from); the environment overrides the file.
    let mut chosen: BTreeMap<&'static str, (&str, Source)> = BTreeMap::new();
    let (entries, mut problems) = match file {
        Some(f) => parse_all(f.path, f.bytes)?,
        None => (Vec::new(), Vec::new()),
    };
    if let Some(f) = file {
        for entry in &entries {
            let at = Source::File {
                path: f.path.to_path_buf(),
                line: entry.line,
            };
            match names::in_file(&entry.key) {
                Name::Known(key) => {
                    // Reachable only through an alias: parse_all already refused repeated names.
                    if let Some((_, Source::File { line: first, .. })) = chosen.get(key.name) {
                        problems.push(ConfigError::new(
                            format!(
                                "{}: sets {} again, first set on line {first}; expected each key once",
                                Place(&at, &entry.key),
                                key.name
                            ),
                            format!(
                                "delete line {first} or line {} of {}",
                                entry.line,
                                f.path.display()
                            ),
                        ));
                        continue;
                    }
                    chosen.insert(key.name, (entry.value.as_str(), at));
                }
                Name::Obsolete => config.warnings.push(obsolete(&at, &entry.key)),
                Name::Unknown(near) => problems.push(unknown(&at, &entry.key, near)),
                Name::Foreign => {}
            }
        }
        config.warnings.extend(world_readable(&f, &entries));
    }
    for (name, value) in env {
        match names::in_env(name) {
            Name::Known(key) => {
                chosen.insert(key.name, (value.as_str(), Source::Environment));
            }
            Name::Obsolete => config.warnings.push(obsolete(&Source::Environment, name)),
            // A CI job may carry KOVENANT_ variables of its own: warn, as strict as the file
            // only where the user wrote kovenant's configuration.
            Name::Unknown(near) => config.warnings.push(unknown_in_env(name, near)),
            Name::Foreign => {}
        }
    }
    // Check values in the order a reader meets them: the file's lines, then the environment.
    let mut order: Vec<_> = chosen.into_iter().collect();
    order.sort_by_key(|(name, (_, at))| match at {
        Source::File { line, .. } => (0, *line, *name),
        _ => (1, 0, *name),
    });
    let mut url_at = None;
    let mut tls_at = None;
    for (name, (value, at)) in order {
        if let Err(e) = check(&mut config, name, value, &at) {
            problems.push(e);
        }
        match name {
            "KOVENANT_INFLUXDB_URL" => url_at = Some(at),
            "KOVENANT_INGRESS_TLS_SECRET" => tls_at = Some(at),
            _ => {}
        }
    }
    if let (Some(at), Some(secret)) = (tls_at, &config.ingress_tls_secret)
        && let Some(why) = tls_without_https(&config)
    {
        problems.push(ConfigError::new(
            format!(
                "{}: names Secret {secret} for the Grafana ingress's TLS, but {why}; expected \
                 it only with an https:// KOVENANT_EXTERNAL_URL and an ingress class",
                Place(&at, "KOVENANT_INGRESS_TLS_SECRET")
            ),
            "set KOVENANT_EXTERNAL_URL=https://<host>/, or empty KOVENANT_INGRESS_TLS_SECRET",
        ));
    }
    match (&config.influxdb.url, &config.influxdb.external_token, url_at) {
        (Some(_), None, Some(at)) => problems.push(ConfigError::new(
            format!(
                "{}: names an InfluxDB of your own, but KOVENANT_INFLUXDB_TOKEN is empty; \
                 expected the token telegraf writes and Grafana reads with",
                Place(&at, "KOVENANT_INFLUXDB_URL")
            ),
            "set KOVENANT_INFLUXDB_TOKEN to a token with write and read rights on the bucket \
             and on <bucket>/pods, or empty KOVENANT_INFLUXDB_URL to install InfluxDB in the cluster",
        )),
        (None, Some(_), _) => config.warnings.push(
            "KOVENANT_INFLUXDB_TOKEN is ignored: it is the token of KOVENANT_INFLUXDB_URL, which \
             is empty (the in-cluster InfluxDB's token is DOCKER_INFLUXDB_INIT_ADMIN_TOKEN)"
                .into(),
        ),
        _ => {}
    }
    match ConfigError::combine(problems) {
        None => Ok(config),
        Some(e) => Err(e),
    }
}

/// Why a TLS Secret for the ingress means nothing with this configuration, if it does not.
fn tls_without_https(config: &Config) -> Option<&'static str> {
    match (&config.external_url, &config.ingress_class) {
        (None, _) => Some("KOVENANT_EXTERNAL_URL is empty, so there is no ingress"),
        (Some(_), None) => Some("KOVENANT_INGRESS_CLASS=none, so there is no ingress"),
        (Some(u), Some(_)) if u.scheme() != "https" => {
            Some("KOVENANT_EXTERNAL_URL is http://, so browsers would never use it")
        }
        _ => None,
    }
}

/// Checks one chosen value and sets it; secrets are described, never shown.
fn check(config: &mut Config, name: &str, value: &str, at: &Source) -> Result<(), ConfigError> {
    let Some(key) = keys::lookup(name) else {
        return Ok(());
    };
    if value.is_empty() && !empty_allowed(name) {
        let expected = apply(&mut Config::default(), name, "")
            .err()
            .map_or_else(|| "a value".to_string(), |p| p.expected);
        return Err(ConfigError::empty(at, name, &expected, key.default));
    }
    apply(config, name, value).map_err(|problem| {
        // A URL with a password in it is a secret too, whatever its key.
        let has_password = url::Url::parse(value).is_ok_and(|u| u.password().is_some());
        let shown = (!key.secret && !has_password).then_some(value);
        ConfigError::invalid(at, name, shown, &problem, key.default)
    })
}

fn obsolete(at: &Source, name: &str) -> String {
    let fix = match at {
        Source::File { .. } => "delete the line",
        _ => "unset it",
    };
    format!(
        "{}: obsolete and ignored: kovenant no longer mounts credentials into pods; {fix}",
        Place(at, name)
    )
}

/// An unknown key of a file: an error, since the user wrote it as kovenant's configuration.
fn unknown(at: &Source, name: &str, near: Option<&str>) -> ConfigError {
    let place = Place(at, name);
    match near {
        Some(near) => ConfigError::new(
            format!("{place}: unknown key; did you mean {near}?"),
            format!(
                "rename it to {near}, or delete the line; example.env lists every key kovenant reads"
            ),
        ),
        None => ConfigError::new(
            format!("{place}: unknown key; expected one of the keys listed in example.env"),
            "delete the line; example.env lists every key kovenant reads",
        ),
    }
}

/// The warning for a `KOVENANT_*` variable of the process environment that is not a key.
fn unknown_in_env(name: &str, near: Option<&str>) -> String {
    let place = Place(&Source::Environment, name);
    match near {
        Some(near) => format!(
            "{place}: not a kovenant key, ignored; did you mean {near}? (rename it, or unset it \
             to silence this)"
        ),
        None => format!(
            "{place}: not a kovenant key, ignored (example.env lists every key kovenant reads; \
             unset it to silence this)"
        ),
    }
}

/// DESIGN.md section 8: a `.env` that others can read draws a warning when it holds a secret.
fn world_readable(file: &EnvFile<'_>, entries: &[super::dotenv::Entry]) -> Option<String> {
    let mode = file.mode?;
    let secret = entries
        .iter()
        .find(|e| !e.value.is_empty() && keys::lookup(&e.key).is_some_and(|k| k.secret))?;
    (mode & 0o004 != 0).then(|| {
        let path = file.path.display();
        format!(
            "{path} holds a secret ({}) and is readable by every user of this machine; \
             run `chmod 600 {path}`",
            secret.key
        )
    })
}
