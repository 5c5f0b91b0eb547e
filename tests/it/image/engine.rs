//! Building through bollard against the real daemon: the image runs, re-runs are skipped, changes retag.
use std::process::Command;
use std::time::Instant;

use kovenant::config::Config;
use kovenant::plan::image::reference_for_binary;

use super::{Scratch, docker, kovenant_image, text};
use crate::support::kovenant;

fn config_with_base(base: &str) -> Config {
    Config {
        telegraf_image: base.to_string(),
        ..Config::default()
    }
}

fn host_binary() -> Vec<u8> {
    std::fs::read(env!("CARGO_BIN_EXE_kovenant")).expect("read the kovenant binary")
}

fn image_id(reference: &str) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    assert!(
        out.status.success(),
        "inspect {reference}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

#[test]
// Timings are part of what this test reports (BENCHMARKS.md, section "image").
#[allow(clippy::print_stderr)]
fn builds_runs_and_skips_the_second_build() {
    let mut scratch = Scratch::new("build");
    let expected = reference_for_binary(&config_with_base(&scratch.base), &host_binary());
    scratch.remove_later(&expected);

    let started = Instant::now();
    let first = kovenant_image(&scratch.base, &[])
        .output()
        .expect("run kovenant");
    let first_time = started.elapsed();
    assert_eq!(
        first.status.code(),
        Some(0),
        "stderr: {}",
        text(&first.stderr)
    );
    assert_eq!(text(&first.stdout), format!("{expected}\n"));
    let stderr = text(&first.stderr);
    assert!(
        stderr.contains(&format!("• building {expected}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains("  Step 3/3 : COPY kovenant /usr/local/bin/kovenant\n"),
        "{stderr}"
    );
    let id = image_id(&expected);

    // The agent inside answers with the host binary's version.
    let host_version = kovenant()
        .arg("--version")
        .output()
        .expect("kovenant --version");
    let inside = docker(&["run", "--rm", &expected, "kovenant", "--version"]);
    assert_eq!(inside.status.code(), Some(0), "{}", text(&inside.stderr));
    assert_eq!(text(&inside.stdout), text(&host_version.stdout));
    assert_eq!(
        text(&inside.stdout),
        format!("kovenant {}\n", env!("CARGO_PKG_VERSION"))
    );
    // The stand-in base's telegraf is still what the image runs by default.
    let telegraf = docker(&["run", "--rm", &expected, "telegraf", "--version"]);
    assert_eq!(text(&telegraf.stdout), "telegraf stand-in --version\n");

    let started = Instant::now();
    let second = kovenant_image(&scratch.base, &[])
        .output()
        .expect("run kovenant");
    let second_time = started.elapsed();
    assert_eq!(
        second.status.code(),
        Some(0),
        "stderr: {}",
        text(&second.stderr)
    );
    assert_eq!(text(&second.stdout), format!("{expected}\n"));
    assert_eq!(
        text(&second.stderr),
        format!("√ image {expected} is already built; no build needed\n")
    );
    assert_eq!(
        image_id(&expected),
        id,
        "the second run must not build a new image"
    );
    eprintln!("image: first build {first_time:?}, cached re-run {second_time:?}");
}

#[test]
fn a_changed_binary_or_base_yields_a_new_tag() {
    let mut scratch = Scratch::new("changes");
    let original = reference_for_binary(&config_with_base(&scratch.base), &host_binary());

    // The same binary with bytes appended: still a runnable ELF, different content.
    let dir = tempfile::tempdir().expect("tempdir");
    let modified = dir.path().join("kovenant");
    let mut bytes = host_binary();
    bytes.extend_from_slice(b"\0kovenant-it: changed binary\0");
    std::fs::write(&modified, &bytes).expect("write modified binary");
    let expected = reference_for_binary(&config_with_base(&scratch.base), &bytes);
    assert_ne!(expected, original);
    scratch.remove_later(&expected);
    let path = modified.to_str().expect("utf-8 path");
    let out = kovenant_image(&scratch.base, &["--agent-binary", path])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{expected}\n"));
    let inside = docker(&["run", "--rm", &expected, "kovenant", "--version"]);
    assert_eq!(
        text(&inside.stdout),
        format!("kovenant {}\n", env!("CARGO_PKG_VERSION"))
    );

    // Another FROM: a new Dockerfile, a new tag.
    let other_base = scratch.alias("other");
    let expected = reference_for_binary(&config_with_base(&other_base), &host_binary());
    assert_ne!(expected, original);
    scratch.remove_later(&expected);
    let out = kovenant_image(&other_base, &[])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{expected}\n"));
    assert!(text(&out.stderr).contains(&format!("• building {expected}\n")));
}

/// Runs the same fixture through the agent on the host and inside the image: the same points.
#[test]
fn the_agent_inside_the_image_turns_a_fixture_into_line_protocol() {
    let mut scratch = Scratch::new("agent");
    let out = kovenant_image(&scratch.base, &[])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let reference = text(&out.stdout).trim().to_string();
    scratch.remove_later(&reference);

    let fixtures = crate::support::shared().join("fixtures/tetragon-events");
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("cluster.json");
    std::fs::write(&snapshot, r#"{"apiVersion":"v1","kind":"List","items":[]}"#).expect("snapshot");
    let agent_args = [
        "agent",
        "--no-kernel",
        "--source",
        "stdin",
        "--node-name",
        "it-node",
    ];
    let events =
        || std::fs::File::open(fixtures.join("tetragon-docs.jsonl")).expect("open the fixture");
    let snap_mount = format!("{}:/snap:ro", dir.path().display());
    let inside = Command::new("docker")
        .args([
            "-H",
            &super::docker_host(),
            "run",
            "--rm",
            "-i",
            "-v",
            &snap_mount,
            &reference,
        ])
        .arg("kovenant")
        .args(agent_args)
        .args(["--cluster-snapshot", "/snap/cluster.json"])
        .stdin(events())
        .output()
        .expect("run the agent in the image");
    assert_eq!(
        inside.status.code(),
        Some(0),
        "stderr: {}",
        text(&inside.stderr)
    );

    let host = kovenant()
        .args(agent_args)
        .arg("--cluster-snapshot")
        .arg(&snapshot)
        .stdin(events())
        .output()
        .expect("run the agent on the host");
    assert_eq!(
        host.status.code(),
        Some(0),
        "stderr: {}",
        text(&host.stderr)
    );
    let points = |out: &[u8]| -> Vec<String> {
        let mut lines: Vec<String> = text(out)
            .lines()
            // lag_ms is wall-clock time behind the events: the one field that differs by run.
            .map(|l| l.split(",lag_ms=").next().unwrap_or(l).to_string())
            .collect();
        // Points of one window may come in any order.
        lines.sort();
        lines
    };
    let inside_points = points(&inside.stdout);
    assert!(
        inside_points
            .iter()
            .any(|l| l.starts_with("kovenant_agent")),
        "{inside_points:?}"
    );
    assert!(inside_points.iter().all(|l| {
        ["tcp_flow", "pod_io", "pod_activity", "kovenant_agent"]
            .iter()
            .any(|m| l.starts_with(&format!("{m},")) || l.starts_with(&format!("{m} ")))
    }));
    assert_eq!(inside_points, points(&host.stdout));
}

/// An arm64 agent binary makes a linux/arm64 image on this (amd64) daemon: the binary is checked
/// against the nodes, not the daemon, and the build needs no emulation (the Dockerfile runs
/// nothing). The base is the stand-in root filesystem loaded as a linux/arm64 image; nothing here
/// can pull the real multi-platform telegraf, so which variant the build's `platform` picks from
/// a manifest list is not shown. The binary is an AArch64 ELF header, enough for an image that is
/// only inspected, never run.
#[test]
fn an_arm64_agent_binary_builds_a_linux_arm64_image_here() {
    let mut scratch = Scratch::new("arm64");
    // `docker import --platform` is ignored by a daemon without the containerd image store, so
    // the base is loaded from an image archive whose config says linux/arm64, as a pulled arm64
    // variant of telegraf would.
    let base = format!("kovenant-it-base-arm64:{}", std::process::id());
    let archive = arm64_archive(&super::rootfs(), &base);
    let mut child = Command::new("docker")
        .args(["-H", &super::docker_host(), "load"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run docker load");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &archive)
        .expect("send the image archive");
    let out = child.wait_with_output().expect("docker load");
    assert!(out.status.success(), "docker load: {}", text(&out.stderr));
    scratch.remove_later(&base);

    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("kovenant-aarch64");
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(16, 0);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.resize(4096, 0);
    std::fs::write(&binary, &elf).expect("write binary");
    let expected = reference_for_binary(&config_with_base(&base), &elf);
    scratch.remove_later(&expected);

    let path = binary.to_str().expect("utf-8 path");
    let out = kovenant_image(&base, &["--agent-binary", path])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{expected}\n"));
    let platform = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        &expected,
    ]);
    assert_eq!(
        text(&platform.stdout),
        "linux/arm64\n",
        "{}",
        text(&platform.stderr)
    );
}

/// A `docker save` archive of one image: `layer` as its only layer, its config saying linux/arm64.
fn arm64_archive(layer: &[u8], tag: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let layer_id = hex::encode(Sha256::digest(layer));
    let config = serde_json::json!({
        "architecture": "arm64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_id}")]},
        "history": [{"created_by": "kovenant-it: the stand-in root filesystem"}],
    })
    .to_string();
    let config_id = hex::encode(Sha256::digest(config.as_bytes()));
    let manifest = serde_json::json!([{
        "Config": format!("{config_id}.json"),
        "RepoTags": [tag],
        "Layers": [format!("{layer_id}/layer.tar")],
    }])
    .to_string();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        (format!("{config_id}.json"), config.as_bytes()),
        (format!("{layer_id}/layer.tar"), layer),
        ("manifest.json".to_owned(), manifest.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, bytes)
            .expect("add to the archive");
    }
    builder.into_inner().expect("finish the archive")
}

