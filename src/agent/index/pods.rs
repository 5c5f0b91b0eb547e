//! Pods in the index: one record per pod (live or tombstone) with a stable id, its IP claims,
//! its name entry, and its workload, re-derived when its owner chain changes.
use std::hash::BuildHasher;

use hashbrown::hash_map::Entry;

use super::claims::{Addrs, Claims, IpClaim};
use super::tables::{Strings, put};
use super::{Index, PodIdentity, TOMBSTONE_NS, TOMBSTONES};
use crate::agent::cluster::{Info, PodInfo};
use crate::agent::owners::Lineage;

/// No pod.
const NONE: u32 = u32::MAX;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Free,
    Live,
    Dead,
}

/// What the index keeps of a pod besides its identity.
#[derive(Debug, Default)]
pub struct Slot {
    state: State,
    lineage: Lineage,
    /// The addresses it claims (none for hostNetwork pods).
    ips: Addrs,
    /// The next newer tombstone of the same name.
    next_dead: u32,
    /// metadata.uid: what the cgroup paths of its processes name.
    uid: Option<u128>,
}

/// The pods of one (namespace, name): the live one, and the tombstones oldest to newest
/// (linked through `Slot::next_dead`).
#[derive(Debug, Clone, Copy)]
pub struct NameEntry {
    live: u32,
    oldest: u32,
    newest: u32,
}

impl NameEntry {
    /// The live pod, else the oldest tombstone (as a build that lists live pods first, then
    /// tombstones oldest first, and keeps the first of each name).
    pub fn answer(&self) -> u32 {
        if self.live != NONE {
            self.live
        } else {
            self.oldest
        }
    }
}

/// (from, to, running) of a pod's claims while it is live.
fn lifetime(p: &PodInfo) -> (i64, i64, bool) {
    let from = p.created.unwrap_or(i64::MIN);
    let to = p
        .deleting
        .unwrap_or(if p.running { i64::MAX } else { from });
    (from, to, p.running)
}

/// Splits a pod into its identity (workload still to derive), lineage and claimed addresses,
/// with the strings pods share taken from `strings`.
fn split(p: PodInfo, strings: &mut Strings) -> (PodIdentity, Lineage, Addrs) {
    let PodInfo {
        namespace,
        name,
        node,
        host_network,
        ips,
        owner,
        release,
        label_release,
        template_hash,
        ..
    } = p;
    let ident = PodIdentity {
        namespace: strings.get(&namespace),
        name,
        node: strings.get(&node),
        ..PodIdentity::default()
    };
    let lineage = Lineage {
        owner: owner.map(|o| (strings.get(&o.kind), strings.get(&o.name))),
        release: strings.get_opt(release),
        label_release: strings.get_opt(label_release),
        template_hash: strings.get_opt(template_hash),
    };
    let ips = if host_network { Vec::new() } else { ips };
    (ident, lineage, Addrs::new(ips))
}

impl Index {
    pub(super) fn name_entry(&self, namespace: &str, name: &str) -> Option<&NameEntry> {
        let h = self.names_hasher.hash_one((namespace, name));
        let pods = &self.pods;
        self.pod_names.find(h, |e| {
            let p = &pods[e.answer() as usize];
            *p.namespace == *namespace && *p.name == *name
        })
    }

    /// The name entry of pod `id`, made if there is none.
    fn name_entry_mut(&mut self, id: u32) -> &mut NameEntry {
        let Index {
            pods,
            names_hasher,
            pod_names,
            ..
        } = self;
        let p = &pods[id as usize];
        let h = names_hasher.hash_one((&*p.namespace, &*p.name));
        let eq = |e: &NameEntry| {
            let q = &pods[e.answer() as usize];
            q.namespace == p.namespace && q.name == p.name
        };
        let rehash = |e: &NameEntry| {
            let q = &pods[e.answer() as usize];
            names_hasher.hash_one((&*q.namespace, &*q.name))
        };
        let empty = NameEntry {
            live: NONE,
            oldest: NONE,
            newest: NONE,
        };
        pod_names.entry(h, eq, rehash).or_insert(empty).into_mut()
    }

    fn live_pod(&self, p: &PodInfo) -> Option<u32> {
        let e = self.name_entry(&p.namespace, &p.name)?;
        (e.live != NONE).then_some(e.live)
    }

    /// A live pod was added or changed; its id.
    pub(super) fn upsert_pod(&mut self, p: PodInfo) -> u32 {
        if let Some(id) = self.live_pod(&p) {
            self.refill(id, p);
            return id;
        }
        let id = self.new_pod(p);
        self.name_entry_mut(id).live = id;
        id
    }

