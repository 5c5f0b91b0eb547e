//! The helm processes kovenant runs, and how they end. Dropping the future that waits for one
//! (Ctrl-C, SIGTERM, or the fail-fast watcher winning a `select!`) sends it SIGTERM: helm then
//! cancels its operation and records the release as failed, where a killed helm would leave it
//! pending and locked. A deadline ends a helm that outlives it the same way, then with SIGKILL
//! after [`KILL_GRACE`] (helm's own `--timeout` does not cover its connection retries: an API
//! server that stops answering holds helm for minutes). Each child is reaped by a task of its
//! own, and [`wait_all`] lets a command wait for them before the process exits. On Linux each
//! child also gets SIGTERM when kovenant dies, so no helm outlives a killed kovenant (and its
//! lease) to go on changing a release.
use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tokio::process::Command;

/// How long a helm told to stop (SIGTERM) has to record its release before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Helm processes started and not yet reaped: pid -> what it does (`helm upgrade --install x`).
static RUNNING: Mutex<BTreeMap<u32, String>> = Mutex::new(BTreeMap::new());

fn running() -> std::sync::MutexGuard<'static, BTreeMap<u32, String>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `signal` to a registered child. Registered means not reaped yet (it leaves the set only
/// once waited for), so the pid is still this child's, alive or a zombie.
fn signal(pid: u32, signal: Signal) {
    let set = running();
    if set.contains_key(&pid)
        && let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw)
    {
        let _ = kill_process(p, signal);
    }
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
        if let Some(pid) = self.0 {
            signal(pid, Signal::TERM);
        }
    }
}

/// How a child ended when a deadline stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM, within the grace.
    Terminated,
    /// It outlived the grace and was killed.
    Killed,
}

/// A child's output, and whether the deadline had to stop it.
#[derive(Debug)]
pub struct Finished {
    pub output: Output,
    pub stopped: Option<Stopped>,
}

/// Runs the command to completion (stdin closed, output captured) as a registered child,
/// `label` saying what it does. At `deadline` it gets SIGTERM, and SIGKILL [`KILL_GRACE`] later.
pub async fn output(
    mut cmd: Command,
    label: String,
    deadline: Option<Instant>,
) -> std::io::Result<Finished> {
    cmd.kill_on_drop(false)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let child = cmd.spawn()?;
    let pid = child.id();
    if let Some(pid) = pid {
        running().insert(pid, label);
    }
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let out = child.wait_with_output().await;
        if let Some(pid) = pid {
            running().remove(&pid);
        }
        let _ = tx.send(out);
    });
    let term = TermOnDrop(pid);
    let mut stopped = None;
    let out = match (deadline, pid) {
        (Some(at), Some(pid)) => {
            tokio::select! {
                out = &mut rx => out,
                _ = tokio::time::sleep_until(at.into()) => {
                    signal(pid, Signal::TERM);
                    stopped = Some(Stopped::Terminated);
                    tokio::select! {
                        out = &mut rx => out,
                        _ = tokio::time::sleep(KILL_GRACE) => {
                            signal(pid, Signal::KILL);
                            stopped = Some(Stopped::Killed);
                            rx.await
                        }
                    }
                }
            }
        }
        _ => rx.await,
    };
    term.disarm();
    let output =
        out.unwrap_or_else(|_| Err(std::io::Error::other("the task reaping helm went away")))?;
    Ok(Finished { output, stopped })
}

/// On Linux, the child gets SIGTERM when the thread that started it dies: kovenant's runtime
/// threads live as long as the command, so this fires when kovenant is killed (SIGKILL, the OOM
/// killer), and the orphan helm records its release as failed instead of changing it on after
/// kovenant's lease has expired.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// What runs now: (pid, what it does), by pid.
pub fn list() -> Vec<(u32, String)> {
    running().iter().map(|(p, l)| (*p, l.clone())).collect()
}

/// How many helm processes are running.
pub fn count() -> usize {
    running().len()
}

/// SIGKILL to every helm still running.
pub fn kill_all() {
    let pids: Vec<u32> = running().keys().copied().collect();
    for pid in pids {
        signal(pid, Signal::KILL);
    }
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
