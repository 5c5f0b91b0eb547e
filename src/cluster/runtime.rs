//! The runtime a cluster command runs on, and how every run ends: Ctrl-C (exit 130) and SIGTERM
//! (exit 143) stop the work, helm processes still running are told to stop and given a short
//! grace to record their release, the run's leases are let go and its folder removed.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use super::{lease, run_dir};
use crate::backend::helm::children;
use crate::error::{Error, Result};
use crate::ui::Printer;

/// Set once the command's work has ended and its ending is under way.
static ENDING: AtomicBool = AtomicBool::new(false);

/// How long after SIGTERM a run whose main thread is held (by the confirmation prompt, which
/// reads the terminal) is ended from another thread.
const HELD_MAIN: Duration = Duration::from_secs(2);

/// Runs a command's future on a fresh runtime. Ctrl-C or SIGTERM drops it (exit 130 or 143);
/// dropping a helm call sends helm SIGTERM, so helm records the release as failed (not pending,
/// which would lock it). Whatever ended the work, helm processes still running get
/// [`children::KILL_GRACE`] to stop (a second Ctrl-C or SIGTERM stops the wait), then SIGKILL;
/// then the run's leases go and its folder is removed. Every step is idempotent, so running the
/// command again completes the work.
pub fn block_on<T, F: Future<Output = Result<T>>>(printer: &Printer, work: F) -> Result<T> {
    let runtime = new()?;
    let out = runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::step("runtime", format!("cannot handle SIGTERM: {e}")))?;
        watchdog(printer.clone());
        // On a signal, the helm processes are listed as the signal comes, before the work is
        // dropped (which sends each SIGTERM): listed after, one that records its release and
        // exits at once would race the list and go unnamed.
        let (out, at_signal) = tokio::select! {
            r = work => (r, None),
            left = async {
                let _ = tokio::signal::ctrl_c().await;
                children::list()
            } => (Err(Error::Interrupted), Some(left)),
            left = async {
                term.recv().await;
                children::list()
            } => (Err(Error::Terminated), Some(left)),
            e = lease::lost() => (Err(e), None),
        };
        ENDING.store(true, Ordering::SeqCst);
        stop_children(printer, &mut term, at_signal).await;
        lease::release().await;
        out
    });
    run_dir::remove();
    out
}

/// Waits for the helm processes still running (they have had SIGTERM: their futures were
/// dropped, or their deadline passed), saying which and why, then kills what is left.
/// `at_signal`: the ones running when a signal came, named even if already gone.
async fn stop_children(
    printer: &Printer,
    term: &mut tokio::signal::unix::Signal,
    at_signal: Option<Vec<(u32, String)>>,
) {
    let left = at_signal.unwrap_or_else(children::list);
    if left.is_empty() {
        return;
    }
    let names: Vec<String> = left
        .iter()
        .map(|(pid, what)| format!("{what} (pid {pid})"))
        .collect();
    printer.info(format!(
        "waiting for {} to stop: it was sent SIGTERM and records its release as failed (at \
         most {}s; Ctrl-C stops waiting)",
        names.join(", "),
        children::KILL_GRACE.as_secs()
    ));
    let gone = tokio::select! {
        gone = children::wait_all(children::KILL_GRACE) => gone,
        _ = tokio::signal::ctrl_c() => false,
        _ = term.recv() => false,
    };
    if !gone {
        let still: Vec<String> = children::list().into_iter().map(|(_, w)| w).collect();
        children::kill_all();
        children::wait_all(Duration::from_secs(1)).await;
        if !still.is_empty() {
            printer.warn(format!(
                "{} did not stop in time and was killed: its release may be left pending; the \
                 next kovenant install unlocks it",
                still.join(", ")
            ));
        }
    }
}

/// SIGTERM while the main thread is held outside the runtime (the confirmation prompt reads the
/// terminal): after [`HELD_MAIN`], if the work has still not ended and no helm runs, the process
/// ends from here, as it would have from the main thread.
fn watchdog(printer: Printer) {
    tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        term.recv().await;
        tokio::time::sleep(HELD_MAIN).await;
        if ENDING.load(Ordering::SeqCst) || children::count() > 0 {
            return;
        }
        lease::release().await;
        run_dir::remove();
        let _ = console::Term::stderr().show_cursor();
        printer.info("");
        printer.error(&Error::Terminated);
        std::process::exit(i32::from(crate::error::exit::TERMINATED));
    });
}

/// The runtime every cluster command runs on: two worker threads, I/O and timers.
pub fn new() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::step("runtime", e.to_string()))
}
