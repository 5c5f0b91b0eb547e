//! Tetragon's events of the `kovenant-tcp` policy, in its real JSON shape: a real
//! `process_kprobe` event of Tetragon's documentation (../shared/fixtures) with its process, pod,
//! hook and socket changed to the test's. Tetragon itself cannot run here (no kprobes).
use serde_json::{Value, json};

use super::net::{Pod, Scenario};

/// A real kprobe event with a pod, from the fixtures.
fn template() -> Value {
    let path = crate::support::shared().join("fixtures/tetragon-events/tetragon-docs.jsonl");
    let text = std::fs::read_to_string(&path).expect("the Tetragon fixtures");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["process_kprobe"]["process"]["pod"]["workload"].is_string())
        .expect("a process_kprobe event with a pod in the fixtures")
}

/// The socket of a connection, as Tetragon's `sock_arg` shows it.
pub struct Sock<'a> {
    pub saddr: &'a str,
    pub sport: u16,
    pub daddr: &'a str,
    pub dport: u16,
}

/// A `tcp_connect` event (policy kovenant-tcp, arg 0 `sock`) of process `pid` (`binary`) of
/// `pod`, on `node`, now.
pub fn tcp_connect(s: &Scenario, pod: &Pod, pid: u32, binary: &str, sock: &Sock) -> String {
    let mut v = template();
    let k = &mut v["process_kprobe"];
    for who in ["process", "parent"] {
        let p = &mut k[who];
        p["pid"] = json!(pid);
        p["tid"] = json!(pid);
        p["binary"] = json!(binary);
        p["arguments"] = json!("");
        let pod_v = &mut p["pod"];
        pod_v["namespace"] = json!(pod.namespace);
        pod_v["name"] = json!(pod.name);
        pod_v["workload"] = json!(pod.workload);
        pod_v["workload_kind"] = json!("Deployment");
        pod_v["pod_labels"] = json!({"app": pod.workload});
        pod_v["container"]["id"] = json!(format!("containerd://{}", pod.container_id));
        pod_v["container"]["name"] = json!("main");
    }
    k["function_name"] = json!("tcp_connect");
    k["policy_name"] = json!("kovenant-tcp");
    k["action"] = json!("KPROBE_ACTION_POST");
    let family = if sock.saddr.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    k["args"] = json!([{"sock_arg": {
        "family": family, "type": "SOCK_STREAM", "protocol": "IPPROTO_TCP", "mark": 0,
        "priority": 0, "saddr": sock.saddr, "daddr": sock.daddr, "sport": sock.sport,
        "dport": sock.dport, "cookie": "18446614060123456789", "state": "TCP_SYN_SENT"}}]);
    if let Some(o) = k.as_object_mut() {
        o.remove("return");
    }
    v["node_name"] = json!(s.node);
    v["time"] = json!(now_rfc3339());
    let mut line = serde_json::to_string(&v).expect("json");
    line.push('\n');
    line
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    k8s_openapi::jiff::Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)
        .expect("time")
        .to_string()
}
