//! Per-process I/O deltas from cumulative `/proc/<pid>/io` counters, counting each byte once.
//!
//! The kernel adds a reaped child's totals (its own and its reaped descendants') to its
//! parent's `io` (kernel/exit.c, `wait_task_zombie`): the parent's counters jump by what the
//! child did. What the agent already counted for the child (its counters when last read) is
//! owed back by the parent: it is taken from the parent's next deltas (a credit), so only the
//! child's bytes since its last reading are counted, once, with the parent. A pid disappears
//! from /proc only when it is reaped, so the jump is in the parent's counters by the next pass
//! at the latest; a credit no jump pays off in two passes (the child was reparented to a
//! reaper the agent did not see) is dropped.
use hashbrown::HashMap;

use super::procs::{Io, Proc};

struct Known {
    start: u64,
    ppid: i32,
    last: Io,
    pod: Option<u128>,
    netns: u64,
    seen: u64,
    /// Bytes already counted for reaped children, to take from the next jumps, and the pass
    /// they were owed at.
    credit: Io,
    credit_pass: u64,
}

/// What a process did since the previous pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcDelta {
    pub pid: i32,
    pub pod: Option<u128>,
    pub netns: u64,
    pub io: Io,
}

#[derive(Default)]
pub struct IoTable {
    known: HashMap<i32, Known>,
    pass: u64,
}

impl IoTable {
    /// Takes one pass; `baseline`: the agent's first, whose counters are a starting point only
    /// (bytes from before the agent started are not counted). A process first seen later
    /// started after the previous pass: everything it did counts.
    pub fn apply(&mut self, procs: &[Proc], baseline: bool, out: &mut Vec<ProcDelta>) {
        self.pass += 1;
        let pass = self.pass;
        for p in procs {
            let delta = match self.known.get_mut(&p.pid) {
                Some(k) if k.start == p.start => {
                    let d = p.io.minus(&k.last);
                    (k.last, k.ppid, k.pod, k.netns, k.seen) = (p.io, p.ppid, p.pod, p.netns, pass);
                    d
                }
                _ => {
                    // A new process (or a reused pid: the old one was reaped and is handled
                    // below as gone, before its credit could reach this one).
                    self.known.insert(
                        p.pid,
                        Known {
                            start: p.start,
                            ppid: p.ppid,
                            last: p.io,
                            pod: p.pod,
                            netns: p.netns,
                            seen: pass,
                            credit: Io::default(),
                            credit_pass: 0,
                        },
                    );
                    if baseline { Io::default() } else { p.io }
                }
            };
            out.push(ProcDelta {
                pid: p.pid,
                pod: p.pod,
                netns: p.netns,
                io: delta,
            });
        }
        self.settle_gone(pass);
        for d in out.iter_mut() {
            let Some(k) = self.known.get_mut(&d.pid) else {
                continue;
            };
            if pass.saturating_sub(k.credit_pass) >= 2 {
                k.credit = Io::default();
            }
            if k.credit.is_zero() {
                continue;
            }
            let take = k.credit.min(&d.io);
            d.io = d.io.minus(&take);
            k.credit = k.credit.minus(&take);
        }
        out.retain(|d| !d.io.is_zero());
    }

    /// Processes not seen this pass were reaped: what was counted for them is owed by the
    /// nearest ancestor still alive (their reaper, as far as the agent saw).
    fn settle_gone(&mut self, pass: u64) {
        let gone: Vec<i32> = self
            .known
            .iter()
            .filter(|(_, k)| k.seen != pass)
            .map(|(pid, _)| *pid)
            .collect();
        if gone.is_empty() {
            return;
        }
        let mut owed: Vec<(i32, Io)> = Vec::with_capacity(gone.len());
        for pid in &gone {
            let k = &self.known[pid];
            // Ancestors gone too handed this on when they were reaped.
            let mut up = k.ppid;
            let mut hops = 0;
            while let Some(a) = self.known.get(&up) {
                if a.seen == pass || hops > 64 {
                    break;
                }
                up = a.ppid;
                hops += 1;
            }
            owed.push((up, k.last.plus(&k.credit)));
        }
        for pid in gone {
            self.known.remove(&pid);
        }
        for (to, io) in owed {
            if let Some(a) = self.known.get_mut(&to) {
                a.credit = a.credit.plus(&io);
                a.credit_pass = pass;
            }
        }
    }

