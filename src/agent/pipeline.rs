//! One line in, counters updated: parse, classify, attribute, aggregate. No I/O but the
//! writer the finished windows go to.
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::agent::aggregate::tags::{PeerRef, SrcRef, SrcValues};
use crate::agent::aggregate::{Aggregator, FlowCounts, FlowKey, Stats};
use crate::agent::attribution::socket_owners::{PodName, Shared};
use crate::agent::attribution::{
    Op, ROLE_CLIENT, ROLE_SERVER, classify_peer, render_peer, role_port,
};
use crate::agent::cluster::index::{Delta, Index};
use crate::agent::cluster::owners::release_from_labels;
use crate::agent::kernel::{Kernel, Pass};
use crate::agent::tetragon::event::{Envelope, Kprobe};
use crate::agent::tetragon::parse_line;
use crate::agent::tetragon::scalars::FlexU64;
use crate::agent::tetragon::scan::scan_prefix;
use crate::agent::tetragon::scan_cache::PodMemo;
use crate::agent::tetragon::time::parse_rfc3339_ns;

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
    /// `--pod-activity`: workload-level `tcp_flow` and `pod_io`, pods in `pod_activity`.
    pub pod_activity: bool,
}

/// The agent's state: the index it attributes with and the open window.
pub struct Agent {
    index: Index,
    agg: Aggregator,
    default_node: Arc<str>,
    node_syms: HashMap<Box<str>, u32>,
    pod_memo: PodMemo,
    /// Live: Tetragon's events say who owns host-namespace sockets (here), instead of being
    /// counted as flows of their own (replays, `--no-kernel`).
    owners: Option<Arc<Shared>>,
    /// The source of each host-namespace socket, found once: Tetragon's event, the process
    /// holding its inode, else the node.
    host_sources: HashMap<(u64, u64), HostSource>,
    /// The export reader's totals already written.
    tetragon_seen: Stats,
}

#[derive(Debug, Clone)]
enum HostSource {
    Pod(Option<u128>),
    Named(PodName),
}

impl Agent {
    pub fn new(index: Index, window_ns: i64, limits: Limits, node: &str) -> Self {
        Agent {
            index,
            agg: Aggregator::new(window_ns, limits.max_keys, limits.top_peers, node)
                .with_pod_activity(limits.pod_activity),
            default_node: node.into(),
            node_syms: HashMap::new(),
            pod_memo: PodMemo::default(),
            owners: None,
            host_sources: HashMap::new(),
            tetragon_seen: Stats::default(),
        }
    }

    /// An agent that reads Tetragon's events for the socket owners they name (live).
    pub fn owners_only(index: Index, window_ns: i64, limits: Limits, shared: Arc<Shared>) -> Self {
        Agent::new(index, window_ns, limits, "").with_owners(shared)
    }

    /// Live: the owners Tetragon's events name are shared through `shared`.
    pub fn with_owners(mut self, shared: Arc<Shared>) -> Self {
        self.owners = Some(shared);
        self
    }

    /// Publishes the line counters for the kernel reader (owners mode).
    pub fn publish(&self) {
        if let Some(sh) = &self.owners
            && let Ok(mut t) = sh.totals.lock()
        {
            *t = self.totals();
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
            Kind::Counted(k, op, conn) => {
                if let Some(sh) = &self.owners {
                    self.agg.stats.lines += 1;
                    self.agg.stats.events += 1;
                    if let Some(local) = conn.local {
                        let pod = k
                            .process
                            .as_ref()
                            .and_then(|p| p.pod.as_ref())
                            .and_then(|p| {
                                Some(PodName {
                                    namespace: p.namespace.as_ref()?.as_str().into(),
                                    name: p.name.as_ref()?.as_str().into(),
                                })
                            });
                        let local = SocketAddr::new(local, conn.sport);
                        let remote = SocketAddr::new(conn.remote, conn.dport);
                        if let Ok(mut o) = sh.owners.lock() {
                            o.insert(local, remote, pod);
                        }
                    }
                    return Ok(());
                }
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
                let peer = self.peer(conn.remote, time);
                let (role, port) = role_port(op, conn.sport, conn.dport);
                let counts = match op {
                    Op::Connect => FlowCounts {
                        connects: 1,
                        ..FlowCounts::default()
                    },
                    Op::Accept => FlowCounts {
                        accepts: 1,
                        ..FlowCounts::default()
                    },
                };
                self.agg.add_flow(
                    FlowKey {
                        src,
                        peer,
                        port,
                        role,
                    },
                    &counts,
                );
            }
        }
        Ok(())
    }

