//! Error classes, their exit codes, and the hints shown with them.
use std::path::PathBuf;

/// Exit codes, as DESIGN.md section 4 fixes them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNHEALTHY: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
    /// SIGTERM (from `timeout`, CI, systemd): 128 + 15, as shells report it.
    pub const TERMINATED: u8 = 143;
}

/// Every error kovenant shows a user. Each carries what failed; `hint` says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration: a bad value, key or file (exit 2).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The command line or the situation makes the request unusable (exit 2).
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Reading or writing a local file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A step of the work failed (exit 1); `step` names it, `message` carries the tool's own words.
    #[error("{step}: {message}")]
    Step {
        step: String,
        message: String,
        hint: Option<String>,
    },
    /// The user interrupted (Ctrl-C) (exit 130).
    #[error("interrupted")]
    Interrupted,
    /// SIGTERM arrived (`timeout`, a CI runner cancelling the job) (exit 143); handled as
    /// Ctrl-C is.
    #[error("terminated (SIGTERM)")]
    Terminated,
    /// `status` found the stack unhealthy (exit 3); the report has already been printed.
    #[error("the stack is not healthy")]
    Unhealthy,
    /// `status` could not make some of its checks (helm cannot run, say), so it cannot call the
    /// stack healthy or not (exit 1); the report, with what it could check, has been printed.
    #[error("could not check {message}")]
    Unchecked {
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn step(step: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Step {
            step: step.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Usage { hint, .. } | Error::Step { hint, .. } => *hint = Some(text.into()),
            _ => {}
        }
        self
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage { .. } => exit::USAGE,
            Error::Io { .. } | Error::Step { .. } | Error::Unchecked { .. } => exit::FAILURE,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Terminated => exit::TERMINATED,
            Error::Unhealthy => exit::UNHEALTHY,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Usage { hint, .. }
            | Error::Step { hint, .. }
            | Error::Unchecked { hint, .. } => hint.clone(),
            // README's exit codes promise it: every step is idempotent.
            Error::Interrupted | Error::Terminated => Some(
                "run the same command again to finish: it completes what is missing and skips \
                 what is done"
                    .into(),
            ),
            Error::Io { .. } | Error::Unhealthy => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
