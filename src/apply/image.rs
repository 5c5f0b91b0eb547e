//! Install's image step: build the telegraf-tetragon image by content tag and deliver it to the cluster.
use std::path::Path;

use super::preview::{Change, Preview};
use crate::backend::docker::{self, EnsuredImage, ImageOptions};
use crate::backend::kube::Kube;
use crate::cli::Part;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::image::{Delivery, delivery_for_context};
use crate::plan::steps::Plan;
use crate::ui::Printer;
use crate::ui::checks::Checklist;

/// The Docker daemon answers (the same client and message a build would give), and the image has
/// a way into the cluster: a registry to push to, or a kind/k3d/minikube context to load into.
pub async fn preflight(
    config: &Config,
    kube: Option<&Kube>,
    list: &mut Checklist,
) -> Option<Delivery> {
    match docker::check_daemon().await {
        Ok(d) => list.ok(
            "Docker is reachable",
            &format!("{} (API {}, {})", d.host, d.api_version, d.arch),
        ),
        Err(e) => fail(
            list,
            "Docker is reachable",
            &e,
            "start Docker or set DOCKER_HOST, or pass --skip-image to use an image the cluster can already pull",
        ),
    }
    let title = "the image has a way into the cluster";
    let context = kube.map_or("", |k| k.context.as_str());
    match delivery_for_context(config, context) {
        Ok(Delivery::Load(local)) if kube.is_some() => {
            list.ok(
                title,
                &format!("{} loads it into context {context}", local.tool()),
            );
            Some(Delivery::Load(local))
        }
        Ok(Delivery::Push) => {
            let registry = config.image_registry.as_deref().unwrap_or_default();
            list.ok(title, &format!("pushed to {registry}"));
            Some(Delivery::Push)
        }
        // Without a reachable cluster there is no context to judge; its own check failed already.
        Ok(_) | Err(_) if kube.is_none() => None,
        Ok(other) => Some(other),
        Err(e) => {
            fail(list, title, &e, "set KOVENANT_IMAGE_REGISTRY");
            None
        }
    }
}

/// The error as `kovenant image` would show it (README's troubleshooting quotes these), its hint.
fn fail(list: &mut Checklist, title: &str, e: &Error, fallback: &str) {
    let hint = e.hint().unwrap_or_else(|| fallback.to_owned());
    list.fail(title, &e.to_string(), &hint);
}

/// The image is built and delivered when `--only image` asks for it, or when the pipeline release
/// changes (its chart names the image; an unchanged release already runs a delivered image).
pub fn needed(only: &[Part], plan: &Plan, preview: &Preview) -> bool {
    only.contains(&Part::Image)
        || plan
            .releases
            .iter()
            .zip(&preview.releases)
            .any(|(r, c)| r.part == Part::Pipeline && *c != Change::Unchanged)
}

/// How the preview names the image step.
/// (`None`: a dry run, which does not ask Docker or judge the delivery).
pub fn describe(reference: &str, delivery: Option<&Delivery>) -> String {
    let how = match delivery {
        Some(Delivery::Push) => "build if missing, push".to_owned(),
        Some(Delivery::Load(local)) => format!("build if missing, load with {}", local.tool()),
        Some(Delivery::Keep) => "build if missing".to_owned(),
        None => "build if missing, then push or load".to_owned(),
    };
    format!("image {reference} ({how})")
}

/// Builds (when the daemon lacks the tag) and delivers the image. The chart was rendered with
/// `expected`, computed without Docker; the image made must carry exactly that reference.
pub async fn ensure(
    config: &Config,
    agent_binary: Option<&Path>,
    delivery: Delivery,
    expected: &str,
    printer: &Printer,
) -> Result<EnsuredImage> {
    let opts = ImageOptions {
        agent_binary: agent_binary.map(Path::to_path_buf),
        delivery,
        warn_debug_build: false,
    };
    let ensured = docker::ensure_image(config, &opts, printer).await?;
    if ensured.reference != expected {
        return Err(Error::step(
            "image",
            format!(
                "the image was built as {} but the pipeline chart names {expected}",
                ensured.reference
            ),
        )
        .with_hint("the agent binary changed while install ran; run kovenant install again"));
    }
    Ok(ensured)
}

/// One summary line: what happened to the image.
pub fn summary(image: &EnsuredImage) -> String {
    let built = if image.built {
        "built"
    } else {
        "already built"
    };
    let delivered = match (&image.pushed_digest, image.loaded_with) {
        (Some(digest), _) => format!(", pushed ({digest})"),
        (None, Some(tool)) => format!(", loaded with {tool}"),
        (None, None) => String::new(),
    };
    format!("  image   {} {built}{delivered}", image.reference)
}
