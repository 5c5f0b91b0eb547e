//! `kovenant render`: write everything install would apply to a folder.
use crate::cli::{GlobalArgs, RenderArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

pub fn run(_global: &GlobalArgs, _args: &RenderArgs, _printer: &Printer) -> Result<()> {
    Err(Error::step("render", "not implemented yet"))
}
