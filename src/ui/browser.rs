//! Opening a URL in the user's browser, on a desktop only (a display on Linux, or macOS), as
//! `linkerd viz dashboard` does; elsewhere the printed URL is enough.
use std::process::{Command, Stdio};

use super::Printer;

pub fn open(printer: &Printer, url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        printer.debug("no desktop (no DISPLAY or WAYLAND_DISPLAY): not opening a browser");
        return;
    };
    let started = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        // Reaped on a thread of its own: the opener ends at once, the dashboard stays.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => printer.warn(format!(
            "cannot open a browser with {opener}: {e}; open the URL above"
        )),
    }
}
