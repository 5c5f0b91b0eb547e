//! `--source file:PATH` behind Tetragon's own rotation: the export file written through the real
//! lumberjack Logger (`.ci/tools.sh lumberjack`), with the agent keeping up, stopped (SIGSTOP)
//! across rotations, with gzipped backups, and stopped for longer than the backups last.
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::agent_follow::{start, stop, wait_read};
use crate::agent_support::*;

const MB: usize = 1024 * 1024;

/// The lumberjack writer on `log`, reading lines from a pipe.
struct Writer {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Writer {
    fn start(log: &Path, max_backups: u32, compress: bool) -> Writer {
        let bin = crate::support::tool("KOVENANT_TEST_LUMBERJACK", "lumberjack");
        let mut child = Command::new(bin)
            .arg("-file")
            .arg(log)
            .args([
                "-max-size-mb",
                "1",
                "-max-backups",
                &max_backups.to_string(),
            ])
            .arg(format!("-compress={compress}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("start lumberjack-writer");
        let stdin = child.stdin.take();
        Writer { child, stdin }
    }

    /// Writes `bytes` at about 2.5 MB/s, so each 1 MB file lives about 0.4 s, as a steadily
    /// writing Tetragon's do.
    fn feed(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("writer's stdin");
        for chunk in bytes.chunks(64 * 1024) {
            stdin.write_all(chunk).expect("feed the writer");
            std::thread::sleep(Duration::from_millis(25));
        }
        stdin.flush().expect("flush");
    }

    /// Ends its input; lumberjack's Close waits for its compression and deletion of backups.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("writer exits");
        assert!(status.success(), "lumberjack-writer: {status}");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines lumberjack puts in each file, from an empty start: it rotates before a write
/// (one line each, as Tetragon writes one event per write) that would take the file past
/// MaxSize.
fn files(lines: &[&[u8]], max: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    out.push(0..0);
    let mut size = 0;
    for (i, l) in lines.iter().enumerate() {
        if size + l.len() > max {
            out.push(i..i);
            size = 0;
        }
        size += l.len();
        out.last_mut().expect("a file").end = i + 1;
    }
    out
}

fn signal(child: &Child, sig: Signal) {
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, sig).expect("signal the agent");
}

/// Waits until `path` holds `len` bytes: the writer has written what it was fed.
fn wait_len(path: &Path, len: usize) {
    let start = Instant::now();
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) != len as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never held {len} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One run: a corpus of about 6 MB of events written through lumberjack (1 MB files), the agent
/// following from the start; with `pause`, the agent is stopped once it has read half of the
/// first file and resumed when the writer is done. Returns the agent's points, the corpus,
/// the files' line ranges, and the folder's names when the agent was resumed.
struct Run {
    points: Vec<Point>,
    corpus: Corpus,
    lines: Vec<Vec<u8>>,
    files: Vec<Range<usize>>,
    names: Vec<String>,
}

fn run(seed: u32, max_backups: u32, compress: bool, pause: bool) -> Run {
    let corpus = Corpus::generate(5_000, seed, 0.01);
    let all = std::fs::read(corpus.path("events.jsonl")).expect("corpus");
    let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
    let files = files(&lines, MB);
    assert!(files.len() >= 6, "{} files", files.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("tetragon.log");
    let src = format!("file:{}", log.display());
    let snap = corpus.path("cluster.json").display().to_string();
    let (agent, reader) = start(&[
        "--source",
        &src,
        "--from-start",
        "--cluster-snapshot",
        &snap,
    ]);
    let mut writer = Writer::start(&log, max_backups, compress);
    let half = files[0].len() / 2;
    let head = lines[..half].concat();
    writer.feed(&head);
    wait_len(&log, head.len());
    wait_read(agent.id(), &log);
    if pause {
        signal(&agent, Signal::STOP);
    }
    writer.feed(&lines[half..].concat());
    writer.finish();
    let names = names(dir.path());
    if pause {
        signal(&agent, Signal::CONT);
    }
    wait_read(agent.id(), &log);
    let points = parse_lp(&stop(agent, reader));
    Run {
        points,
        corpus,
        lines: lines.iter().map(|l| l.to_vec()).collect(),
        files,
        names,
    }
}

fn backups(names: &[String], ext: &str) -> usize {
    names
        .iter()
        .filter(|n| n.starts_with("tetragon-") && n.ends_with(ext))
        .count()
}

#[test]
fn agent_follows_lumberjack_rotations_without_loss() {
    let r = run(31, 5, false, false);
    assert_ground_truth(&r.points, &r.corpus.expected());
    let t = agent_totals(&r.points);
    assert_eq!(t["rotated_files_lost"], 0);
    assert_eq!(backups(&r.names, ".log"), 5, "{:?}", r.names);
}

/// The agent stopped while lumberjack rotates the file it reads and several after it: on
/// resuming it reads them from their backups, oldest first.
#[test]
fn agent_stopped_across_rotations_reads_the_rotated_files_from_their_backups() {
    let r = run(32, 10, false, true);
    assert_ground_truth(&r.points, &r.corpus.expected());
    let t = agent_totals(&r.points);
    // Every file but the one it held and the current one.
    assert_eq!(t["rotated_files_read"], r.files.len() as i64 - 2);
    assert_eq!(t["rotated_files_lost"], 0);
    assert_eq!(t["truncations"], 0);
}

/// Same with export-file-compress: lumberjack has gzipped every backup, the one the agent was
/// reading among them (its plain copy gone), before the agent resumes.
#[test]
fn agent_stopped_across_rotations_reads_gzipped_backups() {
    let r = run(33, 10, true, true);
    assert_eq!(backups(&r.names, ".log"), 0, "{:?}", r.names);
    assert_eq!(
        backups(&r.names, ".log.gz"),
        r.files.len() - 1,
        "{:?}",
        r.names
    );
    assert_ground_truth(&r.points, &r.corpus.expected());
    let t = agent_totals(&r.points);
    assert_eq!(t["rotated_files_read"], r.files.len() as i64 - 2);
    assert_eq!(t["rotated_files_lost"], 0);
}

/// Stopped for longer than lumberjack keeps backups (MaxBackups 1): of the files after the one
/// it held, only the newest backup and the current file are left. The agent counts the files
/// deleted in between, and reads everything else: its output equals the agent's own reading
/// of exactly the surviving lines.
#[test]
fn agent_stopped_longer_than_the_backups_last_counts_the_files_lost() {
    let r = run(34, 1, false, true);
    let n = r.files.len();
    assert_eq!(backups(&r.names, ".log"), 1, "{:?}", r.names);
    let lost = 1..n - 2;
    let t = agent_totals(&r.points);
    assert_eq!(t["rotated_files_lost"], lost.len() as i64);
    assert_eq!(t["rotated_files_read"], 1);
    let surviving: Vec<u8> = r
        .files
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .flat_map(|(_, f)| r.lines[f.clone()].concat())
        .collect();
    let lost_lines: usize = r.files[lost.clone()].iter().map(|f| f.len()).sum();
    let counts = &r.corpus.expected()["counts"];
    assert_eq!(
        t["tetragon_lines"],
        counts["lines"].as_i64().expect("lines") - lost_lines as i64
    );
    let reference: PathBuf = r.corpus.path("surviving.jsonl");
    std::fs::write(&reference, &surviving).expect("write the surviving lines");
    let snap = r.corpus.path("cluster.json").display().to_string();
    let src = format!("file:{}", reference.display());
    let want = parse_lp(&run_agent(
        &["--source", &src, "--no-follow", "--cluster-snapshot", &snap],
        None,
    ));
    let flows = sum(&want, "tcp_flow", &FLOW_KEY, &FLOW_FIELDS);
    assert!(!flows.is_empty(), "the surviving lines have connects");
    assert_eq!(sum(&r.points, "tcp_flow", &FLOW_KEY, &FLOW_FIELDS), flows);
    let w = agent_totals(&want);
    for f in ["tetragon_lines", "tetragon_events", "bad_lines", "ignored"] {
        assert_eq!(t[f], w[f], "{f}");
    }
}

#[test]
fn lumberjack_file_boundaries_are_simulated_as_it_rotates() {
    let lines: Vec<&[u8]> = vec![b"aaaa\n", b"bb\n", b"c\n", b"dddddd\n", b"e\n"];
    assert_eq!(files(&lines, 10), vec![0..3, 3..5]);
    assert_eq!(files(&lines, 7), vec![0..1, 1..3, 3..4, 4..5]);
}
