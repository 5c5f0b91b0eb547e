//! Closed sockets summed in the kernel (`bpf/closes.bpf.c`): one map entry per flow (network
//! namespace, local address, peer address, server port, side) holding the sums of the final
//! counters of its sockets that closed, cumulative. Read once a pass, it replaces the destroy
//! notifications of every namespace but the host's: a pod making 100 short connections a
//! second costs a few entries a pass, not 200 notifications a second (docs/kernel-counters.md,
//! "Closed sockets"). A socket a dump had seen is in its flow's sums whole: what the agent
//! counted of it already comes out of them (`Kernel::settle_closes`).
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use hashbrown::{HashMap, HashSet};

static OBJECT: &[u8] = include_bytes!("bpf/closes.bpf.o");

const AF_INET: u8 = 2;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    netns: u32,
    port: u16,
    family: u8,
    server: u8,
    local: [u8; 16],
    remote: [u8; 16],
}
// SAFETY: plain data, no padding (4 + 2 + 1 + 1 + 16 + 16), the layout of `struct flow_key`.
#[allow(unsafe_code)]
unsafe impl aya::Pod for FlowKey {}

/// A flow's sums over its closed sockets: `struct flow_val`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub closes: u64,
    /// Data bytes sent (retransmissions taken out).
    pub sent: u64,
    pub retrans: u64,
    /// Data bytes received (a received FIN taken out).
    pub received: u64,
}
// SAFETY: four u64s, the layout of `struct flow_val`.
#[allow(unsafe_code)]
unsafe impl aya::Pod for Sums {}

impl Sums {
    /// `self - o`, field by field; a field that would go below zero is 0, and what is left
    /// over is returned.
    pub fn take(&mut self, o: &Sums) -> Sums {
        let mut rest = Sums::default();
        for (a, b, r) in [
            (&mut self.closes, o.closes, &mut rest.closes),
            (&mut self.sent, o.sent, &mut rest.sent),
            (&mut self.retrans, o.retrans, &mut rest.retrans),
            (&mut self.received, o.received, &mut rest.received),
        ] {
            *r = b.saturating_sub(*a);
            *a = a.saturating_sub(b);
        }
        rest
    }

    pub fn add(&mut self, o: &Sums) {
        self.closes += o.closes;
        self.sent += o.sent;
        self.retrans += o.retrans;
        self.received += o.received;
    }

    pub fn is_zero(&self) -> bool {
        *self == Sums::default()
    }

