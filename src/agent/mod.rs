//! `kovenant agent`: Tetragon JSON events -> attributed, windowed InfluxDB line protocol.
use crate::cli::AgentArgs;
use crate::error::{Error, Result};
use crate::ui::Printer;

pub fn run(_args: &AgentArgs, _printer: &Printer) -> Result<()> {
    Err(Error::step("agent", "not implemented yet"))
}
