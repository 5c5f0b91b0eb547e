//! The live watches' changes reach attribution: a fake API server (in-process; the real control
//! plane cannot be made to send a chosen change at a chosen moment) lists a small cluster, then
//! its watches add a pod, the ReplicaSet that links it to its Deployment (after the pod), and
//! delete another pod; the Tetragon log stream sends events only after that.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent_support::*;

fn meta(name: &str, namespace: &str) -> Value {
    json!({"name": name, "namespace": namespace, "resourceVersion": "2",
           "creationTimestamp": "2025-12-31T23:00:00Z"})
}

fn pod(name: &str, ip: &str, owner: (&str, &str), hash: Option<&str>) -> Value {
    let mut m = meta(name, "shop");
    m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                                    "uid": "u", "controller": true}]);
    if let Some(h) = hash {
        m["labels"] = json!({"pod-template-hash": h});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": m,
           "spec": {"containers": [], "nodeName": "node-1"},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

fn tetragon_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "tetragon-abcde", "namespace": "kube-system", "resourceVersion": "1",
                        "labels": {"app.kubernetes.io/name": "tetragon"}},
           "spec": {"containers": [{"name": "export-stdout"}]}, "status": {"phase": "Running"}})
}

fn send(pod: &str, daddr: &str) -> String {
    format!(
        r#"{{"process_kprobe":{{"process":{{"pid":1,"pod":{{"namespace":"shop","name":"{pod}"}}}},"function_name":"tcp_connect","policy_name":"kovenant-tcp","args":[{{"sock_arg":{{"family":"AF_INET","saddr":"10.244.0.1","daddr":"{daddr}","sport":40000,"dport":8080}}}}]}},"node_name":"node-1","time":"2026-01-01T00:00:00Z"}}"#
    )
}

/// What the fake answers: a list, or a stream that starts after a delay and stays open.
enum Reply {
    List(Vec<Value>),
    Stream(Duration, Vec<u8>),
}

fn route(path: &str, query: &str) -> Reply {
    let watch = query.contains("watch=true") || query.contains("watch=1");
    let events = |items: &[(&str, Value)]| {
        let lines: Vec<String> = items
            .iter()
            .map(|(kind, o)| json!({"type": kind, "object": o}).to_string() + "\n")
            .collect();
        lines.concat().into_bytes()
    };
    match (path, watch) {
        (p, _) if p.ends_with("/log") => {
            let lines = [
                send("client-0", "10.244.0.5"),
                send("web-7d9-x", "10.244.0.9"),
            ];
            Reply::Stream(
                Duration::from_secs(3),
                (lines.join("\n") + "\n").into_bytes(),
            )
        }
        (p, false) if p.starts_with("/api/v1/namespaces/kube-system/pods") => {
            Reply::List(vec![tetragon_pod()])
        }
        ("/api/v1/pods", false) => Reply::List(vec![pod(
            "client-0",
            "10.244.0.9",
            ("StatefulSet", "client"),
            None,
        )]),
        ("/api/v1/pods", true) => {
            let added = pod(
                "web-7d9-x",
                "10.244.0.5",
                ("ReplicaSet", "web-7d9"),
                Some("7d9"),
            );
            let deleted = pod("client-0", "10.244.0.9", ("StatefulSet", "client"), None);
            let body = events(&[("ADDED", added), ("DELETED", deleted)]);
            Reply::Stream(Duration::ZERO, body)
        }
        ("/apis/apps/v1/statefulsets", false) => Reply::List(vec![json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("client", "shop")})]),
        ("/apis/apps/v1/deployments", false) => {
            let mut m = meta("web", "shop");
            m["annotations"] = json!({"meta.helm.sh/release-name": "shop-rel"});
            Reply::List(vec![
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": m}),
            ])
        }
        ("/apis/apps/v1/replicasets", true) => {
            let mut m = meta("web-7d9", "shop");
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "web", "uid": "u", "controller": true}]);
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m});
            Reply::Stream(Duration::from_millis(500), events(&[("ADDED", rs)]))
        }
        (_, true) => Reply::Stream(Duration::ZERO, Vec::new()),
        (_, false) => Reply::List(Vec::new()),
    }
}

fn respond(mut s: TcpStream) {
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
    match route(path, query) {
        Reply::List(items) => {
            let body = json!({"apiVersion": "v1", "kind": "List",
                              "metadata": {"resourceVersion": "1"}, "items": items})
            .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Reply::Stream(delay, body) => {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            );
            let _ = s.flush();
            std::thread::sleep(delay);
            let _ = s.write_all(&body);
            let _ = s.flush();
            // Streams stay open: a closed one would be reconnected and replayed.
            std::thread::sleep(Duration::from_secs(300));
        }
    }
}

#[test]
fn agent_kube_watched_changes_reach_attribution() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || respond(s));
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: fake, user: u}}}}]\n\
             current-context: c\n"
        ),
    )
    .expect("kubeconfig");
    let mut child = crate::support::kovenant()
        .args(["agent", "--no-kernel", "--source", "kube-logs"])
        .env("KUBECONFIG", &kubeconfig)
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
    std::thread::sleep(Duration::from_secs(7));
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(child.wait().expect("agent exits").success());
    let out = reader.join().expect("output");
    let flows: Vec<_> = parse_lp(&out)
        .into_iter()
        .filter(|p| p.measurement == "tcp_flow")
        .map(|p| {
            let t = |k: &str| p.tags.get(k).cloned().unwrap_or_default();
            (
                [t("src_workload"), t("src_kind"), t("src_release")],
                [t("peer_type"), t("peer_name")],
            )
        })
        .collect();
    let s = |v: &str| v.to_string();
    // The deleted pod is still its StatefulSet (a tombstone); the added pod is a peer and a
    // source, and its ReplicaSet, which came after it, gives it its Deployment's release.
    let mut want = vec![
        ([s("client"), s("StatefulSet"), s("")], [s("pod"), s("web")]),
        (
            [s("web"), s("Deployment"), s("shop-rel")],
            [s("pod"), s("client")],
        ),
    ];
    let mut got = flows;
    got.sort();
    want.sort();
    assert_eq!(got, want, "{out}");
}
