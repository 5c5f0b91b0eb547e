//! The command line as a user meets it.
use crate::support::kovenant;

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