    /// A live pod, as a snapshot lists it: a new record even if one of that name is there
    /// (which is then no longer found by name, as in a build in list order).
    pub(super) fn add_pod(&mut self, p: PodInfo) {
        let id = self.new_pod(p);
        self.name_entry_mut(id).live = id;
    }

    /// A pod was deleted at `at`: it becomes a tombstone, and old tombstones go.
    pub(super) fn delete_pod(&mut self, p: PodInfo, at: i64) {
        match self.live_pod(&p) {
            Some(id) => {
                self.refill(id, p);
                self.kill(id, at);
            }
            None => {
                self.insert_tombstone(p, at);
            }
        }
        self.prune(at);
    }

    /// A pod deleted at `at`, as a snapshot lists it; nothing is pruned.
    pub(super) fn insert_tombstone(&mut self, p: PodInfo, at: i64) {
        let id = self.new_pod(p);
        self.kill(id, at);
    }

    /// The pods a relisting did not return were deleted at `at`.
    pub(super) fn replace_pods(&mut self, all: Vec<Info>, at: i64) {
        let mut kept = vec![false; self.slots.len()];
        for info in all {
            if let Info::Pod(p) = info {
                let id = self.upsert_pod(p) as usize;
                if id >= kept.len() {
                    kept.resize(id + 1, false);
                }
                kept[id] = true;
            }
        }
        let gone: Vec<u32> = (0..self.slots.len())
            .filter(|&i| self.slots[i].state == State::Live && !kept[i])
            .map(|i| i as u32)
            .collect();
        for id in gone {
            self.kill(id, at);
            self.prune(at);
        }
    }

    fn new_pod(&mut self, p: PodInfo) -> u32 {
        let life = lifetime(&p);
        let uid = p.uid;
        let (ident, lineage, ips) = split(p, &mut self.strings);
        let id = self.pod_ids.alloc();
        if let Some(o) = &lineage.owner {
            self.owners.link(id, &ident.namespace, o);
        }
        put(&mut self.pods, id, ident);
        let slot = Slot {
            state: State::Live,
            lineage,
            ips: Addrs::None,
            next_dead: NONE,
            uid: None,
        };
        put(&mut self.slots, id, slot);
        self.set_uid(id, uid);
        self.relabel(id, true);
        self.claim(id, life, ips);
        id
    }

    /// A newer state of pod `id` (same namespace and name).
    fn refill(&mut self, id: u32, p: PodInfo) {
        let life = lifetime(&p);
        self.set_uid(id, p.uid);
        let (ident, lineage, ips) = split(p, &mut self.strings);
        let slot = &mut self.slots[id as usize];
        let old = std::mem::replace(&mut slot.lineage, lineage);
        let new_owner = &slot.lineage.owner;
        if old.owner != *new_owner {
            if let Some(o) = &old.owner {
                self.owners.unlink(id, &ident.namespace, o);
            }
            if let Some(o) = new_owner {
                self.owners.link(id, &ident.namespace, o);
            }
        }
        self.pods[id as usize].node = ident.node;
        self.relabel(id, false);
        self.unclaim(id);
        self.claim(id, life, ips);
    }

    /// Pod `id` is a tombstone from `at` on.
    fn kill(&mut self, id: u32, at: i64) {
        self.slots[id as usize].state = State::Dead;
        for ip in self.slots[id as usize].ips.as_slice() {
            let claims = self.pod_by_ip.get_mut(ip).into_iter();
            for c in claims
                .flat_map(|c| c.as_mut_slice())
                .filter(|c| c.pod == id)
            {
                (c.to, c.running) = (at, false);
            }
        }
        let e = self.name_entry_mut(id);
        if e.live == id {
            e.live = NONE;
        }
        let newest = std::mem::replace(&mut e.newest, id);
        if newest == NONE {
            e.oldest = id;
        }
        if newest != NONE {
            self.slots[newest as usize].next_dead = id;
        }
        self.tombstones.push_back((id, at));
    }

    /// At most `TOMBSTONES` tombstones, none older than `TOMBSTONE_NS` before `now`.
    fn prune(&mut self, now: i64) {
        let horizon = now.saturating_sub(TOMBSTONE_NS);
        while self.tombstones.len() > TOMBSTONES
            || self.tombstones.front().is_some_and(|(_, at)| *at < horizon)
        {
            if let Some((id, _)) = self.tombstones.pop_front() {
                self.remove_pod(id);
            }
        }
    }

