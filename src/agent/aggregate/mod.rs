//! Event-time windows: per-key counters, the key cap, and writing a window as line protocol.
pub mod tags;

use std::io::{self, Write};

use hashbrown::HashMap;

use crate::agent::aggregate::tags::{PeerRef, SrcValues, TagTables, peer_tags};
pub use crate::agent::attribution::{ROLE_CLIENT, ROLE_SERVER};
use crate::agent::output::{push_fields, push_measurement, push_tag, push_timestamp};

pub use crate::agent::kernel::{FlowCounts, Io as IoCounts};

/// `tcp_flow`'s fields (DESIGN.md section 3), in the order they are written.
fn flow_fields(c: &FlowCounts) -> [(&'static str, u64); 8] {
    [
        ("connects", c.connects),
        ("accepts", c.accepts),
        ("closes", c.closes),
        ("bytes_sent", c.bytes_sent),
        ("bytes_received", c.bytes_received),
        ("retrans_bytes", c.retrans_bytes),
        ("rtt_us_sum", c.rtt_us_sum),
        ("rtt_samples", c.rtt_samples),
    ]
}

/// `pod_io`'s fields.
fn io_fields(c: &IoCounts) -> [(&'static str, u64); 6] {
    [
        ("reads", c.reads),
        ("read_bytes", c.read_bytes),
        ("writes", c.writes),
        ("write_bytes", c.write_bytes),
        ("disk_read_bytes", c.disk_read_bytes),
        ("disk_write_bytes", c.disk_write_bytes),
    ]
}

/// `pod_activity`'s fields (`--pod-activity`): a pod's `tcp_flow` and `pod_io` fields summed
/// over its peers, one point per pod and window.
fn activity_fields(f: &FlowCounts, i: &IoCounts) -> [(&'static str, u64); 14] {
    let [a, b, c, d, e, g, h, k] = flow_fields(f);
    let [l, m, n, o, p, q] = io_fields(i);
    [a, b, c, d, e, g, h, k, l, m, n, o, p, q]
}

/// The measurement a pod's own points go to with `--pod-activity` (telegraf routes it to the
/// pod-level bucket, docs/series-budget.md).
pub const POD_ACTIVITY: &str = "pod_activity";

/// One tcp_flow key: ids from the window's tag tables, port (0 = none) and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: u32,
    pub peer: u32,
    pub port: u16,
    pub role: u8,
}

/// Line counters of the current window (the `kovenant_agent` fields).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// What the last kernel pass saw and cost (live agents only).
    pub netns: u64,
    /// Of those, not dumped: their TCP counters had not moved since their last dump.
    pub netns_quiet: u64,
    /// Of those, not dumped either: no socket had opened or closed since their last read, so
    /// each socket was looked up by its identity.
    pub netns_looked_up: u64,
    pub sockets: u64,
    pub processes: u64,
    pub destroy_events: u64,
    pub destroys_lost: u64,
    /// Flows whose closed sockets the kernel summed, read in the last pass.
    pub closed_flows: u64,
    pub sample_us: u64,
    /// Tetragon's export: lines read, events among them.
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub ignored: u64,
    pub unresolved_peers: u64,
    pub dropped_keys: u64,
    /// `file:PATH`: rotated files read from their backup because the agent was behind.
    pub rotated_files_read: u64,
    /// `file:PATH`: rotated files deleted (by lumberjack's MaxBackups) before they were read.
    pub rotated_files_lost: u64,
    /// `file:PATH`: times the file was truncated in place and read again from its start.
    pub truncations: u64,
}

/// Counters of the open window and the rules that open and close windows.
pub struct Aggregator {
    window_ns: i64,
    max_keys: usize,
    /// Per window and workload, the IP-named peers (external, unresolved) kept by name, the
    /// busiest first; the others are folded into one `other` peer of their type. 0: no limit.
    top_peers: usize,
    /// Write `tcp_flow` and `pod_io` per workload (no pod tag) and each pod's sums as one
    /// `pod_activity` point, instead of `tcp_flow` and `pod_io` per pod.
    pod_activity: bool,
    /// Start (ns) of the open window.
    pub open: Option<i64>,
    /// No window may start before this: a written window is never written again.
    min_start: i64,
    pub tags: TagTables,
    flows: HashMap<FlowKey, FlowCounts>,
    io: HashMap<u32, IoCounts>,
    pub stats: Stats,
    /// Stats of the windows already written.
    written: Stats,
    agent_tags: String,
    /// The agent's node: overflow keys carry it, so two agents' overflow points stay apart.
    node: Box<str>,
    line: String,
}

impl Aggregator {
    pub fn new(window_ns: i64, max_keys: usize, top_peers: usize, node: &str) -> Self {
        let mut agent_tags = String::new();
        push_tag(&mut agent_tags, "node", node);
        Aggregator {
            window_ns: window_ns.max(1),
            max_keys: max_keys.max(1),
            top_peers,
            pod_activity: false,
            open: None,
            min_start: i64::MIN,
            tags: TagTables::default(),
            flows: HashMap::new(),
            io: HashMap::new(),
            stats: Stats::default(),
            written: Stats::default(),
            agent_tags,
            node: node.into(),
            line: String::with_capacity(512),
        }
    }

    /// With `on`, windows are written as `--pod-activity` says: `tcp_flow` and `pod_io` per
    /// workload, and one `pod_activity` point per pod.
    pub fn with_pod_activity(mut self, on: bool) -> Self {
        self.pod_activity = on;
        self
    }

    /// End (ns) of the open window.
    pub fn open_end(&self) -> Option<i64> {
        self.open.map(|s| s.saturating_add(self.window_ns))
    }

    fn align(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.window_ns)
    }

    /// Stats since the start: written windows plus the open one.
    pub fn totals(&self) -> Stats {
        let (a, b) = (&self.written, &self.stats);
        Stats {
            netns: b.netns,
            netns_quiet: b.netns_quiet,
            netns_looked_up: b.netns_looked_up,
            sockets: b.sockets,
            processes: b.processes,
            destroy_events: a.destroy_events + b.destroy_events,
            destroys_lost: a.destroys_lost + b.destroys_lost,
            closed_flows: b.closed_flows,
            sample_us: a.sample_us + b.sample_us,
            lines: a.lines + b.lines,
            events: a.events + b.events,
            bad_lines: a.bad_lines + b.bad_lines,
            ignored: a.ignored + b.ignored,
            unresolved_peers: a.unresolved_peers + b.unresolved_peers,
            dropped_keys: a.dropped_keys + b.dropped_keys,
            rotated_files_read: a.rotated_files_read + b.rotated_files_read,
            rotated_files_lost: a.rotated_files_lost + b.rotated_files_lost,
            truncations: a.truncations + b.truncations,
        }
    }

    /// Whether the window's tag tables hold all the distinct sources and peers its keys can
    /// use: past this, new ones are folded too, so memory stays bounded within a window.
    pub fn tags_full(&self) -> bool {
        self.tags.len() >= 2 * self.hard_cap() + 64
    }

    /// The source that overflowing keys are folded into.
    pub fn overflow(&mut self) -> u32 {
        self.stats.dropped_keys += 1;
        self.overflow_src()
    }

    pub fn keys(&self) -> usize {
        self.flows.len() + self.io.len()
    }

    /// Makes the window of event time `t` (or, without one, the open window or the wall
    /// clock's) the open one, writing the previous window when time moved past it. Late
    /// events stay in the open window.
    pub fn advance(
        &mut self,
        t: Option<i64>,
        wall: impl Fn() -> i64,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let start = match (t, self.open) {
            (Some(t), _) => self.align(t),
            (None, Some(_)) => return Ok(()),
            (None, None) => self.align(wall()),
        };
        match self.open {
            Some(open) if start <= open => {}
            Some(_) => {
                self.flush(wall(), out)?;
                self.open = Some(start.max(self.min_start));
            }
            None => self.open = Some(start.max(self.min_start)),
        }
        Ok(())
    }

    fn overflow_src(&mut self) -> u32 {
        let values = SrcValues {
            node: &self.node,
            namespace: "",
            workload: "other",
            kind: "",
            pod: "",
            release: "",
        };
        self.tags.intern_src(values.tags(), None)
    }

    fn other_peer(&mut self) -> u32 {
        self.tags
            .intern_peer(peer_tags("other", "", "other"), PeerRef::Other)
    }

    /// Room for the `other` keys that overflow creates, beyond `max_keys`.
    fn hard_cap(&self) -> usize {
        self.max_keys + self.max_keys / 16 + 16
    }

    pub fn add_flow(&mut self, key: FlowKey, add: &FlowCounts) {
        let counters = match self.flows.get_mut(&key) {
            Some(c) => c,
            None => {
                let key = if self.keys() < self.max_keys {
                    key
                } else {
                    self.stats.dropped_keys += 1;
                    let mut folded = FlowKey {
                        peer: self.other_peer(),
                        port: 0,
                        ..key
                    };
                    if !self.flows.contains_key(&folded) && self.keys() >= self.hard_cap() {
                        folded.src = self.overflow_src();
                    }
                    folded
                };
                self.flows.entry(key).or_default()
            }
        };
        counters.add(add);
    }

    pub fn add_io(&mut self, src: u32, add: &IoCounts) {
        let src = if self.io.contains_key(&src) || self.keys() < self.max_keys {
            src
        } else {
            self.stats.dropped_keys += 1;
            self.overflow_src()
        };
        let c = self.io.entry(src).or_default();
        *c = c.plus(add);
    }

    /// The window's keys as they are written: `tcp_flow` and `pod_io` per pod (sources with
    /// the same tags summed), IP-named peers beyond `top_peers` per workload folded.
    fn levels(&mut self) -> (HashMap<FlowKey, FlowCounts>, HashMap<u32, IoCounts>) {
        let mut flows: HashMap<FlowKey, FlowCounts> = HashMap::with_capacity(self.flows.len());
        for (key, c) in &self.flows {
            let group = self.tags.srcs[key.src as usize].group;
            flows
                .entry(FlowKey { src: group, ..*key })
                .or_default()
                .add(c);
        }
        let mut io: HashMap<u32, IoCounts> = HashMap::new();
        for (src, c) in &self.io {
            let group = self.tags.srcs[*src as usize].group;
            let e = io.entry(group).or_default();
            *e = e.plus(c);
        }
        if self.top_peers > 0 {
            flows = self.fold_peers(flows);
        }
        (flows, io)
    }

    /// Keeps, per workload group, the `top_peers` IP-named peers with the most bytes (ties:
    /// the smaller tag text) that also carry at least 1% of the group's bytes to IP-named
    /// peers, and folds the others' keys into `peer_name=other` of their type, without a port.
    /// The long tail (scanners, one-off clients, addresses that change every rollout) then
    /// adds one series per workload instead of one per address.
    fn fold_peers(&mut self, flows: HashMap<FlowKey, FlowCounts>) -> HashMap<FlowKey, FlowCounts> {
        let mut bytes: HashMap<(u32, u32), u64> = HashMap::new();
        for (key, c) in &flows {
            if self.tags.peer_ip_kind[key.peer as usize].is_some() {
                let workload =
                    self.tags.srcs[self.tags.group_rep[key.src as usize] as usize].workload_group;
                *bytes.entry((workload, key.peer)).or_default() += c.bytes_sent + c.bytes_received;
            }
        }
        let mut by_group: HashMap<u32, Vec<(u64, u32)>> = HashMap::new();
        for ((group, peer), b) in bytes {
            by_group.entry(group).or_default().push((b, peer));
        }
        let mut folded: hashbrown::HashSet<(u32, u32)> = hashbrown::HashSet::new();
        for (group, mut peers) in by_group {
            let total: u64 = peers.iter().map(|p| p.0).sum();
            let texts = &self.tags.peers;
            peers.sort_unstable_by(|a, b| {
                b.0.cmp(&a.0)
                    .then_with(|| texts[a.1 as usize].cmp(&texts[b.1 as usize]))
            });
            for (i, &(b, peer)) in peers.iter().enumerate() {
                if i >= self.top_peers || u128::from(b) * 100 < u128::from(total) {
                    folded.insert((group, peer));
                }
            }
        }
        if folded.is_empty() {
            return flows;
        }
        let mut out: HashMap<FlowKey, FlowCounts> = HashMap::with_capacity(flows.len());
        for (key, c) in flows {
            let workload =
                self.tags.srcs[self.tags.group_rep[key.src as usize] as usize].workload_group;
            let key = if folded.contains(&(workload, key.peer)) {
                let kind = self.tags.peer_ip_kind[key.peer as usize].unwrap_or("external");
                let peer = self
                    .tags
                    .intern_peer_text(peer_tags(kind, "", "other"), None);
                FlowKey {
                    peer,
                    port: 0,
                    ..key
                }
            } else {
                key
            };
            out.entry(key).or_default().add(&c);
        }
        out
    }

    /// Sums the per-pod keys of `levels` per workload (the same node and workload-level tags).
    fn by_workload(
        &self,
        flows: HashMap<FlowKey, FlowCounts>,
        io: HashMap<u32, IoCounts>,
    ) -> (HashMap<FlowKey, FlowCounts>, HashMap<u32, IoCounts>) {
        let workload = |group: u32| {
            self.tags.srcs[self.tags.group_rep[group as usize] as usize].workload_group
        };
        let mut w_flows: HashMap<FlowKey, FlowCounts> = HashMap::with_capacity(flows.len());
        for (key, c) in &flows {
            w_flows
                .entry(FlowKey {
                    src: workload(key.src),
                    ..*key
                })
                .or_default()
                .add(c);
        }
        let mut w_io: HashMap<u32, IoCounts> = HashMap::with_capacity(io.len());
        for (group, c) in &io {
            let e = w_io.entry(workload(*group)).or_default();
            *e = e.plus(c);
        }
        (w_flows, w_io)
    }

    /// One `pod_activity` point per pod of the window (`levels`' keys are per pod): its flows'
    /// fields summed over peers, and its I/O. Host processes have no pod, and no point.
    fn write_activity(
        &self,
        start: i64,
        flows: &HashMap<FlowKey, FlowCounts>,
        io: &HashMap<u32, IoCounts>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut pods: HashMap<u32, (FlowCounts, IoCounts)> = HashMap::new();
        let src = |group: u32| &self.tags.srcs[self.tags.group_rep[group as usize] as usize];
        for (key, c) in flows {
            if src(key.src).is_pod {
                pods.entry(key.src).or_default().0.add(c);
            }
        }
        for (group, c) in io {
            if src(*group).is_pod {
                let e = &mut pods.entry(*group).or_default().1;
                *e = e.plus(c);
            }
        }
        let mut line = String::with_capacity(512);
        for (group, (f, i)) in &pods {
            line.clear();
            push_measurement(&mut line, POD_ACTIVITY);
            line.push_str(&src(*group).io);
            push_fields(&mut line, &activity_fields(f, i));
            push_timestamp(&mut line, start);
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// Writes `tcp_flow` and `pod_io` keyed by `reps`' groups: per pod (`group_rep`), or per
    /// workload (`workload_rep`, `workload` set: the tags without the pod).
    fn write_levels(
        &self,
        start: i64,
        flows: &HashMap<FlowKey, FlowCounts>,
        io: &HashMap<u32, IoCounts>,
        reps: &[u32],
        workload: bool,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let src = |group: u32| &self.tags.srcs[reps[group as usize] as usize];
        let mut line = String::with_capacity(512);
        for (key, c) in flows {
            line.clear();
            push_measurement(&mut line, "tcp_flow");
            let src = src(key.src);
            line.push_str(&src.node);
            line.push_str(&self.tags.peers[key.peer as usize]);
            if key.port != 0 {
                push_tag(&mut line, "port", itoa::Buffer::new().format(key.port));
            }
            push_tag(
                &mut line,
                "role",
                if key.role == ROLE_SERVER {
                    "server"
                } else {
                    "client"
                },
            );
            line.push_str(if workload { &src.workload } else { &src.flow });
            push_fields(&mut line, &flow_fields(c));
            push_timestamp(&mut line, start);
            out.write_all(line.as_bytes())?;
        }
        for (group, c) in io {
            line.clear();
            push_measurement(&mut line, "pod_io");
            let src = src(*group);
            line.push_str(if workload { &src.io_workload } else { &src.io });
            push_fields(&mut line, &io_fields(c));
            push_timestamp(&mut line, start);
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// Writes the open window (or, with none open, only the self-metrics at the wall clock's
    /// window) and starts afresh.
    pub fn flush(&mut self, wall: i64, out: &mut dyn Write) -> io::Result<()> {
        let start = match self.open {
            Some(s) => s,
            None => self.align(wall).max(self.min_start),
        };
        let end = start.saturating_add(self.window_ns);
        let keys = self.keys() as u64;
        let (flows, io) = self.levels();
        if self.pod_activity {
            self.write_activity(start, &flows, &io, out)?;
            let (flows, io) = self.by_workload(flows, io);
            self.write_levels(start, &flows, &io, &self.tags.workload_rep, true, out)?;
        } else {
            self.write_levels(start, &flows, &io, &self.tags.group_rep, false, out)?;
        }
        let s = self.stats;
        let lag_ms = u64::try_from(wall.saturating_sub(end) / 1_000_000).unwrap_or(0);
        let values = [
            ("netns", s.netns),
            ("netns_quiet", s.netns_quiet),
            ("netns_looked_up", s.netns_looked_up),
            ("sockets", s.sockets),
            ("processes", s.processes),
            ("destroy_events", s.destroy_events),
            ("destroys_lost", s.destroys_lost),
            ("closed_flows", s.closed_flows),
            ("sample_us", s.sample_us),
            ("tetragon_lines", s.lines),
            ("tetragon_events", s.events),
            ("bad_lines", s.bad_lines),
            ("ignored", s.ignored),
            ("unresolved_peers", s.unresolved_peers),
            ("keys", keys),
            ("dropped_keys", s.dropped_keys),
            ("rotated_files_read", s.rotated_files_read),
            ("rotated_files_lost", s.rotated_files_lost),
            ("truncations", s.truncations),
            ("lag_ms", lag_ms),
        ];
        self.line.clear();
        push_measurement(&mut self.line, "kovenant_agent");
        self.line.push_str(&self.agent_tags);
        push_fields(&mut self.line, &values);
        push_timestamp(&mut self.line, start);
        out.write_all(self.line.as_bytes())?;
        out.flush()?;
        self.min_start = end;
        self.open = None;
        self.flows.clear();
        self.io.clear();
        self.tags.clear();
        self.written = self.totals();
        self.stats = Stats::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::aggregate::tags::{PeerRef, SrcValues, peer_tags};

    const T0: i64 = 1_767_225_600_000_000_000;

    /// Two pods of one Deployment on one node, each sending to one Service and doing file I/O,
    /// and the node's host processes: what the window is written as, with and without
    /// `--pod-activity`.
    fn window(pod_activity: bool) -> Vec<String> {
        let mut agg = Aggregator::new(10_000_000_000, 100, 0, "n1").with_pod_activity(pod_activity);
        let mut out = Vec::new();
        agg.advance(Some(T0), || 0, &mut out).expect("Vec");
        let svc = agg
            .tags
            .intern_peer(peer_tags("service", "shop", "db"), PeerRef::Other);
        for (pod, sent, written) in [("web-a", 1000, 10), ("web-b", 2000, 20), ("", 5, 7)] {
            let values = SrcValues {
                node: "n1",
                namespace: if pod.is_empty() { "" } else { "shop" },
                workload: if pod.is_empty() { "n1" } else { "web" },
                kind: if pod.is_empty() { "Node" } else { "Deployment" },
                pod,
                release: "",
            };
            let src = agg.tags.intern_src(values.tags(), None);
            let key = FlowKey {
                src,
                peer: svc,
                port: 5432,
                role: ROLE_CLIENT,
            };
            let flow = FlowCounts {
                connects: 1,
                bytes_sent: sent,
                rtt_us_sum: 100,
                rtt_samples: 1,
                ..FlowCounts::default()
            };
            agg.add_flow(key, &flow);
            let io = IoCounts {
                writes: 1,
                write_bytes: written,
                ..IoCounts::default()
            };
            agg.add_io(src, &io);
        }
        agg.flush(T0, &mut out).expect("Vec");
        let mut lines: Vec<String> = String::from_utf8(out)
            .expect("UTF-8")
            .lines()
            .filter(|l| !l.starts_with("kovenant_agent,"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn pod_activity_writes_workloads_without_the_pod_and_one_point_per_pod() {
        let got = window(true);
        let want = vec![
            format!(
                "pod_activity,kind=Deployment,namespace=shop,node=n1,pod=web-a,workload=web \
                 connects=1i,accepts=0i,closes=0i,bytes_sent=1000i,bytes_received=0i,\
                 retrans_bytes=0i,rtt_us_sum=100i,rtt_samples=1i,reads=0i,read_bytes=0i,\
                 writes=1i,write_bytes=10i,disk_read_bytes=0i,disk_write_bytes=0i {T0}"
            ),
            format!(
                "pod_activity,kind=Deployment,namespace=shop,node=n1,pod=web-b,workload=web \
                 connects=1i,accepts=0i,closes=0i,bytes_sent=2000i,bytes_received=0i,\
                 retrans_bytes=0i,rtt_us_sum=100i,rtt_samples=1i,reads=0i,read_bytes=0i,\
                 writes=1i,write_bytes=20i,disk_read_bytes=0i,disk_write_bytes=0i {T0}"
            ),
            format!(
                "pod_io,kind=Deployment,namespace=shop,node=n1,workload=web reads=0i,\
                 read_bytes=0i,writes=2i,write_bytes=30i,disk_read_bytes=0i,disk_write_bytes=0i \
                 {T0}"
            ),
            format!(
                "pod_io,kind=Node,node=n1,workload=n1 reads=0i,read_bytes=0i,writes=1i,\
                 write_bytes=7i,disk_read_bytes=0i,disk_write_bytes=0i {T0}"
            ),
            format!(
                "tcp_flow,node=n1,peer_name=db,peer_namespace=shop,peer_type=service,port=5432,\
                 role=client,src_kind=Deployment,src_namespace=shop,src_workload=web \
                 connects=2i,accepts=0i,closes=0i,bytes_sent=3000i,bytes_received=0i,\
                 retrans_bytes=0i,rtt_us_sum=200i,rtt_samples=2i {T0}"
            ),
            format!(
                "tcp_flow,node=n1,peer_name=db,peer_namespace=shop,peer_type=service,port=5432,\
                 role=client,src_kind=Node,src_workload=n1 connects=1i,accepts=0i,closes=0i,\
                 bytes_sent=5i,bytes_received=0i,retrans_bytes=0i,rtt_us_sum=100i,\
                 rtt_samples=1i {T0}"
            ),
        ];
        assert_eq!(got, want);
        // Without the flag: the contract's shape, one tcp_flow and one pod_io per pod.
        let plain = window(false);
        assert_eq!(plain.len(), 6, "{plain:#?}");
        assert!(plain.iter().all(|l| !l.starts_with("pod_activity")));
        assert_eq!(
            plain.iter().filter(|l| l.contains(",src_pod=web-")).count(),
            2
        );
        assert_eq!(plain.iter().filter(|l| l.contains(",pod=web-")).count(), 2);
    }
}
