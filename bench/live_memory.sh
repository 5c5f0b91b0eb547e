#!/usr/bin/env bash
# The live agent's memory and CPU as the cluster grows and churns, without a control plane:
# bench/fake_apiserver.py serves the API-server-shaped snapshots of bench/cluster_memory.sh
# (10,152 and about 50,000 pods) to the agent's nine watches, paginated as a real API server
# pages them, and with CHURN > 0 replaces CHURN pods a second through the pods watch (a
# DELETED and an ADDED each). The agent runs as the DaemonSet runs it (a kubeconfig, a followed
# empty export file). After SECS seconds: peak RSS (VmHWM), RSS, and the CPU it used between
# second 20 (everything listed) and the end, per second.
# bench/cluster_live.sh measures the same against the real control plane.
# Usage: bench/live_memory.sh [AGENT_BINARY] [CHURN]   (default target/release/kovenant, 0)
#        SECS=60 (how long each run lasts), CORPORA="c10k c50k" (which clusters)
set -euo pipefail
cd "$(dirname "$0")/.."
agent=$(realpath "${1:-target/release/kovenant}")
churn=${2:-0}
secs=${SECS:-60}
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # name, corpus args...
  local name=$1; shift
  local dir=target/bench-cluster/$name
  if [ ! -f "$dir/expected.json" ]; then
    PYTHONHASHSEED=0 python3 ../shared/tools/tetragon_corpus.py --out "$dir" --events 200000 --seed 11 "$@" >/dev/null
  fi
  [ -f "$dir/cluster-rich.json" ] || python3 bench/enrich_snapshot.py "$dir/cluster.json" "$dir/cluster-rich.json"
  local tmp; tmp=$(mktemp -d /tmp/kovenant-live-mem.XXXXXX)
  local port; port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 bench/fake_apiserver.py "$dir/cluster-rich.json" "$port" --churn "$churn" &
  local fake=$!
  until curl -sf "http://127.0.0.1:$port/version" >/dev/null; do sleep 0.5; done
  printf 'apiVersion: v1\nkind: Config\nclusters: [{name: f, cluster: {server: "http://127.0.0.1:%s"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: f, user: u}}]\ncurrent-context: c\n' "$port" >"$tmp/kubeconfig"
  : >"$tmp/export.log"
  "$agent" agent --kubeconfig "$tmp/kubeconfig" --source "file:$tmp/export.log" --node-name node-0 \
    >/dev/null 2>"$tmp/agent.err" </dev/null &
  local pid=$!
  sleep 20
  local c0; c0=$(cpu "$pid")
  sleep $((secs - 20))
  kill -0 "$pid" || { echo "the agent stopped:" >&2; cat "$tmp/agent.err" >&2; kill "$fake"; exit 1; }
  local c1; c1=$(cpu "$pid")
  local hwm rss
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid" "$fake"
  wait "$pid" "$fake" 2>/dev/null || true
  local pods; pods=$(grep -o '"kind": *"Pod"' "$dir/cluster.json" | wc -l)
  echo "$name ($pods pods, churn $churn/s): peak RSS $hwm KiB ($((hwm / 1024)) MiB), RSS $rss KiB after ${secs} s;" \
    "CPU from second 20: $(awk -v c=$((c1 - c0)) -v t="$tick" -v s=$((secs - 20)) 'BEGIN {printf "%.1f%%", 100 * c / t / s}')"
  rm -rf "$tmp"
}
for c in ${CORPORA:-c10k c50k}; do
  case $c in
    c10k) run c10k --nodes 100 --namespaces 50 --workloads-per-ns 20 --pods-per-workload 10 ;;
    c50k) run c50k --nodes 200 --namespaces 100 --workloads-per-ns 50 --pods-per-workload 10 ;;
  esac
done
