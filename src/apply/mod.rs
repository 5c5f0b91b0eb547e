//! Executes a Plan step by step (install) and tears it down (uninstall).
use crate::cli::{GlobalArgs, InstallArgs, UninstallArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

pub fn install(_global: &GlobalArgs, _args: &InstallArgs, _printer: &Printer) -> Result<()> {
    Err(Error::step("install", "not implemented yet"))
}

pub fn uninstall(_global: &GlobalArgs, _args: &UninstallArgs, _printer: &Printer) -> Result<()> {
    Err(Error::step("uninstall", "not implemented yet"))
}
