//! The runtime a cluster command runs on: Ctrl-C ends it with exit 130.
use std::future::Future;

use crate::error::{Error, Result};

/// Runs a command's future on a fresh runtime; Ctrl-C drops it (helm children are killed on drop)
/// and exits 130. Every step is idempotent, so running the command again completes the work.
pub fn block_on<F: Future<Output = Result<()>>>(work: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::step("runtime", e.to_string()))?;
    runtime.block_on(async {
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    })
}
