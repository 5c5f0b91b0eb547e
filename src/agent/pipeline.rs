//! One line in, counters updated: parse, classify, attribute, aggregate. No I/O but the
//! writer the finished windows go to.
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;

use super::aggregate::{Aggregator, FlowKey, Stats};
use super::attribute::{Op, bytes, classify_peer, render_peer, role_port};
use super::event::{Envelope, Kprobe, parse_line};
use super::index::{Delta, Index};
use super::owners::release_from_labels;
use super::scalars::FlexU64;
use super::scan::scan_prefix;
use super::scan_cache::PodMemo;
use super::tags::{PeerRef, SrcRef, SrcValues};
use super::time::parse_rfc3339_ns;

/// The wall clock, in ns since the epoch.
pub fn wall_ns() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// What bounds a window's output: live keys, and IP-named peers kept by name per workload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_keys: usize,
    /// 0: every peer keeps its name.
    pub top_peers: usize,
}

/// The agent's state: the index it attributes with and the open window.
pub struct Agent {
    index: Index,
    agg: Aggregator,
    default_node: Arc<str>,
    node_syms: HashMap<Box<str>, u32>,
    pod_memo: PodMemo,
}

impl Agent {
    pub fn new(index: Index, window_ns: i64, limits: Limits, node: &str) -> Self {
        Agent {
            index,
            agg: Aggregator::new(window_ns, limits.max_keys, limits.top_peers, node),
            default_node: node.into(),
            node_syms: HashMap::new(),
            pod_memo: PodMemo::default(),
        }
    }

    /// Applies a change the live watches saw, between lines. Keys already counted keep their
    /// tags: the tag caches hold versioned ids (`index::Ref`), which a change never makes
    /// stand for another object.
    pub fn apply(&mut self, delta: Delta) {
        self.index.apply(delta);
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn has_open_window(&self) -> bool {
        self.agg.open.is_some()
    }

    /// Whether anything was counted since the last written window.
    pub fn has_pending(&self) -> bool {
        self.agg.stats != Stats::default()
    }

    /// The counters of the open window, for what the sources count (rotation, truncation).
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.agg.stats
    }

    /// Whether the wall clock is `grace` past the end of the open window.
    pub fn open_window_end_passed(&self, grace: std::time::Duration) -> bool {
        let grace = i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
        self.agg
            .open_end()
            .is_some_and(|end| wall_ns() >= end.saturating_add(grace))
    }

    /// Counts a line that was too long to keep; it is bad by definition.
    pub fn bad_line(&mut self) {
        self.agg.stats.lines += 1;
        self.agg.stats.bad_lines += 1;
    }

    /// Line counters since the start (written windows and the open one).
    pub fn totals(&self) -> Stats {
        self.agg.totals()
    }

    /// Takes one line (without its newline). Only a failing writer is an error.
    pub fn feed(&mut self, line: &[u8], out: &mut dyn Write) -> io::Result<()> {
        let mut env = Envelope::default();
        if !parse_line(line, &mut env, &mut self.pod_memo) {
            self.bad_line();
            return Ok(());
        }
        self.count(&env, out)
    }

    /// `feed` for the line at the start of `text` (UTF-8 that may go on past the line), when the
    /// fast scanner takes it whole, with nothing but spaces after the event and then a newline,
    /// at most `max` bytes before it: that line's length with its newline. `None` (nothing
    /// counted): the line is to be fed on its own.
    pub fn feed_prefix(
        &mut self,
        text: &str,
        max: usize,
        out: &mut dyn Write,
    ) -> io::Result<Option<usize>> {
        let mut env = Envelope::default();
        match scan_prefix(text, &mut env, &mut self.pod_memo) {
            Some(end) if end <= max && text.as_bytes().get(end) == Some(&b'\n') => {
                self.count(&env, out)?;
                Ok(Some(end + 1))
            }
            _ => Ok(None),
        }
    }

    fn count(&mut self, env: &Envelope<'_>, out: &mut dyn Write) -> io::Result<()> {
        match classify(env) {
            Kind::Bad => self.bad_line(),
            Kind::Ignored => {
                self.agg.stats.lines += 1;
                self.agg.stats.events += 1;
                self.agg.stats.ignored += 1;
            }
            Kind::Counted(k, op, bytes, peer) => {
                let time = env.time.as_ref().and_then(|t| parse_rfc3339_ns(t.as_str()));
                // First move the window, so this line counts in the one it belongs to.
                self.agg.advance(time, wall_ns, out)?;
                self.agg.stats.lines += 1;
                self.agg.stats.events += 1;
                let fallback;
                let node = match env.node_name.as_ref() {
                    Some(n) => n.as_str(),
                    None => {
                        fallback = Arc::clone(&self.default_node);
                        &*fallback
                    }
                };
                let src = self.source(k, node);
                match (op, peer) {
                    (Op::Read | Op::Write, _) => self.agg.add_io(src, op == Op::Write, bytes),
                    (_, Some((ip, sport, dport))) => {
                        let peer = self.peer(ip, time);
                        let (role, port) = role_port(op, sport, dport);
                        self.agg.add_flow(
                            FlowKey {
                                src,
                                peer,
                                port,
                                role,
                            },
                            op,
                            bytes,
                        );
                    }
                    (_, None) => {}
                }
            }
        }
        Ok(())
    }

    fn node_sym(&mut self, node: &str) -> u32 {
        if let Some(&s) = self.node_syms.get(node) {
            return s;
        }
        if self.node_syms.len() > 65_536 {
            self.node_syms.clear();
            self.agg.tags.forget_refs();
        }
        let s = self.node_syms.len() as u32;
        self.node_syms.insert(node.into(), s);
        s
    }

