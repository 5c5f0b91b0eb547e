//! A local TCP port forwarded to a pod's port through the API server, as `kubectl port-forward`
//! does: each accepted connection gets its own port-forward stream (kube's Portforwarder).
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::TcpListener;

use super::kube::{Kube, describe};
use crate::ui::trace;

/// Serves `listener` until it fails or the caller drops the future.
pub async fn serve(
    kube: &Kube,
    namespace: &str,
    pod: &str,
    port: u16,
    listener: TcpListener,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), namespace);
    loop {
        let (mut local, peer) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting a connection: {e}"))?;
        let api = api.clone();
        let pod = pod.to_string();
        tokio::spawn(async move {
            let mut forward = match api.portforward(&pod, &[port]).await {
                Ok(f) => f,
                Err(e) => {
                    trace::line(format!(
                        "port-forward to {pod}:{port} for {peer}: {}",
                        describe(&e)
                    ));
                    return;
                }
            };
            if let Some(mut remote) = forward.take_stream(port) {
                let copied = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                trace::line(format!(
                    "connection from {peer} to {pod}:{port} ended: {copied:?}"
                ));
            }
            forward.abort();
        });
    }
}
