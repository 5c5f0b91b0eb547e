//! `--source file:PATH` followed like `tail -F`: appends, rotation, truncation and SIGTERM.
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::agent_support::*;

/// Starts a replay, `kovenant agent --no-kernel ARGS`, its stdout read on a thread.
pub fn start(args: &[&str]) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = crate::support::kovenant()
        .args(["agent", "--no-kernel"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).expect("read agent output");
        s
    });
    (child, reader)
}

/// SIGTERM, then the agent must flush and exit 0.
pub fn stop(mut child: Child, reader: std::thread::JoinHandle<String>) -> String {
    let pid = child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = child.wait().expect("agent exits");
    assert!(
        status.success(),
        "agent exit status after SIGTERM: {status}"
    );
    reader.join().expect("reader thread")
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(bytes).expect("append");
}

/// Waits until the agent (process `pid`) has read `path` to its end: the file offset of its
/// descriptor for that file, from /proc/PID/fdinfo, equals the file's length. Before a
/// truncation, lines the reader has not reached are lost to any reader (logrotate's
/// copytruncate has the same caveat), so the test waits for the agent instead of guessing a
/// sleep long enough on a loaded machine.
pub fn wait_read(pid: u32, path: &Path) {
    let want = std::fs::canonicalize(path).expect("log path");
    let start = std::time::Instant::now();
    loop {
        let len = std::fs::metadata(&want).map(|m| m.len()).unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the agent's fds");
        let at_end = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t == want)
                && std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("pos:"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                }) == Some(len)
        });
        if at_end {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent did not read {} to its end ({len} bytes) in 60 s",
            want.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pause() {
    // Longer than the agent's 250 ms poll.
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn agent_follows_appends_rotation_and_truncation_without_loss() {
    let c = Corpus::generate(6_000, 21, 0.02);
    let all = std::fs::read(c.path("events.jsonl")).unwrap();
    let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
    let (a, rest) = lines.split_at(2_000);
    let (b, d) = rest.split_at(2_000);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tetragon.log");
    append(&log, b"");
    let src = format!("file:{}", log.display());
    let snap = c.path("cluster.json").display().to_string();
    let (child, reader) = start(&[
        "--source",
        &src,
        "--from-start",
        "--cluster-snapshot",
        &snap,
    ]);
    pause();
    // Appends, one of them ending mid-line.
    let first = a.concat();
    let cut = first.len() / 2 + 17;
    append(&log, &first[..cut]);
    pause();
    append(&log, &first[cut..]);
    pause();
    // Rotation: rename, then a new file at the same path.
    std::fs::rename(&log, dir.path().join("tetragon.log.1")).unwrap();
    append(&log, &b.concat());
    pause();
    wait_read(child.id(), &log);
    // Truncation in place (copytruncate), then new lines.
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    pause();
    append(&log, &d.concat());
    pause();
    wait_read(child.id(), &log);
    let out = stop(child, reader);
    let points = parse_lp(&out);
    assert_ground_truth(&points, &c.expected());
    // `tetragon.log.1` is not a name lumberjack gives: nothing to read from backups.
    let t = agent_totals(&points);
    assert_eq!(
        (
            t["truncations"],
            t["rotated_files_read"],
            t["rotated_files_lost"]
        ),
        (1, 0, 0)
    );
}

#[test]
fn agent_starts_at_the_end_of_the_file_by_default() {
    let c = Corpus::generate(1_000, 4, 0.0);
    let all = std::fs::read(c.path("events.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tetragon.log");
    append(&log, &all[..all.len() / 2]);
    let src = format!("file:{}", log.display());
    let snap = c.path("cluster.json").display().to_string();
    let (child, reader) = start(&["--source", &src, "--cluster-snapshot", &snap]);
    pause();
    let new: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').take(300).collect();
    append(&log, &new.concat());
    pause();
    let t = agent_totals(&parse_lp(&stop(child, reader)));
    assert_eq!(t["tetragon_lines"], 300);
    assert_eq!(t["bad_lines"], 0);
}

#[test]
fn agent_reports_every_window_while_input_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tetragon.log");
    append(&log, b"");
    let src = format!("file:{}", log.display());
    let snap = crate::agent::empty_snapshot(dir.path());
    let (child, reader) = start(&[
        "--source",
        &src,
        "--cluster-snapshot",
        &snap,
        "--window",
        "1s",
    ]);
    std::thread::sleep(Duration::from_millis(3_600));
    let points = parse_lp(&stop(child, reader));
    let agent: Vec<_> = points
        .iter()
        .filter(|p| p.measurement == "kovenant_agent")
        .collect();
    assert!(
        (3..=5).contains(&agent.len()),
        "{} self-metrics points in 3.6 s",
        agent.len()
    );
    assert!(agent.iter().all(|p| p.fields["tetragon_lines"] == 0));
}

/// telegraf's execd input stops its child by closing the child's stdin (SIGTERM comes 5 s
/// later): with a file source, the end of a piped stdin stops the agent as SIGTERM does, with
/// what it counted flushed. Stdin that is not a pipe (a terminal, /dev/null) is never read.
#[test]
fn agent_with_a_file_source_stops_when_its_piped_stdin_ends() {
    let c = Corpus::generate(2_000, 8, 0.01);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tetragon.log");
    append(&log, b"");
    let src = format!("file:{}", log.display());
    let snap = c.path("cluster.json").display().to_string();
    let mut child = crate::support::kovenant()
        .args(["agent", "--no-kernel", "--source", &src])
        .args(["--cluster-snapshot", &snap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).expect("read agent output");
        s
    });
    pause();
    append(&log, &std::fs::read(c.path("events.jsonl")).unwrap());
    wait_read(child.id(), &log);
    let closed = std::time::Instant::now();
    drop(stdin);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(2) {
            child.kill().expect("kill");
            child.wait().expect("reap");
            panic!("the agent still runs 2 s after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "agent exit status: {status}");
    let out = reader.join().expect("reader thread");
    assert_ground_truth(&parse_lp(&out), &c.expected());
}
