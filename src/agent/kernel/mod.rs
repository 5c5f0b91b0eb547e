//! The node's kernel, read once a pass: every network namespace (found through
//! `/proc/<pid>/ns/net`) with a sock_diag dumper and a destroy listener made inside it, every
//! process's I/O counters, and the deltas since the previous pass (DESIGN.md sections 2, 3).
mod cgroup;
mod io_table;
mod procs;
mod rights;
mod sockdiag;
mod sockets;

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hashbrown::{HashMap, HashSet};

use self::io_table::IoTable;
pub use self::io_table::ProcDelta;
pub use self::procs::Io;
use self::procs::Scan;
pub use self::rights::{check as check_rights, check_host_pid};
use self::sockdiag::{AF_INET, DestroyListener, Dumper, SockRecord};
use self::sockets::SocketTable;
pub use self::sockets::{FlowCounts, SocketDelta};

/// Where the agent reads the kernel, and how big a destroy listener's buffer is.
#[derive(Debug, Clone)]
pub struct Config {
    pub proc_root: PathBuf,
    pub destroy_rcvbuf: usize,
}

/// Counters of one pass, for `kovenant_agent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub netns: u64,
    pub sockets: u64,
    pub processes: u64,
    pub unreadable: u64,
    pub destroy_events: u64,
    pub destroys_lost: u64,
    /// Namespaces not dumped this pass: their TCP counters had not moved since their last dump.
    pub quiet: u64,
    /// Namespaces whose sockets were looked up one by one instead of dumped: none had opened
    /// or closed since their last read.
    pub refreshed: u64,
    pub sample_us: u64,
}

/// What changed since the previous pass.
#[derive(Debug, Default)]
pub struct Pass {
    pub sockets: Vec<SocketDelta>,
    pub io: Vec<ProcDelta>,
    pub stats: PassStats,
}

struct Namespace {
    dumper: Dumper,
    destroys: DestroyListener,
    /// The pod of its processes (the first one that names one).
    pod: Option<u128>,
    /// A process in it, to read its `net/snmp` and `net/sockstat` through.
    pid: i32,
    /// Its TCP MIB when it was last dumped: while it stays the same, no socket in it has
    /// anything new to report, and the dump (a walk of the kernel's established hash) is
    /// skipped.
    dumped_mib: Option<String>,
    /// The last pass it had a process in.
    alive: u64,
    /// Sockets its last dump found.
    sockets: u64,
    /// Its live sockets (listeners included) as its last dump or lookup found them, less those
    /// destroyed since, by cookie; `None` before its first dump. While the kernel's count of
    /// its sockets in use equals this set's, no socket opened or closed unseen, and each is
    /// looked up (`Dumper::lookup`) instead of dumped.
    known: Option<HashMap<u64, SockRecord>>,
    /// A destroy notification of it was lost since its last dump: the set above may hold a
    /// socket that is gone, so the next pass dumps.
    lost: bool,
}

impl Namespace {
    fn new(
        dumper: Dumper,
        destroys: DestroyListener,
        pod: Option<u128>,
        pid: i32,
        alive: u64,
    ) -> Self {
        Namespace {
            dumper,
            destroys,
            pod,
            pid,
            alive,
            dumped_mib: None,
            sockets: 0,
            known: None,
            lost: false,
        }
    }

    fn unchanged(&self, in_use: (Option<u64>, Option<u64>)) -> Option<Vec<SockRecord>> {
        unchanged(self.known.as_ref().filter(|_| !self.lost)?, in_use)
    }
}

/// The known sockets to look up (listeners aside) when the kernel's counts of sockets in use
/// (IPv4, IPv6) equal the known set's. Every hashed socket is counted, so with the counts equal
/// an unknown live socket would need a known one gone from the hash, and that one's lookup
/// fails (`Lookup::Changed`): a dump then finds both.
fn unchanged(
    known: &HashMap<u64, SockRecord>,
    in_use: (Option<u64>, Option<u64>),
) -> Option<Vec<SockRecord>> {
    let v4 = known.values().filter(|r| r.family == AF_INET).count() as u64;
    let v6 = known.len() as u64 - v4;
    (in_use == (Some(v4), Some(v6))).then(|| {
        known
            .values()
            .filter(|r| r.state != sockdiag::TCP_LISTEN)
            .cloned()
            .collect()
    })
}

