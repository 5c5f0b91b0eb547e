//! Real telegraf runs the telegraf.conf that kovenant's pipeline chart renders, with the agent as
//! its execd child, and writes through outputs.influxdb_v2 to a real InfluxDB that speaks the v2
//! write API: InfluxDB 1.8, whose /api/v2/write takes the bucket as a database and, with auth
//! on, the token as `user:password`. Both are built from their Go modules by .ci/tools.sh
//! (telegraf with only the plugins that configuration uses). What reaches InfluxDB, summed,
//! equals the corpus's ground truth, once: the agent follows the export file past its end, and
//! telegraf's shutdown stops it and flushes the rest. The agent replays the export alone
//! (`--no-kernel`): the ground truth is the corpus's, where the live agent would add this
//! machine's own sockets and processes (the live agent under telegraf is a real-kernel test).
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::Value;

use crate::agent_influx::Influx;
use crate::agent_support::*;

pub(crate) const USER: &str = "telegraf";
pub(crate) const PASSWORD: &str = "a-test-password";
const NODE: &str = "kwok-node-0";
/// The self-metrics that the ground truth fixes.
const COUNTS: [&str; 5] = [
    "tetragon_lines",
    "tetragon_events",
    "bad_lines",
    "ignored",
    "dropped_keys",
];
/// How long the whole pipeline may take to deliver: one 10 s window and one 10 s flush, with
/// room for a loaded machine.
const DELIVERY: Duration = Duration::from_secs(120);

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A process started in its own process group, killed with that group (for telegraf: with the
/// agent it runs) when the test ends without having stopped it.
pub(crate) struct Guard {
    child: Child,
    log: PathBuf,
}

impl Guard {
    pub(crate) fn spawn(mut cmd: Command, log: PathBuf) -> Guard {
        let out = std::fs::File::create(&log).expect("create log");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        Guard { child, log }
    }

    pub(crate) fn pid(&self) -> Pid {
        Pid::from_child(&self.child)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill_process_group(self.pid(), Signal::KILL);
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> Option<String>) {
    let start = Instant::now();
    loop {
        let Some(why_not) = done() else { return };
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}: {why_not}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// InfluxDB 1.8 on loopback with its state in `dir` and auth on; returns its URL once it answers.
/// Started again on the same `dir`, it has the same ports and data (an outage, then recovery).
pub(crate) fn start_influxd(bin: &Path, dir: &Path) -> (Guard, String) {
    let (http, rpc) = match std::fs::read_to_string(dir.join("ports")) {
        Ok(ports) => {
            let (http, rpc) = ports.split_once(' ').expect("`http rpc`");
            (http.parse().expect("port"), rpc.parse().expect("port"))
        }
        Err(_) => (free_port(), free_port()),
    };
    std::fs::write(dir.join("ports"), format!("{http} {rpc}")).expect("write ports");
    let d = dir.display();
    let conf = format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  auth-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
"#
    );
    std::fs::write(dir.join("influxdb.conf"), conf).expect("write influxdb.conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-config").arg(dir.join("influxdb.conf"));
    let mut influxd = Guard::spawn(cmd, dir.join("influxd.log"));
    let base = format!("http://127.0.0.1:{http}");
    eventually("influxd answers /ping", Duration::from_secs(60), || {
        if let Some(status) = influxd.exited() {
            panic!("influxd exited ({status}):\n{}", influxd.log());
        }
        ureq::get(format!("{base}/ping"))
            .call()
            .err()
            .map(|e| e.to_string())
    });
    (influxd, base)
}

/// Makes a fresh InfluxDB 1.8 (auth on) at `base` hold what the buckets of `rendered` (the chart's
/// telegraf.conf) need, for user USER; returns the database (the first bucket).
pub(crate) fn prepare_buckets(base: &str, rendered: &str) -> String {
    // The first user of a server with auth on may be created without logging in.
    Influx {
        base,
        db: "",
        login: None,
    }
    .query(&format!(
        "CREATE USER \"{USER}\" WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES"
    ));
    // InfluxDB 1.8 maps a bucket `db` to a database and `db/rp` to its retention policy `rp`
    // (as InfluxDB 2's DBRP mapping serves them to InfluxQL); the org is not checked. They must
    // exist, as the chart's InfluxDB setup and postStart hook create them. The retention
    // policies keep everything here: the corpus's events are from 2026-01-01, older than a day.
    let buckets: Vec<String> = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("bucket = "))
        .map(|b| serde_json::from_str(b).expect("bucket = \"...\""))
        .collect();
    let bucket = buckets[0].clone();
    let influx = Influx {
        base,
        db: &bucket,
        login: Some((USER, PASSWORD)),
    };
    influx.query(&format!("CREATE DATABASE \"{bucket}\""));
    for b in &buckets[1..] {
        let (db, rp) = b.split_once('/').expect("db/rp");
        assert_eq!(db, bucket, "{b}: another database than {bucket}");
        influx.query(&format!(
            "CREATE RETENTION POLICY \"{rp}\" ON \"{db}\" DURATION INF REPLICATION 1"
        ));
    }
    bucket
}

/// The chart's telegraf.conf with only what must differ on this machine replaced, each exactly
/// once (a chart that changed these lines fails here rather than running something else).
pub(crate) fn local_conf(
    rendered: &str,
    url: &str,
    export: &Path,
    snapshot: &Path,
    health_port: u16,
) -> String {
    let agent = env!("CARGO_BIN_EXE_kovenant");
    let outputs = rendered.matches("[[outputs.influxdb_v2]]").count();
    let replacements = [
        // InfluxDB: the local 1.8 instead of the chart's Service, in every output.
        (
            r#"urls = ["http://kovenant-influxdb.kovenant.svc:8086"]"#.to_owned(),
            format!(r#"urls = ["{url}"]"#),
            outputs,
        ),
        // The agent: the binary under test, where the image has it at /usr/local/bin/kovenant,
        // replaying the export alone instead of reading this machine's kernel; the cluster: the
        // corpus's snapshot, where the pod watches the API server.
        (
            r#"command = ["/usr/local/bin/kovenant", "agent", "#.to_owned(),
            format!(
                r#"command = ["{agent}", "agent", "--no-kernel", "--cluster-snapshot", "{}", "#,
                snapshot.display()
            ),
            1,
        ),
        // telegraf's health endpoint: a free port of loopback, where the pod has its own network
        // namespace (tests run side by side).
        (
            r#"service_address = "http://:8888""#.to_owned(),
            format!(r#"service_address = "http://127.0.0.1:{health_port}""#),
            1,
        ),
        // Tetragon's export: the corpus is appended to a local file, where the DaemonSet mounts
        // the node's /var/log/tetragon.
        (
            r#""--source", "file:/var/log/tetragon/tetragon.log""#.to_owned(),
            format!(r#""--source", "file:{}""#, export.display()),
            1,
        ),
    ];
    let mut conf = rendered.to_owned();
    for (from, to, times) in replacements {
        assert_eq!(
            conf.matches(&from).count(),
            times,
            "the rendered telegraf.conf has `{from}` {times} times:\n{rendered}"
        );
        conf = conf.replace(&from, &to);
    }
    conf
}

/// The processes whose parent is `parent`.
pub(crate) fn children(parent: Pid) -> Vec<Pid> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent.as_raw_nonzero().get())
            && let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok())
        {
            out.extend(Pid::from_raw(pid));
        }
    }
    out
}

