//! One pass over `/proc`: each process's I/O counters (`io`), parent and start time (`stat`),
//! pod (`cgroup`) and network namespace (`ns/net`). A process that cannot be read (it just
//! exited, or a right is missing) is counted and skipped.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hashbrown::{HashMap, HashSet};

use super::cgroup::pod_of_process;

/// `/proc/<pid>/io`, in the flow contract's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Io {
    /// `syscr`, `rchar`, `syscw`, `wchar`: the read/write family of system calls.
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
    /// `read_bytes`, `write_bytes`: what reached the storage layer.
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
}

impl Io {
    /// `self - other`, field by field, never below zero.
    pub fn minus(&self, o: &Io) -> Io {
        Io {
            reads: self.reads.saturating_sub(o.reads),
            read_bytes: self.read_bytes.saturating_sub(o.read_bytes),
            writes: self.writes.saturating_sub(o.writes),
            write_bytes: self.write_bytes.saturating_sub(o.write_bytes),
            disk_read_bytes: self.disk_read_bytes.saturating_sub(o.disk_read_bytes),
            disk_write_bytes: self.disk_write_bytes.saturating_sub(o.disk_write_bytes),
        }
    }

    pub fn plus(&self, o: &Io) -> Io {
        Io {
            reads: self.reads + o.reads,
            read_bytes: self.read_bytes + o.read_bytes,
            writes: self.writes + o.writes,
            write_bytes: self.write_bytes + o.write_bytes,
            disk_read_bytes: self.disk_read_bytes + o.disk_read_bytes,
            disk_write_bytes: self.disk_write_bytes + o.disk_write_bytes,
        }
    }

