//! Human output on stderr, machine output on stdout; quiet, verbose and colour decided once.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::io::IsTerminal;

use console::Style;

use crate::cli::GlobalArgs;
use crate::error::Error;

/// How much to say, and whether stderr is a terminal that can take colour and progress bars.
#[derive(Debug, Clone)]
pub struct Printer {
    pub verbose: bool,
    pub quiet: bool,
    pub color: bool,
    pub interactive: bool,
    /// Normal lines are the command's data (the plan of `install --dry-run`): on stdout, and
    /// shown with --quiet too.
    pub data: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color =
            global.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = stderr_tty && !no_color;
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(color && std::io::stdout().is_terminal());
        if global.verbose {
            super::trace::enable();
        }
        Printer {
            verbose: global.verbose,
            quiet: global.quiet,
            color,
            interactive: stderr_tty && std::io::stdin().is_terminal(),
            data: false,
        }
    }

    /// A printer for tests and non-terminal use: plain, not quiet.
    pub fn plain() -> Self {
        Printer {
            verbose: false,
            quiet: false,
            color: false,
            interactive: false,
            data: false,
        }
    }

    fn style(&self, style: Style) -> Style {
        if self.color { style } else { Style::new() }
    }

    /// This printer with its normal lines turned into data, on stdout.
    pub fn as_data(&self) -> Printer {
        Printer {
            data: true,
            ..self.clone()
        }
    }

    /// A normal line of progress or result.
    pub fn info(&self, msg: impl AsRef<str>) {
        if self.data {
            println!("{}", msg.as_ref());
        } else if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A line shown even with --quiet (a failure's own report).
    pub fn always(&self, msg: impl AsRef<str>) {
        eprintln!("{}", msg.as_ref());
    }

    /// Detail shown only with --verbose.
    pub fn debug(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("{}", self.style(Style::new().dim()).apply_to(msg.as_ref()));
        }
    }

    pub fn success(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!(
                "{} {}",
                // The same mark as the check lists (linkerd's), so one run shows one glyph.
                self.style(Style::new().green()).apply_to("√"),
                msg.as_ref()
            );
        }
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!(
            "{} {}",
            self.style(Style::new().yellow().bold())
                .apply_to("warning:"),
            msg.as_ref()
        );
    }

    /// Renders an error once: `error:`, its causes, and a `hint:`.
    pub fn error(&self, err: &Error) {
        eprintln!(
            "{} {err}",
            self.style(Style::new().red().bold()).apply_to("error:")
        );
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            // thiserror's `#[from]`/transparent variants repeat the message; show only new text.
            let text = cause.to_string();
            if !err.to_string().contains(&text) {
                eprintln!(
                    "  {} {text}",
                    self.style(Style::new().dim()).apply_to("Caused by:")
                );
            }
            source = cause.source();
        }
        if let Some(hint) = err.hint() {
            eprintln!(
                "{} {hint}",
                self.style(Style::new().cyan().bold()).apply_to("hint:")
            );
        }
    }

    /// Machine output (JSON, generated files' listing) on stdout.
    pub fn stdout(&self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
    }
}