fn cmdline(pid: Pid) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero())).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Whether process `pid` holds `path` open.
pub(crate) fn holds_open(pid: Pid, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", pid.as_raw_nonzero())) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
}

fn alive(pid: Pid) -> bool {
    // Gone, or a zombie nobody reaped yet, is not alive.
    std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).is_ok_and(|s| {
        let after = &s[s.rfind(')').map_or(0, |i| i + 1)..];
        after.split_whitespace().next() != Some("Z")
    })
}

/// The chart runs the agent with `--top-peers 20`: per window and workload, external and
/// unresolved peers beyond the busiest 20 become peer "other" (no port), which the ground truth
/// (by address) does not know. Both sides are compared with those peers summed per source,
/// peer type and role: exact, at that grain; every other peer type keeps its full key.
fn fold_peers(flows: &Sums) -> Sums {
    let mut out = Sums::new();
    for (key, fields) in flows {
        let mut key = key.clone();
        if key[4] == "external" || key[4] == "unresolved" {
            key[6] = "(folded)".into();
            key[7] = String::new();
        }
        let e = out.entry(key).or_default();
        for (f, v) in fields {
            *e.entry(f.clone()).or_default() += v;
        }
    }
    out
}

/// What the ground truth fixes, as summed from InfluxDB or as expected.json has it.
#[derive(Debug, PartialEq)]
struct Totals {
    flows: Sums,
    /// pod_io: only the kernel's counters fill it, so none in a replay.
    io: Sums,
    agent: BTreeMap<String, i64>,
}