pub struct Kernel {
    cfg: Config,
    /// The agent's own namespace, to come back to after making sockets in another.
    home: File,
    host: Option<u64>,
    namespaces: HashMap<u64, Namespace>,
    sockets: SocketTable,
    io: IoTable,
    scan: Scan,
    passes: u64,
    /// Deltas of sockets destroyed since the last pass, and their counters.
    pending: Vec<SocketDelta>,
    destroy_events: u64,
    overflows: u64,
    records: Vec<SockRecord>,
}

impl Kernel {
    pub fn open(cfg: Config) -> io::Result<Kernel> {
        let home = File::open("/proc/thread-self/ns/net")?;
        Ok(Kernel {
            cfg,
            home,
            host: None,
            namespaces: HashMap::new(),
            sockets: SocketTable::default(),
            io: IoTable::default(),
            scan: Scan::default(),
            passes: 0,
            pending: Vec::new(),
            destroy_events: 0,
            overflows: 0,
            records: Vec::new(),
        })
    }

    /// The host network namespace: pid 1's, or kthreadd's (pid 2: kernel threads all live in
    /// the initial namespaces, and their `ns` links stay readable where pid 1's are not), else
    /// that of the lowest pid in no pod.
    pub fn host_netns(&self) -> Option<u64> {
        self.host
    }

    /// The pod of a namespace's processes.
    pub fn netns_pod(&self, netns: u64) -> Option<u128> {
        self.namespaces.get(&netns).and_then(|n| n.pod)
    }

    /// The pod and namespace of a live process.
    pub fn process_owner(&self, pid: i32) -> Option<(Option<u128>, u64)> {
        self.io.owner(pid)
    }

    /// Which processes of namespace `netns` hold the sockets of `inodes` (`/proc/<pid>/fd`).
    pub fn socket_holders(&self, netns: u64, inodes: &HashSet<u32>) -> HashMap<u32, i32> {
        let mut found = HashMap::new();
        let pids = self
            .scan
            .procs
            .iter()
            .filter(|p| p.netns == netns)
            .map(|p| p.pid);
        procs::socket_owners(&self.cfg.proc_root, pids, inodes, &mut found);
        found
    }

    /// Follows the network namespaces made since the last pass, so that the sockets a new pod
    /// opens and closes before the next pass are not missed: the processes not listed before
    /// (a pod's first, its sandbox's `pause`, holds its namespace from the start) are looked at
    /// for their namespace, and a new one gets its dumper and destroy listener now. Costs a
    /// listing of `/proc` and one `stat` per process new since the last pass. A process is
    /// looked at again until the pass lists it: a runtime's process enters its namespace
    /// after it is forked.
    pub fn follow_new_namespaces(&mut self) -> io::Result<()> {
        for pid in procs::pids(&self.cfg.proc_root) {
            if self.scan.pids.contains(&pid) {
                continue;
            }
            let Some(ns) = procs::netns_of(&self.cfg.proc_root, pid) else {
                continue;
            };
            if self.namespaces.contains_key(&ns) {
                continue;
            }
            if let Some((dumper, destroys)) = self.enter(ns, pid)? {
                self.scan.pids.insert(pid);
                self.namespaces
                    .insert(ns, Namespace::new(dumper, destroys, None, pid, self.passes));
            }
        }
        Ok(())
    }