/// A Linux amd64 ELF header, 1.5 MB long, carrying `mark` where a kovenant carries its build
/// profile.
fn marked_elf(mark: &[u8]) -> Vec<u8> {
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(16, 0);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf.resize(4096, 0);
    elf.extend_from_slice(mark);
    elf.resize(1_500_000, 0);
    elf
}

/// A debug build of kovenant as the agent draws a warning naming it, its size and its cost when
/// its image is built, and the image is still built; a release build, or a binary without
/// kovenant's mark, draws none.
#[test]
fn a_debug_agent_binary_is_named_with_its_size_and_cost() {
    let mut scratch = Scratch::new("profile");
    let hint = "; build the agent with `cargo build --release` and pass --agent-binary \
                target/release/kovenant\n";
    // The tests' kovenant is a debug build under `cargo test`, a release one under `cargo test
    // --release` (CI), and knows which.
    let reference = reference_for_binary(&config_with_base(&scratch.base), &host_binary());
    scratch.remove_later(&reference);
    let out = kovenant_image(&scratch.base, &[])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let size = host_binary().len().div_ceil(1_000_000);
    let warning = format!(
        "warning: this kovenant ({}) is a debug build ({size} MB): the image carries all of \
         it, and its agent spends about 28 times the CPU of a release build on the same \
         events{hint}",
        env!("CARGO_BIN_EXE_kovenant")
    );
    assert_eq!(
        text(&out.stderr).contains(&warning),
        cfg!(debug_assertions),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stderr).contains("is a debug build"),
        cfg!(debug_assertions),
        "stderr: {}",
        text(&out.stderr)
    );
    // The warning goes with the build: an image already built says only that.
    let again = kovenant_image(&scratch.base, &[])
        .output()
        .expect("run kovenant");
    assert_eq!(
        text(&again.stderr),
        format!("√ image {reference} is already built; no build needed\n")
    );

    let dir = tempfile::tempdir().expect("tempdir");
    for (name, mark, warned) in [
        (
            "debug",
            b"\0kovenant-build-profile=debug\0".as_slice(),
            true,
        ),
        ("release", b"\0kovenant-build-profile=release\0", false),
        ("unmarked", b"", false),
    ] {
        let elf = marked_elf(mark);
        let path = dir.path().join(name);
        std::fs::write(&path, &elf).expect("write binary");
        scratch.remove_later(&reference_for_binary(
            &config_with_base(&scratch.base),
            &elf,
        ));
        let path = path.to_str().expect("utf-8 path");
        let out = kovenant_image(&scratch.base, &["--agent-binary", path])
            .output()
            .expect("run kovenant");
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let warning = format!("warning: --agent-binary {path} is a debug build (2 MB): ");
        assert_eq!(
            text(&out.stderr).contains(&warning),
            warned,
            "{name}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr).contains("is a debug build"),
            warned,
            "{name}"
        );
    }
}
