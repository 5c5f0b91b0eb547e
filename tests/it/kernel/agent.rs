//! The live agent of a kernel test: started on the scenario's snapshot, watched point by point
//! (a test waits for its Nth `kovenant_agent` point, never a fixed sleep), stopped by SIGTERM.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent_support::{Point, parse_lp};

use super::net::Scenario;

/// The agent under test: the binary built for this run, or the one `KOVENANT_KERNEL_AGENT`
/// names (a release build, a colleague's work in progress) put through the same tests.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("KOVENANT_KERNEL_AGENT")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_kovenant").into())
}

pub struct Agent {
    child: Mutex<Option<Child>>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// What it wrote on stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// `kovenant agent --source none --cluster-snapshot S --node-name NODE --window 1s EXTRA`.
    pub fn start(s: &Scenario, extra: &[&str]) -> Agent {
        Agent::start_under(s, &[], extra)
    }

    /// The same, run by the command `wrapper` (its program and arguments, then `--`) when it
    /// is not empty.
    pub fn start_under(s: &Scenario, wrapper: &[&str], extra: &[&str]) -> Agent {
        let snap = s.snapshot();
        let mut args: Vec<String> = ["agent", "--cluster-snapshot"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(snap.display().to_string());
        args.extend(["--node-name".into(), s.node.clone()]);
        if !extra.contains(&"--source") {
            args.extend(["--source".into(), "none".into()]);
        }
        if !extra.contains(&"--window") {
            args.extend(["--window".into(), "1s".into()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut cmd = crate::support::kovenant();
        // Another build of the agent (a release build, a colleague's work in progress) can be
        // put through the same tests.
        if let Some(bin) = std::env::var_os("KOVENANT_KERNEL_AGENT") {
            cmd = std::process::Command::new(bin);
            cmd.env("NO_COLOR", "1");
        }
        if let Some((program, rest)) = wrapper.split_first() {
            cmd = std::process::Command::new(program);
            cmd.args(rest).arg("--").arg(binary()).env("NO_COLOR", "1");
        }
        let mut child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kovenant agent");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                e.lock().unwrap_or_else(|e| e.into_inner()).push_str(&text);
            }
        });
        let a = Agent {
            child: Mutex::new(Some(child)),
            lines,
            reader: Some(reader),
            stderr,
        };
        // Its first point says its first sample is done: only traffic after it counts.
        a.wait_points(1);
        a
    }

    /// How many `kovenant_agent` points it has written.
    pub fn points(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| l.starts_with("kovenant_agent,") || l.starts_with("kovenant_agent "))
            .count()
    }

    /// Waits until it has written `n` `kovenant_agent` points in all.
    pub fn wait_points(&self, n: usize) {
        let start = Instant::now();
        loop {
            let have = self.points();
            if have >= n {
                return;
            }
            let exited = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                std::thread::sleep(Duration::from_millis(100));
                let err = self.stderr();
                panic!("the agent exited ({status}) after {have} kovenant_agent points:\n{err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the agent wrote {have} kovenant_agent points in 60 s, {n} awaited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `more` windows after the current one, so what happened before is in a
    /// sample (and the destroy notifications of closed sockets are read).
    pub fn wait_windows(&self, more: usize) {
        self.wait_points(self.points() + more);
    }

    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .expect("running")
            .id()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// SIGTERM: it must write its last window and exit 0. Returns every point it wrote.
    pub fn stop(mut self) -> Vec<Point> {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("running");
        super::workload::signal(child.id(), libc::SIGTERM);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the agent still runs 30 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().expect("stdout reader");
        }
        let err = self.stderr();
        assert!(status.success(), "agent after SIGTERM: {status}\n{err}");
        let text = self
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n");
        parse_lp(&text)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
