#!/usr/bin/env python3
"""A stand-in API server for measuring the live agent without a control plane.

Serves the objects of a cluster snapshot (a Kubernetes List, e.g. tetragon_corpus.py's
cluster.json or bench/enrich_snapshot.py's output) as the agent's nine watches ask for them:
paginated lists (limit/continue, as kube-rs's watcher pages them) and watches that stay open.
With --churn N, the pods watch replaces N pods a second: the DELETED of one pod and the ADDED of
a copy under a new name and address, as a rollout does. Not a Kubernetes API server: only what
the agent's requests need (no auth, no field or label selectors but the Tetragon one).

  python3 bench/fake_apiserver.py SNAPSHOT PORT [--churn N]
"""
import argparse
import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PLURALS = {
    "pods": "Pod", "services": "Service", "nodes": "Node", "replicasets": "ReplicaSet",
    "deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
    "jobs": "Job", "cronjobs": "CronJob",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("port", type=int)
    ap.add_argument("--churn", type=float, default=0.0, help="pods replaced per second")
    args = ap.parse_args()
    with open(args.snapshot) as f:
        items = json.load(f)["items"]
    by_kind = {}
    for it in items:
        it.setdefault("metadata", {})["resourceVersion"] = "1"
        by_kind.setdefault(it.get("kind"), []).append(json.dumps(it))
    del items
    pods = [json.loads(p) for p in by_kind.get("Pod", [])]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, body):
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            parts = url.path.strip("/").split("/")
            if url.path == "/version":
                return self.send('{"major":"1","minor":"34","gitVersion":"v1.34.0"}')
            kind = PLURALS.get(parts[-1])
            if kind is None or "namespaces" in parts:
                # The Tetragon pods (kube-logs only) and anything else: nothing.
                return self.send('{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}')
            if q.get("watch", [""])[0] in ("true", "1"):
                return self.watch(kind)
            limit = int(q.get("limit", ["0"])[0] or 0)
            start = int(q.get("continue", ["0"])[0] or 0)
            all_ = by_kind.get(kind, [])
            end = len(all_) if limit == 0 else min(len(all_), start + limit)
            meta = {"resourceVersion": "1"}
            if end < len(all_):
                meta["continue"] = str(end)
            body = '{"apiVersion":"v1","kind":"List","metadata":%s,"items":[%s]}' % (
                json.dumps(meta), ",".join(all_[start:end]))
            self.send(body)

        def watch(self, kind):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(text):
                data = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            try:
                if kind != "Pod" or args.churn <= 0 or not pods:
                    time.sleep(3600)
                    return
                n = 0
                while True:
                    old = pods[n % len(pods)]
                    new = copy.deepcopy(old)
                    n += 1
                    new["metadata"]["name"] = "%s-r%d" % (old["metadata"]["name"], n)
                    new["metadata"]["resourceVersion"] = str(n + 1)
                    ip = "10.%d.%d.%d" % (128 + (n >> 16) % 64, (n >> 8) % 256, n % 256)
                    new.setdefault("status", {})["podIP"] = ip
                    new["status"]["podIPs"] = [{"ip": ip}]
                    chunk(json.dumps({"type": "DELETED", "object": old}) + "\n")
                    chunk(json.dumps({"type": "ADDED", "object": new}) + "\n")
                    pods[(n - 1) % len(pods)] = new
                    time.sleep(1.0 / args.churn)
            except (BrokenPipeError, ConnectionResetError):
                return

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
