//! Stand-ins for interfaces other branches deliver: `plan::render_all` and the image build.
//! Replace `render` with `crate::plan::render_all` and `image` with `backend::docker::ensure_image`
//! once those land; nothing else changes.
use crate::assets::Assets;
use crate::config::Config;
use crate::error::Result;
use crate::plan::Rendered;

/// The rendered tree install applies (minimal, valid shapes of each file kind).
pub fn render(config: &Config, _assets: &Assets, image_ref: &str) -> Result<Rendered> {
    let mut r = Rendered::default();
    let mut put = |path: &str, text: String| {
        r.files.insert(path.to_string(), text.into_bytes());
    };
    put(
        "values/tetragon.yaml",
        "tetragon:\n  exportFilename: tetragon.log\n".into(),
    );
    put(
        "values/prometheus.yaml",
        format!(
            "server:\n  global:\n    scrape_interval: {}s\n",
            config.scrape_interval.as_secs()
        ),
    );
    put(
        "values/grafana.yaml",
        format!(
            "service:\n  port: {}\nadmin:\n  existingSecret: kovenant-grafana\n  userKey: admin-user\n  passwordKey: admin-password\nsidecar:\n  dashboards:\n    enabled: true\n    label: grafana_dashboard\n",
            config.grafana.port
        ),
    );
    put(
        "charts/kovenant-pipeline/Chart.yaml",
        format!(
            "apiVersion: v2\nname: kovenant-pipeline\nversion: {}\n",
            env!("CARGO_PKG_VERSION")
        ),
    );
    put(
        "charts/kovenant-pipeline/values.yaml",
        format!(
            "image: {image_ref}\ninfluxdb:\n  bucket: {}\n",
            config.influxdb.bucket
        ),
    );
    put(
        "charts/kovenant-pipeline/templates/NOTES.txt",
        "kovenant pipeline\n".into(),
    );
    for (name, func) in [("kovenant-tcp", "tcp_connect"), ("kovenant-io", "sys_read")] {
        put(
            &format!("policies/{name}.yaml"),
            format!(
                "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: {name}\nspec:\n  kprobes:\n  - call: {func}\n    syscall: false\n"
            ),
        );
    }
    put(
        "dashboards/overview.json",
        "{\"uid\":\"kovenant-overview\",\"title\":\"kovenant overview\"}".into(),
    );
    Ok(r)
}

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
