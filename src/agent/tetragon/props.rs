//! Property tests: whatever the lines, the agent never panics and its counters add up.
use proptest::prelude::*;

use crate::agent::cluster::index::Index;
use crate::agent::pipeline::{Agent, Limits};

/// kovenant-tcp's `tcp_connect`: the socket is argument 0.
const CONNECT: &str = r#"{"process_kprobe":{"process":{"pid":312484,"pod":{"namespace":"team-3","name":"auth-0","pod_labels":{"app.kubernetes.io/instance":"shop-3","app.kubernetes.io/managed-by":"Helm"},"workload":"auth","workload_kind":"StatefulSet"}},"function_name":"tcp_connect","args":[{"sock_arg":{"family":"AF_INET","state":"TCP_SYN_SENT","saddr":"10.244.1.64","daddr":"10.244.2.9","sport":38281,"dport":8080,"cookie":"2791016250064148286"}}],"action":"KPROBE_ACTION_POST","policy_name":"kovenant-tcp"},"node_name":"node-1","time":"2026-01-01T00:00:00.030038622Z"}"#;
/// kovenant-tcp's `inet_csk_accept`: the socket is the return value.
const ACCEPT: &str = r#"{"process_kprobe":{"process":{"pid":312484,"pod":{"namespace":"team-3","name":"auth-0","pod_labels":{"app.kubernetes.io/instance":"shop-3","app.kubernetes.io/managed-by":"Helm"},"workload":"auth","workload_kind":"StatefulSet"}},"function_name":"inet_csk_accept","return":{"sock_arg":{"family":"AF_INET","state":"TCP_ESTABLISHED","saddr":"10.244.1.64","daddr":"10.244.2.9","sport":8080,"dport":51234,"cookie":"2791016250064148287"}},"action":"KPROBE_ACTION_POST","policy_name":"kovenant-tcp","return_action":"KPROBE_ACTION_POST"},"node_name":"node-1","time":"2026-01-01T00:00:00.040038622Z"}"#;
/// The retired kovenant-io policy's per-call `sys_write`: still parsed, now ignored.
const WRITE: &str = r#"{"process_kprobe":{"process":{"pid":7},"function_name":"__x64_sys_write","args":[{"int_arg":1},{"size_arg":"512"}],"return":{"long_arg":"-11"}},"node_name":"node-0","time":"2026-01-01T00:01:00Z"}"#;
const EXEC: &str =
    r#"{"process_exec":{"process":{"pid":1}},"node_name":"node-0","time":"2026-01-01T00:00:01Z"}"#;

fn mangle(line: &str, cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    let mut b = line.as_bytes().to_vec();
    for &(at, v) in flips {
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = v;
        }
    }
    b.truncate(cut.min(b.len()));
    b
}

/// An agent with no cluster knowledge and 10 s windows.
fn agent(max_keys: usize, top_peers: usize) -> Agent {
    let limits = Limits {
        max_keys,
        top_peers,
        pod_activity: false,
    };
    Agent::new(Index::default(), 10_000_000_000, limits, "n")
}

