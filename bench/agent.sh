#!/usr/bin/env bash
# Benchmark of the agent's Tetragon parser, `kovenant agent --no-kernel` (a replay): events/s on
# one core side by side with a plain typed serde_json parse and a Python pipeline, plus peak RSS
# on the corpus and on ten times the corpus. The corpus is the retired per-call stream, kept as a
# parsing load: its events are read, parsed and (all but tcp_connect) ignored (benches/agent.rs).
# Usage: bench/agent.sh [EVENTS] [SEED]   (default 200000 11)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-200000}
seed=${2:-11}
dir=target/bench-agent/corpus-$events-$seed-h0
if [ ! -f "$dir/expected.json" ]; then
  PYTHONHASHSEED=0 python3 ../shared/tools/tetragon_corpus.py --out "$dir" --events "$events" --seed "$seed" >/dev/null
fi
cargo build --release --quiet --bin kovenant
cargo bench --quiet --bench agent --no-run
# Everything below runs on core 0 only: the agent, the parse, and Python.
exec taskset -c 0 cargo bench --quiet --bench agent -- "$dir" target/release/kovenant
