//! How the built image reaches the cluster: pushed to a registry, or loaded into a local kind, k3d or minikube cluster.
use crate::config::Config;
use crate::error::{Error, Result};

/// A local cluster whose nodes take images straight from the Docker daemon, recognised by the
/// kubeconfig context name that its tool writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCluster {
    /// Context `kind-<cluster>`.
    Kind { cluster: String },
    /// Context `k3d-<cluster>`.
    K3d { cluster: String },
    /// Context `minikube` (minikube names the context after the profile; the default profile is
    /// the only one recognisable by name).
    Minikube { profile: String },
}

impl LocalCluster {
    /// Recognises a kind, k3d or minikube cluster from its kubeconfig context name.
    pub fn from_context(context: &str) -> Option<LocalCluster> {
        if let Some(cluster) = context.strip_prefix("kind-").filter(|c| !c.is_empty()) {
            return Some(LocalCluster::Kind {
                cluster: cluster.to_string(),
            });
        }
        if let Some(cluster) = context.strip_prefix("k3d-").filter(|c| !c.is_empty()) {
            return Some(LocalCluster::K3d {
                cluster: cluster.to_string(),
            });
        }
        if context == "minikube" {
            return Some(LocalCluster::Minikube {
                profile: context.to_string(),
            });
        }
        None
    }

    /// The tool's name (the program run).
    pub fn tool(&self) -> &'static str {
        match self {
            LocalCluster::Kind { .. } => "kind",
            LocalCluster::K3d { .. } => "k3d",
            LocalCluster::Minikube { .. } => "minikube",
        }
    }

    /// The arguments that load `reference` from the Docker daemon into the cluster's nodes.
    pub fn load_args(&self, reference: &str) -> Vec<String> {
        let args: [&str; 5] = match self {
            LocalCluster::Kind { cluster } => {
                ["load", "docker-image", reference, "--name", cluster]
            }
            LocalCluster::K3d { cluster } => ["image", "import", reference, "--cluster", cluster],
            LocalCluster::Minikube { profile } => {
                ["image", "load", reference, "--profile", profile]
            }
        };
        args.iter().map(|a| a.to_string()).collect()
    }
}

/// What happens to the image after it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stays in the Docker daemon (`kovenant image` without `--push`).
    Keep,
    /// Pushed to `KOVENANT_IMAGE_REGISTRY`.
    Push,
    /// Loaded into a local cluster's nodes with its tool's own command.
    Load(LocalCluster),
}

/// How `install` gets the image to the cluster named by `context`: push when a registry is
/// configured, else load into a kind/k3d/minikube cluster, else stop and ask for a registry.
pub fn delivery_for_context(config: &Config, context: &str) -> Result<Delivery> {
    if config
        .image_registry
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        return Ok(Delivery::Push);
    }
    match LocalCluster::from_context(context) {
        Some(local) => Ok(Delivery::Load(local)),
        None => Err(Error::usage(
            format!(
                "the telegraf-tetragon image has no way into cluster context {context:?}: no image \
                 registry is configured and the context is not a kind, k3d or minikube cluster"
            ),
            Some(
                "set KOVENANT_IMAGE_REGISTRY to a registry the cluster can pull from (its \
                 credentials are read from ~/.docker/config.json), or use --skip-image with an \
                 image the cluster can already pull"
                    .to_string(),
            ),
        )),
    }
}
