//! End to end on this machine's kernel: the live agent under real telegraf's execd input, with
//! the telegraf.conf the pipeline chart renders, writes a scenario's real traffic to a real
//! InfluxDB (1.8, whose v2 write API telegraf's influxdb_v2 output speaks); `kovenant top` then
//! reads it back from there with the scenario's exact bytes.
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::agent_influx::Influx;
use crate::kernel::*;

/// A server process killed with its process group (telegraf: with the agent it runs).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill(2) of the process group this test started.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn spawn(mut cmd: Command, log: &Path) -> Group {
    let out = std::fs::File::create(log).expect("log");
    Group(
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// InfluxDB 1.8 on loopback, state in `dir`, auth off; its URL once it answers.
fn influxd(dir: &Path) -> (Group, String) {
    let bin = crate::support::tool("KOVENANT_TEST_INFLUXD18", "influxdb18");
    let (http, rpc) = (free_port(), free_port());
    let d = dir.display();
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("influxdb.conf"),
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \
             \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  \
             query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{http}\"\n  \
             log-enabled = false\n[monitor]\n  store-enabled = false\n"
        ),
    )
    .expect("influxdb.conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-config").arg(dir.join("influxdb.conf"));
    let g = spawn(cmd, &dir.join("influxd.log"));
    let base = format!("http://127.0.0.1:{http}");
    eventually("influxd answers /ping", Duration::from_secs(60), || {
        ureq::get(format!("{base}/ping")).call().is_ok()
    });
    (g, base)
}

/// The chart's telegraf.conf with the agent's command line made this scenario's (the binary
/// under test, its snapshot, no Tetragon source, 1 s windows, the chart's `--pod-activity`) and
/// InfluxDB the local one.
fn conf(snapshot: &Path, url: &str) -> String {
    let rendered = crate::chart::object("ConfigMap")["data"]["telegraf.conf"]
        .as_str()
        .expect("telegraf.conf in the ConfigMap")
        .to_owned();
    let command = serde_json::to_string(&[
        env!("CARGO_BIN_EXE_kovenant"),
        "agent",
        "--source",
        "none",
        "--cluster-snapshot",
        &snapshot.display().to_string(),
        "--node-name",
        "${NODE_NAME}",
        "--window",
        "1s",
        "--pod-activity",
    ])
    .expect("json");
    let mut out = String::new();
    let mut commands = 0;
    for line in rendered.lines() {
        let t = line.trim_start();
        if t.starts_with("command = [") {
            commands += 1;
            out += &format!("      command = {command}\n");
        } else if t.starts_with("urls = [") {
            out += &format!("      urls = [\"{url}\"]\n");
        } else if t.starts_with("service_address = ") {
            // The health endpoint on a free port of loopback: tests run side by side.
            out += &format!(
                "      service_address = \"http://127.0.0.1:{}\"\n",
                free_port()
            );
        } else if t.starts_with("flush_interval = ") {
            // Delivery within a second or two of a window, not ten.
            out += "      flush_interval = \"1s\"\n";
        } else {
            out += line;
            out.push('\n');
        }
    }
    assert_eq!(commands, 1, "one execd command in:\n{rendered}");
    out
}

