//! Executes a Plan step by step (install) and tears it down (uninstall).
mod image;
mod install;
mod objects;
mod preflight;
mod preview;
mod secrets;
pub mod session;
mod summary;
mod uninstall;
pub mod wait;

use std::future::Future;

use crate::cli::{GlobalArgs, InstallArgs, UninstallArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

pub use preview::Change;

pub fn install(global: &GlobalArgs, args: &InstallArgs, printer: &Printer) -> Result<()> {
    block_on(install::run(global, args, printer))
}

pub fn uninstall(global: &GlobalArgs, args: &UninstallArgs, printer: &Printer) -> Result<()> {
    block_on(uninstall::run(global, args, printer))
}

/// Runs a command's future on a fresh runtime; Ctrl-C drops it (helm children are killed on drop)
/// and exits 130. Every step is idempotent, so running the command again completes the work.
pub fn block_on<F: Future<Output = Result<()>>>(work: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::step("runtime", e.to_string()))?;
    runtime.block_on(async {
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    })
}
