//! Per-socket deltas from cumulative `tcp_info` counters (DESIGN.md section 3, Counting): a
//! socket's counters now minus those at its previous observation; a destroyed socket's final
//! counters minus its last. What the kernel counts besides data is taken out: retransmitted
//! bytes from `tcpi_bytes_sent`, a received FIN from `tcpi_bytes_received` where the socket
//! shows it had one (CLOSE_WAIT, LAST_ACK, CLOSING, or destroyed with bytes received).
use std::net::SocketAddr;

use hashbrown::{HashMap, HashSet};

use super::closes::{Flow, Sums};
use super::sockdiag::{
    SockRecord, TCP_CLOSE_WAIT, TCP_CLOSING, TCP_LAST_ACK, TCP_LISTEN, TCP_SYN_SENT,
};

/// What a socket contributes to its flow in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounts {
    pub connects: u64,
    pub accepts: u64,
    pub closes: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retrans_bytes: u64,
    pub rtt_us_sum: u64,
    pub rtt_samples: u64,
}

impl FlowCounts {
    pub fn add(&mut self, o: &FlowCounts) {
        self.connects += o.connects;
        self.accepts += o.accepts;
        self.closes += o.closes;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.retrans_bytes += o.retrans_bytes;
        self.rtt_us_sum += o.rtt_us_sum;
        self.rtt_samples += o.rtt_samples;
    }

    pub fn is_zero(&self) -> bool {
        *self == FlowCounts::default()
    }
}

/// One socket's change, with what attribution needs.
#[derive(Debug, Clone)]
pub struct SocketDelta {
    pub netns: u64,
    pub cookie: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub server: bool,
    /// The socket's inode (0 when it was first seen in a destroy notification).
    pub inode: u32,
    pub counts: FlowCounts,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Data bytes sent, retransmissions, bytes received (the FIN taken out once known).
    sent: u64,
    retrans: u64,
    received: u64,
    fin: bool,
    server: bool,
    inode: u32,
    /// Its namespace's dump that last saw it.
    dump: u64,
    local: SocketAddr,
    remote: SocketAddr,
}

/// A socket gone from its namespace's dump whose close the kernel summed into its flow
/// (`closes::Closes`): what of it was counted already, to take out of the flow's sums.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    pub flow: Flow,
    pub sums: Sums,
}

fn fin_received(state: u8) -> bool {
    matches!(state, TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING)
}

/// The sockets of every namespace the agent follows, by (namespace, cookie).
#[derive(Default)]
pub struct SocketTable {
    seen: HashMap<(u64, u64), Seen>,
    /// Ports listening in each namespace, from the latest dump.
    listening: HashMap<u64, HashSet<u16>>,
    /// Namespaces whose listening ports only grow (their closes are summed in the kernel,
    /// which keys a flow's side by the ports that ever listened there).
    cumulative: HashSet<u64>,
    /// How many times each namespace was dumped. A namespace is not dumped in a pass where
    /// its TCP counters did not move, so "missing" is counted in its own dumps.
    dumps: HashMap<u64, u64>,
}

/// How a record came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A dump; `baseline`: the agent's first, a starting point only.
    Dump {
        baseline: bool,
    },
    Destroy,
}

impl SocketTable {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// A namespace's dump, whole: listening ports first (a v6 listener serves v4 peers), then
    /// each socket. `None`-returning records (listeners) are not flows.
    pub fn dump(
        &mut self,
        netns: u64,
        records: &[SockRecord],
        baseline: bool,
        out: &mut Vec<SocketDelta>,
    ) {
        let ports: HashSet<u16> = records
            .iter()
            .filter(|r| r.state == TCP_LISTEN)
            .map(|r| r.local.port())
            .collect();
        if self.cumulative.contains(&netns) {
            self.listening.entry(netns).or_default().extend(ports);
        } else {
            self.listening.insert(netns, ports);
        }
        self.seen_in(netns, records, baseline, out);
    }

    /// Ports that listen in `netns` besides those its dumps find; from now on its ports only
    /// grow.
    pub fn add_listening(&mut self, netns: u64, ports: &HashSet<u16>) {
        self.cumulative.insert(netns);
        self.listening.entry(netns).or_default().extend(ports);
    }

