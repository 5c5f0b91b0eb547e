//! The kernel's TCP sockets of one network namespace through `NETLINK_SOCK_DIAG`: a dump of
//! every socket with its `tcp_info` (net/ipv4/inet_diag.c), and the destroy groups that report
//! the final `tcp_info` of each socket as it is freed (net/core/sock_diag.c,
//! `sock_diag_broadcast_destroy`).
use std::io;

use hashbrown::HashSet;
use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::IPPROTO_TCP;
pub use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NlAddr};

/// `include/uapi/linux/sock_diag.h`: the groups of the sockets freed in a namespace.
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

#[cfg(test)]
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_SENT: u8 = 2;
pub const TCP_SYN_RECV: u8 = 3;
pub const TCP_TIME_WAIT: u8 = 6;
pub const TCP_CLOSE_WAIT: u8 = 8;
pub const TCP_LAST_ACK: u8 = 9;
pub const TCP_LISTEN: u8 = 10;
pub const TCP_CLOSING: u8 = 11;

/// The counters of `struct tcp_info` the flow contract reads (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// `tcpi_bytes_sent`: data bytes sent, retransmissions included.
    pub bytes_sent: u64,
    /// `tcpi_bytes_retrans`.
    pub bytes_retrans: u64,
    /// `tcpi_bytes_received`: data bytes received, and a received FIN.
    pub bytes_received: u64,
    /// `tcpi_rtt`, smoothed, in microseconds.
    pub rtt_us: u32,
}

/// One socket as a dump or a destroy notification reports it.
#[derive(Debug, Clone)]
pub struct SockRecord {
    pub cookie: u64,
    pub state: u8,
    /// `AF_INET` or `AF_INET6` (an IPv6 socket may talk IPv4: its addresses are mapped, and
    /// `local` and `remote` give them canonical).
    pub family: u8,
    /// The device the socket is bound to (0: none), part of its identity in a lookup.
    pub ifindex: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// 0 in destroy notifications (the kernel fills no inode there).
    pub inode: u32,
    pub counters: Option<TcpCounters>,
}

fn record(r: &InetResponse) -> SockRecord {
    let id = &r.header.socket_id;
    let counters = r.nlas.iter().find_map(|n| match n {
        Nla::TcpInfo(t) => Some(TcpCounters {
            bytes_sent: t.bytes_sent,
            bytes_retrans: t.bytes_retrans,
            bytes_received: t.bytes_received,
            rtt_us: t.rtt,
        }),
        _ => None,
    });
    let canon = |ip: IpAddr| ip.to_canonical();
    SockRecord {
        cookie: u64::from_ne_bytes(id.cookie),
        state: r.header.state,
        family: r.header.family,
        ifindex: id.interface_id,
        local: SocketAddr::new(canon(id.source_address), id.source_port),
        remote: SocketAddr::new(canon(id.destination_address), id.destination_port),
        inode: r.header.inode,
        counters,
    }
}

