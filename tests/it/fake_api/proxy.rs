//! The service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/...`) to a local port, so
//! status reaches a real InfluxDB and a stand-in Grafana the way it reaches them in a cluster.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::handler::{Body, Reply, status};
use super::store::Store;

/// A plain HTTP/1.0 GET; `(status, body)`.
pub fn http_get(base: &str, path_and_query: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http_request("GET", base, path_and_query, b"")
}

/// A plain HTTP/1.0 request with a form or text body; `(status, body)`.
pub fn http_request(
    method: &str,
    base: &str,
    path_and_query: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path_and_query} HTTP/1.0\r\nHost: {hostport}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(502);
    Ok((code, raw[(split + 4).min(raw.len())..].to_vec()))
}

pub fn forward(
    store: &mut Store,
    ns: &str,
    name_port: &str,
    rest: &[String],
    q: &BTreeMap<String, String>,
    _shared: &Arc<Mutex<Store>>,
) -> Reply {
    let parts: Vec<&str> = name_port.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [n] => (*n, ""),
        [n, p] => (*n, *p),
        [_, n, p] => (*n, *p),
        _ => return status(400, "BadRequest", "bad service name"),
    };
    if !store
        .objects
        .contains_key(&("".into(), "services".into(), ns.into(), name.into()))
    {
        return status(404, "NotFound", &format!("services \"{name}\" not found"));
    }
    let Some(base) = store
        .proxies
        .get(&(ns.into(), name.into(), port.into()))
        .cloned()
    else {
        return status(
            503,
            "ServiceUnavailable",
            &format!("no endpoints available for service \"{name}\""),
        );
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter())
        .finish();
    let path = format!(
        "/{}{}",
        rest.join("/"),
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    );
    match http_get(&base, &path) {
        Ok((code, body)) => Reply {
            status: code,
            content_type: "application/json",
            body: Body::Bytes(body),
        },
        Err(e) => status(
            503,
            "ServiceUnavailable",
            &format!("error trying to reach service: {e}"),
        ),
    }
}
