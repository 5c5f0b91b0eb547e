//! The confirmation prompt in a real terminal (tmux) against the real control plane: the cursor
//! shows while it asks, Enter confirms whatever was typed ("y" alone does nothing yet), "n" is an
//! answer (exit 0, nothing removed), Ctrl-C an interruption (exit 130, the cursor shown, the
//! re-run hint); and Ctrl-C while helm waits leaves no spinner frame behind.
use std::time::Duration;

use super::{HelmMajor, Session, path_str};
use crate::terminal::Pane;

/// A dashboard ConfigMap as install labels it, so uninstall has something to ask about.
fn something_to_remove(s: &Session) {
    let _ = s.kubectl_run(&["create", "namespace", "kovenant"]);
    s.kubectl(&[
        "create",
        "configmap",
        "-n",
        "kovenant",
        "kovenant-dashboard-prompt",
    ]);
    s.kubectl(&[
        "label",
        "configmap",
        "-n",
        "kovenant",
        "kovenant-dashboard-prompt",
        "app.kubernetes.io/managed-by=kovenant",
        "grafana_dashboard=1",
    ]);
}

fn uninstall_in_a_terminal(s: &Session) -> Pane {
    let kubeconfig = path_str(&s.kubeconfig);
    let env = s.env_arg();
    let helm = path_str(&s.helm);
    let plugins = path_str(&s.plugins);
    let home = path_str(s.home.path());
    Pane::start(
        &["uninstall", "--kubeconfig", &kubeconfig, "--env-file", &env],
        &[
            ("KOVENANT_HELM", &helm),
            ("HELM_PLUGINS", &plugins),
            ("HELM_CONFIG_HOME", &format!("{home}/helm/config")),
            ("HELM_CACHE_HOME", &format!("{home}/helm/cache")),
            ("HELM_DATA_HOME", &format!("{home}/helm/data")),
            ("NO_COLOR", "1"),
        ],
        s.home.path(),
    )
}

#[test]
fn ctrl_c_at_the_prompt_exits_130_with_the_cursor_shown() {
    let s = Session::new(HelmMajor::V4);
    something_to_remove(&s);
    let pane = uninstall_in_a_terminal(&s);
    let asking = pane.wait_for(
        "Remove these? (skip with --yes) [y/N]",
        Duration::from_secs(30),
    );
    assert!(
        pane.cursor_visible(),
        "the cursor is hidden at the prompt:\n{asking}"
    );
    pane.keys(&["C-c"]);
    let code = pane.exit_code(Duration::from_secs(10));
    let screen = pane.screen();
    assert_eq!(code, 130, "{screen}");
    assert!(screen.contains("\nerror: interrupted\n"), "{screen}");
    assert!(
        screen.contains("hint: run the same command again to finish"),
        "{screen}"
    );
    assert!(!screen.contains("IO error"), "{screen}");
    assert!(
        pane.cursor_visible(),
        "the cursor is left hidden:\n{screen}"
    );
    assert!(s.exists(&["configmap", "-n", "kovenant", "kovenant-dashboard-prompt"]));
    drop(pane);
    s.cleanup();
}

#[test]
fn answering_no_at_the_prompt_exits_0_and_removes_nothing() {
    let s = Session::new(HelmMajor::V4);
    something_to_remove(&s);
    let pane = uninstall_in_a_terminal(&s);
    pane.wait_for(
        "Remove these? (skip with --yes) [y/N]",
        Duration::from_secs(30),
    );
    pane.keys(&["n"]);
    // One key does nothing yet: the answer shows, and Enter confirms it.
    pane.wait_for("[y/N] n", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!pane.screen().contains("exit="), "{}", pane.screen());
    pane.keys(&["Enter"]);
    let code = pane.exit_code(Duration::from_secs(10));
    let screen = pane.screen();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("cancelled: nothing was removed"),
        "{screen}"
    );
    assert!(!screen.contains("error:"), "{screen}");
    assert!(pane.cursor_visible(), "{screen}");
    assert!(s.exists(&["configmap", "-n", "kovenant", "kovenant-dashboard-prompt"]));
    drop(pane);
    s.cleanup();
}

