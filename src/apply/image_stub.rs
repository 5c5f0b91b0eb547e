//! Stand-ins for the image work's interface: replace `image` with `backend::docker::ensure_image`
//! and `docker_ping` with its client once that lands; nothing else changes.
use crate::config::Config;

/// The image reference the pipeline runs (no build here).
pub fn image(config: &Config) -> String {
    let repo = match &config.image_registry {
        Some(reg) => format!("{reg}/{}", config.image_repository),
        None => config.image_repository.clone(),
    };
    format!("{repo}:{}", env!("CARGO_PKG_VERSION"))
}

/// Whether the Docker daemon answers (the image work replaces this with its own client).
pub async fn docker_ping() -> std::result::Result<String, String> {
    let docker = bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
    let v = docker.version().await.map_err(|e| e.to_string())?;
    Ok(format!("Docker {}", v.version.unwrap_or_default()))
}
