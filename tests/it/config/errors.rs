//! Bad configurations: each stops with exit code 2, names the place and key, and shows no secret.
use std::path::Path;

use kovenant::config::{self, ConfigError, EnvFile};
use kovenant::error::Error;

use super::env;

/// On line 1 of every bad file: it must never appear in a message.
pub const SECRET: &str = "Sup3r-S3cret-Value";

/// `bad.env` = the secret on line 1, then `text`; mode 0600.
fn bad_file(text: &str, environment: &[(&str, &str)]) -> ConfigError {
    let body = format!("GRAFANA_ADMIN_PASSWORD={SECRET}\n{text}");
    let file = EnvFile {
        path: Path::new("bad.env"),
        bytes: body.as_bytes(),
        mode: Some(0o600),
    };
    config::build(Some(file), &env(environment)).expect_err("the configuration is rejected")
}

/// Asserts the exact message and hint, exit code 2, and that the secret is not shown.
pub fn check(err: ConfigError, message: &str, hint: &str) {
    assert_eq!(err.message, message);
    assert_eq!(err.hint.as_deref(), Some(hint));
    assert!(
        !format!("{err:?}").contains(SECRET),
        "secret shown: {err:?}"
    );
    assert_eq!(Error::from(err).exit_code(), 2);
}

fn fix(key: &str, default: &str) -> String {
    format!("correct {key} on line 2 of bad.env, or delete the line to use the default `{default}`")
}

const PORT: &str = "expected an integer from 1 to 65535";
const RETENTION: &str = "expected a duration such as 7d, 12h or 1w, or 0 to keep data forever";
const LABEL: &str = "expected a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', \
                     starting and ending with a letter or digit";

#[test]
fn bad_ports() {
    let cases = [
        (
            "GRAFANA_PORT=0",
            "`0` is not a valid port (0 is reserved)",
            "3000",
        ),
        ("GRAFANA_PORT=abc", "`abc` is not a port number", "3000"),
        (
            "DOCKER_INFLUXDB_INIT_PORT=70000",
            "`70000` is out of the port range",
            "8086",
        ),
    ];
    for (line, problem, default) in cases {
        let key = line.split('=').next().unwrap_or_default();
        check(
            bad_file(line, &[]),
            &format!("bad.env line 2: {key}: {problem}; {PORT}"),
            &fix(key, default),
        );
    }
}

#[test]
fn bad_retention() {
    for (value, problem) in [("-1d", "is negative"), ("forever", "is not a duration")] {
        check(
            bad_file(&format!("DOCKER_INFLUXDB_INIT_RETENTION={value}"), &[]),
            &format!(
                "bad.env line 2: DOCKER_INFLUXDB_INIT_RETENTION: `{value}` {problem}; {RETENTION}"
            ),
            &fix("DOCKER_INFLUXDB_INIT_RETENTION", "7d"),
        );
    }
}

#[test]
fn bad_namespace_in_the_file_and_in_the_environment() {
    check(
        bad_file("KOVENANT_NAMESPACE=Monitoring", &[]),
        &format!(
            "bad.env line 2: KOVENANT_NAMESPACE: `Monitoring` has characters other than a-z, 0-9 \
             and '-'; {LABEL}"
        ),
        &fix("KOVENANT_NAMESPACE", "kovenant"),
    );
    check(
        bad_file("", &[("KOVENANT_TETRAGON_NAMESPACE", "-tetragon")]),
        &format!(
            "environment variable KOVENANT_TETRAGON_NAMESPACE: `-tetragon` does not start and end \
             with a letter or digit; {LABEL}"
        ),
        "correct the environment variable KOVENANT_TETRAGON_NAMESPACE, or unset it to use the \
         default `kube-system`",
    );
}