    fn source(&mut self, k: &Kprobe<'_>, node: &str) -> u32 {
        let pod = k.process.as_ref().and_then(|p| p.pod.as_ref());
        let name =
            pod.and_then(|p| Some((p.namespace.as_ref()?.as_str(), p.name.as_ref()?.as_str())));
        let node_sym = self.node_sym(node);
        let r = match name {
            Some((ns, name)) => match self.index.pod(ns, name) {
                Some(pod) => SrcRef::Pod {
                    pod: self.index.pod_ref(pod),
                    node: node_sym,
                },
                None if self.agg.tags_full() => return self.agg.overflow(),
                None => {
                    // A pod the index does not know: Tetragon's own fields say what it is.
                    let p = pod.map(|p| {
                        (
                            p.workload.as_ref(),
                            p.workload_kind.as_ref(),
                            p.pod_labels.as_ref(),
                        )
                    });
                    let (workload, kind, labels) = p.unwrap_or_default();
                    let release = labels.and_then(|l| {
                        release_from_labels(
                            l.instance.as_ref().map(|s| s.as_str()),
                            l.managed_by.as_ref().map(|s| s.as_str()),
                        )
                    });
                    let values = SrcValues {
                        node,
                        namespace: ns,
                        workload: workload.map_or(name, |w| w.as_str()),
                        kind: kind.map_or("Pod", |k| k.as_str()),
                        pod: name,
                        release: release.as_deref().unwrap_or(""),
                    };
                    return self.agg.tags.intern_src(values.tags(), None);
                }
            },
            None => SrcRef::Host { node: node_sym },
        };
        if let Some(id) = self.agg.tags.cached_src(&r) {
            return id;
        }
        let values = match r {
            SrcRef::Pod { pod, .. } => {
                let p = &self.index.pods[pod.id as usize];
                SrcValues {
                    node,
                    namespace: &p.namespace,
                    workload: &p.workload,
                    kind: &p.kind,
                    pod: &p.name,
                    release: &p.release,
                }
            }
            SrcRef::Host { .. } => SrcValues {
                node,
                namespace: "",
                workload: node,
                kind: "Node",
                pod: "",
                release: "",
            },
        };
        self.agg.tags.intern_src(values.tags(), Some(r))
    }

    fn peer(&mut self, ip: IpAddr, time: Option<i64>) -> u32 {
        let r = classify_peer(&self.index, ip, time);
        if let PeerRef::Unresolved(_) = r {
            self.agg.stats.unresolved_peers += 1;
        }
        if let Some(id) = self.agg.tags.cached_peer(&r) {
            return id;
        }
        let r = if self.agg.tags_full() {
            PeerRef::Other
        } else {
            r
        };
        let text = render_peer(&self.index, &r);
        self.agg.tags.intern_peer(text, r)
    }

    /// Writes the open window (event time moved on, the wall clock says so, or input ended).
    pub fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.agg.flush(wall_ns(), out)
    }
}

/// The TracingPolicies kovenant installs (policies/); events of any other policy are ignored.
pub const OWN_POLICIES: [&str; 2] = ["kovenant-tcp", "kovenant-io"];

enum Kind<'e, 'a> {
    Bad,
    Ignored,
    /// kprobe, operation, bytes, (peer address, sport, dport) for tcp.
    Counted(&'e Kprobe<'a>, Op, u64, Option<(IpAddr, u16, u16)>),
}

/// The contract's line classes: bad (not an event, or an event of ours missing what it
/// needs), ignored (another kind or function), or counted.
fn classify<'e, 'a>(env: &'e Envelope<'a>) -> Kind<'e, 'a> {
    if env.kprobe_invalid {
        return Kind::Bad;
    }
    let Some(k) = env.kprobe.as_ref() else {
        return if env.other_kind {
            Kind::Ignored
        } else {
            Kind::Bad
        };
    };
    let Some(op) = k
        .function_name
        .as_ref()
        .map(|f| Op::from_function(f.as_str()))
    else {
        return Kind::Bad;
    };
    let Some(op) = op else { return Kind::Ignored };
    // A user's own policy on the same functions is not kovenant's traffic. Events of Tetragon
    // before 1.0 name no policy: those are counted.
    if k.policy_name
        .as_ref()
        .is_some_and(|p| !OWN_POLICIES.contains(&p.as_str()))
    {
        return Kind::Ignored;
    }
    let ret = k
        .ret
        .as_ref()
        .and_then(|r| r.long_arg.or(r.int_arg))
        .map(|v| v.0);
    let counted = match op {
        Op::Connect | Op::Close => Some(0),
        Op::Send => k.args.size,
        Op::Recv | Op::Read | Op::Write => bytes(ret, k.args.size),
    };
    let Some(n) = counted else { return Kind::Bad };
    if !op.is_tcp() {
        return Kind::Counted(k, op, n, None);
    }
    let Some(sock) = k.args.sock.as_ref() else {
        return Kind::Bad;
    };
    let Some(ip) = sock
        .daddr
        .as_ref()
        .and_then(|d| d.as_str().parse::<IpAddr>().ok())
    else {
        return Kind::Bad;
    };
    // protojson omits zero values: an absent port is 0; one that is not a port is bad.
    let port = |p: Option<FlexU64>| p.map_or(Some(0), |p| u16::try_from(p.0).ok());
    let (Some(sport), Some(dport)) = (port(sock.sport), port(sock.dport)) else {
        return Kind::Bad;
    };
    Kind::Counted(k, op, n, Some((ip.to_canonical(), sport, dport)))
}
