//! Confirmation prompts: only on a terminal, each naming the flag that skips it.
use dialoguer::Confirm;

use super::Printer;
use crate::error::{Error, Result};

/// Asks once; without a terminal, `--yes` is required (exit 2 with a hint). Ctrl-C at the
/// prompt is an interruption (exit 130) like Ctrl-C anywhere else, with the cursor shown again.
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
    let answer = Confirm::new()
        .with_prompt(format!("{question} (skip with --yes)"))
        .default(false)
        .interact();
    match answer {
        Ok(yes) => Ok(yes),
        // The terminal is in raw mode while dialoguer reads a key, so Ctrl-C arrives as a key
        // that console turns into `Interrupted`; dialoguer has hidden the cursor by then.
        Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
            let term = console::Term::stderr();
            let _ = term.show_cursor();
            let _ = term.write_line("");
            Err(Error::Interrupted)
        }
        Err(e) => {
            let _ = console::Term::stderr().show_cursor();
            Err(Error::step("prompt", e.to_string()))
        }
    }
}
