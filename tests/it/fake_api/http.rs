//! A minimal HTTP/1.1 server: one thread per connection, keep-alive, Content-Length bodies,
//! chunked streaming for watches. (A pooled server starves when clients keep idle connections.)
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::handler::{Body, Reply};
use super::portforward::SUBPROTOCOL;

/// method, path-and-query, content type, body -> reply
pub type Handler = Arc<dyn Fn(&str, &str, &str, &[u8]) -> Reply + Send + Sync>;

pub fn serve(listener: TcpListener, handler: Handler) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || {
                let _ = connection(stream, h);
            });
        }
    });
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn connection(stream: TcpStream, handler: Handler) -> std::io::Result<()> {
    // As Go's net/http (the real API server) does: no Nagle delay between a reply's head and
    // body. Without it every keep-alive request waits on the client's delayed ACK (~40 ms).
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let (method, target) = (
            words.next().unwrap_or_default().to_string(),
            words.next().unwrap_or_default().to_string(),
        );
        let (mut length, mut content_type, mut close) = (0usize, String::new(), false);
        let (mut ws_key, mut ws_protocols) = (String::new(), String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_string(),
                    "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                    "sec-websocket-key" => ws_key = v.trim().to_string(),
                    "sec-websocket-protocol" => ws_protocols = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let reply = handler(&method, &target, &content_type, &body);
        let head = |extra: &str| {
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n{extra}\r\n",
                reply.status,
                reason(reply.status),
                reply.content_type
            )
        };
        match reply.body {
            Body::Upgrade(take_over) => {
                // As the API server: only a WebSocket that offers the channel protocol.
                let offered = ws_protocols.split(',').any(|p| p.trim() == SUBPROTOCOL);
                if ws_key.is_empty() || !offered {
                    out.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
                    return out.flush();
                }
                write!(
                    out,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n",
                    tungstenite::handshake::derive_accept_key(ws_key.as_bytes())
                )?;
                out.flush()?;
                take_over(out);
                return Ok(());
            }
            Body::Bytes(b) => {
                out.write_all(head(&format!("Content-Length: {}\r\n", b.len())).as_bytes())?;
                out.write_all(&b)?;
                out.flush()?;
            }
            Body::Watch(rx, timeout) => {
                out.write_all(head("Transfer-Encoding: chunked\r\n").as_bytes())?;
                out.flush()?;
                let deadline = Instant::now() + timeout;
                while let Ok(chunk) =
                    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    write!(out, "{:x}\r\n", chunk.len())?;
                    out.write_all(&chunk)?;
                    out.write_all(b"\r\n")?;
                    out.flush()?;
                }
                out.write_all(b"0\r\n\r\n")?;
                return out.flush();
            }
        }
        if close {
            return Ok(());
        }
    }
}
