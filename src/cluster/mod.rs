//! The cluster as install and status both see it: the session a command starts from, the
//! workloads and pods of a release, and waiting on them. Below `apply` and `status`.
pub mod events;
pub mod lease;
mod revision;
pub mod run_dir;
pub mod runtime;
pub mod session;
pub mod wait;
pub mod workloads;

use kube::core::GroupVersionKind;

use crate::plan::names;

/// Tetragon's TracingPolicy kind, as discovery finds it.
pub fn tracing_policy_gvk() -> GroupVersionKind {
    GroupVersionKind::gvk(
        names::POLICY_GROUP,
        names::POLICY_VERSION,
        names::POLICY_KIND,
    )
}
