//! Real TCP between pods on this machine's kernel, counted by the live agent from the kernel's
//! own socket counters: every total exact (bytes received within one byte per connection), on
//! both ends of each connection, with the pods' workload and release tags.
use crate::kernel::*;

/// Both ends of `conns` request/response connections from `client` to `server` on `port`.
fn both_ends(
    s: &Scenario,
    client: usize,
    server: usize,
    port: u16,
    conns: i64,
    req: i64,
    resp: i64,
) -> Vec<(Flow, Want)> {
    vec![
        (
            s.to_pod(client, server, port, "client"),
            Want {
                connects: conns,
                accepts: 0,
                closes: conns,
                bytes_sent: conns * req,
                bytes_received: conns * resp,
                conns,
            },
        ),
        (
            s.to_pod(server, client, port, "server"),
            Want {
                connects: 0,
                accepts: conns,
                closes: conns,
                bytes_sent: conns * resp,
                bytes_received: conns * req,
                conns,
            },
        ),
    ]
}

/// pod_io's system-call bytes of a pod: (read_bytes, write_bytes).
/// One `kovenant_agent` field, window by window (0 where a window lacks it).
fn agent_field(points: &[crate::agent_support::Point], field: &str) -> Vec<i64> {
    points
        .iter()
        .filter(|p| p.measurement == "kovenant_agent")
        .map(|p| p.fields.get(field).copied().unwrap_or(0))
        .collect()
}

fn io_bytes(s: &Scenario, points: &[crate::agent_support::Point], pod: usize) -> (i64, i64) {
    let io = io_of(s, points, pod);
    let f = |k: &str| io.get(k).copied().unwrap_or(0);
    (f("read_bytes"), f("write_bytes"))
}

/// The agent's default: closes summed by flow in the kernel (`closed_flows` says so).
#[test]
fn kernel_many_short_connections_are_counted_exactly_on_both_ends() {
    let points = many_short_connections(&[], &[]);
    assert!(
        agent_field(&points, "closed_flows").iter().any(|&n| n >= 2),
        "the closes were summed in the kernel: closed_flows by window {:?}",
        agent_field(&points, "closed_flows")
    );
}

/// The same from a destroy notification per socket (kernels that refuse the program).
#[test]
fn kernel_many_short_connections_are_counted_exactly_from_destroy_notifications() {
    let points = many_short_connections(&[], &["--socket-closes", "notifications"]);
    assert_eq!(
        agent_field(&points, "closed_flows").iter().sum::<i64>(),
        0,
        "no closes summed in the kernel"
    );
    assert!(
        agent_field(&points, "destroy_events").iter().sum::<i64>() >= 600,
        "both ends of 300 connections notified: destroy_events by window {:?}",
        agent_field(&points, "destroy_events")
    );
}

/// 300 connections between two pods, 1,000 bytes each way and 5,000 back, under an agent run
/// by `wrapper` (see `Agent::start_under`) with `agent_args`: every total exact.
pub fn many_short_connections(
    wrapper: &[&str],
    agent_args: &[&str],
) -> Vec<crate::agent_support::Point> {
    let mut s = Scenario::new("short");
    let client = s.pod("client", Layout::CgroupfsV1);
    let server = s.pod("server", Layout::SystemdV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &[
            "listen", &ip, "8080", "serve", "300", "1000", "5000", "wait2",
        ],
    );
    let mut cli = s.start(
        client,
        &["connect", &ip, "8080", "300", "1000", "5000", "wait2"],
    );
    let agent = Agent::start_under(&s, wrapper, agent_args);
    srv.go();
    cli.go();
    // pod_io is exact when the agent samples a process after its last I/O: these exit
    // only then, as a container process reaped by its shim is counted up to then.
    finish(&agent, &mut [&mut cli, &mut srv]);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &both_ends(&s, client, server, 8080, 300, 1000, 5000),
    );
    // read(2)/write(2) on the sockets: rchar and wchar, exactly.
    assert_eq!(io_bytes(&s, &points, client), (1_500_000, 300_000));
    assert_eq!(io_bytes(&s, &points, server), (300_000, 1_500_000));
    points
}

#[test]
fn kernel_a_pod_that_starts_between_two_passes_has_its_first_connections_counted() {
    let mut s = Scenario::new("late");
    let client = s.pod("late", Layout::SystemdV2);
    let server = s.pod("early", Layout::CgroupfsV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "50", "100", "1000", "wait2"],
    );
    // 5 s windows: the client's connections open and close well before the next pass, so
    // only a namespace followed between passes has a destroy listener to report them.
    let agent = Agent::start(&s, &["--window", "5s"]);
    srv.go();
    // Right after a pass, the client pod's first process appears in its namespace, which no
    // process held before.
    agent.wait_windows(1);
    let mut cli = s.start(
        client,
        &["connect", &ip, "8080", "50", "100", "1000", "wait2"],
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    cli.go();
    finish(&agent, &mut [&mut cli, &mut srv]);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &both_ends(&s, client, server, 8080, 50, 100, 1000),
    );
}

