//! What goes wrong on a real node: a pod's network namespace deleted with its sockets open,
//! destroy notifications lost to a full listener, an agent without the rights it needs.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kernel::*;
use crate::kernel_flows::many_short_connections;

#[test]
fn kernel_a_namespace_deleted_with_its_sockets_open_keeps_its_final_counts() {
    let mut s = Scenario::new("gone");
    let client = s.pod("doomed", Layout::SystemdV2);
    let server = s.pod("survivor", Layout::CgroupfsV1);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "1", "4000", "60000"],
    );
    let mut cli = s.start(client, &["hold", &ip, "8080", "4000", "60000"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    cli.wait_for_usr2();
    // The pod goes away as a kubelet removes it: the namespace's name first, then its last
    // process (SIGKILL: the kernel closes the socket), with no sample in between.
    s.delete_netns(client);
    cli.kill();
    srv.wait_ok();
    // Nothing holds the namespace now but what the agent opened in it: once it lets go, the
    // namespace is freed and takes its end of the veth pair, and so the server's end, along.
    let server_ns = s.pods[server].netns.clone().expect("server namespace");
    let server_end = format!("kt{}p{server}l0", s.n);
    eventually(
        "the deleted namespace is freed (the agent let go of it)",
        Duration::from_secs(20),
        || {
            !Command::new("ip")
                .args(["-n", &server_ns, "link", "show", &server_end])
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .expect("ip link")
                .success()
        },
    );
    agent.wait_windows(1);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &[
            (
                s.to_pod(client, server, 8080, "client"),
                Want {
                    connects: 1,
                    accepts: 0,
                    closes: 1,
                    bytes_sent: 4000,
                    bytes_received: 60000,
                    conns: 1,
                },
            ),
            (
                s.to_pod(server, client, 8080, "server"),
                Want {
                    connects: 0,
                    accepts: 1,
                    closes: 1,
                    bytes_sent: 60000,
                    bytes_received: 4000,
                    conns: 1,
                },
            ),
        ],
    );
}

#[test]
fn kernel_destroy_notifications_lost_to_a_full_listener_are_counted() {
    let mut s = Scenario::new("lost");
    let client = s.pod("burst", Layout::CgroupfsV2);
    let server = s.pod("sink", Layout::SystemdV1);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let n = 3000;
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", &n.to_string(), "1", "1"],
    );
    let mut cli = s.start(client, &["connect", &ip, "8080", &n.to_string(), "1", "1"]);
    // A listener buffer far too small for 6,000 notifications in a burst (a hidden flag).
    let agent = Agent::start(
        &s,
        &[
            "--socket-closes",
            "notifications",
            "--destroy-rcvbuf",
            "1024",
            "--window",
            "5s",
        ],
    );
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(1);
    let points = agent.stop();
    let t = agent_totals(&points);
    assert!(
        t.get("destroys_lost").copied().unwrap_or(0) > 0,
        "destroys_lost after a burst of {n} connections into a 1 KiB listener: {t:?}"
    );
    // What it did count is real: never more than was sent.
    let sent: i64 = flows(&s, &points)
        .iter()
        .filter(|(k, _)| k.role == "client")
        .map(|(_, v)| v.bytes_sent)
        .sum();
    assert!(sent <= n, "{sent} bytes counted of {n} sent");
}

/// Runs the agent under `setpriv ARGS`; it must stop at once with exit 1, one message naming
/// one of `caps`, and no output.
fn refused(setpriv: &[&str], caps: &[&str]) {
    let mut wrapper = vec!["setpriv"];
    wrapper.extend_from_slice(setpriv);
    refused_under(&wrapper, caps);
}

/// Runs the agent under the command `wrapper` (its program and arguments); it must stop at once
/// with exit 1, one message naming one of `caps`, and no output.
fn refused_under(wrapper: &[&str], caps: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let s = Scenario::new("caps");
    let snap = s.snapshot();
    // Readable by `nobody` too: the refusal must be about rights, not this file.
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&snap, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cap = caps.join(" or ");
    let mut child = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg("--")
        .arg(crate::kernel::agent_binary())
        .args([
            "agent",
            "--source",
            "none",
            "--window",
            "1s",
            "--cluster-snapshot",
        ])
        .arg(&snap)
        .args(["--node-name", &s.node])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", wrapper[0]));
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the agent without {cap} still ran after 20 s; it wrote:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run: crate::support::Run = child.wait_with_output().expect("output").into();
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.stdout, "", "no half-blind output: {run}");
    let err = run.stderr.to_lowercase();
    assert!(
        caps.iter().any(|c| err.contains(c)),
        "the message names {cap}: {run}"
    );
    assert_eq!(
        run.stderr.matches("error:").count(),
        1,
        "one message: {run}"
    );
}

/// A pod without hostPID: a PID namespace of its own, with its own /proc (every capability
/// kept), sees only its own processes and network namespace; the agent says so and stops.
#[test]
fn kernel_an_agent_outside_the_nodes_pid_namespace_says_it_needs_host_pid() {
    refused_under(
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &["no kernel thread (kthreadd, pid 2), so it runs in a pid namespace of its own"],
    );
}

#[test]
fn kernel_an_agent_without_cap_sys_admin_says_so() {
    refused(
        &["--inh-caps=-all", "--bounding-set=-sys_admin"],
        &["sys_admin"],
    );
}

#[test]
fn kernel_an_agent_without_cap_net_admin_says_so() {
    refused(
        &["--inh-caps=-all", "--bounding-set=-net_admin"],
        &["net_admin"],
    );
}

#[test]
fn kernel_an_agent_run_as_nobody_names_a_capability_it_lacks() {
    refused(
        &[
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
        ],
        &[
            "sys_admin",
            "net_admin",
            "sys_ptrace",
            "dac_read_search",
            "cap_",
        ],
    );
}

/// The DaemonSet's four capabilities, and no other, are enough for the closes summed in the
/// kernel (`--socket-closes kernel` stops the agent when the program is refused): CAP_SYS_ADMIN
/// stands for CAP_BPF and CAP_PERFMON in the kernel's checks (docs/security.md).
#[test]
fn kernel_the_daemonsets_capabilities_load_the_closes_program() {
    let points = many_short_connections(
        &[
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-all,+sys_admin,+sys_ptrace,+dac_read_search,+net_admin",
        ],
        &["--socket-closes", "kernel"],
    );
    let t = agent_totals(&points);
    assert_eq!(t.get("destroys_lost"), Some(&0), "{t:?}");
    assert!(
        points.iter().any(|p| p.measurement == "kovenant_agent"
            && p.fields.get("closed_flows").copied().unwrap_or(0) >= 2),
        "the two flows' closes were summed in the kernel: {t:?}"
    );
}
