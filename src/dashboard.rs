//! `kovenant dashboard`: Grafana on a local port through a port-forward to a ready Grafana pod
//! (no kubectl needed), the URL and how to log in, a browser on a desktop; until Ctrl-C.
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::backend::forward;
use crate::cli::{DashboardArgs, GlobalArgs};
use crate::cluster::session;
use crate::error::{Error, Result};
use crate::plan::secrets;
use crate::plan::steps::release;
use crate::status::collect::{GRAFANA_HTTP_PORT, ready_pod};
use crate::ui::Printer;

pub fn run(global: &GlobalArgs, args: &DashboardArgs, printer: &Printer) -> Result<()> {
    let runtime = crate::cluster::runtime::new()?;
    runtime.block_on(async {
        // Ctrl-C is how a user ends the dashboard: exit 0, as `kubectl port-forward` does.
        tokio::select! {
            r = serve(global, args, printer) => r,
            _ = tokio::signal::ctrl_c() => {
                printer.info("stopped");
                Ok(())
            }
        }
    })
}

async fn serve(global: &GlobalArgs, args: &DashboardArgs, printer: &Printer) -> Result<()> {
    let config = session::config(global, &args.env, printer)?;
    let kube = session::connect(global).await?;
    let ns = config.namespace.as_str();
    let pod = ready_pod(&kube, ns, release::GRAFANA, "grafana")
        .await
        .ok_or_else(|| {
            Error::step(
                "dashboard",
                format!(
                    "no Grafana pod is ready in namespace {ns} of context {}",
                    kube.context
                ),
            )
            .with_hint("kovenant status names what is missing; kovenant install puts it there")
        })?;
    let wanted = SocketAddr::new(args.address, args.port);
    let listener = TcpListener::bind(wanted).await.map_err(|e| {
        Error::step("dashboard", format!("cannot listen on {wanted}: {e}"))
            .with_hint("pass --port N for another port, or --port 0 for any free one")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::step("dashboard", e.to_string()))?;
    // Grafana serves under /grafana/ (the chart's serve_from_sub_path), here as behind the ingress.
    let url = format!("http://{local}/grafana/");
    printer.info(format!(
        "Grafana of context {} (pod {ns}/{pod}, port {GRAFANA_HTTP_PORT}), forwarded through the API server:",
        kube.context
    ));
    let user = &config.grafana.admin_user;
    let source = format!(
        "Secret {ns}/{}, key {}",
        secrets::GRAFANA_SECRET,
        secrets::GRAFANA_PASSWORD_KEY
    );
    if args.print_password {
        // Asked for by name: the one place kovenant shows a secret, on the terminal's stream.
        let password = kube
            .secret_value(ns, secrets::GRAFANA_SECRET, secrets::GRAFANA_PASSWORD_KEY)
            .await
            .ok_or_else(|| {
                Error::step(
                    "dashboard",
                    format!("cannot read the password from {source}"),
                )
                .with_hint("it needs `get secrets` in the namespace; kovenant install creates it")
            })?;
        printer.always(format!(
            "log in as {user} with password {password} (from {source})"
        ));
    } else {
        printer.info(format!(
            "log in as {user}; the password is in {source}: kovenant dashboard --print-password \
             shows it"
        ));
    }
    // The URL last: a script that reads it (the line says the forward is ready) has had every
    // line before it, the password's included.
    printer.stdout(&url);
    if !args.no_browser {
        crate::ui::browser::open(printer, &url);
    }
    printer.info("Ctrl-C to stop");
    forward::serve(&kube, ns, &pod, GRAFANA_HTTP_PORT, listener)
        .await
        .map_err(|e| Error::step("dashboard", e))
}
