//! `ConfigError` and where a value came from: every message names the place, the key and the fix.
use std::fmt;
use std::path::PathBuf;

use super::validate::Problem;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File {
        path: PathBuf,
        line: usize,
    },
    Environment,
    Default,
    /// A command-line option, e.g. `--namespace`.
    Flag(&'static str),
}

/// An invalid configuration: names the file, line and key, and what is expected. The message never
/// holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn hint(&self) -> Option<String> {
        self.hint.clone()
    }

    /// One error for several problems: the only one as it is, or a count followed by each message
    /// and its hint, in the order given. `None` when there is none.
    pub fn combine(mut problems: Vec<ConfigError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            n => {
                let mut message = format!("{n} problems in the configuration:");
                for p in &problems {
                    message.push_str(&format!("\n  {}", p.message));
                    if let Some(h) = &p.hint {
                        message.push_str(&format!("\n    hint: {h}"));
                    }
                }
                Some(ConfigError {
                    message,
                    hint: None,
                })
            }
        }
    }

    /// A value that failed its check. `value` is `None` for secrets: then it is not shown.
    pub fn invalid(
        at: &Source,
        key: &str,
        value: Option<&str>,
        problem: &Problem,
        default: &str,
    ) -> Self {
        let subject = match value {
            Some(v) => format!("`{v}`"),
            None => "the value".to_string(),
        };
        let message = format!(
            "{}: {subject} {}; expected {}",
            Place(at, key),
            problem.what,
            problem.expected
        );
        ConfigError::new(message, fix(at, key, default))
    }

    /// A key that needs a value was given an empty one.
    pub fn empty(at: &Source, key: &str, expected: &str, default: &str) -> Self {
        let message = format!("{}: set but empty; expected {expected}", Place(at, key));
        ConfigError::new(message, fix(at, key, default))
    }
}

/// "FILE line N: KEY", "environment variable KEY" or "--flag".
pub struct Place<'a>(pub &'a Source, pub &'a str);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Place(at, key) = self;
        match at {
            Source::File { path, line } => write!(f, "{} line {line}: {key}", path.display()),
            Source::Environment => write!(f, "environment variable {key}"),
            Source::Default => write!(f, "default of {key}"),
            Source::Flag(flag) => f.write_str(flag),
        }
    }
}

/// What to do about a bad value at `at`.
fn fix(at: &Source, key: &str, default: &str) -> String {
    let to_default = if default.is_empty() {
        String::new()
    } else {
        format!(" to use the default `{default}`")
    };
    match at {
        Source::File { path, line } => format!(
            "correct {key} on line {line} of {}, or delete the line{to_default}",
            path.display()
        ),
        Source::Environment => {
            format!("correct the environment variable {key}, or unset it{to_default}")
        }
        Source::Default => {
            format!("this is a bug in kovenant's default for {key}; please report it")
        }
        Source::Flag(flag) => format!("pass a valid value to {flag}, or leave it out{to_default}"),
    }
}
