//! Pure: Config (+ what the cluster reports) -> what to apply: rendered values, the pipeline chart,
//! policies, dashboards, the image's build context. No I/O beyond reading assets.
pub mod dashboards;
pub mod image;
pub mod steps;

use std::collections::BTreeMap;

/// Everything `render` writes and `install` applies, as relative path -> bytes.
/// Paths: `values/{tetragon,prometheus,grafana}.yaml`, `charts/kovenant-pipeline/...`,
/// `policies/*.yaml`, `dashboards/*.json`, `image/...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub files: BTreeMap<String, Vec<u8>>,
}
