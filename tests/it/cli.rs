//! The command line as a user meets it.
use crate::support::{Run, kovenant};

#[test]
fn help_lists_every_command() {
    let out = kovenant().arg("--help").output().expect("run kovenant");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "install",
        "uninstall",
        "status",
        "render",
        "image",
        "agent",
        "completions",
    ] {
        assert!(text.contains(cmd), "--help does not list {cmd}:\n{text}");
    }
}

fn help(args: &[&str]) -> String {
    let out = kovenant().args(args).output().expect("run kovenant");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's --help lists no global flag that the command then refuses.
#[test]
fn help_leaves_out_the_global_flags_a_command_refuses() {
    let completions = help(&["completions", "--help"]);
    for flag in ["--kubeconfig", "--context", "--namespace", "--assets"] {
        assert!(!completions.contains(flag), "{flag}:\n{completions}");
    }
    assert!(completions.contains("--no-color"), "{completions}");
    let agent = help(&["agent", "--help"]);
    for flag in ["--namespace", "--assets"] {
        assert!(!agent.contains(flag), "{flag}:\n{agent}");
    }
    assert!(agent.contains("--kubeconfig"), "{agent}");
    let install = help(&["install", "--help"]);
    for flag in ["--kubeconfig", "--context", "--namespace", "--assets"] {
        assert!(install.contains(flag), "{flag}:\n{install}");
    }
}

/// With no .env in the current folder and no --env-file, kovenant says so, naming the folder,
/// before it uses the defaults; with one, it does not.
#[test]
fn no_env_file_is_said_naming_the_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().canonicalize().expect("canonical");
    let render = |dir: &std::path::Path| {
        Run::from(
            kovenant()
                .args(["render", "--out", "out"])
                .current_dir(dir)
                .output()
                .expect("run kovenant"),
        )
    };
    let run = render(&folder);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.starts_with(&format!(
            "warning: no .env in {}: using the defaults and the KOVENANT_* environment; run from \
             the folder of your .env, or pass --env-file PATH (example.env lists every key)\n",
            folder.display()
        )),
        "{run}"
    );
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(other.path().join(".env"), "KOVENANT_CLUSTER_NAME=mine\n").expect("write");
    let run = render(other.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stderr.contains("no .env"), "{run}");
}

/// `-o json` is the saved plan of a dry run; on a real install it is refused before anything.
#[test]
fn install_json_needs_dry_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = Run::from(
        kovenant()
            .args(["install", "-o", "json"])
            .current_dir(dir.path())
            .output()
            .expect("run kovenant"),
    );
    assert_eq!(run.code, 2, "{run}");
    assert_eq!(
        run.stderr,
        "error: -o json prints the plan of a dry run, and this is not one\nhint: add --dry-run to \
         save the plan: kovenant install --dry-run -o json > plan.json\n"
    );
}
