//! The rights the kernel reads need, checked once at start: an agent that lacks one stops with
//! a message naming it, instead of going on half-blind (docs/security.md lists the same).
use std::path::Path;

/// (bit in CapEff, name, what needs it). Measured on kernel 6.18 against another user's
/// processes (docs/security.md): each one missing leaves a part of the node unread.
const NEEDED: [(u32, &str, &str); 4] = [
    (
        21,
        "CAP_SYS_ADMIN",
        "setns(2) into each pod's network namespace, to dump its sockets and hear their destroys",
    ),
    (
        19,
        "CAP_SYS_PTRACE",
        "reading other processes' /proc/<pid>/io, ns/net and fd (PTRACE_MODE_READ)",
    ),
    (
        2,
        "CAP_DAC_READ_SEARCH",
        "opening other users' /proc/<pid>/io (mode 0400) and /proc/<pid>/fd (mode 0500)",
    ),
    (
        12,
        "CAP_NET_ADMIN",
        "a socket-destroy listener's buffer past net.core.rmem_max (SO_RCVBUFFORCE), so bursts \
         of closes are not lost",
    ),
];

/// The capabilities of `CapEff` in `/proc/self/status` (under `proc_root`) that are missing,
/// with what needs each; empty when all are there.
pub fn missing(status: &str) -> Vec<(&'static str, &'static str)> {
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    NEEDED
        .iter()
        .filter(|(bit, _, _)| eff & (1u64 << bit) == 0)
        .map(|(_, name, why)| (*name, *why))
        .collect()
}

/// Whether a `/proc/2/stat` line is kthreadd's (parent 0): kernel threads are visible only in the
/// node's own (initial) PID namespace, so an agent that sees kthreadd sees every process of the
/// node, and one that does not runs in a PID namespace of its own (a pod without `hostPID`).
pub fn is_kthreadd(stat: &str) -> bool {
    let Some((comm, rest)) = stat.strip_prefix("2 (").and_then(|s| s.rsplit_once(") ")) else {
        return false;
    };
    comm == "kthreadd" && rest.split_whitespace().nth(1) == Some("0")
}

/// `Err(message)` unless the agent runs in the node's PID namespace ([`is_kthreadd`]): without
/// it the agent sees only its own pod's processes and network namespace, a view status cannot
/// tell from a node whose processes all share the host's network namespace.
pub fn check_host_pid(proc_root: &Path) -> Result<(), String> {
    let stat = std::fs::read_to_string(proc_root.join("2/stat")).unwrap_or_default();
    if is_kthreadd(&stat) {
        return Ok(());
    }
    Err(format!(
        "the agent does not see the node's processes: {} shows no kernel thread (kthreadd, pid \
         2), so it runs in a PID namespace of its own and would read only its own pod (the pod \
         needs hostPID: true)",
        proc_root.display()
    ))
}

/// `Err(message)` naming every missing capability and what it is for.
pub fn check(proc_root: &Path) -> Result<(), String> {
    let status = std::fs::read_to_string(proc_root.join("self/status"))
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .map_err(|e| format!("cannot read /proc/self/status to check the agent's rights: {e}"))?;
    let missing = missing(&status);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    Err(format!(
        "the agent lacks {}: it cannot read the kernel's counters without {}",
        list.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kthreadd_with_parent_0_is_the_nodes_pid_namespace() {
        assert!(is_kthreadd("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0\n"));
        for other in [
            "2 (cat) R 1 0 0 0 -1 4194304\n",
            "2 (kthreadd) S 1 0 0 0\n",
            "3 (kthreadd) S 0 0 0 0\n",
            "",
        ] {
            assert!(!is_kthreadd(other), "{other:?}");
        }
    }

    #[test]
    fn root_has_all_and_a_dropped_capability_is_named() {
        assert!(missing("Name:\tx\nCapEff:\t000001ffffffffff\n").is_empty());
        let without_ptrace = format!("CapEff:\t{:016x}\n", 0x1ff_ffff_ffffu64 & !(1 << 19));
        assert_eq!(
            missing(&without_ptrace)
                .iter()
                .map(|m| m.0)
                .collect::<Vec<_>>(),
            ["CAP_SYS_PTRACE"]
        );
        assert_eq!(missing("CapEff:\t0000000000000000\n").len(), 4);
    }
}
