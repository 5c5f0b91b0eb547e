//! The runtime a cluster command runs on: Ctrl-C ends it with exit 130, and it does not exit
//! while a helm it started is still recording what happened.
use std::future::Future;
use std::time::Duration;

use crate::backend::helm::children;
use crate::error::{Error, Result};
use crate::ui::Printer;

/// How long a command waits, after its work ended, for the helm processes it started.
const HELM_GRACE: Duration = Duration::from_secs(30);

/// Runs a command's future on a fresh runtime; Ctrl-C drops it and exits 130. Dropping a helm
/// call sends helm SIGTERM, so helm records the release as failed (not pending, which would lock
/// it); the command then waits for every helm it started (at most 30 s, a second Ctrl-C stops
/// waiting) before it returns. Every step is idempotent, so running the command again completes
/// the work.
pub fn block_on<T, F: Future<Output = Result<T>>>(printer: &Printer, work: F) -> Result<T> {
    let runtime = new()?;
    runtime.block_on(async {
        let out = tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        };
        if children::count() > 0 {
            printer.info(format!(
                "waiting for helm to record the interruption (at most {}s)",
                HELM_GRACE.as_secs()
            ));
            tokio::select! {
                gone = children::wait_all(HELM_GRACE) => {
                    if !gone {
                        printer.warn(
                            "helm is still running: its release may be left pending; \
                             kovenant install unlocks it on the next run",
                        );
                    }
                }
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        out
    })
}

/// The runtime every cluster command runs on: two worker threads, I/O and timers.
pub fn new() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::step("runtime", e.to_string()))
}
