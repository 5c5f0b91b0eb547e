//! The workload program (kernel/kovload.c): built once per test run with `gcc -static`, started
//! in a pod's network namespace, moved into its container's cgroup, released with SIGUSR1.
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// SIGUSR2's bit in /proc/PID/status `SigBlk`.
const USR2_BIT: u64 = 1 << (libc::SIGUSR2 - 1);
const USR1_BIT: u64 = 1 << (libc::SIGUSR1 - 1);

/// The static workload binary.
pub fn binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/kernel/kovload.c");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("kovload");
        let tmp = dir.join(format!("kovload.{}", std::process::id()));
        let o = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .expect("gcc runs (Debian's gcc with libc6-dev, for its static libc.a)");
        assert!(
            o.status.success(),
            "gcc -static {}: {}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp, &out).expect("install kovload");
        out
    })
}

/// A started workload, blocked until `go`.
pub struct Proc {
    pub pid: u32,
    child: Option<Child>,
    args: Vec<String>,
}

impl Proc {
    /// Starts `kovload ARGS` and waits until it has done its setup and waits for SIGUSR1.
    pub fn start(args: Vec<String>) -> Proc {
        let child = Command::new(binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kovload");
        let mut p = Proc {
            pid: child.id(),
            child: Some(child),
            args,
        };
        p.wait_in_sigwait();
        p
    }

    /// While kovload waits in sigwait(SIGUSR1), the kernel takes SIGUSR1 out of its blocked
    /// set and leaves SIGUSR2 in: that mask means "setup done, waiting". (Its listeners are
    /// open before it waits.)
    fn wait_in_sigwait(&mut self) {
        let start = Instant::now();
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let err = self.stderr();
                panic!(
                    "kovload {:?} exited during setup ({status}): {err}",
                    self.args
                );
            }
            let blocked = sig_blocked(self.pid);
            if blocked & USR2_BIT != 0 && blocked & USR1_BIT == 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "kovload {:?} did not reach its wait in 20 s",
                self.args
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until it waits for SIGUSR2 (a `hold` or `wait2` step): SIGUSR1 back in its
    /// blocked set, SIGUSR2 out of it.
    pub fn wait_for_usr2(&mut self) {
        let start = Instant::now();
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let err = self.stderr();
                panic!("kovload {:?} exited ({status}): {err}", self.args);
            }
            let blocked = sig_blocked(self.pid);
            if blocked & USR1_BIT != 0 && blocked & USR2_BIT == 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "kovload {:?} did not reach its wait for SIGUSR2 in 60 s",
                self.args
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn go(&self) {
        signal(self.pid, libc::SIGUSR1);
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid, sig);
    }

    /// Waits for a clean exit (status 0); panics with its stderr otherwise.
    pub fn wait_ok(&mut self) {
        let mut child = self.child.take().expect("not waited yet");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kovload {:?} still runs after 120 s", self.args);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "kovload {:?}: {status}: {err}", self.args);
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// The pids of its children (a `child` step's fork), from /proc.
    pub fn children(&self) -> Vec<u32> {
        let path = format!("/proc/{0}/task/{0}/children", self.pid);
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Its forked children first (they would be left to init otherwise).
        for c in self.children() {
            signal(c, libc::SIGKILL);
        }
        self.kill();
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started and still holds (not yet reaped).
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

fn sig_blocked(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// `/proc/PID/io`'s field `name` (rchar, wchar...).
pub fn io_field(pid: u32, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
