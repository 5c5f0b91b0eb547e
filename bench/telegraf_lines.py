#!/usr/bin/env python3
"""The agent's output for bench/telegraf_buffer.sh: COUNT lines of InfluxDB line protocol in the
shapes the chart's agent writes (`--pod-activity`, docs/series-budget.md): tcp_flow and pod_io per
workload, pod_activity per pod, kovenant_agent, with tags as a real cluster names things (an
EKS-style node name, Deployments of two replicas with their pods' hash suffixes, Helm releases),
written window after window as the agent writes them, then nothing more. Run as telegraf's execd
child: once every line is written it touches DONE and waits for its stdin to close (telegraf
closes it to stop it), so execd does not restart it.

Usage: telegraf_lines.py COUNT DONE [FLOWS_PER_WINDOW PODS]  (default 200 flows, 40 pods: a window
is 200 tcp_flow + 20 pod_io + 1 kovenant_agent for the workload-level bucket, 40 pod_activity for
the pod-level one)
"""
import random
import sys
import time

NODE = "ip-10-0-12-34.eu-west-1.compute.internal"
NAMESPACES = ["payments", "checkout", "catalog", "search", "identity", "kube-system", "monitoring", "ingress-nginx"]


def pods(rng, count):
    """(namespace, workload, pod, release) of `count` pods, two replicas a workload."""
    out = []
    for i in range(count):
        w = i // 2
        ns = NAMESPACES[w % len(NAMESPACES)]
        workload = f"{ns}-{['api', 'worker', 'frontend', 'cache', 'db-proxy'][w % 5]}-{w}"
        suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        out.append((ns, workload, f"{workload}-{rng.randrange(16**10):010x}-{suffix}", ns))
    return out


def main():
    count, done = int(sys.argv[1]), sys.argv[2]
    flows = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    npods = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    rng = random.Random(7)
    the_pods = pods(rng, npods)
    window = (int(time.time()) // 10) * 10 - 24 * 3600
    out = sys.stdout
    written = 0
    while written < count:
        ts = window * 1_000_000_000
        lines = []
        for i in range(flows):
            ns, wl, _, rel = the_pods[i % npods]
            peer = rng.random()
            if peer < 0.5:
                pns, pwl, _, _ = the_pods[rng.randrange(npods)]
                peer_tags = f"peer_name={pwl},peer_namespace={pns},peer_type=service,port=8080"
            elif peer < 0.8:
                pns, pwl, _, _ = the_pods[rng.randrange(npods)]
                peer_tags = f"peer_name={pwl},peer_namespace={pns},peer_type=pod,port={rng.choice([5432, 6379, 9092])}"
            else:
                ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                peer_tags = f"peer_name={ip},peer_type=external,port=443"
            role = "client" if rng.random() < 0.7 else "server"
            lines.append(
                f"tcp_flow,node={NODE},{peer_tags},role={role},src_kind=Deployment,"
                f"src_namespace={ns},src_release={rel},src_workload={wl} "
                f"connects={rng.randrange(50)}i,accepts={rng.randrange(50)}i,closes={rng.randrange(50)}i,"
                f"bytes_sent={rng.randrange(10**8)}i,bytes_received={rng.randrange(10**8)}i,"
                f"retrans_bytes={rng.randrange(10**4)}i,rtt_us_sum={rng.randrange(10**7)}i,"
                f"rtt_samples={rng.randrange(1, 500)}i {ts}"
            )
        for ns, wl, _, rel in the_pods[::2]:
            lines.append(
                f"pod_io,kind=Deployment,namespace={ns},node={NODE},release={rel},workload={wl} "
                f"reads={rng.randrange(10**6)}i,read_bytes={rng.randrange(10**9)}i,"
                f"writes={rng.randrange(10**6)}i,write_bytes={rng.randrange(10**9)}i,"
                f"disk_read_bytes={rng.randrange(10**8)}i,disk_write_bytes={rng.randrange(10**8)}i {ts}"
            )
        for ns, wl, pod, rel in the_pods:
            lines.append(
                f"pod_activity,kind=Deployment,namespace={ns},node={NODE},pod={pod},release={rel},workload={wl} "
                f"connects={rng.randrange(50)}i,accepts={rng.randrange(50)}i,closes={rng.randrange(50)}i,"
                f"bytes_sent={rng.randrange(10**8)}i,bytes_received={rng.randrange(10**8)}i,"
                f"retrans_bytes={rng.randrange(10**4)}i,rtt_us_sum={rng.randrange(10**7)}i,"
                f"rtt_samples={rng.randrange(1, 500)}i,reads={rng.randrange(10**6)}i,"
                f"read_bytes={rng.randrange(10**9)}i,writes={rng.randrange(10**6)}i,"
                f"write_bytes={rng.randrange(10**9)}i,disk_read_bytes={rng.randrange(10**8)}i,"
                f"disk_write_bytes={rng.randrange(10**8)}i {ts}"
            )
        lines.append(
            f"kovenant_agent,node={NODE} netns={npods + 1}i,netns_quiet=3i,sockets=2400i,processes=900i,"
            f"destroy_events=310i,destroys_lost=0i,sample_us=53000i,tetragon_lines=1200i,"
            f"tetragon_events=1190i,bad_lines=0i,ignored=10i,unresolved_peers=4i,keys={flows + npods // 2 + npods}i,"
            f"dropped_keys=0i,rotated_files_read=0i,rotated_files_lost=0i,truncations=0i,lag_ms=12i {ts}"
        )
        lines = lines[: count - written]
        out.write("\n".join(lines) + "\n")
        written += len(lines)
        window += 10
    out.flush()
    open(done, "w").close()
    sys.stdin.read()


if __name__ == "__main__":
    main()
