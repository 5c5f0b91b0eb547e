//! The index's tables of Services, nodes and peer workloads: stable ids with versions, lookups
//! by name that keep no second copy of the names, and addresses; and the strings pods share.
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};

/// Ids of one table. An id stays with its object while the object is in the index. A freed id
/// is handed out again, but its version moves on when it is freed: a reference kept as (id,
/// version) — the per-window tag caches keep them — never matches the id's next occupant.
#[derive(Default)]
pub struct Ids {
    versions: Vec<u32>,
    free: Vec<u32>,
}

impl Ids {
    /// A free id, or `len()` (the caller then pushes the entry).
    pub fn alloc(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.versions.push(0);
            (self.versions.len() - 1) as u32
        })
    }

    pub fn free(&mut self, id: u32) {
        self.bump(id);
        self.free.push(id);
    }

    /// What the id stands for changed: references taken before no longer match.
    pub fn bump(&mut self, id: u32) {
        if let Some(v) = self.versions.get_mut(id as usize) {
            *v = v.wrapping_add(1);
        }
    }

    pub fn version(&self, id: u32) -> u32 {
        self.versions.get(id as usize).copied().unwrap_or(0)
    }
}

/// Puts `v` at `id` of `vec`, an id from `Ids::alloc`.
pub fn put<T>(vec: &mut Vec<T>, id: u32, v: T) {
    match vec.get_mut(id as usize) {
        Some(slot) => *slot = v,
        None => vec.push(v),
    }
}

/// Ids by the key stored at that id in the caller's vector (the key is not stored twice).
#[derive(Default)]
pub struct Names {
    hasher: DefaultHashBuilder,
    table: HashTable<u32>,
}

impl Names {
    pub fn hash(&self, k: impl Hash) -> u64 {
        self.hasher.hash_one(k)
    }

    pub fn find<K: Hash + Eq>(&self, keys: &[K], k: &K) -> Option<u32> {
        let eq = |&id: &u32| keys[id as usize] == *k;
        self.table.find(self.hash(k), eq).copied()
    }

    pub fn insert<K: Hash>(&mut self, keys: &[K], id: u32) {
        let Names { hasher, table } = self;
        let rehash = |&i: &u32| hasher.hash_one(&keys[i as usize]);
        table.insert_unique(hasher.hash_one(&keys[id as usize]), id, rehash);
    }

    pub fn remove<K: Hash>(&mut self, keys: &[K], id: u32) {
        let h = self.hash(&keys[id as usize]);
        if let Ok(e) = self.table.find_entry(h, |&i| i == id) {
            e.remove();
        }
    }
}

/// Objects found by address and kept up to date by name: Services (ClusterIPs) and nodes.
/// When two hold one address, the one written last has it, as in a build in list order.
#[derive(Default)]
pub struct ByAddr {
    pub ids: Ids,
    names: Names,
    ips: Vec<Vec<IpAddr>>,
    /// Whether an id is held (freed ids keep an empty name).
    live: Vec<bool>,
    by_ip: HashMap<IpAddr, u32>,
}

impl ByAddr {
    pub fn at(&self, ip: &IpAddr) -> Option<u32> {
        self.by_ip.get(ip).copied()
    }

    pub fn upsert<K: Hash + Eq>(&mut self, keys: &mut Vec<K>, key: K, ips: Vec<IpAddr>) -> u32 {
        let id = match self.names.find(keys, &key) {
            Some(id) => {
                let old = std::mem::take(&mut self.ips[id as usize]);
                self.drop_ips(id, old.into_iter().filter(|ip| !ips.contains(ip)));
                id
            }
            None => return self.add(keys, key, ips),
        };
        for ip in &ips {
            self.by_ip.insert(*ip, id);
        }
        self.ips[id as usize] = ips;
        id
    }

