"""Stands in, on the test control plane, for two controllers a real cluster runs and this one
cannot (no Tetragon, no storage provisioner run here). Each does the one act kovenant relies on:

- Tetragon's operator registers the TracingPolicy CRDs when it starts (crds.installMethod:
  operator, the chart's default): once a tetragon-operator Deployment exists, the CRDs of the
  pinned version (../shared/upstream) are created, as the operator would, and kept (the operator
  never deletes them).
- A volume provisioner: a volume whose claim was deleted (Released) is made Available again, so
  the pre-made volumes of cluster.sh serve every install, purge and install again.

Usage: stand_ins.py DIR UPSTREAM_TETRAGON_DIR   (DIR holds server, pki/ of cluster.sh)
"""
import glob
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

DIR, UPSTREAM = sys.argv[1], sys.argv[2]
SERVER = open(os.path.join(DIR, "server")).read().strip()
CTX = ssl.create_default_context(cafile=os.path.join(DIR, "pki/ca.crt"))
CTX.load_cert_chain(os.path.join(DIR, "pki/admin.crt"), os.path.join(DIR, "pki/admin.key"))


def call(method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(SERVER + path, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, context=CTX, timeout=10) as res:
        return json.load(res)


def crd_name(text):
    for line in text.splitlines():
        if line.startswith("  name: "):
            return line.split(":", 1)[1].strip()
    return None


def operator():
    deps = call("GET", "/apis/apps/v1/deployments?labelSelector=app.kubernetes.io%2Fname%3Dtetragon-operator")
    if not deps.get("items"):
        return
    for f in sorted(glob.glob(os.path.join(UPSTREAM, "cilium.io_tracingpolicies*.yaml"))):
        text = open(f).read()
        name = crd_name(text)
        try:
            call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                 text.encode(), "application/yaml")
            print(f"operator stand-in: created CRD {name}", flush=True)


def provisioner():
    for pv in call("GET", "/api/v1/persistentvolumes")["items"]:
        if pv.get("status", {}).get("phase") == "Released":
            name = pv["metadata"]["name"]
            patch = json.dumps([{"op": "remove", "path": "/spec/claimRef"}]).encode()
            call("PATCH", f"/api/v1/persistentvolumes/{name}", patch, "application/json-patch+json")
            print(f"provisioner stand-in: volume {name} is available again", flush=True)


while True:
    for act in (operator, provisioner):
        try:
            act()
        except Exception as e:  # the API server restarting, a race with a delete: try again
            print(f"{act.__name__} stand-in: {e}", flush=True)
    time.sleep(0.5)
