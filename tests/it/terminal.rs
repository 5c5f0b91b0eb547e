//! The command line as a user meets it in a terminal (a real tmux pane) and off one: prompts,
//! Ctrl-C, spinners, and what each outcome prints and exits with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Run;
use crate::support::kovenant;

/// A command running in a tmux pane of its own tmux server (`-L`), so the test sees exactly
/// what a user would: a terminal on stdin and stderr, keys typed, the screen and the cursor.
pub struct Pane {
    socket: String,
    pub dir: tempfile::TempDir,
}

impl Pane {
    /// Runs `args` (kovenant's) with `env` in a 160x50 pane; the shell around it prints
    /// `exit=N` when kovenant ends and keeps the pane open.
    pub fn start(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Pane {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = format!(
            "kovenant-test-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut script = String::from("#!/bin/sh\n");
        // Ctrl-C in a terminal's cooked mode signals the whole foreground group, this shell
        // too: a script's sh dies of it (dash re-raises SIGINT after its child ends, whatever
        // the child did) and takes the pane with it before `exit=` shows. A trap (not an
        // ignore, which kovenant would inherit) keeps it alive, as a user's interactive shell
        // is, to report what kovenant itself did.
        script.push_str("trap : INT\n");
        script.push_str("unset KUBECONFIG DOCKER_HOST\n");
        for (k, v) in env {
            script.push_str(&format!("export {k}={}\n", quote(v)));
        }
        script.push_str(&format!("cd {}\n", quote(&cwd.to_string_lossy())));
        let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
        script.push_str(&format!(
            "{} {}\necho \"exit=$?\"\nsleep 120\n",
            quote(env!("CARGO_BIN_EXE_kovenant")),
            words.join(" ")
        ));
        let path = dir.path().join("run.sh");
        std::fs::write(&path, script).expect("write script");
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
                "-s",
                "t",
            ])
            .arg(format!("sh {}", path.display()))
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(ok.success(), "tmux new-session failed");
        Pane { socket, dir }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's text now.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen shows `text`; panics with the screen after `limit`.
    pub fn wait_for(&self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "no {text:?} on the screen within {limit:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types keys (tmux key names: `C-c`, `Enter`, `n`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Whether the terminal shows its cursor (DECTCEM), as tmux tracks it.
    pub fn cursor_visible(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", "t", "#{cursor_flag}"])
            .trim()
            == "1"
    }

    /// The exit code the shell printed, once kovenant has ended.
    pub fn exit_code(&self, limit: Duration) -> i32 {
        let screen = self.wait_for("exit=", limit);
        let tail = &screen[screen.rfind("exit=").expect("exit=") + 5..];
        tail.split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no exit code:\n{screen}"))
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// A kubeconfig whose server is a closed port on loopback.
pub fn closed_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .expect("write kubeconfig");
    path
}

fn run(args: &[&str], dir: &Path) -> Run {
    Run::from(
        kovenant()
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kovenant"),
    )
}

/// `--timeout` bounds the whole run (issue 24): `--wait` tries to connect until it ends, then
/// stops at once with the last attempt's error (exit 1: nothing could be checked, not exit 3),
/// as JSON on stdout.
#[test]
fn status_wait_polls_a_cluster_that_is_not_there_and_prints_json_off_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kc = closed_kubeconfig(dir.path());
    let kc = kc.to_string_lossy();
    let started = Instant::now();
    let run = run(
        &[
            "status",
            "--kubeconfig",
            &kc,
            "-o",
            "json",
            "--wait",
            "--timeout",
            "8s",
        ],
        dir.path(),
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        took >= Duration::from_secs(7),
        "--wait gave up after {took:?}: {run}"
    );
    // A hard bound: the end of --timeout, plus the time to print and exit.
    assert!(took < Duration::from_secs(10), "--timeout 8s took {took:?}");
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("JSON on stdout: {e}\n{run}"));
    assert_eq!(v["healthy"], false);
    assert_eq!(v["context"], "");
    assert_eq!(
        v["errors"],
        serde_json::json!([
            "context gone (https://127.0.0.1:1): cannot reach the API server: Connection refused \
             (os error 111); still failing at the end of --timeout 8s (hint: check that the \
             cluster is up and reachable: kubectl cluster-info)"
        ]),
        "{run}"
    );
    assert!(
        run.stderr.ends_with(
            "error: context gone (https://127.0.0.1:1): cannot reach the API server: Connection \
             refused (os error 111); still failing at the end of --timeout 8s\nhint: check that \
             the cluster is up and reachable: kubectl cluster-info\n"
        ),
        "{run}"
    );
    // No spinner off a terminal: no carriage returns, no escape sequences.
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\x1b'),
        "{run:?}",
        run = run.stderr
    );
}

#[test]
fn status_json_reports_a_bad_configuration_as_json_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(".env"), "KOVENANT_NAMESPACE=Not_A_Label\n").unwrap();
    let run = run(&["status", "-o", "json"], dir.path());
    assert_eq!(run.code, 2, "{run}");
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("JSON on stdout: {e}\n{run}"));
    assert_eq!(v["healthy"], false);
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains(".env line 1: KOVENANT_NAMESPACE"),
        "{v:#}"
    );
}

