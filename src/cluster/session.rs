//! What every cluster command starts from: the resolved configuration, helm, the API client.
use crate::backend::helm::Helm;
use crate::backend::kube::{self, Kube};
use crate::cli::{EnvFileArg, GlobalArgs};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::ui::Printer;

/// Resolves the configuration once and shows its warnings.
pub fn config(global: &GlobalArgs, env: &EnvFileArg, printer: &Printer) -> Result<Config> {
    let config = config::resolve(global, env.env_file.as_deref())?;
    for w in &config.warnings {
        printer.warn(w);
    }
    Ok(config)
}

/// helm, pointed at the same kubeconfig and context as kovenant.
pub fn helm(global: &GlobalArgs, config: &Config) -> Helm {
    Helm::new(
        &config.helm,
        global.kubeconfig.as_deref(),
        global.context.as_deref(),
    )
}

/// Connects and makes one request, so an unreachable cluster is one clear error.
pub async fn connect(global: &GlobalArgs) -> Result<Kube> {
    let k = kube::connect(global.kubeconfig.as_deref(), global.context.as_deref())
        .await
        .map_err(|e| {
            let hint = kube::load_hint(&e);
            Error::step("kubeconfig", e).with_hint(hint)
        })?;
    if let Err(e) = k.version().await {
        return Err(
            Error::step(format!("context {} ({})", k.context, k.server), e)
                .with_hint("check that the cluster is up and reachable: kubectl cluster-info"),
        );
    }
    Ok(k)
}

/// Why the API server holds a command up, if it does (for the `--timeout` error): a fresh
/// connection's version request, at most 2 s.
pub async fn probe(global: &GlobalArgs) -> Option<String> {
    let k = kube::connect(global.kubeconfig.as_deref(), global.context.as_deref())
        .await
        .ok()?;
    super::wait::api_probe(k).await
}
