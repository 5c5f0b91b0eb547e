//! Throughput benchmark of `kovenant agent --no-kernel` (a replay of Tetragon's export): side by
//! side with a plain typed serde_json parse of the same lines and with the Python pipeline, plus
//! the agent's peak RSS.
//!
//! The corpus is the seed's per-call stream (`tcp_sendmsg`, `tcp_recvmsg`, `sys_read`,
//! `sys_write`, one event per call). That path is retired: bytes come from the kernel's own
//! counters, and only `kovenant-tcp`'s `tcp_connect` and `inet_csk_accept` are counted. The
//! corpus stays as a parsing load: every line is still read and parsed, the per-call events are
//! then ignored, so this measures the parser and the line counters, not a way to count bytes.
//!
//! Run through `bench/agent.sh` (which pins everything to one core and makes the corpus):
//! `cargo bench --bench agent -- CORPUS_DIR KOVENANT_BINARY`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

// The fields the agent needs, typed the plain way: the floor any JSON reader pays.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    process_kprobe: Option<Kprobe<'a>>,
    #[serde(borrow)]
    node_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Kprobe<'a> {
    #[serde(borrow)]
    process: Option<Process<'a>>,
    #[serde(borrow)]
    function_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    args: Option<Vec<Arg<'a>>>,
    #[serde(borrow, rename = "return")]
    ret: Option<Arg<'a>>,
}

#[derive(Deserialize)]
struct Process<'a> {
    #[serde(borrow)]
    pod: Option<Pod<'a>>,
}

#[derive(Deserialize)]
struct Pod<'a> {
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    workload: Option<Cow<'a, str>>,
    #[serde(borrow)]
    workload_kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(borrow)]
    sock_arg: Option<Sock<'a>>,
    #[serde(borrow)]
    size_arg: Option<Cow<'a, str>>,
    int_arg: Option<i64>,
    #[serde(borrow)]
    long_arg: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Sock<'a> {
    #[serde(borrow)]
    daddr: Option<Cow<'a, str>>,
    sport: Option<u32>,
    dport: Option<u32>,
}

/// Parses every line; returns (lines parsed, a checksum that keeps the work from vanishing).
fn typed_parse(path: &str) -> (u64, u64) {
    let mut r = BufReader::with_capacity(256 * 1024, std::fs::File::open(path).expect("corpus"));
    let mut line = Vec::new();
    let (mut n, mut sum) = (0u64, 0u64);
    while r.read_until(b'\n', &mut line).expect("read") > 0 {
        if let Ok(ev) = serde_json::from_slice::<Event>(&line) {
            n += 1;
            let k = ev.process_kprobe.as_ref();
            sum += k
                .and_then(|k| k.args.as_ref())
                .map_or(0, |a| a.len() as u64);
            sum += k
                .and_then(|k| k.function_name.as_ref())
                .map_or(0, |f| f.len() as u64);
            sum += k
                .and_then(|k| k.ret.as_ref())
                .and_then(|r| r.int_arg)
                .unwrap_or(0) as u64;
            sum += k
                .and_then(|k| k.process.as_ref())
                .and_then(|p| p.pod.as_ref())
                .map_or(0, |p| {
                    p.namespace.as_ref().map_or(0, |s| s.len())
                        + p.name.as_ref().map_or(0, |s| s.len())
                        + p.workload.as_ref().map_or(0, |s| s.len())
                        + p.workload_kind.as_ref().map_or(0, |s| s.len())
                }) as u64;
            let socks = k.and_then(|k| k.args.as_ref()).into_iter().flatten();
            for a in socks {
                sum += a.sock_arg.as_ref().map_or(0, |s| {
                    u64::from(s.sport.unwrap_or(0) + s.dport.unwrap_or(0))
                        + s.daddr.as_ref().map_or(0, |d| d.len() as u64)
                });
                sum += a.size_arg.as_ref().map_or(0, |s| s.len() as u64)
                    + a.long_arg.as_ref().map_or(0, |s| s.len() as u64);
            }
            sum +=
                ev.node_name.map_or(0, |s| s.len() as u64) + ev.time.map_or(0, |s| s.len() as u64);
        }
        line.clear();
    }
    (n, sum)
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        let d = t.elapsed();
        if best.as_ref().is_none_or(|(b, _)| d < *b) {
            best = Some((d, v));
        }
    }
    best.expect("at least one run")
}

/// Runs the agent on `repeat` copies of the corpus through a pipe; returns (time, peak RSS KiB).
fn agent(bin: &str, dir: &str, repeat: usize) -> (Duration, u64) {
    let path = format!("{dir}/events.jsonl");
    // One copy: the file itself is stdin, as the typed parse reads the file. Ten copies go
    // through a pipe, whose writing (on the same core) then counts against the agent.
    let input = if repeat == 1 {
        Stdio::from(std::fs::File::open(&path).expect("corpus"))
    } else {
        Stdio::piped()
    };
    let events = if repeat == 1 {
        Vec::new()
    } else {
        std::fs::read(&path).expect("corpus")
    };
    let t = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .args([
            "-f",
            "%M",
            bin,
            "agent",
            "--no-kernel",
            "--window",
            "10s",
            "--cluster-snapshot",
        ])
        .arg(format!("{dir}/cluster.json"))
        .stdin(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/time kovenant agent");
    if let Some(mut stdin) = child.stdin.take() {
        for _ in 0..repeat {
            stdin.write_all(&events).expect("feed the agent");
        }
    }
    let out = child.wait_with_output().expect("agent ends");
    let d = t.elapsed();
    assert!(out.status.success(), "agent failed");
    let err = String::from_utf8_lossy(&out.stderr);
    let kib = err
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("peak RSS from time");
    (d, kib)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [dir, bin] = args.as_slice() else {
        eprintln!("usage: agent CORPUS_DIR KOVENANT_BINARY");
        std::process::exit(2);
    };
    let path = format!("{dir}/events.jsonl");
    let lines = std::fs::read(&path)
        .expect("corpus")
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as f64;
    let (parse_t, (parsed, _)) = best_of(5, || typed_parse(&path));
    let (_, (agent_t, rss)) = best_of(5, || agent(bin, dir, 1));
    let (_, rss10) = agent(bin, dir, 10);
    let py_t = best_of(1, || {
        let ok = Command::new("python3")
            .args(["bench/python_pipeline.py", dir])
            .stdout(Stdio::null())
            .status();
        assert!(ok.expect("python3").success());
    })
    .0;
    let rate = |d: Duration| lines / d.as_secs_f64();
    let (a, p, y) = (rate(agent_t), rate(parse_t), rate(py_t));
    println!("corpus: {path}, {lines} lines ({parsed} parsed as JSON objects)");
    println!("| pipeline | events/s | vs typed parse | vs Python |");
    println!("|---|---:|---:|---:|");
    println!(
        "| kovenant agent (whole process) | {a:.0} | {:.2}x | {:.1}x |",
        a / p,
        a / y
    );
    println!(
        "| typed serde_json parse only | {p:.0} | 1.00x | {:.1}x |",
        p / y
    );
    println!(
        "| Python json.loads pipeline | {y:.0} | {:.2}x | 1.0x |",
        y / p
    );
    println!(
        "peak RSS of kovenant agent: {:.1} MiB on the corpus, {:.1} MiB on 10x the corpus",
        rss as f64 / 1024.0,
        rss10 as f64 / 1024.0
    );
}