/// Calls `f` for every inet response in one datagram. `Ok(true)` when the dump is done.
/// `seq`: only the answers to that request count (`None`: all, as in destroy notifications);
/// a late answer to an earlier request is skipped.
fn parse_datagram(
    mut buf: &[u8],
    seq: Option<u32>,
    f: &mut dyn FnMut(SockRecord),
) -> io::Result<bool> {
    while !buf.is_empty() {
        let msg = NetlinkMessage::<SockDiagMessage>::deserialize(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let len = msg.header.length as usize;
        let theirs = seq.is_some_and(|s| s != msg.header.sequence_number);
        match msg.payload {
            _ if theirs => {}
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => f(record(&r)),
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(e) => {
                return Err(e
                    .code
                    .map(|c| io::Error::from_raw_os_error(-c.get()))
                    .unwrap_or_else(|| io::Error::other("netlink error")));
            }
            _ => {}
        }
        if len == 0 {
            break;
        }
        // Messages in a datagram are 4-byte aligned (NLMSG_ALIGN).
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(false)
}

/// A socket that dumps the TCP sockets of the namespace it was made in, or looks them up one
/// by one.
pub struct Dumper {
    sock: Socket,
    buf: Vec<u8>,
    /// The sequence number of the last request: answers carry theirs.
    seq: u32,
}

/// How many lookups go in one datagram: their answers (about 1 KiB each as the kernel accounts
/// them) must fit the socket's receive buffer, or the kernel drops them.
const LOOKUP_BATCH: usize = 32;

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Every socket, with its counters.
    All,
    /// At least one socket was not there any more (closed since, or in `TIME_WAIT`): the
    /// namespace's set of sockets changed.
    Changed,
}

impl Dumper {
    pub fn new() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        // An answer the kernel dropped must not leave the agent waiting for ever.
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(std::time::Duration::from_secs(5)),
        )?;
        Ok(Dumper {
            sock,
            buf: vec![0; 64 * 1024],
            seq: 0,
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The current counters of `socks` (records of this namespace's earlier dumps), each found
    /// by its exact identity (addresses, ports, device and cookie: net/ipv4/inet_diag.c
    /// `inet_diag_find_one_icsk`, a hash lookup), instead of a dump's walk of the kernel's
    /// whole established hash. Calls `f` with each one found.
    pub fn lookup(
        &mut self,
        socks: &[SockRecord],
        f: &mut dyn FnMut(SockRecord),
    ) -> io::Result<Lookup> {
        let mut changed = false;
        for batch in socks.chunks(LOOKUP_BATCH) {
            let seq = self.next_seq();
            let mut out = Vec::with_capacity(batch.len() * 96);
            for r in batch {
                let mut header = NetlinkHeader::default();
                header.flags = NLM_F_REQUEST;
                header.sequence_number = seq;
                let raw = |a: SocketAddr| match (r.family, a.ip()) {
                    (AF_INET6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
                    (_, ip) => ip,
                };
                let mut packet = NetlinkMessage::new(
                    header,
                    SockDiagMessage::InetRequest(InetRequest {
                        family: r.family,
                        protocol: IPPROTO_TCP,
                        extensions: ExtensionFlags::INFO,
                        states: StateFlags::all(),
                        socket_id: SocketId {
                            source_port: r.local.port(),
                            destination_port: r.remote.port(),
                            source_address: raw(r.local),
                            destination_address: raw(r.remote),
                            interface_id: r.ifindex,
                            cookie: r.cookie.to_ne_bytes(),
                        },
                    })
                    .into(),
                );
                packet.finalize();
                let at = out.len();
                out.resize(at + packet.buffer_len(), 0);
                packet.serialize(&mut out[at..]);
            }
            self.sock.send(&out, 0)?;
            // One answer per request: the socket, or an error (ENOENT: not there).
            let mut answers = 0;
            while answers < batch.len() {
                let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
                let mut buf = &self.buf[..n];
                while !buf.is_empty() {
                    let msg = NetlinkMessage::<SockDiagMessage>::deserialize(buf)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    let len = msg.header.length as usize;
                    if msg.header.sequence_number == seq {
                        match msg.payload {
                            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                                answers += 1;
                                let rec = record(&r);
                                if rec.state == TCP_TIME_WAIT || rec.counters.is_none() {
                                    changed = true;
                                } else {
                                    f(rec);
                                }
                            }
                            NetlinkPayload::Error(_) => {
                                answers += 1;
                                changed = true;
                            }
                            _ => {}
                        }
                    }
                    if len == 0 {
                        break;
                    }
                    buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
                }
            }
        }
        Ok(if changed {
            Lookup::Changed
        } else {
            Lookup::All
        })
    }

    /// Every TCP socket of the namespace, IPv4 then IPv6, in the states `ESTABLISHED` to
    /// `CLOSING` but `TIME_WAIT` and `SYN_RECV` (no `tcp_info`; a TIME_WAIT socket's counters
    /// came with its destroy). `NEW_SYN_RECV` and `BOUND_INACTIVE` are not asked for: the
    /// latter would walk the kernel's whole bind hash too (net/ipv4/tcp_diag.c), for sockets
    /// that never move a byte.
    /// `families`: (IPv4, IPv6) to dump; a family with no socket in use is skipped, because a
    /// dump walks the whole of the kernel's established hash, shared by every namespace
    /// (net/ipv4/inet_diag.c `inet_diag_dump_icsk`), whatever it finds in this one.
    pub fn dump(
        &mut self,
        families: (bool, bool),
        f: &mut dyn FnMut(SockRecord),
    ) -> io::Result<()> {
        for (family, wanted) in [(AF_INET, families.0), (AF_INET6, families.1)] {
            if wanted {
                self.dump_family(family, f)?;
            }
        }
        Ok(())
    }

    /// The listening ports of the namespace (IPv4 and IPv6). A dump of `LISTEN` alone walks
    /// only the kernel's listening hash.
    pub fn listening_ports(&mut self) -> io::Result<HashSet<u16>> {
        let mut ports = HashSet::new();
        for family in [AF_INET, AF_INET6] {
            self.dump_states(family, 1 << TCP_LISTEN, &mut |r| {
                ports.insert(r.local.port());
            })?;
        }
        Ok(ports)
    }

    fn dump_family(&mut self, family: u8, f: &mut dyn FnMut(SockRecord)) -> io::Result<()> {
        let skip = (1u32 << TCP_TIME_WAIT) | (1 << TCP_SYN_RECV);
        // States 1 (ESTABLISHED) to 11 (CLOSING), include/net/tcp_states.h.
        let states = ((1u32 << (TCP_CLOSING + 1)) - 2) & !skip;
        self.dump_states(family, states, f)
    }

    fn dump_states(
        &mut self,
        family: u8,
        states: u32,
        f: &mut dyn FnMut(SockRecord),
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO,
                states: StateFlags::from_bits_retain(states),
                socket_id,
            })
            .into(),
        );
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            if n == 0 || parse_datagram(&self.buf[..n], Some(seq), f)? {
                return Ok(());
            }
        }
    }
}