    /// A namespace's known sockets, each looked up (`Dumper::lookup`): a dump that found no
    /// socket opened or closed since the last (listeners included, so the listening ports are
    /// the last dump's).
    pub fn refreshed(&mut self, netns: u64, records: &[SockRecord], out: &mut Vec<SocketDelta>) {
        self.seen_in(netns, records, false, out);
    }

    fn seen_in(
        &mut self,
        netns: u64,
        records: &[SockRecord],
        baseline: bool,
        out: &mut Vec<SocketDelta>,
    ) {
        *self.dumps.entry(netns).or_default() += 1;
        for r in records.iter().filter(|r| r.state != TCP_LISTEN) {
            if let Some(d) = self.record(netns, r, Via::Dump { baseline }) {
                out.push(d);
            }
        }
    }

    /// A socket's final counters.
    pub fn destroyed(&mut self, netns: u64, r: &SockRecord) -> Option<SocketDelta> {
        if r.state == TCP_LISTEN {
            return None;
        }
        self.record(netns, r, Via::Destroy)
    }

    fn record(&mut self, netns: u64, r: &SockRecord, via: Via) -> Option<SocketDelta> {
        // A socket with no peer is a listener (a closed one reports CLOSE, not LISTEN) or one
        // that never connected: no flow.
        if r.remote.ip().is_unspecified() {
            return None;
        }
        let c = r.counters?;
        let dump = self.dumps.get(&netns).copied().unwrap_or(0);
        let destroyed = via == Via::Destroy;
        let fin_now = fin_received(r.state) || (destroyed && c.bytes_received > 0);
        let sent = c.bytes_sent.saturating_sub(c.bytes_retrans);
        let key = (netns, r.cookie);
        let mut counts = FlowCounts::default();
        let prev = self.seen.get(&key).copied();
        let (server, inode) = match prev {
            Some(s) => (s.server, s.inode),
            None => (
                self.listening
                    .get(&netns)
                    .is_some_and(|p| p.contains(&r.local.port())),
                r.inode,
            ),
        };
        let base = match prev {
            Some(s) => s,
            None if via == (Via::Dump { baseline: true }) => {
                // Bytes from before the agent started are not counted.
                Seen {
                    sent,
                    retrans: c.bytes_retrans,
                    received: c.bytes_received.saturating_sub(u64::from(fin_now)),
                    fin: fin_now,
                    server,
                    inode,
                    dump,
                    local: r.local,
                    remote: r.remote,
                }
            }
            None => {
                if server {
                    counts.accepts = 1;
                } else {
                    counts.connects = 1;
                }
                Seen {
                    sent: 0,
                    retrans: 0,
                    received: 0,
                    fin: false,
                    server,
                    inode,
                    dump,
                    local: r.local,
                    remote: r.remote,
                }
            }
        };
        let fin = base.fin || fin_now;
        let received = c.bytes_received.saturating_sub(u64::from(fin));
        counts.bytes_sent = sent.saturating_sub(base.sent);
        counts.retrans_bytes = c.bytes_retrans.saturating_sub(base.retrans);
        counts.bytes_received = received.saturating_sub(base.received);
        if destroyed {
            counts.closes = 1;
            self.seen.remove(&key);
        } else {
            if c.rtt_us > 0 && r.state != TCP_SYN_SENT {
                counts.rtt_us_sum = u64::from(c.rtt_us);
                counts.rtt_samples = 1;
            }
            self.seen.insert(
                key,
                Seen {
                    sent: sent.max(base.sent),
                    retrans: c.bytes_retrans.max(base.retrans),
                    received: received.max(base.received),
                    fin,
                    server,
                    inode: if inode == 0 { r.inode } else { inode },
                    dump,
                    local: r.local,
                    remote: r.remote,
                },
            );
        }
        (!counts.is_zero() || prev.is_none()).then_some(SocketDelta {
            netns,
            cookie: r.cookie,
            local: r.local,
            remote: r.remote,
            server,
            inode: if inode == 0 { r.inode } else { inode },
            counts,
        })
    }

    /// Forgets sockets of `netns` missing from its last two dumps with no destroy notification
    /// (a notification lost to an overflow, or a namespace gone): their final bytes are lost.
    /// Returns how many.
    pub fn sweep(&mut self, netns: Option<u64>) -> u64 {
        let before = self.seen.len();
        let dumps = &self.dumps;
        self.seen.retain(|(ns, _), s| {
            let last = dumps.get(ns).copied().unwrap_or(0);
            netns.is_some_and(|n| n != *ns) || last.saturating_sub(s.dump) < 2
        });
        (before - self.seen.len()) as u64
    }

