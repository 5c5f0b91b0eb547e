//! Collects and formats the stack's health, keeping partial results.
pub(crate) mod collect;
pub mod report;

use std::time::{Duration, Instant};

use crate::backend::kube::Kube;
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::cluster::{runtime, session};
use crate::error::{Error, Result};
use crate::plan::steps;
use crate::ui::Printer;
use crate::ui::progress::Step;

/// The image reference status renders with: status never looks at the chart's image.
const NAMES_ONLY_IMAGE: &str = "telegraf-tetragon:status";

pub fn run(global: &GlobalArgs, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let out = runtime::block_on(printer, run_async(global, args, printer));
    // `-o json` prints JSON whatever happens: a run that made no report (bad configuration, no
    // cluster, Ctrl-C) prints one saying why, and exits with that error's code.
    if let (Err(e), OutputFormat::Json) = (&out, args.output)
        && !matches!(e, Error::Unhealthy)
    {
        let mut message = e.to_string();
        if let Some(h) = e.hint() {
            message.push_str(&format!(" (hint: {h})"));
        }
        let context = global.context.clone().unwrap_or_default();
        let report = report::Report::unchecked(context, message);
        if let Ok(text) = serde_json::to_string_pretty(&report) {
            printer.stdout(text);
        }
    }
    out
}

/// How long `--wait` sleeps between two looks.
const POLL: Duration = Duration::from_secs(5);

/// Connects; with `--wait`, keeps trying until the deadline (a cluster still starting).
async fn connect(
    global: &GlobalArgs,
    args: &StatusArgs,
    start: Instant,
    printer: &Printer,
) -> Result<Kube> {
    let step = Step::wait(printer, "Connecting to the API server");
    loop {
        match session::connect(global).await {
            Ok(k) => {
                step.clear();
                return Ok(k);
            }
            Err(e) if args.wait && start.elapsed() < args.timeout => {
                step.message(format!("{e}; trying again"));
                tokio::time::sleep(POLL.min(args.timeout.saturating_sub(start.elapsed()))).await;
            }
            Err(e) => {
                step.clear();
                return Err(e);
            }
        }
    }
}

async fn run_async(global: &GlobalArgs, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let start = Instant::now();
    let config = session::config(global, &args.env, printer)?;
    let helm = session::helm(global, &config);
    let assets = match &global.assets {
        Some(dir) => crate::assets::Assets::from_dir(dir)?,
        None => crate::assets::Assets::embedded(),
    };
    // The expected policies and dashboards are the ones install would apply.
    // Only the names of policies and dashboards are compared, and the image reference changes
    // none of them: no need to hash the agent binary for its content tag here.
    let rendered = crate::plan::render_all(&config, &assets, NAMES_ONLY_IMAGE)?;
    let plan = steps::build(&config, &rendered, &[])?;
    let kube = connect(global, args, start, printer).await?;
    // Without helm no release can be checked: that is "could not check" (exit 1), never
    // "not installed" (exit 3).
    helm.version().await.map_err(|e| Error::Step {
        step: "status: could not check the helm releases".into(),
        message: e.to_string(),
        hint: e.hint(),
    })?;
    let report = loop {
        let step = Step::wait(
            printer,
            format!("Checking the stack in context {}", kube.context),
        );
        let report = collect::collect(&kube, &helm, &config, &plan).await;
        step.clear();
        if report.healthy || !args.wait || start.elapsed() >= args.timeout {
            break report;
        }
        printer.info(format!(
            "not healthy yet ({}); checking again in {}s",
            report.summary(),
            POLL.as_secs()
        ));
        tokio::time::sleep(POLL.min(args.timeout.saturating_sub(start.elapsed()))).await;
    };
    match args.output {
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::step("status", e.to_string()))?;
            printer.stdout(text);
        }
        OutputFormat::Text => report::print_text(printer, &report),
    }
    if report.healthy {
        Ok(())
    } else {
        if args.wait {
            printer.always(format!(
                "still not healthy after {}s (--timeout {})",
                start.elapsed().as_secs(),
                crate::config::duration::format(args.timeout)
            ));
        }
        Err(Error::Unhealthy)
    }
}