impl Totals {
    fn of(influx: &Influx) -> Totals {
        Totals {
            flows: fold_peers(&influx.sums("tcp_flow", &FLOW_KEY, &FLOW_FIELDS)),
            io: influx.sums("pod_io", &IO_KEY, &IO_FIELDS),
            agent: influx
                .sums("kovenant_agent", &[], &COUNTS)
                .into_values()
                .next()
                .unwrap_or_default(),
        }
    }

    /// The replay's ground truth: connects per flow and every kernel-only field zero.
    fn expected(expected: &Value) -> Totals {
        let flows: Sums = replay_flows(expected)
            .into_iter()
            .map(|(k, mut v)| {
                for f in &FLOW_FIELDS[2..] {
                    v.insert(f.to_string(), 0);
                }
                (k, v)
            })
            .collect();
        let mut agent = replay_counts(expected);
        agent.insert("dropped_keys".to_owned(), 0);
        Totals {
            flows: fold_peers(&flows),
            io: Sums::new(),
            agent,
        }
    }

    /// Where `self` differs from `want`, a few keys of each kind.
    fn difference(&self, want: &Totals) -> String {
        let mut out = String::new();
        for (what, got, want) in [
            ("tcp_flow", &self.flows, &want.flows),
            ("pod_io", &self.io, &want.io),
        ] {
            let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
            let differ: Vec<_> = want
                .iter()
                .filter_map(|(k, w)| got.get(k).filter(|g| *g != w).map(|g| (k, g, w)))
                .collect();
            out += &format!(
                "\n{what}: {} keys, {} expected; {} missing, e.g. {:?}; {} not expected, e.g. \
                 {:?}; {} with other sums, e.g. {:?} (got, want)",
                got.len(),
                want.len(),
                missing.len(),
                &missing[..missing.len().min(3)],
                extra.len(),
                &extra[..extra.len().min(3)],
                differ.len(),
                &differ[..differ.len().min(3)],
            );
        }
        out + &format!(
            "\nkovenant_agent: got {:?}, want {:?}",
            self.agent, want.agent
        )
    }
}

pub(crate) fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

