//! `kovenant status`: health through the API (a port-forward to a real InfluxDB, the service
//! proxy to a stand-in Grafana), exit 0 or 3, the JSON shape.
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::fake_api::{http_request, stand_in, stand_in_routes};
use crate::stack::{Run, Stack};
use crate::support::service;

/// An installed stack whose Grafana answers through the service proxy and whose InfluxDB (real,
/// with a fresh tcp_flow point) answers through a port-forward.
fn healthy_stack() -> Stack {
    let stack = Stack::new();
    let run = stack.install();
    assert_eq!(run.code, 0, "{run}");
    let grafana = stand_in(
        "/api/health",
        r#"{"commit":"abc","database":"ok","version":"12.3.0"}"#,
    );
    stack.api.proxy("kovenant", "grafana", 3000, &grafana);
    let influx = service("KOVENANT_TEST_INFLUXDB");
    let (code, body) = http_request("POST", &influx, "/query", b"q=CREATE%20DATABASE%20tetragon")
        .expect("InfluxDB answers");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let point = format!(
        "tcp_flow,src_namespace=default,peer_type=service connects=1i {now}\n\
         kovenant_agent,node=node-1 lines=1i,events=1i {now}"
    );
    let (code, body) =
        http_request("POST", &influx, "/write?db=tetragon", point.as_bytes()).expect("write");
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&body));
    // The way status reads it in a cluster: a port-forward to the pod, which carries the
    // token. No service proxy to InfluxDB: the newest point can only come through the relay.
    stack.api.port_forward(
        "kovenant",
        "kovenant-influxdb-0",
        8086,
        influx.trim_start_matches("http://"),
    );
    stack
}

/// The admin token install generated, from the Secret in the fake API.
fn influx_token(stack: &Stack) -> String {
    let secret = stack
        .api
        .get("/api/v1/namespaces/kovenant/secrets/kovenant-influxdb")
        .expect("the InfluxDB Secret");
    let b64 = secret["data"]["admin-token"].as_str().expect("admin-token");
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    String::from_utf8(raw).expect("UTF-8 token")
}

/// A one-request HTTP server standing in for InfluxDB behind the port-forward: it keeps the
/// request it got and answers `body`.
fn recording_influx(body: String) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&got).into_owned());
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    (addr, rx)
}

fn status(stack: &Stack, extra: &[&str]) -> Run {
    let env = stack.env_file.to_string_lossy().into_owned();
    let mut args = vec!["status", "--env-file", &env];
    args.extend_from_slice(extra);
    stack.run(&args)
}