#[test]
fn malformed_url() {
    let form = "expected the base URL users open, with a DNS host name, e.g. \
                https://monitor.example.com or https://example.com/ops";
    for (value, problem) in [
        (
            "monitor.example.com",
            "is not a URL (relative URL without a base)",
        ),
        ("ftp://monitor.example.com", "has the scheme `ftp`"),
        // The ingress rule's host comes from the URL: the Ingress API takes DNS names only.
        (
            "https://10.0.0.1/",
            "has an IP address as its host, which an ingress rule cannot match",
        ),
        (
            "https://[::1]:8443/",
            "has an IP address as its host, which an ingress rule cannot match",
        ),
        (
            "https://mon_1.example.com/",
            "has the host `mon_1.example.com`, which is not a DNS name",
        ),
        (
            "https://ops@mon.example.com/",
            "holds a user name or password",
        ),
        ("https://mon.example.com/?a=1", "has a query or fragment"),
    ] {
        let err = bad_file(&format!("KOVENANT_EXTERNAL_URL={value}"), &[]);
        assert_eq!(
            err.message,
            format!("bad.env line 2: KOVENANT_EXTERNAL_URL: `{value}` {problem}; {form}")
        );
        assert_eq!(
            err.hint.as_deref(),
            Some("correct KOVENANT_EXTERNAL_URL on line 2 of bad.env, or delete the line")
        );
        assert_eq!(Error::from(err).exit_code(), 2);
    }
    // A password in the URL is not echoed back.
    let err = bad_file(
        "KOVENANT_EXTERNAL_URL=https://ops:s3cr3t@mon.example.com/",
        &[],
    );
    assert!(!err.message.contains("s3cr3t"), "{}", err.message);
    assert!(
        err.message.contains("holds a user name or password"),
        "{}",
        err.message
    );
}

#[test]
fn duplicate_key_names_both_lines() {
    check(
        bad_file("GRAFANA_PORT=3000\n# again\nGRAFANA_PORT=3001", &[]),
        "bad.env line 4: GRAFANA_PORT: set twice, on lines 2 and 4; expected each key once",
        "delete line 2 or line 4 of bad.env",
    );
}

#[test]
fn unterminated_quote_in_a_secret_line() {
    check(
        bad_file(
            &format!("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=\"{SECRET}\nA=1"),
            &[],
        ),
        "bad.env line 2: DOCKER_INFLUXDB_INIT_ADMIN_TOKEN: the value opens a quote (' or \") that \
         is never closed; expected the closing quote",
        "close the quote; note that a quote inside a comment after the value counts too",
    );
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let hint = "rename it to KOVENANT_NAMESPACE, or delete the line; example.env lists every key \
                kovenant reads";
    check(
        bad_file("KOVENANT_NAMESPAC=kovenant", &[]),
        "bad.env line 2: KOVENANT_NAMESPAC: unknown key; did you mean KOVENANT_NAMESPACE?",
        hint,
    );
    check(
        bad_file(&format!("GRAFANA_ADMIN_PASWORD={SECRET}"), &[]),
        "bad.env line 2: GRAFANA_ADMIN_PASWORD: unknown key; did you mean GRAFANA_ADMIN_PASSWORD?",
        "rename it to GRAFANA_ADMIN_PASSWORD, or delete the line; example.env lists every key \
         kovenant reads",
    );
    check(
        bad_file("GRAFANA_PROT=3000", &[]),
        "bad.env line 2: GRAFANA_PROT: unknown key; did you mean GRAFANA_PORT?",
        "rename it to GRAFANA_PORT, or delete the line; example.env lists every key kovenant reads",
    );
}

/// A CI job may carry KOVENANT_ variables of its own: the environment's unknown keys warn (with a
/// suggestion when one is near), the file's stop everything (above).
#[test]
fn unknown_keys_of_the_environment_only_warn() {
    let config = config::build(
        None,
        &env(&[("KOVENANT_FROBNICATE", "1"), ("KOVENANT_NAMESPACES", "x")]),
    )
    .expect("unknown environment variables are not fatal");
    assert_eq!(
        config.warnings,
        [
            "environment variable KOVENANT_FROBNICATE: not a kovenant key, ignored (example.env \
             lists every key kovenant reads; unset it to silence this)",
            "environment variable KOVENANT_NAMESPACES: not a kovenant key, ignored; did you mean \
             KOVENANT_NAMESPACE? (rename it, or unset it to silence this)",
        ]
    );
    assert_eq!(config.namespace, "kovenant");
}

