//! Executes a Plan step by step (install) and tears it down (uninstall).
mod coexist;
mod diff;
mod image;
mod install;
mod objects;
mod platforms;
mod preflight;
mod preview;
mod repos;
mod secrets;
mod summary;
pub(crate) mod tokens;
mod uninstall;
mod unlock;

use crate::cli::{GlobalArgs, InstallArgs, UninstallArgs};
use crate::cluster::runtime::block_on;
use crate::error::Result;
use crate::ui::Printer;

pub use preview::Change;

pub fn install(global: &GlobalArgs, args: &InstallArgs, printer: &Printer) -> Result<()> {
    block_on(printer, install::run(global, args, printer))
}

pub fn uninstall(global: &GlobalArgs, args: &UninstallArgs, printer: &Printer) -> Result<()> {
    block_on(printer, uninstall::run(global, args, printer))
}
