#!/usr/bin/env bash
# The live agent's cost on a busy node (DESIGN.md section 7), on this machine's kernel (as root):
# 100 pod network namespaces, each with 100 loopback connections held open (200 sockets, plus a
# listener: 20,100 sockets), and 2,000 processes in the pods' kubelet-named cgroups (one holder
# and 19 idle processes per pod). The agent runs --window WINDOW for WINDOWS windows; measured:
# its CPU time per window (/proc/PID/stat utime+stime, and its own sample_us), its peak RSS
# (VmHWM), and the counts it reports (netns, sockets, processes).
# Usage: bench/kernel_scale.sh [WINDOWS] [WINDOW]   (default 6 10s)
#   KOVENANT=path/to/kovenant (default target/release/kovenant, built when missing)
#   BUSY=1: every namespace also carries a trickle (one 100-byte write a second on a connection
#   of its own), so no namespace is quiet in any window and every one is read each pass, as on
#   a node whose pods all see traffic (kubelet probes alone do that).
set -euo pipefail
cd "$(dirname "$0")/.."
windows=${1:-6}
window=${2:-10s}
pods=100 conns=100 idle=19
kovenant=${KOVENANT:-target/release/kovenant}
[ -x "$kovenant" ] || cargo build --release --quiet --bin kovenant
work=$(mktemp -d /tmp/kernel-scale.XXXXXX)
gcc -static -O2 -o "$work/kovload" tests/it/kernel/kovload.c
root=/sys/fs/cgroup/unified/kubepods.slice/kubepods-besteffort.slice
holders=()

uid() { printf '6b6f7602-0000-4000-8000-%012d' "$1"; }
cg() { local u; u=$(uid "$1"); echo "$root/kubepods-besteffort-pod${u//-/_}.slice/cri-containerd-$(printf '%064d' "$1").scope"; }

cleanup() {
  exec 2>/dev/null   # bash reports every killed job; nothing to say here
  for p in "${holders[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for i in $(seq 1 $pods); do
    d=$(cg "$i")
    [ -d "$d" ] && for p in $(cat "$d/cgroup.procs"); do kill -KILL "$p" 2>/dev/null || true; done
  done
  { wait; } 2>/dev/null || true
  for i in $(seq 1 $pods); do
    ip netns del "kscale-$i" 2>/dev/null || true
    d=$(cg "$i")
    rmdir "$d" "$(dirname "$d")" 2>/dev/null || true
  done
  rmdir "$root" "$(dirname "$root")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/cluster.json" "$pods" <<'PY'
import json, sys
out, pods = sys.argv[1], int(sys.argv[2])
items = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kscale-node", "uid": "n"},
          "status": {"addresses": [{"type": "InternalIP", "address": "10.244.252.1"}]}}]
for i in range(1, pods + 1):
    uid = "6b6f7602-0000-4000-8000-%012d" % i
    items.append({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "idle-%d" % i, "namespace": "kscale", "uid": uid},
        "spec": {"nodeName": "kscale-node"},
        "status": {"phase": "Running", "podIP": "10.244.252.%d" % (i + 1)}})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(out, "w"))
PY

for i in $(seq 1 $pods); do
  ns=kscale-$i
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  d=$(cg "$i")
  mkdir -p "$d"
  "$work/kovload" netns "/run/netns/$ns" listen 127.0.0.1 9000 pairs $conns &
  holders+=($!)
  echo $! >"$d/cgroup.procs"
  if [ "${BUSY:-0}" = 1 ]; then
    "$work/kovload" netns "/run/netns/$ns" listen 127.0.0.1 9001 sink &
    holders+=($!)
    "$work/kovload" netns "/run/netns/$ns" stream 127.0.0.1 9001 100000 100 1000 &
    holders+=($!)
  fi
  for _ in $(seq 1 $idle); do
    sh -c "echo \$\$ > $d/cgroup.procs; exec ip netns exec $ns sleep 100000" &
  done
done
# Release the holders once they wait (SIGUSR1 is blocked until their sigwait takes it).
sleep 2
for p in "${holders[@]}"; do kill -USR1 "$p"; done
sleep 2
echo "sockets: $(for i in $(seq 1 $pods); do ip netns exec kscale-$i ss -tanH; done | wc -l) in $pods namespaces; processes: $(cat "$root"/*/*/cgroup.procs | wc -l) in pods"

"$kovenant" agent --source none --cluster-snapshot "$work/cluster.json" --node-name kscale-node \
  --window "$window" >"$work/agent.lp" 2>"$work/agent.err" &
agent=$!
until grep -qs "^kovenant_agent" "$work/agent.lp"; do sleep 0.1; done
cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)
user0=$(awk '{print $14}' /proc/$agent/stat)
until [ "$(grep -c '^kovenant_agent' "$work/agent.lp")" -ge $((windows + 1)) ]; do sleep 0.5; done
cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
user1=$(awk '{print $14}' /proc/$agent/stat)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$agent/status)
kill -TERM $agent; wait $agent || true
python3 - "$work/agent.lp" "$cpu0" "$cpu1" "$hwm" "$(getconf CLK_TCK)" "$windows" "${window%s}" "$((user1 - user0))" <<'PY'
import sys
lp, cpu0, cpu1, hwm, hz, windows, window, user = sys.argv[1:]
agent = []
for line in open(lp):
    if line.startswith("kovenant_agent"):
        fields = line.rsplit(" ", 2)[1]
        agent.append({k: int(v[:-1]) for k, v in (x.split("=") for x in fields.split(","))})
steady = agent[1:int(windows) + 1]
cpu = (int(cpu1) - int(cpu0)) / int(hz) / int(windows)
print("per window (steady):", ", ".join(f"{k}={steady[-1].get(k)}" for k in ("netns", "netns_quiet", "netns_looked_up", "sockets", "processes")))
print(f"agent CPU per {window} s window: {cpu*1000:.1f} ms ({cpu/int(window)*100:.2f}% of one core); "
      f"of which user {int(user)/int(hz)/int(windows)*1000:.1f} ms, kernel {cpu*1000-int(user)/int(hz)/int(windows)*1000:.1f} ms; "
      f"sample_us mean {sum(a.get('sample_us', 0) for a in steady)/len(steady)/1000:.1f} ms; peak RSS {int(hwm)/1024:.1f} MiB")
PY
