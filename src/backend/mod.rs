//! The only code that touches the world: Docker (bollard), helm (subprocess), Kubernetes (kube).
pub mod docker;
pub mod forward;
pub mod helm;
pub mod http;
pub mod kube;
pub mod kube_trace;
