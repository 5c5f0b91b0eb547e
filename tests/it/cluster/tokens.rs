//! InfluxDB tokens scoped to their use, against the real InfluxDB 2.7 that kwok's port-forward
//! puts behind kovenant-influxdb-0: what each token may do, that a re-install keeps them, that
//! `--rotate-credentials` replaces them (the old ones refused, exactly telegraf's and Grafana's
//! pods restarted), that a new password in `.env` reaches InfluxDB, and the InfluxDB pod's
//! postStart hook run with the real influx CLI.
use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use super::{HelmMajor, Session, both, influx_api, says};
use crate::support::{service, tool};

const TELEGRAF: &str = "kovenant-influxdb-telegraf";
const GRAFANA: &str = "kovenant-influxdb-grafana";

/// A Secret's `token` and its generation annotation.
fn token(s: &Session, secret: &str) -> (String, String) {
    let v = s.get(&["secret", "-n", "kovenant", secret]);
    let b64 = v["data"]["token"].as_str().expect("token key");
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    let generation = v["metadata"]["annotations"]["kovenant.io/token-generation"]
        .as_str()
        .expect("generation")
        .to_owned();
    (String::from_utf8(bytes).expect("UTF-8"), generation)
}

/// The HTTP status InfluxDB answers a line-protocol write into `bucket` with `token`.
fn write(s: &Session, token: &str, bucket: &str) -> u16 {
    let url = format!(
        "{}/api/v2/write?org=kovenant&bucket={}&precision=s",
        s.influxdb,
        url::form_urlencoded::byte_serialize(bucket.as_bytes()).collect::<String>()
    );
    match ureq::post(&url)
        .header("Authorization", &format!("Token {token}"))
        .send("kovenant_agent,node=kwok-node-0 lines=1i".as_bytes())
    {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(c)) => c,
        Err(e) => panic!("write: {e}"),
    }
}

/// The HTTP status of an InfluxQL read of the session's bucket with `token`, and whether the
/// answer holds an error.
fn read(s: &Session, token: &str) -> (u16, bool) {
    let url = format!("{}/query", s.influxdb);
    match ureq::get(&url)
        .query("db", &s.bucket)
        .query("q", "SELECT * FROM \"kovenant_agent\" LIMIT 1")
        .header("Authorization", &format!("Token {token}"))
        .call()
    {
        Ok(mut r) => {
            let body = r.body_mut().read_to_string().unwrap_or_default();
            (r.status().as_u16(), body.contains("\"error\""))
        }
        Err(ureq::Error::StatusCode(c)) => (c, true),
        Err(e) => panic!("query: {e}"),
    }
}

/// Pod name -> UID, by workload name label.
fn pod_uids(s: &Session) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in s.stack_pods() {
        let name = p["metadata"]["labels"]["app.kubernetes.io/name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let uid = p["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        out.entry(name).or_default().push(uid);
    }
    for uids in out.values_mut() {
        uids.sort();
    }
    out
}

fn signin(s: &Session, password: &str) -> u16 {
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("admin:{password}"),
    );
    match ureq::post(&format!("{}/api/v2/signin", s.influxdb))
        .header("Authorization", &format!("Basic {basic}"))
        .send(&[] as &[u8])
    {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(c)) => c,
        Err(e) => panic!("signin: {e}"),
    }
}

