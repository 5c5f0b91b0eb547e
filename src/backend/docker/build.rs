//! Building the image: for the agent binary's platform (not the daemon's), the context streamed to `/build`, progress shown.
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

    /// The warning a debug build of kovenant draws as the agent binary (its size, its cost).
    pub fn debug_warning(&self) -> Option<String> {
        use crate::plan::image::profile;
        // The running kovenant knows how it was built; another file carries the mark, if any.
        let built = match self.from_flag {
            true => profile::profile_of(&self.bytes),
            false => profile::this_build(),
        };
        profile::debug_warning(built, self.bytes.len(), &self.describe())
    }

    /// "--agent-binary PATH" or "this kovenant (PATH)", for messages.
    fn describe(&self) -> String {
        if self.from_flag {
            format!("--agent-binary {}", self.path.display())
        } else {
            format!("this kovenant ({})", self.path.display())
        }
    }

    /// The platform the image is built for: the binary's own, linux/amd64 or linux/arm64,
    /// whatever the daemon runs on (the Dockerfile has no RUN step, so nothing executes during
    /// the build and no emulation is needed). Anything else is refused, saying what to pass.
    pub fn arch(&self) -> Result<Arch> {
        let kind = BinaryKind::of(&self.bytes);
        if let Some(arch) = kind.linux_arch() {
            return Ok(arch);
        }
        let what = self.describe();
        Err(Error::usage(
            format!(
                "{what} is {}, but the image runs the agent on the cluster's Linux nodes",
                kind.describe()
            ),
            Some(linux_binary_hint(kind)),
        ))
    }
}

/// How to get a Linux agent binary, in one sentence; on macOS (a Mach-O kovenant), where to find one.
pub fn linux_binary_hint(kind: BinaryKind) -> String {
    let releases = "kovenant-x86_64-unknown-linux-gnu for amd64 nodes, \
                    kovenant-aarch64-unknown-linux-gnu for arm64 nodes";
    match kind {
        BinaryKind::MachO => format!(
            "a macOS kovenant cannot run in the cluster: download the Linux release for your \
             nodes ({releases}; `kubectl get nodes -L kubernetes.io/arch` shows theirs) and pass \
             it with --agent-binary PATH"
        ),
        _ => format!("pass --agent-binary PATH naming a Linux kovenant ({releases})"),
    }
}

/// Builds `reference` from the in-memory context; returns the image ID.
pub async fn build(
    engine: &Engine,
    platform: Arch,
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
        .platform(&format!("linux/{platform}"))
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
