//! Where Tetragon's events come from: `none`, `stdin`, `file:PATH` (followed like `tail -F`)
//! or `kube-logs`.
pub mod backups;
pub mod file;
pub mod kube;
pub mod lost;
pub mod mapped;
pub mod stdin;

use std::path::PathBuf;

use crate::error::{Error, Result};

/// A parsed `--source` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No Tetragon: host-namespace sockets are attributed through /proc alone.
    None,
    Stdin,
    File(PathBuf),
    KubeLogs,
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        match s {
            "none" => Ok(Source::None),
            "stdin" | "-" => Ok(Source::Stdin),
            "kube-logs" => Ok(Source::KubeLogs),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(Source::File(PathBuf::from(p))),
                _ => Err(Error::usage(
                    format!("unknown --source {s:?}"),
                    Some("use none, stdin, file:PATH or kube-logs".to_string()),
                )),
            },
        }
    }
}

/// Bytes read per call: big enough that per-read costs vanish, small enough to stay cached.
pub const CHUNK: usize = 256 * 1024;
