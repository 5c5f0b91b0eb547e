//! Confirmation prompts: only on a terminal, each naming the flag that skips it.
use dialoguer::Confirm;

use super::Printer;
use crate::error::{Error, Result};

/// Asks once; without a terminal, `--yes` is required (exit 2 with a hint).
pub fn confirm(printer: &Printer, question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !printer.interactive {
        return Err(Error::usage(
            "not on a terminal, so kovenant cannot ask for confirmation",
            Some("re-run with --yes to proceed without asking".to_string()),
        ));
    }
    Confirm::new()
        .with_prompt(format!("{question} (skip with --yes)"))
        .default(false)
        .interact()
        .map_err(|e| Error::step("prompt", e.to_string()))
}
