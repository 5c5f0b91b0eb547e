//! `pods/NAME/portforward` as the API server serves it to kube-rs: a WebSocket speaking the
//! `v4.channel.k8s.io` subprotocol (each binary message starts with its channel: 0 data and 1
//! errors for the one port; the first message on each channel is the port, little-endian), here
//! relayed to a local address so status reaches the real InfluxDB through it.
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::handler::{Body, Reply, not_found, status};
use super::store::Store;

pub const SUBPROTOCOL: &str = "v4.channel.k8s.io";

pub fn open(store: &mut Store, ns: &str, pod: &str, q: &BTreeMap<String, String>) -> Reply {
    let pod_key = (
        "".to_string(),
        "pods".to_string(),
        ns.to_string(),
        pod.to_string(),
    );
    if !store.objects.contains_key(&pod_key) {
        return not_found("pods", pod);
    }
    if store
        .denied
        .iter()
        .any(|(verb, res)| verb == "create" && res == "pods/portforward")
    {
        return status(
            403,
            "Forbidden",
            &format!(
                "pods \"{pod}\" is forbidden: User \"fake\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"{ns}\""
            ),
        );
    }
    let Some(port) = q.get("ports").and_then(|p| p.parse::<u16>().ok()) else {
        return status(
            400,
            "BadRequest",
            "one port in ?ports= is all this fake forwards",
        );
    };
    let Some(target) = store
        .port_forwards
        .get(&(ns.into(), pod.into(), port))
        .cloned()
    else {
        return status(
            500,
            "InternalError",
            &format!("unable to do port forwarding: nothing listens on {pod}:{port}"),
        );
    };
    Reply {
        status: 101,
        content_type: "",
        body: Body::Upgrade(Box::new(move |stream| relay(stream, &target, port))),
    }
}

/// Carries bytes both ways until either side closes. One thread: short read timeouts on both
/// sockets take turns (tungstenite resumes a read a timeout interrupted).
fn relay(stream: TcpStream, target: &str, port: u16) {
    let tick = Some(Duration::from_millis(20));
    let _ = stream.set_read_timeout(tick);
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    let [lo, hi] = port.to_le_bytes();
    if ws.send(Message::Binary(vec![0, lo, hi].into())).is_err()
        || ws.send(Message::Binary(vec![1, lo, hi].into())).is_err()
    {
        return;
    }
    let Ok(mut pod) = TcpStream::connect(target) else {
        let _ = ws.send(Message::Binary(b"\x01connection refused".to_vec().into()));
        let _ = ws.close(None);
        let _ = ws.flush();
        return;
    };
    let _ = pod.set_read_timeout(tick);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) if b.first() == Some(&0) => {
                if pod.write_all(&b[1..]).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        match pod.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut frame = Vec::with_capacity(n + 1);
                frame.push(0);
                frame.extend_from_slice(&buf[..n]);
                if ws.send(Message::Binary(frame.into())).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}
