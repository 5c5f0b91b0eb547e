//! The confirmation prompt in a real terminal (tmux) against the real control plane: "n" is an
//! answer (exit 0, nothing removed), Ctrl-C an interruption (exit 130, the cursor shown again).
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
    pane.wait_for("Remove these? (skip with --yes)", Duration::from_secs(30));
    pane.keys(&["C-c"]);
    let code = pane.exit_code(Duration::from_secs(10));
    let screen = pane.screen();
    assert_eq!(code, 130, "{screen}");
    assert!(screen.contains("error: interrupted"), "{screen}");
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
    pane.wait_for("Remove these? (skip with --yes)", Duration::from_secs(30));
    pane.keys(&["n"]);
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