    /// Field by field, the smaller of the two.
    pub fn min(&self, o: &Io) -> Io {
        Io {
            reads: self.reads.min(o.reads),
            read_bytes: self.read_bytes.min(o.read_bytes),
            writes: self.writes.min(o.writes),
            write_bytes: self.write_bytes.min(o.write_bytes),
            disk_read_bytes: self.disk_read_bytes.min(o.disk_read_bytes),
            disk_write_bytes: self.disk_write_bytes.min(o.disk_write_bytes),
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Io::default()
    }
}

/// One process as one pass read it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// Start time (clock ticks since boot): with the pid, what tells a reused pid apart.
    pub start: u64,
    pub io: Io,
    pub pod: Option<u128>,
    pub netns: u64,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Scan {
    pub procs: Vec<Proc>,
    /// Every pid listed, kernel threads and unreadable ones included.
    pub pids: HashSet<i32>,
    /// Processes listed but not readable (gone mid-pass, or no right to read them).
    pub unreadable: u64,
    /// Each process the agent follows, by pid.
    known: HashMap<i32, Known>,
    /// Passes so far, to forget processes that are gone.
    pass: u64,
    buf: Vec<u8>,
}

/// A process followed from pass to pass. Its `io` file stays open: a `/proc` file belongs to
/// the process it was opened for, not to its pid (a read answers ESRCH once that process is
/// reaped, whoever has the pid by then), so one `pread` a pass reads its counters and proves
/// it is the same process, where opening `stat` and `io` anew cost two opens, two reads and
/// two closes, and `stat` is the dearest file of the two for the kernel to write
/// (`do_task_stat`). `stat` is read again only where it can have changed: the parent, when the
/// parent is gone (the orphan was reparented), and the command name in a process's first
/// passes (runtimes place a process in its pod's cgroup and namespace before they exec its
/// program) and once every `RECHECK_EVERY` passes after.
#[derive(Debug)]
struct Known {
    start: u64,
    comm: String,
    ppid: i32,
    pod: Option<u128>,
    netns: u64,
    /// A kernel thread: followed only to know its pid is taken.
    kthread: bool,
    /// `None`: it could not be kept open (the agent's file limit); read anew each pass.
    io: Option<std::fs::File>,
    first: u64,
    pass: u64,
}

/// How many passes a new process's `stat` is read in, and how often after that.
const YOUNG_PASSES: u64 = 3;
const RECHECK_EVERY: u64 = 30;

const PF_KTHREAD: u64 = 0x0020_0000;

/// Reads every user process under `root` (kernel threads have no I/O of their own to count and
/// all live in the initial namespaces).
pub fn scan(root: &Path, out: &mut Scan) {
    out.procs.clear();
    out.pids.clear();
    out.unreadable = 0;
    out.pass += 1;
    let Ok(dir) = std::fs::read_dir(root) else {
        return;
    };
    for entry in dir {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        out.pids.insert(pid);
        match read(root, pid, out) {
            Some(Some(proc)) => out.procs.push(proc),
            Some(None) => {}
            None => out.unreadable += 1,
        }
    }
    let pass = out.pass;
    let before = out.known.len();
    let mut gone = HashSet::new();
    out.known.retain(|pid, k| {
        if k.pass != pass {
            gone.insert(*pid);
        }
        k.pass == pass
    });
    // An orphan's parent is now its reaper: read again where the parent went.
    if before != out.known.len() {
        for p in out.procs.iter_mut().filter(|p| gone.contains(&p.ppid)) {
            if let Some(stat) = stat_of(root, p.pid, &mut out.buf)
                && stat.starttime == p.start
            {
                p.ppid = stat.ppid;
                if let Some(k) = out.known.get_mut(&p.pid) {
                    k.ppid = stat.ppid;
                }
            }
        }
    }
}

/// `Some(None)` for a kernel thread; `None` when the process cannot be read whole.
fn read(root: &Path, pid: i32, scan: &mut Scan) -> Option<Option<Proc>> {
    let pass = scan.pass;
    if let Some(k) = scan.known.get_mut(&pid)
        && let Some(file) = &k.io
    {
        // Its own process still: its counters, and (young, or its turn) its stat again.
        if let Some(io) = pread_io(file, &mut scan.buf) {
            k.pass = pass;
            if k.kthread {
                return Some(None);
            }
            let recheck = pass - k.first < YOUNG_PASSES
                || (pass + pid.unsigned_abs() as u64).is_multiple_of(RECHECK_EVERY);
            if recheck {
                let stat = stat_of(root, pid, &mut scan.buf)?;
                if stat.starttime != k.start {
                    // Reaped between the two reads: taken as new next pass.
                    return None;
                }
                k.ppid = stat.ppid;
                if stat.comm != k.comm {
                    k.comm = stat.comm;
                    (k.pod, k.netns) = placement(root, pid, &mut scan.buf)?;
                }
            }
            return Some(Some(Proc {
                pid,
                ppid: k.ppid,
                start: k.start,
                io,
                pod: k.pod,
                netns: k.netns,
            }));
        }
        // Reaped: the pid, if listed, is another process's.
        scan.known.remove(&pid);
    }
    let stat = stat_of(root, pid, &mut scan.buf)?;
    let kthread = u64::from(stat.flags) & PF_KTHREAD != 0;
    let known = scan
        .known
        .get_mut(&pid)
        .filter(|k| k.start == stat.starttime && k.comm == stat.comm);
    let (pod, netns, file) = match known {
        // Read anew each pass (its file could not be kept open).
        Some(k) => {
            k.pass = pass;
            k.ppid = stat.ppid;
            (k.pod, k.netns, None)
        }
        None => {
            let (pod, netns) = if kthread {
                (None, 0)
            } else {
                placement(root, pid, &mut scan.buf)?
            };
            let file = std::fs::File::open(root.join(pid.to_string()).join("io")).ok();
            scan.known.insert(
                pid,
                Known {
                    start: stat.starttime,
                    comm: stat.comm,
                    ppid: stat.ppid,
                    pod,
                    netns,
                    kthread,
                    io: None,
                    first: pass,
                    pass,
                },
            );
            (pod, netns, file)
        }
    };
    if kthread {
        if let Some(k) = scan.known.get_mut(&pid) {
            k.io = file;
        }
        return Some(None);
    }
    let io = match &file {
        Some(f) => pread_io(f, &mut scan.buf)?,
        None => {
            let io: procfs::process::Io =
                procfs::FromRead::from_read(read_path(root, pid, "io", &mut scan.buf)?).ok()?;
            to_io(&io)
        }
    };
    if let Some(k) = scan.known.get_mut(&pid)
        && file.is_some()
    {
        k.io = file;
    }
    Some(Some(Proc {
        pid,
        ppid: stat.ppid,
        start: stat.starttime,
        io,
        pod,
        netns,
    }))
}

/// A process's pod (from its cgroup) and network namespace.
fn placement(root: &Path, pid: i32, buf: &mut Vec<u8>) -> Option<(Option<u128>, u64)> {
    let netns = std::fs::metadata(root.join(pid.to_string()).join("ns/net"))
        .ok()?
        .ino();
    let cgroup = read_path(root, pid, "cgroup", buf)?;
    let pod = pod_of_process(std::str::from_utf8(cgroup).ok()?);
    Some((pod, netns))
}

fn stat_of(root: &Path, pid: i32, buf: &mut Vec<u8>) -> Option<procfs::process::Stat> {
    procfs::FromRead::from_read(read_path(root, pid, "stat", buf)?).ok()
}

fn to_io(io: &procfs::process::Io) -> Io {
    Io {
        reads: io.syscr,
        read_bytes: io.rchar,
        writes: io.syscw,
        write_bytes: io.wchar,
        disk_read_bytes: io.read_bytes,
        disk_write_bytes: io.write_bytes,
    }
}

/// The counters of an open `io` file, read again from its start (a seq file starts over at
/// offset 0). `None` once its process is reaped.
fn pread_io(file: &std::fs::File, buf: &mut Vec<u8>) -> Option<Io> {
    use std::os::unix::fs::FileExt;
    if buf.len() < 8192 {
        buf.resize(8192, 0);
    }
    let n = file.read_at(buf, 0).ok()?;
    let io: procfs::process::Io = procfs::FromRead::from_read(&buf[..n]).ok()?;
    Some(to_io(&io))
}

/// The whole of `/proc/<pid>/NAME`. These files (`stat`, `io`, `cgroup`) are single-record seq
/// files (fs/proc/base.c, `ONE`): a read that does not fill the buffer returned all of it, so
/// one read is enough where `read_to_end` would make two and a `statx`.
fn read_path<'a>(root: &Path, pid: i32, name: &str, buf: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    use std::io::Read;
    let mut file = std::fs::File::open(root.join(pid.to_string()).join(name)).ok()?;
    if buf.len() < 8192 {
        buf.resize(8192, 0);
    }
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..]).ok()?;
        len += n;
        if n == 0 || len < buf.len() {
            return Some(&buf[..len]);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// The pids under `root` now (its numeric entries).
pub fn pids(root: &Path) -> Vec<i32> {
    std::fs::read_dir(root).map_or_else(
        |_| Vec::new(),
        |dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        },
    )
}

