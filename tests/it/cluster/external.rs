//! `KOVENANT_INFLUXDB_URL`: an InfluxDB of the user's own (here the real influxd 2.7 on loopback,
//! reached directly, not through the cluster). No InfluxDB is installed, telegraf and Grafana
//! point there with the given token, preflight checks it, status reads it directly.
use std::time::Duration;

use serde_json::{Value, json};

use super::{HelmMajor, Session, both, influx_api, org_id, says};

/// A token with `actions` on the session's two buckets.
fn token(s: &Session, actions: &[&str]) -> String {
    let org = org_id(&s.influxdb);
    let mut permissions = Vec::new();
    for name in [s.bucket.clone(), format!("{}/pods", s.bucket)] {
        let path = format!(
            "/api/v2/buckets?orgID={org}&name={}",
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        let (_, v) = influx_api(&s.influxdb, "GET", &path, None);
        let id = v["buckets"][0]["id"].as_str().expect("bucket").to_owned();
        for a in actions {
            permissions.push(
                json!({"action": a, "resource": {"type": "buckets", "id": id, "orgID": org}}),
            );
        }
    }
    let body =
        json!({"orgID": org, "description": "kovenant test: external", "permissions": permissions});
    let (code, v) = influx_api(&s.influxdb, "POST", "/api/v2/authorizations", Some(&body));
    assert_eq!(code, 201, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

#[test]
fn an_influxdb_of_ones_own_is_used_and_none_is_installed() {
    let s = Session::new(HelmMajor::V4);
    let own = token(&s, &["read", "write"]);
    let url = format!("KOVENANT_INFLUXDB_URL={}", s.influxdb);

    // A token that cannot read: preflight says so, and nothing is installed.
    let writer = token(&s, &["write"]);
    s.write_env(&[&url, &format!("KOVENANT_INFLUXDB_TOKEN={writer}")]);
    let refused = s.install(&["--check-only"]);
    assert_eq!(refused.code, 1, "{}", both(&refused));
    says(&refused, &format!("√ InfluxDB answers: {}", s.influxdb));
    says(
        &refused,
        &format!(
            "× bucket {} can be read with KOVENANT_INFLUXDB_TOKEN: {}",
            s.bucket, s.influxdb
        ),
    );
    assert!(!both(&refused).contains(&writer));
    // A bucket that is not there: preflight says to make it.
    s.write_env(&[
        &url,
        &format!("KOVENANT_INFLUXDB_TOKEN={own}"),
        "DOCKER_INFLUXDB_INIT_BUCKET=nowhere",
    ]);
    let missing = s.install(&["--check-only"]);
    assert_eq!(missing.code, 1, "{}", both(&missing));
    says(
        &missing,
        "create it in that InfluxDB (influx bucket create -n nowhere -r <retention>) and give \
             the token read and write on it",
    );

    s.write_env(&[&url, &format!("KOVENANT_INFLUXDB_TOKEN={own}")]);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{}", both(&run));
    // No InfluxDB here, no operator Secret; telegraf's and Grafana's Secrets hold the token.
    assert!(!s.exists(&["statefulset", "-n", "kovenant", "kovenant-influxdb"]));
    assert!(!s.exists(&["service", "-n", "kovenant", "kovenant-influxdb"]));
    assert!(!s.exists(&["secret", "-n", "kovenant", "kovenant-influxdb"]));
    for secret in ["kovenant-influxdb-telegraf", "kovenant-influxdb-grafana"] {
        let v = s.get(&["secret", "-n", "kovenant", secret]);
        let b64 = v["data"]["token"].as_str().expect("token");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .expect("base64");
        assert_eq!(bytes, own.as_bytes(), "{secret}");
    }
    let cm = s.get(&["configmap", "-n", "kovenant", "kovenant-agent"]);
    let conf = cm["data"]["telegraf.conf"].as_str().expect("telegraf.conf");
    let urls: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("urls"))
        .collect();
    let want = format!("urls = [\"{}\"]", s.influxdb);
    assert_eq!(urls, [want.as_str(), want.as_str()], "{conf}");
    let grafana = s.get(&["configmap", "-n", "kovenant", "grafana"]);
    let sources = grafana["data"]["datasources.yaml"]
        .as_str()
        .expect("datasources");
    assert!(
        sources.contains(&format!("url: {}", s.influxdb)),
        "{sources}"
    );
    let everything = s.kubectl(&["get", "configmaps", "-A", "-o", "json"]);
    assert!(!everything.contains(&own), "the token is in a ConfigMap");

    // status asks that InfluxDB directly, with the token.
    s.write_points(Duration::from_secs(1));
    let env = s.env_arg();
    let status = s.run(&["status", "-o", "json", "--env-file", &env]);
    let v: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(v["influxdb"]["url"], s.influxdb.as_str(), "{v:#}");
    assert_eq!(v["influxdb"]["healthy"], true, "{v:#}");
    assert_eq!(v["influxdb"]["agents"].as_array().map(Vec::len), Some(2));
    let table = s.run(&["status", "--env-file", &env]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("influxdb")
                && l.contains(&format!("{}: agents writing", s.influxdb))),
        "{}",
        both(&table)
    );
}

/// Runs `cmd`, panicking with its output when it fails.
fn sh(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A real InfluxDB (1.8, from its Go module) serving HTTPS with a certificate of a private CA:
/// preflight checks it over TLS, trusting the CA only through `SSL_CERT_FILE`.
#[test]
fn an_influxdb_of_ones_own_over_tls_is_checked_against_ssl_cert_file() {
    let s = Session::new(HelmMajor::V4);
    let influxd = crate::support::tool("KOVENANT_TEST_INFLUXD18", "influxdb18");
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let openssl = |args: &[&str]| {
        sh(std::process::Command::new("openssl")
            .args(args)
            .current_dir(d))
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kovenant test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "req.pem",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let port = free_port();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n[meta]\n  dir = \"{p}/meta\"\n\
         [data]\n  dir = \"{p}/data\"\n  wal-dir = \"{p}/wal\"\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n\
         https-enabled = true\n  https-certificate = \"{p}/cert.pem\"\n  https-private-key = \"{p}/key.pem\"\n\
         log-enabled = false\n",
        free_port(),
        p = d.display()
    );
    std::fs::write(d.join("influxdb.conf"), conf).expect("conf");
    // Stopped when the test ends, however it ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        std::process::Command::new(influxd)
            .args(["run", "-config"])
            .arg(d.join("influxdb.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start influxd 1.8"),
    );
    let base = format!("https://127.0.0.1:{port}");
    // Its database and the pod-level retention policy: buckets "<bucket>" and "<bucket>/pods".
    let ca = d.join("ca.pem");
    let curl = |q: &str| {
        std::process::Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(&ca)
            .args([
                "-XPOST",
                &format!("{base}/query"),
                "--data-urlencode",
                &format!("q={q}"),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        curl(&format!("CREATE DATABASE \"{}\"", s.bucket))
    });
    assert!(up, "influxd 1.8 did not come up over TLS");
    assert!(curl(&format!(
        "CREATE RETENTION POLICY \"pods\" ON \"{}\" DURATION 1d REPLICATION 1",
        s.bucket
    )));
    s.write_env(&[
        &format!("KOVENANT_INFLUXDB_URL={base}"),
        "KOVENANT_INFLUXDB_TOKEN=any-token-influxdb-1.8-without-auth-ignores",
    ]);
    let env = s.env_arg();
    let check = |ca: Option<&std::path::Path>| {
        let mut cmd = s.kovenant(&[
            "install",
            "--check-only",
            "--skip-image",
            "--env-file",
            &env,
        ]);
        // Nothing else to trust: only the CA given (or none at all).
        let none = d.join("empty.pem");
        std::fs::write(&none, "").expect("empty");
        cmd.env("SSL_CERT_FILE", ca.unwrap_or(&none));
        crate::support::Run::from(cmd.output().expect("run kovenant"))
    };
    let untrusted = check(None);
    let trusted = check(Some(&ca));
    assert_eq!(untrusted.code, 1, "{}", both(&untrusted));
    says(&untrusted, &format!("× InfluxDB answers: {base}/ping: "));
    says(
        &untrusted,
        "trust its certificate authority: SSL_CERT_FILE=/path/to/ca.pem kovenant ...",
    );
    assert_eq!(trusted.code, 0, "{}", both(&trusted));
    says(&trusted, &format!("√ InfluxDB answers: {base}"));
    says(
        &trusted,
        &format!(
            "√ bucket {}/pods can be read with KOVENANT_INFLUXDB_TOKEN: {base}",
            s.bucket
        ),
    );
}
