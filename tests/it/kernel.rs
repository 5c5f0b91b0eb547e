//! The real-kernel harness: pods made of network namespaces and kubelet-named cgroups on this
//! machine, a workload of exactly known I/O, a cluster snapshot naming them, and the live agent.
//!
//! Tests run as root on the machine's own kernel. The agent sees the whole machine (other tests
//! and other people's work run beside it), so every test claims its own /24 (10.244.N.0/24 and
//! fd00:6b6f:76:N::/64, locked for the life of the test), its own Kubernetes namespace and its
//! own pod UIDs, and reads back only the points that carry them. A `Scenario` removes all it
//! made when dropped, also on a panic: processes, namespaces (and their veths), cgroups.
#![allow(dead_code)]

mod agent;
mod cgroup;
mod net;
mod snapshot;
mod tetragon;
mod truth;
mod workload;

pub use agent::{Agent, binary as agent_binary};
pub use cgroup::Layout;
pub use net::{Scenario, Side};
pub use tetragon::{Sock, tcp_connect};
pub use truth::{Flow, Want, agent_totals, assert_flows, flows, io_of};
pub use workload::{Proc, io_field, signal};

use std::time::{Duration, Instant};

/// The workload binary's path, as Tetragon's events name a process's binary.
pub fn workload_binary() -> String {
    workload::binary().display().to_string()
}

/// Lets processes whose last step is `wait2` exit once the agent has sampled them after their
/// last I/O. A process's counts after the agent's last sample are lost when it exits and a
/// process outside its pod reaps it (as containerd's shim reaps a container's first process):
/// /proc has nothing left to read, and no pod process inherits its totals.
pub fn finish(agent: &Agent, procs: &mut [&mut Proc]) {
    for p in procs.iter_mut() {
        p.wait_for_usr2();
    }
    agent.wait_windows(2);
    for p in procs.iter_mut() {
        p.signal(libc::SIGUSR2);
        p.wait_ok();
    }
}

/// Waits until `cond` holds; fails saying what did not happen.
pub fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
