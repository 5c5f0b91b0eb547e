//! The only code that writes to the terminal: a printer, progress (indicatif), prompts.
pub mod browser;
pub mod checks;
mod printer;
pub mod progress;
pub mod prompt;
pub mod trace;
pub mod transfer;

pub use printer::Printer;
