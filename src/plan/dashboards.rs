//! Grafana dashboards rendered from tera templates in dashboards/.

use crate::assets::Assets;
use crate::config::Config;
use crate::error::Result;

/// One rendered dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Stable Grafana UID.
    pub uid: String,
    /// File name under `dashboards/`, e.g. `traffic-map.json`.
    pub file_name: String,
    pub json: String,
}

/// Renders every dashboard. (Placeholder until the dashboards land.)
pub fn render(_config: &Config, _assets: &Assets) -> Result<Vec<Dashboard>> {
    Ok(Vec::new())
}
