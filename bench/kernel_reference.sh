#!/usr/bin/env bash
# DESIGN.md section 7's reference workload, in one run, on this machine's kernel (as root):
# a Go HTTP server and load generator (bench/kernel_load) in two pod network namespaces, 20
# keep-alive connections at full speed plus 100 short connections a second. Measured at once:
#   - the read/write-family system calls of the two pods (syscall tracepoints, bpftrace): each
#     would have been one or two Tetragon events under the seed's per-call policies;
#   - what the live agent read instead (its kovenant_agent points: sockets dumped or looked up,
#     processes read, destroy notifications, entries of the kernel's closed-socket sums,
#     Tetragon events), and the ratio;
#   - the agent's CPU time per window (/proc/PID/stat) and its peak RSS;
#   - the agent's totals against the load generator's own byte counts.
# Usage: bench/kernel_reference.sh [SECONDS] [WINDOW]   (default 30 10s)
#   KOVENANT=path/to/kovenant (default target/release/kovenant, built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
window=${2:-10s}
kovenant=${KOVENANT:-target/release/kovenant}
[ -x "$kovenant" ] || cargo build --release --quiet --bin kovenant
work=$(mktemp -d /tmp/kernel-ref.XXXXXX)
(cd bench/kernel_load && go build -o "$work/kovhttp" .)
n=251                        # 10.244.251.0/24: this benchmark's subnet
ns_c=kref-client ns_s=kref-server
ip_c=10.244.$n.11 ip_s=10.244.$n.12
uid_c=6b6f7601-0000-4000-8000-000000000011 uid_s=6b6f7601-0000-4000-8000-000000000012
cid_c=$(printf 'c%.0s' {1..64}) cid_s=$(printf 'e%.0s' {1..64})
cg_c=/sys/fs/cgroup/unified/kubepods/besteffort/pod$uid_c/$cid_c
cg_s=/sys/fs/cgroup/unified/kubepods/besteffort/pod$uid_s/$cid_s
pids=()
# bpftrace finds the syscall tracepoints in tracefs: mounted for the run when it is not.
mounted_tracefs=
if [ ! -d /sys/kernel/tracing/events/syscalls ]; then
  mount -t tracefs nodev /sys/kernel/tracing
  mounted_tracefs=1
fi

cleanup() {
  exec 2>/dev/null   # bash reports every killed job; nothing to say here
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  ip netns del $ns_c 2>/dev/null || true
  ip netns del $ns_s 2>/dev/null || true
  for d in "$cg_c" "$cg_s"; do
    rmdir "$d" "$(dirname "$d")" 2>/dev/null || true
  done
  rmdir /sys/fs/cgroup/unified/kubepods/besteffort /sys/fs/cgroup/unified/kubepods 2>/dev/null || true
  [ -n "${KEEP:-}" ] && cp "$work/agent.lp" "$KEEP"; rm -rf "$work"
  [ -z "$mounted_tracefs" ] || umount /sys/kernel/tracing
}
trap cleanup EXIT

ip netns add $ns_c
ip netns add $ns_s
ip link add kref-c netns $ns_c type veth peer name kref-s netns $ns_s
ip -n $ns_c addr add $ip_c/32 dev kref-c
ip -n $ns_s addr add $ip_s/32 dev kref-s
for x in "$ns_c kref-c $ip_s $ip_c" "$ns_s kref-s $ip_c $ip_s"; do
  set -- $x
  ip -n "$1" link set lo up
  ip -n "$1" link set "$2" up
  ip -n "$1" route add "$3/32" dev "$2" src "$4"
done
mkdir -p "$cg_c" "$cg_s"

python3 - "$work/cluster.json" <<PY
import json, sys
ns = "kref"
def pod(name, uid, ip, rs):
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "uid": "d-" + uid}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": rs, "namespace": ns, "uid": "r-" + uid,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": "d-" + uid, "controller": True}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": rs + "-x1", "namespace": ns, "uid": uid,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "r-" + uid, "controller": True}]},
         "spec": {"nodeName": "kref-node"}, "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
    ]
items = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kref-node", "uid": "n"},
          "status": {"addresses": [{"type": "InternalIP", "address": "10.244.$n.1"}]}}]
items += pod("loadgen", "$uid_c", "$ip_c", "loadgen-5d9c")
items += pod("web", "$uid_s", "$ip_s", "web-7f4b")
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[1], "w"))
PY

# Each pod's sandbox holds its namespace from the start, as Kubernetes' pause container does.
for x in "$cg_c $ns_c" "$cg_s $ns_s"; do
  set -- $x
  sh -c "echo \$\$ > $1/cgroup.procs; exec ip netns exec $2 sleep 100000" &
  pids+=($!)
done
# The server, in its pod (cgroup first, then the namespace: exec after both).
sh -c "echo \$\$ > $cg_s/cgroup.procs; exec ip netns exec $ns_s $work/kovhttp server $ip_s:8080 1000" &
pids+=($!)
for _ in $(seq 100); do ip netns exec $ns_s ss -ltnH "sport = :8080" | grep -q . && break; sleep 0.05; done

"$kovenant" agent --source none --cluster-snapshot "$work/cluster.json" --node-name kref-node \
  --window "$window" >"$work/agent.lp" 2>"$work/agent.err" &
agent=$!
pids+=($agent)
until grep -qs "^kovenant_agent" "$work/agent.lp"; do sleep 0.1; done
cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)

