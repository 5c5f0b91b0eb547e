//! Spinners and bars on a terminal, plain lines otherwise: the only module that knows indicatif.
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::Printer;

/// stderr as indicatif's draw target, less the blanks indicatif pads each line with up to the
/// right margin. Those leave the cursor in the terminal's pending-wrap state, so the `^C` a
/// terminal echoes on Ctrl-C wraps onto the next line, and clearing the spinner then clears
/// that line instead and leaves the spinner's last frame on the screen above the error. Without
/// them the echo lands on the spinner's own line and is cleared with it. (indicatif's clear
/// starts each draw with a carriage return and an erase of the line, so the blanks are not
/// needed to hide a longer previous frame.)
#[derive(Debug)]
struct Unpadded(console::Term);

impl TermLike for Unpadded {
    fn width(&self) -> u16 {
        self.0.size().1
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        // The filler is written on its own, as blanks alone; a frame always has its spinner.
        if !s.is_empty() && s.bytes().all(|b| b == b' ') {
            return Ok(());
        }
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A spinner with `label` on a terminal; otherwise prints `• label` once and returns `None`.
pub(crate) fn spinner(printer: &Printer, label: &str) -> Option<ProgressBar> {
    if printer.interactive && !printer.quiet {
        let target = ProgressDrawTarget::term_like_with_hz(
            Box::new(Unpadded(console::Term::buffered_stderr())),
            20,
        );
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    } else {
        printer.info(format!("• {label}"));
        None
    }
}

/// A step in progress: a spinner on a terminal, a start line otherwise.
pub struct Step {
    pub(super) bar: Option<ProgressBar>,
    pub(super) printer: Printer,
    pub(super) label: String,
    started: Instant,
}

impl Step {
    pub fn start(printer: &Printer, label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = spinner(printer, &label);
        Step {
            bar,
            printer: printer.clone(),
            label,
            started: Instant::now(),
        }
    }

    /// A wait that shows a spinner on a terminal and nothing elsewhere (its caller reports the
    /// outcome): the connect wait of status and preflight.
    pub fn wait(printer: &Printer, label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = if printer.interactive && !printer.quiet {
            spinner(printer, &label)
        } else {
            None
        };
        Step {
            bar,
            printer: printer.clone(),
            label,
            started: Instant::now(),
        }
    }

    /// Updates the message shown next to the spinner (or prints it as a line).
    pub fn message(&self, msg: impl AsRef<str>) {
        self.say(msg.as_ref(), |p, line| p.debug(format!("  {line}")));
    }

    /// `msg` next to the spinner on a terminal; otherwise `plain` prints it.
    pub(super) fn say(&self, msg: &str, plain: impl FnOnce(&Printer, &str)) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} — {msg}", self.label)),
            None => plain(&self.printer, msg),
        }
    }

    /// Clears the spinner and prints "label outcome".
    pub fn finish(self, outcome: impl AsRef<str>) {
        let line = format!("{} {}", self.label, outcome.as_ref());
        self.finish_as(line);
    }

    /// Clears the spinner and prints `line` in place of the label, for a label that reads as an
    /// action ("Removing X") whose outcome is a sentence of its own ("X removed").
    pub fn finish_as(self, line: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.printer.success(line.as_ref());
        super::trace::line(format!(
            "step `{}` took {}",
            self.label,
            super::trace::took(self.started.elapsed())
        ));
    }

    /// Clears the spinner; the caller reports the error.
    pub fn fail(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        super::trace::line(format!(
            "step `{}` failed after {}",
            self.label,
            super::trace::took(self.started.elapsed())
        ));
    }

    /// Clears the spinner without a line (a wait whose result the caller reports itself).
    pub fn clear(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A step dropped unfinished (Ctrl-C drops the work mid-step) clears its spinner, so no stale
/// frame stays on the screen above the error.
impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}
