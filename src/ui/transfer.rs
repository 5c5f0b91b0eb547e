//! Byte progress for a stream of work (image build and push): an indicatif bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};

use super::Printer;

/// A long step that reports named stages and, sometimes, bytes moved.
pub struct Transfer {
    bar: Option<ProgressBar>,
    printer: Printer,
    label: String,
    has_bytes: bool,
}

impl Transfer {
    pub fn start(printer: &Printer, label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = super::progress::spinner(printer, &label);
        Transfer {
            bar,
            printer: printer.clone(),
            label,
            has_bytes: false,
        }
    }

    /// A new stage ("Step 2/3 : COPY ..."): the bar's message, or a line of its own.
    pub fn stage(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} — {}", self.label, msg.as_ref())),
            None => self.printer.info(format!("  {}", msg.as_ref())),
        }
    }

    /// Detail within a stage: the bar's message, or a line with --verbose.
    pub fn detail(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} — {}", self.label, msg.as_ref())),
            None => self.printer.debug(format!("    {}", msg.as_ref())),
        }
    }

    /// Bytes done out of a total: turns the spinner into a byte bar. Plain output shows none.
    pub fn bytes(&mut self, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if !self.has_bytes {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {msg} [{bar:24.cyan/blue}] {bytes}/{total_bytes} {elapsed:.dim}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            self.has_bytes = true;
        }
        bar.set_length(total.max(done));
        bar.set_position(done);
    }

    pub fn finish(self, outcome: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.printer
            .success(format!("{} {}", self.label, outcome.as_ref()));
    }

    /// Clears the bar; the caller reports the error.
    pub fn fail(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
