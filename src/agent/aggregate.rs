//! Event-time windows: per-key counters, the key cap, and writing a window as line protocol.
use std::io::{self, Write};

use hashbrown::HashMap;

use super::attribute::{Op, ROLE_SERVER};
use super::line_protocol::{push_fields, push_measurement, push_tag, push_timestamp};
use super::tags::{PeerRef, SrcValues, TagTables, peer_tags};

pub const FLOW_FIELDS: [&str; 6] = [
    "connects",
    "closes",
    "sends",
    "send_bytes",
    "recvs",
    "recv_bytes",
];
pub const IO_FIELDS: [&str; 4] = ["reads", "read_bytes", "writes", "write_bytes"];
const AGENT_FIELDS: [&str; 8] = [
    "lines",
    "events",
    "bad_lines",
    "ignored",
    "unresolved_peers",
    "keys",
    "dropped_keys",
    "lag_ms",
];

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
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub ignored: u64,
    pub unresolved_peers: u64,
    pub dropped_keys: u64,
}

/// Counters of the open window and the rules that open and close windows.
pub struct Aggregator {
    window_ns: i64,
    max_keys: usize,
    /// Start (ns) of the open window.
    pub open: Option<i64>,
    /// No window may start before this: a written window is never written again.
    min_start: i64,
    pub tags: TagTables,
    flows: HashMap<FlowKey, [u64; 6]>,
    io: HashMap<u32, [u64; 4]>,
    pub stats: Stats,
    /// Stats of the windows already written.
    written: Stats,
    agent_tags: String,
    /// The agent's node: overflow keys carry it, so two agents' overflow points stay apart.
    node: Box<str>,
    line: String,
}

impl Aggregator {
    pub fn new(window_ns: i64, max_keys: usize, node: &str) -> Self {
        let mut agent_tags = String::new();
        push_tag(&mut agent_tags, "node", node);
        Aggregator {
            window_ns: window_ns.max(1),
            max_keys: max_keys.max(1),
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
            lines: a.lines + b.lines,
            events: a.events + b.events,
            bad_lines: a.bad_lines + b.bad_lines,
            ignored: a.ignored + b.ignored,
            unresolved_peers: a.unresolved_peers + b.unresolved_peers,
            dropped_keys: a.dropped_keys + b.dropped_keys,
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
    pub fn advance(&mut self, t: Option<i64>, wall: i64, out: &mut dyn Write) -> io::Result<()> {
        let start = match (t, self.open) {
            (Some(t), _) => self.align(t),
            (None, Some(_)) => return Ok(()),
            (None, None) => self.align(wall),
        };
        match self.open {
            Some(open) if start <= open => {}
            Some(_) => {
                self.flush(wall, out)?;
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

    pub fn add_flow(&mut self, key: FlowKey, op: Op, bytes: u64) {
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
                self.flows.entry(key).or_insert([0; 6])
            }
        };
        match op {
            Op::Connect => counters[0] += 1,
            Op::Close => counters[1] += 1,
            Op::Send => {
                counters[2] += 1;
                counters[3] += bytes;
            }
            Op::Recv | Op::Read | Op::Write => {
                counters[4] += 1;
                counters[5] += bytes;
            }
        }
    }

    pub fn add_io(&mut self, src: u32, write: bool, bytes: u64) {
        let src = if self.io.contains_key(&src) || self.keys() < self.max_keys {
            src
        } else {
            self.stats.dropped_keys += 1;
            self.overflow_src()
        };
        let c = self.io.entry(src).or_insert([0; 4]);
        let i = if write { 2 } else { 0 };
        c[i] += 1;
        c[i + 1] += bytes;
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
        for (key, c) in &self.flows {
            self.line.clear();
            push_measurement(&mut self.line, "tcp_flow");
            let src = &self.tags.srcs[key.src as usize];
            self.line.push_str(&src.node);
            self.line.push_str(&self.tags.peers[key.peer as usize]);
            if key.port != 0 {
                push_tag(&mut self.line, "port", itoa::Buffer::new().format(key.port));
            }
            push_tag(
                &mut self.line,
                "role",
                if key.role == ROLE_SERVER {
                    "server"
                } else {
                    "client"
                },
            );
            self.line.push_str(&src.flow);
            push_fields(&mut self.line, &FLOW_FIELDS, c);
            push_timestamp(&mut self.line, start);
            out.write_all(self.line.as_bytes())?;
        }
        for (src, c) in &self.io {
            self.line.clear();
            push_measurement(&mut self.line, "pod_io");
            self.line.push_str(&self.tags.srcs[*src as usize].io);
            push_fields(&mut self.line, &IO_FIELDS, c);
            push_timestamp(&mut self.line, start);
            out.write_all(self.line.as_bytes())?;
        }
        let s = self.stats;
        let lag_ms = u64::try_from(wall.saturating_sub(end) / 1_000_000).unwrap_or(0);
        let values = [
            s.lines,
            s.events,
            s.bad_lines,
            s.ignored,
            s.unresolved_peers,
            keys,
            s.dropped_keys,
            lag_ms,
        ];
        self.line.clear();
        push_measurement(&mut self.line, "kovenant_agent");
        self.line.push_str(&self.agent_tags);
        push_fields(&mut self.line, &AGENT_FIELDS, &values);
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
