#!/usr/bin/env python3
"""Give a cluster snapshot's objects what a real API server returns with them.

tetragon_corpus.py writes lean objects (the fields attribution reads). A real `kubectl get -o json`
or watch carries much more: managedFields, a dozen labels and annotations, containers with env,
probes, resources and volume mounts, and a full status (conditions, containerStatuses). This adds
such fields, shaped as Kubernetes 1.3x returns them, so a pod is 6-8 KB of JSON, and keeps every
field the corpus set (so the ground truth still holds).

  python3 bench/enrich_snapshot.py IN/cluster.json OUT/cluster.json
"""
import json
import sys

TS = "2026-01-01T00:00:00Z"


def fields_v1(obj, depth=0):
    """managedFields' fieldsV1 mirrors the keys of the object it manages (here to 4 levels)."""
    if depth >= 4:
        return {}
    if isinstance(obj, dict):
        return {f"f:{k}": fields_v1(v, depth + 1) for k, v in obj.items() if k not in ("status",)}
    if isinstance(obj, list):
        return {f'k:{{"name":"{x.get("name", i)}"}}' if isinstance(x, dict) else f"v:{x}": fields_v1(x, depth + 1)
                for i, x in enumerate(obj)}
    return {}


def labels(meta, i):
    base = dict(meta.get("labels") or {})
    name = meta["name"]
    extra = {
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/version": "1.29.3",
        "team": f"team-{i % 17}",
        "cost-center": f"cc-{i % 101:04d}",
        "environment": "production",
        "tier": "backend",
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": name[:40],
        "service.istio.io/canonical-revision": "v1",
    }
    for k, v in extra.items():
        base.setdefault(k, v)
    return base


def annotations(meta):
    base = dict(meta.get("annotations") or {})
    extra = {
        "kubectl.kubernetes.io/restartedAt": TS,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
        "sidecar.istio.io/status": json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                                               "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token"],
                                               "imagePullSecrets": None, "revision": "default"}),
        "checksum/config": "9f2c6b1e0d4a8c7b5e3f1a2d4c6b8e0f9a1c3e5d7b9f1a3c5e7d9b1f3a5c7e9d",
        "checksum/secret": "1a3c5e7d9b1f3a5c7e9d9f2c6b1e0d4a8c7b5e3f1a2d4c6b8e0f9a1c3e5d7b9f",
        "kubernetes.io/psp": "restricted",
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
    }
    for k, v in extra.items():
        base.setdefault(k, v)
    return base


def container(c, i):
    c = dict(c)
    c.setdefault("imagePullPolicy", "IfNotPresent")
    c["env"] = [{"name": f"APP_SETTING_{n:02d}", "value": f"value-{i}-{n}-" + "x" * 24} for n in range(6)] + [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]
    c["ports"] = [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    c["resources"] = {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 5,
             "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    c["livenessProbe"] = probe
    c["readinessProbe"] = probe
    c["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                         {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "readOnly": True}]
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    c["securityContext"] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    return c


def pod(o, i):
    spec = o.setdefault("spec", {})
    spec["containers"] = [container(c, i) for c in spec.get("containers", [])]
    spec.update({
        "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                    {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                                     "fieldPath": "metadata.namespace"}}]}}]}}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {"fsGroup": 2000},
        "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
    })
    st = o.setdefault("status", {})
    st.setdefault("phase", "Running")
    st["conditions"] = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": TS}
                        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    st["hostIPs"] = [{"ip": st.get("hostIP", "172.18.0.1")}]
    st["startTime"] = TS
    st["qosClass"] = "Burstable"
    st["containerStatuses"] = [{
        "name": c["name"], "state": {"running": {"startedAt": TS}}, "lastState": {}, "ready": True,
        "restartCount": 0, "image": c.get("image", ""), "imageID": c.get("image", "") + "@sha256:" + "ab" * 32,
        "containerID": "containerd://" + "0123456789abcdef" * 4, "started": True} for c in spec["containers"]]


def enrich(o, i):
    meta = o.setdefault("metadata", {})
    meta["labels"] = labels(meta, i)
    meta["annotations"] = annotations(meta)
    meta.setdefault("resourceVersion", str(100000 + i))
    meta.setdefault("generation", 1)
    if o.get("kind") == "Pod":
        pod(o, i)
    # The controller manager owns metadata and spec; the kubelet owns the status subresource.
    owned = {"kube-controller-manager": {k: v for k, v in o.items() if k in ("metadata", "spec")},
             "kubelet": {"status": {k: v for k, v in o.get("status", {}).items()}}}
    if o.get("kind") != "Pod":
        del owned["kubelet"]
    meta["managedFields"] = [
        {"manager": m, "operation": "Update", "apiVersion": o.get("apiVersion", "v1"), "time": TS,
         "fieldsType": "FieldsV1", "fieldsV1": fields_v1(f) if m != "kubelet" else {"f:status": fields_v1(f["status"])},
         **({"subresource": "status"} if m == "kubelet" else {})}
        for m, f in owned.items()
    ]
    return o


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        doc = json.load(f)
    doc["items"] = [enrich(o, i) for i, o in enumerate(doc["items"])]
    with open(dst, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    pods = [o for o in doc["items"] if o.get("kind") == "Pod"]
    size = sum(len(json.dumps(p, separators=(",", ":"))) for p in pods) / max(1, len(pods))
    print(json.dumps({"out": dst, "items": len(doc["items"]), "pods": len(pods), "bytes_per_pod": round(size)}))


if __name__ == "__main__":
    main()
