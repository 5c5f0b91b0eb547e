//! The closing summary of install: what changed, where Grafana is, how to log in.
use super::preview::{Change, Preview};
use super::tokens::{Tokens, Verdict};
use crate::backend::docker::EnsuredImage;
use crate::config::Config;
use crate::plan::secrets::GRAFANA_PASSWORD_KEY;
use crate::plan::steps::{Plan, secret};
use crate::ui::Printer;

pub fn past(change: Change) -> &'static str {
    match change {
        Change::Create => "created",
        Change::Update => "updated",
        Change::Unchanged => "unchanged",
        Change::Delete => "deleted",
    }
}

pub fn print(
    printer: &Printer,
    config: &Config,
    plan: &Plan,
    preview: &Preview,
    image: Option<&EnsuredImage>,
    tokens: &Tokens,
) {
    printer.info("");
    printer.info("Summary:");
    if let Some(image) = image {
        printer.info(super::image::summary(image));
    }
    for (ns, c) in plan.namespaces.iter().zip(&preview.namespaces) {
        printer.info(format!("  namespace {ns:<20} {}", past(*c)));
    }
    for (r, c) in plan.releases.iter().zip(&preview.releases) {
        printer.info(format!("  release {:<22} {}", r.name, past(*c)));
    }
    for (s, c) in plan.secrets.iter().zip(&preview.secrets) {
        printer.info(format!("  Secret  {:<22} {}", s.name, past(*c)));
    }
    // The InfluxDB tokens of telegraf and Grafana: Secrets install makes once InfluxDB runs.
    for t in &tokens.states {
        let done = match t.verdict {
            Verdict::Create(_) => "created",
            Verdict::Rotate => "rotated",
            Verdict::Keep => "unchanged",
        };
        printer.info(format!("  Secret  {:<22} {done}", t.scope.secret));
    }
    for (o, c) in plan.objects.iter().zip(&preview.objects) {
        printer.info(format!("  {:<30} {}", super::objects::label(o), past(*c)));
    }
    for (o, c) in plan.retired.iter().zip(&preview.retired) {
        if *c == Change::Delete {
            printer.info(format!("  {:<30} {}", super::objects::label(o), past(*c)));
        }
    }
    printer.info("");
    for line in grafana_lines(config) {
        printer.info(line);
    }
}

/// Where Grafana is and how to log in: `kovenant dashboard` (the same `/grafana/` path as the
/// ingress), and the password through it rather than a kubectl pipeline.
pub fn grafana_lines(config: &Config) -> [String; 3] {
    let ns = &config.namespace;
    let at = match (&config.external_url, &config.ingress_class) {
        (Some(url), Some(_)) => format!(
            "Grafana: {}/grafana/ (or kovenant dashboard, through the API server)",
            url.as_str().trim_end_matches('/')
        ),
        _ => "Grafana: kovenant dashboard (then http://127.0.0.1:3000/grafana/)".to_string(),
    };
    [
        at,
        format!("  user:     {}", config.grafana.admin_user),
        format!(
            "  password: kovenant dashboard --print-password (it is in Secret {ns}/{}, key {})",
            secret::GRAFANA,
            GRAFANA_PASSWORD_KEY
        ),
    ]
}
