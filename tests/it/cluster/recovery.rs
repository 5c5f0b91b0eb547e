//! An install that is interrupted, or stopped by a crash-looping pod, and the same command run
//! again: on the real control plane with real helm, whose release storage remembers.
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use super::lifecycle::assert_all_ready;
use super::{HelmMajor, Session};

fn no_release_pending(s: &Session) {
    let pending: Vec<_> = s
        .releases()
        .into_iter()
        .filter(|(_, _, st)| st.starts_with("pending"))
        .collect();
    assert!(pending.is_empty(), "releases left pending: {pending:?}");
}

/// Starts `kovenant install` in its own process group (as a shell runs a foreground job) with
/// the agent's image under slow.invalid/ (it "pulls" for 30 s, kwok stage pod-ready), and returns
/// once helm has stored the pipeline release as pending-upgrade: helm is waiting for the agent
/// (a first install puts InfluxDB in alone first, revision 1, for its tokens).
fn install_until_helm_waits(s: &Session) -> std::process::Child {
    s.write_env(&["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let env = s.env_arg();
    let mut child = s
        .kovenant(&["install", "--yes", "--skip-image", "--env-file", &env])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kovenant");
    s.eventually(
        "helm is waiting for the pipeline release's agent",
        Duration::from_secs(180),
        || {
            if let Ok(Some(code)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                panic!("install ended ({code}) before helm waited: {stderr}");
            }
            s.releases()
                .iter()
                .any(|(r, _, st)| r == "kovenant/kovenant-pipeline" && st == "pending-upgrade")
        },
    );
    child
}

#[test]
fn ctrl_c_while_helm_waits_exits_130_and_the_same_install_converges() {
    let s = Session::new(HelmMajor::V4);
    // The agent's image "pulls" for 30 s (kwok stage pod-ready), so helm is still waiting when
    // the user presses Ctrl-C.
    s.write_points(Duration::from_secs(1));
    let mut child = install_until_helm_waits(&s);
    // Ctrl-C on a terminal: SIGINT to the whole foreground process group, kovenant and helm.
    let pgid = child.id();
    let sent = Command::new("kill")
        .args(["-INT", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(sent.success());
    let code = child.wait().expect("kovenant exits").code();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(code, Some(130), "{stderr}");
    no_release_pending(&s);

    let again = s.install(&[]);
    assert_eq!(again.code, 0, "the same install again: {again}");
    no_release_pending(&s);
    assert_all_ready(&s);
}

#[test]
fn a_crash_looping_pod_stops_install_with_its_log_and_the_fixed_install_converges() {
    let s = Session::new(HelmMajor::V4);
    // The agent's container crash-loops (kwok stage pod-crash-loop) as one whose entrypoint fails.
    s.write_env(&["KOVENANT_IMAGE_REGISTRY=crash.invalid"]);
    let started = Instant::now();
    let run = s.install(&["--timeout", "5m"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(150),
        "the fail-fast stops install long before helm's 5m: {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("CrashLoopBackOff"), "{run}");
    assert!(run.stderr.contains("pod kovenant/kovenant-agent-"), "{run}");
    assert!(
        run.stderr
            .contains("error: crashed (simulated by the kwok stage pod-crash-loop)"),
        "the crashed container's own log lines: {run}"
    );
    no_release_pending(&s);

    // The cause fixed (the image back where it can be pulled): the same install converges, and
    // the old crash-looping pods going away do not stop it.
    s.write_env(&[]);
    let fixed = s.install(&[]);
    assert_eq!(fixed.code, 0, "install after the fix: {fixed}");
    no_release_pending(&s);
    assert_all_ready(&s);
}

#[test]
fn helm_failing_half_way_names_the_release_and_helms_words_and_the_rerun_converges() {
    let s = Session::new(HelmMajor::V4);
    // Something of the user's own stands where the Grafana chart puts its ServiceAccount: real
    // helm refuses to adopt an object it does not own, after Tetragon is already deployed.
    // Prometheus's too: two releases of the same (parallel) step fail, and both are said.
    s.kubectl(&["create", "namespace", "kovenant"]);
    s.kubectl(&["create", "serviceaccount", "grafana", "-n", "kovenant"]);
    s.kubectl(&[
        "create",
        "serviceaccount",
        "prometheus-server",
        "-n",
        "kovenant",
    ]);
    let run = s.install(&[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("2 releases failed"), "{run}");
    for (release, account) in [("grafana", "grafana"), ("prometheus", "prometheus-server")] {
        assert!(
            run.stderr
                .contains(&format!("helm upgrade --install {release} ")),
            "the step and its command: {run}"
        );
        assert!(
            run.stderr.contains(&format!(
                "ServiceAccount \"{account}\" in namespace \"kovenant\" exists"
            )),
            "helm's own message: {run}"
        );
    }
    let deployed: Vec<String> = s
        .releases()
        .into_iter()
        .filter(|(_, _, st)| st == "deployed")
        .map(|(r, _, _)| r)
        .collect();
    assert!(
        deployed.contains(&"kube-system/tetragon".to_string()),
        "{deployed:?}"
    );
    no_release_pending(&s);

    s.kubectl(&[
        "delete",
        "serviceaccount",
        "grafana",
        "prometheus-server",
        "-n",
        "kovenant",
    ]);
    let again = s.install(&[]);
    assert_eq!(
        again.code, 0,
        "the same install once the cause is gone: {again}"
    );
    no_release_pending(&s);
    assert_all_ready(&s);

    // The namespace was the user's: --purge removes every claim of the stack, InfluxDB's
    // (from its StatefulSet's template) among them, and leaves the namespace.
    let purge = s.uninstall(&["--purge"]);
    assert_eq!(purge.code, 0, "{purge}");
    assert!(s.exists(&["namespace", "kovenant"]), "{purge}");
    s.eventually(
        "every claim is gone (the PVC protection lets go once the pods are)",
        Duration::from_secs(60),
        || s.get(&["pvc", "-n", "kovenant"])["items"] == serde_json::json!([]),
    );
}

#[test]
fn a_release_a_killed_helm_left_pending_is_unlocked_by_the_next_install() {
    let s = Session::new(HelmMajor::V4);
    let mut child = install_until_helm_waits(&s);
    // The helm process dies without a word (the OOM killer, a closed laptop): the release stays
    // pending-upgrade in helm's storage.
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", "upgrade --install kovenant-pipeline"])
        .status()
        .expect("pkill");
    assert!(killed.success(), "a helm process was killed");
    let code = child.wait().expect("kovenant exits").code();
    assert_eq!(code, Some(1));
    assert!(
        s.releases()
            .iter()
            .any(|(r, _, st)| r == "kovenant/kovenant-pipeline" && st == "pending-upgrade"),
        "{:?}",
        s.releases()
    );

    let again = s.install(&[]);
    assert_eq!(
        again.code, 0,
        "the next install unlocks and converges: {again}"
    );
    assert!(
        again
            .stderr
            .contains("release kovenant/kovenant-pipeline was left pending-upgrade"),
        "{again}"
    );
    no_release_pending(&s);
    assert_all_ready(&s);
}
