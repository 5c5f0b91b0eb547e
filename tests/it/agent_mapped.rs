//! A regular file on the agent's stdin is replayed through a memory map under a read lease
//! (src/agent/source/mapped.rs): from the descriptor's own offset, and giving way to a writer
//! without dying of SIGBUS when the file is truncated under it.
use std::io::{Read, Seek, SeekFrom};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::agent_support::*;

fn snapshot(c: &Corpus) -> [String; 2] {
    [
        "--cluster-snapshot".into(),
        c.path("cluster.json").display().to_string(),
    ]
}

/// The sums the ground truth is made of, and the line counts (not the lag, a wall-clock figure).
fn figures(out: &str) -> (String, String, Vec<(String, i64)>) {
    let points = parse_lp(out);
    let flows = sum(&points, "tcp_flow", &FLOW_KEY, &FLOW_FIELDS);
    let io = sum(&points, "pod_io", &IO_KEY, &IO_FIELDS);
    let totals = agent_totals(&points)
        .into_iter()
        .filter(|(k, _)| k != "lag_ms")
        .collect();
    (format!("{flows:?}"), format!("{io:?}"), totals)
}

#[test]
fn agent_replays_stdin_from_where_its_descriptor_stands() {
    let c = Corpus::generate(6_000, 5, 0.01);
    let path = c.path("events.jsonl");
    let all = std::fs::read(&path).expect("corpus");
    // Start after the first 2,500 lines, as `(head -n 2500 >/dev/null; kovenant agent) < file`
    // leaves it.
    let skip = all
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(2_499)
        .map(|(i, _)| i + 1)
        .expect("2,500 lines");
    let mut file = std::fs::File::open(&path).expect("open corpus");
    file.seek(SeekFrom::Start(skip as u64)).expect("seek");
    let mut cmd = crate::support::kovenant();
    let out = cmd
        .args(["agent", "--no-kernel"])
        .args(snapshot(&c))
        .stdin(file)
        .output()
        .expect("run kovenant agent");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mapped = figures(&String::from_utf8(out.stdout).expect("utf-8"));

    // The same bytes through a pipe, read(2) only.
    let mut cmd = crate::support::kovenant();
    let mut child = cmd
        .args(["agent", "--no-kernel"])
        .args(snapshot(&c))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run kovenant agent");
    let mut stdin = child.stdin.take().expect("stdin");
    let tail = all[skip..].to_vec();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &tail));
    let out = child.wait_with_output().expect("agent ends");
    feeder.join().expect("feeder").expect("fed");
    assert!(out.status.success());
    let piped = figures(&String::from_utf8(out.stdout).expect("utf-8"));

    assert_eq!(mapped, piped);
    let lines = mapped
        .2
        .iter()
        .find(|(k, _)| k == "tetragon_lines")
        .expect("tetragon_lines")
        .1;
    assert_eq!(lines, 6_000 - 2_500);
}

/// What the main thread of `pid` is blocked in: the syscall number, then its arguments.
fn blocked_in(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    Some(s.split_whitespace().map(str::to_owned).collect())
}

#[test]
fn agent_gives_its_map_up_to_a_truncation_and_lives() {
    // About 120 MB: far more than the agent gets through before its output pipe is full.
    let c = Corpus::generate(100_000, 9, 0.0);
    let path = c.path("events.jsonl");
    let total = std::fs::read(&path)
        .expect("corpus")
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let mut cmd = crate::support::kovenant();
    // One-second windows: output enough to fill the pipe early.
    let mut child = cmd
        .args(["agent", "--no-kernel", "--window", "1s"])
        .args(snapshot(&c))
        .stdin(std::fs::File::open(&path).expect("open corpus"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kovenant agent");
    let pid = child.id();
    // Wait until the file is mapped and the agent is stuck writing to stdout (syscall 1, fd 1),
    // which this test does not read yet: the agent is in the middle of the map.
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = path.display().to_string();
    loop {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mapped = maps.lines().any(|l| l.ends_with(&shown));
        let writing = blocked_in(pid).is_some_and(|s| s.len() > 1 && s[0] == "1" && s[1] == "0x1");
        if mapped && writing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never mapped the file and filled its output (mapped: {mapped})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Truncate the file, as copytruncate does. Opening it for writing waits for the lease.
    let cut_path = path.clone();
    let cut = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&cut_path)
            .expect("open for writing");
        f.set_len(0).expect("truncate");
        Instant::now()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !cut.is_finished(),
        "the truncation went through while the agent still had the file mapped"
    );
    // Let the agent write again: it finishes its chunk, unmaps, gives the lease up, and reads
    // the (now empty) rest.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    cut.join().expect("truncation");
    let status = child.wait().expect("agent ends");
    let out = reader.join().expect("reader").expect("output");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "agent ended with {status}: {err}");
    assert_eq!(std::fs::metadata(&path).expect("file").len(), 0);
    let totals = agent_totals(&parse_lp(&out));
    let lines = usize::try_from(totals["tetragon_lines"]).expect("lines");
    assert!(
        lines > 0 && lines < total,
        "counted {lines} of {total} lines: the agent should have stopped where the file was cut"
    );
}
