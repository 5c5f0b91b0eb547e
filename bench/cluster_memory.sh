#!/usr/bin/env bash
# Peak RSS of `kovenant agent` as the cluster grows (DESIGN.md section 7): the 10,152-pod snapshot
# of tetragon_corpus.py, as generated (lean objects) and enriched to what a real API server returns
# (bench/enrich_snapshot.py: managedFields, a dozen labels and annotations, env, full status).
# Usage: bench/cluster_memory.sh [AGENT_BINARY]   (default target/release/kovenant)
set -euo pipefail
cd "$(dirname "$0")/.."
agent=${1:-target/release/kovenant}
dir=target/bench-cluster/c10k
if [ ! -f "$dir/expected.json" ]; then
  PYTHONHASHSEED=0 python3 ../shared/tools/tetragon_corpus.py --out "$dir" --events 200000 --seed 11 \
    --nodes 100 --namespaces 50 --workloads-per-ns 20 --pods-per-workload 10 >/dev/null
fi
[ -f "$dir/cluster-rich.json" ] || python3 bench/enrich_snapshot.py "$dir/cluster.json" "$dir/cluster-rich.json"
[ -f "$dir/events-20k.jsonl" ] || head -n 20000 "$dir/events.jsonl" >"$dir/events-20k.jsonl"
for snap in cluster cluster-rich; do
  /usr/bin/time -f "$snap.json: peak RSS %M KiB, %e s" "$agent" agent --cluster-snapshot "$dir/$snap.json" \
    --source stdin <"$dir/events-20k.jsonl" | grep -v '^kovenant_agent' | sort | md5sum
done
