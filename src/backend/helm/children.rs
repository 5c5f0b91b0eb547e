//! The helm processes kovenant runs. Dropping the future that waits for one (Ctrl-C, or the
//! fail-fast watcher winning a `select!`) sends it SIGTERM, never SIGKILL: helm then cancels its
//! operation and records the release as failed, where a killed helm would leave it pending and
//! locked. Each is reaped by a task of its own, and [`wait_all`] lets a command wait for them
//! before the process exits.
use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tokio::process::Command;

/// Helm processes started and not yet reaped, by pid.
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends SIGTERM to the child when dropped before [`TermOnDrop::disarm`].
struct TermOnDrop(Option<u32>);

impl TermOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        // Registered means not reaped yet (it leaves the set only once waited for), so the pid
        // is still this child's, alive or a zombie.
        let set = running();
        if set.contains(&pid)
            && let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw)
        {
            let _ = kill_process(p, Signal::TERM);
        }
    }
}

/// Runs the command to completion (stdin closed, output captured) as a registered child.
pub async fn output(mut cmd: Command) -> std::io::Result<Output> {
    cmd.kill_on_drop(false)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn()?;
    let pid = child.id();
    if let Some(pid) = pid {
        running().insert(pid);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let out = child.wait_with_output().await;
        if let Some(pid) = pid {
            running().remove(&pid);
        }
        let _ = tx.send(out);
    });
    let term = TermOnDrop(pid);
    let out = rx.await;
    term.disarm();
    out.unwrap_or_else(|_| Err(std::io::Error::other("the task reaping helm went away")))
}

/// How many helm processes are running.
pub fn count() -> usize {
    running().len()
}

/// Waits until no helm process is running, or `timeout` passes; `true` when none is left.
pub async fn wait_all(timeout: Duration) -> bool {
    let start = Instant::now();
    while count() > 0 {
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
