//! The closing summary of install: what changed, where Grafana is, how to log in.
use super::preview::{Change, Preview};
use crate::backend::docker::EnsuredImage;
use crate::config::Config;
use crate::plan::steps::{Plan, release, secret};
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
) {
    printer.info("");
    printer.info("Summary:");
    if let Some(image) = image {
        printer.info(super::image::summary(image));
    }
    for (r, c) in plan.releases.iter().zip(&preview.releases) {
        printer.info(format!("  release {:<22} {}", r.name, past(*c)));
    }
    for (s, c) in plan.secrets.iter().zip(&preview.secrets) {
        printer.info(format!("  Secret  {:<22} {}", s.name, past(*c)));
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
    let ns = &config.namespace;
    match (&config.external_url, &config.ingress_class) {
        (Some(url), Some(_)) => {
            printer.info(format!(
                "Grafana: {}/grafana",
                url.as_str().trim_end_matches('/')
            ));
        }
        _ => {
            printer.info(format!(
                "Grafana: kubectl -n {ns} port-forward svc/{} 3000:{}  then open http://localhost:3000",
                release::GRAFANA,
                config.grafana.port
            ));
        }
    }
    printer.info(format!("  user:     {}", config.grafana.admin_user));
    printer.info(format!(
        "  password: kubectl -n {ns} get secret {} -o jsonpath='{{.data.admin-password}}' | base64 -d",
        secret::GRAFANA
    ));
}
