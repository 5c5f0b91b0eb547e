//! The telegraf-tetragon image through the Docker Engine API (bollard).
use crate::cli::{GlobalArgs, ImageArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

pub fn run_image_command(
    _global: &GlobalArgs,
    _args: &ImageArgs,
    _printer: &Printer,
) -> Result<()> {
    Err(Error::step("image", "not implemented yet"))
}
