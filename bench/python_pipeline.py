#!/usr/bin/env python3
"""The approach kovenant agent replaces: json.loads per line, dict lookups, dict aggregation.

  python3 bench/python_pipeline.py CORPUS_DIR   (reads cluster.json and events.jsonl)
Prints the number of events read.
"""
import ipaddress
import json
import sys

d = sys.argv[1]
items = json.load(open(f"{d}/cluster.json"))["items"]
owners = {}
pods, pod_ips, svc_ips, node_ips = {}, {}, {}, {}
for it in items:
    m = it["metadata"]
    key = (it["kind"], m.get("namespace", ""), m["name"])
    refs = m.get("ownerReferences") or []
    owners[key] = ((refs[0]["kind"], refs[0]["name"]) if refs else None,
                   (m.get("annotations") or {}).get("meta.helm.sh/release-name", ""))
for it in items:
    m, k = it["metadata"], it["kind"]
    if k == "Pod":
        ns = m.get("namespace", "")
        kind, name, rel = "Pod", m["name"], ""
        refs = m.get("ownerReferences") or []
        if refs:
            kind, name = refs[0]["kind"], refs[0]["name"]
            for _ in range(3):
                o = owners.get((kind, ns, name))
                if not o:
                    break
                rel = o[1]
                if not o[0]:
                    break
                kind, name = o[0]
        pods[(ns, m["name"])] = (ns, name, kind, rel)
        if not it["spec"].get("hostNetwork"):
            pod_ips[it["status"]["podIP"]] = (ns, m["name"])
    elif k == "Service":
        svc_ips[it["spec"]["clusterIP"]] = (m.get("namespace", ""), m["name"])
    elif k == "Node":
        for a in it["status"]["addresses"]:
            node_ips[a["address"]] = m["name"]

flows, io = {}, {}
events = bad = 0
with open(f"{d}/events.jsonl", "rb") as f:
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(ev, dict) or not isinstance(ev.get("process_kprobe", {}), dict):
            bad += 1
            continue
        events += 1
        k = ev.get("process_kprobe")
        if k is None or not isinstance(k.get("args", []), list):
            continue
        fn = k.get("function_name", "")
        pod = k.get("process", {}).get("pod")
        node = ev.get("node_name", "")
        src = pods.get((pod["namespace"], pod["name"])) if pod else ("", node, "Node", "")
        args = k.get("args", [])
        ret = k.get("return", {})
        if fn.endswith("sys_read") or fn.endswith("sys_write"):
            n = int(ret.get("long_arg", args[-1].get("size_arg", 0)))
            c = io.setdefault(src, [0, 0, 0, 0])
            i = 0 if fn.endswith("read") else 2
            c[i] += 1
            c[i + 1] += max(n, 0)
            continue
        sock = args[0].get("sock_arg", {})
        ip = sock.get("daddr", "")
        if ip.startswith("127."):
            peer = ("loopback", "", "localhost")
        elif ip in svc_ips:
            peer = ("service",) + svc_ips[ip]
        elif ip in pod_ips:
            peer = ("pod",) + pods[pod_ips[ip]][:2]
        elif ip in node_ips:
            peer = ("node", "", node_ips[ip])
        elif ipaddress.ip_address(ip).is_private:
            peer = ("unresolved", "", ip)
        else:
            peer = ("external", "", ip)
        sport, dport = sock.get("sport", 0), sock.get("dport", 0)
        server = fn != "tcp_connect" and 32768 <= dport <= 60999 and not 32768 <= sport <= 60999
        key = (node, src, peer, sport if server else dport, "server" if server else "client")
        c = flows.setdefault(key, [0] * 6)
        if fn == "tcp_sendmsg":
            c[2] += 1
            c[3] += int(args[1]["size_arg"])
        elif fn == "tcp_recvmsg":
            c[4] += 1
            c[5] += max(int(ret.get("int_arg", 0)), 0)
        elif fn == "tcp_connect":
            c[0] += 1
        else:
            c[1] += 1
print(events)