#[test]
fn y_then_enter_confirms_and_any_other_answer_is_no() {
    let s = Session::new(HelmMajor::V4);
    something_to_remove(&s);
    // A key that is neither y nor n, then Enter: no, as with Enter alone.
    let pane = uninstall_in_a_terminal(&s);
    pane.wait_for(
        "Remove these? (skip with --yes) [y/N]",
        Duration::from_secs(30),
    );
    pane.keys(&["x", "Enter"]);
    assert_eq!(
        pane.exit_code(Duration::from_secs(10)),
        0,
        "{}",
        pane.screen()
    );
    assert!(pane.screen().contains("cancelled: nothing was removed"));
    assert!(s.exists(&["configmap", "-n", "kovenant", "kovenant-dashboard-prompt"]));
    drop(pane);
    // y waits for Enter like any other key; then it removes.
    let pane = uninstall_in_a_terminal(&s);
    pane.wait_for(
        "Remove these? (skip with --yes) [y/N]",
        Duration::from_secs(30),
    );
    pane.keys(&["y"]);
    pane.wait_for("[y/N] y", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.exists(&["configmap", "-n", "kovenant", "kovenant-dashboard-prompt"]));
    pane.keys(&["Enter"]);
    let code = pane.exit_code(Duration::from_secs(30));
    let screen = pane.screen();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("ConfigMap kovenant/kovenant-dashboard-prompt removed"),
        "{screen}"
    );
    assert!(!s.exists(&["configmap", "-n", "kovenant", "kovenant-dashboard-prompt"]));
    drop(pane);
    s.cleanup();
}

/// Ctrl-C while helm waits for a release, in a terminal: the spinner's line is cleared (no stale
/// frame above the error), the cursor is back, and the error says to run the same command again.
#[test]
fn ctrl_c_while_helm_waits_leaves_no_spinner_frame_and_says_to_run_again() {
    let s = Session::new(HelmMajor::V4);
    // The agent's image "pulls" for 30 s (kwok stage pod-ready): helm waits that long.
    s.write_env(&["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let kubeconfig = path_str(&s.kubeconfig);
    let env = s.env_arg();
    let helm = path_str(&s.helm);
    let plugins = path_str(&s.plugins);
    let home = path_str(s.home.path());
    let pane = Pane::start(
        &[
            "install",
            "--yes",
            "--skip-image",
            "--kubeconfig",
            &kubeconfig,
            "--env-file",
            &env,
        ],
        &[
            ("KOVENANT_HELM", &helm),
            ("HELM_PLUGINS", &plugins),
            ("HELM_CONFIG_HOME", &format!("{home}/helm/config")),
            ("HELM_CACHE_HOME", &format!("{home}/helm/cache")),
            ("HELM_DATA_HOME", &format!("{home}/helm/data")),
            ("NO_COLOR", "1"),
        ],
        s.home.path(),
    );
    s.eventually(
        "helm is waiting for the pipeline release's agent",
        Duration::from_secs(180),
        || {
            s.releases()
                .iter()
                .any(|(r, _, st)| r == "kovenant/kovenant-pipeline" && st == "pending-upgrade")
        },
    );
    pane.keys(&["C-c"]);
    let code = pane.exit_code(Duration::from_secs(60));
    let screen = pane.screen();
    assert_eq!(code, 130, "{screen}");
    // indicatif's spinner frames are braille dots: none may stay on the screen.
    let stale: Vec<&str> = screen
        .lines()
        .filter(|l| l.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c)))
        .collect();
    assert!(
        stale.is_empty(),
        "stale spinner frames {stale:?}:\n{screen}"
    );
    assert!(
        screen.contains(
            "hint: run the same command again to finish: it completes what is missing and skips \
             what is done"
        ),
        "{screen}"
    );
    assert!(pane.cursor_visible(), "{screen}");
    drop(pane);
    s.cleanup();
}
