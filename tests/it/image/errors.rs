//! One clear error, the right exit code, and nothing changed: no daemon, no base image, a wrong binary, no registry.
use std::net::TcpListener;

use kovenant::config::Config;
use kovenant::plan::image::reference_for_binary;

use super::{Scratch, docker, kovenant_image, text};
use crate::support::kovenant;

const DAEMON_HINT: &str = "hint: start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)\n";

/// Runs `kovenant image` with DOCKER_HOST=`host` in an empty folder that is also HOME; asserts the
/// exact stderr, exit 1, no stdout, the folder still empty, and no image under the would-be tag.
fn assert_unreachable(host: &str, cause: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("kovenant-it-unreachable:{}", std::process::id());
    let out = kovenant()
        .env("DOCKER_HOST", host)
        .env("HOME", dir.path())
        .env("KOVENANT_TELEGRAF_IMAGE", &base)
        .current_dir(dir.path())
        .arg("image")
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!("error: docker: cannot reach the Docker daemon at {host}: {cause}\n{DAEMON_HINT}")
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(left.is_empty(), "kovenant left files behind: {left:?}");
    let binary = std::fs::read(env!("CARGO_BIN_EXE_kovenant")).expect("read binary");
    let config = Config {
        telegraf_image: base,
        ..Config::default()
    };
    let would_be = reference_for_binary(&config, &binary);
    assert!(!docker(&["image", "inspect", &would_be]).status.success());
}

#[test]
fn a_missing_docker_socket_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("no-such-docker.sock");
    assert_unreachable(
        &format!("unix://{}", socket.display()),
        &format!("no socket at {}", socket.display()),
    );
}

#[test]
fn a_closed_tcp_port_is_one_clear_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    assert_unreachable(
        &format!("tcp://127.0.0.1:{port}"),
        "Connection refused (os error 111)",
    );
}

#[test]
fn a_base_image_that_cannot_be_pulled_is_named() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let base = format!("127.0.0.1:{port}/kovenant-it/telegraf:none");
    let out = kovenant_image(&base, &[]).output().expect("run kovenant");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    let expected = format!(
        "error: image build: the base image {base} cannot be pulled by the Docker daemon at "
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(
        stderr.contains("hint: check KOVENANT_TELEGRAF_IMAGE"),
        "{stderr}"
    );
}

#[test]
fn an_agent_binary_that_is_not_a_linux_executable_is_refused() {
    let scratch = Scratch::new("notelf");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("kovenant");
    std::fs::write(&script, "#!/bin/sh\necho not kovenant\n").expect("write");
    let path = script.to_str().expect("utf-8");
    let out = kovenant_image(&scratch.base, &["--agent-binary", path])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: --agent-binary {path} is not an executable, but the image runs the agent on \
             the cluster's Linux nodes\nhint: pass --agent-binary PATH naming a Linux kovenant \
             (kovenant-x86_64-unknown-linux-gnu for amd64 nodes, \
             kovenant-aarch64-unknown-linux-gnu for arm64 nodes)\n"
        )
    );
}

#[test]
fn push_without_a_registry_is_a_usage_error() {
    let out = kovenant_image("kovenant-it-unused:1", &["--push"])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: pushing the image needs a registry, and KOVENANT_IMAGE_REGISTRY is not set\n\
         hint: set KOVENANT_IMAGE_REGISTRY=host[:port][/path] in .env or the environment\n"
    );
}

/// A daemon on loopback that refuses every API version kovenant can speak, as a Docker 1.11
/// daemon would: dockerd's own words, status 400.
fn ancient_daemon() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = r#"{"message":"client version 1.53 is too new. Maximum supported API version is 1.23"}"#;
            let _ = write!(
                &stream,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn a_daemon_that_refuses_the_api_version_is_named() {
    let host = format!("tcp://{}", ancient_daemon());
    let out = kovenant()
        .env("DOCKER_HOST", &host)
        .env("KOVENANT_TELEGRAF_IMAGE", "kovenant-it-unused:1")
        .arg("image")
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: docker: the Docker daemon at {host} refuses kovenant's API version: client \
             version 1.53 is too new. Maximum supported API version is 1.23\n\
             hint: kovenant speaks Docker API 1.24 to 1.53; upgrade the Docker daemon (or kovenant)\n"
        )
    );
}