/// The inode of the network namespace of `pid`, if it can be read.
pub fn netns_of(root: &Path, pid: i32) -> Option<u64> {
    std::fs::metadata(root.join(pid.to_string()).join("ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Socket inodes -> the pid holding them, among `pids`, for the inodes in `wanted` only.
pub fn socket_owners(
    root: &Path,
    pids: impl Iterator<Item = i32>,
    wanted: &hashbrown::HashSet<u32>,
    found: &mut hashbrown::HashMap<u32, i32>,
) {
    for pid in pids {
        if found.len() == wanted.len() {
            return;
        }
        let Ok(dir) = std::fs::read_dir(root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in dir.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            if wanted.contains(&inode) {
                found.entry(inode).or_insert(pid);
            }
        }
    }
}

/// The values of the TCP MIB of the network namespace of `pid` (`/proc/<pid>/net/snmp`, the
/// second `Tcp:` line: opens, `InSegs`, `OutSegs`, `RetransSegs`, resets...). Every counter a
/// socket's `tcp_info` carries moves only with a segment sent, retransmitted or received, and
/// each of those moves this line: while it stays the same, no socket of the namespace has a new
/// byte, RTT sample, state or connection to report. `None` when it cannot be read.
pub fn tcp_mib(root: &Path, pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(root.join(pid.to_string()).join("net/snmp")).ok()?;
    tcp_values(&text).map(str::to_owned)
}

fn tcp_values(text: &str) -> Option<&str> {
    text.lines().filter(|l| l.starts_with("Tcp:")).nth(1)
}

/// How many TCP sockets the network namespace of `pid` has in use, IPv4 and IPv6
/// (`/proc/<pid>/net/sockstat` `TCP: inuse N`, `sockstat6` `TCP6: inuse N`: the kernel's
/// per-namespace counters of hashed sockets, listeners included, `TIME_WAIT` not: exactly the
/// sockets a dump returns). `None`: unknown.
pub fn tcp_in_use(root: &Path, pid: i32) -> (Option<u64>, Option<u64>) {
    let dir = root.join(pid.to_string()).join("net");
    let in_use = |file: &str, prefix: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| inuse(&t, prefix))
    };
    (in_use("sockstat", "TCP:"), in_use("sockstat6", "TCP6:"))
}

fn inuse(text: &str, prefix: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "inuse" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tcp_mib_is_the_values_line_of_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Tcp: RtoAlgorithm ActiveOpens InSegs OutSegs\nTcp: 1 48172 3461911 3443358\n\
            Udp: InDatagrams\nUdp: 7\n";
        assert_eq!(
            super::tcp_values(snmp),
            Some("Tcp: 1 48172 3461911 3443358")
        );
        assert_eq!(super::tcp_values("Ip: 1\nIp: 2\n"), None);
    }

    #[test]
    fn sockstat_says_how_many_tcp_sockets_are_in_use() {
        let v4 =
            "sockets: used 210\nTCP: inuse 7 orphan 0 tw 2 alloc 9 mem 1\nUDP: inuse 1 mem 0\n";
        assert_eq!(super::inuse(v4, "TCP:"), Some(7));
        let v6 = "TCP6: inuse 0\nUDP6: inuse 2\n";
        assert_eq!(super::inuse(v6, "TCP6:"), Some(0));
        assert_eq!(super::inuse("", "TCP6:"), None);
    }
}
