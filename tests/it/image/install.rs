//! `kovenant install` without --skip-image: the real daemon builds, the real registry receives,
//! and the agent's DaemonSet on the real control plane runs that image.
use kovenant::config::Config;
use kovenant::plan::image::{PULL_POLICY, reference_for_binary};

use super::{Scratch, docker, docker_host, http_get, text};
use crate::cluster::{HelmMajor, Session};
use crate::support::Run;
use crate::support::service;

#[test]
fn install_pushes_the_image_and_the_pipeline_runs_that_reference() {
    let registry = service("KOVENANT_TEST_REGISTRY");
    let mut scratch = Scratch::new("install");
    let config = Config {
        telegraf_image: scratch.base.clone(),
        image_registry: Some(registry.clone()),
        ..Config::default()
    };
    let binary = std::fs::read(env!("CARGO_BIN_EXE_kovenant")).expect("read kovenant");
    let expected = reference_for_binary(&config, &binary);
    scratch.remove_later(&expected);
    let tag = expected.rsplit(':').next().expect("a tag").to_string();
    assert_eq!(
        expected,
        format!("{registry}/telegraf-tetragon:{tag}"),
        "pushed references name the registry"
    );

    let s = Session::new(HelmMajor::V4);
    s.write_env(&[
        &format!("KOVENANT_TELEGRAF_IMAGE={}", scratch.base),
        &format!("KOVENANT_IMAGE_REGISTRY={registry}"),
    ]);
    let env = s.env_arg();
    let run_with_docker = |args: &[&str]| {
        Run::from(
            s.kovenant(args)
                .env("DOCKER_HOST", docker_host())
                .output()
                .expect("run kovenant"),
        )
    };

    // `--only image` builds and pushes, and touches neither helm releases nor the cluster.
    let image_only = run_with_docker(&["install", "--yes", "--only", "image", "--env-file", &env]);
    assert_eq!(image_only.code, 0, "{image_only}");
    assert!(
        image_only
            .stderr
            .contains(&format!("  image   {expected} built, pushed (sha256:")),
        "{image_only}"
    );
    assert_eq!(s.releases(), []);
    assert!(!s.exists(&["namespace", "kovenant"]));

    // The whole install finds the image built, pushes it again (a no-op for the registry) and
    // deploys the pipeline with it.
    let run = run_with_docker(&["install", "--yes", "--env-file", &env]);
    assert_eq!(run.code, 0, "{run}");
    // Under `cargo test` the tests' kovenant is a debug build, and preflight says so before
    // anything is built; under `cargo test --release` (CI) it is not, and says nothing of it.
    let warned = run.stderr.contains(&format!(
        "‼ the agent binary is a release build: this kovenant ({}) is a debug build (",
        env!("CARGO_BIN_EXE_kovenant")
    )) && run.stderr.contains(
        "    hint: build the agent with `cargo build --release` and pass --agent-binary \
         target/release/kovenant\n",
    );
    assert_eq!(warned, cfg!(debug_assertions), "{run}");
    assert_eq!(
        run.stderr.contains("is a debug build"),
        cfg!(debug_assertions),
        "{run}"
    );
    let host = docker_host();
    assert!(
        run.stderr
            .contains(&format!("√ Docker is reachable: {host} (API 1.")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "√ the image has a way into the cluster: pushed to {registry}\n"
        )),
        "{run}"
    );
    // The plan is on stdout (README: the plan goes to stdout, for a real install too).
    assert!(
        run.stdout.contains(&format!(
            "     ensure  image {expected} (build if missing, push)\n"
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("√ pushing {expected} done (sha256:")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "image {expected} is already built; no build needed"
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "  image   {expected} already built, pushed (sha256:"
        )),
        "{run}"
    );

    // The chart runs exactly the pushed reference, with the pull policy that suits a content tag.
    let ds = s.get(&["daemonset", "-n", "kovenant", "kovenant-agent"]);
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!containers.is_empty(), "{ds}");
    for c in &containers {
        assert_eq!(c["image"].as_str(), Some(expected.as_str()), "{c}");
        assert_eq!(c["imagePullPolicy"].as_str(), Some(PULL_POLICY), "{c}");
    }
    // The daemon has the image, and the registry lists its tag.
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}}", &expected]);
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    let (status, tags) = http_get(&registry, "/v2/telegraf-tetragon/tags/list");
    assert_eq!(status, 200, "{tags}");
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("tags JSON");
    assert!(
        tags["tags"]
            .as_array()
            .expect("tags")
            .contains(&tag.as_str().into()),
        "{tags}"
    );

    // Nothing changed: no build, no push, no upgrade.
    let revisions = s.releases();
    let again = run_with_docker(&["install", "--yes", "--env-file", &env]);
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stderr.contains("nothing to do"), "{again}");
    assert!(!again.stderr.contains("pushing"), "{again}");
    assert_eq!(s.releases(), revisions);

    // `render` and `install --dry-run` name the same image without Docker.
    let out = s.home.path().join("rendered");
    let mut render = s.kovenant(&["render", "--out", &out.to_string_lossy()]);
    let rendered = render
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run render");
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    let chart_values = std::fs::read_to_string(out.join("charts/kovenant-pipeline/values.yaml"))
        .expect("rendered values");
    assert!(
        chart_values.contains(&format!("  image: \"{expected}\"\n")),
        "{chart_values}"
    );
}