/// A syntax error no longer hides the lines after it: every bad line, syntax or value, in one run.
#[test]
fn every_bad_line_is_reported_in_one_pass() {
    let err = bad_file(
        "GRAFANA_PORT=two words\nKOVENANT_NAMESPAC=x\nDOCKER_INFLUXDB_INIT_PORT=0\nNOEQUALS\n\
         GRAFANA_ADMIN_USER=a\nGRAFANA_ADMIN_USER=b\n",
        &[],
    );
    assert_eq!(
        err.message,
        "5 problems in the configuration:
  bad.env line 2: GRAFANA_PORT: the value cannot be read: it has whitespace outside quotes or an unknown backslash escape; expected a single word, or the value in quotes
    hint: quote the value, e.g. KEY=\"two words\" (inside '...' nothing is special)
  bad.env line 5: NOEQUALS: no '=' after the key; expected KEY=VALUE
    hint: write the line as KEY=VALUE
  bad.env line 7: GRAFANA_ADMIN_USER: set twice, on lines 6 and 7; expected each key once
    hint: delete line 6 or line 7 of bad.env
  bad.env line 3: KOVENANT_NAMESPAC: unknown key; did you mean KOVENANT_NAMESPACE?
    hint: rename it to KOVENANT_NAMESPACE, or delete the line; example.env lists every key kovenant reads
  bad.env line 4: DOCKER_INFLUXDB_INIT_PORT: `0` is not a valid port (0 is reserved); expected an integer from 1 to 65535
    hint: correct DOCKER_INFLUXDB_INIT_PORT on line 4 of bad.env, or delete the line to use the default `8086`"
    );
    assert_eq!(err.hint, None);
    assert!(!err.message.contains(SECRET));
}

#[test]
fn empty_required_value() {
    check(
        bad_file("KOVENANT_NAMESPACE=", &[]),
        &format!("bad.env line 2: KOVENANT_NAMESPACE: set but empty; {LABEL}"),
        &fix("KOVENANT_NAMESPACE", "kovenant"),
    );
}

#[test]
fn bad_boolean_and_bad_max_keys() {
    check(
        bad_file("KOVENANT_IMAGE_REGISTRY_INSECURE=maybe", &[]),
        "bad.env line 2: KOVENANT_IMAGE_REGISTRY_INSECURE: `maybe` is not a boolean; expected \
         true or false (also 1/0, yes/no)",
        &fix("KOVENANT_IMAGE_REGISTRY_INSECURE", "false"),
    );
    for (value, problem) in [("-5", "is not a positive integer"), ("0", "is zero")] {
        check(
            bad_file(&format!("KOVENANT_AGENT_MAX_KEYS={value}"), &[]),
            &format!(
                "bad.env line 2: KOVENANT_AGENT_MAX_KEYS: `{value}` {problem}; expected a positive \
                 integer, e.g. 50000"
            ),
            &fix("KOVENANT_AGENT_MAX_KEYS", "50000"),
        );
    }
}

#[test]
fn bad_pod_retention_top_peers_and_bucket() {
    let pod_form =
        "expected a duration of at least 1h, such as 1d or 12h, or 0 to keep data forever";
    for (value, problem) in [
        ("30m", "is shorter than an hour"),
        ("soon", "is not a duration"),
        ("-1d", "is negative"),
    ] {
        check(
            bad_file(&format!("KOVENANT_POD_RETENTION={value}"), &[]),
            &format!("bad.env line 2: KOVENANT_POD_RETENTION: `{value}` {problem}; {pod_form}"),
            &fix("KOVENANT_POD_RETENTION", "1d"),
        );
    }
    check(
        bad_file("KOVENANT_AGENT_TOP_PEERS=-1", &[]),
        "bad.env line 2: KOVENANT_AGENT_TOP_PEERS: `-1` is not a whole number; expected a whole \
         number, e.g. 20, or 0 for no limit",
        &fix("KOVENANT_AGENT_TOP_PEERS", "20"),
    );
    check(
        bad_file("DOCKER_INFLUXDB_INIT_BUCKET=team/a", &[]),
        "bad.env line 2: DOCKER_INFLUXDB_INIT_BUCKET: `team/a` contains '/'; expected a single \
         word with no spaces, control characters or '/'",
        &fix("DOCKER_INFLUXDB_INIT_BUCKET", "tetragon"),
    );
}