    /// Waits at most `timeout` for destroy notifications, and takes those that came (from the
    /// listeners that have some: a drain of every listener at each wake-up would be a receive
    /// call per namespace, mostly answering "nothing").
    pub fn wait_destroys(&mut self, timeout: Duration) -> io::Result<()> {
        let (keys, mut fds): (Vec<u64>, Vec<rustix::event::PollFd<'_>>) = self
            .namespaces
            .iter()
            .map(|(&ns, n)| {
                let fd = rustix::event::PollFd::new(&n.destroys, rustix::event::PollFlags::IN);
                (ns, fd)
            })
            .unzip();
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return Ok(());
        }
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: HashSet<u64> = keys
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(&ns, _)| ns)
            .collect();
        drop(fds);
        if ready.is_empty() {
            return Ok(());
        }
        self.drain_destroys(Some(&ready))
    }

    /// Takes the notifications queued on the listeners of `only` (all when `None`).
    fn drain_destroys(&mut self, only: Option<&HashSet<u64>>) -> io::Result<()> {
        for (&ns, n) in &mut self.namespaces {
            if only.is_some_and(|o| !o.contains(&ns)) {
                continue;
            }
            let sockets = &mut self.sockets;
            let pending = &mut self.pending;
            let known = &mut n.known;
            let drained = n.destroys.drain(&mut |r| {
                if let Some(k) = known.as_mut() {
                    k.remove(&r.cookie);
                }
                if let Some(delta) = sockets.destroyed(ns, &r) {
                    pending.push(delta);
                }
            });
            match drained {
                Ok(d) => {
                    self.destroy_events += d.events;
                    self.overflows += d.overflows;
                    n.lost |= d.overflows > 0;
                }
                // A notification the agent cannot read (its datagram is consumed) never stops
                // it: it is one lost, counted in destroys_lost, and the next drain goes on.
                Err(_) => {
                    self.overflows += 1;
                    n.lost = true;
                }
            }
        }
        Ok(())
    }

    /// One pass: processes, namespaces (new ones get a dumper and a listener), a dump of each,
    /// the destroy notifications since the last pass, and what changed.
    pub fn pass(&mut self) -> io::Result<Pass> {
        let started = Instant::now();
        let baseline = self.passes == 0;
        self.passes += 1;
        let pass = self.passes;
        procs::scan(&self.cfg.proc_root, &mut self.scan);
        if self.host.is_none() {
            self.host = self.find_host();
        }
        self.follow_namespaces(pass)?;
        self.drain_destroys(None)?;
        let mut out = Pass::default();
        let mut gone = Vec::new();
        for (&ns, n) in &mut self.namespaces {
            self.records.clear();
            let records = &mut self.records;
            // A namespace gone since this pass's listing answers "unknown": dumped, and failing.
            let (mib, in_use) = if n.alive == pass {
                let mib = procs::tcp_mib(&self.cfg.proc_root, n.pid);
                if mib.is_some() && mib == n.dumped_mib {
                    out.stats.quiet += 1;
                    out.stats.sockets += n.sockets;
                    continue;
                }
                (mib, procs::tcp_in_use(&self.cfg.proc_root, n.pid))
            } else {
                (None, (None, None))
            };
            // Its sockets are the ones it had: each is looked up, a hash lookup, where a dump
            // walks the kernel's whole established hash, every namespace's sockets. Any of
            // them gone (a close since the count was read) means a dump after all.
            if let Some(live) = n.unchanged(in_use) {
                let found = n.dumper.lookup(&live, &mut |r| records.push(r));
                if matches!(found, Ok(sockdiag::Lookup::All)) {
                    self.sockets.refreshed(ns, &self.records, &mut out.sockets);
                    if let Some(known) = n.known.as_mut() {
                        for r in self.records.drain(..) {
                            known.insert(r.cookie, r);
                        }
                    }
                    n.dumped_mib = mib;
                    n.sockets = n.known.as_ref().map_or(0, |k| k.len() as u64);
                    out.stats.refreshed += 1;
                    out.stats.sockets += n.sockets;
                    continue;
                }
                self.records.clear();
            }
            let families = (in_use.0 != Some(0), in_use.1 != Some(0));
            let records = &mut self.records;
            match n.dumper.dump(families, &mut |r| records.push(r)) {
                Ok(()) => {
                    self.sockets
                        .dump(ns, &self.records, baseline, &mut out.sockets);
                    n.dumped_mib = mib;
                    n.sockets = self.records.len() as u64;
                    n.known = Some(self.records.iter().map(|r| (r.cookie, r.clone())).collect());
                    n.lost = false;
                }
                // The namespace went away under the dump.
                Err(_) => gone.push(ns),
            }
            out.stats.sockets += self.records.len() as u64;
        }
        self.drain_destroys(None)?;
        let mut lost = 0;
        // A namespace with no process for two passes is let go of (its destroy notifications
        // had that long to come).
        for (&ns, n) in &self.namespaces {
            if pass.saturating_sub(n.alive) >= 2 {
                gone.push(ns);
            }
        }
        for ns in gone {
            self.namespaces.remove(&ns);
            lost += self.sockets.forget(ns);
        }
        lost += self.sockets.sweep(None);
        out.sockets.append(&mut self.pending);
        self.io.apply(&self.scan.procs, baseline, &mut out.io);
        out.stats.netns = self.namespaces.len() as u64;
        out.stats.processes = self.scan.procs.len() as u64;
        out.stats.unreadable = self.scan.unreadable;
        out.stats.destroy_events = std::mem::take(&mut self.destroy_events);
        let overflows = std::mem::take(&mut self.overflows);
        out.stats.destroys_lost = lost.max(overflows);
        out.stats.sample_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(out)
    }

    fn find_host(&self) -> Option<u64> {
        let root = &self.cfg.proc_root;
        procs::netns_of(root, 1)
            .or_else(|| procs::netns_of(root, 2))
            .or_else(|| {
                let mut free: Vec<_> = self.scan.procs.iter().filter(|p| p.pod.is_none()).collect();
                free.sort_by_key(|p| p.pid);
                free.first().map(|p| p.netns)
            })
    }

    fn follow_namespaces(&mut self, pass: u64) -> io::Result<()> {
        let mut by_ns: HashMap<u64, (i32, Option<u128>)> = HashMap::new();
        for p in &self.scan.procs {
            let e = by_ns.entry(p.netns).or_insert((p.pid, p.pod));
            if e.1.is_none() && p.pod.is_some() {
                *e = (p.pid, p.pod);
            }
        }
        for (ns, (pid, pod)) in by_ns {
            if let Some(n) = self.namespaces.get_mut(&ns) {
                n.alive = pass;
                n.pid = pid;
                if pod.is_some() {
                    n.pod = pod;
                }
                continue;
            }
            // A namespace whose sockets cannot be made (it went away) is tried next pass.
            if let Some((dumper, destroys)) = self.enter(ns, pid)? {
                self.namespaces
                    .insert(ns, Namespace::new(dumper, destroys, pod, pid, pass));
            }
        }
        Ok(())
    }

    /// Makes a dumper and a destroy listener inside the namespace `ns` of process `pid`, and
    /// comes back. The namespace file is checked to be `ns` (the pid may have been reused).
    /// `Ok(None)`: the namespace could not be entered or its sockets made (it went away; tried
    /// again next pass). `Err`: the agent could not come back to its own namespace, and stops:
    /// every socket it made after that would be another namespace's.
    fn enter(&self, ns: u64, pid: i32) -> io::Result<Option<(Dumper, DestroyListener)>> {
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        let path = self.cfg.proc_root.join(pid.to_string()).join("ns/net");
        let Ok(target) = File::open(path) else {
            return Ok(None);
        };
        if target.metadata().map(|m| m.ino()).ok() != Some(ns) {
            return Ok(None);
        }
        if move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network)).is_err() {
            return Ok(None);
        }
        let made =
            Dumper::new().and_then(|d| Ok((d, DestroyListener::new(self.cfg.destroy_rcvbuf)?)));
        move_into_link_name_space(self.home.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
            |e| {
                io::Error::other(format!(
                    "could not return to the agent's own network namespace after entering \
                     namespace {ns}: {e}"
                ))
            },
        )?;
        Ok(made.ok())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn rec(cookie: u64, family: u8, state: u8) -> (u64, SockRecord) {
        let r = SockRecord {
            cookie,
            state,
            family,
            ifindex: 0,
            local: SocketAddr::from(([10, 0, 0, 1], 40_000 + cookie as u16)),
            remote: SocketAddr::from(([10, 0, 0, 2], 80)),
            inode: 1,
            counters: None,
        };
        (cookie, r)
    }

    #[test]
    fn sockets_are_looked_up_only_while_the_kernel_counts_exactly_the_known_ones() {
        let v6 = sockdiag::AF_INET6;
        let known: HashMap<u64, SockRecord> = [
            rec(1, AF_INET, sockdiag::TCP_LISTEN),
            rec(2, AF_INET, sockdiag::TCP_ESTABLISHED),
            rec(3, v6, sockdiag::TCP_ESTABLISHED),
        ]
        .into_iter()
        .collect();
        let mut looked: Vec<u64> = unchanged(&known, (Some(2), Some(1)))
            .expect("the counts match")
            .iter()
            .map(|r| r.cookie)
            .collect();
        looked.sort_unstable();
        assert_eq!(looked, [2, 3], "listeners are not looked up");
        // One more in use (a socket opened unseen), one fewer (one closed unseen), or a count
        // that could not be read: a dump.
        for in_use in [
            (Some(3), Some(1)),
            (Some(2), Some(2)),
            (Some(1), Some(1)),
            (None, Some(1)),
            (Some(2), None),
        ] {
            assert!(unchanged(&known, in_use).is_none(), "{in_use:?}");
        }
    }
}
