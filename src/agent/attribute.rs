//! The flow contract's rules: which kind of peer an address is, role and port of a socket,
//! and which bytes an event counts.
use std::net::IpAddr;

use super::index::Index;
use super::tags::{PeerRef, peer_tags};

/// What a kovenant-tcp event says, by its function name; `None` for functions the policy does
/// not hook (those events are `ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `tcp_connect`: a process of the host namespace opened a client socket (arg 0).
    Connect,
    /// `inet_csk_accept`: it accepted a server socket (the return value).
    Accept,
}

impl Op {
    pub fn from_function(name: &str) -> Option<Op> {
        match name {
            "tcp_connect" => Some(Op::Connect),
            "inet_csk_accept" => Some(Op::Accept),
            _ => None,
        }
    }
}

pub const ROLE_CLIENT: u8 = 0;
pub const ROLE_SERVER: u8 = 1;

/// Role and port tag of a socket opened by `op`: an accepted socket serves its local port, a
/// connected one is a client of its remote port.
pub fn role_port(op: Op, sport: u16, dport: u16) -> (u8, u16) {
    match op {
        Op::Accept => (ROLE_SERVER, sport),
        Op::Connect => (ROLE_CLIENT, dport),
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
        assert_eq!(Op::from_function("tcp_connect"), Some(Op::Connect));
        assert_eq!(Op::from_function("inet_csk_accept"), Some(Op::Accept));
        // The retired per-call hooks are not kovenant's any more.
        for f in [
            "tcp_sendmsg",
            "tcp_recvmsg",
            "__x64_sys_read",
            "tcp_close",
            "__",
        ] {
            assert_eq!(Op::from_function(f), None, "{f}");
        }
    }

    #[test]
    fn roles_and_ports() {
        assert_eq!(role_port(Op::Accept, 8080, 40000), (ROLE_SERVER, 8080));
        assert_eq!(role_port(Op::Connect, 40000, 8080), (ROLE_CLIENT, 8080));
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
}