#[test]
fn kernel_flows_reach_influxdb_through_real_telegraf_and_top_shows_their_exact_bytes() {
    let telegraf = crate::support::tool("KOVENANT_TEST_TELEGRAF", "telegraf");
    let kubeconfig = crate::support::service("KOVENANT_TEST_KUBECONFIG");
    let mut s = Scenario::new("tele");
    let client = s.pod("shop", Layout::SystemdV2);
    let server = s.pod("db", Layout::CgroupfsV1);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "5432", "serve", "60", "1500", "24000"],
    );
    let mut cli = s.start(client, &["connect", &ip, "5432", "60", "1500", "24000"]);

    let (_influxd, base) = influxd(&s.file("influxdb"));
    let bucket = format!("kt{}", s.n);
    let influx = Influx {
        base: &base,
        db: &bucket,
        login: None,
    };
    influx.query(&format!("CREATE DATABASE \"{bucket}\""));
    influx.query(&format!(
        "CREATE RETENTION POLICY \"pods\" ON \"{bucket}\" DURATION INF REPLICATION 1"
    ));
    let text = conf(&s.snapshot(), &base)
        .replace("bucket = \"tetragon\"", &format!("bucket = \"{bucket}\""));
    let text = text.replace(
        "bucket = \"tetragon/pods\"",
        &format!("bucket = \"{bucket}/pods\""),
    );
    std::fs::write(s.file("telegraf.conf"), &text).expect("telegraf.conf");
    let mut cmd = Command::new(&telegraf);
    cmd.env_clear()
        .env("NODE_NAME", &s.node)
        .env("INFLUX_TOKEN", "unused")
        .arg("--config")
        .arg(s.file("telegraf.conf"));
    let _telegraf = spawn(cmd, &s.file("telegraf.log"));
    let log = || std::fs::read_to_string(s.file("telegraf.log")).unwrap_or_default();
    // The agent's first point in InfluxDB: its first sample is done.
    let node_points = |influx: &Influx| {
        let v = influx.query(&format!(
            "SELECT count(\"sockets\") FROM \"kovenant_agent\" WHERE \"node\" = '{}'",
            s.node
        ));
        v["results"][0]["series"][0]["values"][0][1]
            .as_i64()
            .unwrap_or(0)
    };
    eventually(
        "the agent's first point reaches InfluxDB through telegraf",
        Duration::from_secs(60),
        || node_points(&influx) > 0,
    );
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();

    let key = ["src_namespace", "src_workload", "peer_name", "port", "role"];
    let fields = [
        "connects",
        "accepts",
        "closes",
        "bytes_sent",
        "bytes_received",
    ];
    let ns = s.namespace.clone();
    let got = || influx.sums("tcp_flow", &key, &fields);
    let within = |sums: &crate::agent_support::Sums| {
        let row = |w: &str, peer: &str, role: &str| {
            sums.get(&vec![
                ns.clone(),
                w.to_string(),
                peer.to_string(),
                "5432".to_string(),
                role.to_string(),
            ])
            .cloned()
            .unwrap_or_default()
        };
        let (c, v) = (row("shop", "db", "client"), row("db", "shop", "server"));
        let f =
            |m: &std::collections::BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(0);
        (f(&c, "connects"), f(&c, "closes"), f(&c, "bytes_sent")) == (60, 60, 90_000)
            && (f(&c, "bytes_received") - 1_440_000).abs() <= 60
            && (f(&v, "accepts"), f(&v, "closes"), f(&v, "bytes_sent")) == (60, 60, 1_440_000)
            && (f(&v, "bytes_received") - 90_000).abs() <= 60
    };
    let start = std::time::Instant::now();
    loop {
        let last = got();
        if within(&last) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the scenario's flows in InfluxDB: {last:#?}\n--- telegraf's log\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // `kovenant top` reads them from "your own InfluxDB" (KOVENANT_INFLUXDB_URL).
    let env = s.file("top.env");
    std::fs::write(
        &env,
        format!(
            "KOVENANT_INFLUXDB_URL={base}\nKOVENANT_INFLUXDB_TOKEN=unused\n\
             DOCKER_INFLUXDB_INIT_BUCKET={bucket}\n"
        ),
    )
    .expect("top.env");
    // `kovenant top --by BY -o json`: its run (for messages) and its answer.
    let top = |by: &str| -> (crate::support::Run, Value) {
        let run: crate::support::Run = crate::support::kovenant()
            .args(["--kubeconfig", &kubeconfig, "top", "--env-file"])
            .arg(&env)
            .args([
                "--since", "15m", "--by", by, "--limit", "100000", "-o", "json",
            ])
            .output()
            .expect("kovenant top")
            .into();
        assert_eq!(run.code, 0, "{run}");
        let v = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
        (run, v)
    };
    let (run, v) = top("workload");
    let rows: Vec<&Value> = v["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter(|r| r["src_namespace"] == ns.as_str())
        .collect();
    let row = |w: &str| {
        *rows
            .iter()
            .find(|r| r["src_workload"] == w)
            .unwrap_or_else(|| panic!("no row of {w}: {run}"))
    };
    let (shop, db) = (row("shop"), row("db"));
    assert_eq!(rows.len(), 2, "{run}");
    assert_eq!(
        (shop["peer_name"].as_str(), shop["port"].as_str()),
        (Some("db"), Some("5432")),
        "{run}"
    );
    assert_eq!(shop["bytes_sent"].as_i64(), Some(90_000), "{run}");
    assert_eq!(db["bytes_sent"].as_i64(), Some(1_440_000), "{run}");
    let recv = shop["bytes_received"].as_i64().expect("bytes_received");
    assert!((recv - 1_440_000).abs() <= 60, "{run}");
    assert_eq!(shop["connects"].as_i64(), Some(60), "{run}");

    // Per pod, from the pod-level bucket (pod_activity, routed there by telegraf): each pod's
    // own exact bytes, with its connections and its pod name.
    let (run, v) = top("pod");
    let mut pods: Vec<(String, String, i64, i64, i64)> = v["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter(|r| r["namespace"] == ns.as_str())
        .map(|r| {
            let n = |f: &str| r[f].as_i64().unwrap_or(-1);
            (
                r["workload"].as_str().unwrap_or_default().to_owned(),
                r["pod"].as_str().unwrap_or_default().to_owned(),
                n("bytes_sent"),
                n("connects"),
                n("accepts"),
            )
        })
        .collect();
    pods.sort();
    let pod_name = |i: usize| s.pods[i].name.clone();
    assert_eq!(
        pods,
        vec![
            ("db".to_owned(), pod_name(server), 1_440_000, 0, 60),
            ("shop".to_owned(), pod_name(client), 90_000, 60, 0),
        ],
        "{run}"
    );
}
