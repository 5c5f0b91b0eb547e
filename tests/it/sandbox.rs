//! The README's quick start, end to end: `./sandbox.sh up` from a clean clone of this repository
//! starts the real control plane, chart repository and InfluxDB, installs, and runs real telegraf
//! with the real agent on this machine's kernel; `kovenant status` is then healthy with this
//! machine as the node, and `kovenant top` shows a flow this test makes itself; `down` leaves
//! nothing running. The kovenant binary under test stands in for `cargo build --release`
//! (SANDBOX_BIN), which a clean clone would otherwise spend its first minutes on.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, shared};

/// A clone of the committed tree beside a link to `../shared` (the charts and schemas the
/// scripts read there), as the repository sits next to it here.
fn clean_clone(root: &Path) -> PathBuf {
    let repo = root.join("kovenant");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg(&repo)
        .output()
        .expect("git clone");
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::os::unix::fs::symlink(shared(), root.join("shared")).expect("link ../shared");
    repo
}

/// `bash -c SCRIPT` with the sandbox's environment sourced, in its folder (where its .env is).
fn in_sandbox(state: &Path, script: &str) -> Run {
    Run::from(
        Command::new("bash")
            .arg("-c")
            .arg(format!("source {}/env && {script}", state.display()))
            .current_dir(state)
            .env("NO_COLOR", "1")
            .output()
            .expect("bash"),
    )
}

/// Stops the sandbox however the test ends.
struct Down<'a> {
    repo: &'a Path,
    state: &'a Path,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.repo.join("sandbox.sh"))
            .arg("down")
            .arg(self.state)
            .status();
    }
}

/// Traffic of known size on loopback: a server on a fresh port answers 64 KiB to 16 KiB.
fn make_traffic() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut got = vec![0u8; 16 * 1024];
        conn.read_exact(&mut got).expect("read");
        conn.write_all(&vec![7u8; 64 * 1024]).expect("write");
        // Held open past the agent's next dump, so the socket is seen live too.
        std::thread::sleep(Duration::from_secs(12));
    });
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.write_all(&vec![1u8; 16 * 1024]).expect("send");
    let mut back = vec![0u8; 64 * 1024];
    client.read_exact(&mut back).expect("receive");
    server.join().expect("server");
    port
}

#[test]
fn the_sandbox_runs_the_pipeline_on_this_machine_from_a_clean_clone() {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = clean_clone(root.path());
    let state = root.path().join("sandbox");
    let _down = Down {
        repo: &repo,
        state: &state,
    };
    let up = Run::from(
        Command::new(repo.join("sandbox.sh"))
            .arg("up")
            .arg(&state)
            .env("SANDBOX_BIN", env!("CARGO_BIN_EXE_kovenant"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run sandbox.sh"),
    );
    assert_eq!(up.code, 0, "sandbox.sh up: {up}");
    assert!(up.stderr.contains("The sandbox is up"), "{up}");

    // Healthy, and the agent that writes is this machine's, as the node.
    let node = in_sandbox(&state, "kubectl get nodes -o name");
    let node = node.stdout.trim().trim_start_matches("node/").to_string();
    let status = in_sandbox(&state, "kovenant status -o json");
    assert_eq!(status.code, 0, "{status}");
    let v: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(v["healthy"], true, "{v:#}");
    let agents: Vec<&str> = v["influxdb"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["node"].as_str())
        .collect();
    assert_eq!(agents, [node.as_str()], "{v:#}");

    // A flow this test makes shows in top, on its port, from this machine.
    let port = make_traffic().to_string();
    let started = Instant::now();
    loop {
        let top = in_sandbox(&state, "kovenant top --since 10m --limit 1000 -o json");
        let v: Value = serde_json::from_str(&top.stdout).unwrap_or(Value::Null);
        let ours = v["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["port"] == port.as_str() && f["src_workload"] == node.as_str());
        if let Some(flow) = ours {
            assert_eq!(flow["peer_type"], "loopback", "{flow:#}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no flow on port {port} from {node} in top: {top}"
        );
        std::thread::sleep(Duration::from_secs(3));
    }

    // down stops everything up started: its processes and its folder.
    let telegraf = std::fs::read_to_string(state.join("telegraf.pid")).expect("telegraf.pid");
    let down = Run::from(
        Command::new(repo.join("sandbox.sh"))
            .arg("down")
            .arg(&state)
            .output()
            .expect("sandbox.sh down"),
    );
    assert_eq!(down.code, 0, "{down}");
    assert!(!state.exists(), "{down}");
    assert!(
        !Path::new(&format!("/proc/{}", telegraf.trim())).exists(),
        "telegraf still runs after down"
    );
}
