//! The flow contract's rules: which kind of peer an address is, role and port of a socket,
//! and which bytes an event counts.
use std::net::IpAddr;

use super::index::Index;
use super::tags::{PeerRef, peer_tags};

/// What a kprobe event does, by its function name; `None` for functions the policies do not
/// produce (those events are `ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Connect,
    Close,
    Send,
    Recv,
    Read,
    Write,
}

impl Op {
    pub fn from_function(name: &str) -> Option<Op> {
        Some(match name {
            "tcp_connect" => Op::Connect,
            "tcp_close" => Op::Close,
            "tcp_sendmsg" => Op::Send,
            "tcp_recvmsg" => Op::Recv,
            _ => {
                // Syscalls carry an architecture prefix: __x64_sys_read, __arm64_sys_write.
                let bare = match name.strip_prefix("__") {
                    Some(rest) => rest.split_once('_').map_or(name, |(_, sys)| sys),
                    None => name,
                };
                match bare {
                    "sys_read" => Op::Read,
                    "sys_write" => Op::Write,
                    _ => return None,
                }
            }
        })
    }

    pub fn is_tcp(self) -> bool {
        matches!(self, Op::Connect | Op::Close | Op::Send | Op::Recv)
    }
}

/// Bytes an event counts: the return value when present (negative = 0 bytes), else the size
/// argument. `None` when the event carries neither (it misses a field its kind needs).
pub fn bytes(ret: Option<i64>, size: Option<u64>) -> Option<u64> {
    match ret {
        Some(r) => Some(u64::try_from(r).unwrap_or(0)),
        None => size,
    }
}

pub const ROLE_CLIENT: u8 = 0;
pub const ROLE_SERVER: u8 = 1;

/// Role and port tag of a socket. 0 = no port tag.
pub fn role_port(op: Op, sport: u16, dport: u16) -> (u8, u16) {
    const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;
    if op != Op::Connect && EPHEMERAL.contains(&dport) && !EPHEMERAL.contains(&sport) {
        (ROLE_SERVER, sport)
    } else {
        (ROLE_CLIENT, dport)
    }
}

/// RFC 1918, RFC 4193 (fc00::/7) and RFC 6598 (100.64.0.0/10) addresses.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Classifies a remote address in the contract's order: loopback, Service ClusterIP, pod IP
/// (non-hostNetwork), node address, private-but-unknown, external.
pub fn classify_peer(ix: &Index, ip: IpAddr, time: Option<i64>) -> PeerRef {
    if ip.is_loopback() {
        PeerRef::Loopback
    } else if let Some(s) = ix.service_at(&ip) {
        PeerRef::Service(ix.service_ref(s))
    } else if let Some(p) = ix.pod_at(&ip, time) {
        PeerRef::Workload(ix.workload_ref(ix.pods[p as usize].peer))
    } else if let Some(n) = ix.node_at(&ip) {
        PeerRef::Node(ix.node_ref(n))
    } else if is_private(&ip) {
        PeerRef::Unresolved(ip)
    } else {
        PeerRef::External(ip)
    }
}

/// The tag text of a peer reference.
pub fn render_peer(ix: &Index, peer: &PeerRef) -> Box<str> {
    let get = |v: &[(Box<str>, Box<str>)], i: u32| v.get(i as usize).cloned().unwrap_or_default();
    match *peer {
        PeerRef::Loopback => peer_tags("loopback", "", "localhost"),
        PeerRef::Service(r) => {
            let (ns, name) = get(&ix.services, r.id);
            peer_tags("service", &ns, &name)
        }
        PeerRef::Workload(r) => {
            let (ns, name) = get(&ix.workloads, r.id);
            peer_tags("pod", &ns, &name)
        }
        PeerRef::Node(r) => {
            let name = ix.nodes.get(r.id as usize).cloned().unwrap_or_default();
            peer_tags("node", "", &name)
        }
        PeerRef::Unresolved(ip) => peer_tags("unresolved", "", &ip.to_string()),
        PeerRef::External(ip) => peer_tags("external", "", &ip.to_string()),
        PeerRef::Other => peer_tags("other", "", "other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert_eq!(Op::from_function("__x64_sys_read"), Some(Op::Read));
        assert_eq!(Op::from_function("__arm64_sys_write"), Some(Op::Write));
        assert_eq!(Op::from_function("sys_write"), Some(Op::Write));
        assert_eq!(Op::from_function("__x64_sys_setns"), None);
        assert_eq!(Op::from_function("tcp_v4_rcv"), None);
        assert_eq!(Op::from_function("__"), None);
    }

    #[test]
    fn roles_and_ports() {
        assert_eq!(role_port(Op::Send, 8080, 40000), (ROLE_SERVER, 8080));
        assert_eq!(role_port(Op::Send, 40000, 8080), (ROLE_CLIENT, 8080));
        assert_eq!(role_port(Op::Send, 40000, 50000), (ROLE_CLIENT, 50000));
        assert_eq!(role_port(Op::Connect, 8080, 40000), (ROLE_CLIENT, 40000));
        assert_eq!(role_port(Op::Recv, 61000, 32768), (ROLE_SERVER, 61000));
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "fd00::1",
            "fc00::1",
        ] {
            assert!(is_private(&ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "100.128.0.1",
            "172.32.0.1",
            "8.8.8.8",
            "2001:4860::8888",
            "fe80::1",
        ] {
            assert!(!is_private(&ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn bytes_rules() {
        assert_eq!(bytes(Some(-11), Some(100)), Some(0));
        assert_eq!(bytes(Some(0), Some(100)), Some(0));
        assert_eq!(bytes(Some(7), Some(100)), Some(7));
        assert_eq!(bytes(None, Some(100)), Some(100));
        assert_eq!(bytes(None, None), None);
    }
}
