#!/usr/bin/env bash
# The pod memo's worst case: the corpus of bench/agent.sh with every pod object made unique
# (a suffix on the container id, which the agent does not read), so every line misses the memo
# and pays for the lookup and the insert. Prints the agent's best-of-5 wall time on one core
# for the corpus as generated and for the all-miss copy; the outputs must be the same.
# Usage: bench/memo_worst_case.sh   (after bench/agent.sh made the corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/bench-agent/corpus-200000-11-h0
miss=target/bench-agent/all-miss.jsonl
python3 - "$dir/events.jsonl" "$miss" <<'PY'
import re, sys
pat = re.compile(r'("container":\{"id":"[^"]*)"')
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for i, line in enumerate(src):
        out.write(pat.sub(lambda m: f'{m.group(1)}-u{i}"', line, count=1))
PY
run() { taskset -c 0 target/release/kovenant agent --no-kernel --cluster-snapshot "$dir/cluster.json" < "$1"; }
for f in "$dir/events.jsonl" "$miss"; do
  best=
  for _ in 1 2 3 4 5; do
    t=$( { /usr/bin/time -f %e bash -c "taskset -c 0 target/release/kovenant agent --no-kernel --cluster-snapshot $dir/cluster.json < $f > /dev/null"; } 2>&1 | tail -1)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$f: best of 5 ${best} s = $(echo "200000 / $best" | bc) events/s"
done
if [ "$(run "$dir/events.jsonl" | grep -v '^kovenant_agent' | sort | md5sum)" = "$(run "$miss" | grep -v '^kovenant_agent' | sort | md5sum)" ]; then
  echo "same points with and without memo hits"
else
  echo "points differ" >&2; exit 1
fi