/// A listener of the namespace's TCP destroy groups (IPv4 and IPv6).
pub struct DestroyListener {
    sock: Socket,
    buf: Vec<u8>,
}

impl std::os::fd::AsFd for DestroyListener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// What one drain of a listener found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drained {
    pub events: u64,
    /// The listener's buffer overflowed (ENOBUFS) at least once: notifications were lost.
    pub overflows: u64,
}

impl DestroyListener {
    /// `rcvbuf`: the receive buffer asked for (SO_RCVBUFFORCE with CAP_NET_ADMIN, else
    /// SO_RCVBUF within net.core.rmem_max).
    pub fn new(rcvbuf: usize) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        force_rcvbuf(&sock, rcvbuf)?;
        sock.add_membership(SKNLGRP_INET_TCP_DESTROY)?;
        sock.add_membership(SKNLGRP_INET6_TCP_DESTROY)?;
        sock.set_non_blocking(true)?;
        Ok(DestroyListener {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Everything queued now, without waiting.
    pub fn drain(&mut self, f: &mut dyn FnMut(SockRecord)) -> io::Result<Drained> {
        let mut d = Drained::default();
        loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(0) => return Ok(d),
                Ok(n) => {
                    parse_datagram(&self.buf[..n], None, &mut |r| {
                        d.events += 1;
                        f(r)
                    })?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(d),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => d.overflows += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn force_rcvbuf(sock: &Socket, bytes: usize) -> io::Result<()> {
    use rustix::net::sockopt;
    sockopt::set_socket_recv_buffer_size_force(sock, bytes)
        .or_else(|_| sockopt::set_socket_recv_buffer_size(sock, bytes))
        .map_err(io::Error::from)
}