# Every read/write-family call of the two pods' processes, by their cgroup (v2 id).
cat >"$work/calls.bt" <<'BT'
tracepoint:syscalls:sys_enter_read, tracepoint:syscalls:sys_enter_write,
tracepoint:syscalls:sys_enter_readv, tracepoint:syscalls:sys_enter_writev,
tracepoint:syscalls:sys_enter_sendto, tracepoint:syscalls:sys_enter_recvfrom,
tracepoint:syscalls:sys_enter_sendmsg, tracepoint:syscalls:sys_enter_recvmsg,
tracepoint:syscalls:sys_enter_sendmmsg, tracepoint:syscalls:sys_enter_recvmmsg
/cgroup == cgroupid("CG_C") || cgroup == cgroupid("CG_S")/
{ @calls[probe] = count(); @total = count(); }
BT
sed -i "s#CG_C#$cg_c#; s#CG_S#$cg_s#" "$work/calls.bt"
bpftrace "$work/calls.bt" >"$work/calls.out" 2>&1 &
bt=$!
pids+=($bt)
for _ in $(seq 300); do grep -q Attaching "$work/calls.out" && break; sleep 0.1; done
sleep 1

start=$(date +%s.%N)
sh -c "echo \$\$ > $cg_c/cgroup.procs; exec ip netns exec $ns_c $work/kovhttp load http://$ip_s:8080/ $secs 20 100 100 1000" >"$work/load.json"
end=$(date +%s.%N)
# Two windows more: the last connections' destroy notifications and a window with nothing new.
sleep "$(( ${window%s} * 2 + 1 ))"
kill -INT $bt; wait $bt 2>/dev/null || true
cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$agent/status)
kill -TERM $agent; wait $agent || true

python3 - "$work" "$start" "$end" "$cpu0" "$cpu1" "$hwm" "$(getconf CLK_TCK)" <<'PY'
import json, re, sys
work, start, end, cpu0, cpu1, hwm, hz = sys.argv[1:]
secs = float(end) - float(start)
load = json.load(open(work + "/load.json"))
calls = 0
for line in open(work + "/calls.out"):
    m = re.match(r"@total: (\d+)", line)
    if m:
        calls = int(m.group(1))
points = []
for line in open(work + "/agent.lp"):
    series, fields, ts = line.rsplit(" ", 2)
    m, *tags = series.split(",")
    f = {k: int(v[:-1]) for k, v in (x.split("=") for x in fields.split(","))}
    points.append((m, dict(t.split("=", 1) for t in tags), f))
agent = [f for m, _, f in points if m == "kovenant_agent"]
kinds = ("sockets", "processes", "destroy_events", "closed_flows", "tetragon_events")
read = sum(f.get(k, 0) for f in agent for k in kinds)
flows = [(t, f) for m, t, f in points if m == "tcp_flow" and t.get("src_namespace") == "kref"]
cli = [f for t, f in flows if t.get("src_workload") == "loadgen" and t.get("role") == "client"]
srv = [f for t, f in flows if t.get("src_workload") == "web" and t.get("role") == "server"]
s = lambda rows, k: sum(r.get(k, 0) for r in rows)
windows = len(agent)
cpu_s = (int(cpu1) - int(cpu0)) / int(hz)
print(f"load: {load['requests']} requests in {secs:.1f} s ({load['requests']/secs:,.0f}/s), {load['connections']} connections, {load['failures']} failures")
print(f"read/write-family calls of the two pods: {calls:,} ({calls/secs:,.0f}/s); per-call Tetragon events at 2 per call (kprobe + syscall hook): {2*calls:,}")
print(f"agent read: {read:,} records in {windows} windows (" + ", ".join(f"{k} {sum(f.get(k, 0) for f in agent):,}" for k in kinds) + ")")
print(f"ratio: {calls/max(read,1):,.0f}x fewer than the calls, {2*calls/max(read,1):,.0f}x fewer than the per-call events")
tot = lambda k: sum(f.get(k, 0) for f in agent)
print(f"agent totals: destroy_events {tot('destroy_events'):,}, destroys_lost {tot('destroys_lost'):,}, sample_us {tot('sample_us'):,}")
others = {}
for t, f in flows:
    k = (t.get("src_workload"), t.get("peer_type"), t.get("peer_name"), t.get("port"), t.get("role"))
    o = others.setdefault(k, [0, 0, 0, 0])
    for i, n in enumerate(("connects", "accepts", "bytes_sent", "bytes_received")):
        o[i] += f.get(n, 0)
for k, v in sorted(others.items()):
    print("  flow", k, "connects, accepts, sent, received:", v)
print(f"agent CPU: {cpu_s:.3f} s over the run, {cpu_s/max(windows,1)*1000:.1f} ms per window; peak RSS {int(hwm)/1024:.1f} MiB")
print(f"exact: client bytes_sent {s(cli,'bytes_sent'):,} vs load generator {load['bytes_sent']:,}; "
      f"client bytes_received {s(cli,'bytes_received'):,} vs {load['bytes_received']:,} (within {load['connections']}); "
      f"server received {s(srv,'bytes_received'):,}, sent {s(srv,'bytes_sent'):,}; "
      f"connects {s(cli,'connects'):,} vs {load['connections']:,}")
ok = s(cli, "bytes_sent") == load["bytes_sent"] and abs(s(cli, "bytes_received") - load["bytes_received"]) <= load["connections"] \
    and s(srv, "bytes_sent") == load["bytes_received"] and abs(s(srv, "bytes_received") - load["bytes_sent"]) <= load["connections"]
print("totals exact:", "yes" if ok else "NO")
sys.exit(0 if ok else 1)
PY
