//! Collects and formats the stack's health, keeping partial results.
mod collect;
pub mod report;

use std::time::{Duration, Instant};

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::cluster::{runtime, session};
use crate::error::{Error, Result};
use crate::plan::steps;
use crate::ui::Printer;

/// The image reference status renders with: status never looks at the chart's image.
const NAMES_ONLY_IMAGE: &str = "telegraf-tetragon:status";

pub fn run(global: &GlobalArgs, args: &StatusArgs, printer: &Printer) -> Result<()> {
    runtime::block_on(printer, run_async(global, args, printer))
}

async fn run_async(global: &GlobalArgs, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let config = session::config(global, &args.env, printer)?;
    let helm = session::helm(global, &config);
    let kube = session::connect(global).await?;
    let assets = match &global.assets {
        Some(dir) => crate::assets::Assets::from_dir(dir)?,
        None => crate::assets::Assets::embedded(),
    };
    // The expected policies and dashboards are the ones install would apply.
    // Only the names of policies and dashboards are compared, and the image reference changes
    // none of them: no need to hash the agent binary for its content tag here.
    let rendered = crate::plan::render_all(&config, &assets, NAMES_ONLY_IMAGE)?;
    let plan = steps::build(&config, &rendered, &[])?;
    let start = Instant::now();
    let report = loop {
        let report = collect::collect(&kube, &helm, &config, &plan).await;
        if report.healthy || !args.wait || start.elapsed() >= args.timeout {
            break report;
        }
        printer.debug("not healthy yet; checking again in 5s");
        tokio::time::sleep(
            Duration::from_secs(5).min(args.timeout.saturating_sub(start.elapsed())),
        )
        .await;
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
        Err(Error::Unhealthy)
    }
}
