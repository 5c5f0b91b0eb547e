//! Pushing the image to KOVENANT_IMAGE_REGISTRY with the docker CLI's credentials; plain HTTP only where configured.
use std::net::IpAddr;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::RegistryServiceConfig;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures::StreamExt;

use super::connect::{Engine, innermost};
use crate::error::{Error, Result};
use crate::plan::image::split_reference;
use crate::ui::Printer;
use crate::ui::transfer::Transfer;

/// The registry's host[:port], as dockerd keys its insecure-registries.
pub fn registry_host(registry: &str) -> &str {
    let rest = registry.split_once("://").map_or(registry, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Whether dockerd will talk plain HTTP (or unverified TLS) to `host`: listed in its
/// insecure-registries by name, or an IP inside one of its insecure CIDRs (127.0.0.0/8 by default).
pub fn daemon_allows_insecure(config: &RegistryServiceConfig, host: &str) -> bool {
    if let Some(index) = config.index_configs.as_ref().and_then(|m| m.get(host))
        && index.secure == Some(false)
    {
        return true;
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let ip: Option<IpAddr> = if name == "localhost" {
        Some(IpAddr::from([127, 0, 0, 1]))
    } else {
        name.parse().ok()
    };
    let Some(ip) = ip else { return false };
    config
        .insecure_registry_cidrs
        .iter()
        .flatten()
        .any(|cidr| cidr_contains(cidr, ip))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Plain HTTP is the daemon's choice, so kovenant checks it agrees with the configuration: a
/// registry configured insecure that the daemon will only reach over verified HTTPS is an error,
/// and so is a non-loopback registry the daemon would reach insecurely without it being configured.
pub async fn check_transport(engine: &Engine, registry: &str, insecure: bool) -> Result<()> {
    let Ok(info) = engine.docker.info().await else {
        return Ok(());
    };
    let Some(config) = info.registry_config else {
        return Ok(());
    };
    let host = registry_host(registry);
    let allowed = daemon_allows_insecure(&config, host);
    let loopback =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    if insecure && !allowed {
        return Err(Error::usage(
            format!(
                "KOVENANT_IMAGE_REGISTRY_INSECURE is set, but the Docker daemon at {} will reach \
                 {host} only over verified HTTPS",
                engine.host
            ),
            Some(format!(
                "add \"{host}\" to \"insecure-registries\" in the daemon's daemon.json and restart it"
            )),
        ));
    }
    if !insecure && allowed && !loopback {
        return Err(Error::usage(
            format!(
                "the Docker daemon at {} would push to {host} over plain HTTP or unverified TLS \
                 (it is in its insecure-registries), which kovenant does only when configured",
                engine.host
            ),
            Some("set KOVENANT_IMAGE_REGISTRY_INSECURE=true to allow it".to_string()),
        ));
    }
    Ok(())
}

/// Pushes `reference`; returns the digest the registry reported.
pub async fn push(
    engine: &Engine,
    reference: &str,
    registry: &str,
    credentials: Option<DockerCredentials>,
    printer: &Printer,
) -> Result<Option<String>> {
    let (name, tag) = split_reference(reference);
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut progress = Transfer::start(printer, format!("pushing {reference}"));
    let mut stream = engine.docker.push_image(name, Some(options), credentials);
    let mut digest = None;
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => {
                progress.fail();
                return Err(push_error(registry, reference, &e));
            }
        };
        let status = info.status.as_deref().unwrap_or("");
        if !status.is_empty() && status != last_status {
            progress.detail(status);
            last_status = status.to_string();
        }
        // bollard drops the layer id, so the bar follows the layer being sent.
        if let Some((current, total)) = info
            .progress_detail
            .as_ref()
            .and_then(|d| Some((d.current?, d.total?)))
            .filter(|(_, total)| *total > 0)
        {
            progress.bytes(current.max(0) as u64, total as u64);
        }
        if let Some(found) = status.split("digest: ").nth(1) {
            digest = found.split_whitespace().next().map(str::to_owned);
        }
    }
    progress.finish(match &digest {
        Some(d) => format!("done ({d})"),
        None => "done".to_string(),
    });
    Ok(digest)
}

/// One message naming the registry and the cause.
fn push_error(registry: &str, reference: &str, err: &BollardError) -> Error {
    let message = match err {
        BollardError::DockerStreamError { error } => error.clone(),
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        other => innermost(other),
    };
    let message = message.trim();
    let lower = message.to_lowercase();
    let host = registry_host(registry);
    let base = format!("registry {registry} refused the push of {reference}: {message}");
    let err = Error::step("image push", base);
    if [
        "unauthorized",
        "authentication required",
        "denied",
        "forbidden",
        "401",
        "403",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        err.with_hint(format!(
            "log in with `docker login {host}`: kovenant uses the same credentials \
             (~/.docker/config.json or its credential helper)"
        ))
    } else if lower.contains("http response to https client") {
        err.with_hint(format!(
            "{host} speaks plain HTTP: add it to the daemon's insecure-registries and set \
             KOVENANT_IMAGE_REGISTRY_INSECURE=true"
        ))
    } else if [
        "connection refused",
        "no such host",
        "i/o timeout",
        "dial tcp",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        err.with_hint(format!(
            "check that {host} is up and reachable from the Docker daemon"
        ))
    } else if lower.contains("no space left on device") {
        err.with_hint(format!("{host} ran out of disk space"))
    } else {
        err.with_hint(format!("check the registry {host} and its logs"))
    }
}
