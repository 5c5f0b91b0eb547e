#!/usr/bin/env bash
# kovenant's sandbox: the whole stack and its pipeline on this machine, for a first look and for
# trying changes. It starts the project's own real parts on loopback (.ci/cluster.sh: etcd,
# kube-apiserver, controller-manager, scheduler, kwok playing the kubelet of one node named after
# this machine, the pinned charts as a chart repository, a real InfluxDB 2.7 behind the InfluxDB
# pod), writes a kubeconfig and a .env for it, runs `kovenant install -y`, and then runs what kwok
# cannot: the agent's DaemonSet pod. That is real telegraf with the telegraf.conf the pipeline
# chart rendered into the cluster, running the real agent (`kovenant agent --source none`: no
# Tetragon here) on this machine's kernel, writing this machine's real flows to that InfluxDB.
#
#   ./sandbox.sh up [DIR]     start it all (default DIR: /tmp/kovenant-sandbox), then show
#                             `kovenant status` and `kovenant top`
#   ./sandbox.sh down [DIR]   stop everything `up` started and remove DIR
#
# Needs: root (the agent reads every process's /proc and every network namespace's sockets), Go
# (the tools are built from their Go modules once, cached in ~/.cache/kovenant/tools), Rust >= 1.95
# (cargo, to build kovenant), and Debian's curl, openssl, python3, gcc, libc6-dev, pkg-config
# (installed here when missing and apt-get is there). SANDBOX_BIN=PATH uses that kovenant binary
# instead of building one (the CI test passes the binary under test).
set -euo pipefail

cmd=${1:-up}
dir=${2:-/tmp/kovenant-sandbox}
repo=$(cd "$(dirname "$0")" && pwd)

say() { echo "sandbox: $*" >&2; }
die() { echo "sandbox: error: $*" >&2; exit 1; }

# A node name as the API server takes it: this machine's short host name, lower case.
node_name() {
  local n
  n=$(hostname -s 2>/dev/null | tr '[:upper:]' '[:lower:]')
  if [[ $n =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then echo "$n"; else echo sandbox-node; fi
}

stop_telegraf() {
  local pid
  [ -f "$dir/telegraf.pid" ] || return 0
  pid=$(cat "$dir/telegraf.pid")
  # telegraf runs in a process group of its own (setsid), the agent inside it: stop both.
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/telegraf.pid"
}

down() {
  [ -d "$dir" ] || { say "nothing to stop: no $dir"; return 0; }
  stop_telegraf
  [ -d "$dir/cluster" ] && "$repo/.ci/cluster.sh" stop "$dir/cluster"
  rm -rf "$dir"
  say "stopped and removed $dir"
}

prerequisites() {
  [ "$(id -u)" = 0 ] || die "run as root (sudo $0 up): the agent reads every process's /proc and \
every network namespace's sockets"
  local missing=()
  for c in curl openssl python3 gcc pkg-config; do command -v "$c" >/dev/null || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]}: install them (Debian: curl openssl \
python3 gcc libc6-dev pkg-config)"
    say "installing Debian packages for ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      curl ca-certificates openssl python3 gcc libc6-dev pkg-config >/dev/null
  fi
  command -v go >/dev/null || die "no go on PATH: the control plane, helm and InfluxDB are built \
from their Go modules (https://go.dev/doc/install)"
  if [ -z "${SANDBOX_BIN:-}" ]; then
    command -v cargo >/dev/null || die "no cargo on PATH: kovenant needs Rust >= 1.95 \
(https://rustup.rs)"
  fi
}