#[test]
fn kernel_a_stream_over_several_windows_is_counted_exactly() {
    let mut s = Scenario::new("stream");
    let client = s.pod("writer", Layout::SystemdV1);
    let server = s.pod("reader", Layout::CgroupfsV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(server, &["listen", &ip, "9000", "sink"]);
    // 40 writes of 64 KiB, 100 ms apart: four seconds, four 1 s windows at least.
    let mut cli = s.start(client, &["stream", &ip, "9000", "40", "65536", "100"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    let total = 40 * 65536;
    let got = flows(&s, &points);
    assert_flows(
        &got,
        &[
            (
                s.to_pod(client, server, 9000, "client"),
                Want {
                    connects: 1,
                    accepts: 0,
                    closes: 1,
                    bytes_sent: total,
                    bytes_received: 0,
                    conns: 1,
                },
            ),
            (
                s.to_pod(server, client, 9000, "server"),
                Want {
                    connects: 0,
                    accepts: 1,
                    closes: 1,
                    bytes_sent: 0,
                    bytes_received: total,
                    conns: 1,
                },
            ),
        ],
    );
    let c = &got[&s.to_pod(client, server, 9000, "client")];
    assert!(
        c.windows >= 3,
        "a four-second stream is split over {} windows",
        c.windows
    );
    // One RTT sample per live socket per dump: the stream was live in three dumps at least.
    assert!(c.rtt_samples >= 3, "{c:?}");
    // While the stream ran, neither pod opened or closed a socket: their sockets were looked
    // up one by one instead of dumped (the totals above are exact through it).
    let looked_up = agent_field(&points, "netns_looked_up");
    assert!(
        looked_up.iter().any(|&n| n >= 2),
        "netns_looked_up by window: {looked_up:?}"
    );
    // A veth loses nothing, yet a tail loss probe may resend bytes on a loaded machine: they
    // show in retrans_bytes, never in bytes_sent (asserted exact above).
}

#[test]
fn kernel_a_connection_to_a_cluster_ip_has_the_service_as_its_peer() {
    let mut s = Scenario::new("svc");
    let client = s.pod("frontend", Layout::CgroupfsV2);
    let server = s.pod("backend", Layout::SystemdV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let vip = s.service("backend-svc", 80, server, 8080, client);
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "serve", "25", "300", "7000"],
    );
    let mut cli = s.start(client, &["connect", &vip, "80", "25", "300", "7000"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    let ns = s.namespace.clone();
    assert_flows(
        &flows(&s, &points),
        &[
            // The client's socket has the ClusterIP as its peer (DNAT rewrites packets, not
            // the socket): the Service, on the Service's port.
            (
                s.key(client, "service", &ns, "backend-svc", 80, "client"),
                Want {
                    connects: 25,
                    accepts: 0,
                    closes: 25,
                    bytes_sent: 25 * 300,
                    bytes_received: 25 * 7000,
                    conns: 25,
                },
            ),
            // The server sees the client pod itself.
            (
                s.to_pod(server, client, 8080, "server"),
                Want {
                    connects: 0,
                    accepts: 25,
                    closes: 25,
                    bytes_sent: 25 * 7000,
                    bytes_received: 25 * 300,
                    conns: 25,
                },
            ),
        ],
    );
}

#[test]
fn kernel_loopback_inside_a_pod_is_counted_on_both_ends() {
    let mut s = Scenario::new("lo");
    let pod = s.pod("monolith", Layout::SystemdV1);
    let mut srv = s.start(
        pod,
        &[
            "listen",
            "127.0.0.1",
            "7000",
            "serve",
            "40",
            "123",
            "4567",
            "wait2",
        ],
    );
    let mut cli = s.start(
        pod,
        &["connect", "127.0.0.1", "7000", "40", "123", "4567", "wait2"],
    );
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    // pod_io is exact when the agent samples a process after its last I/O: these exit
    // only then, as a container process reaped by its shim is counted up to then.
    finish(&agent, &mut [&mut cli, &mut srv]);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &[
            (
                s.key(pod, "loopback", "", "localhost", 7000, "client"),
                Want {
                    connects: 40,
                    accepts: 0,
                    closes: 40,
                    bytes_sent: 40 * 123,
                    bytes_received: 40 * 4567,
                    conns: 40,
                },
            ),
            (
                s.key(pod, "loopback", "", "localhost", 7000, "server"),
                Want {
                    connects: 0,
                    accepts: 40,
                    closes: 40,
                    bytes_sent: 40 * 4567,
                    bytes_received: 40 * 123,
                    conns: 40,
                },
            ),
        ],
    );
    // Both processes are the pod's: their reads and writes add up.
    assert_eq!(
        io_bytes(&s, &points, pod),
        (40 * (123 + 4567), 40 * (123 + 4567))
    );
}

#[test]
fn kernel_ipv6_connections_are_counted_exactly() {
    let mut s = Scenario::new("six");
    let client = s.pod("client6", Layout::SystemdV2);
    let server = s.pod("server6", Layout::CgroupfsV1);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip6.clone();
    let mut srv = s.start(
        server,
        &[
            "listen", &ip, "8443", "serve", "50", "2048", "65536", "wait2",
        ],
    );
    let mut cli = s.start(
        client,
        &["connect", &ip, "8443", "50", "2048", "65536", "wait2"],
    );
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    // pod_io is exact when the agent samples a process after its last I/O: these exit
    // only then, as a container process reaped by its shim is counted up to then.
    finish(&agent, &mut [&mut cli, &mut srv]);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &both_ends(&s, client, server, 8443, 50, 2048, 65536),
    );
    assert_eq!(io_bytes(&s, &points, client), (50 * 65536, 50 * 2048));
}

/// The server closes each connection first, as an HTTP server does after `Connection: close`:
/// the client's socket ends through CLOSE_WAIT and LAST_ACK.
#[test]
fn kernel_connections_the_server_closes_first_are_counted_exactly() {
    let mut s = Scenario::new("srvclose");
    let client = s.pod("caller", Layout::CgroupfsV2);
    let server = s.pod("closer", Layout::SystemdV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "reply", "200", "100", "1000"],
    );
    let mut cli = s.start(client, &["connect", &ip, "8080", "200", "100", "1000"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    cli.go();
    cli.wait_ok();
    srv.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    assert_flows(
        &flows(&s, &points),
        &both_ends(&s, client, server, 8080, 200, 100, 1000),
    );
}

/// Four processes of one pod open short connections at the same time, while a stream runs on
/// another connection of the pod: the Go load generator's pattern, where the agent counted too
/// few client connections (BENCHMARKS.md).
#[test]
fn kernel_concurrent_short_connections_beside_a_stream_are_counted_exactly() {
    let mut s = Scenario::new("busy");
    let client = s.pod("loadgen", Layout::SystemdV2);
    let server = s.pod("web", Layout::CgroupfsV2);
    s.link(Side::Pod(client), Side::Pod(server));
    let ip = s.pods[server].ip4.clone();
    let mut srv = s.start(
        server,
        &["listen", &ip, "8080", "reply", "400", "100", "1000"],
    );
    let mut sink = s.start(server, &["listen", &ip, "9000", "sink"]);
    let mut clients: Vec<Proc> = (0..4)
        .map(|_| s.start(client, &["connect", &ip, "8080", "100", "100", "1000"]))
        .collect();
    let mut stream = s.start(client, &["stream", &ip, "9000", "30", "65536", "50"]);
    let agent = Agent::start(&s, &[]);
    srv.go();
    sink.go();
    stream.go();
    for c in &clients {
        c.go();
    }
    for c in clients.iter_mut() {
        c.wait_ok();
    }
    stream.wait_ok();
    srv.wait_ok();
    sink.wait_ok();
    agent.wait_windows(2);
    let points = agent.stop();
    let mut want = both_ends(&s, client, server, 8080, 400, 100, 1000);
    let total = 30 * 65536;
    want.extend([
        (
            s.to_pod(client, server, 9000, "client"),
            Want {
                connects: 1,
                accepts: 0,
                closes: 1,
                bytes_sent: total,
                bytes_received: 0,
                conns: 1,
            },
        ),
        (
            s.to_pod(server, client, 9000, "server"),
            Want {
                connects: 0,
                accepts: 1,
                closes: 1,
                bytes_sent: 0,
                bytes_received: total,
                conns: 1,
            },
        ),
    ]);
    assert_flows(&flows(&s, &points), &want);
}

/// A namespace whose TCP counters stand still is not dumped: with idle connections held open
/// in a pod, the windows after they opened count it in `netns_quiet` (each dump walks the
/// node's whole established hash, docs/kernel-counters.md).
#[test]
fn kernel_a_namespace_whose_tcp_counters_stand_still_is_not_dumped() {
    let mut s = Scenario::new("quiet");
    let pod = s.pod("idle", Layout::CgroupfsV2);
    let holder = s.start(pod, &["listen", "127.0.0.1", "9000", "pairs", "5"]);
    let agent = Agent::start(&s, &[]);
    holder.go();
    // The pairs open within the first window; nothing moves in the pod after that.
    agent.wait_windows(4);
    let points = agent.stop();
    let quiet = agent_field(&points, "netns_quiet");
    assert!(
        quiet.last().is_some_and(|&q| q >= 1),
        "netns_quiet by window: {quiet:?}"
    );
}
