//! `--source kube-logs` and the live watches against a tiny fake API server: list and (idle)
//! watch of the nine kinds from a corpus's cluster.json, and the Tetragon pod's log stream.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent_support::*;

const KINDS: [(&str, &str); 9] = [
    ("pods", "Pod"),
    ("services", "Service"),
    ("nodes", "Node"),
    ("replicasets", "ReplicaSet"),
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
    ("daemonsets", "DaemonSet"),
    ("jobs", "Job"),
    ("cronjobs", "CronJob"),
];

fn tetragon_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "tetragon-abcde", "namespace": "kube-system", "resourceVersion": "1",
                        "labels": {"app.kubernetes.io/name": "tetragon"}},
           "spec": {"containers": [{"name": "export-stdout"}]}, "status": {"phase": "Running"}})
}

fn respond(mut s: TcpStream, items: &[Value], events: &[u8]) {
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let target = request.split(' ').nth(1).unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let hold = |mut s: TcpStream, body: &[u8]| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        let _ = s.write_all(body);
        let _ = s.flush();
        // Streams stay open: a closed log stream would be reconnected and replayed.
        std::thread::sleep(Duration::from_secs(300));
    };
    if path.ends_with("/log") {
        return hold(s, events);
    }
    if query.contains("watch=true") || query.contains("watch=1") {
        return hold(s, b"");
    }
    let resource = path.rsplit('/').next().unwrap_or("");
    let list: Vec<Value> = if path.starts_with("/api/v1/namespaces/kube-system/pods") {
        vec![tetragon_pod()]
    } else {
        let kind = KINDS
            .iter()
            .find(|(r, _)| *r == resource)
            .map_or("", |(_, k)| *k);
        items
            .iter()
            .filter(|i| i["kind"] == kind)
            .cloned()
            .collect()
    };
    let body = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": list}).to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
}

/// How the agent is pointed at the fake API server.
enum Point {
    /// `KUBECONFIG` whose current context is the fake.
    Env,
    /// `--kubeconfig PATH --context NAME`, while `KUBECONFIG` names a dead server.
    Flags,
}

fn streams_and_watches(point: Point) {
    let c = Corpus::generate(4_000, 8, 0.02);
    let items = read_json(&c.path("cluster.json"))["items"]
        .as_array()
        .expect("items")
        .clone();
    let events = std::fs::read(c.path("events.jsonl")).expect("events");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let (items, events) = (items.clone(), events.clone());
            std::thread::spawn(move || respond(s, &items, &events));
        }
    });
    // Two contexts: `c` is the fake, `dead` a port nothing listens on.
    let kubeconfig = c.path("kubeconfig");
    let write = |path: &std::path::Path, current: &str| {
        std::fs::write(path, format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}, \
             {{name: dead, cluster: {{server: \"http://127.0.0.1:9\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: fake, user: u}}}}, \
             {{name: dead, context: {{cluster: dead, user: u}}}}]\ncurrent-context: {current}\n"
        )).expect("kubeconfig");
    };
    let mut cmd = crate::support::kovenant();
    cmd.args(["agent", "--no-kernel", "--source", "kube-logs"]);
    match point {
        Point::Env => {
            write(&kubeconfig, "c");
            cmd.env("KUBECONFIG", &kubeconfig);
        }
        Point::Flags => {
            write(&kubeconfig, "dead");
            let dead = c.path("dead-kubeconfig");
            write(&dead, "dead");
            cmd.env("KUBECONFIG", &dead)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--context", "c"]);
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).expect("read output");
        s
    });
    std::thread::sleep(Duration::from_secs(6));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert!(child.wait().expect("agent exits").success());
    let out = reader.join().expect("output");
    assert_ground_truth(&parse_lp(&out), &c.expected());
}

#[test]
fn agent_streams_tetragon_logs_and_watches_the_cluster() {
    streams_and_watches(Point::Env);
}

#[test]
fn agent_takes_the_global_kubeconfig_and_context() {
    streams_and_watches(Point::Flags);
}
