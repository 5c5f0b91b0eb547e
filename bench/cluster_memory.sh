#!/usr/bin/env bash
# Peak RSS of `kovenant agent` as the cluster grows (DESIGN.md section 7): snapshots of
# tetragon_corpus.py with 10,152 and about 50,000 pods, each as generated (lean objects) and enriched to
# what a real API server returns (bench/enrich_snapshot.py: managedFields, a dozen labels and
# annotations, env, full status), fed the whole 200,000-event stream; the totals are checked
# against the generator's ground truth (bench/check_truth.py).
# Usage: bench/cluster_memory.sh [AGENT_BINARY]   (default target/release/kovenant)
set -euo pipefail
cd "$(dirname "$0")/.."
agent=${1:-target/release/kovenant}
run() { # name, corpus args...
  local name=$1; shift
  local dir=target/bench-cluster/$name
  if [ ! -f "$dir/expected.json" ]; then
    PYTHONHASHSEED=0 python3 ../shared/tools/tetragon_corpus.py --out "$dir" --events 200000 --seed 11 "$@" >/dev/null
  fi
  [ -f "$dir/cluster-rich.json" ] || python3 bench/enrich_snapshot.py "$dir/cluster.json" "$dir/cluster-rich.json"
  pods=$(grep -o '"kind": *"Pod"' "$dir/cluster.json" | wc -l)
  for snap in cluster cluster-rich; do
    size=$(du -m "$dir/$snap.json" | cut -f1)
    /usr/bin/time -f "$name $snap.json ($pods pods, $size MB): peak RSS %M KiB, %e s" "$agent" agent --no-kernel \
      --cluster-snapshot "$dir/$snap.json" --source stdin <"$dir/events.jsonl" \
      | python3 bench/check_truth.py "$dir/expected.json"
  done
}
run c10k --nodes 100 --namespaces 50 --workloads-per-ns 20 --pods-per-workload 10
# 200 nodes: the generator's node addresses (172.18.0.10+i) stop being addresses past 245.
run c50k --nodes 200 --namespaces 100 --workloads-per-ns 50 --pods-per-workload 10