    /// A tombstone leaves the index; its id is freed.
    fn remove_pod(&mut self, id: u32) {
        self.unclaim(id);
        self.set_uid(id, None);
        let slot = std::mem::take(&mut self.slots[id as usize]);
        if let Some(o) = &slot.lineage.owner {
            self.owners.unlink(id, &self.pods[id as usize].namespace, o);
        }
        let peer = self.pods[id as usize].peer;
        self.peers.release(&mut self.workloads, peer);
        let Index {
            pods,
            names_hasher,
            pod_names,
            slots,
            ..
        } = self;
        let p = &pods[id as usize];
        let h = names_hasher.hash_one((&*p.namespace, &*p.name));
        let same = |e: &NameEntry| {
            let q = &pods[e.answer() as usize];
            q.namespace == p.namespace && q.name == p.name
        };
        if let Ok(mut entry) = pod_names.find_entry(h, same) {
            let e = entry.get_mut();
            // Tombstones leave oldest first, so this is the first link; the walk is for safety.
            let (mut prev, mut at) = (NONE, e.oldest);
            while at != NONE && at != id {
                (prev, at) = (at, slots[at as usize].next_dead);
            }
            if at == id {
                match prev {
                    NONE => e.oldest = slot.next_dead,
                    prev => slots[prev as usize].next_dead = slot.next_dead,
                }
                if e.newest == id {
                    e.newest = prev;
                }
            }
            if e.live == NONE && e.oldest == NONE {
                entry.remove();
            }
        }
        self.pods[id as usize] = PodIdentity::default();
        self.pod_ids.free(id);
    }

    /// Pod `id` has this UID now (a pod recreated under its name has a new one).
    fn set_uid(&mut self, id: u32, uid: Option<u128>) {
        let slot = &mut self.slots[id as usize];
        if slot.uid == uid {
            return;
        }
        if let Some(old) = slot.uid.take()
            && self.pod_by_uid.get(&old) == Some(&id)
        {
            self.pod_by_uid.remove(&old);
        }
        if let Some(new) = uid {
            self.pod_by_uid.insert(new, id);
        }
        self.slots[id as usize].uid = uid;
    }

    fn claim(&mut self, id: u32, (from, to, running): (i64, i64, bool), ips: Addrs) {
        for ip in ips.as_slice() {
            let claim = IpClaim {
                pod: id,
                from,
                to,
                running,
            };
            match self.pod_by_ip.entry(*ip) {
                Entry::Occupied(e) => e.into_mut().push(claim),
                Entry::Vacant(e) => {
                    e.insert(Claims::One(claim));
                }
            }
        }
        self.slots[id as usize].ips = ips;
    }

    fn unclaim(&mut self, id: u32) {
        let ips = std::mem::take(&mut self.slots[id as usize].ips);
        for ip in ips.as_slice() {
            if self.pod_by_ip.get_mut(ip).is_some_and(|c| c.remove(id)) {
                self.pod_by_ip.remove(ip);
            }
        }
    }

    /// Re-derives the workload of the pods whose owner chain changed.
    pub(super) fn relabel_all(&mut self, mut ids: Vec<u32>) {
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            if self
                .slots
                .get(id as usize)
                .is_some_and(|s| s.state != State::Free)
            {
                self.relabel(id, false);
            }
        }
    }

    /// Derives pod `id`'s workload, kind, release and peer from its owner chain. A pod that is
    /// tagged otherwise than before gets a new version (`fresh`: a new pod, nothing before).
    fn relabel(&mut self, id: u32, fresh: bool) {
        let (p, slot) = (&self.pods[id as usize], &self.slots[id as usize]);
        let w = self.owners.workload(&p.namespace, &p.name, &slot.lineage);
        let same_name = *p.workload == *w.name;
        if !fresh && same_name && *p.kind == *w.kind && *p.release == *w.release {
            return;
        }
        let (name, kind, release) = (w.name, w.kind, w.release);
        let name = self.strings.get(name);
        let (kind, release) = (self.strings.get(kind), self.strings.get(release));
        if fresh || !same_name {
            let ns = &self.pods[id as usize].namespace;
            let peer = self.peers.acquire(&mut self.workloads, ns, &name);
            let old = std::mem::replace(&mut self.pods[id as usize].peer, peer);
            if !fresh {
                self.peers.release(&mut self.workloads, old);
            }
        }
        let p = &mut self.pods[id as usize];
        (p.workload, p.kind, p.release) = (name, kind, release);
        if !fresh {
            self.pod_ids.bump(id);
        }
    }
}