/// InfluxDB's part of the report says the newest point is under a minute old.
fn assert_fresh(influx: &Value) {
    assert_eq!(influx["healthy"], true, "{influx}");
    assert!(
        influx["age_seconds"]
            .as_i64()
            .is_some_and(|a| (0..60).contains(&a)),
        "{influx}"
    );
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn healthy_stack_exits_0_with_the_documented_json() {
    let stack = healthy_stack();
    let run = status(&stack, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("the stack is healthy"), "{run}");
    assert!(
        run.stderr
            .contains("answering /api/health (version 12.3.0)"),
        "{run}"
    );

    let run = status(&stack, &["-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(
        keys(&v),
        [
            "components",
            "context",
            "dashboards",
            "grafana",
            "healthy",
            "influxdb",
            "policies"
        ]
    );
    assert_eq!(v["healthy"], true);
    assert_eq!(v["context"], "fake");
    let names: Vec<&str> = v["components"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["tetragon", "prometheus", "grafana", "pipeline"]);
    let grafana = &v["components"][2];
    assert_eq!(
        keys(grafana),
        [
            "errors",
            "healthy",
            "helm",
            "name",
            "namespace",
            "problems",
            "release",
            "workloads"
        ]
    );
    assert_eq!(
        grafana["helm"],
        json!({"chart": "grafana", "version": "12.11.1", "app_version": "12.11.1", "revision": 1, "status": "deployed"})
    );
    assert_eq!(
        grafana["workloads"],
        json!([{"kind": "Deployment", "name": "grafana", "namespace": "kovenant", "ready": 1, "desired": 1}])
    );
    let tetragon = &v["components"][0];
    assert_eq!(tetragon["namespace"], "kube-system");
    assert_eq!(tetragon["workloads"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["policies"]["healthy"], true);
    let mut present: Vec<&str> = v["policies"]["present"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    present.sort();
    assert_eq!(present, ["kovenant-io", "kovenant-tcp"]);
    assert_eq!(
        v["grafana"],
        json!({"healthy": true, "version": "12.3.0", "error": null})
    );
    assert_eq!(v["influxdb"]["healthy"], true);
    assert_eq!(
        keys(&v["influxdb"]),
        [
            "age_seconds",
            "agents",
            "error",
            "healthy",
            "newest_tcp_flow",
            "stale_after_seconds"
        ]
    );
    assert_fresh(&v["influxdb"]);
    assert_eq!(v["influxdb"]["stale_after_seconds"], 30);
    assert_eq!(v["influxdb"]["agents"][0]["node"], "node-1");
}

#[test]
fn a_pod_not_ready_exits_3_with_its_reason() {
    let stack = healthy_stack();
    stack.api.update(
        "/apis/apps/v1/namespaces/kovenant/deployments/grafana",
        |d| {
            d["status"]["readyReplicas"] = json!(0);
        },
    );
    stack.api.update("/api/v1/namespaces/kovenant/pods/grafana-0", |p| {
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        p["status"]["containerStatuses"][0]["ready"] = json!(false);
        p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}});
    });
    let run = status(&stack, &[]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains(
            "pod kovenant/grafana-0 CrashLoopBackOff: back-off 5m0s restarting failed container"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("grafana 0/1"), "{run}");
    assert!(
        !run.stderr.contains("error:"),
        "unhealthy is a report, not an error: {run}"
    );

    let run = status(&stack, &["-o", "json"]);
    assert_eq!(run.code, 3, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["components"][2]["healthy"], false);
    assert_eq!(
        v["components"][2]["problems"],
        json!([{"namespace": "kovenant", "pod": "grafana-0", "reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}])
    );
    assert_eq!(
        v["components"][1]["healthy"], true,
        "the other results are kept"
    );
}

#[test]
fn nothing_installed_reports_every_part_and_exits_3() {
    let stack = Stack::new();
    let run = status(&stack, &["-o", "json", "--wait", "--timeout", "1s"]);
    assert_eq!(run.code, 3, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    for c in v["components"].as_array().expect("array") {
        assert_eq!(c["helm"], Value::Null, "{c}");
        assert_eq!(c["healthy"], false);
    }
    assert_eq!(
        v["policies"]["errors"][0],
        "the API server does not serve cilium.io/v1alpha1 TracingPolicy (is Tetragon installed?)"
    );
    assert_eq!(
        v["grafana"]["error"],
        "/api/health: no Grafana pod is ready; through the service proxy: services \"grafana\" not found"
    );
}

#[test]
fn influxdb_refusing_the_query_is_unhealthy_and_says_why() {
    let stack = healthy_stack();
    let influx = stand_in_routes(&[
        (
            "/query",
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        ),
        (
            "/health",
            200,
            r#"{"name":"influxdb","status":"pass","version":"v2.7.12"}"#,
        ),
    ]);
    stack
        .api
        .proxy("kovenant", "kovenant-influxdb", 8086, &influx);
    stack.api.deny("create", "pods/portforward");
    // InfluxDB is up, but whether data flows is unknown: not healthy (a dead pipeline must not
    // pass a smoke test), and the reason says what status could not do.
    let run = status(&stack, &["-o", "json"]);
    assert_eq!(run.code, 3, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(
        v["influxdb"],
        json!({"healthy": false, "newest_tcp_flow": null, "age_seconds": null,
               "agents": [], "stale_after_seconds": 30,
               "error": "answering /health; the newest point needs the token, and port-forward to kovenant-influxdb-0:8086: pods \"kovenant-influxdb-0\" is forbidden: User \"fake\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"kovenant\""})
    );
}

#[test]
fn the_newest_point_comes_through_a_port_forward_that_carries_the_token() {
    let stack = healthy_stack();
    // The service proxy answers as it does before InfluxDB 2.x: the token never arrives.
    let refusing = stand_in_routes(&[(
        "/query",
        401,
        r#"{"code":"unauthorized","message":"unauthorized access"}"#,
    )]);
    stack
        .api
        .proxy("kovenant", "kovenant-influxdb", 8086, &refusing);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let answer = format!(
        r#"{{"results":[{{"statement_id":0,"series":[{{"name":"kovenant_agent","tags":{{"node":"node-1"}},"columns":["time","last"],"values":[[{now},1]]}}]}}]}}"#
    );
    let (addr, request) = recording_influx(answer);
    stack
        .api
        .port_forward("kovenant", "kovenant-influxdb-0", 8086, &addr);

    let run = status(&stack, &["-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["influxdb"]["healthy"], true, "{}", v["influxdb"]);
    assert_eq!(v["influxdb"]["error"], Value::Null, "{}", v["influxdb"]);
    let agent = &v["influxdb"]["agents"][0];
    assert_eq!(agent["node"], "node-1", "{}", v["influxdb"]);
    assert!(
        agent["age_seconds"]
            .as_i64()
            .is_some_and(|a| (0..60).contains(&a)),
        "{agent}"
    );

    let token = influx_token(&stack);
    let got = request
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("InfluxDB got a request");
    let head: Vec<&str> = got.lines().collect();
    assert!(
        head[0].starts_with("GET /query?db=tetragon&epoch=s&q=SELECT"),
        "{got}"
    );
    let auth = format!("authorization: token {}", token.to_ascii_lowercase());
    assert!(
        head.iter().any(|l| l.to_ascii_lowercase() == auth),
        "the token goes in a header: {got}"
    );
    assert!(!head[0].contains(&token), "never in the URL: {got}");
    assert!(
        !run.stdout.contains(&token) && !run.stderr.contains(&token),
        "never in the output: {run}"
    );
}
