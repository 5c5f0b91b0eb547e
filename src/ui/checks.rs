//! A check-list reporter in the manner of `linkerd check`: sections, one line per check, hints.
use console::Style;

use super::Printer;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warning,
    Failure,
}

/// Prints checks as they finish and counts the failures.
pub struct Checklist {
    printer: Printer,
    pub failures: usize,
    pub warnings: usize,
}

impl Checklist {
    pub fn new(printer: &Printer) -> Self {
        Checklist {
            printer: printer.clone(),
            failures: 0,
            warnings: 0,
        }
    }

    pub fn printer(&self) -> &Printer {
        &self.printer
    }

    fn style(&self, s: Style) -> Style {
        if self.printer.color { s } else { Style::new() }
    }

    /// A section heading, underlined like linkerd's.
    pub fn section(&self, title: &str) {
        self.printer.info("");
        self.printer.info(title);
        self.printer.info("-".repeat(title.chars().count()));
    }

    /// One check: its title, what was found, and a hint for warnings and failures.
    pub fn report(&mut self, outcome: Outcome, title: &str, detail: &str, hint: Option<&str>) {
        let mark = match outcome {
            Outcome::Ok => self.style(Style::new().green()).apply_to("√"),
            Outcome::Warning => {
                self.warnings += 1;
                self.style(Style::new().yellow()).apply_to("‼")
            }
            Outcome::Failure => {
                self.failures += 1;
                self.style(Style::new().red()).apply_to("×")
            }
        };
        let line = if detail.is_empty() {
            format!("{mark} {title}")
        } else {
            format!("{mark} {title}: {detail}")
        };
        // Failures are printed even with --quiet: they are why the command stops.
        if outcome == Outcome::Failure {
            self.printer.always(line);
        } else {
            self.printer.info(line);
        }
        if let Some(h) = hint.filter(|_| outcome != Outcome::Ok) {
            let text = format!(
                "    {} {h}",
                self.style(Style::new().cyan()).apply_to("hint:")
            );
            if outcome == Outcome::Failure {
                self.printer.always(text);
            } else {
                self.printer.info(text);
            }
        }
    }

    pub fn ok(&mut self, title: &str, detail: &str) {
        self.report(Outcome::Ok, title, detail, None);
    }
    pub fn warn(&mut self, title: &str, detail: &str, hint: &str) {
        self.report(Outcome::Warning, title, detail, Some(hint));
    }
    pub fn fail(&mut self, title: &str, detail: &str, hint: &str) {
        self.report(Outcome::Failure, title, detail, Some(hint));
    }
}