#[test]
fn status_on_a_terminal_shows_a_spinner_while_it_connects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kc = closed_kubeconfig(dir.path());
    let pane = Pane::start(
        &[
            "status",
            "--kubeconfig",
            &kc.to_string_lossy(),
            "--wait",
            "--timeout",
            "6s",
        ],
        &[("HOME", &dir.path().to_string_lossy()), ("NO_COLOR", "1")],
        dir.path(),
    );
    // The spinner's line carries the last attempt's error while it tries again.
    let screen = pane.wait_for("trying again", Duration::from_secs(10));
    assert!(
        screen.contains("Connecting to the API server — context gone (https://127.0.0.1:1): cannot reach the API server"),
        "{screen}"
    );
    assert_eq!(
        pane.exit_code(Duration::from_secs(20)),
        1,
        "{}",
        pane.screen()
    );
    // The spinner is gone once the command ends, and the cursor is back.
    assert!(pane.cursor_visible(), "{}", pane.screen());
}

#[test]
fn agent_flags_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snap = crate::agent::empty_snapshot(dir.path());
    let r = run(
        &["agent", "--window", "0s", "--cluster-snapshot", &snap],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains(
            "invalid value '0s' for '--window <DURATION>': is zero; expected a positive duration"
        ),
        "{r}"
    );
    let r = run(
        &[
            "agent",
            "--no-kernel",
            "--from-start",
            "--cluster-snapshot",
            &snap,
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains(
            "error: --from-start applies to --source file:PATH only, not to --source stdin"
        ),
        "{r}"
    );
    // A replay needs events to replay: --source none (the live agent's default) is refused at
    // once, before anything is read, with the sources that work.
    let r = run(
        &[
            "agent",
            "--no-kernel",
            "--source",
            "none",
            "--cluster-snapshot",
            &snap,
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("error: --no-kernel with --source none leaves nothing to read"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("hint: replay Tetragon's events with --source stdin or file:PATH"),
        "{r}"
    );
    assert!(r.stdout.is_empty(), "{r}");
    let r = run(
        &[
            "agent",
            "--no-kernel",
            "--source",
            "nothing",
            "--cluster-snapshot",
            &snap,
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("error: unknown --source \"nothing\""),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("hint: use none, stdin, file:PATH or kube-logs"),
        "{r}"
    );
    let r = run(
        &["agent", "--namespace", "x", "--cluster-snapshot", &snap],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("error: --namespace means nothing to `kovenant agent`"),
        "{r}"
    );
    let r = run(&["completions", "bash", "--context", "prod"], dir.path());
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("error: --context means nothing to `kovenant completions`"),
        "{r}"
    );
    let r = run(&["install", "--skip-image", "--only", "image"], dir.path());
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("error: --skip-image and --only image contradict each other"),
        "{r}"
    );
}

#[test]
fn agent_no_follow_replays_the_whole_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snap = crate::agent::empty_snapshot(dir.path());
    let events =
        crate::support::shared().join("fixtures/tetragon-events/kovenant-2022-cluster.jsonl");
    let src = format!("file:{}", events.display());
    let r = run(
        &[
            "agent",
            "--no-kernel",
            "--source",
            &src,
            "--no-follow",
            "--cluster-snapshot",
            &snap,
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{r}");
    let lines = std::fs::read_to_string(&events).unwrap().lines().count();
    // The sum of `tetragon_lines` over windows is every line of the file.
    let total: u64 = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("kovenant_agent"))
        .filter_map(|l| {
            l.split([' ', ','])
                .find_map(|f| f.strip_prefix("tetragon_lines="))
        })
        .filter_map(|v| v.trim_end_matches('i').parse::<u64>().ok())
        .sum();
    assert_eq!(total, lines as u64, "{}", r.stdout);
}

#[test]
fn agent_against_a_closed_port_says_so_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kc = closed_kubeconfig(dir.path());
    let started = Instant::now();
    let r = run(
        &[
            "agent",
            "--no-kernel",
            "--kubeconfig",
            &kc.to_string_lossy(),
        ],
        dir.path(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "error: agent: connect to the cluster: https://127.0.0.1:1: cannot reach the API server: "
        ),
        "{r}"
    );
    assert!(!r.stderr.contains("not listed"), "{r}");
}

#[test]
fn without_any_kubeconfig_the_message_says_so_and_does_not_suggest_context() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = run(&["status"], dir.path());
    assert_eq!(r.code, 1, "{r}");
    let expected = format!(
        "error: kubeconfig: no kubeconfig: no --kubeconfig, $KUBECONFIG is not set, and {}/.kube/config does not exist\n",
        dir.path().display()
    );
    assert!(r.stderr.contains(&expected), "{r}");
    assert!(
        r.stderr
            .contains("hint: pass --kubeconfig PATH or set KUBECONFIG"),
        "{r}"
    );
    assert!(!r.stderr.contains("--context"), "{r}");
    assert!(!r.stderr.contains("'\""), "{r}");
}

#[test]
fn image_with_a_context_that_cannot_take_it_does_not_suggest_skip_image() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = run(&["image", "--context", "prod"], dir.path());
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no image registry is configured"), "{r}");
    assert!(!r.stderr.contains("--skip-image"), "{r}");
    assert!(
        r.stderr
            .contains("hint: set KOVENANT_IMAGE_REGISTRY and pass --push"),
        "{r}"
    );
}

#[test]
fn every_problem_of_a_configuration_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        "KOVENANT_NAMESPACE=Bad_NS\nGRAFANA_PORT=99999\nKOVENANT_NAMESPAC=x\n",
    )
    .unwrap();
    let r = run(&["render", "--out", "out"], dir.path());
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("error: 3 problems in the configuration:\n"),
        "{r}"
    );
    for what in [
        ".env line 1: KOVENANT_NAMESPACE",
        ".env line 2: GRAFANA_PORT",
        ".env line 3: KOVENANT_NAMESPAC",
    ] {
        assert!(r.stderr.contains(what), "{what}: {r}");
    }
}
