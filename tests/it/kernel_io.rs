//! Per-pod I/O from /proc/<pid>/io on this machine's kernel: a child its parent reaps is counted
//! once (the kernel adds a reaped child's totals to its parent), and a process that lives and
//! dies between two samples is still counted, with its sockets.
use std::time::{Duration, Instant};

use crate::kernel::*;

fn field(io: &std::collections::BTreeMap<String, i64>, k: &str) -> i64 {
    io.get(k).copied().unwrap_or(0)
}

/// Waits until process `pid` has written `bytes` (its wchar).
fn wait_written(pid: u32, bytes: u64) {
    let start = Instant::now();
    while crate::kernel::io_field(pid, "wchar") < bytes {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "process {pid} did not write {bytes} bytes in 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pod's I/O, after asserting the child's 300,000 bytes written and read back and its
/// parent's 1,000 written are each counted once.
fn written_once(
    s: &Scenario,
    points: &[crate::agent_support::Point],
    pod: usize,
) -> std::collections::BTreeMap<String, i64> {
    let io = io_of(s, points, pod);
    assert_eq!(
        (field(&io, "write_bytes"), field(&io, "read_bytes")),
        (301_000, 300_000),
        "(write_bytes, read_bytes): {io:?}"
    );
    io
}

#[test]
fn kernel_file_io_of_a_long_lived_child_its_parent_reaps_is_counted_once() {
    let mut s = Scenario::new("reap");
    let pod = s.pod("batch", Layout::CgroupfsV2);
    let (f1, f2) = (s.file("data"), s.file("done"));
    let (f1, f2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    // The child writes 300,000 bytes, waits (the agent samples it), reads them back and exits;
    // its parent reaps it, then writes 1,000 bytes of its own.
    let mut p = s.start(
        pod,
        &[
            "child", "write", f1, "300000", "4096", "wait2", "read", f1, "65536", "end", "write",
            f2, "1000", "1000", "wait2",
        ],
    );
    let agent = Agent::start(&s, &[]);
    p.go();
    let start = Instant::now();
    let child = loop {
        if let Some(c) = p.children().first() {
            break *c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no child forked");
        std::thread::sleep(Duration::from_millis(5));
    };
    wait_written(child, 300_000);
    // Two samples see the child with its 300,000 bytes written...
    agent.wait_windows(2);
    // ...then it reads, exits and is reaped: its totals land in the parent's /proc/PID/io.
    crate::kernel::signal(child, libc::SIGUSR2);
    finish(&agent, &mut [&mut p]);
    let points = agent.stop();
    let io = written_once(&s, &points, pod);
    // 74 writes of the file (73 of 4096 bytes and one of 992), one of the other; 5 reads of
    // data and the one that meets the end.
    assert_eq!(
        (field(&io, "writes"), field(&io, "reads")),
        (75, 6),
        "{io:?}"
    );
    // Storage: pages dirtied in the page cache, 74 + 1 of 4 KiB at least; the filesystem may
    // account a page more (seen: 76 under CI's load), never fewer.
    let disk = field(&io, "disk_write_bytes");
    assert!((75 * 4096..=77 * 4096).contains(&disk), "{io:?}");
}

#[test]
fn kernel_a_process_that_lives_between_two_samples_is_counted_with_its_sockets() {
    let mut s = Scenario::new("brief");
    let job = s.pod("job", Layout::SystemdV1);
    let server = s.pod("api", Layout::CgroupfsV1);
    s.link(Side::Pod(job), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let f = s.file("out");
    let f = f.to_str().unwrap();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "5", "500", "1500"],
    );
    // A child that connects five times and writes a file, all in a few milliseconds, then is
    // reaped by its parent, which stays: neither the child nor its sockets are alive at any sample.
    let mut p = s.start(
        job,
        &[
            "child", "connect", &ip, "8080", "5", "500", "1500", "write", f, "8192", "4096", "end",
            "wait2",
        ],
    );
    let agent = Agent::start(&s, &[]);
    srv.go();
    p.go();
    srv.wait_ok();
    finish(&agent, &mut [&mut p]);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &[
            (
                s.to_pod(job, server, 8080, "client"),
                Want {
                    connects: 5,
                    accepts: 0,
                    closes: 5,
                    bytes_sent: 2_500,
                    bytes_received: 7_500,
                    conns: 5,
                },
            ),
            (
                s.to_pod(server, job, 8080, "server"),
                Want {
                    connects: 0,
                    accepts: 5,
                    closes: 5,
                    bytes_sent: 7_500,
                    bytes_received: 2_500,
                    conns: 5,
                },
            ),
        ],
    );
    let io = io_of(&s, &points, job);
    assert_eq!(
        (field(&io, "write_bytes"), field(&io, "read_bytes")),
        (2_500 + 8_192, 7_500),
        "{io:?}"
    );
}

/// An orphan: its parent exits after the agent has seen it, so the kernel reparents it to the
/// pod's subreaper, which reaps it. Its totals land in the subreaper's `io`, and the agent
/// (which reads a process's parent again when the parent is gone) takes what it counted of the
/// orphan from the subreaper, not from the parent that is gone: counted once.
#[test]
fn kernel_an_orphan_its_subreaper_reaps_is_counted_once() {
    let mut s = Scenario::new("orphan");
    let pod = s.pod("batch", Layout::SystemdV2);
    let (f1, f2) = (s.file("data"), s.file("done"));
    let (f1, f2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    let mut p = s.start(
        pod,
        &[
            "subreaper",
            "orphan",
            "write",
            f1,
            "300000",
            "4096",
            "wait2",
            "read",
            f1,
            "65536",
            "end",
            "reap",
            "write",
            f2,
            "1000",
            "1000",
            "wait2",
        ],
    );
    let agent = Agent::start(&s, &[]);
    p.go();
    let start = Instant::now();
    let (parent, orphan) = loop {
        let kids = p.children();
        let grandkids: Vec<u32> = kids
            .first()
            .map(|c| {
                std::fs::read_to_string(format!("/proc/{c}/task/{c}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if let (Some(&c), Some(&g)) = (kids.first(), grandkids.first()) {
            break (c, g);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no grandchild forked"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    wait_written(orphan, 300_000);
    // The agent sees it with its first parent, for longer than a new process's stat is read
    // again each pass (procs.rs, YOUNG_PASSES)...
    agent.wait_windows(5);
    crate::kernel::signal(parent, libc::SIGUSR1);
    while !p.children().contains(&orphan) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never reparented"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // ...and with its subreaper, then it reads, exits and is reaped.
    agent.wait_windows(2);
    crate::kernel::signal(orphan, libc::SIGUSR2);
    finish(&agent, &mut [&mut p]);
    let points = agent.stop();
    written_once(&s, &points, pod);
}
