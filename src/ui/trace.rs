//! `-v`: one line on stderr per thing kovenant does (a helm command, an API call, a step), with
//! its time. Set once from the command line; the back ends call [`line`] and never print.
#![allow(clippy::print_stderr)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static ON: AtomicBool = AtomicBool::new(false);

/// Turns tracing on (`-v`).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A trace line, shown only with `-v`. Callers pass text that holds no secret.
pub fn line(msg: impl AsRef<str>) {
    if enabled() {
        eprintln!("  [trace] {}", msg.as_ref());
    }
}

/// A duration as a trace shows it: `12ms`, `1.4s`.
pub fn took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
