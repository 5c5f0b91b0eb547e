#!/usr/bin/env bash
# telegraf's memory per metric it holds for an unreachable InfluxDB, with the telegraf.conf the
# pipeline chart renders (kovenant render, then helm template): the agent's execd command is
# replaced by bench/telegraf_lines.py, which writes COUNT lines of the agent's shapes (a window of
# 200 tcp_flow, 20 pod_io, 1 kovenant_agent and 40 pod_activity) and then stays quiet; every influxdb_v2 output
# points at a closed loopback port. After the lines are read and two flushes have failed,
# telegraf's VmRSS and peak (VmHWM) are read (telegraf alone, not its child).
#   1. with metric_buffer_limit raised out of the way: the cost of each held metric (the slope
#      over SIZES, against one line);
#   2. with the rendered limits and 3x as many lines as they add up to: every buffer full, the
#      oldest dropped, as after a long outage.
# Usage: bench/telegraf_buffer.sh [KOVENANT_BINARY]   (default: cargo build, target/debug/kovenant;
#        only its `kovenant render` is run, for the telegraf.conf of this tree)
#        SIZES="25000 50000 100000" (lines of step 1), SETTLE=25 (seconds after the last line),
#        GOMEMLIMIT=... is passed to telegraf as the DaemonSet would.
# telegraf is the one .ci/tools.sh builds: the pinned version's code, with only the plugins the
# configuration uses (the image's telegraf has every plugin, so a bigger binary and a few MiB
# more at rest; each held metric costs the same).
set -euo pipefail
cd "$(dirname "$0")/.."
kov=${1:-}
if [ -z "$kov" ]; then
  cargo build --quiet
  kov=target/debug/kovenant
fi
kov=$(realpath "$kov")
sizes=${SIZES:-25000 50000 100000}
settle=${SETTLE:-25}
eval "$(.ci/tools.sh telegraf helm4 | sed 's/^/export /')"
tmp=$(mktemp -d /tmp/kovenant-telegraf-buffer.XXXXXX)
telegraf_pid=
cleanup() {
  if [ -n "$telegraf_pid" ]; then kill -- "-$telegraf_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$tmp" && : >.env && env -u KOVENANT_AGENT_WINDOW "$kov" render --quiet --out "$tmp/render" >/dev/null)
"$HELM4" template kovenant-pipeline "$tmp/render/charts/kovenant-pipeline" --namespace kovenant \
  --show-only templates/agent-configmap.yaml |
  python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["telegraf.conf"], end="")' \
    >"$tmp/rendered.conf"
# The buffers' limits: [agent]'s (every output that sets none) and each output's own.
limits=$(sed -nE 's/^ *metric_buffer_limit = ([0-9]+)$/\1/p' "$tmp/rendered.conf" | paste -sd' ')
[ -n "$limits" ] || { echo "no metric_buffer_limit in the rendered telegraf.conf" >&2; exit 1; }
limit=$(awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s }' <<<"$limits")
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

run() { # lines buffer-limit -> $tmp/result: "lines rss_kib hwm_kib overflow_warnings"
  local lines=$1 lim=$2 conf=$tmp/telegraf-$1-$2.conf done=$tmp/done-$1-$2
  python3 - "$tmp/rendered.conf" "$conf" "$lines" "$lim" "$done" "$closed" <<'EOF'
import json, re, sys
src, dst, lines, limit, done, closed = sys.argv[1:]
conf = open(src).read()
def sub(pattern, repl, want=1):
    global conf
    conf, n = re.subn(pattern, repl, conf, flags=re.M)
    assert n >= want, f"{pattern}: {n} matches"
cmd = json.dumps(["python3", "bench/telegraf_lines.py", lines, done])
sub(r'^(\s*)command = \[.*\]$', lambda m: f"{m.group(1)}command = {cmd}")
sub(r'^(\s*)urls = \[.*\]$', lambda m: f'{m.group(1)}urls = ["http://127.0.0.1:{closed}"]')
if limit != "rendered":
    sub(r'^(\s*)metric_buffer_limit = \d+$', lambda m: f"{m.group(1)}metric_buffer_limit = {limit}")
sub(r'^(\s*)service_address = .*$', lambda m: f'{m.group(1)}service_address = "http://127.0.0.1:0"')
open(dst, "w").write(conf)
EOF
  NODE_NAME=bench INFLUX_TOKEN=unused setsid "$TELEGRAF" --config "$conf" >"$tmp/telegraf.log" 2>&1 </dev/null &
  telegraf_pid=$!
  local waited=0
  until [ -e "$done" ]; do
    sleep 0.5
    waited=$((waited + 1))
    [ $waited -lt 600 ] || { echo "the lines were not read in 300 s:" >&2; cat "$tmp/telegraf.log" >&2; exit 1; }
  done
  sleep "$settle"
  kill -0 "$telegraf_pid" || { echo "telegraf stopped:" >&2; cat "$tmp/telegraf.log" >&2; exit 1; }
  local rss hwm dropped
  rss=$(kib "$telegraf_pid" VmRSS)
  hwm=$(kib "$telegraf_pid" VmHWM)
  dropped=$(grep -c 'Metric buffer overflow' "$tmp/telegraf.log" || true)
  kill -- "-$telegraf_pid"
  wait "$telegraf_pid" 2>/dev/null || true
  telegraf_pid=
  echo "$lines $rss $hwm $dropped" >"$tmp/result"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "telegraf $("$TELEGRAF" version | cut -d' ' -f2), rendered metric_buffer_limit $limits, GOMEMLIMIT=${GOMEMLIMIT:-unset}"
echo "1. held metrics (buffer limit 10,000,000)"
printf '%10s %12s %12s\n' lines "RSS MiB" "peak MiB"
results=()
for n in 1 $sizes; do
  run "$n" 10000000
  results+=("$(cat "$tmp/result")")
  read -r l rss hwm _ <"$tmp/result"
  printf '%10s %12s %12s\n' "$l" "$(mib "$rss")" "$(mib "$hwm")"
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys
rows = [tuple(map(int, l.split()[:3])) for l in sys.stdin if l.strip()]
base = rows[0]
for n, rss, hwm in rows[1:]:
    print(f"   {n:>8} lines: {(rss - base[1]) * 1024 / (n - 1):6.0f} B resident, {(hwm - base[2]) * 1024 / (n - 1):6.0f} B peak per held metric")
'
echo "2. the rendered limits ($limits), $((3 * limit)) lines: every buffer full, the oldest dropped"
run $((3 * limit)) rendered
read -r l rss hwm dropped <"$tmp/result"
printf '%10s %12s %12s   (%s overflow warnings)\n' "$l" "$(mib "$rss")" "$(mib "$hwm")" "$dropped"
