//! `kovenant dashboard` on the real control plane: the URL it prints reaches Grafana's pod port
//! through a real port-forward (kwok forwards it to the stand-in answering /api/health, as no
//! Grafana runs here), the login is named but printed only with --print-password, and Ctrl-C
//! ends it with exit 0.
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use super::{HelmMajor, Session};

#[test]
fn dashboard_serves_grafana_through_a_port_forward_until_ctrl_c() {
    let s = Session::new(HelmMajor::V4);
    let run = s.install(&[]);
    assert_eq!(run.code, 0, "{run}");
    let env = s.env_arg();
    let mut child = s
        .kovenant(&[
            "dashboard",
            "--env-file",
            &env,
            "--port",
            "0",
            "--no-browser",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kovenant dashboard");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = String::new();
    stdout.read_line(&mut url).expect("the URL line");
    let url = url.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/grafana/"),
        "{url:?}"
    );
    // The stand-in answers Grafana's /api/health at the pod's port; the printed URL's origin is
    // the forwarded port.
    let origin = url.trim_end_matches("/grafana/");
    for _ in 0..3 {
        let body = ureq::get(format!("{origin}/api/health"))
            .config()
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .call()
            .expect("GET through the port-forward")
            .into_body()
            .read_to_string()
            .expect("body");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["database"], "ok", "{body}");
        assert_eq!(v["version"], "13.2.0", "{body}");
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "log in as admin; the password is in Secret kovenant/kovenant-grafana, key \
             admin-password: kovenant dashboard --print-password shows it\n"
        ),
        "{stderr}"
    );
    let password = s.kubectl(&[
        "get",
        "secret",
        "-n",
        "kovenant",
        "kovenant-grafana",
        "-o",
        "jsonpath={.data.admin-password}",
    ]);
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(password.trim())
        .expect("base64");
    let plain = String::from_utf8_lossy(&plain).into_owned();
    assert!(!plain.is_empty() && !stderr.contains(&plain) && !url.contains(&plain));
    // install's last lines point here, with the same path, and no kubectl pipeline.
    assert!(
        run.stderr
            .contains("Grafana: kovenant dashboard (then http://127.0.0.1:3000/grafana/)"),
        "{run}"
    );
    assert!(!run.stderr.contains("base64 -d"), "{run}");

    // Asked for by name, the password is shown, with where it comes from.
    let (url, stderr) = until_ctrl_c(&s, &["--print-password"]);
    assert!(url.ends_with("/grafana/"), "{url}");
    assert!(
        stderr.contains(&format!(
            "log in as admin with password {plain} (from Secret kovenant/kovenant-grafana, key \
             admin-password)\n"
        )),
        "{stderr}"
    );
    s.cleanup();
}

/// `kovenant dashboard --port 0 --no-browser EXTRA`, stopped with Ctrl-C once it has printed its
/// URL: the URL and what it said on stderr.
fn until_ctrl_c(s: &Session, extra: &[&str]) -> (String, String) {
    let env = s.env_arg();
    let mut args = vec![
        "dashboard",
        "--env-file",
        &env,
        "--port",
        "0",
        "--no-browser",
    ];
    args.extend(extra);
    let mut child = s
        .kovenant(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kovenant dashboard");
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("the URL line");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    (url.trim().to_string(), stderr)
}
