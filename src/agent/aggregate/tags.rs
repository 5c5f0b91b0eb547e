//! Per-window tag tables: sources and peers get small ids, and their line-protocol tag text is
//! built (and escaped) once per window instead of once per event.
use std::net::IpAddr;

use hashbrown::HashMap;

use crate::agent::cluster::index::Ref;
use crate::agent::output::push_tag;

/// Where an event came from, as cheap-to-hash references. Index ids carry their version
/// (`index::Ref`): a reference cached in this window never stands for an id's later occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrcRef {
    /// A pod of the index, on a node (node-name symbol).
    Pod { pod: Ref, node: u32 },
    /// A host process on a node.
    Host { node: u32 },
}

/// The remote end of a socket, as cheap-to-hash references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRef {
    Loopback,
    Service(Ref),
    Workload(Ref),
    Node(Ref),
    Unresolved(IpAddr),
    External(IpAddr),
    Other,
}

/// Tag text of one source: `tcp_flow`'s `src_*` tags and `pod_io`'s tags, both with the pod
/// (DESIGN.md section 3).
#[derive(Debug, Clone)]
pub struct SrcTags {
    /// `,node=...`, written first in `tcp_flow`.
    pub node: Box<str>,
    /// The `tcp_flow` `src_*` tags.
    pub flow: Box<str>,
    /// The `pod_io` tags (and `pod_activity`'s).
    pub io: Box<str>,
    /// `io` without `pod`: `pod_io`'s tags at workload level (`--pod-activity`).
    pub io_workload: Box<str>,
    /// Whether the source is a pod (the node's host processes are not).
    pub is_pod: bool,
    /// `flow` without `src_pod`: the workload `--top-peers` folds peers per.
    pub workload: Box<str>,
    /// The workload (the same node and workload-level tags) this source belongs to; set when
    /// interned.
    pub workload_group: u32,
    /// The key's group (the same node and tags) this source belongs to; set when interned.
    pub group: u32,
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
        let mut workload = flow.clone();
        push_tag(&mut flow, "src_pod", self.pod);
        for f in [&mut flow, &mut workload] {
            push_tag(f, "src_release", self.release);
            push_tag(f, "src_workload", self.workload);
        }
        let mut io = String::new();
        push_tag(&mut io, "kind", self.kind);
        push_tag(&mut io, "namespace", self.namespace);
        push_tag(&mut io, "node", self.node);
        let mut io_workload = io.clone();
        push_tag(&mut io, "pod", self.pod);
        for t in [&mut io, &mut io_workload] {
            push_tag(t, "release", self.release);
            push_tag(t, "workload", self.workload);
        }
        SrcTags {
            node: node.into(),
            flow: flow.into(),
            io: io.into(),
            io_workload: io_workload.into(),
            is_pod: !self.pod.is_empty(),
            workload: workload.into(),
            workload_group: 0,
            group: 0,
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
    /// Per peer: `Some(peer_type)` when the peer is named by its IP address (external and
    /// unresolved peers), the ones `--top-peers` may fold.
    pub peer_ip_kind: Vec<Option<&'static str>>,
    /// Per group (the same node and tags): the first source interned into it (whose texts it
    /// shares).
    pub group_rep: Vec<u32>,
    /// Per workload group (the same node and workload-level tags): the first source interned
    /// into it.
    pub workload_rep: Vec<u32>,
    src_cache: HashMap<SrcRef, u32>,
    peer_cache: HashMap<PeerRef, u32>,
    src_by_text: HashMap<Box<str>, u32>,
    group_by_text: HashMap<(Box<str>, Box<str>), u32>,
    workload_by_text: HashMap<(Box<str>, Box<str>), u32>,
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
    pub fn intern_src(&mut self, mut tags: SrcTags, cache_as: Option<SrcRef>) -> u32 {
        let next = self.srcs.len() as u32;
        let id = *self.src_by_text.entry(tags.io.clone()).or_insert(next);
        if id == next {
            let groups = self.group_rep.len() as u32;
            let group_key = (tags.node.clone(), tags.flow.clone());
            let next_workload = self.workload_by_text.len() as u32;
            tags.workload_group = *self
                .workload_by_text
                .entry((tags.node.clone(), tags.workload.clone()))
                .or_insert(next_workload);
            tags.group = *self.group_by_text.entry(group_key).or_insert(groups);
            if tags.group == groups {
                self.group_rep.push(id);
            }
            if tags.workload_group == next_workload {
                self.workload_rep.push(id);
            }
            self.srcs.push(tags);
        }
        if let Some(r) = cache_as {
            self.src_cache.insert(r, id);
        }
        id
    }

    pub fn intern_peer(&mut self, tags: Box<str>, cache_as: PeerRef) -> u32 {
        let ip_kind = match cache_as {
            PeerRef::External(_) => Some("external"),
            PeerRef::Unresolved(_) => Some("unresolved"),
            _ => None,
        };
        let id = self.intern_peer_text(tags, ip_kind);
        self.peer_cache.insert(cache_as, id);
        id
    }

    /// Interns a peer's tag text that no reference stands for (the folded `other` peers).
    pub fn intern_peer_text(&mut self, tags: Box<str>, ip_kind: Option<&'static str>) -> u32 {
        let next = self.peers.len() as u32;
        let id = *self.peer_by_text.entry(tags.clone()).or_insert(next);
        if id == next {
            self.peers.push(tags);
            self.peer_ip_kind.push(ip_kind);
        }
        id
    }

    pub fn len(&self) -> usize {
        self.srcs.len() + self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets what references meant; interned texts stay valid.
    pub fn forget_refs(&mut self) {
        self.src_cache.clear();
        self.peer_cache.clear();
    }

    /// Drops everything: called when a window has been written and no key refers to an id.
    pub fn clear(&mut self) {
        self.forget_refs();
        self.srcs.clear();
        self.peers.clear();
        self.peer_ip_kind.clear();
        self.group_rep.clear();
        self.workload_rep.clear();
        self.src_by_text.clear();
        self.group_by_text.clear();
        self.workload_by_text.clear();
        self.peer_by_text.clear();
    }
}