#[test]
fn scoped_tokens_do_only_their_job_survive_a_reinstall_and_rotate() {
    let s = Session::new(HelmMajor::V4);
    let first = s.install(&[]);
    assert_eq!(first.code, 0, "{}", both(&first));
    let pods = format!("{}/pods", s.bucket);
    let (telegraf, g1) = token(&s, TELEGRAF);
    let (grafana, g2) = token(&s, GRAFANA);
    assert_eq!((g1.as_str(), g2.as_str()), ("1", "1"));
    let operator = super::operator_token();
    assert!(telegraf != operator && grafana != operator && telegraf != grafana);

    // telegraf's token writes both buckets and reads nothing; Grafana's reads and writes nothing;
    // neither reaches another bucket.
    assert_eq!(write(&s, &telegraf, &s.bucket), 204);
    assert_eq!(write(&s, &telegraf, &pods), 204);
    let other = format!("{}-other", s.bucket);
    super::create_bucket(&s.influxdb, &other);
    assert_ne!(write(&s, &telegraf, &other), 204);
    assert_ne!(read(&s, &telegraf), (200, false));
    assert_eq!(read(&s, &grafana), (200, false));
    assert_ne!(write(&s, &grafana, &s.bucket), 204);
    // Exactly the rights the tokens were made with, nothing more.
    let (_, list) = influx_api(&s.influxdb, "GET", "/api/v2/authorizations", None);
    let rights = |token: &str| -> Vec<String> {
        let auth = list["authorizations"]
            .as_array()
            .expect("list")
            .iter()
            .find(|a| a["token"] == token)
            .expect("the token is InfluxDB's");
        let mut r: Vec<String> = auth["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["action"].as_str().unwrap_or_default(),
                    p["resource"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        rights(&telegraf),
        [format!("write {}", s.bucket), format!("write {pods}")]
    );
    assert_eq!(
        rights(&grafana),
        [format!("read {}", s.bucket), format!("read {pods}")]
    );

    // A re-install keeps them: nothing to do.
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "{}", both(&again));
    says(&again, "nothing to do");
    assert_eq!(token(&s, TELEGRAF), (telegraf.clone(), "1".into()));

    // Rotation: new tokens, the old ones refused, telegraf's and Grafana's pods (and only they)
    // restarted.
    let before = pod_uids(&s);
    let dry = s.install(&["--rotate-credentials", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", both(&dry));
    assert!(
        dry.stdout.contains(
            "     rotate  InfluxDB token of telegraf (write on the buckets) in Secret \
             kovenant/kovenant-influxdb-telegraf: --rotate-credentials"
        ),
        "{}",
        both(&dry)
    );
    assert_eq!(token(&s, TELEGRAF).0, telegraf, "a dry run rotated");
    let rotated = s.install(&["--rotate-credentials"]);
    assert_eq!(rotated.code, 0, "{}", both(&rotated));
    let (telegraf2, g1) = token(&s, TELEGRAF);
    let (grafana2, g2) = token(&s, GRAFANA);
    assert_eq!((g1.as_str(), g2.as_str()), ("2", "2"));
    assert!(telegraf2 != telegraf && grafana2 != grafana);
    assert_eq!(
        write(&s, &telegraf, &s.bucket),
        401,
        "the old token still writes"
    );
    assert_eq!(read(&s, &grafana).0, 401, "the old token still reads");
    assert_eq!(write(&s, &telegraf2, &s.bucket), 204);
    assert_eq!(read(&s, &grafana2), (200, false));
    // One authorization per use is left in InfluxDB: the new one.
    let (_, list) = influx_api(&s.influxdb, "GET", "/api/v2/authorizations", None);
    let mut ours: Vec<String> = list["authorizations"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|a| {
            a["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("kovenant ") && d.ends_with(&format!(" {pods}")))
        })
        .map(|a| a["token"].as_str().unwrap_or_default().to_owned())
        .collect();
    ours.sort();
    let mut want = vec![telegraf2.clone(), grafana2.clone()];
    want.sort();
    assert_eq!(ours, want);
    let after = pod_uids(&s);
    for (workload, uids) in &before {
        let restarted = after.get(workload) != Some(uids);
        let should = matches!(workload.as_str(), "kovenant-agent" | "grafana");
        assert_eq!(
            restarted,
            should,
            "{workload}: {uids:?} -> {:?}",
            after.get(workload)
        );
    }

    // `--only grafana`: only Grafana's token turns; telegraf's, whose pods this install does not
    // touch, stays as it is, and keeps working.
    let partial = s.install(&["--only", "grafana", "--rotate-credentials"]);
    assert_eq!(partial.code, 0, "{}", both(&partial));
    assert_eq!(token(&s, TELEGRAF), (telegraf2.clone(), "2".into()));
    let (grafana3, g2) = token(&s, GRAFANA);
    assert_eq!(g2, "3");
    assert_ne!(grafana3, grafana2);
    assert_eq!(write(&s, &telegraf2, &s.bucket), 204);
    assert_eq!(read(&s, &grafana2).0, 401);
    assert_eq!(read(&s, &grafana3), (200, false));

    // A new InfluxDB password in .env reaches InfluxDB (which took its first only at setup).
    let old = service("KOVENANT_TEST_INFLUXDB2_PASSWORD");
    let new = "a-new-password-for-influxdb";
    s.write_env(&[&format!("DOCKER_INFLUXDB_INIT_PASSWORD={new}")]);
    let changed = s.install(&[]);
    assert_eq!(changed.code, 0, "{}", both(&changed));
    says(&changed, "InfluxDB password of admin updated");
    assert_eq!(signin(&s, new), 204);
    assert_eq!(signin(&s, &old), 401);
    // A new operator token cannot be taken: install stops before it changes anything.
    s.write_env(&[
        &format!("DOCKER_INFLUXDB_INIT_PASSWORD={new}"),
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=another-operator-token",
    ]);
    let refused = s.install(&[]);
    assert_eq!(refused.code, 2, "{}", both(&refused));
    says(
        &refused,
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN is not the operator token the running InfluxDB was \
             set up with",
    );
    assert!(!both(&refused).contains("another-operator-token"));
    // A new Grafana admin password reaches the Secret; a running Grafana keeps its own (no
    // Grafana runs here to reset it through): install says so, and how, without the password.
    s.write_env(&[
        &format!("DOCKER_INFLUXDB_INIT_PASSWORD={new}"),
        "GRAFANA_ADMIN_PASSWORD=a-new-grafana-password",
    ]);
    let grafana = s.install(&[]);
    assert_eq!(grafana.code, 0, "{}", both(&grafana));
    says(
        &grafana,
        "GRAFANA_ADMIN_PASSWORD changed: Secret kovenant/kovenant-grafana holds the new one",
    );
    assert!(!both(&grafana).contains("a-new-grafana-password"));
    // Back as .ci/cluster.sh set it up, for the sessions after this one.
    s.write_env(&[]);
    let back = s.install(&[]);
    assert_eq!(back.code, 0, "{}", both(&back));
    assert_eq!(signin(&s, &old), 204);
}

#[test]
fn the_influxdb_pods_poststart_hook_makes_and_corrects_the_pod_level_bucket() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&["--only", "secrets", "--only", "pipeline"]);
    assert_eq!(run.code, 0, "{}", both(&run));
    let sts = s.get(&["statefulset", "-n", "kovenant", "kovenant-influxdb"]);
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let command = container["lifecycle"]["postStart"]["exec"]["command"]
        .as_array()
        .expect("a postStart exec hook")
        .iter()
        .map(|c| c.as_str().expect("a string").to_owned())
        .collect::<Vec<_>>();
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    let env: BTreeMap<String, String> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    assert_eq!(env["KOVENANT_POD_BUCKET"], format!("{}/pods", s.bucket));
    assert_eq!(env["KOVENANT_POD_RETENTION"], "24h");
    let cli = tool("KOVENANT_TEST_INFLUX_CLI", "influx-cli");
    let dir = tempfile::tempdir().expect("temp dir");
    let bucket = format!("{}-hook/pods", s.bucket);
    // The hook as the container runs it: its environment (the Secret's operator token as the
    // container gets it), the influx CLI on PATH, InfluxDB on INFLUX_HOST (in the pod: localhost).
    let hook = |retention: &str| {
        let path = format!(
            "{}:{}",
            cli.parent().expect("dir").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(&command[0])
            .args(&command[1..])
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir.path())
            .env("INFLUX_HOST", &s.influxdb)
            .env("INFLUX_CONFIGS_PATH", dir.path().join("configs"))
            .env("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN", super::operator_token())
            .env("DOCKER_INFLUXDB_INIT_ORG", &env["DOCKER_INFLUXDB_INIT_ORG"])
            .env("KOVENANT_POD_BUCKET", &bucket)
            .env("KOVENANT_POD_RETENTION", retention)
            .output()
            .expect("run the hook");
        assert!(out.status.success(), "{out:?}");
    };
    let retention = || -> Value {
        let path = format!(
            "/api/v2/buckets?org=kovenant&name={}",
            url::form_urlencoded::byte_serialize(bucket.as_bytes()).collect::<String>()
        );
        let (_, v) = influx_api(&s.influxdb, "GET", &path, None);
        v["buckets"][0]["retentionRules"][0]["everySeconds"].clone()
    };
    hook("24h");
    assert_eq!(retention(), 86_400);
    // A changed KOVENANT_POD_RETENTION: the next start corrects it.
    hook("6h");
    assert_eq!(retention(), 21_600);
}
