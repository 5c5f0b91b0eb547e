//! A test's pods on this machine: network namespaces joined by veth pairs with Calico-style /32
//! (and /128) routes, the host network namespace for hostNetwork pods, a Service ClusterIP made
//! real by a DNAT rule as kube-proxy makes it, and the kubelet-named cgroups of their
//! containers. Addresses live only on interfaces the test made; every route is explicit, so no
//! packet leaves the machine. Everything is removed on drop.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::cgroup::{Cgroup, Layout};
use super::workload::Proc;

/// Where a test's subnet claims are locked (flock: a test that dies releases its claim).
const LOCKS: &str = "/run/kovenant-kernel-tests";

/// One pod of the scenario.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The Deployment that owns it (through a ReplicaSet).
    pub workload: String,
    pub ip4: String,
    pub ip6: String,
    /// The network namespace's name under /run/netns; None for a hostNetwork pod.
    pub netns: Option<String>,
    pub container_id: String,
    pub layout: Layout,
}

/// An end of a veth pair: a pod, or the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Pod(usize),
    Host,
}

/// A Service whose ClusterIP a DNAT rule in the client's namespace makes real.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub cluster_ip: String,
    pub port: u16,
}

pub struct Scenario {
    /// The claimed /24: 10.244.N.0/24, fd00:6b6f:76:N::/64.
    pub n: u32,
    /// The Kubernetes namespace of its pods (unique per test and run).
    pub namespace: String,
    pub node: String,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub dir: tempfile::TempDir,
    links: u32,
    /// The sides whose addresses are on a link already.
    addressed: Vec<Side>,
    /// Each pod's container cgroup, made when its first process starts.
    cgroups: Vec<(usize, Cgroup)>,
    netns: Vec<String>,
    host_links: Vec<String>,
    _lock: File,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

/// Claims a free N: its lock file held, and no route of the machine inside 10.244.N.0/24.
fn claim() -> (u32, File) {
    std::fs::create_dir_all(LOCKS).expect("lock folder");
    let routes = String::from_utf8(
        Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .expect("ip route")
            .stdout,
    )
    .unwrap_or_default();
    let start = (std::process::id() + SEQ.fetch_add(7, Ordering::Relaxed)) % 200;
    for k in 0..200 {
        let n = 20 + (start + k) % 200;
        let f = File::create(format!("{LOCKS}/net-{n}.lock")).expect("lock file");
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            continue;
        }
        if routes.contains(&format!("10.244.{n}.")) {
            continue;
        }
        return (n, f);
    }
    panic!("no free 10.244.N.0/24 for a kernel test (20..220 all claimed)");
}