    /// Counts one kernel pass into the open window (opened at the wall clock if none is).
    pub fn count_pass(
        &mut self,
        pass: &Pass,
        kernel: &Kernel,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        self.agg.advance(None, wall_ns, out)?;
        let node = Arc::clone(&self.default_node);
        let host = kernel.host_netns();
        self.resolve_host_sockets(pass, kernel, host);
        for d in &pass.sockets {
            if d.counts.is_zero() {
                continue;
            }
            let key = (d.netns, d.cookie);
            let src = if Some(d.netns) == host {
                match self.host_sources.get(&key).cloned() {
                    Some(HostSource::Named(p)) => self.named_source(&p, &node),
                    Some(HostSource::Pod(uid)) => self.uid_source(uid, &node),
                    None => self.uid_source(None, &node),
                }
            } else {
                self.uid_source(kernel.netns_pod(d.netns), &node)
            };
            let peer = self.peer(d.remote.ip(), None);
            let (role, port) = if d.server {
                (ROLE_SERVER, d.local.port())
            } else {
                (ROLE_CLIENT, d.remote.port())
            };
            self.agg.add_flow(
                FlowKey {
                    src,
                    peer,
                    port,
                    role,
                },
                &d.counts,
            );
            if d.counts.closes > 0 {
                self.host_sources.remove(&key);
            }
        }
        for d in &pass.io {
            let src = self.uid_source(d.pod, &node);
            self.agg.add_io(src, &d.io);
        }
        let st = &mut self.agg.stats;
        st.netns = pass.stats.netns;
        st.netns_quiet = pass.stats.quiet;
        st.netns_looked_up = pass.stats.refreshed;
        st.sockets = pass.stats.sockets;
        st.processes = pass.stats.processes;
        st.destroy_events += pass.stats.destroy_events;
        st.destroys_lost += pass.stats.destroys_lost;
        st.closed_flows = pass.stats.closed_flows;
        st.sample_us += pass.stats.sample_us;
        if let Some(sh) = &self.owners
            && let Ok(t) = sh.totals.lock()
        {
            let (now, was) = (*t, self.tetragon_seen);
            st.lines += now.lines - was.lines.min(now.lines);
            st.events += now.events - was.events.min(now.events);
            st.bad_lines += now.bad_lines - was.bad_lines.min(now.bad_lines);
            st.ignored += now.ignored - was.ignored.min(now.ignored);
            st.rotated_files_read +=
                now.rotated_files_read - was.rotated_files_read.min(now.rotated_files_read);
            st.rotated_files_lost +=
                now.rotated_files_lost - was.rotated_files_lost.min(now.rotated_files_lost);
            st.truncations += now.truncations - was.truncations.min(now.truncations);
            self.tetragon_seen = now;
        }
        Ok(())
    }

    /// Finds, once, the source of each new host-namespace socket with bytes: Tetragon's event
    /// for its 4-tuple, else the process holding its inode, else the node.
    fn resolve_host_sockets(&mut self, pass: &Pass, kernel: &Kernel, host: Option<u64>) {
        let Some(host) = host else { return };
        let mut wanted: HashSet<u32> = HashSet::new();
        let owners = self.owners.as_ref().and_then(|sh| sh.owners.lock().ok());
        for d in pass.sockets.iter().filter(|d| d.netns == host) {
            let key = (d.netns, d.cookie);
            if self.host_sources.contains_key(&key) {
                continue;
            }
            match owners.as_ref().and_then(|o| o.get(d.local, d.remote)) {
                Some(Some(pod)) => {
                    self.host_sources
                        .insert(key, HostSource::Named(pod.clone()));
                }
                Some(None) => {
                    self.host_sources.insert(key, HostSource::Pod(None));
                }
                // A closed socket is in no process's fd table any more: no use looking.
                None if d.inode != 0 && d.counts.closes == 0 => {
                    wanted.insert(d.inode);
                }
                None => {}
            }
        }
        drop(owners);
        if wanted.is_empty() {
            return;
        }
        let holders = kernel.socket_holders(host, &wanted);
        for d in pass.sockets.iter().filter(|d| d.netns == host) {
            let key = (d.netns, d.cookie);
            if self.host_sources.contains_key(&key) || d.counts.closes > 0 {
                continue;
            }
            let uid = holders
                .get(&d.inode)
                .and_then(|pid| kernel.process_owner(*pid))
                .and_then(|(pod, _)| pod);
            self.host_sources.insert(key, HostSource::Pod(uid));
        }
        // Sockets closed without a pass in between leave nothing behind.
        if self.host_sources.len() > 4 * pass.stats.sockets as usize + 1024 {
            self.host_sources.clear();
        }
    }