    fn since(&self, last: &Sums) -> Sums {
        // An entry smaller than last time was deleted and made again: all of it is new.
        if self.closes < last.closes {
            return *self;
        }
        Sums {
            closes: self.closes - last.closes,
            sent: self.sent.saturating_sub(last.sent),
            retrans: self.retrans.saturating_sub(last.retrans),
            received: self.received.saturating_sub(last.received),
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ListenKey {
    netns: u32,
    port: u32,
}
// SAFETY: two u32s, the layout of `struct listen_key`.
#[allow(unsafe_code)]
unsafe impl aya::Pod for ListenKey {}

/// A flow, as the agent keys it: the client's ephemeral port is 0 (`local`'s for a client,
/// `remote`'s for a server), addresses canonical (an IPv6 socket's mapped IPv4 peer is IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub netns: u64,
    pub server: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Flow {
    /// The flow of a socket of `netns` with these addresses.
    pub fn of(netns: u64, server: bool, local: SocketAddr, remote: SocketAddr) -> Flow {
        let (lp, rp) = if server {
            (local.port(), 0)
        } else {
            (0, remote.port())
        };
        Flow {
            netns,
            server,
            local: SocketAddr::new(local.ip().to_canonical(), lp),
            remote: SocketAddr::new(remote.ip().to_canonical(), rp),
        }
    }

    fn from_key(k: &FlowKey) -> Flow {
        let ip = |b: &[u8; 16]| -> IpAddr {
            if k.family == AF_INET {
                Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
            } else {
                Ipv6Addr::from(*b).to_canonical()
            }
        };
        let server = k.server == 1;
        let (lp, rp) = if server { (k.port, 0) } else { (0, k.port) };
        Flow {
            netns: u64::from(k.netns),
            server,
            local: SocketAddr::new(ip(&k.local), lp),
            remote: SocketAddr::new(ip(&k.remote), rp),
        }
    }
}

/// What one read found.
#[derive(Debug, Default)]
pub struct Read {
    /// Flows with sockets closed since the last read, and their sums.
    pub closed: Vec<(Flow, Sums)>,
    /// Entries read (every flow the map holds).
    pub entries: u64,
    /// Closes not counted since the last read: the map was full.
    pub lost: u64,
}

pub struct Closes {
    /// Holds the program and its link: dropping it detaches them.
    _ebpf: Ebpf,
    flows: BpfHashMap<MapData, FlowKey, Sums>,
    listening: BpfHashMap<MapData, ListenKey, u32>,
    config: Array<MapData, u32>,
    lost: Array<MapData, u64>,
    /// Each entry's sums at the last read.
    last: HashMap<FlowKey, Sums>,
    lost_last: u64,
    /// The listening ports the agent put in, by namespace.
    ports: HashMap<u64, HashSet<u16>>,
}

/// The kernel's BTF, parsed to relocate the program (some 34 MB of small allocations for the
/// 5.5 MB `/sys/kernel/btf/vmlinux` of kernel 6.18), is freed once the program is loaded;
/// glibc keeps freed small blocks for reuse, so that memory stays in the agent's RSS until it
/// is handed back.
#[allow(unsafe_code)]
fn give_back_freed_memory() {
    // SAFETY: malloc_trim only returns free memory of glibc's heaps to the kernel; no pointer
    // the program holds is touched.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

fn bpf_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Closes {
    /// Loads and attaches the program. It counts nothing until `start`.
    pub fn load() -> io::Result<Closes> {
        let btf = Btf::from_sys_fs().map_err(|e| bpf_err("reading /sys/kernel/btf/vmlinux", e))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(|e| bpf_err("loading the closes program's maps", e))?;
        let prog: &mut BtfTracePoint = ebpf
            .program_mut("inet_sock_set_state")
            .ok_or_else(|| io::Error::other("the closes object has no inet_sock_set_state"))?
            .try_into()
            .map_err(|e| bpf_err("the closes program", e))?;
        prog.load("inet_sock_set_state", &btf)
            .map_err(|e| bpf_err("loading the closes program", e))?;
        prog.attach()
            .map_err(|e| bpf_err("attaching to sock:inet_sock_set_state", e))?;
        let map = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| io::Error::other(format!("the closes object has no map {name}")))
        };
        let flows =
            BpfHashMap::try_from(map(&mut ebpf, "flows")?).map_err(|e| bpf_err("map flows", e))?;
        let listening = BpfHashMap::try_from(map(&mut ebpf, "listening")?)
            .map_err(|e| bpf_err("map listening", e))?;
        let config =
            Array::try_from(map(&mut ebpf, "config")?).map_err(|e| bpf_err("map config", e))?;
        let lost = Array::try_from(map(&mut ebpf, "lost")?).map_err(|e| bpf_err("map lost", e))?;
        drop(btf);
        give_back_freed_memory();
        Ok(Closes {
            _ebpf: ebpf,
            flows,
            listening,
            config,
            lost,
            last: HashMap::new(),
            lost_last: 0,
            ports: HashMap::new(),
        })
    }

    /// Starts counting, every namespace's closes but those of `host`.
    pub fn start(&mut self, host: u64) -> io::Result<()> {
        let host = u32::try_from(host).map_err(|_| io::Error::other("namespace inode > u32"))?;
        self.config
            .set(0, host, 0)
            .map_err(|e| bpf_err("map config", e))?;
        self.config
            .set(1, 1, 0)
            .map_err(|e| bpf_err("map config", e))
    }

    /// Listening ports of a namespace, as a dump found them: a socket whose local port is one
    /// is the server side of its flow. The program adds each new listener itself; a port is
    /// taken out only with its namespace, so a server's sockets that outlive their listener
    /// stay the server side.
    pub fn add_listening(&mut self, netns: u64, ports: &HashSet<u16>) {
        let had = self.ports.entry(netns).or_default();
        for &p in ports {
            if had.insert(p) {
                let k = ListenKey {
                    netns: netns as u32,
                    port: u32::from(p),
                };
                let _ = self.listening.insert(k, 1, 0);
            }
        }
    }

    /// Every listening port the program holds, by namespace (the agent's and those it added).
    pub fn listening(&mut self) -> HashMap<u64, HashSet<u16>> {
        let mut out: HashMap<u64, HashSet<u16>> = HashMap::new();
        for k in self.listening.keys().filter_map(Result::ok) {
            let port = k.port as u16;
            out.entry(u64::from(k.netns)).or_default().insert(port);
            self.ports
                .entry(u64::from(k.netns))
                .or_default()
                .insert(port);
        }
        out
    }

    /// Lets go of a namespace that is gone: its listening ports and its flows, whose closes
    /// since the last read are added to `out` (a socket of it that closes later makes its
    /// flow's entry again, read as new).
    pub fn forget(&mut self, netns: u64, out: &mut Vec<(Flow, Sums)>) {
        let ports: Vec<ListenKey> = self
            .listening
            .keys()
            .filter_map(Result::ok)
            .filter(|k| u64::from(k.netns) == netns)
            .collect();
        for k in ports {
            let _ = self.listening.remove(&k);
        }
        self.ports.remove(&netns);
        let flows: Vec<(FlowKey, Sums)> = self
            .flows
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| u64::from(k.netns) == netns)
            .collect();
        for (k, v) in flows {
            let _ = self.flows.remove(&k);
            let d = v.since(&self.last.remove(&k).unwrap_or_default());
            if !d.is_zero() {
                out.push((Flow::from_key(&k), d));
            }
        }
    }

    /// The flows with closes since the last read. Those of a namespace for which `hold` is
    /// true are left for a later read (the agent does not know its pod yet).
    pub fn read(&mut self, hold: &mut dyn FnMut(u64) -> bool) -> io::Result<Read> {
        let mut out = Read::default();
        for entry in self.flows.iter() {
            let (k, v) = match entry {
                Ok(kv) => kv,
                // An entry deleted between the key walk and its lookup.
                Err(aya::maps::MapError::KeyNotFound) => continue,
                Err(e) => return Err(bpf_err("reading map flows", e)),
            };
            out.entries += 1;
            let last = self.last.get(&k).copied().unwrap_or_default();
            let d = v.since(&last);
            if d.is_zero() || hold(u64::from(k.netns)) {
                continue;
            }
            self.last.insert(k, v);
            out.closed.push((Flow::from_key(&k), d));
        }
        let lost = self.lost.get(&0, 0).map_err(|e| bpf_err("map lost", e))?;
        out.lost = lost.saturating_sub(self.lost_last);
        self.lost_last = lost;
        Ok(out)
    }
}
