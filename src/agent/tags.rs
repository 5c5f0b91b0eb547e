//! Per-window tag tables: sources and peers get small ids, and their line-protocol tag text is
//! built (and escaped) once per window instead of once per event.
use std::net::IpAddr;

use hashbrown::HashMap;

use super::line_protocol::push_tag;

/// Where an event came from, as cheap-to-hash references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrcRef {
    /// A pod of the index, on a node (node-name symbol).
    Pod { pod: u32, node: u32 },
    /// A host process on a node.
    Host { node: u32 },
}

/// The remote end of a socket, as cheap-to-hash references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRef {
    Loopback,
    Service(u32),
    Workload(u32),
    Node(u32),
    Unresolved(IpAddr),
    External(IpAddr),
    Other,
}

/// Tag text of one source: `node` first, then the tcp_flow `src_*` tags, and the pod_io tags.
#[derive(Debug, Clone)]
pub struct SrcTags {
    pub node: Box<str>,
    pub flow: Box<str>,
    pub io: Box<str>,
}

/// The plain tag values of a source.
pub struct SrcValues<'a> {
    pub node: &'a str,
    pub namespace: &'a str,
    pub workload: &'a str,
    pub kind: &'a str,
    pub pod: &'a str,
    pub release: &'a str,
}

impl SrcValues<'_> {
    pub fn tags(&self) -> SrcTags {
        let mut node = String::new();
        push_tag(&mut node, "node", self.node);
        let mut flow = String::new();
        push_tag(&mut flow, "src_kind", self.kind);
        push_tag(&mut flow, "src_namespace", self.namespace);
        push_tag(&mut flow, "src_pod", self.pod);
        push_tag(&mut flow, "src_release", self.release);
        push_tag(&mut flow, "src_workload", self.workload);
        let mut io = String::new();
        push_tag(&mut io, "kind", self.kind);
        push_tag(&mut io, "namespace", self.namespace);
        push_tag(&mut io, "node", self.node);
        push_tag(&mut io, "pod", self.pod);
        push_tag(&mut io, "release", self.release);
        push_tag(&mut io, "workload", self.workload);
        SrcTags {
            node: node.into(),
            flow: flow.into(),
            io: io.into(),
        }
    }
}

/// Tag text of a peer: `peer_name`, `peer_namespace`, `peer_type` in that (sorted) order.
pub fn peer_tags(kind: &str, namespace: &str, name: &str) -> Box<str> {
    let mut s = String::new();
    push_tag(&mut s, "peer_name", name);
    push_tag(&mut s, "peer_namespace", namespace);
    push_tag(&mut s, "peer_type", kind);
    s.into()
}

/// Interned tag texts. Two references that render to the same text share an id, so one tag
/// set is always one key, however it was reached.
#[derive(Default)]
pub struct TagTables {
    pub srcs: Vec<SrcTags>,
    pub peers: Vec<Box<str>>,
    src_cache: HashMap<SrcRef, u32>,
    peer_cache: HashMap<PeerRef, u32>,
    src_by_text: HashMap<(Box<str>, Box<str>), u32>,
    peer_by_text: HashMap<Box<str>, u32>,
}

impl TagTables {
    pub fn cached_src(&self, r: &SrcRef) -> Option<u32> {
        self.src_cache.get(r).copied()
    }

    pub fn cached_peer(&self, r: &PeerRef) -> Option<u32> {
        self.peer_cache.get(r).copied()
    }

    /// Interns a source's tags; `cache_as` remembers the reference that produced them.
    pub fn intern_src(&mut self, tags: SrcTags, cache_as: Option<SrcRef>) -> u32 {
        let key = (tags.node.clone(), tags.flow.clone());
        let next = self.srcs.len() as u32;
        let id = *self.src_by_text.entry(key).or_insert(next);
        if id == next {
            self.srcs.push(tags);
        }
        if let Some(r) = cache_as {
            self.src_cache.insert(r, id);
        }
        id
    }

    pub fn intern_peer(&mut self, tags: Box<str>, cache_as: PeerRef) -> u32 {
        let next = self.peers.len() as u32;
        let id = *self.peer_by_text.entry(tags.clone()).or_insert(next);
        if id == next {
            self.peers.push(tags);
        }
        self.peer_cache.insert(cache_as, id);
        id
    }

    pub fn len(&self) -> usize {
        self.srcs.len() + self.peers.len()
    }

    /// Forgets what references meant (the index changed); interned texts stay valid.
    pub fn forget_refs(&mut self) {
        self.src_cache.clear();
        self.peer_cache.clear();
    }

    /// Drops everything: called when a window has been written and no key refers to an id.
    pub fn clear(&mut self) {
        self.forget_refs();
        self.srcs.clear();
        self.peers.clear();
        self.src_by_text.clear();
        self.peer_by_text.clear();
    }
}