fn hex_id(seed: u64, len: usize) -> String {
    // A splitmix64 stream: unique enough for names, no dependency.
    let mut x = seed;
    let mut out = String::new();
    while out.len() < len {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    out.truncate(len);
    out
}

impl Scenario {
    /// A scenario named `tag` (a few lowercase letters: it goes into names).
    pub fn new(tag: &str) -> Scenario {
        let (n, lock) = claim();
        let namespace = format!("kt{n}-{tag}");
        Scenario {
            n,
            node: format!("kt{n}-node"),
            namespace,
            pods: Vec::new(),
            services: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            links: 0,
            addressed: Vec::new(),
            cgroups: Vec::new(),
            netns: Vec::new(),
            host_links: Vec::new(),
            _lock: lock,
        }
    }

    fn seed(&self) -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        nanos ^ ((std::process::id() as u64) << 32) ^ (self.n as u64) << 24 ^ self.pods.len() as u64
    }

    /// The node's address on the test's links (held by the host network namespace once a link
    /// reaches the host).
    pub fn node_ip4(&self) -> String {
        format!("10.244.{}.1", self.n)
    }

    pub fn node_ip6(&self) -> String {
        format!("fd00:6b6f:76:{}::1", self.n)
    }

    /// A pod with its own network namespace (lo up), owned by Deployment `workload`.
    pub fn pod(&mut self, workload: &str, layout: Layout) -> usize {
        self.add_pod(workload, layout, false)
    }

    /// A hostNetwork pod: its processes stay in the host network namespace.
    pub fn host_pod(&mut self, workload: &str, layout: Layout) -> usize {
        self.add_pod(workload, layout, true)
    }

    fn add_pod(&mut self, workload: &str, layout: Layout, host: bool) -> usize {
        let i = self.pods.len();
        let seed = self.seed();
        let h = hex_id(seed, 32);
        let uid = format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        let container_id = hex_id(seed ^ 0xc0ffee, 64);
        let netns = (!host).then(|| format!("kt{}-{}-{i}", self.n, std::process::id()));
        if let Some(ns) = &netns {
            sh(&["ip", "netns", "add", ns]);
            self.netns.push(ns.clone());
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let (ip4, ip6) = if host {
            (self.node_ip4(), self.node_ip6())
        } else {
            (
                format!("10.244.{}.{}", self.n, 10 + i),
                format!("fd00:6b6f:76:{}::{:x}", self.n, 0x10 + i),
            )
        };
        self.pods.push(Pod {
            name: format!("{workload}-{}-{}", &h[0..10], &h[10..15]),
            namespace: self.namespace.clone(),
            uid,
            workload: workload.to_string(),
            ip4,
            ip6,
            netns,
            container_id,
            layout,
        });
        i
    }

    /// A veth pair between `a` and `b` (pods, or the host), each end holding its side's
    /// addresses, with a /32 and a /128 route to the other side through it.
    pub fn link(&mut self, a: Side, b: Side) {
        let k = self.links;
        self.links += 1;
        let end = |s: Side| -> (String, Option<String>, String, String) {
            match s {
                Side::Host => (
                    format!("kt{}h{k}", self.n),
                    None,
                    self.node_ip4(),
                    self.node_ip6(),
                ),
                Side::Pod(i) => (
                    format!("kt{}p{i}l{k}", self.n),
                    self.pods[i].netns.clone(),
                    self.pods[i].ip4.clone(),
                    self.pods[i].ip6.clone(),
                ),
            }
        };
        let (ea, eb) = (end(a), end(b));
        let mut add = vec!["ip", "link", "add", ea.0.as_str()];
        if let Some(x) = &ea.1 {
            add.extend(["netns", x.as_str()]);
        }
        add.extend(["type", "veth", "peer", "name", eb.0.as_str()]);
        if let Some(x) = &eb.1 {
            add.extend(["netns", x.as_str()]);
        }
        sh(&add);
        for (side, e) in [(a, &ea), (b, &eb)] {
            if side == Side::Host {
                self.host_links.push(e.0.clone());
            }
        }
        for (me, e, other) in [(a, &ea, &eb), (b, &eb, &ea)] {
            let (dev, ns, v4, v6) = (&e.0, &e.1, &e.2, &e.3);
            let ip = |args: &[&str]| {
                let mut cmd: Vec<&str> = vec!["ip"];
                if let Some(x) = ns {
                    cmd.extend(["-n", x.as_str()]);
                }
                cmd.extend(args);
                sh(&cmd);
            };
            // A side linked twice holds its addresses once.
            if !self.addressed.contains(&me) {
                self.addressed.push(me);
                ip(&["addr", "add", &format!("{v4}/32"), "dev", dev]);
                ip(&[
                    "-6",
                    "addr",
                    "add",
                    &format!("{v6}/128"),
                    "dev",
                    dev,
                    "nodad",
                ]);
            }
            ip(&["link", "set", dev, "up"]);
            let (p4, p6) = (&other.2, &other.3);
            ip(&["route", "add", &format!("{p4}/32"), "dev", dev, "src", v4]);
            ip(&[
                "-6",
                "route",
                "add",
                &format!("{p6}/128"),
                "dev",
                dev,
                "src",
                v6,
            ]);
        }
    }

    /// A Service `name` on ClusterIP 10.96.N.<10+k> port `port`, forwarded by a DNAT rule in
    /// `client`'s namespace (nat OUTPUT, as kube-proxy's KUBE-SERVICES chain does for traffic a
    /// node's process starts) to `target`'s pod IP and `target_port`.
    pub fn service(
        &mut self,
        name: &str,
        port: u16,
        target: usize,
        target_port: u16,
        client: usize,
    ) -> String {
        let ip = format!("10.96.{}.{}", self.n, 10 + self.services.len());
        let ns = self.pods[client]
            .netns
            .clone()
            .expect("the client of a Service has its own namespace");
        let to = format!("{}:{target_port}", self.pods[target].ip4);
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            &ip,
            "--dport",
            &port.to_string(),
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ]);
        // The route that lets the packet leave before DNAT picks its real destination: the
        // target's own link.
        let dev = self.route_dev(client, &self.pods[target].ip4);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &format!("{ip}/32"),
            "dev",
            &dev,
            "src",
            &self.pods[client].ip4,
        ]);
        self.services.push(Service {
            name: name.to_string(),
            cluster_ip: ip.clone(),
            port,
        });
        ip
    }

    fn route_dev(&self, pod: usize, to: &str) -> String {
        let ns = self.pods[pod].netns.clone().expect("pod namespace");
        let out = Command::new("ip")
            .args(["-n", &ns, "-o", "route", "get", to])
            .output()
            .expect("ip route get");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "dev" {
                return words.next().expect("device").to_string();
            }
        }
        panic!("no route to {to} in {ns}: {text}")
    }

    /// Deletes pod `i`'s network namespace name (`ip netns del`): the namespace itself lives on
    /// while a process or socket holds it.
    pub fn delete_netns(&mut self, i: usize) {
        let ns = self.pods[i].netns.clone().expect("pod namespace");
        sh(&["ip", "netns", "del", &ns]);
        self.netns.retain(|n| n != &ns);
    }

    /// Starts the workload for pod `i`: kovload `args` in the pod's network namespace, moved
    /// into its container's cgroup, waiting for `go`.
    pub fn start(&mut self, i: usize, args: &[&str]) -> Proc {
        let p = self.start_outside(i, args);
        self.join(i, p.pid);
        p
    }

    /// Starts kovload `args` in pod `i`'s network namespace but leaves it in the test's own
    /// cgroup (a process of no pod).
    pub fn start_outside(&mut self, i: usize, args: &[&str]) -> Proc {
        let mut all: Vec<String> = Vec::new();
        if let Some(ns) = &self.pods[i].netns {
            all.extend(["netns".to_string(), format!("/run/netns/{ns}")]);
        }
        all.extend(args.iter().map(|s| s.to_string()));
        Proc::start(all)
    }

    /// Moves process `pid` into pod `i`'s container cgroup.
    pub fn join(&mut self, i: usize, pid: u32) {
        if !self.cgroups.iter().any(|(k, _)| *k == i) {
            let pod = &self.pods[i];
            let cg = Cgroup::create(pod.layout, &pod.uid, &pod.container_id);
            self.cgroups.push((i, cg));
        }
        let (_, cg) = self.cgroups.iter().find(|(k, _)| *k == i).expect("cgroup");
        cg.join(pid);
    }

    /// A path for the test's files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // The tests' Procs are dropped (killed) before their Scenario when declared after it;
        // cgroups go once empty, then namespaces (which take their veths along), then the host
        // ends that remain.
        self.cgroups.clear();
        for ns in self.netns.drain(..) {
            sh_quiet(&["ip", "netns", "del", &ns]);
        }
        for l in self.host_links.drain(..) {
            sh_quiet(&["ip", "link", "del", &l]);
        }
    }
}
