//! The event-shaped half of the fast scanner: which keys fill which fields of `Envelope`.
use super::event::{Arg, Args, Envelope, HelmLabels, Kprobe, Pod, Process, Sock};
use super::scan::{P, once};
use super::scan_cache::PodMemo;

type R<T> = Option<T>;

impl<'a> P<'a> {
    pub(super) fn envelope(&mut self, env: &mut Envelope<'a>, memo: &mut PodMemo) -> R<()> {
        self.object(|p: &mut Self, key| {
            match key {
                // As the serde visitor: the last of repeated top-level keys wins.
                // Filled in place: the structs are large, and moving them costs.
                "process_kprobe" => {
                    if p.peek()? == b'n' {
                        p.literal(b"null")?;
                        env.kprobe_invalid = true;
                    } else {
                        p.kprobe(env.kprobe.insert(Kprobe::default()), memo)?;
                    }
                }
                "node_name" => env.node_name = p.opt_str()?,
                "time" => env.time = p.opt_str()?,
                _ => {
                    env.other_kind |= p.peek()? == b'{';
                    p.skip_value()?;
                }
            }
            Some(())
        })
    }

    #[inline]
    fn kprobe(&mut self, k: &mut Kprobe<'a>, memo: &mut PodMemo) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            match key {
                "process" => {
                    once(&mut seen, 1)?;
                    p.opt_into(&mut k.process, |p, out| p.process(out, memo))?;
                }
                "function_name" => {
                    once(&mut seen, 2)?;
                    k.function_name = p.opt_str()?;
                }
                "args" => {
                    once(&mut seen, 4)?;
                    k.args = p.args()?;
                }
                "return" => {
                    once(&mut seen, 8)?;
                    p.opt_into(&mut k.ret, Self::arg)?;
                }
                "policy_name" => {
                    once(&mut seen, 16)?;
                    k.policy_name = p.opt_str()?;
                }
                _ => p.skip_value()?,
            }
            Some(())
        })
    }

    #[inline]
    fn process(&mut self, out: &mut Process<'a>, memo: &mut PodMemo) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            if key == "pod" {
                once(&mut seen, 1)?;
                p.opt_into(&mut out.pod, |p, pod| p.pod_memo(pod, memo))
            } else {
                p.skip_value()
            }
        })
    }

    #[inline]
    pub(super) fn pod(&mut self, pod: &mut Pod<'a>) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            match key {
                "namespace" => (once(&mut seen, 1)?, pod.namespace = p.opt_str()?).1,
                "name" => (once(&mut seen, 2)?, pod.name = p.opt_str()?).1,
                "workload" => (once(&mut seen, 4)?, pod.workload = p.opt_str()?).1,
                "workload_kind" => (once(&mut seen, 8)?, pod.workload_kind = p.opt_str()?).1,
                "pod_labels" => {
                    once(&mut seen, 16)?;
                    p.opt_into(&mut pod.pod_labels, Self::labels)?;
                }
                _ => p.skip_value()?,
            }
            Some(())
        })
    }

    #[inline]
    fn labels(&mut self, l: &mut HelmLabels<'a>) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            match key {
                "app.kubernetes.io/instance" => (once(&mut seen, 1)?, l.instance = p.opt_str()?).1,
                "app.kubernetes.io/managed-by" => {
                    (once(&mut seen, 2)?, l.managed_by = p.opt_str()?).1
                }
                _ => p.skip_value()?,
            }
            Some(())
        })
    }

    #[inline]
    fn args(&mut self) -> R<Args<'a>> {
        let mut out = Args::default();
        self.array(|p: &mut Self| {
            let mut arg = Arg::default();
            p.arg(&mut arg)?;
            if out.sock.is_none() {
                out.sock = arg.sock_arg;
            }
            if out.size.is_none() {
                out.size = arg.size_arg.map(|v| v.0);
            }
            Some(())
        })?;
        Some(out)
    }

    #[inline]
    fn arg(&mut self, a: &mut Arg<'a>) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            match key {
                "sock_arg" => {
                    (
                        once(&mut seen, 1)?,
                        p.opt_into(&mut a.sock_arg, Self::sock)?,
                    )
                        .1
                }
                "size_arg" => (once(&mut seen, 2)?, a.size_arg = p.u64()?).1,
                "int_arg" => (once(&mut seen, 4)?, a.int_arg = p.i64()?).1,
                "long_arg" => (once(&mut seen, 8)?, a.long_arg = p.i64()?).1,
                _ => p.skip_value()?,
            }
            Some(())
        })
    }

    #[inline]
    fn sock(&mut self, s: &mut Sock<'a>) -> R<()> {
        let mut seen = 0u8;
        self.object(|p: &mut Self, key| {
            match key {
                "daddr" => (once(&mut seen, 1)?, s.daddr = p.opt_str()?).1,
                "sport" => (once(&mut seen, 2)?, s.sport = p.u64()?).1,
                "dport" => (once(&mut seen, 4)?, s.dport = p.u64()?).1,
                "saddr" => (once(&mut seen, 8)?, s.saddr = p.opt_str()?).1,
                _ => p.skip_value()?,
            }
            Some(())
        })
    }
}