#[test]
#[allow(clippy::print_stderr)] // the delivery and stop times, for `--nocapture`
fn real_telegraf_runs_the_rendered_config_and_delivers_the_ground_truth_once() {
    let telegraf_bin = crate::support::tool("KOVENANT_TEST_TELEGRAF", "telegraf");
    let influxd_bin = crate::support::tool("KOVENANT_TEST_INFLUXD18", "influxdb18");
    // The telegraf of the image kovenant builds on, not some other version.
    let version = Command::new(&telegraf_bin)
        .arg("version")
        .output()
        .expect("telegraf version");
    let pinned = kovenant::config::pins::TELEGRAF_IMAGE
        .rsplit_once(':')
        .expect("a tag")
        .1;
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("Telegraf {pinned}"),
        "{} is not the telegraf of the pinned image {}: see TELEGRAF_VERSION in .ci/tools.sh",
        telegraf_bin.display(),
        kovenant::config::pins::TELEGRAF_IMAGE
    );
    let corpus = Corpus::generate(20_000, 23, 0.02);
    let mut want = Totals::expected(&corpus.expected());
    let tmp = tempfile::tempdir().expect("tempdir");
    // Canonical, as /proc/PID/fd names the files a process holds.
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical tempdir");

    std::fs::create_dir(dir.join("influxdb")).expect("mkdir");
    let (mut influxd, base) = start_influxd(&influxd_bin, &dir.join("influxdb"));
    let rendered = crate::chart::object("ConfigMap")["data"]["telegraf.conf"]
        .as_str()
        .expect("telegraf.conf in the ConfigMap")
        .to_owned();
    let bucket = prepare_buckets(&base, &rendered);
    let influx = Influx {
        base: &base,
        db: &bucket,
        login: Some((USER, PASSWORD)),
    };
    // Auth is on: the v2 write API refuses a wrong token, so what arrives came with the right one.
    let refused = ureq::post(format!("{base}/api/v2/write?org=kovenant&bucket={bucket}"))
        .header("Authorization", format!("Token {USER}:wrong"))
        .send("probe value=1i");
    assert!(
        matches!(refused, Err(ureq::Error::StatusCode(401))),
        "a wrong token: {refused:?}"
    );

    // Tetragon's export file exists (empty here) when the agent starts: it is read from its end,
    // as on a node where Tetragon already runs, so the corpus is appended once the agent has it
    // open.
    let export = dir.join("tetragon.log");
    std::fs::write(&export, "").expect("create the export file");
    let snapshot = corpus.path("cluster.json");
    let conf = local_conf(&rendered, &base, &export, &snapshot, free_port());
    std::fs::write(dir.join("telegraf.conf"), &conf).expect("write telegraf.conf");

    // As the DaemonSet runs it: `telegraf --config FILE`, NODE_NAME and INFLUX_TOKEN from the
    // environment, nothing else. The token of InfluxDB 1.8's v2 API is `user:password`.
    let mut cmd = Command::new(&telegraf_bin);
    cmd.env_clear()
        .env("NODE_NAME", NODE)
        .env("INFLUX_TOKEN", format!("{USER}:{PASSWORD}"))
        .arg("--config")
        .arg(dir.join("telegraf.conf"));
    let mut telegraf = Guard::spawn(cmd, dir.join("telegraf.log"));
    let started = Instant::now();

    let mut agent = None;
    eventually(
        "telegraf runs the agent, which opens the export file",
        Duration::from_secs(60),
        || {
            if let Some(status) = telegraf.exited() {
                panic!("telegraf exited ({status}):\n{}", telegraf.log());
            }
            let kids = children(telegraf.pid());
            agent = kids.iter().copied().find(|k| holds_open(*k, &export));
            agent
                .is_none()
                .then(|| format!("telegraf's children {kids:?}\n{}", telegraf.log()))
        },
    );
    let agent = agent.expect("the agent");
    // The command array of telegraf.conf (a TOML array of strings, which JSON reads alike),
    // with ${NODE_NAME} as telegraf fills it in from the environment.
    let command: Vec<String> = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("command = "))
        .map(|c| serde_json::from_str::<Vec<String>>(c).expect("command = [...]"))
        .expect("command in telegraf.conf")
        .into_iter()
        .map(|a| a.replace("${NODE_NAME}", NODE))
        .collect();
    assert!(command.iter().any(|a| a == NODE), "{command:?}");
    assert_eq!(
        cmdline(agent),
        command,
        "the agent's command line, as telegraf.conf gives it"
    );

    let events = std::fs::read(corpus.path("events.jsonl")).expect("events.jsonl");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&export)
        .and_then(|mut f| f.write_all(&events))
        .expect("append the corpus to the export file");

    eventually(
        "the ground truth reaches InfluxDB through telegraf",
        DELIVERY,
        || {
            if let Some(status) = telegraf.exited() {
                panic!("telegraf exited ({status}):\n{}", telegraf.log());
            }
            let got = Totals::of(&influx);
            (got != want).then(|| {
                format!(
                    "{}\n--- telegraf's log\n{}",
                    got.difference(&want),
                    telegraf.log()
                )
            })
        },
    );
    let delivered = started.elapsed();

    // The agent follows the file past its end: it keeps running and reporting (an idle window's
    // self-metrics, later than the totals' arrival) and counts nothing more.
    let since = now_ns();
    eventually(
        "the agent reports an idle window after the corpus",
        DELIVERY,
        || {
            let v = influx.query(&format!(
                "SELECT count(\"tetragon_lines\") FROM \"kovenant_agent\" WHERE time > {since}"
            ));
            v["results"][0]["series"][0]["values"][0][1]
                .as_i64()
                .is_none()
                .then(|| "no self-metrics yet".to_owned())
        },
    );
    assert!(alive(agent), "the agent exited at the end of the file");
    assert_eq!(
        children(telegraf.pid()),
        [agent],
        "telegraf runs one agent, never restarted"
    );
    let after_idle = Totals::of(&influx);
    assert!(
        after_idle == want,
        "after an idle window:{}",
        after_idle.difference(&want)
    );

    // Lines the agent has read but not yet reported when telegraf is stopped: they reach InfluxDB
    // through the shutdown (the agent's last window, handed over before it exits). Lines that
    // are not JSON leave the ground truth of the flows as it is and count as bad lines.
    const LATE: i64 = 250;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&export)
        .and_then(|mut f| {
            f.write_all(&b"not an event: appended before SIGTERM\n".repeat(LATE as usize))
        })
        .expect("append to the export file");
    crate::agent_follow::wait_read(agent.as_raw_nonzero().get() as u32, &export);
    for count in ["tetragon_lines", "bad_lines"] {
        *want.agent.get_mut(count).expect(count) += LATE;
    }

    // SIGTERM, as the kubelet stops the pod: telegraf stops the agent and flushes what is left.
    let stopping = Instant::now();
    kill_process(telegraf.pid(), Signal::TERM).expect("SIGTERM telegraf");
    let mut status = None;
    eventually(
        "telegraf stops after SIGTERM",
        Duration::from_secs(30),
        || {
            status = telegraf.exited();
            status.is_none().then(|| telegraf.log())
        },
    );
    let stopped = stopping.elapsed();
    let log = telegraf.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "telegraf's exit after SIGTERM: {status:?}\n{log}"
    );
    assert!(!alive(agent), "the agent outlived telegraf");
    // telegraf logs the agent's stderr as errors unless a line says its level ("W! ..."):
    // neither telegraf nor the agent has anything to say about a healthy run.
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" E! ") || l.contains(" W! "))
        .collect();
    assert!(
        complaints.is_empty(),
        "telegraf logged errors or warnings:\n{log}"
    );
    // telegraf closes the agent's stdin and sends SIGTERM only 5 s later: the agent stops at the
    // end of its stdin.
    assert!(
        stopped < Duration::from_secs(5),
        "telegraf took {stopped:?} to stop: the agent waited for telegraf's SIGTERM\n{log}"
    );
    let last = Totals::of(&influx);
    assert!(
        last == want,
        "after telegraf stopped:{}",
        last.difference(&want)
    );
    eprintln!(
        "telegraf: ground truth in InfluxDB {delivered:?} after start, stopped {stopped:?} after \
         SIGTERM; {} lines",
        want.agent["tetragon_lines"]
    );
    let _ = kill_process_group(influxd.pid(), Signal::TERM);
    eventually("influxd stops", Duration::from_secs(30), || {
        influxd.exited().is_none().then(String::new)
    });
}
