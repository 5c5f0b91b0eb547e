//! Pure: Config (+ what the cluster reports) -> what to apply: rendered values, the pipeline chart,
//! policies, dashboards, the image's build context. No I/O beyond reading assets.
pub mod context;
pub mod dashboards;
pub mod image;
pub mod names;
pub mod pod_security;
pub mod secrets;
pub mod steps;
pub mod templates;

use std::collections::BTreeMap;

use crate::assets::Assets;
use crate::config::Config;
use crate::error::{Error, Result};
pub use dashboards::ClusterFacts;

/// Everything `render` writes and `install` applies, as relative path -> bytes.
/// Paths: `values/{tetragon,prometheus,grafana}.yaml`, `charts/kovenant-pipeline/...`,
/// `policies/*.yaml`, `dashboards/*.json`, `image/...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Rendered {
    /// The file at `path`, e.g. `values/grafana.yaml`.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Files under `dir` (e.g. `policies`), with their paths relative to the tree.
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let prefix = format!("{dir}/");
        self.files
            .iter()
            .filter(move |(path, _)| path.starts_with(&prefix))
            .map(|(path, body)| (path.as_str(), body.as_slice()))
    }
}

/// Where the pipeline chart lands in the tree: `helm upgrade --install` takes this folder.
pub const PIPELINE_CHART_DIR: &str = "charts/kovenant-pipeline";

/// Files every rendering has; a customised `--assets` folder that lacks one is refused.
pub const REQUIRED: &[&str] = &[
    "values/tetragon.yaml",
    "values/prometheus.yaml",
    "values/grafana.yaml",
    "charts/kovenant-pipeline/Chart.yaml",
    "charts/kovenant-pipeline/values.yaml",
    "policies/kovenant-tcp.yaml",
];

/// Renders everything install applies. `image_ref` is the telegraf-tetragon image the agent
/// DaemonSet runs. Deterministic: the same inputs give the same bytes.
pub fn render_all(config: &Config, assets: &Assets, image_ref: &str) -> Result<Rendered> {
    render_all_with(config, assets, image_ref, &ClusterFacts::default())
}

/// As `render_all`, with what install learned from the cluster (the namespaces the dashboards
/// open on); `render`, which sees no cluster, uses `render_all`.
pub fn render_all_with(
    config: &Config,
    assets: &Assets,
    image_ref: &str,
    facts: &ClusterFacts,
) -> Result<Rendered> {
    let ctx = context::build(config, image_ref, facts);
    let mut files = BTreeMap::new();
    templates::render_dir(assets, "templates/values", "values", &ctx, &mut files)?;
    templates::render_dir(
        assets,
        "templates/pipeline",
        PIPELINE_CHART_DIR,
        &ctx,
        &mut files,
    )?;
    templates::render_dir(assets, "policies", "policies", &ctx, &mut files)?;
    for dashboard in dashboards::render_with(config, assets, facts)? {
        files.insert(
            format!("dashboards/{}", dashboard.file_name),
            dashboard.json.into_bytes(),
        );
    }
    files.insert(
        "image/Dockerfile".to_owned(),
        image::dockerfile(config).into_bytes(),
    );
    files.insert(
        "image/README.txt".to_owned(),
        IMAGE_README.as_bytes().to_vec(),
    );
    check(&files)?;
    Ok(Rendered { files })
}

const IMAGE_README: &str = "\
The build context of the telegraf-tetragon image: the Dockerfile here plus the kovenant binary,
which `kovenant install` and `kovenant image` add at build time (it is not part of render output).
";

/// Every required file is there, and every YAML file kovenant itself renders parses (the chart's
/// own templates are Helm templates, parsed by Helm).
fn check(files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    for path in REQUIRED {
        if !files.contains_key(*path) {
            return Err(Error::usage(
                format!("the assets in use do not render {path}"),
                Some(
                    "copy kovenant's whole templates/ and policies/ into the --assets folder"
                        .into(),
                ),
            ));
        }
    }
    let chart_templates = format!("{PIPELINE_CHART_DIR}/templates/");
    for (path, body) in files {
        if !path.ends_with(".yaml") || path.starts_with(&chart_templates) {
            continue;
        }
        let parsed = std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| e.to_string())
            });
        if let Err(e) = parsed {
            return Err(
                Error::step("render", format!("{path} is not valid YAML: {e}"))
                    .with_hint("fix the template it comes from (see --assets)"),
            );
        }
    }
    Ok(())
}
