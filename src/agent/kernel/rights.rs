//! The rights the kernel reads need, checked once at start: an agent that lacks one stops with
//! a message naming it, instead of going on half-blind (docs/security.md lists the same).
use std::path::Path;

/// (bit in CapEff, name, what needs it).
const NEEDED: [(u32, &str, &str); 3] = [
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
        12,
        "CAP_NET_ADMIN",
        "subscribing to the TCP socket-destroy groups (sock_diag_bind) and sizing their buffers",
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
        assert_eq!(missing("CapEff:\t0000000000000000\n").len(), 3);
    }
}