up() {
  prerequisites
  if [ -e "$dir" ]; then
    die "$dir exists: the sandbox is up already, or was not stopped; run $0 down${2:+ $dir} first"
  fi
  local bin
  if [ -n "${SANDBOX_BIN:-}" ]; then
    bin=$(cd "$(dirname "$SANDBOX_BIN")" && pwd)/$(basename "$SANDBOX_BIN")
  else
    say "building kovenant (cargo build --release)"
    (cd "$repo" && cargo build --release --locked --quiet)
    bin=$repo/target/release/kovenant
  fi
  [ -x "$bin" ] || die "no kovenant binary at $bin"

  mkdir -p "$dir"
  chmod 700 "$dir"
  # Anything that fails from here (a command, or die) leaves nothing running.
  trap 'rc=$?; if [ "$rc" != 0 ]; then say "failed; stopping what was started"; down; fi' EXIT

  say "building or finding the tools (.ci/tools.sh; the first time takes a while)"
  # shellcheck disable=SC1090
  source <("$repo/.ci/tools.sh" | sed 's/^/export /')

  local node
  node=$(node_name)
  say "starting the control plane with node $node, the chart repository and InfluxDB"
  CLUSTER_NODES=$node "$repo/.ci/cluster.sh" start "$dir/cluster" >/dev/null
  # shellcheck disable=SC1091
  source "$dir/cluster/env"

  # What kovenant and helm use, as a user's own shell would have it: a kubeconfig, helm with the
  # helm-diff plugin, and helm's own folders in the sandbox (the user's helm is left alone).
  cp "$KOVENANT_TEST_KUBECONFIG" "$dir/kubeconfig"
  chmod 600 "$dir/kubeconfig"
  mkdir -p "$dir/helm"
  cat >"$dir/env" <<ENV
# source this to use kovenant against the sandbox: cd $dir (its .env), then kovenant status
export KUBECONFIG=$dir/kubeconfig
export HELM_PLUGINS=$KOVENANT_TEST_HELM_PLUGINS
export HELM_CONFIG_HOME=$dir/helm/config
export HELM_CACHE_HOME=$dir/helm/cache
export HELM_DATA_HOME=$dir/helm/data
export PATH=$(dirname "$bin"):$(dirname "$KOVENANT_TEST_KUBECTL"):\$PATH
ENV
  # The .env: the charts from the loopback repository, helm 4, and the credentials this
  # InfluxDB was set up with (as the InfluxDB pod is set up from the Secret install makes).
  local repo_url=$KOVENANT_TEST_CHART_REPO
  cat >"$dir/.env" <<ENV
# kovenant's sandbox (./sandbox.sh): a local cluster on loopback
KOVENANT_CLUSTER_NAME=sandbox
KOVENANT_HELM=$KOVENANT_TEST_HELM4
KOVENANT_TETRAGON_CHART_REPO=$repo_url
KOVENANT_PROMETHEUS_CHART_REPO=$repo_url
KOVENANT_GRAFANA_CHART_REPO=$repo_url
DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=$KOVENANT_TEST_INFLUXDB2_TOKEN
DOCKER_INFLUXDB_INIT_PASSWORD=$KOVENANT_TEST_INFLUXDB2_PASSWORD
ENV
  chmod 600 "$dir/.env"
  # shellcheck disable=SC1091
  source "$dir/env"
  cd "$dir"

  say "kovenant install -y (the image is not built: kwok runs no container)"
  kovenant install -y --skip-image

  # The DaemonSet's pod, for real: telegraf with the telegraf.conf the chart put in the cluster,
  # changed only where this machine differs from a pod (each change checked to apply once).
  local conf=$dir/telegraf.conf rendered
  rendered=$(kubectl -n kovenant get configmap kovenant-agent -o 'jsonpath={.data.telegraf\.conf}')
  conf_edit() { # pattern replacement
    local n
    n=$(grep -cE -- "$1" <<<"$rendered" || true)
    [ "$n" -ge 1 ] || die "the chart's telegraf.conf has no line matching $1"
    rendered=$(sed -E "s#$1#$2#g" <<<"$rendered")
  }
  # InfluxDB: the loopback one behind the InfluxDB pod, where the pod reaches its Service.
  conf_edit 'urls = \["http://[^"]*"\]' "urls = [\"$KOVENANT_TEST_INFLUXDB2\"]"
  # The agent: this binary, where the image has it; no Tetragon runs here, so no events source.
  conf_edit '"/usr/local/bin/kovenant"' "\"$bin\""
  conf_edit '"--source", "[^"]*"' '"--source", "none"'
  # The probes' health endpoint: loopback on a port the kernel picks (telegraf's log names it),
  # where the pod has a network namespace of its own.
  conf_edit 'service_address = "http://:[0-9]+"' 'service_address = "http://127.0.0.1:0"'
  printf '%s\n' "$rendered" >"$conf"
  local token
  token=$(kubectl -n kovenant get secret kovenant-influxdb-telegraf -o 'jsonpath={.data.token}' | base64 -d)
  [ -n "$token" ] || die "Secret kovenant/kovenant-influxdb-telegraf holds no token"
  say "starting telegraf with the agent on this machine's kernel (node $node)"
  # The token reaches telegraf through its environment, as the pod's Secret does, never argv.
  INFLUX_TOKEN=$token NODE_NAME=$node setsid "$KOVENANT_TEST_TELEGRAF" --config "$conf" \
    >"$dir/telegraf.log" 2>&1 </dev/null &
  echo $! >"$dir/telegraf.pid"
  # From here the sandbox stays up, healthy or not, to be looked at; `down` stops it.
  trap - EXIT

  say "waiting for the agent's first window to reach InfluxDB"
  if ! kovenant status --wait --timeout 3m; then
    say "telegraf's log ($dir/telegraf.log):"
    tail -n 30 "$dir/telegraf.log" >&2
    say "the sandbox is still up, to look at: source $dir/env && cd $dir; stop it with $0 down${2:+ $dir}"
    exit 3
  fi
  # The first flows: a window is 10 s and telegraf flushes every 10 s.
  for _ in $(seq 1 30); do
    kovenant top --since 5m -o json 2>/dev/null | grep -q '"flows": \[$' && break
    sleep 2
  done
  kovenant top --since 5m || true
  cat >&2 <<DONE

The sandbox is up ($dir). To use kovenant against it:
  source $dir/env && cd $dir
  kovenant status; kovenant top; kovenant dashboard
Stop it all with: $0 down${2:+ $dir}
DONE
}

case "$cmd" in
up) up "$@" ;;
down) down ;;
*) echo "usage: $0 up|down [DIR]" >&2; exit 2 ;;
esac
