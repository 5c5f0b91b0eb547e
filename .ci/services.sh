#!/usr/bin/env bash
# Starts the real services the tests use, on loopback, with their state under one folder:
# dockerd, a docker registry, InfluxDB 1.x. Prints the environment the tests read.
#   .ci/services.sh start DIR   -> starts them, writes DIR/env (source it)
#   .ci/services.sh stop DIR    -> stops them and removes DIR
set -euo pipefail

cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "services: $name did not come up; its log:" >&2
  tail -n 40 "$dir/$name.log" >&2 || true
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
start)
  mkdir -p "$dir"
  # dockerd: its own socket, data root and exec root, so nothing outside $dir is touched.
  dockerd --host "unix://$dir/docker.sock" --data-root "$dir/docker" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/dockerd.pid.bg"
  # A registry (distribution 2.x), plain HTTP on loopback.
  reg_port=$(free_port)
  cat >"$dir/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$reg_port
YML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  # InfluxDB 1.x: HTTP API on loopback, state in $dir.
  influx_port=$(free_port)
  rpc_port=$(free_port)
  cat >"$dir/influxdb.conf" <<TOML
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$dir/influxdb/meta"
[data]
  dir = "$dir/influxdb/data"
  wal-dir = "$dir/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
TOML
  influxd -config "$dir/influxdb.conf" >"$dir/influxdb.log" 2>&1 &
  echo $! >"$dir/influxdb.pid"

  wait_for dockerd docker -H "unix://$dir/docker.sock" version
  wait_for registry curl -fsS "http://127.0.0.1:$reg_port/v2/"
  wait_for influxdb curl -fsS "http://127.0.0.1:$influx_port/ping"
  cat >"$dir/env" <<ENV
export KOVENANT_TEST_DOCKER_HOST=unix://$dir/docker.sock
export KOVENANT_TEST_REGISTRY=127.0.0.1:$reg_port
export KOVENANT_TEST_INFLUXDB=http://127.0.0.1:$influx_port
export KOVENANT_TEST_PROMTOOL=$(command -v promtool)
ENV
  cat "$dir/env"
  ;;
stop)
  for f in influxdb.pid registry.pid dockerd.pid.bg; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
  done
  # dockerd needs a moment to unmount its overlay layers before the folder can go.
  for _ in $(seq 1 50); do
    [ -f "$dir/dockerd.pid.bg" ] && kill -0 "$(cat "$dir/dockerd.pid.bg")" 2>/dev/null || break
    sleep 0.2
  done
  umount -R "$dir/docker" 2>/dev/null || true
  umount -R "$dir/exec" 2>/dev/null || true
  rm -rf "$dir" 2>/dev/null || true
  ;;
*)
  echo "usage: services.sh start|stop DIR" >&2
  exit 2
  ;;
esac