    /// Adds an object as a new one, even if one of that name is there: a snapshot is taken as
    /// it lists its objects.
    pub fn add<K: Hash + Eq>(&mut self, keys: &mut Vec<K>, key: K, ips: Vec<IpAddr>) -> u32 {
        let id = self.ids.alloc();
        put(keys, id, key);
        put(&mut self.live, id, true);
        self.names.insert(keys, id);
        for ip in &ips {
            self.by_ip.insert(*ip, id);
        }
        put(&mut self.ips, id, ips);
        id
    }

    pub fn remove<K: Hash + Eq + Default>(&mut self, keys: &mut [K], key: &K) {
        if let Some(id) = self.names.find(keys, key) {
            self.remove_id(keys, id);
        }
    }

    /// A watch listed the kind afresh: `all` is everything there is of it.
    pub fn replace<K: Hash + Eq + Default>(
        &mut self,
        keys: &mut Vec<K>,
        all: Vec<(K, Vec<IpAddr>)>,
    ) {
        let mut kept = vec![false; keys.len()];
        for (key, ips) in all {
            let id = self.upsert(keys, key, ips) as usize;
            if id >= kept.len() {
                kept.resize(id + 1, false);
            }
            kept[id] = true;
        }
        let gone = (0..keys.len()).filter(|&id| self.live[id] && !kept[id]);
        for id in gone.collect::<Vec<_>>() {
            self.remove_id(keys, id as u32);
        }
    }

    fn remove_id<K: Hash + Eq + Default>(&mut self, keys: &mut [K], id: u32) {
        self.names.remove(keys, id);
        keys[id as usize] = K::default();
        self.live[id as usize] = false;
        let old = std::mem::take(&mut self.ips[id as usize]);
        self.drop_ips(id, old.into_iter());
        self.ids.free(id);
    }

    /// `id` no longer holds these addresses: another object holding one takes it over.
    fn drop_ips(&mut self, id: u32, ips: impl Iterator<Item = IpAddr>) {
        for ip in ips {
            if self.by_ip.get(&ip) != Some(&id) {
                continue;
            }
            match self.ips.iter().rposition(|held| held.contains(&ip)) {
                Some(other) if other as u32 != id => {
                    self.by_ip.insert(ip, other as u32);
                }
                _ => {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }
}

/// The (namespace, workload) pairs pods appear as when they are a peer, counted by the pods
/// that name them; a pair no pod names any more frees its id.
#[derive(Default)]
pub struct Shared {
    pub ids: Ids,
    names: Names,
    refs: Vec<u32>,
}

type Pair = (Box<str>, Box<str>);

impl Shared {
    pub fn acquire(&mut self, keys: &mut Vec<Pair>, namespace: &str, name: &str) -> u32 {
        let h = self.names.hash((namespace, name));
        let eq = |&id: &u32| {
            let k = &keys[id as usize];
            *k.0 == *namespace && *k.1 == *name
        };
        if let Some(&id) = self.names.table.find(h, eq) {
            self.refs[id as usize] += 1;
            return id;
        }
        let id = self.ids.alloc();
        put(keys, id, (namespace.into(), name.into()));
        put(&mut self.refs, id, 1);
        self.names.insert(keys, id);
        id
    }

    pub fn release(&mut self, keys: &mut [Pair], id: u32) {
        let Some(r) = self.refs.get_mut(id as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.names.remove(keys, id);
            keys[id as usize] = Pair::default();
            self.ids.free(id);
        }
    }
}

/// One shared copy of each string that many pods repeat (namespaces, nodes, workloads,
/// controllers, releases, template hashes): one allocation each, however many pods hold it.
/// Strings no pod holds any more are swept out when the set has doubled since the last sweep.
#[derive(Default)]
pub struct Strings {
    set: HashSet<Arc<str>>,
    sweep_at: usize,
}

impl Strings {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = s.into();
        self.set.insert(Arc::clone(&a));
        if self.set.len() >= self.sweep_at {
            self.set.retain(|s| Arc::strong_count(s) > 1);
            self.sweep_at = (2 * self.set.len()).max(1024);
        }
        a
    }

    pub fn get_opt(&mut self, s: Option<Box<str>>) -> Option<Arc<str>> {
        s.map(|s| self.get(&s))
    }
}
