//! Confirmation prompts: only on a terminal, each naming the flag that skips it.
use std::io::Write;

use super::Printer;
use crate::error::{Error, Result};

/// Asks once; without a terminal, `--yes` is required (exit 2 with a hint).
///
/// The answer is read as a line with the terminal left as it is (no raw mode): the cursor stays
/// visible, what is typed shows, and Enter confirms it, whatever the key (`y` or `yes` is yes,
/// anything else, Enter alone included, is no), as `apt` and `terraform apply` ask. Ctrl-C is a
/// signal then, not a key: the command's runtime ends the work with exit 130, which drops this
/// future; the prompt's line is ended first so the error starts on a line of its own.
pub async fn confirm(printer: &Printer, question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !printer.interactive {
        return Err(Error::usage(
            "not on a terminal, so kovenant cannot ask for confirmation",
            Some("re-run with --yes to proceed without asking".to_string()),
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} (skip with --yes) [y/N] ");
    let _ = stderr.flush();
    let open = OpenLine;
    // A thread of its own, not the runtime's: a read of the terminal cannot be cancelled, and a
    // blocking task would hold the runtime's shutdown until Enter after a Ctrl-C.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line).map(|n| (n, line));
        let _ = tx.send(read);
    });
    let read = rx.await;
    std::mem::forget(open);
    match read {
        Ok(Ok((0, _))) => {
            // End of input (Ctrl-D): no answer, so no.
            let _ = writeln!(std::io::stderr());
            Ok(false)
        }
        Ok(Ok((_, line))) => Ok(is_yes(&line)),
        Ok(Err(e)) => Err(Error::step(
            "prompt",
            format!("cannot read the answer: {e}"),
        )),
        Err(_) => Err(Error::step("prompt", "cannot read the answer")),
    }
}

/// `y` or `yes`, any case, surrounding blanks ignored.
fn is_yes(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Ends the prompt's line when the prompt is abandoned unanswered (Ctrl-C drops the future).
struct OpenLine;

impl Drop for OpenLine {
    fn drop(&mut self) {
        let _ = writeln!(std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::is_yes;

    #[test]
    fn only_y_or_yes_is_yes() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \r\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["\n", "n\n", "no\n", "ye\n", "yess\n", "y es\n", "q\n"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
