#!/usr/bin/env bash
# The agent live against the real control plane (.ci/cluster.sh: kube-apiserver, controllers,
# scheduler, kwok) holding 10,000 pods on 100 nodes: 10 namespaces x 10 Deployments x 100
# replicas, each Deployment with its Service. The agent watches the cluster as the DaemonSet
# runs it (its own kubeconfig, a followed empty export file); after it has listed everything,
# its peak RSS (VmHWM) and the watches it holds open on the API server (apiserver_longrunning_requests
# with verb WATCH, with the agent minus without) are printed.
# Usage: bench/cluster_live.sh [AGENT_BINARY]   (default target/release/kovenant)
set -euo pipefail
cd "$(dirname "$0")/.."
agent=$(realpath "${1:-target/release/kovenant}")
dir=$(mktemp -d /tmp/kovenant-live.XXXXXX)
trap '[ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null; .ci/cluster.sh stop "$dir"' EXIT
KOVENANT_CLUSTER_QPS=500 .ci/cluster.sh start "$dir" >/dev/null
# shellcheck disable=SC1091
source "$dir/env"
k() { "$KOVENANT_TEST_KUBECTL" --kubeconfig "$KOVENANT_TEST_KUBECONFIG" "$@"; }

python3 - >"$dir/objects.yaml" <<'PY'
for n in range(2, 100):
    print(f"""---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-{n}
  annotations: {{node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}}
  labels: {{kubernetes.io/hostname: kwok-node-{n}, kubernetes.io/os: linux, type: kwok}}""")
for ns in range(10):
    print(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{ns}}}")
    for d in range(10):
        print(f"""---
apiVersion: v1
kind: Service
metadata: {{name: app-{d}, namespace: team-{ns}}}
spec:
  selector: {{app: app-{d}}}
  ports: [{{port: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{d}
  namespace: team-{ns}
  labels: {{app.kubernetes.io/instance: shop-{ns}, app.kubernetes.io/managed-by: Helm}}
  annotations: {{meta.helm.sh/release-name: shop-{ns}}}
spec:
  replicas: 100
  selector: {{matchLabels: {{app: app-{d}}}}}
  template:
    metadata:
      labels: {{app: app-{d}, app.kubernetes.io/instance: shop-{ns}, app.kubernetes.io/managed-by: Helm, tier: backend, team: team-{ns}}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "9090"}}
    spec:
      tolerations: [{{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}}]
      containers:
      - name: app
        image: registry.example/app-{d}:1.4.2
        env: [{{name: MODE, value: production}}, {{name: LOG_LEVEL, value: info}}]
        ports: [{{containerPort: 8080}}, {{containerPort: 9090}}]
        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
        readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}""")
PY
started=$(date +%s)
k apply -f "$dir/objects.yaml" >/dev/null
running() { k get pods -A --no-headers --field-selector=status.phase=Running 2>/dev/null | grep -c '^team-' || true; }
while [ "$(running)" -lt 10000 ]; do
  if [ $(( $(date +%s) - started )) -gt 1800 ]; then echo "only $(running) pods Running after 30 min" >&2; exit 1; fi
  sleep 10
done
echo "10,000 pods Running on 100 nodes after $(( $(date +%s) - started )) s"

watches() {
  k get --raw /metrics | awk '/^apiserver_longrunning_requests\{/ && /verb="WATCH"/ {s += $NF} END {print s + 0}'
}
before=$(watches)
: >"$dir/export.log"
"$agent" agent --kubeconfig "$KOVENANT_TEST_KUBECONFIG" --source "file:$dir/export.log" \
  --node-name kwok-node-0 >"$dir/agent.out" 2>"$dir/agent.err" &
agent_pid=$!
sleep 60
kill -0 "$agent_pid" || { echo "the agent stopped:" >&2; cat "$dir/agent.err" >&2; exit 1; }
after=$(watches)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$agent_pid/status")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status")
echo "agent after 60 s: peak RSS ${hwm} KiB ($(( hwm / 1024 )) MiB), RSS now ${rss} KiB; watches it opened: $(( after - before )) (API server: $before before, $after with it)"
k get --raw /metrics | grep '^apiserver_longrunning_requests{' | grep 'verb="WATCH"' >"$dir/watches.txt" || true