fn run(lines: &[Vec<u8>]) -> (crate::agent::aggregate::Stats, String) {
    let mut agent = agent(8, 0);
    let mut out = Vec::new();
    for l in lines {
        let clean: Vec<u8> = l.iter().copied().filter(|&c| c != b'\n').collect();
        agent.feed(&clean, &mut out).expect("writing to a Vec");
    }
    agent.flush(&mut out).expect("writing to a Vec");
    (
        agent.totals(),
        String::from_utf8(out).expect("line protocol is UTF-8"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_stop_the_agent(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..50)) {
        let (t, _) = run(&lines);
        prop_assert_eq!(t.lines, lines.len() as u64);
        prop_assert_eq!(t.events + t.bad_lines, t.lines);
    }

    #[test]
    fn mangled_events_are_counted_once(
        picks in prop::collection::vec((0usize..3, 0usize..700, prop::collection::vec((any::<usize>(), any::<u8>()), 0..3)), 1..60)
    ) {
        let base = [CONNECT, WRITE, EXEC];
        let lines: Vec<Vec<u8>> = picks.iter().map(|(w, cut, flips)| mangle(base[*w], *cut, flips)).collect();
        let (t, out) = run(&lines);
        prop_assert_eq!(t.lines, lines.len() as u64);
        prop_assert_eq!(t.events + t.bad_lines, t.lines);
        prop_assert!(t.ignored <= t.events);
        // Every written window carries its self-metrics, and they add up to the totals.
        let sum: u64 = out.lines().filter(|l| l.starts_with("kovenant_agent")).map(|l| {
            let f = l.split(' ').nth(1).unwrap_or("");
            f.split(',').find_map(|kv| kv.strip_prefix("tetragon_lines=")).and_then(|v| v.trim_end_matches('i').parse::<u64>().ok()).unwrap_or(0)
        }).sum();
        prop_assert_eq!(sum, t.lines);
        // At most 8 keys (+ the overflow allowance) per window, however many sources.
        prop_assert!(out.lines().filter(|l| !l.starts_with("kovenant_agent")).count() <= (8 + 16 + 2) * 8);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fast scanner either gives up or says exactly what serde says.
    #[test]
    fn the_fast_scanner_agrees_with_serde(
        w in 0usize..4, cut in 0usize..700, flips in prop::collection::vec((any::<usize>(), prop::sample::select(b"{}[]\",:0123456789 -.eEnulltrue\\az".to_vec())), 0..4)
    ) {
        let line = mangle([CONNECT, WRITE, EXEC, ACCEPT][w], cut, &flips);
        if let Ok(text) = std::str::from_utf8(&line)
            && let Some(fast) = crate::agent::tetragon::scan::scan(text)
        {
            prop_assert_eq!(Some(fast), crate::agent::tetragon::parse_line_serde(&line));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// With the pod memo warm (the clean line read first), mangled lines still get exactly
    /// serde's answer: a hit only when the pod object's bytes are the same.
    #[test]
    fn the_pod_memo_agrees_with_serde(
        lines in prop::collection::vec((0usize..700, prop::collection::vec((any::<usize>(), prop::sample::select(b"{}[]\",:0123456789 -.eEnulltrue\\az".to_vec())), 0..3)), 1..8)
    ) {
        let mut memo = crate::agent::tetragon::scan_cache::PodMemo::default();
        let mut feed = |line: &[u8]| -> Result<(), TestCaseError> {
            if let Ok(text) = std::str::from_utf8(line) {
                let mut env = crate::agent::tetragon::event::Envelope::default();
                if crate::agent::tetragon::scan::scan_into(text, &mut env, &mut memo).is_some() {
                    prop_assert_eq!(Some(env), crate::agent::tetragon::parse_line_serde(line));
                }
            }
            Ok(())
        };
        feed(CONNECT.as_bytes())?;
        for (cut, flips) in &lines {
            feed(&mangle(CONNECT, *cut, flips))?;
            feed(CONNECT.as_bytes())?;
        }
    }
}

#[test]
fn the_fast_scanner_takes_the_usual_lines() {
    for line in [
        CONNECT,
        ACCEPT,
        WRITE,
        EXEC,
        r#"{"process_kprobe":null}"#,
        "{}",
        r#" {"time":null,"x":[1,-2.5e3,true,{"a":"\u00e9\n"}]} "#,
    ] {
        let fast = crate::agent::tetragon::scan::scan(line);
        assert!(fast.is_some(), "{line}");
        assert_eq!(
            fast,
            crate::agent::tetragon::parse_line_serde(line.as_bytes()),
            "{line}"
        );
    }
    for odd in [
        r#"{"process_kprobe":{"function_name":"a","function_name":"b"}}"#,
        "[1]",
        r#"{"time":"\u0041"}"#,
        "{\"a\":1}x",
    ] {
        assert!(crate::agent::tetragon::scan::scan(odd).is_none(), "{odd}");
    }
}

#[test]
fn unmangled_events_are_counted_as_the_contract_says() {
    let lines: Vec<Vec<u8>> = [CONNECT, ACCEPT, WRITE, EXEC, ""]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let (t, out) = run(&lines);
    assert_eq!(
        (
            t.lines,
            t.events,
            t.bad_lines,
            t.ignored,
            t.unresolved_peers
        ),
        (5, 4, 1, 2, 2)
    );
    let src = "src_kind=StatefulSet,src_namespace=team-3,src_pod=auth-0,src_release=shop-3,src_workload=auth";
    let peer = "tcp_flow,node=node-1,peer_name=10.244.2.9,peer_type=unresolved";
    let zero = "closes=0i,bytes_sent=0i,bytes_received=0i,retrans_bytes=0i,rtt_us_sum=0i,\
                rtt_samples=0i 1767225600000000000\n";
    // A client of the remote port, a server of the local one; no bytes without the kernel.
    let client = format!("{peer},port=8080,role=client,{src} connects=1i,accepts=0i,{zero}");
    let server = format!("{peer},port=8080,role=server,{src} connects=0i,accepts=1i,{zero}");
    assert!(out.contains(&client), "{out}");
    assert!(out.contains(&server), "{out}");
    assert_eq!(
        out.lines().count(),
        3,
        "two flows and the self-metrics: {out}"
    );
}

/// `--top-peers`: per workload and window, the busiest IP-named peers keep their address; the
/// rest, and any peer under 1% of the workload's bytes to such peers, become `other` of their
/// type, with no port. Totals are unchanged. The bytes are the kernel's counters, added to the
/// window as a kernel pass adds them.
#[test]
fn top_peers_folds_the_long_tail_of_addresses() {
    use crate::agent::aggregate::tags::{SrcValues, peer_tags};
    use crate::agent::aggregate::{Aggregator, FlowCounts, FlowKey};
    let mut agg = Aggregator::new(10_000_000_000, 100, 3, "node-1");
    let mut out = Vec::new();
    agg.advance(Some(1_767_225_600_000_000_000), || 0, &mut out)
        .expect("writing to a Vec");
    let mut add = |pod: &str, kind: &'static str, ip: &str, port: u16, received: u64| {
        let values = SrcValues {
            node: "node-1",
            namespace: "team-3",
            workload: "auth",
            kind: "StatefulSet",
            pod,
            release: "shop-3",
        };
        let src = agg.tags.intern_src(values.tags(), None);
        let peer = agg
            .tags
            .intern_peer_text(peer_tags(kind, "", ip), Some(kind));
        let key = FlowKey {
            src,
            peer,
            port,
            role: crate::agent::attribution::ROLE_CLIENT,
        };
        let counts = FlowCounts {
            bytes_received: received,
            ..FlowCounts::default()
        };
        agg.add_flow(key, &counts);
    };
    // Two pods of one workload: five external addresses with 5..1 x 10,000 bytes, a sixth
    // with 10 bytes (0.007%), and an unresolved one.
    for (i, ip) in [
        "140.82.0.1",
        "140.82.0.2",
        "140.82.0.3",
        "140.82.0.4",
        "140.82.0.5",
    ]
    .iter()
    .enumerate()
    {
        let pod = if i % 2 == 0 { "auth-0" } else { "auth-1" };
        add(pod, "external", ip, 443, (5 - i as u64) * 10_000);
    }
    add("auth-1", "external", "140.82.0.6", 80, 10);
    add("auth-0", "unresolved", "10.243.0.9", 8443, 500);
    agg.flush(0, &mut out).expect("writing to a Vec");
    let out = String::from_utf8(out).expect("UTF-8");
    let peer = |l: &str| {
        let tags = l.split(' ').next().unwrap_or_default();
        let get = |k: &str| {
            tags.split(',')
                .find_map(|t| t.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_string()
        };
        let bytes: u64 = l
            .split("bytes_received=")
            .nth(1)
            .and_then(|v| v.split('i').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (get("peer_type"), get("peer_name"), get("port"), bytes)
    };
    let mut got: Vec<_> = out
        .lines()
        .filter(|l| l.starts_with("tcp_flow,"))
        .map(peer)
        .collect();
    got.sort();
    let s = |t: &str, n: &str, p: &str, b: u64| (t.to_string(), n.to_string(), p.to_string(), b);
    assert_eq!(
        got,
        vec![
            s("external", "140.82.0.1", "443", 50_000),
            s("external", "140.82.0.2", "443", 40_000),
            s("external", "140.82.0.3", "443", 30_000),
            // 140.82.0.4, .5 (beyond the workload's top 3) and .6 (under 1%), portless, in
            // their own pod's key: auth-0's .5, auth-1's .4 and .6.
            s("external", "other", "", 10_000),
            s("external", "other", "", 20_000 + 10),
            // 500 of 150,510 bytes: under 1%.
            s("unresolved", "other", "", 500),
        ],
        "{out}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The scanner reading a line where it starts in a longer text stops where it stops on the
    /// line alone, with the same answer: it never reads past the newline.
    #[test]
    fn the_scanner_reads_no_further_than_its_line(
        w in 0usize..3, cut in 0usize..700, flips in prop::collection::vec((any::<usize>(), prop::sample::select(b"{}[]\",:0123456789 -.eEnulltrue\\az\r\t".to_vec())), 0..4),
        next in 0usize..3, spaces in 0usize..3,
    ) {
        let mut line = mangle([CONNECT, WRITE, EXEC][w], cut, &flips);
        line.extend(std::iter::repeat_n(b' ', spaces));
        let mut text = line.clone();
        text.push(b'\n');
        text.extend_from_slice([CONNECT, WRITE, EXEC][next].as_bytes());
        if let (Ok(alone), Ok(text)) = (std::str::from_utf8(&line), std::str::from_utf8(&text)) {
            let mut memo = crate::agent::tetragon::scan_cache::PodMemo::default();
            let mut env = crate::agent::tetragon::event::Envelope::default();
            let whole = crate::agent::tetragon::scan::scan_into(alone, &mut env, &mut memo).map(|()| env);
            let mut env = crate::agent::tetragon::event::Envelope::default();
            let at = crate::agent::tetragon::scan::scan_prefix(text, &mut env, &mut memo);
            let took = at.filter(|&n| text.as_bytes()[n] == b'\n').map(|_| env);
            prop_assert_eq!(took, whole);
            prop_assert!(at.is_none_or(|n| n <= line.len()));
        }
    }

    /// A stream cut into chunks anywhere gives what its lines give fed one by one: the same
    /// counters and the same points.
    #[test]
    fn chunked_streams_count_as_their_lines(
        picks in prop::collection::vec((0usize..4, 0usize..700, prop::collection::vec((any::<usize>(), any::<u8>()), 0..2), prop::sample::select(vec!["", "", " ", "  x", "}", "\r", "\t"])), 1..40),
        cuts in prop::collection::vec(0usize..4000, 0..12),
        max_line in prop::sample::select(vec![300usize, 1 << 20]),
    ) {
        let base = [CONNECT, WRITE, EXEC, ACCEPT];
        // (Points are compared as sets: a window's points come in the order of its hash map.)
        // The fourth pick is the clean ACCEPT line: most lines of a real stream are usual.
        // What follows the event on its line: nothing, spaces, or what makes it not JSON.
        let lines: Vec<Vec<u8>> = picks.iter().map(|(w, cut, flips, after)| {
            let flips: &[(usize, u8)] = if *w == 3 { &[] } else { flips };
            let cut = if *w == 3 { usize::MAX } else { *cut };
            let mut l = mangle(base[*w], cut, flips);
            l.extend_from_slice(after.as_bytes());
            l.into_iter().filter(|&c| c != b'\n').collect()
        }).collect();
        let stream: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();

        let mut one = agent(8, 0);
        let mut want = Vec::new();
        for l in &lines {
            if l.len() > max_line {
                one.bad_line();
            } else {
                one.feed(l, &mut want).expect("writing to a Vec");
            }
        }
        one.flush(&mut want).expect("writing to a Vec");

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut d = crate::agent::tetragon::driver::Driver::new(agent(8, 0), Vec::new(), stop, None, std::time::Duration::from_secs(10));
        d.set_max_line(max_line);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            d.chunk(&stream[from..c]).expect("writing to a Vec");
            from = c;
        }
        d.end_of_stream().expect("writing to a Vec");
        d.agent.flush(&mut d.out).expect("writing to a Vec");
        prop_assert_eq!(d.agent.totals(), one.totals());
        let strip = |o: &[u8]| String::from_utf8(o.to_vec()).expect("UTF-8").lines()
            .filter(|l| !l.starts_with("kovenant_agent")).map(str::to_owned).collect::<std::collections::BTreeSet<_>>();
        prop_assert_eq!(strip(&d.out), strip(&want));
    }
}