    /// The pod and namespace a live process was last seen in.
    pub fn owner(&self, pid: i32) -> Option<(Option<u128>, u64)> {
        self.known.get(&pid).map(|k| (k.pod, k.netns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, written: u64) -> Proc {
        Proc {
            pid,
            ppid,
            start: 1,
            io: Io {
                writes: written / 10,
                write_bytes: written,
                ..Io::default()
            },
            pod: None,
            netns: 1,
        }
    }

    fn written(t: &mut IoTable, procs: &[Proc], baseline: bool) -> u64 {
        let mut out = Vec::new();
        t.apply(procs, baseline, &mut out);
        out.iter().map(|d| d.io.write_bytes).sum()
    }

    #[test]
    fn the_first_pass_is_a_baseline_and_later_passes_count_deltas() {
        let mut t = IoTable::default();
        assert_eq!(written(&mut t, &[p(10, 1, 500)], true), 0);
        assert_eq!(written(&mut t, &[p(10, 1, 800)], false), 300);
        // A process born after a pass counts from zero.
        assert_eq!(written(&mut t, &[p(10, 1, 800), p(11, 10, 70)], false), 70);
    }

    #[test]
    fn a_reaped_child_is_counted_once() {
        let mut t = IoTable::default();
        written(&mut t, &[p(10, 1, 0)], true);
        // The child wrote 1,000 by this pass, and 200 more before it exited.
        assert_eq!(
            written(&mut t, &[p(10, 1, 0), p(11, 10, 1000)], false),
            1000
        );
        // Reaped: the parent's counters jump by the child's 1,200; the parent wrote 5 itself.
        assert_eq!(written(&mut t, &[p(10, 1, 1205)], false), 205);
        assert_eq!(written(&mut t, &[p(10, 1, 1205)], false), 0);
    }

    #[test]
    fn a_jump_seen_a_pass_late_still_pays_the_credit() {
        let mut t = IoTable::default();
        written(&mut t, &[p(10, 1, 0)], true);
        assert_eq!(written(&mut t, &[p(10, 1, 0), p(11, 10, 400)], false), 400);
        // The parent was read before it reaped the child, the child after: gone, no jump yet.
        assert_eq!(written(&mut t, &[p(10, 1, 0)], false), 0);
        assert_eq!(written(&mut t, &[p(10, 1, 450)], false), 50);
    }

    #[test]
    fn grandchildren_reaped_with_their_parent_are_owed_by_the_survivor() {
        let mut t = IoTable::default();
        written(&mut t, &[p(10, 1, 0)], true);
        assert_eq!(
            written(
                &mut t,
                &[p(10, 1, 0), p(11, 10, 100), p(12, 11, 1000)],
                false
            ),
            1100
        );
        // 12 reaped by 11, 11 by 10: 10 jumps by everything (1,100 + 30 new).
        assert_eq!(written(&mut t, &[p(10, 1, 1130)], false), 30);
    }

    #[test]
    fn a_credit_no_jump_pays_is_dropped() {
        let mut t = IoTable::default();
        written(&mut t, &[p(10, 1, 0)], true);
        written(&mut t, &[p(10, 1, 0), p(11, 10, 400)], false);
        // Reparented elsewhere and reaped there: 10 never jumps; its own bytes count again.
        written(&mut t, &[p(10, 1, 0)], false);
        written(&mut t, &[p(10, 1, 0)], false);
        assert_eq!(written(&mut t, &[p(10, 1, 60)], false), 60);
    }
}
