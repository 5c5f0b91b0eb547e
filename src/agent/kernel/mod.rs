//! The node's kernel, read once a pass: every network namespace (found through
//! `/proc/<pid>/ns/net`) with a sock_diag dumper and a destroy listener made inside it, every
//! process's I/O counters, and the deltas since the previous pass (DESIGN.md sections 2, 3).
mod cgroup;
mod closes;
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

use self::closes::{Closes, Flow, Sums};
use self::io_table::IoTable;
pub use self::io_table::ProcDelta;
pub use self::procs::Io;
use self::procs::Scan;
pub use self::rights::{check as check_rights, check_host_pid};
use self::sockdiag::{AF_INET, DestroyListener, Dumper, SockRecord};
use self::sockets::{Counted, SocketTable};
pub use self::sockets::{FlowCounts, SocketDelta};

/// Where the final counters of closed sockets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClosesFrom {
    /// Summed by flow in the kernel where the kernel takes the program, else destroy
    /// notifications.
    Auto,
    /// Summed by flow in the kernel, or the agent stops.
    Kernel,
    /// A destroy notification per socket, in every namespace.
    Notifications,
}

/// Where the agent reads the kernel, and how big a destroy listener's buffer is.
#[derive(Debug, Clone)]
pub struct Config {
    pub proc_root: PathBuf,
    pub destroy_rcvbuf: usize,
    pub closes: ClosesFrom,
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
    /// Flows whose closed sockets the kernel summed, as read this pass (every entry).
    pub closed_flows: u64,
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
    /// `None` where the kernel sums the closes.
    destroys: Option<DestroyListener>,
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
        destroys: Option<DestroyListener>,
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

/// Passes a flow may owe for (an hour at the default 10 s window) before it is given up.
const OWED_PASSES: u64 = 360;
/// Passes the closes of a namespace with no process seen are held (its pod may show), and
/// passes it is remembered as held.
const HOLD_PASSES: u64 = 2;
const HELD_PASSES: u64 = 30;

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
    /// Closed sockets summed in the kernel: every namespace's but the host's, once started.
    closes: Option<Closes>,
    closes_started: bool,
    /// Sockets gone from their namespace's dump, whose counted part comes out of their flow's
    /// sums (`closes`).
    counted: Vec<Counted>,
    /// What is still to come out of a flow's sums (a socket's close read after the dump that
    /// missed it), and the pass it was last added to.
    owed: HashMap<Flow, (Sums, u64)>,
    /// Namespaces with closed flows but no process seen, and the pass they were first held.
    held: HashMap<u64, u64>,
    /// What the agent should say once (where closed sockets' counters come from, and why).
    notices: Vec<String>,
}

