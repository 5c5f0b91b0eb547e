#!/usr/bin/env python3
"""Sums a replay's line protocol (stdin) as the flow contract says and compares it with the
generator's expected.json: exit 0 and "exact" when every group's totals match.

  kovenant agent --no-kernel ... | python3 bench/check_truth.py DIR/expected.json

A replay (`--no-kernel`) counts only kovenant-tcp's tcp_connect and inet_csk_accept events; the
corpus' per-call events (tcp_sendmsg, tcp_recvmsg, tcp_close, sys_read, sys_write) are the
retired per-call hooks', parsed and ignored. So the truth is each flow's connects (the generator
writes no accepts), no bytes, and no pod_io: bytes and pod I/O come from the kernel's counters
only.
"""
import json
import sys
from collections import defaultdict

FLOW_KEY = ["src_namespace", "src_workload", "src_kind", "src_release", "peer_type",
            "peer_namespace", "peer_name", "port", "role"]
FLOW_FIELDS = ["connects", "accepts", "closes", "bytes_sent", "bytes_received",
               "retrans_bytes", "rtt_us_sum", "rtt_samples"]
IO_KEY = ["namespace", "workload", "kind", "release"]
IO_FIELDS = ["reads", "read_bytes", "writes", "write_bytes", "disk_read_bytes",
             "disk_write_bytes"]


def split_escaped(s, sep):
    out, cur, esc = [], [], False
    for c in s:
        if esc:
            cur.append(c)
            esc = False
        elif c == "\\":
            esc = True
        elif c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return out


def parse(line):
    head, fields, _ts = split_escaped(line, " ")
    parts = split_escaped(head, ",")
    tags = dict(p.split("=", 1) for p in parts[1:])
    vals = {k: int(v.rstrip("i")) for k, v in (f.split("=", 1) for f in fields.split(","))}
    return parts[0], tags, vals


def main():
    expected = json.load(open(sys.argv[1]))
    got = {"tcp_flow": defaultdict(lambda: [0] * len(FLOW_FIELDS)),
           "pod_io": defaultdict(lambda: [0] * len(IO_FIELDS))}
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        m, tags, vals = parse(line)
        if m == "tcp_flow":
            k, fs = tuple(tags.get(t, "") for t in FLOW_KEY), FLOW_FIELDS
        elif m == "pod_io":
            k, fs = tuple(tags.get(t, "") for t in IO_KEY), IO_FIELDS
        else:
            continue
        acc = got[m][k]
        for i, f in enumerate(fs):
            acc[i] += vals.get(f, 0)
    bad = 0
    for m, section, key, fs in [("tcp_flow", "flows", FLOW_KEY, FLOW_FIELDS),
                                ("pod_io", "io", IO_KEY, IO_FIELDS)]:
        want = defaultdict(lambda: [0] * len(fs))
        # Only the flows' connects are a replay's to count (see above).
        for row in expected[section] if section == "flows" else []:
            k = tuple("" if row.get(t) is None else str(row.get(t)) for t in key)
            want[k][0] += row.get("connects", 0)
        g = {k: v for k, v in got[m].items() if any(v)}
        w = {k: v for k, v in want.items() if any(v)}
        if g != w:
            bad += 1
            diff = [k for k in set(g) | set(w) if g.get(k) != w.get(k)][:5]
            print(f"{m}: {len(diff)}+ groups differ, e.g. {diff}", file=sys.stderr)
    print("exact" if not bad else "DIFFERENT")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
