//! Getting the image to the cluster: push to the real registry (with helper credentials) or to one that refuses, kind load.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use super::{Scratch, http_get, kovenant_image, text};
use crate::support::service;

#[test]
fn pushes_to_the_registry_which_then_lists_the_tag() {
    let registry = service("KOVENANT_TEST_REGISTRY");
    let mut scratch = Scratch::new("push");
    let out = kovenant_image(&scratch.base, &["--push"])
        .env("KOVENANT_IMAGE_REGISTRY", &registry)
        .output()
        .expect("run kovenant");
    let reference = text(&out.stdout).trim().to_string();
    scratch.remove_later(&reference);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let prefix = format!(
        "{registry}/telegraf-tetragon:{}-",
        env!("CARGO_PKG_VERSION")
    );
    assert!(reference.starts_with(&prefix), "{reference}");
    let tag = reference.rsplit(':').next().expect("tag");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("• pushing {reference}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("√ pushing {reference} done (sha256:")),
        "{stderr}"
    );

    let (status, catalog) = http_get(&registry, "/v2/_catalog");
    assert_eq!(status, 200);
    let catalog: serde_json::Value = serde_json::from_str(&catalog).expect("catalog JSON");
    let repositories = catalog["repositories"].as_array().expect("repositories");
    assert!(
        repositories.contains(&"telegraf-tetragon".into()),
        "{catalog}"
    );
    let (status, tags) = http_get(&registry, "/v2/telegraf-tetragon/tags/list");
    assert_eq!(status, 200);
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("tags JSON");
    assert_eq!(tags["name"], "telegraf-tetragon");
    assert!(
        tags["tags"].as_array().expect("tags").contains(&tag.into()),
        "{tags}"
    );
}

/// A registry on loopback that answers every request with `status`.
fn refusing_registry(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = r#"{"errors":[{"code":"DENIED","message":"kovenant-it refuses"}]}"#;
            let _ = write!(
                &stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Docker-Distribution-Api-Version: registry/2.0\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn assert_push_refused(status: &'static str, cause: &str) {
    let registry = refusing_registry(status);
    let mut scratch = Scratch::new(&format!("refused{}", &status[..3]));
    let out = kovenant_image(&scratch.base, &["--push"])
        .env("KOVENANT_IMAGE_REGISTRY", &registry)
        .output()
        .expect("run kovenant");
    let stderr = text(&out.stderr);
    let built = stderr
        .lines()
        .find_map(|l| l.strip_prefix("• building "))
        .expect("the build line")
        .to_string();
    scratch.remove_later(&built);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "");
    let expected =
        format!("error: image push: registry {registry} refused the push of {built}: {cause}");
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in:\n{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
}

// A 403 fails at once; dockerd retries 5xx answers with back-off for about a minute, which would
// only test dockerd's patience (the message for them was checked by hand: "received unexpected
// HTTP status: 500 Internal Server Error").
#[test]
fn a_registry_that_answers_403_refuses_the_push_clearly() {
    assert_push_refused("403 Forbidden", "denied: kovenant-it refuses");
}

/// The registry's credentials come from the helper the docker config names, and never show.
#[test]
fn credentials_come_from_the_docker_config_helper_and_stay_secret() {
    use std::os::unix::fs::PermissionsExt;
    let registry = service("KOVENANT_TEST_REGISTRY");
    let mut scratch = Scratch::new("creds");
    let dir = tempfile::tempdir().expect("tempdir");
    let asked = dir.path().join("asked");
    let helper = dir.path().join("docker-credential-kovit");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '%s' \"$server\" > '{}'\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"it-user\",\"Secret\":\"it-secret-123\"}}' \"$server\"\n",
            asked.display()
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{registry}":"kovit"}}}}"#),
    )
    .expect("write docker config");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = kovenant_image(&scratch.base, &["-v", "--push"])
        .env("KOVENANT_IMAGE_REGISTRY", &registry)
        .env("DOCKER_CONFIG", dir.path())
        .env("PATH", path)
        .output()
        .expect("run kovenant");
    scratch.remove_later(text(&out.stdout).trim());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&asked).expect("the helper was asked"),
        registry
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !text(stream).contains("it-secret-123"),
            "the secret was printed"
        );
    }
}

/// `--context kind-NAME` loads the image with `kind load docker-image`, pointed at the same daemon.
#[test]
fn a_kind_context_loads_the_image_with_kind() {
    use std::os::unix::fs::PermissionsExt;
    let mut scratch = Scratch::new("kind");
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("kind-called");
    let kind = dir.path().join("kind");
    std::fs::write(
        &kind,
        format!(
            "#!/bin/sh\necho \"$DOCKER_HOST $*\" > '{}'\n",
            record.display()
        ),
    )
    .expect("write fake kind");
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = kovenant_image(&scratch.base, &["--context", "kind-dev"])
        .env("PATH", path)
        .output()
        .expect("run kovenant");
    let reference = text(&out.stdout).trim().to_string();
    scratch.remove_later(&reference);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&record).expect("kind was run"),
        format!(
            "{} load docker-image {reference} --name dev\n",
            super::docker_host()
        )
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.ends_with(&format!(
            "√ loading {reference} into the kind cluster done\n"
        )),
        "{stderr}"
    );
}

#[test]
fn another_context_without_a_registry_asks_for_one() {
    let out = kovenant_image("kovenant-it-unused:1", &["--context", "prod-eu"])
        .output()
        .expect("run kovenant");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: the telegraf-tetragon image has no way into cluster context \"prod-eu\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "\nhint: set KOVENANT_IMAGE_REGISTRY and pass --push, or drop --context to build the image only"
        ),
        "{stderr}"
    );
}
