//! Collects and formats the stack's health, keeping partial results.
use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

pub fn run(_global: &GlobalArgs, _args: &StatusArgs, _printer: &Printer) -> Result<()> {
    Err(Error::step("status", "not implemented yet"))
}
