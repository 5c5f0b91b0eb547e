//! Sockets of the host network namespace belong to the hostNetwork pod that opened them: the one
//! Tetragon's `kovenant-tcp` event names, else the owner of the socket's inode in
//! /proc/<pid>/fd. The pod at the other end sees the node.
use crate::kernel::*;

/// The flows of one connection from hostNetwork pod `host` to pod `server` on 8080.
fn host_to_pod(s: &Scenario, host: usize, server: usize, req: i64, resp: i64) -> Vec<(Flow, Want)> {
    vec![
        (
            s.to_pod(host, server, 8080, "client"),
            Want {
                connects: 1,
                accepts: 0,
                closes: 1,
                bytes_sent: req,
                bytes_received: resp,
                conns: 1,
            },
        ),
        // The server's peer is the node's address: the node, whatever pod of the host
        // network namespace spoke.
        (
            s.key(server, "node", "", &s.node.clone(), 8080, "server"),
            Want {
                connects: 0,
                accepts: 1,
                closes: 1,
                bytes_sent: resp,
                bytes_received: req,
                conns: 1,
            },
        ),
    ]
}

#[test]
fn kernel_a_host_namespace_socket_belongs_to_the_pod_tetragon_saw_open_it() {
    let mut s = Scenario::new("tetra");
    let host = s.host_pod("node-probe", Layout::SystemdV2);
    let server = s.pod("web", Layout::CgroupfsV2);
    s.link(Side::Host, Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let sport = (30_000 + s.n) as u16;
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "1", "700", "9000"],
    );
    // The process stays out of the pod's cgroup on purpose: only Tetragon's event can say
    // whose the socket is (the /proc/<pid>/fd fallback would find a process of the node).
    let mut cli = s.start_outside(
        host,
        &[
            "connect",
            &ip,
            "8080",
            "1",
            "700",
            "9000",
            &sport.to_string(),
        ],
    );
    let export = s.file("tetragon.log");
    std::fs::write(&export, b"").unwrap();
    let source = format!("file:{}", export.display());
    let agent = Agent::start(&s, &["--source", &source]);
    let binary = crate::kernel::workload_binary();
    let event = crate::kernel::tcp_connect(
        &s,
        &s.pods[host],
        cli.pid,
        &binary,
        &crate::kernel::Sock {
            saddr: &s.node_ip4(),
            sport,
            daddr: &ip,
            dport: 8080,
        },
    );
    std::fs::write(&export, event).unwrap();
    crate::agent_follow::wait_read(agent.pid(), &export);
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &host_to_pod(&s, host, server, 700, 9000),
    );
    let t = agent_totals(&points);
    assert_eq!(t.get("tetragon_events"), Some(&1), "{t:?}");
}

#[test]
fn kernel_a_host_namespace_socket_without_an_event_belongs_to_its_fd_owner() {
    let mut s = Scenario::new("hostfd");
    let host = s.host_pod("node-exporter", Layout::CgroupfsV1);
    let server = s.pod("store", Layout::SystemdV2);
    s.link(Side::Host, Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "1", "700", "9000"],
    );
    let mut cli = s.start(host, &["hold", &ip, "8080", "700", "9000"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    // The connection stays open (its descriptor in the process's /proc/<pid>/fd) while the
    // agent dumps it, then closes.
    cli.wait_for_usr2();
    agent.wait_windows(2);
    cli.signal(libc::SIGUSR2);
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &host_to_pod(&s, host, server, 700, 9000),
    );
}
