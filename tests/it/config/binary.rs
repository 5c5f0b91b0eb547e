//! Bad configurations through the binary: `kovenant render --env-file BAD --out DIR` exits 2,
//! names the line and key on stderr, shows no secret, and writes nothing.
use std::path::Path;
use std::process::Output;

use super::errors::SECRET;
use crate::support::kovenant;

/// Runs `kovenant render` in `dir` with `args` and extra environment variables.
fn render(dir: &Path, args: &[&str], environment: &[(&str, &str)]) -> Output {
    let mut cmd = kovenant();
    cmd.current_dir(dir).arg("render").args(args);
    cmd.arg("--out").arg(dir.join("out"));
    cmd.envs(environment.iter().copied());
    cmd.output().expect("run kovenant")
}

/// Asserts a configuration error: exit 2, `needle` on stderr, no secret, nothing written.
fn assert_config_error(dir: &Path, out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "stderr:\n{stderr}");
    assert!(
        stderr.contains(needle),
        "{needle:?} not in stderr:\n{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "no hint in stderr:\n{stderr}");
    assert!(!stderr.contains(SECRET), "secret shown:\n{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        !dir.join("out").exists(),
        "render wrote output despite the error"
    );
}

#[test]
fn bad_files_exit_2_naming_line_and_key() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"GRAFANA_PORT=0",
            "line 2: GRAFANA_PORT: `0` is not a valid port",
        ),
        (
            b"GRAFANA_PORT=70000",
            "line 2: GRAFANA_PORT: `70000` is out of the port range",
        ),
        (
            b"GRAFANA_PORT=abc",
            "line 2: GRAFANA_PORT: `abc` is not a port number",
        ),
        (
            b"DOCKER_INFLUXDB_INIT_RETENTION=-7d",
            "line 2: DOCKER_INFLUXDB_INIT_RETENTION: `-7d` is negative",
        ),
        (
            b"DOCKER_INFLUXDB_INIT_RETENTION=a-week",
            "line 2: DOCKER_INFLUXDB_INIT_RETENTION: `a-week` is not a duration",
        ),
        (
            b"KOVENANT_NAMESPACE=My_NS",
            "line 2: KOVENANT_NAMESPACE: `My_NS` has characters other",
        ),
        (
            b"KOVENANT_EXTERNAL_URL=http//broken",
            "line 2: KOVENANT_EXTERNAL_URL: `http//broken` is not a URL",
        ),
        (
            b"GRAFANA_PORT=1\nGRAFANA_PORT=2",
            "line 3: GRAFANA_PORT: set twice, on lines 2 and 3",
        ),
        (
            b"DOCKER_INFLUXDB_INIT_PASSWORD='Sup3r-S3cret-Value\n",
            "line 2: DOCKER_INFLUXDB_INIT_PASSWORD: the value opens a quote",
        ),
        (
            b"KOVENANT_NAMESPAC=x",
            "line 2: KOVENANT_NAMESPAC: unknown key; did you mean KOVENANT_NAMESPACE?",
        ),
        (
            b"GRAFANA_PROT=3000",
            "line 2: GRAFANA_PROT: unknown key; did you mean GRAFANA_PORT?",
        ),
        (
            b"KOVENANT_NAMESPACE=",
            "line 2: KOVENANT_NAMESPACE: set but empty",
        ),
        (
            b"KOVENANT_CLUSTER_NAME=caf\xE9",
            "line 2: KOVENANT_CLUSTER_NAME: the value is not valid UTF-8",
        ),
        (
            b"KOVENANT_IMAGE_REGISTRY_INSECURE=maybe",
            "line 2: KOVENANT_IMAGE_REGISTRY_INSECURE: `maybe` is not a boolean",
        ),
        (
            b"KOVENANT_AGENT_MAX_KEYS=lots",
            "line 2: KOVENANT_AGENT_MAX_KEYS: `lots` is not a positive integer",
        ),
        (
            b"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=a b",
            "line 2: DOCKER_INFLUXDB_INIT_ADMIN_TOKEN: the value cannot be read",
        ),
    ];
    for (text, needle) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.env");
        let mut body = format!("GRAFANA_ADMIN_PASSWORD={SECRET}\n").into_bytes();
        body.extend_from_slice(text);
        std::fs::write(&file, body).expect("write bad.env");
        let out = render(dir.path(), &["--env-file", "bad.env"], &[]);
        assert_config_error(dir.path(), &out, &format!("bad.env {needle}"));
    }
}

#[test]
fn the_exact_rendering_of_one_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "\n# ports\nGRAFANA_PORT=70000\n").expect("write");
    let out = render(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: .env line 3: GRAFANA_PORT: `70000` is out of the port range; expected an integer \
         from 1 to 65535\nhint: correct GRAFANA_PORT on line 3 of .env, or delete the line to use \
         the default `3000`\n"
    );
}

#[test]
fn environment_missing_and_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(dir.path(), &[], &[("KOVENANT_NAMESPACE", "Bad_NS")]);
    assert_config_error(
        dir.path(),
        &out,
        "environment variable KOVENANT_NAMESPACE: `Bad_NS` has characters other",
    );
    let out = render(dir.path(), &["--env-file", "nope.env"], &[]);
    assert_config_error(
        dir.path(),
        &out,
        "nope.env: cannot read the configuration file: no such file",
    );
    // Tests run as root, who reads any file whatever its mode: a directory stands in for an
    // unreadable file.
    std::fs::create_dir(dir.path().join("dir.env")).expect("mkdir");
    let out = render(dir.path(), &["--env-file", "dir.env"], &[]);
    assert_config_error(
        dir.path(),
        &out,
        "dir.env: cannot read the configuration file: it is a directory",
    );
    let out = render(dir.path(), &["-n", "Prod"], &[]);
    assert_config_error(dir.path(), &out, "--namespace: `Prod` has characters other");
}

#[test]
fn environment_value_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = kovenant()
        .current_dir(dir.path())
        .args(["render", "--out", "out"])
        .env(
            "KOVENANT_CLUSTER_NAME",
            std::ffi::OsStr::from_bytes(b"caf\xE9"),
        )
        .output()
        .expect("run kovenant");
    assert_config_error(
        dir.path(),
        &out,
        "environment variable KOVENANT_CLUSTER_NAME: the value is not valid UTF-8",
    );
}

#[test]
fn world_readable_secret_is_only_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(".env");
    std::fs::write(&file, format!("GRAFANA_ADMIN_PASSWORD={SECRET}\n")).expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = render(dir.path(), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains(
            "warning: .env holds a secret (GRAFANA_ADMIN_PASSWORD) and is readable by every user \
             of this machine; run `chmod 600 .env`\n"
        ),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains(SECRET), "secret shown:\n{stderr}");
}
