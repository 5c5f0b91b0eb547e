//! The agent pod's probes against real telegraf running the telegraf.conf the pipeline chart
//! renders (1 s windows), with the agent as its execd child and a real InfluxDB 1.8 of this test's
//! own (the shared one must not be stopped): the health endpoint the DaemonSet's probes ask turns
//! 503 once the agent is wedged (stopped with SIGSTOP) for the rendered silence, and back to 200
//! when it resumes; an InfluxDB outage longer than that leaves it 200 (the kubelet would neither
//! mark the pod unready nor restart telegraf), and telegraf's buffer delivers every window of the
//! outage once InfluxDB is back.
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::{Signal, kill_process};

use crate::telegraf::*;

/// What the health endpoint answers: its HTTP status, or why there was none.
fn health(port: u16) -> Result<u16, String> {
    match ureq::get(format!("http://127.0.0.1:{port}/")).call() {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Ok(code),
        Err(e) => Err(e.to_string()),
    }
}

/// The whole seconds at which InfluxDB holds a kovenant_agent point, within `[from, to]` (s).
fn windows(base: &str, db: &str, from: u64, to: u64) -> Vec<u64> {
    let q = format!(
        "SELECT \"tetragon_lines\" FROM \"kovenant_agent\" WHERE time >= {from}s AND time <= {to}s"
    );
    let mut resp = ureq::post(format!("{base}/query"))
        .header("Authorization", format!("Token {USER}:{PASSWORD}"))
        .send_form([("db", db), ("q", &q), ("epoch", "s")])
        .unwrap_or_else(|e| panic!("InfluxQL {q}: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("JSON");
    v["results"][0]["series"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row[0].as_u64())
        .collect()
}

fn now_s() -> u64 {
    u64::try_from(now_ns() / 1_000_000_000).expect("seconds")
}

#[test]
fn the_agents_health_follows_its_windows_not_influxdb_and_the_buffer_rides_out_an_outage() {
    let telegraf_bin = crate::support::tool("KOVENANT_TEST_TELEGRAF", "telegraf");
    let influxd_bin = crate::support::tool("KOVENANT_TEST_INFLUXD18", "influxdb18");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical tempdir");

    let config = kovenant::config::Config {
        agent_window: Duration::from_secs(1),
        ..Default::default()
    };
    let rendered = crate::chart::objects_with(&config)
        .into_iter()
        .find(|(_, o)| o["kind"] == "ConfigMap")
        .expect("the ConfigMap")
        .1["data"]["telegraf.conf"]
        .as_str()
        .expect("telegraf.conf")
        .to_owned();
    // Three 1 s windows and telegraf's 10 s flush.
    let silence = Duration::from_secs(13);
    assert!(
        rendered.contains("max_time_between_metrics = \"13s\""),
        "{rendered}"
    );

    std::fs::create_dir(dir.join("influxdb")).expect("mkdir");
    let (mut influxd, base) = start_influxd(&influxd_bin, &dir.join("influxdb"));
    let bucket = prepare_buckets(&base, &rendered);

    let export = dir.join("tetragon.log");
    std::fs::write(&export, "").expect("create the export file");
    let snapshot = dir.join("cluster.json");
    std::fs::write(&snapshot, r#"{"apiVersion":"v1","kind":"List","items":[]}"#)
        .expect("write the snapshot");
    let port = free_port();
    let conf = local_conf(&rendered, &base, &export, &snapshot, port);
    // Delivery within a second of a window; the silence stays as rendered for the 10 s flush,
    // so the wedged agent below is told from a flush that has not come yet with room to spare.
    assert_eq!(
        conf.matches("flush_interval = \"10s\"").count(),
        1,
        "{conf}"
    );
    let conf = conf.replace("flush_interval = \"10s\"", "flush_interval = \"1s\"");
    std::fs::write(dir.join("telegraf.conf"), &conf).expect("write telegraf.conf");

    let mut cmd = Command::new(&telegraf_bin);
    cmd.env_clear()
        .env("NODE_NAME", "kwok-node-0")
        .env("INFLUX_TOKEN", format!("{USER}:{PASSWORD}"))
        .arg("--config")
        .arg(dir.join("telegraf.conf"));
    let mut telegraf = Guard::spawn(cmd, dir.join("telegraf.log"));
    let mut agent = None;
    eventually("telegraf runs the agent", Duration::from_secs(60), || {
        if let Some(status) = telegraf.exited() {
            panic!("telegraf exited ({status}):\n{}", telegraf.log());
        }
        agent = children(telegraf.pid())
            .into_iter()
            .find(|k| holds_open(*k, &export));
        agent.is_none().then(|| telegraf.log())
    });
    let agent = agent.expect("the agent");
    let started = now_s();
    eventually(
        "the agent's windows reach InfluxDB and the endpoint says healthy",
        Duration::from_secs(30),
        || {
            let got = health(port);
            (windows(&base, &bucket, started, now_s() + 1).is_empty() || got != Ok(200))
                .then(|| format!("health {got:?}\n{}", telegraf.log()))
        },
    );

    // A wedged agent: alive, silent. 503 once telegraf's last write to outputs.health (at most a
    // flush after the agent's last window) is older than the silence, not before.
    kill_process(agent, Signal::STOP).expect("SIGSTOP the agent");
    let wedged = Instant::now();
    eventually(
        "a wedged agent makes the endpoint unhealthy",
        silence + Duration::from_secs(15),
        || {
            let got = health(port);
            (got != Ok(503)).then(|| format!("health {got:?}"))
        },
    );
    let unhealthy_after = wedged.elapsed();
    kill_process(agent, Signal::CONT).expect("SIGCONT the agent");
    assert!(
        unhealthy_after >= silence - Duration::from_secs(2),
        "503 {unhealthy_after:?} after the agent stopped, before the {silence:?} of silence"
    );
    eventually(
        "the endpoint is healthy again once the agent resumes",
        Duration::from_secs(15),
        || {
            let got = health(port);
            (got != Ok(200)).then(|| format!("health {got:?}"))
        },
    );
    let resumed = now_s();
    eventually(
        "the resumed agent's windows reach InfluxDB",
        Duration::from_secs(15),
        || {
            windows(&base, &bucket, resumed + 1, now_s() + 1)
                .is_empty()
                .then(String::new)
        },
    );

    // InfluxDB goes away for longer than the silence: every probe meanwhile is answered 200.
    let down = now_s();
    kill_process(influxd.pid(), Signal::TERM).expect("SIGTERM influxd");
    eventually("influxd stops", Duration::from_secs(30), || {
        influxd.exited().is_none().then(String::new)
    });
    let outage = Instant::now();
    let mut probes = 0;
    while outage.elapsed() < silence + Duration::from_secs(5) {
        assert_eq!(
            health(port),
            Ok(200),
            "{:?} into an InfluxDB outage, after {probes} probes\n{}",
            outage.elapsed(),
            telegraf.log()
        );
        probes += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let up = now_s();
    let (_influxd, again) = start_influxd(&influxd_bin, &dir.join("influxdb"));
    assert_eq!(again, base, "influxd back on its port");

    // Every window of the outage arrives, once: telegraf kept them in its buffer.
    let want: Vec<u64> = (down..=up).collect();
    eventually(
        "telegraf delivers the outage's windows once InfluxDB is back",
        Duration::from_secs(30),
        || {
            let got = windows(&base, &bucket, down, up);
            (got != want).then(|| format!("got windows {got:?}, want {want:?}"))
        },
    );
    let log = telegraf.log();
    assert!(
        log.contains("E! [outputs.influxdb_v2]"),
        "telegraf never failed a write to InfluxDB during the outage:\n{log}"
    );
    kill_process(telegraf.pid(), Signal::TERM).expect("SIGTERM telegraf");
    eventually("telegraf stops", Duration::from_secs(30), || {
        telegraf.exited().is_none().then(|| telegraf.log())
    });
}
