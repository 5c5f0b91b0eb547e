//! Collects and formats the stack's health, keeping partial results.
mod agents;
pub(crate) mod collect;
pub mod drops;
pub mod report;

use std::time::{Duration, Instant};

use crate::backend::kube::Kube;
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::cluster::wait::Deadline;
use crate::cluster::{lease, runtime, session};
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
        && !matches!(e, Error::Unhealthy | Error::Unchecked { .. })
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

/// How long one check may take when `--timeout` leaves less.
const ONE_CHECK: Duration = Duration::from_secs(5);

/// How long `--wait` sleeps between two looks.
const POLL: Duration = Duration::from_secs(5);

/// Connects; with `--wait`, keeps trying until the deadline (a cluster still starting), and
/// then fails with the last attempt's error (which names the context and server), not with a
/// new attempt that the deadline would cut short.
async fn connect(
    global: &GlobalArgs,
    args: &StatusArgs,
    deadline: Deadline,
    printer: &Printer,
) -> Result<Kube> {
    let step = Step::wait(printer, "Connecting to the API server");
    loop {
        match session::connect(global).await {
            Ok(k) => {
                step.clear();
                return Ok(k);
            }
            Err(e) if args.wait && !deadline.left().is_zero() => {
                step.message(format!("{e}; trying again"));
                let next = (Instant::now() + POLL).min(deadline.at());
                tokio::time::sleep_until(next.into()).await;
                if deadline.left().is_zero() {
                    step.clear();
                    return Err(still_at_the_end(e, deadline));
                }
            }
            Err(e) => {
                step.clear();
                return Err(e);
            }
        }
    }
}

/// The last attempt's error, saying it still stood when `--timeout` ended.
fn still_at_the_end(e: Error, deadline: Deadline) -> Error {
    match e {
        Error::Step {
            step,
            message,
            hint,
        } => Error::Step {
            step,
            message: format!(
                "{message}; still failing at the end of --timeout {}",
                crate::config::duration::format(deadline.total())
            ),
            hint,
        },
        e => e,
    }
}

async fn run_async(global: &GlobalArgs, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let start = Instant::now();
    // --timeout bounds the whole command: a check still waiting for the API server then ends.
    let deadline = Deadline::after(args.timeout);
    let config = session::config(global, &args.env, printer)?;
    let helm = session::helm(global, &config);
    helm.stop_at(move || deadline.at());
    let assets = match &global.assets {
        Some(dir) => crate::assets::Assets::from_dir(dir)?,
        None => crate::assets::Assets::embedded(),
    };
    // The expected policies and dashboards are the ones install would apply.
    // Only the names of policies and dashboards are compared, and the image reference changes
    // none of them: no need to hash the agent binary for its content tag here.
    let rendered = crate::plan::render_all(&config, &assets, NAMES_ONLY_IMAGE)?;
    let plan = steps::build(&config, &rendered, &[])?;
    let kube = deadline
        .bound(
            "status",
            Duration::ZERO,
            connect(global, args, deadline, printer),
            || session::probe(global),
        )
        .await?;
    // Without helm no release can be checked: that is "could not check" (exit 1), never
    // "not installed" (exit 3).
    helm.version().await.map_err(|e| Error::Step {
        step: "status: could not check the helm releases".into(),
        message: e.to_string(),
        hint: e.hint(),
    })?;
    // status only reads the lock: a run holding it is changing what this reports.
    for ns in [&config.namespace, &config.tetragon_namespace] {
        if let Ok(Some(h)) = lease::holder(&kube, ns).await {
            printer.warn(format!(
                "a kovenant run holds the lock on namespace {ns}: {}; it is changing what this \
                 reports",
                h.describe(k8s_openapi::jiff::Timestamp::now())
            ));
        }
    }
    let mut last = None;
    let report = loop {
        let step = Step::wait(
            printer,
            format!("Checking the stack in context {}", kube.context),
        );
        // A --timeout shorter than one check still gets one complete report: its helm calls
        // too, or a helm stopped at the deadline would turn the report into "could not check".
        let check = deadline.at_least(ONE_CHECK);
        helm.stop_at(move || check.at());
        let collected = check
            .bound(
                "status",
                Duration::ZERO,
                async { Ok(collect::collect(&kube, &helm, &config, &plan).await) },
                || session::probe(global),
            )
            .await;
        step.clear();
        let report = match (collected, last.take()) {
            (Ok(r), _) => r,
            // The time is up in the middle of a check: the last complete report stands.
            (Err(e), Some(r)) => {
                printer.warn(e.to_string());
                break r;
            }
            (Err(e), None) => return Err(e),
        };
        // Waiting does not bring a missing helm.
        let settled = report.healthy || !report.cannot_check.is_empty();
        // The next check starts only where it can finish before the deadline: one cut short
        // would say less than this one.
        let room = deadline.left().saturating_sub(ONE_CHECK);
        if settled || !args.wait || room.is_zero() {
            break report;
        }
        let pause = POLL.min(room);
        printer.info(format!(
            "not healthy yet ({}); checking again in {}s",
            report.summary(),
            pause.as_secs_f64().ceil() as u64
        ));
        tokio::time::sleep(pause).await;
        last = Some(report);
    };
    match args.output {
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::step("status", e.to_string()))?;
            printer.stdout(text);
        }
        OutputFormat::Text => report::print_text(printer, &report),
    }
    if let Some(first) = report.cannot_check.first() {
        return Err(Error::Unchecked {
            message: first.clone(),
            hint: Some(
                "status needs helm to read the releases: install it, or set KOVENANT_HELM".into(),
            ),
        });
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
