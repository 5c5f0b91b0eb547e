//! Byte progress for a stream of work (image build and push): an indicatif bar on a terminal, plain lines otherwise.

use indicatif::ProgressStyle;

use super::Printer;
use super::progress::Step;

/// A long step that reports named stages and, sometimes, bytes moved: a `Step` whose spinner
/// can turn into a byte bar.
pub struct Transfer {
    step: Step,
    has_bytes: bool,
}

impl Transfer {
    pub fn start(printer: &Printer, label: impl Into<String>) -> Self {
        Transfer {
            step: Step::start(printer, label),
            has_bytes: false,
        }
    }

    /// A new stage ("Step 2/3 : COPY ..."): the bar's message, or a line of its own.
    pub fn stage(&self, msg: impl AsRef<str>) {
        self.step
            .say(msg.as_ref(), |p, line| p.info(format!("  {line}")));
    }

    /// Detail within a stage: the bar's message, or a line with --verbose.
    pub fn detail(&self, msg: impl AsRef<str>) {
        self.step
            .say(msg.as_ref(), |p, line| p.debug(format!("    {line}")));
    }

    /// Bytes done out of a total: turns the spinner into a byte bar. Plain output shows none.
    pub fn bytes(&mut self, done: u64, total: u64) {
        let Some(bar) = &self.step.bar else { return };
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
        self.step.finish(outcome);
    }

    /// Clears the bar; the caller reports the error.
    pub fn fail(self) {
        self.step.fail();
    }
}
