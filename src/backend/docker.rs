//! The telegraf-tetragon image through the Docker Engine API (bollard): build by content tag, then push or load.
mod build;
mod connect;
mod credentials;
mod env;
mod load;
mod push;

use std::path::PathBuf;

use bollard::errors::Error as BollardError;

pub use build::{AgentBinary, linux_binary_hint};
pub use connect::{max_supported, parse_version, resolve_host, socket_candidates};
pub use credentials::{HelperAnswer, lookup as lookup_credentials, registry_key};
pub use env::{ConfigFile, DockerEnv};
pub use push::{daemon_allows_insecure, registry_host};

use crate::cli::{GlobalArgs, ImageArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::image::{self, Delivery};
use crate::ui::Printer;

/// What `ensure_image` is asked to do.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// `--agent-binary`: the binary to put in the image instead of the running executable.
    pub agent_binary: Option<PathBuf>,
    /// Where the image goes once built.
    pub delivery: Delivery,
    /// Warn when the agent binary is a debug build (`kovenant image`; install's preflight warns).
    pub warn_debug_build: bool,
}

/// What `ensure_image` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredImage {
    /// The reference the pipeline chart must use (see `plan::image::PULL_POLICY`).
    pub reference: String,
    /// The image ID in the daemon (`sha256:...`).
    pub id: String,
    /// The image's size in bytes, as the daemon reports it.
    pub size: Option<i64>,
    /// `false` when the daemon already had the tag and no build ran.
    pub built: bool,
    /// The registry's digest after a push.
    pub pushed_digest: Option<String>,
    /// The tool that loaded the image into a local cluster.
    pub loaded_with: Option<&'static str>,
}

/// Makes sure the image for `config` exists in the Docker daemon (building it only when its content
/// tag is missing) and then delivers it as `opts.delivery` says. `install` calls this.
pub async fn ensure_image(
    config: &Config,
    opts: &ImageOptions,
    printer: &Printer,
) -> Result<EnsuredImage> {
    let registry = match (&opts.delivery, config.image_registry.as_deref()) {
        (Delivery::Push, Some(r)) if !r.is_empty() => Some(image::registry_prefix(r).to_string()),
        (Delivery::Push, _) => {
            return Err(Error::usage(
                "pushing the image needs a registry, and KOVENANT_IMAGE_REGISTRY is not set",
                Some(
                    "set KOVENANT_IMAGE_REGISTRY=host[:port][/path] in .env or the environment"
                        .into(),
                ),
            ));
        }
        _ => None,
    };
    let binary = AgentBinary::read(opts.agent_binary.as_deref())?;
    let docker_env = DockerEnv::from_process();
    let host = resolve_host(&docker_env)?;
    let engine = connect::connect(&host).await?;
    printer.debug(format!(
        "Docker daemon at {host}, API {}, {}",
        engine.api_version, engine.arch_name
    ));
    let platform = binary.arch()?;

    let dockerfile = image::dockerfile(config);
    let hash = image::context_hash(&dockerfile, &binary.bytes);
    let reference = image::image_reference(config, &hash);
    let (id, built) = match engine.docker.inspect_image(&reference).await {
        Ok(found) => {
            printer.success(format!(
                "image {reference} is already built; no build needed"
            ));
            (found.id.unwrap_or_default(), false)
        }
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            // With the build it concerns (an image already built was warned of when it was);
            // install said so in its preflight already, before asking.
            if opts.warn_debug_build
                && let Some(w) = binary.debug_warning()
            {
                printer.warn(format!("{w}; {}", image::profile::DEBUG_HINT));
            }
            let id = build::build(
                &engine,
                platform,
                &reference,
                &config.telegraf_image,
                &dockerfile,
                &binary.bytes,
                printer,
            )
            .await?;
            (id, true)
        }
        Err(e) => {
            return Err(Error::step(
                "image",
                format!(
                    "the Docker daemon at {host} could not look up {reference}: {}",
                    connect::innermost(&e)
                ),
            ));
        }
    };
    let size = engine
        .docker
        .inspect_image(&reference)
        .await
        .ok()
        .and_then(|i| i.size);

    let mut ensured = EnsuredImage {
        reference,
        id,
        size,
        built,
        pushed_digest: None,
        loaded_with: None,
    };
    match (&opts.delivery, registry) {
        (Delivery::Push, Some(registry)) => {
            push::check_transport(&engine, &registry, config.image_registry_insecure).await?;
            let creds = credentials::find(&docker_env, push::registry_host(&registry))?;
            ensured.pushed_digest =
                push::push(&engine, &ensured.reference, &registry, creds, printer).await?;
        }
        (Delivery::Load(cluster), _) => {
            load::load(cluster, &ensured.reference, &host, printer).await?;
            ensured.loaded_with = Some(cluster.tool());
        }
        _ => {}
    }
    Ok(ensured)
}

/// What `check_daemon` found: for install's preflight ("Docker reachable unless --skip-image").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSummary {
    /// The address used, e.g. `unix:///var/run/docker.sock`.
    pub host: String,
    /// The negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// The daemon's architecture, e.g. `amd64`.
    pub arch: String,
}

/// Finds and connects to the Docker daemon as `ensure_image` would, and says what it found; the
/// error is the same one clear message (address and cause) that a build would give.
pub async fn check_daemon() -> Result<DaemonSummary> {
    let host = resolve_host(&DockerEnv::from_process())?;
    let engine = connect::connect(&host).await?;
    Ok(DaemonSummary {
        host,
        api_version: engine.api_version,
        arch: engine.arch_name,
    })
}

/// `kovenant image [--push] [--context NAME]`: build (and push, or load into the kind/k3d/minikube
/// cluster that NAME is) the image alone, and print its reference on stdout.
pub fn run_image_command(global: &GlobalArgs, args: &ImageArgs, printer: &Printer) -> Result<()> {
    let config = crate::config::resolve(global, args.env.env_file.as_deref())?;
    // The missing-.env warning guards commands that change a cluster; building an image
    // changes none.
    for warning in config.warnings.iter().skip(usize::from(config.no_env_file)) {
        printer.warn(warning);
    }
    // With --context, the image goes to that cluster as install would send it (pushed, or loaded
    // into kind/k3d/minikube); the context is only a name here, no cluster is contacted.
    let delivery = match (&global.context, args.push) {
        (_, true) => Delivery::Push,
        // install's hint names --skip-image, which `image` does not have.
        (Some(context), false) => image::delivery_for_context(&config, context).map_err(|e| {
            e.with_hint(
                "set KOVENANT_IMAGE_REGISTRY and pass --push, or drop --context to build the \
                 image only",
            )
        })?,
        (None, false) => Delivery::Keep,
    };
    let opts = ImageOptions {
        agent_binary: args.agent_binary.clone(),
        delivery,
        warn_debug_build: true,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::step("image", format!("cannot start the async runtime: {e}")))?;
    let ensured = runtime.block_on(async {
        tokio::select! {
            result = ensure_image(&config, &opts, printer) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    })?;
    printer.stdout(&ensured.reference);
    Ok(())
}
