//! The telegraf-tetragon image against the real dockerd and registry that .ci/run starts, plus its pure parts.
mod engine;
mod errors;
mod install;
mod plan;
mod push;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::support::{kovenant, service};

/// The daemon the tests use.
fn docker_host() -> String {
    service("KOVENANT_TEST_DOCKER_HOST")
}

/// The docker CLI against the test daemon (setup and checks only; kovenant itself uses bollard).
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(docker_host())
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// `kovenant image ARGS` against the test daemon, with `base` as KOVENANT_TELEGRAF_IMAGE.
fn kovenant_image(base: &str, args: &[&str]) -> Command {
    let mut cmd = kovenant();
    cmd.env("DOCKER_HOST", docker_host())
        .env("KOVENANT_TELEGRAF_IMAGE", base)
        .arg("image")
        .args(args);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A base image for one test: the shared stand-in telegraf image under a name of its own, so each
/// test's content tags differ from every other test's and every earlier run's. Removed on drop,
/// with every image the test registers.
struct Scratch {
    pub base: String,
    images: Vec<String>,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        let base = format!("kovenant-it-base-{test}:{}", std::process::id());
        let out = docker(&["tag", shared_base(), &base]);
        assert!(out.status.success(), "docker tag: {}", text(&out.stderr));
        Scratch {
            base,
            images: Vec::new(),
        }
    }

    /// Another name for the base image (a changed `FROM`).
    fn alias(&mut self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.base.replace(':', "-")) + ":1";
        let out = docker(&["tag", shared_base(), &name]);
        assert!(out.status.success(), "docker tag: {}", text(&out.stderr));
        self.images.push(name.clone());
        name
    }

    fn remove_later(&mut self, image: &str) {
        self.images.push(image.to_string());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut args = vec!["rmi", "--force", self.base.as_str()];
        args.extend(self.images.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

/// The stand-in telegraf base image, made from a root filesystem built here: /bin/sh, a `telegraf`
/// script, and the shared libraries they and kovenant need. Named by the hash of that filesystem,
/// so later runs reuse it and nothing accumulates.
fn shared_base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let rootfs = rootfs();
        let hash = kovenant::plan::image::context_hash("", &rootfs);
        let name = format!("kovenant-it-telegraf:{}", &hash[..12]);
        if docker(&["image", "inspect", &name]).status.success() {
            return name;
        }
        let mut child = Command::new("docker")
            .args(["-H", &docker_host(), "import", "-c"])
            .arg("ENV PATH=/usr/local/bin:/usr/bin:/bin")
            .args(["-", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker import");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&rootfs)
            .expect("send the root filesystem");
        let out = child.wait_with_output().expect("docker import");
        assert!(out.status.success(), "docker import: {}", text(&out.stderr));
        name
    })
}

fn rootfs() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path.trim_start_matches('/'), bytes)
            .expect("add to rootfs");
    };
    let sh = std::fs::read("/bin/sh").expect("read /bin/sh");
    add("/bin/sh", 0o755, &sh);
    add(
        "/usr/bin/telegraf",
        0o755,
        b"#!/bin/sh\necho \"telegraf stand-in $*\"\n",
    );
    let mut libs = shared_libraries(Path::new("/bin/sh"));
    libs.extend(shared_libraries(Path::new(env!("CARGO_BIN_EXE_kovenant"))));
    libs.sort();
    libs.dedup();
    for lib in libs {
        let bytes = std::fs::read(&lib).unwrap_or_else(|e| panic!("read {lib}: {e}"));
        add(&lib, 0o755, &bytes);
    }
    builder.into_inner().expect("finish rootfs")
}

/// The absolute paths `ldd` lists for an executable.
fn shared_libraries(exe: &Path) -> Vec<String> {
    let out = Command::new("ldd").arg(exe).output().expect("run ldd");
    text(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// A plain HTTP GET on loopback: (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