    /// The source of a pod UID (a process's cgroup): its pod in the index, else the node.
    fn uid_source(&mut self, uid: Option<u128>, node: &str) -> u32 {
        let node_sym = self.node_sym(node);
        let r = match uid.and_then(|u| self.index.pod_by_uid(u)) {
            Some(id) => SrcRef::Pod {
                pod: self.index.pod_ref(id),
                node: node_sym,
            },
            None => SrcRef::Host { node: node_sym },
        };
        self.src_for(r, node)
    }

    fn named_source(&mut self, p: &PodName, node: &str) -> u32 {
        let node_sym = self.node_sym(node);
        let r = match self.index.pod(&p.namespace, &p.name) {
            Some(id) => SrcRef::Pod {
                pod: self.index.pod_ref(id),
                node: node_sym,
            },
            None => SrcRef::Host { node: node_sym },
        };
        self.src_for(r, node)
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
        self.src_for(r, node)
    }

    /// The tag id of a source reference, interned once per window.
    fn src_for(&mut self, r: SrcRef, node: &str) -> u32 {
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

    /// Opens the window of the wall clock now, if none is open (live: right after a write, so
    /// the next pass counts into the window it ends).
    pub fn open_window(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.agg.advance(None, wall_ns, out)
    }

    /// Writes the open window (event time moved on, the wall clock says so, or input ended).
    pub fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.agg.flush(wall_ns(), out)
    }
}

/// The TracingPolicy kovenant installs (policies/); events of any other policy are ignored.
pub const OWN_POLICIES: [&str; 1] = ["kovenant-tcp"];

/// A socket as an event names it: local address (absent in old events), remote address,
/// local and remote port.
struct Conn {
    local: Option<IpAddr>,
    remote: IpAddr,
    sport: u16,
    dport: u16,
}

enum Kind<'e, 'a> {
    Bad,
    Ignored,
    Counted(&'e Kprobe<'a>, Op, Conn),
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
    // A user's own policy on the same functions is not kovenant's. Events of Tetragon before
    // 1.0 name no policy: those are taken.
    if k.policy_name
        .as_ref()
        .is_some_and(|p| !OWN_POLICIES.contains(&p.as_str()))
    {
        return Kind::Ignored;
    }
    // tcp_connect's socket is its first argument; inet_csk_accept's is what it returns.
    let sock = match op {
        Op::Connect => k.args.sock.as_ref(),
        Op::Accept => k.ret.as_ref().and_then(|r| r.sock_arg.as_ref()),
    };
    let Some(sock) = sock else {
        return Kind::Bad;
    };
    let addr = |a: Option<&crate::agent::tetragon::scalars::Str<'_>>| {
        a.and_then(|d| d.as_str().parse::<IpAddr>().ok())
    };
    let Some(remote) = addr(sock.daddr.as_ref()) else {
        return Kind::Bad;
    };
    // protojson omits zero values: an absent port is 0; one that is not a port is bad.
    let port = |p: Option<FlexU64>| p.map_or(Some(0), |p| u16::try_from(p.0).ok());
    let (Some(sport), Some(dport)) = (port(sock.sport), port(sock.dport)) else {
        return Kind::Bad;
    };
    Kind::Counted(
        k,
        op,
        Conn {
            local: addr(sock.saddr.as_ref()).map(|a| a.to_canonical()),
            remote: remote.to_canonical(),
            sport,
            dport,
        },
    )
}
