//! Building the image: the agent binary checked against the daemon's architecture, the context streamed to `/build`, progress shown.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::body_full;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;

use super::connect::{Engine, innermost};
use crate::error::{Error, Result};
use crate::plan::image::{self, Arch, BinaryKind};
use crate::ui::Printer;
use crate::ui::transfer::Transfer;

/// The kovenant binary that goes into the image as the agent.
pub struct AgentBinary {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// `true` when named by `--agent-binary`, `false` for the running executable.
    pub from_flag: bool,
}

impl AgentBinary {
    /// Reads `--agent-binary PATH`, or the running executable.
    pub fn read(flag: Option<&Path>) -> Result<AgentBinary> {
        let (path, from_flag) = match flag {
            Some(path) => (path.to_path_buf(), true),
            None => (
                std::env::current_exe().map_err(|e| {
                    Error::step("image", format!("cannot find the running executable: {e}"))
                        .with_hint("name the agent binary with --agent-binary PATH")
                })?,
                false,
            ),
        };
        let bytes =
            std::fs::read(&path).map_err(|e| Error::io("reading agent binary", &path, e))?;
        Ok(AgentBinary {
            path,
            bytes,
            from_flag,
        })
    }

    /// Fails unless this is a Linux executable for `arch`, saying what it is and what to pass.
    pub fn check(&self, arch: Option<Arch>, daemon_arch: &str) -> Result<()> {
        let kind = BinaryKind::of(&self.bytes);
        if let Some(want) = arch
            && kind.linux_arch() == Some(want)
        {
            return Ok(());
        }
        let Some(want) = arch else {
            return Err(Error::step(
                "image",
                format!(
                    "the Docker daemon builds for {daemon_arch}; kovenant's image supports amd64 and arm64"
                ),
            ));
        };
        let what = if self.from_flag {
            format!("--agent-binary {}", self.path.display())
        } else {
            format!("this kovenant ({})", self.path.display())
        };
        Err(Error::usage(
            format!(
                "{what} is {}, but the Docker daemon builds linux/{want} images",
                kind.describe()
            ),
            Some(format!(
                "pass --agent-binary PATH naming a kovenant built for linux/{want} \
                 (e.g. the kovenant-{}-unknown-linux-gnu release)",
                match want {
                    Arch::Amd64 => "x86_64",
                    Arch::Arm64 => "aarch64",
                }
            )),
        ))
    }
}

/// Builds `reference` from the in-memory context; returns the image ID.
pub async fn build(
    engine: &Engine,
    reference: &str,
    base: &str,
    dockerfile: &str,
    binary: &[u8],
    printer: &Printer,
) -> Result<String> {
    let tar = image::context_tar(dockerfile, binary).map_err(|e| {
        Error::step(
            "image build",
            format!("cannot assemble the build context: {e}"),
        )
    })?;
    printer.debug(format!("build context: {} bytes", tar.len()));
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut progress = Transfer::start(printer, format!("building {reference}"));
    let mut stream = engine
        .docker
        .build_image(options, None, Some(body_full(tar.into())));
    let mut step = String::new();
    let mut layers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => {
                progress.fail();
                return Err(build_error(&engine.host, &step, base, &e));
            }
        };
        for line in info.stream.as_deref().unwrap_or("").lines() {
            let line = line.trim();
            if line.starts_with("Step ") {
                step = line.to_string();
                progress.stage(line);
            } else if !line.is_empty() {
                progress.detail(line);
            }
        }
        if let Some(status) = &info.status {
            let id = info.id.as_deref().unwrap_or("");
            match info
                .progress_detail
                .as_ref()
                .and_then(|d| Some((d.current?, d.total?)))
            {
                Some((current, total)) if total > 0 => {
                    layers.insert(id.to_string(), (current.max(0) as u64, total as u64));
                    let (done, all) = layers
                        .values()
                        .fold((0, 0), |(d, a), (c, t)| (d + c, a + t));
                    progress.bytes(done, all);
                }
                _ => progress.detail(format!("{id} {status}").trim()),
            }
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
    }
    let id = match image_id {
        Some(id) => id,
        None => engine
            .docker
            .inspect_image(reference)
            .await
            .ok()
            .and_then(|i| i.id)
            .ok_or_else(|| {
                Error::step(
                    "image build",
                    format!(
                        "the daemon at {} finished the build but has no image {reference}",
                        engine.host
                    ),
                )
            })?,
    };
    progress.finish(format!("done ({})", short_id(&id)));
    Ok(id)
}

/// `sha256:0123456789ab...` -> `0123456789ab`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// One message naming the cause: disk full, a base image that cannot be pulled, or the failing
/// step with the daemon's own words.
fn build_error(host: &str, step: &str, base: &str, err: &BollardError) -> Error {
    let message = match err {
        BollardError::DockerStreamError { error } => error.clone(),
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        other => innermost(other),
    };
    let message = message.trim();
    let at = if step.is_empty() {
        String::new()
    } else {
        format!(" at {step:?}")
    };
    if message.contains("no space left on device") {
        return Error::step(
            "image build",
            format!("the Docker daemon at {host} ran out of disk space{at}: {message}"),
        )
        .with_hint("free space on the daemon's disk (e.g. `docker system prune`), then run again");
    }
    let pulling = step.contains(": FROM ")
        || [
            "pull access denied",
            "manifest unknown",
            "not found: manifest",
            "repository does not exist",
        ]
        .iter()
        .any(|m| message.contains(m));
    if pulling {
        return Error::step(
            "image build",
            format!(
                "the base image {base} cannot be pulled by the Docker daemon at {host}: {message}"
            ),
        )
        .with_hint(
            "check KOVENANT_TELEGRAF_IMAGE, and that the daemon can reach its registry \
             (or put the image there first with `docker pull` / `docker load`)",
        );
    }
    if step.is_empty() {
        return Error::step(
            "image build",
            format!("the Docker daemon at {host} failed the build: {message}"),
        );
    }
    Error::step("image build", format!("{step} failed: {message}"))
}
