//! Who opened a socket of the host network namespace, as Tetragon's kovenant-tcp events say
//! (`tcp_connect`, `inet_csk_accept`): shared by the thread that reads Tetragon's export and the
//! one that reads the kernel. Also the export reader's counters, for `kovenant_agent`.
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;

use hashbrown::HashMap;

use super::aggregate::Stats;

/// Sockets remembered at most; the oldest go first (a socket's owner is looked up within a
/// window or two of its event).
const CAP: usize = 200_000;

/// A pod by name, as Tetragon's `process.pod` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    pub namespace: Box<str>,
    pub name: Box<str>,
}

/// (local, remote) -> the pod that opened it; `None`: a host process (the node).
#[derive(Default)]
pub struct SocketOwners {
    map: HashMap<(SocketAddr, SocketAddr), Option<PodName>>,
    order: VecDeque<(SocketAddr, SocketAddr)>,
}

impl SocketOwners {
    pub fn insert(&mut self, local: SocketAddr, remote: SocketAddr, pod: Option<PodName>) {
        let key = (local, remote);
        if self.map.insert(key, pod).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CAP {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// `Some(None)`: Tetragon saw a host process open it.
    pub fn get(&self, local: SocketAddr, remote: SocketAddr) -> Option<Option<&PodName>> {
        self.map.get(&(local, remote)).map(Option::as_ref)
    }
}

/// What the export reader shares with the kernel reader.
#[derive(Default)]
pub struct Shared {
    pub owners: Mutex<SocketOwners>,
    /// The export reader's counters since it started.
    pub totals: Mutex<Stats>,
}