impl Kernel {
    pub fn open(cfg: Config) -> io::Result<Kernel> {
        let home = File::open("/proc/thread-self/ns/net")?;
        // Each process's `io` file stays open from pass to pass (procs.rs): as many files as
        // the node has processes, past the usual soft limit of 1,024. Those the limit still
        // refuses are read anew each pass.
        let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, limit);
        }
        let mut notices = Vec::new();
        let closes = match cfg.closes {
            ClosesFrom::Notifications => None,
            ClosesFrom::Kernel => Some(Closes::load().map_err(|e| {
                io::Error::other(format!(
                    "--socket-closes kernel: the kernel did not take the closes program ({e}); \
                     it needs BTF (/sys/kernel/btf/vmlinux), the tracepoint \
                     sock:inet_sock_set_state, and CAP_SYS_ADMIN or CAP_BPF with CAP_PERFMON"
                ))
            })?),
            ClosesFrom::Auto => match Closes::load() {
                Ok(c) => Some(c),
                Err(e) => {
                    notices.push(format!(
                        "agent: closed sockets come from destroy notifications: the kernel did \
                         not take the closes program ({e})"
                    ));
                    None
                }
            },
        };
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
            closes,
            closes_started: false,
            counted: Vec::new(),
            owed: HashMap::new(),
            held: HashMap::new(),
            notices,
        })
    }

    /// What the agent should say, once each (taken).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
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
    ///
    /// Where the kernel sums the closes, a namespace needs no listener to catch them, and this
    /// does nothing (the pass finds new namespaces).
    pub fn follow_new_namespaces(&mut self) -> io::Result<()> {
        if self.closes.is_some() {
            return Ok(());
        }
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
            if let Some((dumper, destroys)) = self.enter(ns, pid, true)? {
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
            .filter_map(|(&ns, n)| {
                let fd =
                    rustix::event::PollFd::new(n.destroys.as_ref()?, rustix::event::PollFlags::IN);
                Some((ns, fd))
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
            let Some(destroys) = n.destroys.as_mut() else {
                continue;
            };
            let sockets = &mut self.sockets;
            let pending = &mut self.pending;
            let known = &mut n.known;
            let drained = destroys.drain(&mut |r| {
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
        if self.closes.is_some() && self.host.is_none() {
            self.notices.push(
                "agent: closed sockets come from destroy notifications: the host network \
                 namespace was not found, and its sockets are the one namespace the kernel's \
                 sums leave out"
                    .to_string(),
            );
            self.closes = None;
        }
        self.follow_namespaces(pass)?;
        self.start_closes()?;
        self.drain_destroys(None)?;
        let mut out = Pass::default();
        self.share_listening();
        let mut closed = self.read_closes(pass, baseline, &mut out.stats)?;
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
                    if n.destroys.is_none()
                        && let Some(c) = self.closes.as_mut()
                    {
                        let ports = self
                            .records
                            .iter()
                            .filter(|r| r.state == sockdiag::TCP_LISTEN)
                            .map(|r| r.local.port())
                            .collect();
                        c.add_listening(ns, &ports);
                        self.sockets.closed_in_kernel(ns, false, &mut self.counted);
                    }
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
            let Some(n) = self.namespaces.remove(&ns) else {
                continue;
            };
            if n.destroys.is_none()
                && let Some(c) = self.closes.as_mut()
            {
                self.sockets.closed_in_kernel(ns, true, &mut self.counted);
                c.forget(ns, &mut closed);
            }
            lost += self.sockets.forget(ns);
        }
        lost += self.sockets.sweep(None);
        lost += self.settle_closes(closed, pass, &mut out.sockets);
        out.sockets.append(&mut self.pending);
        self.io.apply(&self.scan.procs, baseline, &mut out.io);
        out.stats.netns = self.namespaces.len() as u64;
        out.stats.processes = self.scan.procs.len() as u64;
        out.stats.unreadable = self.scan.unreadable;
        out.stats.destroy_events = std::mem::take(&mut self.destroy_events);
        let overflows = std::mem::take(&mut self.overflows);
        out.stats.destroys_lost += lost.max(overflows);
        out.stats.sample_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(out)
    }

    /// Starts the kernel's sums, once the namespaces known at start have their listening
    /// ports in the program's map (`follow_namespaces`). The host namespace's closes stay with
    /// its destroy listener: Tetragon's events name their processes by 4-tuple.
    fn start_closes(&mut self) -> io::Result<()> {
        if self.closes_started {
            return Ok(());
        }
        if let (Some(c), Some(host)) = (self.closes.as_mut(), self.host) {
            c.start(host)?;
            self.closes_started = true;
        }
        Ok(())
    }

    /// The listening ports the program saw open (`listen(2)` since the last pass) become the
    /// agent's too, so both take the same side for a socket.
    fn share_listening(&mut self) {
        let Some(c) = self.closes.as_mut() else {
            return;
        };
        for (ns, ports) in c.listening() {
            if self
                .namespaces
                .get(&ns)
                .is_some_and(|n| n.destroys.is_none())
            {
                self.sockets.add_listening(ns, &ports);
            }
        }
    }

    /// The flows with sockets closed since the last pass, as the kernel summed them. A
    /// namespace no process of which was seen yet is held a pass (its pod is not known). The
    /// baseline pass reads only, to start from.
    fn read_closes(
        &mut self,
        pass: u64,
        baseline: bool,
        stats: &mut PassStats,
    ) -> io::Result<Vec<(Flow, Sums)>> {
        let Some(c) = self.closes.as_mut().filter(|_| self.closes_started) else {
            return Ok(Vec::new());
        };
        let namespaces = &self.namespaces;
        let held = &mut self.held;
        // Kept a while after they are let go, so that a namespace with closes every pass is
        // held once, not every other pass.
        held.retain(|ns, at| !namespaces.contains_key(ns) && pass - *at < HELD_PASSES);
        let read = c.read(&mut |ns| {
            !namespaces.contains_key(&ns) && pass - *held.entry(ns).or_insert(pass) < HOLD_PASSES
        })?;
        stats.closed_flows = read.entries;
        stats.destroys_lost += read.lost;
        Ok(if baseline { Vec::new() } else { read.closed })
    }

    /// Turns the kernel's sums into socket deltas: a flow's closes, less what the agent
    /// counted already of its sockets that a dump had seen (and that a dump then missed). What
    /// a flow owes beyond its sums (the close came after the pass read the sums) is taken
    /// from its next ones; owed for an hour without a close coming, it is given up, and
    /// counted lost.
    fn settle_closes(
        &mut self,
        closed: Vec<(Flow, Sums)>,
        pass: u64,
        out: &mut Vec<SocketDelta>,
    ) -> u64 {
        for c in self.counted.drain(..) {
            let e = self.owed.entry(c.flow).or_insert((Sums::default(), pass));
            e.0.add(&c.sums);
            e.1 = pass;
        }
        for (flow, sums) in closed {
            let mut left = sums;
            if let Some((owed, _)) = self.owed.remove(&flow) {
                let rest = left.take(&owed);
                if !rest.is_zero() {
                    self.owed.insert(flow, (rest, pass));
                }
            }
            let opens = left.closes;
            let counts = FlowCounts {
                connects: if flow.server { 0 } else { opens },
                accepts: if flow.server { opens } else { 0 },
                closes: sums.closes,
                bytes_sent: left.sent,
                bytes_received: left.received,
                retrans_bytes: left.retrans,
                rtt_us_sum: 0,
                rtt_samples: 0,
            };
            out.push(SocketDelta {
                netns: flow.netns,
                cookie: 0,
                local: flow.local,
                remote: flow.remote,
                server: flow.server,
                inode: 0,
                counts,
            });
        }
        let before = self.owed.len();
        self.owed
            .retain(|_, (_, at)| pass.saturating_sub(*at) < OWED_PASSES);
        (before - self.owed.len()) as u64
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
            // A namespace whose sockets cannot be made (it went away) is tried next pass. The
            // kernel sums the closes of every namespace but the host's; its listening ports
            // go to the program first, so a server's closes are the server side from the
            // start.
            let listen = self.closes.is_none() || Some(ns) == self.host;
            if let Some((mut dumper, destroys)) = self.enter(ns, pid, listen)? {
                if let Some(c) = self.closes.as_mut().filter(|_| !listen) {
                    let ports = dumper.listening_ports().unwrap_or_default();
                    c.add_listening(ns, &ports);
                    self.sockets.add_listening(ns, &ports);
                }
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
    fn enter(
        &self,
        ns: u64,
        pid: i32,
        listen: bool,
    ) -> io::Result<Option<(Dumper, Option<DestroyListener>)>> {
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
        let made = Dumper::new().and_then(|d| {
            let listener = if listen {
                Some(DestroyListener::new(self.cfg.destroy_rcvbuf)?)
            } else {
                None
            };
            Ok((d, listener))
        });
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