#[test]
fn bad_secrets_are_described_not_shown() {
    check(
        bad_file("DOCKER_INFLUXDB_INIT_PASSWORD=short", &[]),
        "bad.env line 2: DOCKER_INFLUXDB_INIT_PASSWORD: the value is shorter than 8 characters, \
         which InfluxDB refuses; expected at least 8 characters, or empty to have one generated",
        "correct DOCKER_INFLUXDB_INIT_PASSWORD on line 2 of bad.env, or delete the line",
    );
    let err = bad_file("", &[("GRAFANA_ADMIN_PASSWORD", "admin")]);
    assert_eq!(
        err.message,
        "environment variable GRAFANA_ADMIN_PASSWORD: the value is the well-known default \
         password; expected a password of your own, or empty to have one generated"
    );
}

#[test]
fn bad_namespace_flag() {
    let global = kovenant::cli::GlobalArgs {
        kubeconfig: None,
        context: None,
        namespace: Some("Prod".into()),
        verbose: false,
        quiet: false,
        no_color: false,
        assets: None,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ok.env");
    std::fs::write(&file, "KOVENANT_NAMESPACE=monitoring\n").expect("write");
    let err = config::resolve(&global, Some(&file)).expect_err("bad --namespace");
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        format!("--namespace: `Prod` has characters other than a-z, 0-9 and '-'; {LABEL}")
    );
    assert_eq!(
        err.hint().as_deref(),
        Some("pass a valid value to --namespace, or leave it out")
    );
    let global = kovenant::cli::GlobalArgs {
        namespace: Some("prod".into()),
        ..global
    };
    let c = config::resolve(&global, Some(&file)).expect("valid");
    assert_eq!(c.namespace, "prod");
}

#[test]
fn bad_influxdb_url_and_a_url_without_its_token() {
    let form = "expected the base URL of an InfluxDB, http(s)://host[:port] with no path, e.g. \
                https://eu-central-1-1.aws.cloud2.influxdata.com or http://influxdb.monitoring:8086";
    for (value, problem) in [
        ("influx:8086", "has the scheme `influx`"),
        ("ftp://influx", "has the scheme `ftp`"),
        ("https://influx.example.com/v2", "has the path `/v2`"),
        (
            "https://influx.example.com/?org=a",
            "has a query or fragment",
        ),
    ] {
        check(
            bad_file(
                &format!("KOVENANT_INFLUXDB_URL={value}\nKOVENANT_INFLUXDB_TOKEN=t"),
                &[],
            ),
            &format!("bad.env line 2: KOVENANT_INFLUXDB_URL: `{value}` {problem}; {form}"),
            "correct KOVENANT_INFLUXDB_URL on line 2 of bad.env, or delete the line",
        );
    }
    // A password in the URL is a secret: the value is not shown.
    let err = bad_file(
        &format!("KOVENANT_INFLUXDB_URL=https://u:{SECRET}@influx.example.com"),
        &[],
    );
    assert!(!err.message.contains(SECRET), "{}", err.message);
    assert!(
        err.message.starts_with(
            "bad.env line 2: KOVENANT_INFLUXDB_URL: the value holds a user name or password (the token \
             goes in KOVENANT_INFLUXDB_TOKEN)"
        ),
        "{}",
        err.message
    );
    check(
        bad_file("KOVENANT_INFLUXDB_URL=https://influx.example.com", &[]),
        "bad.env line 2: KOVENANT_INFLUXDB_URL: names an InfluxDB of your own, but \
         KOVENANT_INFLUXDB_TOKEN is empty; expected the token telegraf writes and Grafana reads \
         with",
        "set KOVENANT_INFLUXDB_TOKEN to a token with write and read rights on the bucket and on \
         <bucket>/pods, or empty KOVENANT_INFLUXDB_URL to install InfluxDB in the cluster",
    );
}