    /// The sockets of `netns` missing from its latest dump, let go of: in a namespace whose
    /// closes the kernel sums, each was closed and its final counters are in its flow's sums;
    /// what the agent counted of it already is returned, to be taken out of them. `all`: every
    /// socket of `netns` (the namespace is gone).
    pub fn closed_in_kernel(&mut self, netns: u64, all: bool, out: &mut Vec<Counted>) {
        let last = self.dumps.get(&netns).copied().unwrap_or(0);
        self.seen.retain(|(ns, _), s| {
            if *ns != netns || (!all && s.dump >= last) {
                return true;
            }
            out.push(Counted {
                flow: Flow::of(netns, s.server, s.local, s.remote),
                sums: Sums {
                    // Its close is one of its flow's closes, but not one more connect or
                    // accept: the agent counted that when it first saw the socket, or it came
                    // before the agent (a socket of its first dump).
                    closes: 1,
                    sent: s.sent,
                    retrans: s.retrans,
                    received: s.received,
                },
            });
            false
        });
    }

    /// A namespace the agent no longer follows.
    pub fn forget(&mut self, netns: u64) -> u64 {
        self.listening.remove(&netns);
        self.cumulative.remove(&netns);
        self.dumps.remove(&netns);
        let before = self.seen.len();
        self.seen.retain(|(ns, _), _| *ns != netns);
        (before - self.seen.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::sockdiag::{TCP_ESTABLISHED, TcpCounters};
    use super::*;

    fn rec(cookie: u64, state: u8, local: u16, sent: u64, recv: u64) -> SockRecord {
        SockRecord {
            cookie,
            state,
            family: 2,
            ifindex: 0,
            local: SocketAddr::from(([10, 0, 0, 1], local)),
            remote: SocketAddr::from(([10, 0, 0, 2], 8080)),
            inode: 77,
            counters: Some(TcpCounters {
                bytes_sent: sent,
                bytes_retrans: 0,
                bytes_received: recv,
                rtt_us: 100,
            }),
        }
    }

    fn sum(out: &[SocketDelta]) -> FlowCounts {
        let mut f = FlowCounts::default();
        for d in out {
            f.add(&d.counts);
        }
        f
    }

    #[test]
    fn a_socket_gone_from_a_dump_owes_what_was_counted_of_it_to_its_flows_sums() {
        let mut t = SocketTable::default();
        let mut out = Vec::new();
        // One socket from before the agent, one opened after its first dump.
        t.dump(
            1,
            &[rec(1, TCP_ESTABLISHED, 40000, 100, 50)],
            true,
            &mut out,
        );
        t.dump(
            1,
            &[
                rec(1, TCP_ESTABLISHED, 40000, 300, 80),
                rec(2, TCP_ESTABLISHED, 40002, 7, 9),
            ],
            false,
            &mut out,
        );
        let mut counted = Vec::new();
        t.closed_in_kernel(1, false, &mut counted);
        assert!(counted.is_empty(), "both still in the latest dump");
        t.dump(1, &[], false, &mut out);
        t.closed_in_kernel(1, false, &mut counted);
        counted.sort_by_key(|c| c.sums.sent);
        let flow = Flow::of(
            1,
            false,
            SocketAddr::from(([10, 0, 0, 1], 40000)),
            SocketAddr::from(([10, 0, 0, 2], 8080)),
        );
        let got: Vec<(Flow, Sums)> = counted.iter().map(|c| (c.flow, c.sums)).collect();
        // The client's ports are left out: both sockets are the one flow to 10.0.0.2:8080. Each
        // close is a close of the flow, not another connect (the first socket's came before
        // the agent, the second's was counted when it was first seen).
        assert_eq!(
            got,
            [
                (
                    flow,
                    Sums {
                        closes: 1,
                        sent: 7,
                        retrans: 0,
                        received: 9,
                    }
                ),
                (
                    flow,
                    Sums {
                        closes: 1,
                        sent: 300,
                        retrans: 0,
                        received: 80,
                    }
                ),
            ]
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_client_socket_is_counted_across_dumps_and_its_destroy() {
        let mut t = SocketTable::default();
        let mut out = Vec::new();
        t.dump(1, &[], true, &mut out);
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 1000, 300)],
            false,
            &mut out,
        );
        let first = sum(&out);
        assert_eq!(
            (first.connects, first.bytes_sent, first.bytes_received),
            (1, 1000, 300)
        );
        // Closed: 500 more sent, 200 more received, and the peer's FIN.
        let d = t.destroyed(1, &rec(5, 7, 40000, 1500, 501)).unwrap();
        assert_eq!(
            (
                d.counts.closes,
                d.counts.bytes_sent,
                d.counts.bytes_received
            ),
            (1, 500, 200)
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn sockets_at_the_baseline_count_only_what_follows() {
        let mut t = SocketTable::default();
        let mut out = Vec::new();
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 7000, 9000)],
            true,
            &mut out,
        );
        let s = sum(&out);
        // Only its round-trip time is a sample of this pass.
        assert_eq!(
            (s.connects, s.bytes_sent, s.bytes_received, s.rtt_samples),
            (0, 0, 0, 1)
        );
        out.clear();
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 7010, 9020)],
            false,
            &mut out,
        );
        let s = sum(&out);
        assert_eq!((s.connects, s.bytes_sent, s.bytes_received), (0, 10, 20));
    }

    #[test]
    fn a_server_socket_is_an_accept_on_its_listening_port() {
        let mut t = SocketTable::default();
        let mut out = Vec::new();
        let listener = rec(1, TCP_LISTEN, 8080, 0, 0);
        let mut accepted = rec(2, TCP_ESTABLISHED, 8080, 10, 20);
        accepted.remote = SocketAddr::from(([10, 0, 0, 3], 51000));
        t.dump(1, &[accepted, listener], false, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].server);
        assert_eq!(out[0].counts.accepts, 1);
    }

    #[test]
    fn a_fin_is_taken_out_once() {
        let mut t = SocketTable::default();
        let mut out = Vec::new();
        t.dump(1, &[], true, &mut out);
        // CLOSE_WAIT: 100 data bytes and the FIN received.
        t.dump(1, &[rec(5, TCP_CLOSE_WAIT, 40000, 0, 101)], false, &mut out);
        assert_eq!(sum(&out).bytes_received, 100);
        let d = t.destroyed(1, &rec(5, 7, 40000, 0, 101)).unwrap();
        assert_eq!(d.counts.bytes_received, 0);
    }

    #[test]
    fn a_socket_born_and_gone_between_dumps_counts_whole_from_its_destroy() {
        let mut t = SocketTable::default();
        t.dump(1, &[], true, &mut Vec::new());
        let d = t.destroyed(1, &rec(9, 7, 40001, 1000, 5001)).unwrap();
        assert_eq!(
            (
                d.counts.connects,
                d.counts.closes,
                d.counts.bytes_sent,
                d.counts.bytes_received
            ),
            (1, 1, 1000, 5000)
        );
    }

    #[test]
    fn sockets_missing_from_two_dumps_are_swept_as_lost() {
        let mut t = SocketTable::default();
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 0, 0)],
            true,
            &mut Vec::new(),
        );
        t.dump(1, &[], false, &mut Vec::new());
        assert_eq!(t.sweep(Some(1)), 0);
        t.dump(1, &[], false, &mut Vec::new());
        assert_eq!(t.sweep(Some(1)), 1);
    }

    #[test]
    fn a_namespace_that_is_not_dumped_keeps_its_sockets() {
        let mut t = SocketTable::default();
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 0, 0)],
            true,
            &mut Vec::new(),
        );
        t.dump(2, &[], true, &mut Vec::new());
        // Namespace 2 is dumped twice more; namespace 1, quiet, is not.
        for _ in 0..2 {
            t.dump(2, &[], false, &mut Vec::new());
            assert_eq!(t.sweep(None), 0);
        }
        assert_eq!(t.len(), 1);
        let mut out = Vec::new();
        t.dump(
            1,
            &[rec(5, TCP_ESTABLISHED, 40000, 10, 20)],
            false,
            &mut out,
        );
        let s = sum(&out);
        assert_eq!((s.connects, s.bytes_sent, s.bytes_received), (0, 10, 20));
    }
}
